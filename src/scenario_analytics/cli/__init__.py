"""The `scenario-analytics` command: parse options, call the library, print.

Each command lives in a module of its own (`jobs.py`: run, backfill, validate;
`snapshots.py`; `query.py`; `diff.py`; `generate.py`; `serve.py`: serve and keys), its
options come from `options.py` (where each also gets its environment variable), and
`output.py` turns errors into messages and exit codes. Nothing below `cli/` imports Click.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from scenario_analytics.cli.diff import diff_command
from scenario_analytics.cli.generate import generate_command
from scenario_analytics.cli.jobs import backfill_command, run_command, validate_command
from scenario_analytics.cli.options import CONTEXT, debug_option, envvar
from scenario_analytics.cli.progress import JsonLog
from scenario_analytics.cli.query import query_command
from scenario_analytics.cli.serve import keys_command, serve_command
from scenario_analytics.cli.snapshots import snapshots_command
from scenario_analytics.engine.sql_files import load_sql_files
from scenario_analytics.errors import AnalyticsError
from scenario_analytics.events import Event
from scenario_analytics.publish.fingerprint import sql_version
from scenario_analytics.version import __version__


def _version_text() -> str:
    """The package version and the digest of the SQL it runs (as `snapshots` lists it)."""
    try:
        files = load_sql_files()
    except AnalyticsError as exc:
        return f"scenario-analytics {__version__} (SQL: {exc})"
    digest = sql_version((f.name, f.sha256) for f in files)
    folder = files[0].path.parent if files else "?"
    return f"scenario-analytics {__version__}, SQL {digest} ({len(files)} files in {folder})"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit()


class Command(click.Group):
    """The command group, whose usage errors (a malformed option, a missing --job file,
    an out-of-range variable) stay JSON lines when `--log-format json` (or
    `SCENARIO_ANALYTICS_LOG_FORMAT=json`) is asked for: a log pipeline sees them too.
    Click prints them as plain text before any command runs."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        argv = list(kwargs.get("args") or (args[0] if args else None) or sys.argv[1:])
        try:
            done = super().main(*args, **{**kwargs, "standalone_mode": False})
            # As in standalone mode: the exit code of `ctx.exit(n)`, else 0 (a command's
            # return value is not an exit status).
            sys.exit(done if isinstance(done, int) else 0)
        except click.ClickException as exc:
            if not json_logs_asked(argv):
                exc.show()
                sys.exit(exc.exit_code)
            ctx = getattr(exc, "ctx", None)
            command = ctx.command_path if isinstance(ctx, click.Context) else "scenario-analytics"
            message = exc.format_message()
            if isinstance(exc, click.UsageError):
                message += f" — see `{command} --help`"
            JsonLog(sys.stderr)(
                Event(command.split()[-1], "error", message, data={"exit_code": exc.exit_code})
            )
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)


def json_logs_asked(argv: list[str]) -> bool:
    """`--log-format json` on the command line (either spelling), or in the environment."""
    for n, arg in enumerate(argv):
        if arg == "--log-format=json" or (
            arg == "--log-format" and argv[n + 1 : n + 2] == ["json"]
        ):
            return True
    return os.environ.get(envvar("--log-format"), "") == "json"


@click.group(cls=Command, context_settings=CONTEXT, no_args_is_help=True)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the version and the digest of the SQL files, then exit.",
)
@debug_option
def main() -> None:
    """Turn Exec session exports into scenario analytics snapshots.

    Every option can also be set in the environment as SCENARIO_ANALYTICS_<OPTION>
    (e.g. SCENARIO_ANALYTICS_SNAPSHOTS); the command line wins over the environment,
    which wins over the job file (--job).

    \b
    Example:
      scenario-analytics run --exports data/sample --snapshots snapshots --as-of 2026-11-26
      scenario-analytics query --snapshots snapshots procurement-discovery
    """


main.add_command(run_command, "run")
main.add_command(backfill_command, "backfill")
main.add_command(snapshots_command, "snapshots")
main.add_command(query_command, "query")
main.add_command(validate_command, "validate")
main.add_command(generate_command, "generate")
main.add_command(diff_command, "diff")
main.add_command(serve_command, "serve")
main.add_command(keys_command, "keys")


if __name__ == "__main__":
    main()
