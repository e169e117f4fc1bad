"""One job runner: the resources a job holds, opened in the order data moves, released in
reverse, written once for `run`, `backfill`, `snapshots stale` and `validate`.

    find exports -> open the store -> take its lease -> clean up, read the SQL, scan
    -> open the engine and the database (on first use) -> load (through the ledger)
    -> for each day: check, build, summarize, write, publish
    -> release the engine -> prune -> give up the lease -> close the store and exports

The commands differ only in their list of days and where they stop:

- `run` loads, publishes its as-of day, then restates the out-of-date days of its last
  `restate_days` days (`run.py`);
- `backfill` publishes the days of a range that are not up to date (`backfill.py`);
- `snapshots stale` loads and compares, publishing nothing (`stale.py`);
- `validate` loads and checks an exports folder without a lease or a ledger, reading a
  store only for the checks' history (`validate.py`).

The three that hold the lease load and build with the engine of their settings (Spark
too). `validate` always runs on DuckDB in this process: Spark's tasks stage each file
into the store's ledger, and `validate` keeps nothing (docs/ENGINES.md).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from scenario_analytics import interrupts
from scenario_analytics.engine.database import connect
from scenario_analytics.engine.engines import SqlEngine, open_engine
from scenario_analytics.engine.sql_files import SqlPlan, load_sql_files, plan_sql_files
from scenario_analytics.errors import AnalyticsError
from scenario_analytics.events import Event, Report
from scenario_analytics.faults import checkpoint
from scenario_analytics.ingest.discover import ExportsFolder
from scenario_analytics.ingest.ledger import Catalog, Ledger
from scenario_analytics.locations import Location
from scenario_analytics.pipeline.stages import (
    JobOptions,
    Prepared,
    load_validated,
    make_day,
    open_ledger,
    prune,
    publish_day,
    release_day,
)
from scenario_analytics.pipeline.staging import (
    Inputs,
    LoadResult,
    boundary,
    compress_history,
    empty_inputs,
    find_exports,
    scan_exports,
    stage_exports,
)
from scenario_analytics.publish.manifest import Manifest
from scenario_analytics.publish.store import Store
from scenario_analytics.settings import EngineSettings, StorageSettings
from scenario_analytics.storage import StorageError


@dataclass(frozen=True)
class Published:
    """A day a job built and published: its date, folder as people see it, manifest and
    the seconds its own work took."""

    snapshot_date: date
    path: str
    manifest: Manifest
    seconds: float


@dataclass
class Job:
    """The resources of one job while it runs (make one with `Job.leased_by` or
    `Job.unleased`): the exports folder, the store, the SQL and scanned inputs, and, from
    the first `load`, the engine and the database connection."""

    options: JobOptions | None
    report: Report
    prepared: Prepared
    folder: ExportsFolder
    leased: bool
    engine_settings: EngineSettings
    con: duckdb.DuckDBPyConnection | None = None
    loaded: LoadResult | None = None

    # -- opening -----------------------------------------------------------------------

    @classmethod
    @contextmanager
    def leased_by(cls, options: JobOptions, report: Report, command: str, *,
                  builds: bool = True) -> Iterator[Job]:  # fmt: skip
        """A job that holds the store's lease for `command`: clean-up, the ledger, and
        (with `builds`) the snapshots it writes, whose uncommitted builds go if it stops."""
        # Listed before the lease: a folder that fails discovery creates no store.
        folder = find_exports(options.exports, options.ignore, report, options.storage)
        store = options.open_store()
        before = store.state() if builds else "used"  # "missing", "empty": this job makes it
        discarded = False
        try:
            with store.lock(command):
                try:
                    with staging_removed(store) if builds else nullcontext():
                        prepared = prepare(store, folder, report)
                        job = cls(options, report, prepared, folder, True, options.engine)
                        try:
                            yield job
                        finally:
                            job.release_engine()
                except BaseException:
                    discarded = before != "used" and _discard(store, report)
                    raise
        finally:
            if discarded:  # the lease is gone now: the folder too, if the run made it
                store.storage.remove_location(keep_folder=before == "empty")
            store.close()
            folder.storage.close()

    @classmethod
    @contextmanager
    def unleased(
        cls,
        exports: Path | Location,
        report: Report,
        engine: EngineSettings,
        ignore_globs: tuple[str, ...],
        storage: StorageSettings,
        store: Store | None,
    ) -> Iterator[Job]:
        """A job that only reads: no lease, no ledger (every file is parsed), and `store`
        (may be None) only for what was published before."""
        folder = None
        try:
            folder = find_exports(exports, ignore_globs, report, storage)
            plan = plan_sql_files(load_sql_files())
            inputs = scan_exports(folder, report)
            prepared = Prepared(store, plan, inputs)  # type: ignore[arg-type]
            job = cls(None, report, prepared, folder, False, engine)
            try:
                yield job
            finally:
                job.release_engine()
        finally:
            if folder is not None:
                folder.storage.close()
            if store is not None:
                store.close()

    # -- what it holds -----------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self.prepared.store

    @property
    def plan(self) -> SqlPlan:
        return self.prepared.plan

    @property
    def inputs(self) -> Inputs:
        return self.prepared.inputs

    @property
    def engine(self) -> SqlEngine:
        return self.prepared.engine

    def fingerprint(self) -> dict[str, str]:
        """What a day built now from these inputs is built from (`Manifest.fingerprint`)."""
        assert self.options is not None
        return self.inputs.fingerprint(self.plan.all, self.options.materialize)

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The database, opened on first use with the engine of the settings (Spark
        starts here)."""
        if self.con is None:
            if self.leased:
                self.prepared = open_job_engine(self.engine_settings, self.prepared,
                                                self.report, self.store.new_scratch)  # fmt: skip
            self.con = connect(self.engine_settings)
        return self.con

    # -- the stages --------------------------------------------------------------------

    def load(self, first_day: date) -> LoadResult:
        """Load through the store's ledger, validate, apply the reject gate (a refusal's
        quarantine named after `first_day`)."""
        assert self.options is not None and self.leased
        con = self.connection()
        self.loaded = load_validated(con, self.prepared, self.options, first_day, self.report)
        return self.loaded

    def stage(self) -> LoadResult:
        """Load and validate without the gates: through the ledger under a lease, else
        every file parsed."""
        con = self.connection()
        if self.leased:
            assert self.options is not None
            ledger = open_ledger(con, self.store, self.plan, self.options.full_refresh,
                                 self.report)  # fmt: skip
        else:
            ledger = Ledger(con, None, "")
        self.loaded = stage_exports(con, self.inputs, self.plan, ledger, self.report,
                                    self.engine)  # fmt: skip
        return self.loaded

    def publish_day(
        self,
        day: date,
        started: float | None = None,
        told: Callable[[Published], None] | None = None,
    ) -> Published:
        """Check, build, summarize, write and publish one day from what was loaded;
        `started`: when the work counted in its manifest began (default: now); `told`
        gets the day once published, before an interrupt can stop the job (published and
        told, or neither)."""
        assert self.options is not None and self.loaded is not None
        began = time.monotonic()
        con = self.connection()
        build, manifest = make_day(con, self.prepared, self.loaded, self.options, day,
                                   began if started is None else started, self.report)  # fmt: skip
        release_day(con, self.plan, self.engine)
        with interrupts.deferred():  # published and told, or not at all
            path = publish_day(self.store, build, manifest, began, self.report)
            done = Published(day, path, manifest, time.monotonic() - began)
            if told is not None:
                told(done)
        return done

    def compress_history(self) -> None:
        """Before building several days: the history into a compressed catalog."""
        compress_history(self.connection(), self.engine)

    def release_engine(self) -> None:
        """Close the database and the engine (before pruning: their memory and files go)."""
        if self.con is not None:
            self.con.close()
            self.con = None
        self.prepared.engine.close()

    def prune(self, protect: list[date]) -> list[date]:
        """Retention, after the engine is released; never a day in `protect`."""
        assert self.options is not None
        self.release_engine()
        return prune(self.store, self.options.keep, self.report, protect=protect)


