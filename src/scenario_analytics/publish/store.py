"""The snapshot store: a lock, atomic publishing, `latest.json`, and clean-up.

Layout under the store root:

    latest.json                         {"snapshot_date": ..., "path": "snapshot_date=..."}
    snapshot_date=YYYY-MM-DD  ->  .versions/YYYY-MM-DD.<build id>    (a symbolic link)
    .versions/<date>.<build id>/        one complete snapshot, never changed once published
    .staging/<build id>/                a snapshot being written (removed if a run dies)
    .lock                               held with flock() by the running job
    .ledger/                            staged rows per export file, Parquet (see ledger.py)

A snapshot is written in `.staging`, moved into `.versions` (same file system: a
rename), and made visible by renaming a new symbolic link over `snapshot_date=...`.
Each step is atomic, so readers see the old snapshot or the new one, never a part.
Rebuilding a date swaps the link; the replaced version stays for readers that hold it
open and is removed by a later run after a grace period. Pruning (retention) and
`delete` work the same way: they remove the link and leave the version to the grace
period.

`latest.json` names the newest date, unless it carries `"pinned": true` (`pin`, the
rollback): runs then publish their dates and leave it alone until `unpin`. `verify`
re-hashes every published file against its manifest; `repair` fixes what needs no
exports (latest.json, dangling links, leftovers of killed runs).
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
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath

from scenario_analytics.errors import (
    AnalyticsError,
    InvalidUsageError,
    NotFoundError,
    StoreLockedError,
)
from scenario_analytics.files import fsync_folder, write_atomically
from scenario_analytics.ingest.ledger import LEDGER_NAME
from scenario_analytics.publish.fingerprint import sql_version
from scenario_analytics.publish.manifest import Manifest, OutputEntry, file_sha256
from scenario_analytics.publish.sharing import Sharing

_LINK = re.compile(r"^snapshot_date=(\d{4}-\d{2}-\d{2})$")
REPLACED_GRACE_SECONDS = 3600.0
QUARANTINE_FOLDER = ".quarantine"  # written by quarantine.py


def snapshot_dir_name(snapshot_date: date) -> str:
    return f"snapshot_date={snapshot_date.isoformat()}"


@dataclass(frozen=True)
class LatestFile:
    """What `latest.json` says: a date, the store-relative path of its snapshot, and
    whether it is pinned there (`"pinned": true`, written only when true)."""

    snapshot_date: date
    path: str
    pinned: bool = False

    @classmethod
    def of(cls, snapshot_date: date, pinned: bool = False) -> LatestFile:
        return cls(snapshot_date, snapshot_dir_name(snapshot_date), pinned)

    def to_bytes(self) -> bytes:
        body: dict[str, object] = {
            "snapshot_date": self.snapshot_date.isoformat(),
            "path": self.path,
        }
        if self.pinned:
            body["pinned"] = True
        return json.dumps(body).encode() + b"\n"


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
        marks = {"latest.json", ".versions", ".staging", ".lock", LEDGER_NAME, QUARANTINE_FOLDER}
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
        """The date latest.json names (pinned or not), or None (none, or unreadable)."""
        found = self.latest_file()
        return found.snapshot_date if found is not None else None

    def latest_file(self) -> LatestFile | None:
        """latest.json as it is, or None if it is missing or unreadable."""
        try:
            data = json.loads((self.root / "latest.json").read_text(encoding="utf-8"))
            day = date.fromisoformat(str(data["snapshot_date"]))
            return LatestFile(day, str(data.get("path", "")), data.get("pinned") is True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def pinned(self) -> date | None:
        """The date latest.json is pinned to, while that date is published; else None
        (a pin on a date no longer published holds nothing)."""
        found = self.latest_file()
        if found is None or not found.pinned or self.snapshot_path(found.snapshot_date) is None:
            return None
        return found.snapshot_date

    def pin_holds(self, snapshot_date: date) -> date | None:
        """The pinned date, when a pin keeps latest.json from moving to `snapshot_date`
        (a date after it); else None. What `publish` decides, for its caller to report."""
        pinned = self.pinned()
        return pinned if pinned is not None and snapshot_date > pinned else None

    def newest(self) -> date | None:
        """The newest date with a readable snapshot (its manifest.json is there)."""
        readable = [d for d in self.dates() if self.snapshot_path(d) is not None]
        return readable[-1] if readable else None

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

    def sharing(self, snapshot_date: date) -> Sharing:
        """What a new snapshot of `snapshot_date` may share with published ones: the
        files of the date's current version (a rerun) and of the nearest published dates
        before and after it (the night before; a backfill's next day), in that order."""
        dates = self.dates()
        before = [d for d in dates if d < snapshot_date]
        after = [d for d in dates if d > snapshot_date]
        neighbours = [snapshot_date] if snapshot_date in dates else []
        neighbours += before[-1:] + after[:1]
        found = []
        for day in neighbours:
            path = self.snapshot_path(day)
            manifest = self.manifest(day)
            if path is not None and manifest is not None:
                found.append((path, manifest))
        return Sharing.of(found)

    def snapshots(self) -> list[SnapshotInfo]:
        """Every published snapshot, oldest first, from its manifest and files."""
        latest = self.latest_file()
        found = []
        for day in self.dates():
            path = self.snapshot_path(day)
            manifest = self.manifest(day)
            if path is None or manifest is None:
                continue
            is_latest = latest is not None and day == latest.snapshot_date
            found.append(
                SnapshotInfo.of(
                    day,
                    self.root / snapshot_dir_name(day),
                    path,
                    manifest,
                    is_latest,
                    pinned=is_latest and latest is not None and latest.pinned,
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
        # A pin keeps latest.json where it is (`pin_holds` tells the caller).
        if latest is None or (snapshot_date >= latest and self.pinned() is None):
            try:
                self._write_latest(LatestFile.of(snapshot_date))
            except OSError:
                # A failed run changes nothing readers see: take the new link back.
                self._unpublish(public, previous, version)
                raise
        fsync_folder(self.root)
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

    def _write_latest(self, latest: LatestFile | None) -> None:
        """Replace latest.json atomically (None: remove it, nothing being published)."""
        if latest is None:
            (self.root / "latest.json").unlink(missing_ok=True)
        else:
            write_atomically(self.root / "latest.json", latest.to_bytes())

    def _repair_latest(self) -> str | None:
        """latest.json names the newest published date again after a run was killed
        between renaming its link into place (the commit point) and writing latest.json,
        or when it names no readable snapshot (a link removed by hand); it goes when
        nothing is published. A pin stays while its date is published. Returns what it
        changed, or None."""
        if self.pinned() is not None:
            return None
        current = self.latest_file()
        newest = self.newest()
        if newest is None:
            if not (self.root / "latest.json").exists():
                return None
            self._write_latest(None)
            return "removed latest.json: no snapshot is published"
        if (
            current is None
            or current.pinned  # pinned to a date no longer published
            or self.snapshot_path(current.snapshot_date) is None
            or current.path != snapshot_dir_name(current.snapshot_date)
            or newest > current.snapshot_date
        ):
            self._write_latest(LatestFile.of(newest))
            return f"latest.json now names {newest.isoformat()}, the newest published date"
        return None

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
            self._unlink_snapshot(day)
            removed.append(day)
        if removed:
            fsync_folder(self.root)
        return sorted(removed)

    def _unlink_snapshot(self, day: date) -> None:
        """Unpublish a date: its link goes now (atomically: a reader sees the snapshot or
        none), its version is marked and goes after the grace period (`clean_up`)."""
        link = self.root / snapshot_dir_name(day)
        version = link.resolve()
        link.unlink()
        if version.is_dir() and version.parent == self.versions.resolve():
            (version / ".replaced").touch()

    def _leftovers(self) -> list[Path]:
        """What killed runs leave in the store besides versions no link names: staging
        folders, temporary links, temporary latest.json files."""
        found = sorted(self.staging.iterdir()) if self.staging.is_dir() else []
        found += sorted(self.root.glob(".snapshot_date=*.link"))
        found += sorted(self.root.glob(".latest.json.*.tmp"))
        return found

    def _orphans(self) -> list[Path]:
        """Versions no link names and not marked as replaced: a publish died between the
        rename and the link."""
        if not self.versions.is_dir():
            return []
        live = self._live_versions()
        return sorted(
            e
            for e in self.versions.iterdir()
            if e.resolve() not in live and not (e / ".replaced").exists()
        )

    def _live_versions(self) -> set[Path]:
        return {(self.root / snapshot_dir_name(d)).resolve() for d in self.dates()}

    def clean_up(self, grace_seconds: float = REPLACED_GRACE_SECONDS) -> list[str]:
        """Remove what killed runs left behind and versions replaced long enough ago."""
        removed: list[str] = []
        for entry in self._leftovers():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            if not entry.name.startswith(".latest.json."):
                removed.append(entry.relative_to(self.root).as_posix())
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

    # -- managing: pin, unpin, delete, verify, repair, usage ------------------------------
    def pin(self, snapshot_date: date) -> LatestFile | None:
        """Make latest.json name `snapshot_date` and keep it there (the rollback): runs
        and backfills still publish their dates but leave it alone until `unpin`. Returns
        what latest.json said before. Exit 3 for a date not published; takes the store's
        lock (exit 5 while a run holds it)."""
        with self.lock():
            if self.snapshot_path(snapshot_date) is None:
                raise self._not_published(snapshot_date)
            before = self.latest_file()
            self._write_latest(LatestFile.of(snapshot_date, pinned=True))
            fsync_folder(self.root)
            return before

    def unpin(self) -> tuple[LatestFile | None, date]:
        """Remove the pin: latest.json names the newest published date again. Returns what
        it said before and the date it names now."""
        with self.lock():
            newest = self.newest()
            if newest is None:
                raise NotFoundError(
                    f"no snapshot is published in {self.root}",
                    "publish one with `scenario-analytics run` first",
                )
            before = self.latest_file()
            self._write_latest(LatestFile.of(newest))
            fsync_folder(self.root)
            return before, newest

    def delete(self, snapshot_date: date, force: bool = False) -> Deleted:
        """Unpublish one date the way retention does: the link goes now, the version after
        the grace period (a reader holding it keeps whole files).

        The date latest.json names is refused (exit 2) unless `force`; then latest.json
        first moves to the newest remaining date, unpinned (or goes with the last
        snapshot), so it never names a missing snapshot. Exit 3 for a date not published.
        """
        with self.lock():
            if snapshot_date not in self.dates():
                raise self._not_published(snapshot_date)
            current = self.latest_file()
            deleted = Deleted(snapshot_date)
            if current is not None and current.snapshot_date == snapshot_date:
                if not force:
                    raise InvalidUsageError(
                        f"{snapshot_date.isoformat()} is the snapshot latest.json names"
                        + (" (pinned)" if current.pinned else "")
                        + ": readers would lose it",
                        "pass --force to delete it and move latest.json to the newest "
                        "remaining date, or pin another date first",
                    )
                remaining = [
                    d
                    for d in self.dates()
                    if d != snapshot_date and self.snapshot_path(d) is not None
                ]
                if remaining:
                    self._write_latest(LatestFile.of(remaining[-1]))
                    deleted = Deleted(snapshot_date, latest_moved_to=remaining[-1])
                else:
                    self._write_latest(None)
                    deleted = Deleted(snapshot_date, latest_removed=True)
            self._unlink_snapshot(snapshot_date)
            fsync_folder(self.root)
            return deleted

    def verify(self) -> Verification:
        """Re-hash every published file against its snapshot's manifest; check latest.json,
        the links and, unless a run holds the store now, leftovers of killed runs. Only
        reads (files of manifests without sha256 are noted as not verifiable)."""
        found = Verification()
        for link in sorted(e for e in self.root.iterdir() if _LINK.match(e.name)):
            try:
                day = date.fromisoformat(link.name.split("=", 1)[1])
            except ValueError:
                continue
            if not link.exists():
                found.problems.append(
                    Problem(
                        f"{link.name} is a dangling link (its version {os.readlink(link)} is gone)",
                        f"{REPAIR} (it removes the link)",
                        repairable=True,
                        snapshot_date=day,
                    )
                )
                continue
            found.snapshots += 1
            _verify_snapshot(day, link.resolve(), found)
        self._verify_latest(found)
        if self.is_locked():
            found.notes.append("a run holds the store now: leftovers of killed runs not looked for")
        else:
            for entry in [*self._leftovers(), *self._orphans()]:
                found.problems.append(
                    Problem(
                        f"{entry.relative_to(self.root).as_posix()} is left over from a killed run",
                        f"{REPAIR} (so does the next run)",
                        repairable=True,
                    )
                )
        return found

    def _verify_latest(self, found: Verification) -> None:
        current = self.latest_file()
        newest = self.newest()
        if current is None:
            path = self.root / "latest.json"
            if path.exists() or path.is_symlink():
                what = "latest.json is unreadable"
            elif newest is not None:
                what = f"latest.json is missing, while {newest.isoformat()} is published"
            else:
                return
        else:
            day = current.snapshot_date.isoformat()
            if self.snapshot_path(current.snapshot_date) is None:
                what = f"latest.json names {day}, which has no published snapshot" + (
                    " (pinned)" if current.pinned else ""
                )
            elif current.path != snapshot_dir_name(current.snapshot_date):
                what = f"latest.json names {day} with the path {current.path!r}"
            elif not current.pinned and newest is not None and newest > current.snapshot_date:
                what = (
                    f"latest.json names {day}, not the newest published date "
                    f"{newest.isoformat()}, and is not pinned"
                )
            else:
                return
        found.problems.append(Problem(what, REPAIR, repairable=True))

    def repair(self) -> list[str]:
        """Fix what can be fixed without the exports: remove dangling `snapshot_date=`
        links, point a missing, unreadable or dangling latest.json at the newest published
        date (a pin stays while its date is published), remove what `clean_up` removes.
        Never deletes a snapshot: damaged files are for `verify` to name and a backfill
        with --force to rebuild. Returns what it did, one line each; takes the lock."""
        with self.lock():
            done = []
            for link in sorted(e for e in self.root.iterdir() if _LINK.match(e.name)):
                if link.is_symlink() and not link.exists():
                    link.unlink()
                    done.append(f"removed the dangling link {link.name}")
            latest = self._repair_latest()
            if latest is not None:
                done.append(latest)
            done += [f"removed {leftover}" for leftover in self.clean_up()]
            fsync_folder(self.root)
            return done

    def usage(self) -> StoreUsage:
        """Disk use: published snapshots, replaced versions kept for readers (`.versions`
        entries no link names), quarantines, the ledger, and the whole folder."""
        live = self._live_versions()
        replaced = (
            [e for e in self.versions.iterdir() if e.resolve() not in live]
            if self.versions.is_dir()
            else []
        )
        folder = self.root / QUARANTINE_FOLDER
        quarantines = list(folder.iterdir()) if folder.is_dir() else []
        # Files shared between snapshots count once, where they are first met: in the
        # published snapshots, then in replaced versions (what deleting those frees).
        seen: set[tuple[int, int]] = set()
        return StoreUsage(
            snapshots=len(live),
            snapshot_bytes=sum(_folder_bytes(p, seen) for p in live),
            replaced=len(replaced),
            replaced_bytes=sum(_folder_bytes(p, seen) for p in replaced),
            quarantines=len(quarantines),
            quarantine_bytes=sum(_folder_bytes(p, seen) for p in quarantines),
            ledger_bytes=_folder_bytes(self.root / LEDGER_NAME),
            store_bytes=_folder_bytes(self.root, set()),
        )

    def is_locked(self) -> bool:
        """Whether a run (or another holder) has the store's lock now. Tries the lock
        without waiting and lets it go at once."""
        try:
            fd = os.open(self.root / ".lock", os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # also lets go of the lock if it was taken
        return False

    def _not_published(self, snapshot_date: date) -> NotFoundError:
        return NotFoundError(
            f"no published snapshot for {snapshot_date.isoformat()} in {self.root}",
            "`scenario-analytics snapshots` lists the published dates",
        )


REPAIR = "`scenario-analytics snapshots verify --repair` fixes it"


def rebuild_hint(snapshot_date: date) -> str:
    day = snapshot_date.isoformat()
    return f"rebuild it with `scenario-analytics backfill --from {day} --to {day} --force`"


@dataclass(frozen=True)
class Deleted:
    """What `Store.delete` did: the date unpublished and what became of latest.json."""

    snapshot_date: date
    latest_moved_to: date | None = None  # it named the deleted date (with --force)
    latest_removed: bool = False  # the last snapshot went, latest.json with it


@dataclass(frozen=True)
class Problem:
    """One thing `Store.verify` found wrong: what, what to do, and whether
    `Store.repair` fixes it (else the snapshot must be rebuilt from the exports)."""

    what: str
    fix: str
    repairable: bool
    snapshot_date: date | None = None

    def __str__(self) -> str:
        return f"{self.what} — {self.fix}"


@dataclass
class Verification:
    """What `Store.verify` found: snapshots looked at, files re-hashed, problems, and notes
    (files not verifiable, checks left out) that are not problems."""

    snapshots: int = 0
    files: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def whole(self) -> bool:
        return not self.problems

    @property
    def damaged(self) -> list[date]:
        """Dates whose files are damaged: to rebuild (repair cannot)."""
        return sorted(
            {p.snapshot_date for p in self.problems if not p.repairable and p.snapshot_date}
        )


@dataclass(frozen=True)
class StoreUsage:
    """Bytes on disk by kind (`Store.usage`); `store_bytes` is the whole folder."""

    snapshots: int
    snapshot_bytes: int
    replaced: int
    replaced_bytes: int
    quarantines: int
    quarantine_bytes: int
    ledger_bytes: int
    store_bytes: int

    def as_json(self) -> dict[str, object]:
        return {
            "snapshots": {"count": self.snapshots, "bytes": self.snapshot_bytes},
            "replaced_versions": {"count": self.replaced, "bytes": self.replaced_bytes},
            "quarantines": {"count": self.quarantines, "bytes": self.quarantine_bytes},
            "ledger": {"bytes": self.ledger_bytes},
            "store": {"bytes": self.store_bytes},
        }


def _verify_snapshot(day: date, folder: Path, found: Verification) -> None:
    """One snapshot's files against its manifest (`Store.verify`)."""

    def damaged(what: str) -> None:
        found.problems.append(
            Problem(f"{day.isoformat()}: {what}", rebuild_hint(day), False, snapshot_date=day)
        )

    manifest = Manifest.read(folder / "manifest.json")
    if manifest is None:
        damaged("manifest.json is missing or unreadable")
        return
    if manifest.snapshot_date != day:
        damaged(f"manifest.json is the one of {manifest.snapshot_date.isoformat()}")
    unverifiable = []
    for output in manifest.outputs:
        expected = _expected_files(folder, output, damaged)
        if expected is None:
            unverifiable.append(output.path)
            continue
        for rel, sha256 in sorted(expected.items()):
            problem = _check_file(folder, rel, sha256)
            if problem is not None:
                damaged(problem)
            elif sha256 is None:
                unverifiable.append(rel)
            else:
                found.files += 1
    if unverifiable:
        found.notes.append(
            f"{day.isoformat()}: not verifiable (manifest without sha256): "
            + ", ".join(unverifiable)
        )


def _expected_files(
    folder: Path, output: OutputEntry, damaged: Callable[[str], None]
) -> dict[str, str | None] | None:
    """The files an output entry stands for, with their sha256 (None: not recorded).
    None for a glob without its files (manifests before sha256): only counted."""
    if "*" not in output.path:
        return {output.path: output.sha256}
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.glob(output.path))
    if output.files is None:
        if len(on_disk) != output.rows:
            damaged(f"{output.path}: {len(on_disk)} files, the manifest says {output.rows}")
        return None
    for rel in on_disk:
        if rel not in output.files:
            damaged(f"{rel} is not in the manifest")
    return dict(output.files)


def _check_file(folder: Path, rel: str, sha256: str | None) -> str | None:
    """What is wrong with one file of a snapshot, or None."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts:
        return f"the manifest lists {rel!r}, a path outside the snapshot"
    path = folder / rel
    if not path.is_file():
        return f"{rel} is missing"
    if sha256 is None:
        return None
    try:
        actual = file_sha256(path)
    except OSError as exc:
        return f"{rel} cannot be read: {exc.strerror or exc}"
    if actual != sha256:
        return f"{rel} is damaged: its sha256 is not the manifest's"
    return None


def _folder_bytes(path: Path, seen: set[tuple[int, int]] | None = None) -> int:
    """Bytes of the files under `path` (or of `path`, a file); symbolic links are not
    followed. With `seen`, a file with several names (hard links shared between
    snapshots, `publish/sharing.py`) counts once over every call given the same set,
    as `du` counts it."""
    if path.is_file() and not path.is_symlink():
        paths = [str(path)]
    else:
        paths = [os.path.join(d, name) for d, _dirs, names in os.walk(path) for name in names]
    total = 0
    for name in paths:
        try:
            info = os.lstat(name)
        except OSError:  # removed meanwhile (a clean-up, a run)
            continue
        if seen is not None:
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
        total += info.st_size
    return total


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
    pinned: bool = False  # latest.json names it and is pinned there

    @classmethod
    def of(
        cls,
        day: date,
        public: Path,
        folder: Path,
        manifest: Manifest,
        latest: bool,
        pinned: bool = False,
    ) -> SnapshotInfo:
        version = manifest.sql_version
        if version is None:  # written before manifests named their SQL version
            version = sql_version((f.file, f.sha256) for f in manifest.sql)
        size = _folder_bytes(folder)
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
            pinned=pinned,
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
            "pinned": self.pinned,
        }


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            fd = os.open(os.path.join(dirpath, filename), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_folder(Path(dirpath))


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
