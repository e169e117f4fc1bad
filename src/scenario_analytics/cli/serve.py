"""`serve`: the analytics endpoints over HTTP; `keys`: the API keys it accepts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from scenario_analytics.api.keys import create_key, read_keys, revoke_key
from scenario_analytics.cli.options import CONTEXT, LOCATION, F, debug_option, job_option, option
from scenario_analytics.cli.output import handle_errors, log
from scenario_analytics.locations import Location
from scenario_analytics.settings import JobSettings

# FastAPI, uvicorn and the server's modules are imported by `serve` when it runs: every
# other command starts ~0.2 s sooner without them.

keys_file_option = option(
    "--keys-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON file of API key hashes (written by `keys create`).",
)


@click.command(context_settings=CONTEXT)
@option(
    "--snapshots",
    type=LOCATION,
    help="Snapshot store: a folder or s3://bucket/prefix. Default: the job file's snapshots.",
)
@job_option
@option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free port, named in the `listening` log line).",
)
@keys_file_option
@option(
    "--no-auth",
    is_flag=True,
    help="Serve without API keys; only on a loopback --host.",
)
@click.option(  # on the command line only: no environment variable turns keys off
    "--force-no-auth",
    is_flag=True,
    help="Serve without API keys on any --host (a proxy in front must authenticate). "
    "Not read from the environment.",
)
@option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Threads that compute answers not precomputed (each holds the snapshot's sessions "
    "in memory: ~650 MB per 10M sessions).",
)
@option(
    "--cache-max-age",
    type=click.IntRange(0, 86400),
    default=60,
    show_default=True,
    help="Seconds in the Cache-Control: private, max-age of successful answers.",
)
@option(
    "--header-timeout",
    type=click.FloatRange(0.5, 300),
    default=10.0,
    show_default=True,
    help="Seconds a client has to send a request's line and headers (then 408, closed).",
)
@option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Least severe message logged on stderr (access lines are always written).",
)
@option(
    "--print-openapi",
    is_flag=True,
    help="Print the OpenAPI description (docs/openapi.json) and exit.",
)
@debug_option
@handle_errors
def serve_command(
    snapshots: Location | None,
    job: Path | None,
    host: str,
    port: int,
    keys_file: Path | None,
    no_auth: bool,
    force_no_auth: bool,
    workers: int,
    cache_max_age: int,
    header_timeout: float,
    log_level: str,
    print_openapi: bool,
) -> None:
    """Serve the summary and participants endpoints over HTTP, from a snapshot store.

    GET /rest/v1/scenarios/{scenario_id}/analytics/summary and .../participants answer
    as `query` does (optional as_of=YYYY-MM-DD for an older snapshot), with ETag,
    Cache-Control and X-Snapshot-Date; /healthz, /readyz, /metrics, /openapi.json. A
    snapshot published (or pinned) while it runs is served within a second. Logs are
    JSON lines on stderr. SIGTERM stops it gracefully (exit 0).

    Keys are required: --keys-file, or --no-auth on a loopback --host. docs/API.md has
    the details: proxy, systemd, metrics.

    \b
    Example:
      scenario-analytics keys create --keys-file /etc/scenario-analytics/keys.json \\
          --name dashboards
      scenario-analytics serve --snapshots snapshots \\
          --keys-file /etc/scenario-analytics/keys.json --port 8080
      curl -H "Authorization: Bearer exec_live_..." \\
          http://127.0.0.1:8080/rest/v1/scenarios/procurement-discovery/analytics/summary
      scenario-analytics serve --print-openapi > docs/openapi.json
    """
    from scenario_analytics.api.http import ServerSettings, openapi_document
    from scenario_analytics.api.server import check_auth_choice, check_keys_file, run_server

    if print_openapi:
        click.echo(json.dumps(openapi_document(), indent=2, ensure_ascii=False))
        return
    check_auth_choice(host, keys_file is not None, no_auth, force_no_auth)
    if keys_file is not None:
        check_keys_file(keys_file)
    settings = JobSettings.resolve(job, snapshots=snapshots)
    server = ServerSettings(
        store=settings.snapshot_store(),
        storage=settings.storage,
        keys_file=keys_file,
        workers=workers,
        cache_max_age=cache_max_age,
        engine=settings.engine,
    )
    sys.exit(run_server(server, host, port, log_level, header_timeout=header_timeout))


@click.group(context_settings=CONTEXT, no_args_is_help=True)
@debug_option
def keys_command() -> None:
    """Create, list and revoke the API keys `serve` accepts.

    The keys file holds each key's SHA-256 hash and name, never the key: a key is shown
    once, when it is created. A running server reloads the file within a second.

    \b
    Example:
      scenario-analytics keys create --keys-file keys.json --name dashboards
      scenario-analytics keys list --keys-file keys.json
      scenario-analytics keys revoke --keys-file keys.json --name dashboards
    """


def required_keys_file(text: str) -> Callable[[F], F]:
    """The `--keys-file` of the `keys` commands (required), with its help text."""
    return option(
        "--keys-file", type=click.Path(path_type=Path, dir_okay=False), required=True, help=text
    )


@keys_command.command("create", context_settings=CONTEXT)
@required_keys_file("JSON file of API key hashes (created if missing, mode 0600).")
@option("--name", required=True, help="Who or what uses the key (unique in the file; logged).")
@debug_option
@handle_errors
def keys_create_command(keys_file: Path, name: str) -> None:
    """Create an API key and print it once on stdout; only its hash is stored.

    \b
    Example:
      scenario-analytics keys create --keys-file keys.json --name dashboards
    """
    key = create_key(keys_file, name)
    click.echo(key)
    log(f"created the key {name!r} in {keys_file}: store it now, it is not shown again")


@keys_command.command("list", context_settings=CONTEXT)
@required_keys_file("JSON file of API key hashes.")
@option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@debug_option
@handle_errors
def keys_list_command(keys_file: Path, as_json: bool) -> None:
    """List the keys' names and creation times (never the keys, which are not stored).

    \b
    Example:
      scenario-analytics keys list --keys-file keys.json
    """
    entries = read_keys(keys_file)
    if as_json:
        listed = [{"name": e.name, "created_at": e.created_at} for e in entries]
        click.echo(json.dumps({"keys": listed}, indent=2))
        return
    for entry in entries:
        click.echo(f"{entry.name}\t{entry.created_at}")
    log(f"{len(entries)} key(s) in {keys_file}")


@keys_command.command("revoke", context_settings=CONTEXT)
@required_keys_file("JSON file of API key hashes.")
@option("--name", required=True, help="The name of the key to remove.")
@debug_option
@handle_errors
def keys_revoke_command(keys_file: Path, name: str) -> None:
    """Remove a key: a running server refuses it within a second.

    \b
    Example:
      scenario-analytics keys revoke --keys-file keys.json --name dashboards
    """
    revoke_key(keys_file, name)
    log(f"revoked the key {name!r} in {keys_file}")
