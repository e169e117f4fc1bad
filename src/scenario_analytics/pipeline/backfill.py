"""Backfills: one snapshot per day of a date range, sharing the work that days share.

Each day is what `run --as-of` that day gives (`run.py`, through the same stages of
`staging.py` and `stages.py`): the exports are scanned,
loaded and validated once (through the store's ledger), then each day runs only the
as-of SQL, writes and publishes. A day is skipped unless `force` when it is up to
date: its published manifest has the same fingerprint (inputs, SQL, settings, tool:
decided before loading anything), or else, once the exports are loaded, the same
`data_digest` (what that day uses: the sessions up to its end, the directory rows it
takes, SQL, tool, settings). So a killed backfill resumes where it stopped, and a new
export file whose sessions are all later than a day leaves that day alone. `stale`
builds only the published days that are out of date.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, timedelta

from scenario_analytics.engine.engines import check_engine
from scenario_analytics.errors import InvalidUsageError
from scenario_analytics.events import Event, Report, ignore
from scenario_analytics.pipeline.runner import Job, Published
from scenario_analytics.pipeline.stages import (
    JobOptions,
    check_as_of,
    files_summary,
    summarized_failure,
)
from scenario_analytics.pipeline.staging import (
    Inputs,
    LoadResult,
    boundary,
    day_data_digest,
)
from scenario_analytics.publish.manifest import Manifest
from scenario_analytics.settings import (
    JobSettings,
    check_store_and_exports,
)


@dataclass(frozen=True, kw_only=True)
class BackfillOptions(JobOptions):
    """What a backfill builds: `start` to `end` (inclusive) from `exports` into `snapshots`;
    `force` rebuilds days that are up to date. Make one with `from_settings`."""

    start: date
    end: date
    force: bool = False  # rebuild days that are up to date
    stale: bool = False  # only rebuild published days that are out of date

    @classmethod
    def from_settings(
        cls,
        settings: JobSettings,
        start: date,
        end: date,
        *,
        force: bool = False,
        stale: bool = False,
        full_refresh: bool = False,
        skip_checks: Collection[str] = (),
        allow_partial_day: bool = False,
    ) -> BackfillOptions:
        """The options of a backfill from resolved job settings (`JobSettings.resolve`)."""
        fields = JobOptions.fields_of(settings, full_refresh, skip_checks, allow_partial_day)
        return cls(**fields, start=start, end=end, force=force, stale=stale)


@dataclass(frozen=True)
class DayResult:
    """One day of a backfill: published or skipped (up to date), where, and its figures."""

    snapshot_date: date
    status: str  # "published" or "skipped" (already up to date)
    path: str  # the snapshot's folder as people see it
    seconds: float = 0.0
    sessions: int = 0  # in the snapshot
    scenarios: int = 0

    @classmethod
    def of(
        cls, day: date, status: str, path: str, manifest: Manifest, seconds: float = 0
    ) -> DayResult:
        counts = manifest.counts
        return cls(day, status, path, seconds, counts.sessions_in_snapshot, counts.scenarios)


@dataclass(frozen=True)
class BackfillResult:
    """Every day of the range in order, the time taken, the scanned inputs and, when any
    day was built, what loading found (`loaded`)."""

    days: list[DayResult]
    seconds: float
    inputs: Inputs
    loaded: LoadResult | None = None  # None when every day was up to date
    pruned: list[date] = field(default_factory=list)

    @property
    def published(self) -> list[DayResult]:
        return [d for d in self.days if d.status == "published"]

    @property
    def skipped(self) -> list[DayResult]:
        return [d for d in self.days if d.status == "skipped"]


def backfill_days(start: date, end: date) -> list[date]:
    if start > end:
        raise InvalidUsageError(
            f"--from {start.isoformat()} is after --to {end.isoformat()}",
            "give the earlier date as --from",
        )
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def backfill(
    options: BackfillOptions,
    report: Report = ignore,
    on_day: Callable[[DayResult], None] | None = None,
) -> BackfillResult:
    """One snapshot per day from `start` to `end`, each what `run --as-of` gives that day.

    Loading and the as-of independent SQL run once; each day then runs only the as-of
    SQL, writes and publishes. A day whose published manifest has the same fingerprint
    (inputs, SQL, settings, tool) is skipped unless `force`, so a killed backfill resumes
    where it stopped. `on_day` gets each day's result in date order, as soon as the day
    and those before it are published or skipped (the command prints a line each), so
    what a backfill that fails or is interrupted published has been told. Example:

        from scenario_analytics import BackfillOptions, JobSettings, backfill

        settings = JobSettings.resolve(Path("jobs/sample.toml"))
        options = BackfillOptions.from_settings(settings, date(2026, 11, 20), date(2026, 11, 26))
        for day in backfill(options).days:
            print(day.snapshot_date, day.status, day.path)
    """
    backfill_days(options.start, options.end)  # --from after --to: exit 2 first
    check_as_of(options.end, options.allow_partial_day, "--to")
    check_store_and_exports(options.exports, options.snapshots)
    check_engine(options.engine)
    started = time.monotonic()
    with summarized_failure(report, "backfill", started) as tracked:
        result = _backfill(options, tracked, started, _InOrder(on_day))
    loaded = result.loaded
    newest = max(result.days, key=lambda d: d.snapshot_date, default=None)
    data: dict[str, object] = {
        "status": "done",
        "days": len(result.days),
        "days_published": len(result.published),
        "days_skipped": len(result.skipped),
        "snapshot": str(newest.path) if newest else None,
        "sessions": newest.sessions if newest else 0,
        "scenarios": newest.scenarios if newest else 0,
        "pruned": [d.isoformat() for d in result.pruned],
    }
    text = (
        f"summary: {len(result.days)} day{'' if len(result.days) == 1 else 's'} "
        f"({len(result.published)} published, "
        f"{len(result.skipped)} skipped as up to date)"
    )
    rows: int | None = None
    if loaded is None:
        files, ignored = len(result.inputs.files), len(result.inputs.folder.ignored)
        text += f"; {files} files (0 read: nothing to build), {ignored} ignored"
        data.update(files=files, files_read=0, files_skipped=files, files_ignored=ignored)
    else:
        rows = loaded.entity_totals("sessions")[0]
        files_text, files_data = files_summary(loaded)
        text += f"; {files_text}"
        data.update(files_data)
    if newest is not None:
        text += (
            # The range's last day: the store may hold newer ones.
            f"; last day of the range {newest.path} ({newest.sessions:,} sessions, "
            f"{newest.scenarios:,} scenarios)"
        )
    text += f"; {result.seconds:.1f}s"
    report(Event("backfill", "summary", text, rows=rows, seconds=result.seconds, data=data))
    return result


class _InOrder:
    """Passes day results on in date order: a day once every earlier day has one."""

    def __init__(self, on_day: Callable[[DayResult], None] | None) -> None:
        self.on_day = on_day
        self.waiting: list[date] = []
        self.known: dict[date, DayResult] = {}

    def expect(self, days: list[date]) -> None:
        self.waiting = sorted(days)

    def __call__(self, result: DayResult) -> None:
        self.known[result.snapshot_date] = result
        while self.waiting and self.waiting[0] in self.known:
            day = self.waiting.pop(0)
            if self.on_day is not None:
                self.on_day(self.known[day])


def _backfill(
    options: BackfillOptions, report: Report, started: float, on_day: _InOrder
) -> BackfillResult:
    days = backfill_days(options.start, options.end)
    results: dict[date, DayResult] = {}
    with Job.leased_by(options, report, "backfill") as job:
        store = job.store
        if options.stale:
            published = set(store.dates())
            for day in days:
                if day not in published:
                    report(
                        Event(
                            "skip",
                            "info",
                            f"{day.isoformat()}: not published, left alone (--stale "
                            "rebuilds only published days)",
                            snapshot_date=day,
                        )
                    )
            days = [d for d in days if d in published]
        on_day.expect(days)
        fingerprint = job.fingerprint()
        manifests = {day: store.manifest(day) for day in days}

        def skip(day: date, manifest: Manifest, why: str) -> None:
            results[day] = DayResult.of(day, "skipped", store.public(day), manifest)
            report(
                Event(
                    "skip",
                    "info",
                    f"{day.isoformat()}: up to date, skipped ({why}--force rebuilds it)",
                    snapshot_date=day,
                )
            )
            on_day(results[day])

        todo: list[date] = []
        for day in days:
            manifest = manifests[day]
            if not options.force and manifest is not None:
                if manifest.fingerprint == fingerprint:
                    skip(day, manifest, "")
                    continue
            todo.append(day)
        if todo:
            built = _backfill_days(job, options, fingerprint, manifests, todo, skip, on_day)
            results.update((d.snapshot_date, d) for d in built)
        # Every day of the range is protected, published or up to date: the paths the
        # backfill prints must exist, and a resumed backfill must end as a whole one.
        pruned = job.prune(days)
    return BackfillResult(
        [results[d] for d in days], time.monotonic() - started, job.inputs, job.loaded, pruned
    )


def _backfill_days(
    job: Job,
    options: BackfillOptions,
    fingerprint: dict[str, str],
    manifests: dict[date, Manifest | None],
    todo: list[date],
    skip: Callable[[date, Manifest, str], None],
    on_day: Callable[[DayResult], None],
) -> list[DayResult]:
    """Load once, skip the days whose data digest still matches, build the others."""
    report = job.report
    done: list[DayResult] = []
    loading = time.monotonic()
    loaded = job.load(todo[0])
    stale = []
    for day in todo:
        manifest = manifests[day]
        if (
            not options.force
            and manifest is not None
            and manifest.data_digest == day_data_digest(loaded, fingerprint, day)
        ):
            skip(day, manifest, "the data it uses is unchanged; ")
        else:
            stale.append(day)
    todo = stale
    if not todo:
        return done
    if len(todo) > 1:
        job.compress_history()
    shared = time.monotonic()
    report(
        Event(
            "backfill",
            "start",
            f"building {len(todo)} day{'s' if len(todo) > 1 else ''}, "
            f"{todo[0].isoformat()} to {todo[-1].isoformat()}",
            done=0,
            total=len(todo),
            unit="days",
        )
    )

    def told(published: Published) -> None:
        done.append(DayResult.of(published.snapshot_date, "published", published.path,
                                 published.manifest, published.seconds))  # fmt: skip
        on_day(done[-1])

    rows = 0
    for n, day in enumerate(todo, start=1):
        # A day's manifest counts the shared loading once, then its own time.
        published = job.publish_day(day, time.monotonic() - (shared - loading), told)
        manifest = published.manifest
        rows += manifest.counts.sessions_in_snapshot
        boundary(
            report,
            Event(
                "backfill",
                "progress",
                f"{day.isoformat()} done ({n}/{len(todo)} days), "
                f"{manifest.counts.sessions_in_snapshot:,} sessions",
                rows=rows,
                done=n,
                total=len(todo),
                unit="days",
                snapshot_date=day,
            ),
            "day-published",
        )
    built = time.monotonic() - shared
    report(
        Event(
            "backfill",
            "done",
            f"built {len(todo)} day{'s' if len(todo) > 1 else ''} in {built:.1f}s "
            f"({built / len(todo):.1f}s a day, after {shared - loading:.1f}s of loading)",
            rows=rows,
            seconds=built,
            data={"days": len(todo), "loading_seconds": round(shared - loading, 3)},
        )
    )
    return done
