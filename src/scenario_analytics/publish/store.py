"""The snapshot store: a lock, atomic publishing, `latest.json`, and clean-up.

Layout under the store root:

    latest.json                         {"snapshot_date": ..., "path": "snapshot_date=..."}
    snapshot_date=YYYY-MM-DD  ->  .versions/YYYY-MM-DD.<build id>    (a symbolic link)
    .versions/<date>.<build id>/        one complete snapshot, never changed once published
    .staging/<build id>/                a snapshot being written (removed if a run dies)
    .lock                               held with flock() by the running job
    .ledger.duckdb                      staged rows per export file (see ledger.py)

A snapshot is written in `.staging`, moved into `.versions` (same file system: a
rename), and made visible by renaming a new symbolic link over `snapshot_date=...`.
Each step is atomic, so readers see the old snapshot or the new one, never a part.
Rebuilding a date swaps the link; the replaced version stays for readers that hold it
open and is removed by a later run after a grace period. Pruning (retention) works the
same way: it removes the link and leaves the version to the grace period.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from scenario_analytics.errors import AnalyticsError, NotFoundError, StoreLockedError
from scenario_analytics.ingest.ledger import LEDGER_NAME
from scenario_analytics.publish.fingerprint import sql_version
from scenario_analytics.publish.manifest import Manifest

_LINK = re.compile(r"^snapshot_date=(\d{4}-\d{2}-\d{2})$")
REPLACED_GRACE_SECONDS = 3600.0


def snapshot_dir_name(snapshot_date: date) -> str:
    return f"snapshot_date={snapshot_date.isoformat()}"


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a part."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def versions(self) -> Path:
        return self.root / ".versions"

    @property
    def staging(self) -> Path:
        return self.root / ".staging"

    @property
    def ledger_path(self) -> Path:
        return self.root / LEDGER_NAME

    @staticmethod
    def link_name(snapshot_date: date) -> str:
        return snapshot_dir_name(snapshot_date)

    # -- reading ------------------------------------------------------------------
    def is_store(self) -> bool:
        """An empty folder (a store nothing was published into yet) or one holding what a
        run leaves: not some other folder (the exports, a home folder) named by mistake."""
        try:
            names = {entry.name for entry in self.root.iterdir()}
        except OSError:
            return False
        marks = {"latest.json", ".versions", ".staging", ".lock", LEDGER_NAME, ".quarantine"}
        return not names or bool(names & marks) or any(_LINK.match(n) for n in names)

    def dates(self) -> list[date]:
        """Published snapshot dates, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            match = _LINK.match(entry.name)
            if match and entry.is_dir():
                found.append(date.fromisoformat(match.group(1)))
        return sorted(found)

    def latest(self) -> date | None:
        try:
            data = json.loads((self.root / "latest.json").read_text(encoding="utf-8"))
            return date.fromisoformat(str(data["snapshot_date"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def snapshot_path(self, snapshot_date: date) -> Path | None:
        """The resolved folder of a published snapshot (stable while a reader uses it)."""
        link = self.root / snapshot_dir_name(snapshot_date)
        try:
            resolved = link.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return resolved if (resolved / "manifest.json").is_file() else None

    def manifest(self, snapshot_date: date) -> Manifest | None:
        """The manifest of a published snapshot, or None (none, or unreadable)."""
        path = self.snapshot_path(snapshot_date)
        if path is None:
            return None
        return Manifest.read(path / "manifest.json")

    def snapshots(self) -> list[SnapshotInfo]:
        """Every published snapshot, oldest first, from its manifest and files."""
        latest = self.latest()
        found = []
        for day in self.dates():
            path = self.snapshot_path(day)
            manifest = self.manifest(day)
            if path is None or manifest is None:
                continue
            found.append(
                SnapshotInfo.of(
                    day, self.root / snapshot_dir_name(day), path, manifest, day == latest
                )
            )
        return found

    # -- writing ------------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store for one run; a second run fails at once (exit 5).

        flock() locks die with their process, so a killed run never blocks the next.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        handle = path.open("a+")
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise StoreLockedError(
                    f"the snapshot store {self.root} is in use by {holder}",
                    "wait for that run to finish, then run again (safe to retry)",
                ) from None
            handle.seek(0)
            handle.truncate()
            started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {started}\n")
            handle.flush()
            yield
        finally:
            handle.close()

    def new_staging(self) -> Path:
        path = self.staging / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    def publish(self, staging: Path, snapshot_date: date) -> Path:
        """Make a fully written snapshot visible; returns its public path."""
        self.versions.mkdir(parents=True, exist_ok=True)
        version = self.versions / f"{snapshot_date.isoformat()}.{staging.name}"
        _fsync_tree(staging)
        os.rename(staging, version)
        public = self.root / snapshot_dir_name(snapshot_date)
        previous = public.resolve() if public.is_symlink() else None
        tmp_link = self.root / f".{public.name}.{staging.name}.link"
        os.symlink(os.path.relpath(version, self.root), tmp_link)
        os.replace(tmp_link, public)
        if previous is not None and previous != version and previous.is_dir():
            # Keep it for readers holding it open; clean_up() removes it later.
            (previous / ".replaced").touch()
        latest = self.latest()
        if latest is None or snapshot_date >= latest:
            body = {"snapshot_date": snapshot_date.isoformat(), "path": public.name}
            try:
                write_atomically(self.root / "latest.json", json.dumps(body).encode() + b"\n")
            except OSError:
                # A failed run changes nothing readers see: take the new link back.
                self._unpublish(public, previous, version)
                raise
        _fsync_dir(self.root)
        return public

    def _unpublish(self, public: Path, previous: Path | None, version: Path) -> None:
        """Best effort: point `public` at `previous` again, or remove it if it is new.

        If that fails too, the new snapshot stays published: it is complete, and the
        next run's clean_up() makes latest.json name it."""
        try:
            if previous is None:
                public.unlink()
            else:
                back = self.root / f".{public.name}.{version.name}.back.link"
                os.symlink(os.path.relpath(previous, self.root), back)
                os.replace(back, public)
                (previous / ".replaced").unlink(missing_ok=True)
            # A reader may have resolved the new link meanwhile: give it the grace period.
            (version / ".replaced").touch()
        except OSError:
            pass

    def _repair_latest(self) -> None:
        """latest.json names the newest published date again after a run was killed
        between renaming its link into place (the commit point) and writing latest.json."""
        dates = self.dates()
        latest = self.latest()
        if dates and (latest is None or dates[-1] > latest):
            body = {"snapshot_date": dates[-1].isoformat(), "path": snapshot_dir_name(dates[-1])}
            write_atomically(self.root / "latest.json", json.dumps(body).encode() + b"\n")

    def prune(self, keep: int, protect: Collection[date] = ()) -> list[date]:
        """Unpublish all but the newest `keep` snapshots; returns the dates removed.

        The date latest.json names is never removed, nor those in `protect` (what the
        same run published, whatever their dates). Only the link goes now (atomically,
        so a reader sees the snapshot or no snapshot); the version folder is marked and
        `clean_up()` deletes it after the grace period, so a reader that resolved the link
        before keeps reading whole files.
        """
        if keep < 1:
            raise ValueError("keep at least one snapshot")
        latest = self.latest()
        removed = []
        for day in sorted(self.dates(), reverse=True)[keep:]:
            if day == latest or day in protect:
                continue
            link = self.root / snapshot_dir_name(day)
            version = link.resolve()
            link.unlink()
            if version.is_dir() and version.parent == self.versions.resolve():
                (version / ".replaced").touch()
            removed.append(day)
        if removed:
            _fsync_dir(self.root)
        return sorted(removed)

    def clean_up(self, grace_seconds: float = REPLACED_GRACE_SECONDS) -> list[str]:
        """Remove what killed runs left behind and versions replaced long enough ago."""
        removed: list[str] = []
        if self.staging.is_dir():
            for entry in self.staging.iterdir():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(f".staging/{entry.name}")
        for entry in self.root.glob(".snapshot_date=*.link"):
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
        for entry in self.root.glob(".latest.json.*.tmp"):
            entry.unlink(missing_ok=True)
        self._repair_latest()
        if self.versions.is_dir():
            live = {(self.root / snapshot_dir_name(d)).resolve().name for d in self.dates()}
            now = time.time()
            for entry in self.versions.iterdir():
                if entry.name in live:
                    continue
                marker = entry / ".replaced"
                # A version no link names and no marker: a publish died between the
                # rename and the link. A marked one: replaced; keep it for the grace.
                if marker.exists() and now - marker.stat().st_mtime < grace_seconds:
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(f".versions/{entry.name}")
        return removed


@dataclass(frozen=True)
class SnapshotInfo:
    """One published snapshot, as the `snapshots` command lists it."""

    snapshot_date: date
    path: Path
    created_at: str
    sessions: int
    scenarios: int
    rejects: int
    sql_version: str
    bytes: int
    latest: bool

    @classmethod
    def of(
        cls, day: date, public: Path, folder: Path, manifest: Manifest, latest: bool
    ) -> SnapshotInfo:
        version = manifest.sql_version
        if version is None:  # written before manifests named their SQL version
            version = sql_version((f.file, f.sha256) for f in manifest.sql)
        size = sum(
            os.path.getsize(os.path.join(dirpath, name))
            for dirpath, _dirs, names in os.walk(folder)
            for name in names
        )
        return cls(
            snapshot_date=day,
            path=public,
            created_at=manifest.created_at,
            sessions=manifest.counts.sessions_in_snapshot,
            scenarios=manifest.counts.scenarios,
            rejects=manifest.rejects,
            sql_version=version,
            bytes=size,
            latest=latest,
        )

    def as_json(self) -> dict[str, object]:
        return {
            "snapshot_date": self.snapshot_date.isoformat(),
            "created_at": self.created_at,
            "sessions": self.sessions,
            "scenarios": self.scenarios,
            "rejects": self.rejects,
            "sql_version": self.sql_version,
            "bytes": self.bytes,
            "path": str(self.path),
            "latest": self.latest,
        }


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            fd = os.open(os.path.join(dirpath, filename), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def require_store(root: Path) -> Store:
    """An existing store folder (exit 3 if there is none), for commands that only read."""
    if not root.exists():
        raise NotFoundError(
            f"no snapshot store at {root}", "check --snapshots, or run `scenario-analytics run`"
        )
    if not root.is_dir():
        raise AnalyticsError(f"snapshot store {root} is not a folder")
    store = Store(root)
    if not store.is_store():
        raise NotFoundError(
            f"{root} is not a snapshot store (no latest.json, snapshots or ledger in it)",
            "check --snapshots: it names the folder `run` publishes into",
        )
    return store
