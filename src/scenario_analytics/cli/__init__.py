"""The `scenario-analytics` command: parse options, call the library, map errors to exit codes."""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
import duckdb

from scenario_analytics import __version__
from scenario_analytics.cli.progress import JsonLog, PlainLog, TerminalProgress
from scenario_analytics.engine.database import EngineSettings
from scenario_analytics.errors import AnalyticsError, ExitCode, InvalidUsageError, NotFoundError
from scenario_analytics.events import Report
from scenario_analytics.pipeline.backfill import BackfillOptions
from scenario_analytics.pipeline.backfill import backfill as backfill_job
from scenario_analytics.pipeline.stages import LoadResult, RunOptions, check_reject_ratio
from scenario_analytics.pipeline.stages import run as run_job
from scenario_analytics.pipeline.stages import validate as validate_exports
from scenario_analytics.publish.store import require_store
from scenario_analytics.serve.query import Answer, SnapshotNotFound, SnapshotQuery, error_body
from scenario_analytics.serve.requests import utc_today
from scenario_analytics.settings import JobConfig, check_store_and_exports, load_job

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "terminal_width": 100}


def log(message: str) -> None:
    click.echo(f"scenario-analytics: {message}", err=True)


def handle_errors(func: F) -> F:
    """One place that turns exceptions into `error: what — what next` and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return func(*args, **kwargs)
        except AnalyticsError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"scenario-analytics: error: {exc}", err=True)
            sys.exit(int(exc.exit_code))
        except OSError as exc:
            if debug:
                traceback.print_exc()
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(
                f"scenario-analytics: error: {exc.strerror or exc}{where} — check "
                "the path, its permissions and free space, then run again",
                err=True,
            )
            sys.exit(int(ExitCode.FAILURE))
        except duckdb.Error as exc:
            # DuckDB's own I/O errors (a full disk under the store's ledger or spill files).
            if debug:
                traceback.print_exc()
            what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            click.echo(
                f"scenario-analytics: error: {what} — check free space and permissions, then "
                "run again (--debug shows the traceback)",
                err=True,
            )
            sys.exit(int(ExitCode.FAILURE))

    return wrapper  # type: ignore[return-value]


def parse_day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from None


def yesterday() -> date:
    return utc_today() - timedelta(days=1)


exports_option = click.option(
    "--exports",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder holding the platform's exports (overrides the job file).",
)
snapshots_option = click.option(
    "--snapshots",
    type=click.Path(path_type=Path, file_okay=False),
    help="Snapshot store folder (overrides the job file).",
)
job_option = click.option(
    "--job",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Job file (TOML) with paths, engine settings and the materialized filter set.",
)
ratio_option = click.option(
    "--max-reject-ratio",
    type=click.FloatRange(0, 1),
    default=None,
    help="Largest share of rejected session rows allowed before nothing is published "
    "(exit 4). Default: the job file's, else 0.01.",
)
keep_option = click.option(
    "--keep",
    type=click.IntRange(min=1),
    default=None,
    help="Keep the newest N snapshots and prune older ones (never the one latest.json "
    "names). Default: the job file's keep_snapshots, else keep all.",
)
full_refresh_option = click.option(
    "--full-refresh",
    is_flag=True,
    help="Parse every export file again and rebuild the store's ledger instead of reusing "
    "the rows of unchanged files.",
)
log_format_option = click.option(
    "--log-format",
    type=click.Choice(["auto", "plain", "json"]),
    default="auto",
    show_default=True,
    help="Progress and logs on stderr: auto is a progress bar on a terminal and plain lines "
    "elsewhere; json is one JSON object per event.",
)


@contextmanager
def reporter(log_format: str) -> Iterator[Report]:
    """The renderer of the job's events, on stderr (stdout is data)."""
    stream = sys.stderr  # looked up now: test runners swap it
    if log_format == "json":
        yield JsonLog(stream)
    elif log_format == "auto" and stream.isatty():
        terminal = TerminalProgress(stream)
        try:
            yield terminal
        finally:
            terminal.close()
    else:
        yield PlainLog(stream)


@click.group(context_settings=CONTEXT, no_args_is_help=True)
@click.version_option(__version__, "--version", prog_name="scenario-analytics")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
def main(debug: bool) -> None:
    """Turn Exec session exports into scenario analytics snapshots.

    \b
    Example:
      scenario-analytics run --exports data/sample --snapshots snapshots --as-of 2026-11-26
      scenario-analytics query --snapshots snapshots procurement-discovery
    """


