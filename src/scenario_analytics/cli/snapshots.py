"""`snapshots`: list a store's published snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import click

from scenario_analytics.cli.options import CONTEXT, debug_option, job_option, json_option, option
from scenario_analytics.cli.output import handle_errors
from scenario_analytics.publish.store import require_store
from scenario_analytics.settings import JobSettings


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@click.command(context_settings=CONTEXT)
@option(
    "--snapshots",
    type=click.Path(path_type=Path, file_okay=False),
    help="Snapshot store folder. Default: the job file's snapshots.",
)
@job_option
@json_option
@debug_option
@handle_errors
def snapshots_command(snapshots: Path | None, job: Path | None, as_json: bool) -> None:
    """List the store's published snapshots, oldest first.

    Date, when it was made, sessions, scenarios, rejected rows, SQL version (a digest of
    the SQL files) and size on disk; the one latest.json names is marked. Exit 3 if the
    store folder does not exist.

    \b
    Example:
      scenario-analytics snapshots --snapshots /data/snapshots
      scenario-analytics snapshots --job jobs/nightly.toml --json | jq '.[-1]'
    """
    root = JobSettings.resolve(job, snapshots=snapshots).snapshot_store()
    found = require_store(root).snapshots()
    if as_json:
        click.echo(json.dumps([s.as_json() for s in found], indent=2))
        return
    click.echo(
        f"{'date':<10}  {'created_at':<20}  {'sessions':>11}  {'scenarios':>9}  "
        f"{'rejects':>9}  {'sql':<12}  {'size':>9}"
    )
    for s in found:
        click.echo(
            f"{s.snapshot_date.isoformat():<10}  {s.created_at[:19] + 'Z':<20}  "
            f"{s.sessions:>11,}  {s.scenarios:>9,}  {s.rejects:>9,}  {s.sql_version:<12}  "
            f"{_size(s.bytes):>9}" + ("  latest" if s.latest else "")
        )
