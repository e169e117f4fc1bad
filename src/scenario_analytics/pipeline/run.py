"""`run`: build and publish the snapshot of one as-of date.

prepare (lock, scan) -> load and validate -> build, summarize, write -> publish -> prune
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from scenario_analytics.engine.database import connect
from scenario_analytics.events import Event, Report, ignore
from scenario_analytics.pipeline.stages import (
    JobOptions,
    LoadResult,
    files_summary,
    load_validated,
    make_day,
    prepare,
    prune,
    publish_day,
    summarized_failure,
)
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

    @classmethod
    def from_settings(
        cls, settings: JobSettings, as_of: date, *, full_refresh: bool = False
    ) -> RunOptions:
        """The options of a run from resolved job settings (`JobSettings.resolve`)."""
        return cls(**JobOptions.fields_of(settings, full_refresh), as_of=as_of)


@dataclass(frozen=True)
class RunResult:
    """The published snapshot: its date, public path and manifest, the time taken, what
    loading found (`loaded`), and the dates retention pruned."""

    snapshot_date: date
    path: Path
    manifest: Manifest
    seconds: float
    loaded: LoadResult | None = None
    pruned: list[date] = field(default_factory=list)

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

        from datetime import date
        from scenario_analytics import JobSettings, RunOptions, run

        settings = JobSettings.resolve(Path("jobs/sample.toml"))
        result = run(RunOptions.from_settings(settings, date(2026, 11, 26)))
        print(result.path, result.manifest.counts.sessions_in_snapshot)
    """
    check_store_and_exports(options.exports, options.snapshots)
    started = time.monotonic()
    with summarized_failure(report, "run", started):
        result = _run(options, report, started)
    loaded = result.loaded
    assert loaded is not None
    counts = result.manifest.counts
    files_text, data = files_summary(loaded)
    report(
        Event(
            "run",
            "summary",
            f"summary: {files_text}; {counts.sessions_in_snapshot:,} sessions, "
            f"{counts.scenarios:,} scenarios; snapshot {result.path}; {result.seconds:.1f}s",
            rows=counts.sessions_read,
            seconds=result.seconds,
            snapshot_date=result.snapshot_date,
            data={
                "status": "published",
                **data,
                "sessions": counts.sessions_in_snapshot,
                "scenarios": counts.scenarios,
                "snapshot": str(result.path),
                "pruned": [d.isoformat() for d in result.pruned],
            },
        )
    )
    return result


def _run(options: RunOptions, report: Report, started: float) -> RunResult:
    store = Store(options.snapshots)
    with store.lock():
        prepared = prepare(store, options.exports, report)
        con = connect(options.engine)
        try:
            loaded = load_validated(
                con, prepared, options.full_refresh, options.max_reject_ratio, report
            )
            staging, manifest = make_day(
                con, prepared, loaded, options.materialize, options.as_of, started, report
            )
        finally:
            con.close()
        public = publish_day(store, staging, options.as_of, started, report)
        pruned = prune(store, options.keep, report)
    return RunResult(
        options.as_of,
        public,
        manifest,
        time.monotonic() - started,
        loaded=loaded,
        pruned=pruned,
    )
