"""The store's lease: one run at a time, without `flock`, on any storage.

A run holds the store by writing `.lease.json` with a conditional write: created only
if there is none (`If-None-Match: *`), taken over only from the exact version it read
(`If-Match`), renewed the same way every third of its term by a background thread,
and deleted at the end. The object says who holds it (owner, host, pid, command), since
when, and until when. Two runs that race for it: one write wins, the other gets exit 5.

A lease that was not renewed in time has expired: the run that held it crashed (or
lost the network) and the next run takes it over. On the same host, a lease whose
process is gone (its pid no longer runs, or runs a process started later) is taken over
at once, so a killed run never holds up the next one there. A run that loses its lease
(it could not renew it in time and another run took it) stops before it commits
anything: `check()` raises, exit 5. `snapshots unlock --force` removes a lease by hand,
after showing its holder (docs/OPERATIONS.md).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from scenario_analytics.errors import StoreLockedError
from scenario_analytics.storage import ObjectMissing, PreconditionFailed, Storage, StorageError

LEASE_KEY = ".lease.json"


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _process_start(pid: int) -> int | None:
    """When a process started (clock ticks since boot, Linux), to tell a pid reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Holder:
    """What `.lease.json` holds."""

    token: str
    host: str
    pid: int
    pid_start: int | None
    command: str
    acquired: float
    expires: float

    @property
    def owner(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.command})"

    def describe(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        left = self.expires - now
        until = (
            f"its lease ends {_stamp(self.expires)} (in {left:.0f}s)"
            if left > 0
            else f"its lease ended {_stamp(self.expires)}"
        )
        return f"{self.owner} since {_stamp(self.acquired)}; {until}"

    def gone(self, now: float) -> bool:
        """Expired, or a process of this host that no longer runs."""
        if now >= self.expires:
            return True
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        started = _process_start(self.pid)
        return self.pid_start is not None and started is not None and started != self.pid_start

    def to_bytes(self) -> bytes:
        body = {
            **asdict(self),
            "owner": self.owner,
            "acquired_at": _stamp(self.acquired),
            "expires_at": _stamp(self.expires),
        }
        return json.dumps(body, indent=1).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> Holder | None:
        try:
            body = json.loads(data)
            return cls(
                str(body["token"]),
                str(body["host"]),
                int(body["pid"]),
                None if body.get("pid_start") is None else int(body["pid_start"]),
                str(body.get("command", "")),
                float(body["acquired"]),
                float(body["expires"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


def read_holder(storage: Storage) -> tuple[Holder | None, str] | None:
    """The lease as it is (None if unreadable) and its tag, or None without one."""
    try:
        data, etag = storage.read(LEASE_KEY)
    except ObjectMissing:
        return None
    return Holder.from_bytes(data), etag


class Lease:
    """A held lease; `with Lease.acquire(storage, seconds):` holds it for a block."""

    def __init__(self, storage: Storage, holder: Holder, etag: str, seconds: float) -> None:
        self.storage = storage
        self.holder = holder
        self.etag = etag
        self.seconds = seconds
        self.lost: str | None = None  # why the lease is no longer ours
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_forever, name="sa-lease", daemon=True)

    @classmethod
    def acquire(cls, storage: Storage, seconds: float, command: str = "") -> Lease:
        """Take the store's lease, or raise StoreLockedError (exit 5) naming its holder."""
        now = time.time()
        holder = Holder(
            uuid.uuid4().hex,
            socket.gethostname(),
            os.getpid(),
            _process_start(os.getpid()),
            command or " ".join(os.path.basename(a) for a in sys.argv[:2]) or "python",
            now,
            now + seconds,
        )
        where = storage.describe()
        try:
            etag = storage.create(LEASE_KEY, holder.to_bytes())
        except PreconditionFailed:
            found = read_holder(storage)
            if found is None:  # released meanwhile: try once more
                etag = _create_or_locked(storage, holder, where)
            else:
                current, current_etag = found
                if current is not None and not current.gone(now):
                    raise StoreLockedError(
                        f"the snapshot store {where} is in use by {current.describe(now)}",
                        "wait for that run to finish, then run again (safe to retry); if it "
                        "crashed on another machine, its lease expires by itself, or "
                        "`scenario-analytics snapshots unlock --force` removes it",
                    ) from None
                try:
                    etag = storage.replace(LEASE_KEY, holder.to_bytes(), current_etag)
                except (PreconditionFailed, ObjectMissing):
                    raise StoreLockedError(
                        f"the snapshot store {where} was taken by another run at the same moment",
                        "wait for that run to finish, then run again (safe to retry)",
                    ) from None
        lease = cls(storage, holder, etag, seconds)
        lease._thread.start()
        return lease

    def _renew_forever(self) -> None:
        period = max(1.0, self.seconds / 3)
        while not self._stop.wait(period):
            self.renew()

    def renew(self) -> None:
        with self._lock:
            if self.lost is not None or self._stop.is_set():
                return
            now = time.time()
            renewed = Holder(**{**asdict(self.holder), "expires": now + self.seconds})
            try:
                self.etag = self.storage.replace(LEASE_KEY, renewed.to_bytes(), self.etag)
                self.holder = renewed
            except (PreconditionFailed, ObjectMissing):
                self.lost = "another run took over the store's lease (or it was removed by hand)"
            except StorageError as exc:
                if now >= self.holder.expires:
                    self.lost = f"the lease could not be renewed before it ended ({exc.message})"

    def check(self) -> None:
        """Raise StoreLockedError (exit 5) if the lease is no longer this run's: nothing
        may be committed then."""
        if self.lost is None and time.time() >= self.holder.expires:
            self.renew()
            if self.lost is None and time.time() >= self.holder.expires:
                self.lost = "the lease ended before it could be renewed"
        if self.lost is not None:
            raise StoreLockedError(
                f"this run no longer holds the snapshot store {self.storage.describe()}: "
                f"{self.lost}",
                "nothing more was published; run again once the other run is done",
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            if self.lost is not None:
                return
            try:
                self.storage.delete_if(LEASE_KEY, self.etag)
            except StorageError:
                pass  # taken over, or unreachable: it expires by itself


def _create_or_locked(storage: Storage, holder: Holder, where: str) -> str:
    try:
        return storage.create(LEASE_KEY, holder.to_bytes())
    except PreconditionFailed:
        raise StoreLockedError(
            f"the snapshot store {where} was taken by another run at the same moment",
            "wait for that run to finish, then run again (safe to retry)",
        ) from None