def _job(job_file: Path | None) -> JobConfig:
    return load_job(job_file) if job_file else JobConfig()


def _required(value: Path | None, option: str) -> Path:
    if value is None:
        raise InvalidUsageError(f"{option} is required", f"pass {option} DIR or set it in --job")
    return value


def _job_settings(
    job: Path | None,
    exports: Path | None,
    snapshots: Path | None,
    max_reject_ratio: float | None,
    full_refresh: bool,
    keep: int | None,
) -> dict[str, Any]:
    """What `run` and `backfill` share: options win over the job file, then defaults."""
    config = _job(job)
    return {
        "exports": _required(exports or config.exports, "--exports"),
        "snapshots": _required(snapshots or config.snapshots, "--snapshots"),
        "max_reject_ratio": (
            max_reject_ratio if max_reject_ratio is not None else config.max_reject_ratio
        ),
        "materialize": config.materialize,
        "engine": EngineSettings(**config.engine.model_dump()),
        "full_refresh": full_refresh,
        "keep": keep if keep is not None else config.keep_snapshots,
    }


@main.command(context_settings=CONTEXT)
@exports_option
@snapshots_option
@click.option(
    "--as-of",
    callback=parse_day,
    help="Snapshot date YYYY-MM-DD (UTC). Default: yesterday, UTC.",
)
@job_option
@ratio_option
@full_refresh_option
@keep_option
@log_format_option
@handle_errors
def run(
    exports: Path | None,
    snapshots: Path | None,
    as_of: date | None,
    job: Path | None,
    max_reject_ratio: float | None,
    full_refresh: bool,
    keep: int | None,
    log_format: str,
) -> None:
    """Build and publish the snapshot of one day.

    Files unchanged since the last run are not parsed again: their validated rows come
    from the store's ledger. Prints the snapshot's path.

    \b
    Example:
      scenario-analytics run --exports /data/exports --snapshots /data/snapshots
      scenario-analytics run --job jobs/sample.toml --as-of 2026-11-26
    """
    settings = _job_settings(job, exports, snapshots, max_reject_ratio, full_refresh, keep)
    options = RunOptions(as_of=as_of or yesterday(), **settings)
    check_store_and_exports(options.exports, options.snapshots)
    with reporter(log_format) as report:
        result = run_job(options, report)
    click.echo(str(result.path))


@main.command(context_settings=CONTEXT)
@exports_option
@snapshots_option
@click.option(
    "--from",
    "start",
    required=True,
    callback=parse_day,
    help="First snapshot date YYYY-MM-DD.",
)
@click.option(
    "--to",
    "end",
    required=True,
    callback=parse_day,
    help="Last snapshot date YYYY-MM-DD (inclusive).",
)
@job_option
@click.option(
    "--force",
    is_flag=True,
    help="Rebuild days whose snapshot is already up to date.",
)
@ratio_option
@full_refresh_option
@keep_option
@log_format_option
@handle_errors
def backfill(
    exports: Path | None,
    snapshots: Path | None,
    start: date,
    end: date,
    job: Path | None,
    force: bool,
    max_reject_ratio: float | None,
    full_refresh: bool,
    keep: int | None,
    log_format: str,
) -> None:
    """Build and publish one snapshot per day of a date range.

    Each day is what `run --as-of` that day gives, from the same exports; the exports are
    loaded once for all days. A day whose snapshot already has the same inputs, SQL, job
    settings and tool version is skipped, so a killed backfill resumes where it stopped.
    latest.json keeps naming the newest date. Prints one line per day: date, published
    or skipped, path.

    \b
    Example:
      scenario-analytics backfill --job jobs/backfill.toml --from 2026-10-01 --to 2026-10-31
      scenario-analytics backfill --exports /data/exports --snapshots /data/snapshots \\
          --from 2026-11-20 --to 2026-11-26 --force
    """
    settings = _job_settings(job, exports, snapshots, max_reject_ratio, full_refresh, keep)
    options = BackfillOptions(start=start, end=end, force=force, **settings)
    check_store_and_exports(options.exports, options.snapshots)
    with reporter(log_format) as report:
        result = backfill_job(options, report)
    for day in result.days:
        click.echo(f"{day.snapshot_date.isoformat()}\t{day.status}\t{day.path}")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@main.command(context_settings=CONTEXT)
