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

from scenario_analytics.engine.engines import check_engine
from scenario_analytics.events import Event, Report, ignore
from scenario_analytics.pipeline.runner import Job
from scenario_analytics.pipeline.stages import (
    JobOptions,
    check_as_of,
    files_summary,
    summarized_failure,
)
from scenario_analytics.pipeline.staging import LoadResult, boundary
from scenario_analytics.pipeline.stale import StaleDay, report_stale, stale_days
from scenario_analytics.publish.manifest import Manifest
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
    with Job.leased_by(options, report, "run") as job:
        loaded = job.load(options.as_of)
        earlier = [d for d in job.store.dates() if d < options.as_of]
        stale = stale_days(job.store, earlier, job.fingerprint(), loaded, undigested=False)
        first = options.as_of - timedelta(days=options.restate_days)
        restate = [d for d in stale if d.snapshot_date >= first]
        report_stale(report, [d for d in stale if d not in restate], options.rerun_options())
        published = job.publish_day(options.as_of, started)
        restated = _restate(job, options, restate) if restate else []
        pruned = job.prune([options.as_of, *(d for d, _ in restated)])
    return RunResult(
        options.as_of,
        published.path,
        published.manifest,
        time.monotonic() - started,
        loaded=loaded,
        pruned=pruned,
        restated=restated,
    )


def _restate(job: Job, options: RunOptions, days: list[StaleDay]) -> list[tuple[date, str]]:
    """Rebuild the out-of-date snapshots `days` after the as-of date's is published, as a
    backfill of them would, oldest first. latest.json stays on the newest date."""
    shown = ", ".join(d.snapshot_date.isoformat() for d in days)
    job.report(
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
    job.compress_history()
    done: list[tuple[date, str]] = []
    for n, stale in enumerate(days, start=1):
        day = stale.snapshot_date
        done.append((day, job.publish_day(day).path))
        boundary(
            job.report,
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
