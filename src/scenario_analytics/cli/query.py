"""`query`: answer summary and participants requests from a snapshot, as the API would."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from scenario_analytics.cli import hints
from scenario_analytics.cli.options import (
    CONTEXT,
    LOCATION,
    debug_option,
    filter_options,
    job_option,
    option,
    parse_day,
)
from scenario_analytics.cli.output import handle_errors, log
from scenario_analytics.errors import ExitCode, InvalidUsageError
from scenario_analytics.locations import Location
from scenario_analytics.publish.store import Store
from scenario_analytics.serve.protocol import answer_lines
from scenario_analytics.serve.query import Answer, SnapshotNotFound, SnapshotQuery
from scenario_analytics.settings import JobSettings


def _emit(answer: Answer) -> None:
    """The body on stdout; for an error, also one line on stderr."""
    click.echo(answer.body)
    if answer.exit_code != ExitCode.OK:
        log(f"error: {answer.message} — {hints.with_options(answer.hint)}")


@click.command(context_settings=CONTEXT)
@click.argument("scenario", required=False)
@option(
    "--snapshots",
    type=LOCATION,
    help="Snapshot store: a folder or s3://bucket/prefix. Default: the job file's snapshots.",
)
@job_option
@option(
    "--as-of",
    callback=parse_day,
    help="Snapshot date YYYY-MM-DD. Default: the one latest.json names.",
)
@filter_options
@option(
    "--participants",
    is_flag=True,
    help="Answer GET /scenarios/{id}/analytics/participants (a page of participants) "
    "instead of the summary.",
)
@option(
    "--sorting",
    help="With --participants: best_score, first_score, lift_percentage, "
    "total_duration_seconds or session_count, - first for descending. Default: -best_score.",
)
@option("--page", help="With --participants: the page, from 1. Default: 1.")
@option("--page-size", help="With --participants: entries per page, 1 to 100. Default: 20.")
@option(
    "--requests",
    "requests_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True, allow_dash=True),
    help="File of JSON requests, one per line, answered in order (- for stdin).",
)
@debug_option
@handle_errors
def query_command(
    scenario: str | None,
    snapshots: Location | None,
    job: Path | None,
    as_of: date | None,
    participants: bool,
    sorting: str | None,
    page: str | None,
    page_size: str | None,
    requests_file: Path | None,
    **filters: str | bool | None,
) -> None:
    """Print a scenario's summary (or a page of its participants) as JSON, from a
    snapshot alone.

    Prints the API's response body, or its error body: GET
    /scenarios/{id}/analytics/summary, or with --participants GET
    /scenarios/{id}/analytics/participants. --requests answers a file of JSON requests,
    one per line ({"scenario_id": ..., <parameters>}, and "endpoint": "participants" for
    the participants endpoint), one body per line.

    SCENARIO is a scenario id or slug. Exit 0, 2 (invalid request) or 3 (not found).

    \b
    Example:
      scenario-analytics query --snapshots snapshots procurement-discovery \\
          --group-ids g1 --start-date 2026-11-01 --exclude-system-users
      scenario-analytics query --snapshots snapshots procurement-discovery --participants \\
          --sorting -lift_percentage --page 2 --page-size 50
      scenario-analytics query --snapshots snapshots --requests requests.jsonl
    """
    if (scenario is None) == (requests_file is None):
        raise InvalidUsageError("give either SCENARIO or --requests FILE", "see --help")
    given = {k: v for k, v in filters.items() if v is not None and v is not False}
    paging = {
        k: v
        for k, v in (("sorting", sorting), ("page", page), ("page_size", page_size))
        if v is not None
    }
    if requests_file is not None and (given or paging or participants):
        raise InvalidUsageError(
            "filter, paging and --participants options apply to SCENARIO, not to --requests",
            'put the parameters (and "endpoint") on each line of the requests file',
        )
    if paging and not participants:
        option = "--" + next(iter(paging)).replace("_", "-")
        raise InvalidUsageError(
            f"{option} applies to --participants only", "add --participants, or drop it"
        )
    settings = JobSettings.resolve(job, snapshots=snapshots)
    store = Store(settings.snapshot_store(), settings.storage)
    try:
        _answer(store, scenario, requests_file, as_of, participants, paging, filters, settings)
    finally:
        store.close()


def _answer(
    store: Store,
    scenario: str | None,
    requests_file: Path | None,
    as_of: date | None,
    participants: bool,
    paging: dict[str, str],
    filters: dict[str, str | bool | None],
    settings: JobSettings,
) -> None:
    try:
        reader = SnapshotQuery(store, as_of, engine=settings.engine)
    except SnapshotNotFound as exc:
        _emit(exc.answer)
        sys.exit(int(exc.answer.exit_code))
    with reader:
        if requests_file is not None:
            with click.open_file(str(requests_file), mode="rb") as handle:
                for body in answer_lines(reader, handle):
                    click.echo(body)
            return
        assert scenario is not None
        params: dict[str, object] = {k: v for k, v in filters.items() if v is not None}
        if participants:
            answer = reader.participants(scenario, {**params, **paging})
        else:
            answer = reader.answer(scenario, params)
        _emit(answer)
        if answer.exit_code != ExitCode.OK:
            sys.exit(int(answer.exit_code))
