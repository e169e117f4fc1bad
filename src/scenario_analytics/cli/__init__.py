"""The `scenario-analytics` command: parse options, call the library, print.

Each command lives in a module of its own (`jobs.py`: run, backfill, validate;
`snapshots.py`; `query.py`; `diff.py`; `generate.py`; `serve.py`: serve and keys), its
options come from `options.py` (where each also gets its environment variable), and
`output.py` turns errors into messages and exit codes. Nothing below `cli/` imports Click.
"""

from __future__ import annotations

import click

from scenario_analytics.cli.diff import diff_command
from scenario_analytics.cli.generate import generate_command
from scenario_analytics.cli.jobs import backfill_command, run_command, validate_command
from scenario_analytics.cli.options import CONTEXT, debug_option
from scenario_analytics.cli.query import query_command
from scenario_analytics.cli.serve import keys_command, serve_command
from scenario_analytics.cli.snapshots import snapshots_command
from scenario_analytics.engine.sql_files import load_sql_files
from scenario_analytics.errors import AnalyticsError
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


@click.group(context_settings=CONTEXT, no_args_is_help=True)
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