@click.option(
    "--snapshots",
    type=click.Path(path_type=Path, file_okay=False),
    help="Snapshot store folder (overrides the job file).",
)
@job_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@handle_errors
def snapshots(snapshots: Path | None, job: Path | None, as_json: bool) -> None:
    """List the store's published snapshots, oldest first.

    Date, when it was made, sessions, scenarios, rejected rows, SQL version (a digest of
    the SQL files) and size on disk; the one latest.json names is marked. Exit 3 if the
    store folder does not exist.

    \b
    Example:
      scenario-analytics snapshots --snapshots /data/snapshots
      scenario-analytics snapshots --job jobs/nightly.toml --json | jq '.[-1]'
    """
    root = _required(snapshots or _job(job).snapshots, "--snapshots")
    if not root.exists():
        raise NotFoundError(
            f"no snapshot store at {root}", "check --snapshots, or run `scenario-analytics run`"
        )
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


# What to do next, per error code of a query answer (stderr only; stdout gets the body).
_QUERY_HINTS = {
    "scenario_not_found": "check the scenario id or slug (both match exactly)",
    "snapshot_not_found": "run `scenario-analytics run` first, or pick a published --as-of date",
}


def _emit(answer: Answer) -> None:
    """The body on stdout; for an error, also one line on stderr."""
    click.echo(answer.body)
    if answer.exit_code != ExitCode.OK:
        code = answer.message.split(":", 1)[0]
        hint = _QUERY_HINTS.get(code, "see `scenario-analytics query --help`")
        log(f"error: {answer.message} — {hint}")


@main.command(context_settings=CONTEXT)
@click.argument("scenario", required=False)
@click.option(
    "--snapshots",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Snapshot store folder.",
)
@click.option(
    "--as-of",
    callback=parse_day,
    help="Snapshot date YYYY-MM-DD. Default: the one latest.json names.",
)
@click.option("--user-ids", help="Comma-separated user ids (unioned with --user-emails).")
@click.option("--user-emails", help="Comma-separated emails (unioned with --user-ids).")
@click.option("--group-ids", help="Comma-separated workspace group ids.")
@click.option("--start-date", help="ISO 8601 date or date-time; sessions on or after it.")
@click.option("--end-date", help="ISO 8601 date or date-time; sessions on or before it.")
@click.option("--exclude-system-users", is_flag=True, help="Drop sessions of @exec.com users.")
@click.option(
    "--requests",
    "requests_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True, allow_dash=True),
    help="File of JSON requests, one per line, answered in order (- for stdin).",
)
@handle_errors
def query(
    scenario: str | None,
    snapshots: Path,
    as_of: date | None,
    user_ids: str | None,
    user_emails: str | None,
    group_ids: str | None,
    start_date: str | None,
    end_date: str | None,
    exclude_system_users: bool,
    requests_file: Path | None,
) -> None:
    """Print a scenario's summary as JSON, from a snapshot alone.

    Prints the API's response body, or its error body.

    SCENARIO is a scenario id or slug. Exit 0, 2 (invalid request) or 3 (not found).

    \b
    Example:
      scenario-analytics query --snapshots snapshots procurement-discovery \\
          --group-ids g1 --start-date 2026-11-01 --exclude-system-users
      scenario-analytics query --snapshots snapshots --requests requests.jsonl
    """
    if (scenario is None) == (requests_file is None):
        raise InvalidUsageError("give either SCENARIO or --requests FILE", "see --help")
    filters = {
        "user_ids": user_ids,
        "user_emails": user_emails,
        "group_ids": group_ids,
        "start_date": start_date,
        "end_date": end_date,
    }
    given = any(v is not None for v in filters.values())
    if requests_file is not None and (exclude_system_users or given):
        raise InvalidUsageError(
            "filter options apply to SCENARIO, not to --requests",
            "put the filters on each line of the requests file",
        )
    try:
        reader = SnapshotQuery(snapshots, as_of)
    except SnapshotNotFound as exc:
        _emit(exc.answer)
        sys.exit(int(exc.answer.exit_code))
    try:
        if requests_file is not None:
            _answer_many(reader, requests_file)
            return
        assert scenario is not None
        params: dict[str, object] = {k: v for k, v in filters.items() if v is not None}
        params["exclude_system_users"] = exclude_system_users
        answer = reader.answer(scenario, params)
        _emit(answer)
        if answer.exit_code != ExitCode.OK:
            sys.exit(int(answer.exit_code))
    finally:
        reader.close()


