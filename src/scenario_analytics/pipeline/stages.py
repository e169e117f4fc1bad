"""The stages that `run` and `backfill` share after the exports are staged
(`staging.py`: scan, load, stage, validate), in the order data flows:

    run       staging -> check -> build -> summarize -> write -> publish
    backfill  staging, once (after skipping up-to-date days);
              then per day: check -> build -> summarize -> write -> publish

`check` compares the day with history (the completeness checks); `build` and
`summarize` run the SQL of one as-of date; `write` fills a local folder (a `Build`);
`publish` uploads and commits it (`publish/store.py`). Also what every command shares
around them: its options, the refusal that leaves a quarantine, the summary of a
failure. The resources a job holds while these run, and their order, are `runner.py`'s.
Each stage ends with an event (`events.py`) and a fault checkpoint (`faults.py`).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NoReturn

import duckdb

from scenario_analytics import filters, interrupts
from scenario_analytics.engine.engines import DUCKDB, SqlEngine
from scenario_analytics.engine.sql_files import SqlFile, SqlPlan
from scenario_analytics.errors import (
    DataQualityError,
    Interrupted,
    InvalidUsageError,
)
from scenario_analytics.events import Event, Report, ignore
from scenario_analytics.faults import checkpoint
from scenario_analytics.filters import as_of_end
from scenario_analytics.ingest.entities import ENTITIES
from scenario_analytics.ingest.ledger import Ledger
from scenario_analytics.locations import Location
from scenario_analytics.pipeline.checks import evaluate_checks, require_passed
from scenario_analytics.pipeline.staging import (
    Inputs,
    LoadResult,
    boundary,
    check_reject_ratio,
    day_data_digest,
    release_sessions,
    report_validated,
    run_sql,
    stage_exports,
)
from scenario_analytics.publish.fingerprint import (
    sql_version,
    staging_digest,
)
from scenario_analytics.publish.manifest import (
    CheckResult,
    Counts,
    Manifest,
    SqlFileEntry,
)
from scenario_analytics.publish.materialize import create_filters_table, materialized_requests
from scenario_analytics.publish.quarantine import quarantine
from scenario_analytics.publish.snapshot import (
    SESSIONS_FOLDER,
    write_manifest,
    write_summary_bodies,
    write_tables,
)
from scenario_analytics.publish.store import Build, Store
from scenario_analytics.settings import (
    CHECKS,
    ChecksSettings,
    EngineSettings,
    JobSettings,
    MaterializeSettings,
    StorageSettings,
)
from scenario_analytics.version import __version__


def release_day(con: duckdb.DuckDBPyConnection, plan: SqlPlan, engine: SqlEngine = DUCKDB) -> None:
    """Drop the tables one as-of date's SQL made, once its snapshot is written.

    Otherwise the next day's `CREATE OR REPLACE` builds its tables while these still hold
    memory (~0.6 GB at 10M sessions), and under the limit one of them spills.
    """
    engine.release(con, [t for f in [*plan.as_of, *plan.summarize] for t in f.creates])


# -- build, summarize, write: one as-of date ------------------------------------------------


def summarize(
    con: duckdb.DuckDBPyConnection,
    sql_files: list[SqlFile],
    spec: MaterializeSettings,
    as_of: date,
    report: Report = ignore,
    engine: SqlEngine = DUCKDB,
) -> int:
    """Run the summarize-phase SQL over the materialized filter set; returns its size."""
    group_ids = [
        str(g)
        for (g,) in con.execute(
            "SELECT group_id FROM groups UNION SELECT group_id FROM group_memberships"
        ).fetchall()
    ]
    requests = materialized_requests(spec, as_of, group_ids)
    create_filters_table(con, requests)
    summarize_files = [f for f in sql_files if f.phase == "summarize"]
    run_sql(con, summarize_files, {}, "summarize", report, as_of, engine)
    return len(requests)


def build_day(
    con: duckdb.DuckDBPyConnection,
    plan: SqlPlan,
    spec: MaterializeSettings,
    as_of: date,
    report: Report = ignore,
    engine: SqlEngine = DUCKDB,
) -> int:
    """The as-of part of the build phase and the summaries; returns the filters per scenario."""
    started = time.monotonic()
    params: dict[str, object] = {"as_of_end": as_of_end(as_of)}
    run_sql(con, plan.as_of, params, "build", report, as_of, engine)
    boundary(
        report,
        Event("build", "done", seconds=time.monotonic() - started, snapshot_date=as_of),
        "built",
    )
    started = time.monotonic()
    filters = summarize(con, plan.summarize, spec, as_of, report, engine)
    boundary(
        report,
        Event(
            "summarize",
            "done",
            f"computed {filters} materialized summaries per scenario for {as_of.isoformat()}",
            seconds=time.monotonic() - started,
            snapshot_date=as_of,
            data={"filters_per_scenario": filters},
        ),
        "summarized",
    )
    return filters


def _counts(con: duckdb.DuckDBPyConnection, result: LoadResult, as_of: date) -> Counts:
    read, accepted, rejected = result.entity_totals("sessions")
    row = con.execute(
        """SELECT (SELECT coalesce(sum(sessions), 0) FROM sessions_per_day),
                  (SELECT coalesce(sum(sessions), 0) FROM sessions_per_day WHERE day <= $day),
                  (SELECT count(*) FROM snapshot_scenarios),
                  (SELECT count(*) FROM users)""",
        {"day": as_of},
    ).fetchone()
    assert row is not None
    unique, in_snapshot, scenarios, users = (int(v) for v in row)
    return Counts(
        sessions_read=read,
        sessions_accepted=accepted,
        sessions_rejected=rejected,
        sessions_duplicate=accepted - unique,
        sessions_in_snapshot=in_snapshot,
        scenarios=scenarios,
        users=users,
    )


def write_day(
    con: duckdb.DuckDBPyConnection,
    store: Store,
    loaded: LoadResult,
    plan: SqlPlan,
    as_of: date,
    filters: int,
    fingerprint: dict[str, str],
    started: float,
    report: Report = ignore,
    checks: list[CheckResult] | None = None,
    digest: str | None = None,
) -> tuple[Build, Manifest]:
    """Write one date's snapshot into a local folder (a `Build` of the store); returns it
    and the manifest."""
    began = time.monotonic()
    build = store.begin(as_of)
    staging = build.folder
    report(
        Event(
            "write",
            "start",
            f"writing snapshot files ({filters} materialized filters per scenario)",
            snapshot_date=as_of,
        )
    )
    seconds: dict[str, float] = {}
    sharing = build.sharing
    outputs = write_tables(con, staging, seconds.__setitem__, sharing)
    bodies = write_summary_bodies(con, staging)
    outputs.append(bodies)
    manifest = Manifest(
        snapshot_date=as_of,
        tool_version=__version__,
        sql=[SqlFileEntry(file=f.name, sha256=f.sha256) for f in plan.all],
        sql_version=sql_version((f.name, f.sha256) for f in plan.all),
        inputs=[f.manifest_entry() for f in loaded.files],
        counts=_counts(con, loaded, as_of),
        rejects_by_reason=loaded.rejects_by_reason,
        outputs=outputs,
        ignored_files=loaded.folder.ignored,
        materialized_filters_per_scenario=filters,
        fingerprint=fingerprint,
        data_digest=digest,
        checks=checks or [],
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        duration_seconds=round(time.monotonic() - started, 3),
    )
    write_manifest(staging, manifest)
    # The slowest tables by name, for whoever profiles a day (the sessions lead).
    slowest = sorted(seconds.items(), key=lambda item: -item[1])[:3]
    elapsed = time.monotonic() - began
    shared = (
        f"; {len(sharing.used)} session partitions shared with published snapshots"
        if sharing.used
        else ""
    )
    if sharing.refused:
        report(
            Event(
                "write",
                "warning",
                f"{len(sharing.refused)} files of published snapshots do not match their "
                f"manifests' sha256 and were not shared (first: {sharing.refused[0]}); "
                "`scenario-analytics snapshots verify` names the snapshots to rebuild",
                snapshot_date=as_of,
            )
        )
    boundary(
        report,
        Event(
            "write",
            "done",
            f"wrote {len(seconds)} tables, {bodies.rows} summary.json and the manifest in "
            f"{elapsed:.1f}s (slowest: "
            + ", ".join(f"{_output_name(name)} {s:.1f}s" for name, s in slowest)
            + f"){shared}",
            seconds=elapsed,
            snapshot_date=as_of,
            data={
                "table_seconds": {name: round(s, 3) for name, s in seconds.items()},
                "shared_files": len(sharing.used),
            },
        ),
        "written",
    )
    return build, manifest


def _output_name(table: str) -> str:
    """A table's file (`users.parquet`) or folder (`sessions/`) in a snapshot."""
    return f"{table}/" if table == SESSIONS_FOLDER else f"{table}.parquet"


