"""`diff`: what changed between two snapshots' summaries."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from scenario_analytics.cli.options import (
    CONTEXT,
    LOCATION,
    debug_option,
    job_option,
    json_option,
    option,
)
from scenario_analytics.cli.output import handle_errors
from scenario_analytics.locations import Location
from scenario_analytics.publish.store import Store
from scenario_analytics.serve.diff import BODY, SnapshotDiff, Tally, diff_snapshots, figure_text
from scenario_analytics.settings import JobSettings


@click.command(context_settings=CONTEXT)
@click.argument("a")
@click.argument("b", required=False)
@option(
    "--snapshots",
    type=LOCATION,
    help="Snapshot store the dates A and B are in: a folder or s3://bucket/prefix. Default: "
    "the job file's snapshots.",
)
@job_option
@option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Changed figures listed in the summary (--json lists all).",
)
@json_option
@option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 if the snapshots differ, 0 if they are identical (as `git diff --exit-code`).",
)
@debug_option
@handle_errors
def diff_command(
    a: str,
    b: str | None,
    snapshots: Location | None,
    job: Path | None,
    limit: int,
    as_json: bool,
    exit_code: bool,
) -> None:
    """Show what changed between two snapshots' summaries.

    A and B are dates of the store (YYYY-MM-DD) or snapshot folders (holding manifest.json);
    B defaults to the date latest.json names. Per scenario and request key, the figures
    that changed from A to B, and the scenarios and summaries added or removed.

    Exit 0 whether they differ or not (with --exit-code: 1 if they differ), 2 for bad
    usage, 3 if a snapshot is not found.

    \b
    Example:
      scenario-analytics diff --snapshots /data/snapshots 2026-11-25
      scenario-analytics diff /data/snapshots/snapshot_date=2026-11-26 \\
          /tmp/trial/snapshot_date=2026-11-26 --exit-code
      scenario-analytics diff --job jobs/nightly.toml 2026-11-25 2026-11-26 --json | jq .changes
    """
    settings = JobSettings.resolve(job, snapshots=snapshots)
    store = Store(settings.snapshots, settings.storage) if settings.snapshots else None
    result = diff_snapshots(
        a,
        b,
        store=store,
        limit=None if as_json else limit,
        engine=settings.engine,
    )
    if as_json:
        click.echo(result.to_json())
    else:
        for line in _summary(result, limit):
            click.echo(line)
    if exit_code and not result.identical:
        sys.exit(1)


def _summary(result: SnapshotDiff, limit: int) -> list[str]:
    """The one-screen summary: the two snapshots, counts, then the first changes."""
    lines = [
        f"A  {result.before.snapshot_date.isoformat()}  {result.before.path}",
        f"B  {result.after.snapshot_date.isoformat()}  {result.after.path}",
    ]
    if result.identical:
        lines.append(
            f"no differences: {result.scenarios.after:,} scenarios and "
            f"{result.summaries.after:,} summaries, every figure the same"
        )
        return lines
    lines += [
        f"scenarios  {_counts(result.scenarios)}",
        f"summaries  {_counts(result.summaries)}",
        f"figures    {result.changed_figures:,} changed",
    ]
    for verb, entries, total in (
        ("added", result.scenarios_added, result.scenarios.added),
        ("removed", result.scenarios_removed, result.scenarios.removed),
    ):
        for entry in entries:
            lines.append(f"scenario {verb}  {entry.label}  ({entry.scenario_id})")
        if total > len(entries):
            lines.append(f"... {total - len(entries):,} more scenarios {verb} (--json lists all)")
    if result.summaries.added or result.summaries.removed:
        lines.append("(--json lists the summaries added and removed)")
    for change in result.changes:
        key = change.request_key or "(unfiltered)"
        if change.figure == BODY:
            lines.append(f"{change.label}  {key}  body  differs (--json shows both)")
        else:
            lines.append(
                f"{change.label}  {key}  {change.figure}  "
                f"{figure_text(change.before)} -> {figure_text(change.after)}"
            )
    more = result.changed_figures - len(result.changes)
    if more > 0:
        lines.append(f"... {more:,} more changed figures (--limit N shows more, --json all)")
    return lines


def _counts(tally: Tally) -> str:
    return (
        f"{tally.added:,} added, {tally.removed:,} removed, {tally.changed:,} changed, "
        f"{tally.unchanged:,} unchanged"
    )
