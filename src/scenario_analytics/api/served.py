"""Which snapshot the server answers from, and the readers that compute its answers.

- **Switching.** A background task looks at `latest.json` and the commit record of the
  date it names every `POLL_SECONDS` (0.25 s; on S3 a conditional GET each, which costs
  nothing when they have not changed). When either changes (a run published a new date,
  a `pin`/`unpin`, a rebuild of the same date), the new version is loaded on a loader
  thread (its precomputed bodies and one reader: ~0.2 s at 10M sessions; on S3 its files
  are downloaded and checked against their sha256 first) and becomes current; requests
  that started on the old one finish on it. When the store cannot be reached, the
  loaded snapshot goes on being served.
- **Holding a version.** A loaded snapshot keeps the version its record named when it
  was loaded (`Version`: the build and its files' keys), so a rebuild or a retention
  prune after it was loaded changes nothing for it (the store keeps replaced versions an
  hour). A snapshot no longer current is retired: its readers are closed once the last
  request that started on it has finished.
- **Precomputed answers** (every body of `summaries.parquet`, ~35k at 10M sessions, read
  with pyarrow at load) are a dict of `(scenario_id, request_key) -> Body`, answered on
  the event loop without DuckDB.
- **Computed answers** (other filters, the participants endpoint) run on a bounded pool
  of worker threads. `SnapshotQuery` is not thread-safe, so each loaded snapshot has its
  own readers, each used by one thread at a time (`ReaderPool`). The first reader (the
  one the snapshot is loaded with) reads one scenario at a time; in the background, up to
  `workers` more readers load all sessions into memory (~650 MB each at 10M sessions)
  and then replace it, so that no request waits for that load.
- **`as_of` snapshots** are loaded on demand, with one reader each, on their own loader
  threads: one load per date at a time (requests for it wait for that load), other dates
  and the current snapshot never wait for it. Up to `DATED_KEPT` dates stay loaded while
  their precomputed bodies weigh at most `DATED_BYTES` (least recently used first out).
  How many distinct dates one key may have loaded per minute is limited in `api/http.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from scenario_analytics import filters
from scenario_analytics.api.logs import sanitized_traceback
from scenario_analytics.api.metrics import Metrics
from scenario_analytics.errors import ExitCode
from scenario_analytics.filters import parse_participants_request, parse_request
from scenario_analytics.locations import Location
from scenario_analytics.publish.records import Version
from scenario_analytics.publish.store import DamagedFile, Store
from scenario_analytics.serve.query import (
    Answer,
    InvalidSnapshotDate,
    SnapshotNotFound,
    SnapshotQuery,
    error_body,
)
from scenario_analytics.settings import EngineSettings
from scenario_analytics.storage import StorageError

log = logging.getLogger("scenario_analytics.serve")

POLL_SECONDS = 0.25  # how often latest.json and the links are looked at
# With nothing served and no latest.json: how often to look whether dates are published.
PUBLISHED_RECHECK_SECONDS = 10.0
DATED_KEPT = 8  # as_of snapshots kept loaded besides the current one, at most
DATED_BYTES = 512 * 2**20  # and at most this much of their bodies (~60 MB a 10M snapshot)
DATED_RECHECK_SECONDS = 0.5  # how often a kept as_of snapshot's link is looked at
# A request no precomputed body answers, and never the same: loads a reader's tables.
_WARM_UP = {"start_date": "0001-01-01"}


@dataclass(frozen=True)
class Body:
    """A response body and its entity tag (a hash of the bytes)."""

    data: bytes
    etag: str

    @classmethod
    def of(cls, text: str) -> Body:
        data = text.encode("utf-8")
        return cls(data, '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"')


def load_bodies(summaries: Path) -> dict[tuple[str, str], Body]:
    """Every materialized body of a snapshot, by (scenario id, canonical request key):
    the same column of the same file `SnapshotQuery.precomputed` reads."""
    table = pq.ParquetFile(summaries).read(columns=["scenario_id", "request_key", "body"])
    ids, keys, bodies = (table.column(i).to_pylist() for i in range(3))
    return {
        (str(s), str(k)): Body.of(str(b))
        for s, k, b in zip(ids, keys, bodies, strict=True)
        if b is not None
    }


class PoolClosed(Exception):
    """The snapshot's readers were closed (the server is stopping)."""