# -- the frame: what the job holds the store for --------------------------------------------


def prepare(store: Store, exports: ExportsFolder, report: Report) -> Prepared:
    """Under the store's lease: clean up after killed runs, read the SQL, hash the exports
    (listed before the lease by `find_exports`; on S3, an export the ledger knows unchanged
    is not downloaded)."""
    for leftover in store.clean_up():
        report(Event("lock", "info", f"removed leftover {leftover}"))
    boundary(report, Event("lock", "info", f"holding the store {store.describe()}"), "locked")
    plan = plan_sql_files(load_sql_files())
    try:
        catalog = Catalog.read(store.storage)
    except (ValueError, StorageError):
        catalog = None  # unreadable: the ledger says so when it opens
    inputs = scan_exports(exports, report, known=catalog.known_sha256 if catalog else None)
    checkpoint("scanned")
    return Prepared(store, plan, inputs)


def open_job_engine(
    settings: EngineSettings, prepared: Prepared, report: Report, work: Callable[[], Path]
) -> Prepared:
    """`prepared` with the engine the settings name (Spark starts here: `--engine spark`),
    its files in the folder `work()` makes."""
    if settings.name == "duckdb":
        return prepared
    started = time.monotonic()
    engine = open_engine(settings, prepared.plan.all, work, empty_inputs)
    report(
        Event(
            "lock",
            "info",
            f"engine {engine.name}: started in {time.monotonic() - started:.1f}s"
            + (f" (its own log: {engine.log})" if engine.log else ""),
            seconds=time.monotonic() - started,
        )
    )
    return dataclasses.replace(prepared, engine=engine)


@contextmanager
def staging_removed(store: Store) -> Iterator[None]:
    """Whatever stops a run or backfill (an error, an interrupt), the builds it had not
    committed go too (their local folders and uploads); only a killed run leaves them,
    for the next one's `clean_up`."""
    try:
        yield
    except BaseException:
        store.abandon_builds()
        raise


def _discard(store: Store, report: Report) -> bool:
    """A failed first run leaves no store behind (unless it published or quarantined:
    `Store.discard_new`); best effort, the job's own error is the one to report."""
    try:
        if not store.discard_new():
            return False
    except (AnalyticsError, OSError):
        return False
    report(Event("cleanup", "info", f"removed {store.describe()}: the run that made it "
                 "failed before publishing anything"))  # fmt: skip
    return True