def _answer_many(reader: SnapshotQuery, requests_file: Path) -> None:
    """One body per non-blank line, in order; a bad line gets an error body and no stop."""
    with click.open_file(str(requests_file), mode="rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            request: object = None
            try:
                # utf-8-sig: a byte order mark is tolerated, as in CSV exports.
                request = json.loads(raw.decode("utf-8-sig"))
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                pass
            scenario = request.get("scenario_id") if isinstance(request, dict) else None
            # Ids may be JSON integers in the exports, so they may be in requests too.
            if isinstance(scenario, int) and not isinstance(scenario, bool):
                scenario = str(scenario)
            if not isinstance(request, dict) or not isinstance(scenario, str):
                message = f"line {number}: not a JSON object with a scenario_id (string or integer)"
                click.echo(error_body("invalid_request", "invalid_parameter", message))
                continue
            params = {k: v for k, v in request.items() if k != "scenario_id"}
            click.echo(reader.answer(scenario, params).body)


def _validation_json(result: LoadResult) -> dict[str, object]:
    entities: dict[str, dict[str, int]] = {}
    for stats in result.files:
        totals = entities.setdefault(
            stats.entity, {"rows_read": 0, "rows_accepted": 0, "rows_rejected": 0}
        )
        totals["rows_read"] += stats.rows_read
        totals["rows_accepted"] += stats.rows_accepted
        totals["rows_rejected"] += stats.rows_rejected
    return {
        "files": [
            {**s.manifest_entry(), "format": s.format, "rejects_by_reason": s.rejects_by_reason}
            for s in result.files
        ],
        "entities": entities,
        "rejects_by_reason": result.rejects_by_reason,
        "ignored_files": result.folder.ignored,
    }


def _print_table(result: LoadResult) -> None:
    width = max([len(s.path) for s in result.files] + [4])
    click.echo(f"{'file':<{width}}  {'entity':<17} {'read':>10} {'accepted':>10} {'rejected':>9}")
    for s in result.files:
        click.echo(
            f"{s.path:<{width}}  {s.entity:<17} {s.rows_read:>10,} {s.rows_accepted:>10,} "
            f"{s.rows_rejected:>9,}"
        )
        for reason, count in s.rejects_by_reason.items():
            click.echo(f"{'':<{width}}    {reason}: {count:,}")
    for rel in result.folder.ignored:
        click.echo(f"{rel:<{width}}  (ignored: matches no entity or format)")


@main.command(context_settings=CONTEXT)
@click.option(
    "--exports",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder holding the platform's exports.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@click.option(
    "--max-reject-ratio",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="Largest share of rejected session rows before exit 4.",
)
@log_format_option
@handle_errors
def validate(exports: Path, as_json: bool, max_reject_ratio: float, log_format: str) -> None:
    """Check an exports folder without publishing anything.

    Rows read, accepted and rejected per file, rejects by reason.

    Exit 0, 1 if a file cannot be read, 4 if too many session rows are rejected.

    \b
    Example:
      scenario-analytics validate --exports data/sample
      scenario-analytics validate --exports data/sample --json | jq .entities
    """
    with reporter(log_format) as report:
        result = validate_exports(exports, report)
    if as_json:
        click.echo(json.dumps(_validation_json(result), indent=2))
    else:
        _print_table(result)
    check_reject_ratio(result, max_reject_ratio)


@main.command(context_settings=CONTEXT)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder to write the exports into (must be empty or missing).",
)
@click.option("--sessions", type=click.IntRange(min=0), required=True, help="Session rows.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "parquet"]),
    default="parquet",
    show_default=True,
    help="File format of the sessions and most entities.",
)
@click.option(
    "--bad-rows",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of extra session rows made to be rejected, across every reason.",
)
@handle_errors
def generate(out: Path, sessions: int, seed: int, fmt: str, bad_rows: float) -> None:
    """Write realistic synthetic exports that `run` accepts.

    Prints what it wrote (files, rows, bad rows by reason) as JSON on stdout.

    \b
    Example:
      scenario-analytics generate --out /tmp/exports --sessions 1000000 --seed 7
    """
    from scenario_analytics.generate import generate_exports

    try:
        report = generate_exports(out, sessions, seed, fmt, bad_rows)  # type: ignore[arg-type]
    except FileExistsError as exc:
        raise InvalidUsageError(
            f"{out} is not empty", "choose a new --out folder or empty it first"
        ) from exc
    click.echo(json.dumps(report.to_json(), indent=2))
    log(f"wrote {report.sessions_written:,} session rows to {out}")


if __name__ == "__main__":
    main()