class ReaderPool:
    """The readers of one snapshot version. A reader is lent to one thread at a time;
    `close` closes idle readers at once and lent ones when they come back, through
    `closer` (closing one that holds all sessions takes ~40 ms: not on the event loop)."""

    def __init__(self, closer: Callable[[SnapshotQuery], None] | None = None) -> None:
        self._close_reader = closer or SnapshotQuery.close
        self._cond = threading.Condition()
        self._idle: list[SnapshotQuery] = []
        self._serving: set[int] = set()  # readers requests may use (ids)
        self._owned: list[SnapshotQuery] = []  # readers to close, serving or not
        self._lent: set[int] = set()
        self._closed = False

    def add(self, reader: SnapshotQuery) -> bool:
        """Put a reader in service; False (and the reader closed) once the pool is."""
        with self._cond:
            if not self._closed:
                self._owned.append(reader)
                self._serving.add(id(reader))
                self._idle.append(reader)
                self._cond.notify()
                return True
        self._close_reader(reader)
        return False

    def withdraw(self, reader: SnapshotQuery) -> None:
        """Take a reader out of service (it stays open until `close`)."""
        with self._cond:
            self._serving.discard(id(reader))
            if reader in self._idle:
                self._idle.remove(reader)

    def acquire(self) -> SnapshotQuery:
        with self._cond:
            while not self._idle:
                if self._closed:
                    raise PoolClosed
                self._cond.wait()
            reader = self._idle.pop()
            self._lent.add(id(reader))
            return reader

    def release(self, reader: SnapshotQuery) -> None:
        with self._cond:
            self._lent.discard(id(reader))
            if self._closed:
                self._close_reader(reader)
            elif id(reader) in self._serving:
                self._idle.append(reader)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            idle = [r for r in self._owned if id(r) not in self._lent]
            self._idle.clear()
            self._cond.notify_all()
        for reader in idle:
            self._close_reader(reader)

    @property
    def size(self) -> int:
        with self._cond:
            return len(self._serving)


class LoadedSnapshot:
    """One snapshot version, loaded: its date, version, precomputed bodies and readers.
    `enter`/`leave` count the requests using it (on the event loop thread)."""

    def __init__(
        self,
        version: Version,
        bodies: dict[tuple[str, str], Body],
        resolver: SnapshotQuery,
        closer: Callable[[SnapshotQuery], None] | None = None,
    ) -> None:
        self.snapshot_date = version.snapshot_date
        self.version = version
        self.build = version.record.build
        self.bodies = bodies
        self.body_bytes = sum(len(b.data) + 200 for b in bodies.values())  # with the dict's
        # The reader the snapshot was loaded with. Besides computing (until warmed-up
        # readers replace it), the event loop calls its `check` (parsing and dict look-ups
        # built at open, never changed after: no SQL) for every request.
        self.resolver = resolver
        self.pool = ReaderPool(closer)
        self.pool.add(resolver)
        self.in_flight = 0
        self.retired = False
        self.checked = time.monotonic()

    @property
    def label(self) -> str:
        return self.snapshot_date.isoformat()

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self.retired and self.in_flight == 0:
            self.pool.close()

    def retire(self) -> None:
        if not self.retired:
            self.retired = True
            if self.in_flight == 0:
                self.pool.close()

    def precomputed(self, scenario: str, params: Mapping[str, str]) -> Body | Answer | None:
        """The answer without SQL: a materialized body, or the error answer of a request
        that fails the parameter check or names no scenario. None: it needs SQL."""
        checked = self.resolver.check(parse_request, scenario, params)
        if isinstance(checked, Answer):
            return checked
        request, scenario_id = checked
        return self.bodies.get((scenario_id, request.key))

    def participants_error(self, scenario: str, params: Mapping[str, str]) -> Answer | None:
        """The error answer of a participants request, without SQL; None if it has none."""
        checked = self.resolver.check(parse_participants_request, scenario, params)
        return checked if isinstance(checked, Answer) else None


