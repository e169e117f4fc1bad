"""`run`: build and publish the snapshot of one as-of date.

prepare (lock, scan) -> load and validate (and find earlier snapshots the exports make
out of date) -> build, summarize, write -> publish -> restate (rebuild the out-of-date
snapshots of the last `restate_days` days, warn of the others) -> prune
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb

from scenario_analytics import interrupts
from scenario_analytics.engine.database import connect
from scenario_analytics.engine.engines import check_engine
from scenario_analytics.events import Event, Report, ignore
from scenario_analytics.ingest.discover import ExportsFolder
from scenario_analytics.pipeline.stages import (
    JobOptions,
    Prepared,
    check_as_of,
    files_summary,
    load_validated,
    make_day,
    open_job_engine,
    prepare,
    prune,
    publish_day,
    release_day,
    staging_removed,
    summarized_failure,
)
from scenario_analytics.pipeline.staging import LoadResult, boundary, compress_history, find_exports
from scenario_analytics.pipeline.stale import StaleDay, report_stale, stale_days
from scenario_analytics.publish.manifest import Manifest
from scenario_analytics.publish.store import Store
from scenario_analytics.settings import (
    JobSettings,
    check_store_and_exports,
)


@dataclass(frozen=True, kw_only=True)
class RunOptions(JobOptions):
    """What a run builds: the snapshot of `as_of` from `exports` into the store
    `snapshots`. Make one with `from_settings` (job file, overrides, defaults)."""

    as_of: date
    # Rebuild, in the same run, the out-of-date snapshots of the `restate_days` days
    # before `as_of` (0: only warn of them).
    restate_days: int = 0

    @classmethod
    def from_settings(
        cls,
        settings: JobSettings,
        as_of: date,
        *,
        full_refresh: bool = False,
        skip_checks: Collection[str] = (),
        allow_partial_day: bool = False,
    ) -> RunOptions:
        """The options of a run from resolved job settings (`JobSettings.resolve`)."""
        fields = JobOptions.fields_of(settings, full_refresh, skip_checks, allow_partial_day)
        return cls(**fields, as_of=as_of, restate_days=settings.restate_days)


@dataclass(frozen=True)
class RunResult:
    """The published snapshot: its date, public path and manifest, the time taken, what
    loading found (`loaded`), the earlier snapshots rebuilt because they were out of date
    (`restated`: date and public path) and the dates retention pruned."""

    snapshot_date: date
    path: str  # the snapshot's folder as people see it (a path or an s3:// URI)
    manifest: Manifest
    seconds: float
    loaded: LoadResult | None = None
    pruned: list[date] = field(default_factory=list)
    restated: list[tuple[date, str]] = field(default_factory=list)

    @property
    def files_parsed(self) -> int:
        return self.loaded.files_parsed if self.loaded else 0

    @property
    def files_reused(self) -> int:
        return self.loaded.files_reused if self.loaded else 0


def run(options: RunOptions, report: Report = ignore) -> RunResult:
    """Build and publish the snapshot of one as-of date; returns where it is.

    Events go to `report` (`events.py`); errors are `AnalyticsError`s carrying their
    exit code. Example:

        from datetime import date, timedelta
        from scenario_analytics import JobSettings, RunOptions, run

        settings = JobSettings.resolve(Path("jobs/sample.toml"))
        result = run(RunOptions.from_settings(settings, date(2026, 11, 26)))
        print(result.path, result.manifest.counts.sessions_in_snapshot)
    """
    check_as_of(options.as_of, options.allow_partial_day)
    check_store_and_exports(options.exports, options.snapshots)
    check_engine(options.engine)
    started = time.monotonic()
    with summarized_failure(report, "run", started) as tracked:
        result = _run(options, tracked, started)
    loaded = result.loaded
    assert loaded is not None
    counts = result.manifest.counts
    files_text, data = files_summary(loaded)
    report(
        Event(
            "run",
            "summary",
            f"summary: {files_text}; {counts.sessions_in_snapshot:,} sessions, "
            f"{counts.scenarios:,} scenarios; snapshot {result.path}"
            + (f"; restated {len(result.restated)} earlier" if result.restated else "")
            + f"; {result.seconds:.1f}s",
            rows=counts.sessions_read,
            seconds=result.seconds,
            snapshot_date=result.snapshot_date,
            data={
                "status": "published",
                **data,
                "sessions": counts.sessions_in_snapshot,
                "scenarios": counts.scenarios,
                "snapshot": str(result.path),
                "restated": [d.isoformat() for d, _ in result.restated],
                "pruned": [d.isoformat() for d in result.pruned],
            },
        )
    )
    return result


def _run(options: RunOptions, report: Report, started: float) -> RunResult:
    # Listed before the lease: a folder that fails discovery creates no store.
    folder = find_exports(options.exports, options.ignore, report, options.storage)
    store = options.open_store()
    try:
        return _run_locked(options, report, started, folder, store)
    finally:
        store.close()
        folder.storage.close()


def _run_locked(
    options: RunOptions, report: Report, started: float, folder: ExportsFolder, store: Store
) -> RunResult:
    with store.lock("run"), staging_removed(store):
        prepared = open_job_engine(options.engine, prepare(store, folder, report), report)
        con = connect(options.engine)
        restated: list[tuple[date, str]] = []
        try:
            loaded = load_validated(con, prepared, options, options.as_of, report)
            fingerprint = prepared.inputs.fingerprint(prepared.plan.all, options.materialize)
            earlier = [d for d in store.dates() if d < options.as_of]
            stale = stale_days(store, earlier, fingerprint, loaded, undigested=False)
            first = options.as_of - timedelta(days=options.restate_days)
            restate = [d for d in stale if d.snapshot_date >= first]
            report_stale(
                report, [d for d in stale if d not in restate], options.exports, options.snapshots
            )
            build, manifest = make_day(
                con, prepared, loaded, options, options.as_of, started, report
            )
            with interrupts.deferred():  # published and said so, or not at all
                public = publish_day(store, build, manifest, started, report)
            if restate:
                restated = _restate(con, prepared, loaded, options, restate, report)
        finally:
            con.close()
            prepared.engine.close()
        protect = [options.as_of, *(d for d, _ in restated)]
        pruned = prune(store, options.keep, report, protect=protect)
    return RunResult(
        options.as_of,
        public,
        manifest,
        time.monotonic() - started,
        loaded=loaded,
        pruned=pruned,
        restated=restated,
    )


def _restate(
    con: duckdb.DuckDBPyConnection,
    prepared: Prepared,
    loaded: LoadResult,
    options: RunOptions,
    days: list[StaleDay],
    report: Report,
) -> list[tuple[date, str]]:
    """Rebuild the out-of-date snapshots `days` after the as-of date's is published, as a
    backfill of them would (`make_day` for each), oldest first. latest.json stays on the
    newest date."""
    shown = ", ".join(d.snapshot_date.isoformat() for d in days)
    report(
        Event(
            "restate",
            "start",
            f"rebuilding {len(days)} earlier snapshot{'s' if len(days) > 1 else ''} the "
            f"exports make out of date (restate_days = {options.restate_days}): {shown}",
            done=0,
            total=len(days),
            unit="days",
            data={"restate": [d.snapshot_date.isoformat() for d in days]},
        )
    )
    release_day(con, prepared.plan, prepared.engine)
    compress_history(con, prepared.engine)
    done: list[tuple[date, str]] = []
    for n, stale in enumerate(days, start=1):
        began = time.monotonic()
        day = stale.snapshot_date
        build, manifest = make_day(con, prepared, loaded, options, day, began, report)
        release_day(con, prepared.plan, prepared.engine)
        with interrupts.deferred():
            done.append((day, publish_day(prepared.store, build, manifest, began, report)))
        boundary(
            report,
            Event(
                "restate",
                "progress",
                f"{day.isoformat()} rebuilt ({n}/{len(days)} days)",
                done=n,
                total=len(days),
                unit="days",
                snapshot_date=day,
            ),
            "day-published",
        )
    return done