def prune(
    store: Store, keep: int | None, report: Report = ignore, protect: Collection[date] = ()
) -> list[date]:
    """Unlink snapshots beyond the newest `keep`: never the one latest.json names, nor
    those in `protect` (what this run published)."""
    if keep is None:
        checkpoint("pruned")  # the boundary is there even when nothing is to be pruned
        return []
    started = time.monotonic()
    removed = store.prune(keep, protect)
    for day in removed:
        report(Event("prune", "info", f"pruned snapshot {day.isoformat()}", snapshot_date=day))
    boundary(
        report,
        Event(
            "prune",
            "done",
            seconds=time.monotonic() - started,
            data={"pruned": [d.isoformat() for d in removed], "keep": keep},
        ),
        "pruned",
    )
    return removed


# -- the frame of a run or a backfill ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class JobOptions:
    """What `run` and `backfill` both take: where from, where to, the gate, the settings."""

    exports: Location  # a Path or text is taken too (`__post_init__`)
    snapshots: Location
    max_reject_ratio: float = 0.01
    materialize: MaterializeSettings = field(default_factory=MaterializeSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    full_refresh: bool = False  # parse every file again and rebuild the ledger
    keep: int | None = None  # keep the newest N snapshots; None keeps all
    ignore: tuple[str, ...] = ()  # globs of export paths skipped on purpose
    checks: ChecksSettings = field(default_factory=ChecksSettings)
    skip_checks: frozenset[str] = frozenset()  # checks not run this time (--skip-check)
    allow_partial_day: bool = False  # accept today (UTC) as an as-of date
    storage: StorageSettings = field(default_factory=StorageSettings)  # [storage]
    # What a command printed for the user to copy repeats so that it runs with these
    # settings (the command line's options: `cli/hints.py`); empty: --exports, --snapshots.
    rerun: tuple[str, ...] = ()

    def rerun_options(self) -> list[str]:
        if self.rerun:
            return list(self.rerun)
        return ["--exports", str(self.exports), "--snapshots", str(self.snapshots)]

    def __post_init__(self) -> None:
        # Library callers may pass paths or text; the job works with locations.
        object.__setattr__(self, "exports", Location.parse(self.exports))
        object.__setattr__(self, "snapshots", Location.parse(self.snapshots))

    def open_store(self) -> Store:
        return Store(self.snapshots, self.storage)

    @staticmethod
    def fields_of(
        settings: JobSettings,
        full_refresh: bool,
        skip_checks: Collection[str] = (),
        allow_partial_day: bool = False,
    ) -> dict[str, Any]:
        """These options' values from resolved job settings (`JobSettings.resolve`)."""
        unknown = sorted(set(skip_checks) - set(CHECKS))
        if unknown:
            raise InvalidUsageError(
                f"no such check: {', '.join(unknown)}", f"checks are {', '.join(CHECKS)}"
            )
        return {
            "exports": settings.exports_folder(),
            "snapshots": settings.snapshot_store(),
            "max_reject_ratio": settings.max_reject_ratio,
            "materialize": settings.materialize,
            "engine": settings.engine,
            "full_refresh": full_refresh,
            "keep": settings.keep_snapshots,
            "ignore": tuple(settings.ignore),
            "checks": settings.checks,
            "skip_checks": frozenset(skip_checks),
            "allow_partial_day": allow_partial_day,
            "storage": settings.storage,
        }


def check_as_of(day: date, allow_partial_day: bool, option: str = "--as-of") -> None:
    """An as-of date after today (UTC) cannot be right; today is a partial day."""
    today = filters.utc_today()
    if day > today or (day == today and not allow_partial_day):
        what = "after today" if day > today else "today, a day not over yet"
        raise InvalidUsageError(
            f"invalid_date: {option} {day.isoformat()} is {what} ({today.isoformat()}, UTC)",
            "give a past date (the default is yesterday)"
            + ("" if day > today else ", or --allow-partial-day to build today so far"),
        )


@dataclass(frozen=True)
class Prepared:
    """What a run or backfill has once it holds the store: the SQL and the scanned inputs."""

    store: Store
    plan: SqlPlan
    inputs: Inputs
    engine: SqlEngine = DUCKDB


def open_ledger(
    con: duckdb.DuckDBPyConnection,
    store: Store,
    plan: SqlPlan,
    full_refresh: bool,
    report: Report,
) -> Ledger:
    if full_refresh:
        report(Event("stage", "info", "full refresh: every file is parsed, the ledger rebuilt"))
    return Ledger(
        con, store.storage, staging_digest(plan.per_file), reset=full_refresh, report=report
    )


def load_validated(
    con: duckdb.DuckDBPyConnection,
    prepared: Prepared,
    options: JobOptions,
    first_day: date,
    report: Report,
) -> LoadResult:
    """Load through the store's ledger, validate, apply the reject gate (a refusal leaves a
    quarantine named after `first_day`), free the sessions."""
    ledger = open_ledger(con, prepared.store, prepared.plan, options.full_refresh, report)
    loaded = stage_exports(con, prepared.inputs, prepared.plan, ledger, report, prepared.engine)
    try:
        check_reject_ratio(loaded, options.max_reject_ratio)
    except DataQualityError as exc:
        refuse(con, prepared.store, loaded, first_day, "reject_ratio", [], exc, report)
    report_validated(report, loaded)
    release_sessions(con, prepared.engine)
    return loaded


def refuse(
    con: duckdb.DuckDBPyConnection,
    store: Store,
    loaded: LoadResult,
    day: date,
    gate: str,
    checks: list[CheckResult],
    exc: DataQualityError,
    report: Report,
) -> NoReturn:
    """A gate refused to publish: write the quarantine, then raise `exc` naming it."""
    folder = quarantine(
        con,
        store,
        day,
        {
            "gate": gate,
            "message": exc.message,
            "checks": [c.model_dump() for c in checks],
            "entities": loaded.as_json()["entities"],
            "rejects_by_reason": loaded.rejects_by_reason,
        },
    )
    report(
        Event("quarantine", "info", f"rejected rows and the report are in {folder}",
              snapshot_date=day, data={"path": str(folder)})
    )  # fmt: skip
    raise DataQualityError(
        exc.message, f"{exc.hint}; rejected rows and the report are in {folder}"
    ) from exc


def accepted_rows(loaded: LoadResult) -> dict[str, int]:
    return {entity: loaded.entity_totals(entity)[1] for entity in ENTITIES}


def run_checks(
    con: duckdb.DuckDBPyConnection,
    store: Store,
    loaded: LoadResult,
    options: JobOptions,
    day: date,
    report: Report,
) -> list[CheckResult]:
    """The completeness checks of one day against the newest earlier snapshot; a failure
    leaves a quarantine and raises `DataQualityError` (exit 4)."""
    earlier = [d for d in store.dates() if d < day]
    previous = store.manifest(earlier[-1]) if earlier else None
    results = evaluate_checks(
        con, accepted_rows(loaded), day, previous, options.checks, options.skip_checks
    )
    for result in results:
        report(
            Event(
                "check",
                "warning" if result.status == "failed" else "info",
                f"check {result.name} {result.status}: {result.detail}",
                snapshot_date=day,
                data={"check": result.name, "status": result.status},
            )
        )
    try:
        require_passed(results, day)
    except DataQualityError as exc:
        refuse(con, store, loaded, day, "checks", results, exc, report)
    return results


def make_day(
    con: duckdb.DuckDBPyConnection,
    prepared: Prepared,
    loaded: LoadResult,
    options: JobOptions,
    day: date,
    started: float,
    report: Report,
) -> tuple[Build, Manifest]:
    """Check, build, summarize and write one date's snapshot in a local folder."""
    checks = run_checks(con, prepared.store, loaded, options, day, report)
    spec = options.materialize
    filters = build_day(con, prepared.plan, spec, day, report, prepared.engine)
    fingerprint = prepared.inputs.fingerprint(prepared.plan.all, spec)
    return write_day(
        con,
        prepared.store,
        loaded,
        prepared.plan,
        day,
        filters,
        fingerprint,
        started,
        report,
        checks,
        day_data_digest(loaded, fingerprint, day),
    )


def publish_day(
    store: Store, build: Build, manifest: Manifest, started: float, report: Report
) -> str:
    """Upload a written snapshot and make it visible; `started` is when the work for it
    began. Returns its folder as people see it."""
    day = build.snapshot_date
    public = store.publish(build, manifest)
    pinned = store.pin_holds(day)
    if pinned is not None:
        report(
            Event(
                "publish",
                "warning",
                f"latest.json is pinned to {pinned.isoformat()}; not moved to {day.isoformat()}"
                " — scenario-analytics snapshots unpin moves it",
                snapshot_date=day,
                data={"pinned": pinned.isoformat()},
            )
        )
    seconds = time.monotonic() - started
    boundary(
        report,
        Event(
            "publish",
            "done",
            f"published {public} in {seconds:.1f}s",
            seconds=seconds,
            snapshot_date=day,
            data={"path": public},
        ),
        "published",
    )
    return public


def files_summary(loaded: LoadResult) -> tuple[str, dict[str, object]]:
    """The part of a run's or backfill's summary line about its input files."""
    files, ignored = len(loaded.files), len(loaded.folder.ignored)
    read = loaded.entity_totals("sessions")[0]
    rejects = sum(loaded.rejects_by_reason.values())
    text = (
        f"{files} files ({loaded.files_parsed} read, {loaded.files_reused} unchanged), "
        f"{ignored} ignored; {read:,} session rows, {rejects:,} rejects"
    )
    data: dict[str, object] = {
        "files": files,
        "files_read": loaded.files_parsed,
        "files_skipped": loaded.files_reused,
        "files_ignored": ignored,
        "rejects": rejects,
    }
    return text, data


# A stage's name in a sentence ("interrupted while staging"), where its event name reads
# badly there; the JSON log keeps the event's name (`interrupted_stage`).
_STAGE_WORDS = {"stage": "staging"}


class StageTracker:
    """The job's report, passed on, remembering where the job is (its last event, apart
    from the whole job's own) and the days it published: what an interrupt says."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.last: Event | None = None
        self.published: list[date] = []

    def __call__(self, event: Event) -> None:
        # Where the job got to: not the whole job's events, nor the clean-up after a
        # failure (`runner.py`), which come after the place it stopped.
        if event.stage not in ("run", "backfill", "validate", "cleanup"):
            self.last = event
        if event.stage == "publish" and event.kind == "done" and event.snapshot_date:
            self.published.append(event.snapshot_date)
        self.report(event)

    def where(self) -> str:
        """`while load`, `after write (2026-11-26)`: the stage of the last event."""
        last = self.last
        if last is None:
            return "while starting"
        day = f" ({last.snapshot_date.isoformat()})" if last.snapshot_date else ""
        words = _STAGE_WORDS.get(last.stage, last.stage)
        return f"{'after' if last.kind == 'done' else 'while'} {words}{day}"


@contextmanager
def summarized_failure(
    report: Report, stage: str, started: float, *, publishes: bool = True
) -> Iterator[Report]:
    """Any error of `run` or `backfill` still ends with its summary line, then propagates.

    Yields the report to use inside (a `StageTracker`). An interrupt (SIGINT, SIGTERM),
    whatever error it surfaced as, ends with a summary of status `interrupted` saying
    where the job was and what it had published, and propagates as `Interrupted`; for
    `validate` too (`publishes=False`: it has no summary otherwise).
    """
    tracker = StageTracker(report)
    try:
        yield tracker
    except Interrupted as exc:
        _summarize_interrupt(tracker, stage, started, exc, publishes)
        raise
    except Exception as exc:
        interrupt = interrupts.pending()
        if interrupt is not None:
            _summarize_interrupt(tracker, stage, started, interrupt, publishes)
            raise interrupt from exc
        if not publishes:
            raise
        code = int(getattr(exc, "exit_code", 1))
        report(
            Event(
                stage,
                "summary",
                f"summary: {stage} failed after {time.monotonic() - started:.1f}s "
                f"(exit {code}); nothing more was published",
                seconds=time.monotonic() - started,
                data={"status": "failed", "exit_code": code, "error": str(exc)},
            )
        )
        raise


def _summarize_interrupt(
    tracker: StageTracker, stage: str, started: float, exc: Interrupted, publishes: bool
) -> None:
    published = list(tracker.published) if publishes else None
    hint = "run again to build the rest" if stage == "backfill" and published else "run again"
    exc.locate(tracker.where(), published, hint)
    seconds = time.monotonic() - started
    data: dict[str, object] = {
        "status": "interrupted",
        "signal": exc.signal_name,
        "exit_code": exc.exit_code,
        "interrupted_stage": tracker.last.stage if tracker.last else None,
        "error": str(exc),
    }
    if exc.published is not None:
        data["published"] = [d.isoformat() for d in exc.published]
    tracker.report(
        Event(
            stage,
            "summary",
            f"summary: {stage} stopped after {seconds:.1f}s (exit {exc.exit_code}): {exc.message}",
            seconds=seconds,
            data=data,
        )
    )