def _open(
    store: Store, version: Version, engine: EngineSettings, reads: int | None
) -> SnapshotQuery:
    """A reader of one version."""
    return SnapshotQuery(store, version=version, reads_before_loading=reads, engine=engine)


def snapshot_unavailable(day: date | None = None) -> Answer:
    """503 `snapshot_unavailable`: a snapshot is published but cannot be served now (a
    damaged file, latest.json unreadable, the store unreachable); the message says no
    more than that (the server's log and /readyz say which file)."""
    what = f"The snapshot of {day.isoformat()}" if day else "The newest snapshot"
    return Answer(
        ExitCode.FAILURE,
        error_body("api_error", "snapshot_unavailable", f"{what} cannot be served now"),
    )


def snapshot_not_found(day: date | None) -> Answer:
    """`snapshot_not_found` as the API says it: without the store's path on the server
    (which `query`'s message names for the person at the terminal)."""
    message = f"no snapshot for {day.isoformat()}" if day else "no snapshot is published"
    return Answer(ExitCode.NOT_FOUND, error_body("not_found", "snapshot_not_found", message))


class Served:
    """The snapshots a server answers from: the current one (what latest.json names) and
    recently asked-for `as_of` dates; the worker threads that compute answers."""

    def __init__(
        self,
        store: Store | Location | Path,
        metrics: Metrics,
        workers: int = 2,
        engine: EngineSettings | None = None,
        queue_limit: int | None = None,
        poll_seconds: float = POLL_SECONDS,
        on_poll: Callable[[], None] | None = None,
    ) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.metrics = metrics
        self.workers = workers
        # One thread per reader: the bulk load of a reader's sessions then leaves the
        # other core to the event loop (request SQL runs on one thread anyway).
        self.engine = engine if engine is not None and engine.threads else _one_thread(engine)
        self.queue_limit = queue_limit or workers * 64
        self.poll_seconds = poll_seconds
        self.on_poll = on_poll
        self.current: LoadedSnapshot | None = None
        self._dated: OrderedDict[date, LoadedSnapshot] = OrderedDict()
        self._date_locks: dict[date, asyncio.Lock] = {}  # one load per date at a time
        self._dated_loader = ThreadPoolExecutor(2, thread_name_prefix="sa-load-as-of")
        self._compute = ThreadPoolExecutor(workers, thread_name_prefix="sa-query")
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="sa-load")
        self._warmer = ThreadPoolExecutor(1, thread_name_prefix="sa-warm")
        self._stopping = threading.Event()
        self._warming: SnapshotQuery | None = None
        self._queued = 0
        self._poller: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._failures = 0
        # Why the snapshot latest.json names is not the one served (None: it is, or none
        # is published): /readyz reports it, and with nothing loaded requests get 503.
        self.problem: str | None = None
        self._published_at = (0.0, False)  # (when looked, whether any date is published)

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.refresh()
        self._poller = asyncio.get_running_loop().create_task(self._poll_forever())

    async def stop(self) -> None:
        """Stop polling and warming; close every reader once its request is done."""
        self._stopping.set()
        if self._poller is not None:
            self._poller.cancel()
            try:
                await self._poller
            except asyncio.CancelledError:
                pass
        warming = self._warming
        if warming is not None:
            warming.con.interrupt()
        for snapshot in [self.current, *self._dated.values()]:
            if snapshot is not None:
                snapshot.retire()
        loop = asyncio.get_running_loop()
        for pool in (self._warmer, self._loader, self._dated_loader, self._compute):
            await loop.run_in_executor(None, pool.shutdown)
        self.store.close()  # its downloads (on S3) go too

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                if self.on_poll is not None:
                    self.on_poll()
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the poller must outlive any one failure
                _log_failure("snapshot poll failed", exc)

    # -- the current snapshot -------------------------------------------------------------------
    def _probe(self) -> tuple[date | None, Version | None]:
        latest = self.store.latest()
        if latest is None:
            return None, None
        return latest, self.store.version(latest)

    async def refresh(self) -> None:
        """Load and switch to the snapshot latest.json names, if it is not the current one.
        A store that cannot be read now (unreachable, throttling) changes nothing: the
        loaded snapshot goes on being served, and the next poll tries again."""
        loop = asyncio.get_running_loop()
        try:
            day, version = await loop.run_in_executor(self._loader, self._probe)
        except StorageError as exc:
            self.metrics.snapshot_loads.labels("unreachable").inc()
            _log_failure("cannot read the store (serving what is loaded)", exc)
            self._report("the store cannot be read")
            return
        current = self.current
        if day is None or version is None:
            await loop.run_in_executor(self._loader, self._without_latest, day)
            return
        # A version whose files moved from .staging into its folder is loaded again from
        # there (the copies it was loaded from go an hour later).
        if current is not None and (
            current.snapshot_date,
            current.build,
            current.version.record.prefix,
        ) == (
            day,
            version.record.build,
            version.record.prefix,
        ):
            self._report(None)
            return
        if time.monotonic() < self._retry_at:
            return
        loaded = await loop.run_in_executor(self._loader, self._load, version, sys.maxsize)
        if isinstance(loaded, str):
            self._failures += 1
            self._retry_at = time.monotonic() + min(30.0, 0.5 * 2**self._failures)
            if loaded:
                self._report(f"the snapshot of {day.isoformat()} {loaded}")
            return
        self._failures = 0
        self._report(None)
        self._switch(loaded)
        if self.workers > 0:
            self._warmer.submit(self._warm_up, loaded)

    def _report(self, problem: str | None) -> None:
        """What keeps the newest snapshot from being served, once per change: logged,
        on /readyz and as `scenario_analytics_snapshot_problem`."""
        if problem == self.problem:
            return
        self.problem = problem
        self.metrics.snapshot_problem.set(0 if problem is None else 1)
        serving = f"; serving {self.current.label}" if self.current is not None else ""
        if problem is None:
            log.info("the newest snapshot is served%s", serving)
        else:
            log.error("%s%s", problem, serving or "; serving none: answering 503")

    def _without_latest(self, day: date | None) -> None:
        """On the loader thread: latest.json names no published version (missing, not
        JSON, or naming a date whose record is gone). The loaded snapshot goes on being
        served while its own record says it is published: a damaged or deleted
        latest.json must not take the API down. It goes when it was unpublished."""
        current = self.current
        if current is not None:
            if self.store.record(current.snapshot_date) is not None:
                self._report("latest.json is missing or unreadable, or names no published date")
                return
            log.warning("no snapshot is published any more: not serving %s", current.label)
            self._switch(None)
        # Nothing served: 503 if dates are published (latest.json damaged), else 404.
        looked, published = self._published_at
        if time.monotonic() - looked > PUBLISHED_RECHECK_SECONDS:
            published = bool(self.store.dates())
            self._published_at = (time.monotonic(), published)
        self._report(
            "latest.json is missing or unreadable, or names no published date, while "
            "snapshots are published"
            if published
            else None
        )

    def _switch(self, loaded: LoadedSnapshot | None) -> None:
        previous, self.current = self.current, loaded
        if previous is not None:
            previous.retire()  # closed once its last request is done
        # Downloads (on S3) of versions no longer served go: all but the current one's,
        # the as_of ones' and the one just retired (its last requests may still read).
        keep = {
            sha256
            for snapshot in (loaded, previous, *self._dated.values())
            if snapshot is not None
            for sha256 in snapshot.version.files().values()
            if sha256 is not None
        }
        try:
            self._loader.submit(self.store.storage.retain, keep)
        except RuntimeError:
            pass  # stopping
        self.metrics.served(loaded.snapshot_date if loaded else None)
        if loaded is not None:
            log.info(
                "serving snapshot %s (%d precomputed bodies)%s",
                loaded.label,
                len(loaded.bodies),
                f", was {previous.label}" if previous is not None else "",
            )

    def _load(self, version: Version, reads: int | None) -> LoadedSnapshot | str:
        """On a loader thread: the bodies and the first reader of one snapshot version; or
        why not ("" when it was unpublished meanwhile, else what /readyz says)."""
        started = time.perf_counter()
        day = version.snapshot_date
        reader: SnapshotQuery | None = None
        try:
            reader = _open(self.store, version, self.engine, reads)
            reader.prefetch()  # everything a request may read, while the store answers
            loaded = LoadedSnapshot(version, load_bodies(reader.table("summaries")), reader,
                                    self._close)  # fmt: skip
        except SnapshotNotFound:
            return ""  # unpublished meanwhile
        except DamagedFile as exc:  # never answer from it; say which file
            log.error("cannot load the snapshot of %s: %s", day.isoformat(), exc)
            self.metrics.snapshot_loads.labels("damaged").inc()
            if reader is not None:
                reader.close()
            return f"has a damaged file: {exc.rel}"
        except Exception as exc:  # a damaged snapshot must not stop the server
            _log_failure(f"cannot load the snapshot of {day.isoformat()}", exc)
            self.metrics.snapshot_loads.labels("failed").inc()
            if reader is not None:
                reader.close()
            return f"cannot be loaded ({type(exc).__name__})"
        self.metrics.snapshot_loads.labels("ok").inc()
        log.info("loaded snapshot %s in %.3f s", day.isoformat(), time.perf_counter() - started)
        return loaded

    def _close(self, reader: SnapshotQuery) -> None:
        """Close a reader on the loader thread (inline once that has stopped)."""
        try:
            self._loader.submit(reader.close)
        except RuntimeError:
            reader.close()

    def _warm_up(self, loaded: LoadedSnapshot) -> None:
        """On the warm-up thread: `workers` readers that hold all sessions in memory, then
        the first reader (one scenario at a time from Parquet) leaves the pool."""
        scenario_ids = sorted({scenario_id for scenario_id, _key in loaded.bodies})
        added = 0
        for _ in range(self.workers):
            if self._stopping.is_set() or loaded.retired:
                break
            reader: SnapshotQuery | None = None
            try:
                reader = _open(self.store, loaded.version, self.engine, 0)
                self._warming = reader
                if scenario_ids:
                    reader.compute(scenario_ids[0], parse_request(_WARM_UP))
                    reader.participants(scenario_ids[0], _WARM_UP)
            except Exception as exc:  # the first reader goes on serving
                if not self._stopping.is_set():
                    _log_failure(f"cannot warm up a reader of {loaded.label}", exc)
                if reader is not None:
                    reader.close()
                break
            finally:
                self._warming = None
            if not loaded.pool.add(reader):
                break
            added += 1
        if added:
            loaded.pool.withdraw(loaded.resolver)
            log.info("snapshot %s: %d reader(s) hold all sessions", loaded.label, added)

    # -- as_of ----------------------------------------------------------------------------------
    async def dated(self, day: date) -> LoadedSnapshot | Answer:
        """The snapshot of `day` (loaded if needed), or the error answer: `invalid_date`
        after today (UTC), `snapshot_not_found` if none is published."""
        current = self.current
        if current is not None and current.snapshot_date == day:
            return current
        if day > filters.utc_today():
            # SnapshotQuery says why, before it opens anything (`query --as-of` alike).
            try:
                SnapshotQuery(self.store, day).close()
            except InvalidSnapshotDate as exc:
                return exc.answer
            except SnapshotNotFound:
                return snapshot_not_found(day)
        # One lock per date while it is asked for (a client cannot grow the dict: the
        # dates one key asks for are limited per minute, and a lock no one holds goes).
        lock = self._date_locks.setdefault(day, asyncio.Lock())
        try:
            async with lock:
                return await self._dated_locked(day)
        finally:
            if not lock.locked() and self._date_locks.get(day) is lock:
                del self._date_locks[day]

    def is_loaded(self, day: date) -> bool:
        """Whether `day` is answered without a load (current, or kept)."""
        current = self.current
        return (current is not None and current.snapshot_date == day) or day in self._dated

    async def _dated_locked(self, day: date) -> LoadedSnapshot | Answer:
        kept = self._dated.get(day)
        now = time.monotonic()
        loop = asyncio.get_running_loop()
        if kept is not None and now - kept.checked > DATED_RECHECK_SECONDS:
            try:
                record = await loop.run_in_executor(self._dated_loader, self.store.record, day)
            except StorageError:
                record = (kept.version.record, "")  # unreachable: keep what is loaded
            if record is None or (record[0].build, record[0].prefix) != (
                kept.build,
                kept.version.record.prefix,
            ):
                self._forget(day)
                kept = None
            else:
                kept.checked = now
        if kept is not None:
            self._dated.move_to_end(day)
            return kept
        try:
            version = await loop.run_in_executor(self._dated_loader, self.store.version, day)
        except StorageError as exc:
            _log_failure(f"cannot read the snapshot of {day.isoformat()}", exc)
            return snapshot_unavailable(day)
        if version is None:
            return snapshot_not_found(day)
        loaded = await loop.run_in_executor(self._dated_loader, self._load, version, None)
        if isinstance(loaded, str):
            return snapshot_unavailable(day) if loaded else snapshot_not_found(day)
        self._dated[day] = loaded
        while len(self._dated) > 1 and (
            len(self._dated) > DATED_KEPT
            or sum(s.body_bytes for s in self._dated.values()) > DATED_BYTES
        ):
            self._forget(next(iter(self._dated)))
        return loaded

    def _forget(self, day: date) -> None:
        snapshot = self._dated.pop(day, None)
        if snapshot is not None and snapshot is not self.current:
            snapshot.retire()

    # -- computing ------------------------------------------------------------------------------
    @property
    def saturated(self) -> bool:
        """As many computed requests as the queue holds are waiting or running."""
        return self._queued >= self.queue_limit

    async def compute(
        self, snapshot: LoadedSnapshot, endpoint: str, scenario: str, params: Mapping[str, str]
    ) -> Answer:
        """`SnapshotQuery.answer` (endpoint "summary") or `.participants` on a worker."""
        self._queued += 1
        self.metrics.queued.inc()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._compute, _lend, snapshot.pool, endpoint, scenario, params
            )
        finally:
            self._queued -= 1
            self.metrics.queued.dec()


def _log_failure(what: str, exc: BaseException) -> None:
    """A failure of the server's own work (loading files, not a request): its message
    names files and DuckDB's words, never a request's values."""
    log.error(
        "%s: %s: %s",
        what,
        type(exc).__name__,
        str(exc).strip().splitlines()[0] if str(exc).strip() else "",
        extra={"frames": sanitized_traceback(exc)},
    )


def _lend(pool: ReaderPool, endpoint: str, scenario: str, params: Mapping[str, str]) -> Answer:
    reader = pool.acquire()
    try:
        if endpoint == "participants":
            return reader.participants(scenario, params)
        return reader.answer(scenario, params)
    finally:
        pool.release(reader)


def _one_thread(engine: EngineSettings | None) -> EngineSettings:
    base = engine.model_dump() if engine is not None else {}
    return EngineSettings.model_validate({**base, "threads": 1})
