"""`run`, `backfill` and `validate`: the commands that read exports."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import click

from scenario_analytics import filters
from scenario_analytics.cli.hints import given_options
from scenario_analytics.cli.options import (
    CONTEXT,
    LOCATION,
    bundle,
    debug_option,
    engine_option,
    exports_option,
    full_refresh_option,
    job_option,
    json_option,
    keep_option,
    log_format_option,
    option,
    parse_day,
    partial_day_option,
    ratio_option,
    skip_check_option,
    snapshots_option,
    spark_master_option,
)
from scenario_analytics.cli.output import handle_errors, interruptible, reporter
from scenario_analytics.locations import Location
from scenario_analytics.pipeline.backfill import BackfillOptions, DayResult, backfill
from scenario_analytics.pipeline.run import RunOptions, run
from scenario_analytics.pipeline.staging import LoadResult
from scenario_analytics.pipeline.validate import check_reject_ratio, require_passed, validate
from scenario_analytics.settings import JobSettings

# What `run` and `backfill` share, in the order their help lists it.
publishing_options = bundle(
    exports_option,
    snapshots_option,
    job_option,
    ratio_option,
    skip_check_option,
    full_refresh_option,
    keep_option,
    partial_day_option,
    engine_option,
    spark_master_option,
)


def _publishing_settings(
    job: Path | None,
    exports: Location | None,
    snapshots: Location | None,
    max_reject_ratio: float | None,
    keep: int | None,
    engine_name: str | None,
    spark_master: str | None,
    **more: object,
) -> JobSettings:
    """The job settings of `run` and `backfill`: their shared options (and `more` of one of
    them) over the job file."""
    return JobSettings.resolve(
        job,
        exports=exports,
        snapshots=snapshots,
        max_reject_ratio=max_reject_ratio,
        keep_snapshots=keep,
        engine_name=engine_name,
        spark_master=spark_master,
        **more,
    )


def json_line(status: str, day: date, path: str, **extra: object) -> str:
    """A snapshot published or skipped, as stdout says it with --log-format json: one JSON
    object a line, like the log on stderr, so that `>>log 2>&1` is all JSON."""
    body = {"status": status, "snapshot_date": day.isoformat(), "path": str(path), **extra}
    return json.dumps(body, ensure_ascii=False)


@click.command(context_settings=CONTEXT)
@publishing_options
@option(
    "--as-of",
    callback=parse_day,
    help="Snapshot date YYYY-MM-DD (UTC). Default: yesterday, UTC.",
)
@option(
    "--restate-days",
    type=click.IntRange(0, 3660),
    default=None,
    help="Also rebuild the published snapshots of the N days before the as-of date that "
    "the exports make out of date (late exports); older ones are only warned of. "
    "Default: the job file's restate_days, else 0.",
)
@log_format_option
@debug_option
@handle_errors
@interruptible
def run_command(
    exports: Location | None,
    snapshots: Location | None,
    job: Path | None,
    max_reject_ratio: float | None,
    skip_checks: tuple[str, ...],
    full_refresh: bool,
    keep: int | None,
    allow_partial_day: bool,
    engine_name: str | None,
    spark_master: str | None,
    as_of: date | None,
    restate_days: int | None,
    log_format: str,
) -> None:
    """Build and publish the snapshot of one day.

    Files unchanged since the last run are not parsed again: their validated rows come
    from the store's ledger. Earlier snapshots the exports make out of date (exports of
    past days that arrived late) are warned of, and with --restate-days N those of the
    last N days are rebuilt after the day's is published. Prints the snapshot's path
    (with --log-format json, a JSON object with its status, date, path and the dates it
    restated).

    \b
    Example:
      scenario-analytics run --exports /data/exports --snapshots /data/snapshots
      scenario-analytics run --job jobs/sample.toml --as-of 2026-11-26
      scenario-analytics run --job jobs/nightly.toml --restate-days 7
      scenario-analytics run --job jobs/sample.toml --as-of 2026-11-26 --engine spark \\
        --spark-master 'local[2]'
      SCENARIO_ANALYTICS_JOB=jobs/nightly.toml scenario-analytics run
    """
    settings = _publishing_settings(
        job,
        exports,
        snapshots,
        max_reject_ratio,
        keep,
        engine_name,
        spark_master,
        restate_days=restate_days,
    )
    options = RunOptions.from_settings(
        settings,
        as_of or filters.utc_yesterday(),
        full_refresh=full_refresh,
        skip_checks=skip_checks,
        allow_partial_day=allow_partial_day,
    )
    options = dataclasses.replace(options, rerun=tuple(given_options()))
    with reporter(log_format) as report:
        result = run(options, report)
    if log_format == "json":
        restated = [{"snapshot_date": d.isoformat(), "path": str(p)} for d, p in result.restated]
        click.echo(json_line("published", result.snapshot_date, result.path, restated=restated))
    else:
        click.echo(str(result.path))


@click.command(context_settings=CONTEXT)
@publishing_options
@option(
    "--from", "start", required=True, callback=parse_day, help="First snapshot date YYYY-MM-DD."
)
@option(
    "--to",
    "end",
    required=True,
    callback=parse_day,
    help="Last snapshot date YYYY-MM-DD (inclusive).",
)
@option("--force", is_flag=True, help="Rebuild days whose snapshot is already up to date.")
@option(
    "--stale",
    is_flag=True,
    help="Only rebuild the published days of the range that are out of date (what "
    "`snapshots stale` lists); days without a snapshot are left alone.",
)
@log_format_option
@debug_option
@handle_errors
@interruptible
def backfill_command(
    exports: Location | None,
    snapshots: Location | None,
    job: Path | None,
    max_reject_ratio: float | None,
    skip_checks: tuple[str, ...],
    full_refresh: bool,
    keep: int | None,
    allow_partial_day: bool,
    engine_name: str | None,
    spark_master: str | None,
    start: date,
    end: date,
    force: bool,
    stale: bool,
    log_format: str,
) -> None:
    """Build and publish one snapshot per day of a date range.

    Each day is what `run --as-of` that day gives, from the same exports; the exports are
    loaded once for all days. A day whose snapshot is up to date is skipped: the same
    inputs, SQL, job settings and tool version (decided without loading), or else the same
    data digest (the sessions up to that day and the directory rows it uses, as the loaded
    exports have them). So a killed backfill resumes where it stopped, and export files
    with only later sessions leave earlier days alone.
    latest.json keeps naming the newest date. Prints one line per day as it is published
    or skipped: date, published or skipped, path (with --log-format json, a JSON object).

    \b
    Example:
      scenario-analytics backfill --job jobs/backfill.toml --from 2026-10-01 --to 2026-10-31
      scenario-analytics backfill --exports /data/exports --snapshots /data/snapshots \\
          --from 2026-11-20 --to 2026-11-26 --force
      scenario-analytics backfill --job jobs/nightly.toml --from 2026-10-01 \\
          --to 2026-11-26 --stale
    """
    settings = _publishing_settings(
        job, exports, snapshots, max_reject_ratio, keep, engine_name, spark_master
    )
    options = BackfillOptions.from_settings(
        settings,
        start,
        end,
        force=force,
        stale=stale,
        full_refresh=full_refresh,
        skip_checks=skip_checks,
        allow_partial_day=allow_partial_day,
    )

    # Each day as soon as it is done: a backfill that fails or is interrupted has printed
    # the days it published.
    def print_day(day: DayResult) -> None:
        if log_format == "json":
            click.echo(json_line(day.status, day.snapshot_date, day.path))
        else:
            click.echo(f"{day.snapshot_date.isoformat()}\t{day.status}\t{day.path}")

    with reporter(log_format) as report:
        backfill(options, report, on_day=print_day)


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
    if result.checks:
        day = result.as_of.isoformat() if result.as_of else ""
        click.echo(f"\nchecks for {day}:")
        for check in result.checks:
            click.echo(f"  {check.name:<15} {check.status:<8} {check.detail}")


@click.command(context_settings=CONTEXT)
@exports_option
@job_option
@option(
    "--snapshots",
    type=LOCATION,
    help="Snapshot store to compare with (only read), for the checks against history: a "
    "folder or s3://bucket/prefix. Default: the job file's snapshots.",
)
@option(
    "--as-of",
    callback=parse_day,
    help="The date the checks judge the exports for, YYYY-MM-DD. Default: yesterday, UTC.",
)
@skip_check_option
@option(
    "--rejects-out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write every rejected row (entity, file, position, reason, raw record) to this file: "
    "Parquet or CSV, by its extension.",
)
@json_option
@ratio_option
@log_format_option
@debug_option
@handle_errors
@interruptible
def validate_command(
    exports: Location | None,
    job: Path | None,
    snapshots: Location | None,
    as_of: date | None,
    skip_checks: tuple[str, ...],
    rejects_out: Path | None,
    as_json: bool,
    max_reject_ratio: float | None,
    log_format: str,
) -> None:
    """Check an exports folder without publishing anything.

    Rows read, accepted and rejected per file, rejects by reason, and the completeness
    checks for the as-of date (those against history with --snapshots): a table on
    stdout, or with --json a JSON document (with --log-format json, that document on
    one line, so that stdout and stderr together are JSON lines).

    Exit 0; 1 if a file cannot be read; 4 if files would be left out, too many session
    rows are rejected, or a check fails.

    \b
    Example:
      scenario-analytics validate --exports data/sample
      scenario-analytics validate --job jobs/nightly.toml --json | jq .checks
      scenario-analytics validate --exports /data/exports --rejects-out rejects.csv
    """
    settings = JobSettings.resolve(
        job, exports=exports, snapshots=snapshots, max_reject_ratio=max_reject_ratio
    )
    with reporter(log_format) as report:
        result = validate(
            settings.exports_folder(),
            report,
            settings.engine,
            ignore_globs=settings.ignore,
            as_of=as_of,
            snapshots=settings.snapshots,
            checks=settings.checks,
            skip_checks=skip_checks,
            rejects_out=rejects_out,
            storage=settings.storage,
        )
    if log_format == "json":
        # One JSON object on one line, like the log: `>>log 2>&1` stays all JSON lines.
        click.echo(json.dumps(result.as_json(), ensure_ascii=False))
    elif as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        _print_table(result)
    check_reject_ratio(result, settings.max_reject_ratio)
    assert result.as_of is not None
    require_passed(result.checks, result.as_of)
