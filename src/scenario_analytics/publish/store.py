"""The snapshot store: publishing without rename, a lease instead of a lock, clean-up.

The same layout and the same rules on local disk and on S3 (`storage/` is the only
code that knows which): files are written first, completely, and a snapshot becomes
visible by one conditional write of its commit record.

    latest.json                        {"snapshot_date": ..., "path": "snapshot_date=..."}
    snapshot_date=YYYY-MM-DD/          the published version's files: manifest.json,
                                       <table>.parquet, api/scenarios/…/summary.json
    .objects/sessions/created_date=D/<sha256>.parquet
                                       session partitions, shared by every snapshot
                                       that has the same day's sessions (by content)
    .commits/YYYY-MM-DD.json           the date's commit record: published = present
    .retired/<date>.<build>.json       versions unpublished or replaced, kept for an hour
    .staging/<build>/                  a new version's files before they are in place
    .lease.json                        the running job's lease (`lease.py`)
    .store.json                        {"format": 2}
    .ledger/                           staged rows per export file (`ingest/ledger.py`)
    .quarantine/                       what refused runs leave (`quarantine.py`)

Publishing one date (`publish`):
1. Upload every file of the new version: session partitions to `.objects/` (unless an
   equal one is there: sharing by reference), everything else to `.staging/<build>/`.
   Each upload is verified (size and sha256) before anything is committed.
2. Commit: write `.commits/<date>.json` naming `.staging/<build>`, conditionally: only if
   there was none (a new date) or it is still the version the build started from (a
   rebuild). This is the moment the version becomes visible; two writers cannot both
   win (the loser exits 5 and publishes nothing).
3. Move in place: copy the files that differ into `snapshot_date=<date>/` (manifest.json
   last), then re-commit the record naming that folder. A reader always reads the keys
   its record names, so it never mixes versions; warehouses that glob
   `snapshot_date=*/<table>.parquet` read the folder (docs/DATA_DICTIONARY.md).
4. `latest.json` names the newest date (a conditional write too), unless it is pinned.

A replaced or unpublished version is retired, not deleted: a `.retired/` entry lists
its keys, kept for the grace period (`[storage] grace_seconds`, an hour by default) so
that readers holding it keep whole files;
`clean_up` (at the start of each run, and `snapshots verify --repair`) then deletes the
keys no published version uses, along with what killed runs left (uploads never
committed, a move in place not finished: that one is finished instead).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from fnmatch import fnmatchcase
from pathlib import Path

from scenario_analytics.errors import (
    AnalyticsError,
    InvalidUsageError,
    NotFoundError,
    StoreLockedError,
)
from scenario_analytics.faults import checkpoint
from scenario_analytics.layout import LEDGER_NAME
from scenario_analytics.locations import Location
from scenario_analytics.publish.fingerprint import sql_version
from scenario_analytics.publish.lease import LEASE_KEY, Lease, read_holder
from scenario_analytics.publish.legacy import LEGACY_NAMES, flatten_legacy_layout
from scenario_analytics.publish.manifest import Manifest
from scenario_analytics.publish.records import (
    COMMITS,
    MANIFEST,
    POOL,
    RETIRED,
    STAGING,
    Record,
    Retired,
    Version,
    is_pooled,
    now_stamp,
    pool_key,
    record_key,
    snapshot_dir_name,
)
from scenario_analytics.publish.sharing import Sharing
from scenario_analytics.publish.snapshot import SESSIONS_FOLDER, SESSIONS_GLOB, session_file_names
from scenario_analytics.settings import StorageSettings
from scenario_analytics.storage import (
    ObjectMissing,
    PreconditionFailed,
    Storage,
    StorageError,
    open_storage,
    sha256_file,
)

__all__ = ["Store", "DamagedFile", "snapshot_dir_name", "require_store"]


class DamagedFile(StorageError):
    """A snapshot's file whose bytes are not those its manifest records (changed on disk
    or in the bucket after it was published): it must never answer (exit 1). `rel`: its
    path in the snapshot."""

    def __init__(self, message: str, rel: str) -> None:
        super().__init__(message)
        self.rel = rel


MOVED_IN_PLACE = "moved in place"  # the reason of a retired entry of a version's uploads
QUARANTINE_FOLDER = ".quarantine"  # written by quarantine.py
FORMAT_KEY = ".store.json"
STORE_FORMAT = 2
LATEST = "latest.json"
_MARKS = {LATEST, FORMAT_KEY, LEASE_KEY, LEDGER_NAME, QUARANTINE_FOLDER, *LEGACY_NAMES}
_MARK_FOLDERS = {COMMITS.rstrip("/"), POOL.rstrip("/"), LEDGER_NAME, QUARANTINE_FOLDER}


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

    @classmethod
    def from_bytes(cls, data: bytes) -> LatestFile | None:
        try:
            body = json.loads(data)
            day = date.fromisoformat(str(body["snapshot_date"]))
            return cls(day, str(body.get("path", "")), body.get("pinned") is True)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass
class Build:
    """A version of one date being written: its local folder (`folder`, what the writer
    fills), the version it replaces (None for a new date), and the session partitions
    it shares with published versions instead of writing them (`sharing`)."""

    snapshot_date: date
    name: str
    folder: Path
    base: Version | None
    base_etag: str | None
    sharing: Sharing


class Store:
    def __init__(
        self, where: Storage | Location | Path | str, settings: StorageSettings | None = None
    ) -> None:
        self.settings = settings or StorageSettings()
        self.storage = (
            where if isinstance(where, Storage) else open_storage(Location.parse(where), settings)
        )
        self._lease: Lease | None = None
        self._format_known = False
        # Read once, then only when their tag changes (a reader that polls, a run that
        # looks at the same dates again): records by date, manifests by key and sha256.
        self._records: dict[date, tuple[Record, str]] = {}
        self._manifests: dict[tuple[str, str], Manifest] = {}
        self._latest: tuple[LatestFile | None, str] | None = None
        self._builds: dict[str, Build] = {}  # begun, not committed yet
        # Local copies found whole (`fetch(whole=True)`), with the stat they had then.
        self._whole: dict[Path, tuple[str, int, int, int]] = {}

    @property
    def root(self) -> Location:
        return self.storage.location

    def describe(self, rel: str = "") -> str:
        """How people see the store or a path in it (messages, what `run` prints)."""
        return self.storage.describe(rel)

    def public(self, snapshot_date: date) -> str:
        """A date's snapshot folder as people see it."""
        return self.describe(snapshot_dir_name(snapshot_date))

    def close(self) -> None:
        self.storage.close()

    # -- the layout -----------------------------------------------------------------------------
    def _legacy(self) -> bool:
        """A store of the first layout (local only: `snapshot_date=` links to `.versions`,
        no commit records), read as it is until a run converts it (`_convert`)."""
        if self._format_known:
            return False
        if self.storage.head(FORMAT_KEY) is not None:
            self._format_known = True
            return False
        return any(_date_of_folder(n) for n in self.storage.list_folders(""))

    def is_store(self) -> bool:
        """An empty location (a store nothing was published into yet) or one holding what
        a run leaves: not some other folder (the exports, a home folder) named by mistake."""
        try:
            folders = self.storage.list_folders("")
            if any(n in _MARK_FOLDERS or _date_of_folder(n) for n in folders):
                return True
            top = [o.key for o in self.storage.objects("") if "/" not in o.key]
        except StorageError:
            return False
        return (not folders and not top) or bool(set(top) & _MARKS)

    # -- reading ----------------------------------------------------------------------------------
    def dates(self) -> list[date]:
        """Published snapshot dates, oldest first."""
        if self._legacy():
            return sorted(
                day
                for name in self.storage.list_folders("")
                if (day := _date_of_folder(name)) is not None
                and self.storage.head(f"{name}/{MANIFEST}") is not None
            )
        found = []
        for info in self.storage.objects(COMMITS):
            name = info.key[len(COMMITS) :]
            if "/" not in name and name.endswith(".json"):
                try:
                    found.append(date.fromisoformat(name.removesuffix(".json")))
                except ValueError:
                    continue
        return sorted(found)

    def record(self, snapshot_date: date) -> tuple[Record, str] | None:
        """A date's commit record and its tag, or None if the date is not published."""
        if self._legacy():
            info = self.storage.head(f"{snapshot_dir_name(snapshot_date)}/{MANIFEST}")
            if info is None:
                return None
            data, etag = self.storage.read(info.key)
            record = Record(
                snapshot_date,
                "legacy",
                snapshot_dir_name(snapshot_date),
                hashlib.sha256(data).hexdigest(),
                "",
                pooled=False,
            )
            return record, etag
        key = record_key(snapshot_date)
        cached = self._records.get(snapshot_date)
        try:
            found = self.storage.read_if_changed(key, cached[1] if cached else None)
        except ObjectMissing:
            self._records.pop(snapshot_date, None)
            return None
        if found is None and cached is not None:
            return cached
        assert found is not None
        parsed = Record.from_bytes(found[0])
        if parsed is None:
            return None
        self._records[snapshot_date] = (parsed, found[1])
        return parsed, found[1]

    def version(self, snapshot_date: date) -> Version | None:
        """The published version of a date with its manifest, or None (not published, or
        its manifest is missing or not the one its record names)."""
        found = self.record(snapshot_date)
        if found is None:
            return None
        record, etag = found
        return self._version_of(record, etag)

    def _version_of(self, record: Record, etag: str) -> Version | None:
        cached = self._manifests.get((record.prefix, record.manifest_sha256))
        if cached is not None:
            return Version(record, etag, cached)
        try:
            data, _ = self.storage.read(f"{record.prefix}/{MANIFEST}")
        except ObjectMissing:
            return None
        if hashlib.sha256(data).hexdigest() != record.manifest_sha256:
            return None
        manifest = Manifest.parse(data)
        if manifest is None:
            return None
        if len(self._manifests) > 64:
            self._manifests.clear()
        self._manifests[(record.prefix, record.manifest_sha256)] = manifest
        return Version(record, etag, manifest)

    def manifest(self, snapshot_date: date) -> Manifest | None:
        """The manifest of a published snapshot, or None (none, or unreadable)."""
        version = self.version(snapshot_date)
        return version.manifest if version is not None else None

    def latest(self) -> date | None:
        """The date latest.json names (pinned or not), or None (none, or unreadable)."""
        found = self.latest_file()
        return found.snapshot_date if found is not None else None

    def latest_file(self) -> LatestFile | None:
        """latest.json as it is, or None if it is missing or unreadable. Errors other
        than a missing file (no permission, the store unreachable) raise."""
        found = self._read_latest()
        return found[0] if found is not None else None

    def _read_latest(self) -> tuple[LatestFile | None, str] | None:
        try:
            found = self.storage.read_if_changed(LATEST, self._latest[1] if self._latest else None)
        except ObjectMissing:
            self._latest = None
            return None
        if found is not None:
            self._latest = (LatestFile.from_bytes(found[0]), found[1])
        return self._latest

    def pinned(self) -> date | None:
        """The date latest.json is pinned to, while that date is published; else None
        (a pin on a date no longer published holds nothing)."""
        found = self.latest_file()
        if found is None or not found.pinned or self.record(found.snapshot_date) is None:
            return None
        return found.snapshot_date

    def pin_holds(self, snapshot_date: date) -> date | None:
        """The pinned date, when a pin keeps latest.json from moving to `snapshot_date`
        (a date after it); else None. What `publish` decides, for its caller to report."""
        pinned = self.pinned()
        return pinned if pinned is not None and snapshot_date > pinned else None

    def newest(self) -> date | None:
        """The newest date with a readable snapshot (its manifest is there)."""
        for day in reversed(self.dates()):
            if self.version(day) is not None:
                return day
        return None

    def fetch(
        self, version: Version, rel: str, *, verify: bool = False, whole: bool = False
    ) -> Path:
        """A local path with one file of a version (downloaded and checked against its
        sha256 on S3; `verify` re-hashes a local file too). `whole`: the local copy is
        hashed as it is now, wherever it came from (a cached download too), and a file
        that does not have the manifest's sha256 raises `DamagedFile` naming it: what a
        reader that answers from the file (`serve`, `query`) needs."""
        sha256 = version.files().get(rel)
        path = self.storage.fetch(version.key(rel), sha256, verify=verify)
        if whole and sha256 is not None and not verify:
            try:
                # Hashed once while the file is unchanged (readers of one server share it).
                stat = path.stat()
                seen = (sha256, stat.st_ino, stat.st_size, stat.st_mtime_ns)
                if self._whole.get(path) == seen:
                    return path
                actual = sha256_file(path)
            except OSError as exc:
                raise StorageError(f"cannot read {version.key(rel)}: {exc.strerror}") from exc
            if actual == sha256:
                self._whole[path] = seen
            else:
                raise DamagedFile(
                    f"{rel} of the snapshot of {version.snapshot_date} is damaged: "
                    f"{self.storage.describe(version.key(rel))} does not have the sha256 its "
                    "manifest records (`scenario-analytics snapshots verify` checks every file)",
                    rel,
                )
        return path

    def session_paths(self, version: Version, *, whole: bool = False) -> list[Path]:
        """Local paths of a version's session files, in day order (fetched on S3;
        `whole`: each checked as `fetch` does)."""
        names = session_file_names(list(version.files()))
        if not names and any(o.path == SESSIONS_GLOB and o.files is None
                             for o in version.manifest.outputs):  # fmt: skip
            # A manifest of an early version: its partitions are found in its folder.
            prefix = f"{version.record.prefix}/{SESSIONS_FOLDER}/"
            listed = [o.key[len(version.record.prefix) + 1 :] for o in self.storage.objects(prefix)]
            names = session_file_names(listed)
        with ThreadPoolExecutor(self.storage.concurrency) as pool:
            return list(pool.map(lambda rel: self.fetch(version, rel, whole=whole), names))

    def sharing(self, snapshot_date: date) -> Sharing:
        """What a new snapshot of `snapshot_date` may share with published ones: the
        session partitions of the date's current version (a rerun) and of the nearest
        published dates before and after it (the night before; a backfill's next day)."""
        dates = self.dates()
        before = [d for d in dates if d < snapshot_date]
        after = [d for d in dates if d > snapshot_date]
        neighbours = [snapshot_date] if snapshot_date in dates else []
        neighbours += before[-1:] + after[:1]
        versions = [v for d in neighbours if (v := self.version(d)) is not None]
        return Sharing.of(versions, self.storage)

    def snapshots(self) -> list[SnapshotInfo]:
        """Every published snapshot, oldest first, from its manifest and files."""
        latest = self.latest_file()
        sizes = {o.key: o.size for o in self.storage.objects("")}
        found = []
        for day in self.dates():
            version = self.version(day)
            if version is None:
                continue
            is_latest = latest is not None and day == latest.snapshot_date
            found.append(
                SnapshotInfo.of(
                    version,
                    self.public(day),
                    sum(sizes.get(k, 0) for k in set(version.keys().values())),
                    is_latest,
                    pinned=is_latest and latest is not None and latest.pinned,
                )
            )
        return found

    # -- the lease --------------------------------------------------------------------------------
    @contextmanager
    def lock(self, command: str = "") -> Iterator[None]:
        """Hold the store for one job (its lease, `lease.py`); a second job fails at once
        with exit 5. A store of the first layout is converted first (`_convert`)."""
        self.storage.check(create=True)
        lease = Lease.acquire(self.storage, self.settings.lease_seconds, command)
        self._lease = lease
        try:
            self._convert()
            yield
        finally:
            self._lease = None
            lease.release()

    def state(self) -> str:
        """What is at the location before a run: "missing" (a local folder that does not
        exist), "empty" (an empty folder, or nothing under an S3 prefix) or "used"."""
        try:
            self.storage.check(create=False)
        except StorageError:
            return "missing"
        try:
            return "empty" if self.storage.is_empty() else "used"
        except AnalyticsError:  # unreadable: certainly not ours to remove
            return "used"

    def discard_new(self) -> list[str]:
        """After a failed run on a store it made (`state()` was not "used" before it), still
        under its lease: delete what it left (ledger parts, the format mark, scratch) but
        the lease, unless something was published or a refusal left its evidence
        (`.quarantine/`). Once the lease is released, `storage.remove_location()` removes
        the folder. A store that did not exist before a failed run does not exist after
        it. Returns the keys removed."""
        if self.storage.objects(COMMITS) or self.storage.objects(QUARANTINE_FOLDER + "/"):
            return []
        self._check_lease()  # under the lease: no other run writes here meanwhile
        removed = self.storage.clean_scratch()
        keys = [o.key for o in self.storage.objects("") if o.key != LEASE_KEY]
        self.storage.delete(keys)
        return removed + keys

    def _check_lease(self) -> None:
        if self._lease is None:
            raise AnalyticsError("internal error: the store is written without its lease")
        self._lease.check()

    def is_locked(self) -> bool:
        """Whether a job holds the store's lease now (one that has not ended)."""
        found = read_holder(self.storage)
        if found is None:
            return False
        holder, _etag = found
        return holder is not None and not holder.gone(time.time())

    def holder(self) -> str | None:
        """Who holds the lease, in words (None: no lease)."""
        found = read_holder(self.storage)
        if found is None:
            return None
        holder, _etag = found
        return holder.describe() if holder is not None else "an unreadable lease"

    def unlock(self) -> str | None:
        """Remove the lease, whoever holds it (`snapshots unlock --force`); returns its
        holder in words, or None if there was none."""
        found = read_holder(self.storage)
        if found is None:
            return None
        holder, etag = found
        self.storage.delete_if(LEASE_KEY, etag)
        return holder.describe() if holder is not None else "an unreadable lease"

    def _convert(self) -> None:
        """Make a store of the first layout (local: `snapshot_date=` links to `.versions`)
        the current one: its folders in place and a commit record each; mark the format."""
        if self._format_known or self.storage.head(FORMAT_KEY) is not None:
            self._format_known = True
            return
        legacy = self._legacy()
        if legacy:
            flatten_legacy_layout(self.storage)
            for name in self.storage.list_folders(""):
                day = _date_of_folder(name)
                if day is None or self.storage.head(f"{name}/{MANIFEST}") is None:
                    continue
                data, _ = self.storage.read(f"{name}/{MANIFEST}")
                record = Record(
                    day, "legacy", name, hashlib.sha256(data).hexdigest(), now_stamp(), pooled=False
                )
                self.storage.write(record_key(day), record.to_bytes())
        self.storage.write(FORMAT_KEY, json.dumps({"format": STORE_FORMAT}).encode() + b"\n")
        self._format_known = True

    # -- writing one version ----------------------------------------------------------------------
    def begin(self, snapshot_date: date) -> Build:
        """Start writing a version of a date: a local folder to fill, and the current
        version (if any), which the commit must still find in place."""
        name = uuid.uuid4().hex
        found = self.record(snapshot_date)
        base = self._version_of(*found) if found is not None else None
        build = Build(
            snapshot_date,
            name,
            self.storage.scratch(name),
            base,
            found[1] if found is not None else None,
            self.sharing(snapshot_date),
        )
        self._builds[name] = build
        return build

    def new_scratch(self) -> Path:
        """A new local folder for a job's own files (an engine's tables), gone with the
        job's builds (`abandon_builds`) or the next run's clean-up."""
        return self.storage.scratch(uuid.uuid4().hex)

    def abandon_builds(self) -> None:
        """Drop the builds begun and not committed (a job that stops on an error): their
        local folders and what they uploaded to `.staging` (the pool is `clean_up`'s)."""
        builds, self._builds = list(self._builds.values()), {}
        for build in builds:
            shutil.rmtree(build.folder, ignore_errors=True)
            try:
                keys = [o.key for o in self.storage.objects(f"{STAGING}{build.name}/")]
                self.storage.delete(keys)
            except StorageError:
                pass  # the next run's clean-up removes them

    def publish(self, build: Build, manifest: Manifest) -> str:
        """Upload, commit, move in place and point latest.json at a written version (the
        module's docstring); returns the snapshot's folder as people see it."""
        self._check_lease()
        day = build.snapshot_date
        local = _files_in(build.folder)
        manifest_sha256 = sha256_file(build.folder / MANIFEST)
        sha = {**manifest.files(), MANIFEST: manifest_sha256}
        staged = f"{STAGING}{build.name}"
        uploads: list[tuple[str, Path, str]] = []
        copies: list[tuple[str, str]] = []  # unchanged files: from a published version
        for rel, path in local.items():
            digest = sha.get(rel) or sha256_file(path)
            if is_pooled(rel):
                uploads.append((pool_key(rel, digest), path, digest))
            elif (same := build.sharing.same_file(rel, digest)) is not None:
                copies.append((same, f"{staged}/{rel}"))
            else:
                uploads.append((f"{staged}/{rel}", path, digest))
        self._upload(uploads)
        with ThreadPoolExecutor(self.storage.concurrency) as pool:
            list(pool.map(lambda c: self.storage.copy(*c), copies))
        shutil.rmtree(build.folder, ignore_errors=True)
        # Partitions shared with a version of the first layout are copied into the pool.
        for rel, candidate in build.sharing.used.items():
            target = pool_key(rel, candidate.sha256)
            if candidate.key != target and self.storage.head(target) is None:
                self.storage.copy(candidate.key, target)
        checkpoint("uploaded")
        objects = tuple(sorted(pool_key(r, s) for r, s in sha.items() if is_pooled(r) and s))
        record = Record(day, build.name, staged, manifest_sha256, now_stamp(), objects)
        if build.base is not None:
            self._retire(build.base, "replaced")
        self._check_lease()
        etag = self._commit(record, build.base_etag)
        self._builds.pop(build.name, None)
        checkpoint("committed")
        try:
            # A rebuild's files wait in `.staging` while readers may still hold the version
            # they replace (its folder's files): `clean_up` moves them in place later.
            if not self._folder_in_use(day):
                self._move_in_place(record, etag, manifest)
            checkpoint("moved")
            self._point_latest_at(day)
        except (StorageError, OSError):
            if build.base is None:
                self._take_back(record)
            raise
        return self.public(day)

    def _take_back(self, record: Record) -> None:
        """Unpublish a new date whose publishing failed after its commit (its files not all
        moved in place, its record or latest.json not written), so that a failed run
        changes nothing readers see; its keys are retired like a deleted date's (a reader
        may have read its record meanwhile). Best effort: if that fails too, the date stays
        published, whole, and the next run finishes it. A rebuild stays published: the
        files of its date's folder may be replaced already (the next run finishes it)."""
        try:
            found = self.record(record.snapshot_date)
            if found is not None and found[0].build == record.build:
                self._unpublish(record.snapshot_date, "taken back")
        except StorageError:
            pass

    def _upload(self, uploads: list[tuple[str, Path, str]]) -> None:
        def one(item: tuple[str, Path, str]) -> None:
            # A session file is written only when no published version has it (`Sharing`),
            # so its object is new, or damaged (sharing refused it): written whole either
            # way, which mends a damaged one for every snapshot that uses it.
            key, path, digest = item
            self.storage.upload(key, path, digest, move=True)

        with ThreadPoolExecutor(self.storage.concurrency) as pool:
            list(pool.map(one, uploads))

    def _commit(self, record: Record, base_etag: str | None) -> str:
        key = record_key(record.snapshot_date)
        try:
            if base_etag is None:
                return self.storage.create(key, record.to_bytes())
            return self.storage.replace(key, record.to_bytes(), base_etag)
        except (PreconditionFailed, ObjectMissing):
            raise StoreLockedError(
                f"another run published {record.snapshot_date.isoformat()} in "
                f"{self.describe()} while this one was writing it",
                "nothing of this run was published for that date; run again once the other "
                "run is done (safe to retry)",
            ) from None

    def _grace(self, override: float | None = None) -> float:
        """How long a retired version's files are kept for its readers."""
        return float(self.settings.grace_seconds if override is None else override)

    def _folder_in_use(self, day: date, grace_seconds: float | None = None) -> bool:
        """Whether a retired version of `day` still in its grace period has files in the
        date's folder: readers may be reading them, so they must not be replaced yet."""
        folder = snapshot_dir_name(day) + "/"
        now = time.time()
        for info in self.storage.objects(f"{RETIRED}{day.isoformat()}."):
            try:
                entry = Retired.from_bytes(self.storage.read(info.key)[0])
            except ObjectMissing:
                continue
            if entry is None or not any(k.startswith(folder) for k in entry.keys):
                continue
            if entry.since + self._grace(grace_seconds) > now:
                return True
        return False

    def _folder_files(self, day: date) -> dict[str, str | None]:
        """What the date's folder holds now, by its manifest.json: path -> sha256."""
        folder = snapshot_dir_name(day)
        try:
            data, _ = self.storage.read(f"{folder}/{MANIFEST}")
        except ObjectMissing:
            return {}
        manifest = Manifest.parse(data)
        if manifest is None:
            return {}
        return {**manifest.files(), MANIFEST: hashlib.sha256(data).hexdigest()}

    def _move_in_place(self, record: Record, etag: str, manifest: Manifest) -> str:
        """Copy a committed version's files from `.staging` into its date's folder
        (those that differ from the folder's, manifest.json last) and re-commit it there.
        Only when no reader may hold the folder's files (`_folder_in_use`). Returns the
        record's new tag."""
        day = record.snapshot_date
        folder = snapshot_dir_name(day)
        there = self._folder_files(day)
        wanted = {
            r: s
            for r, s in {**manifest.files(), MANIFEST: record.manifest_sha256}.items()
            if not is_pooled(r) or not record.pooled
        }
        changed = [
            r for r, s in wanted.items() if r != MANIFEST and (s is None or there.get(r) != s)
        ]

        def copy(rel: str) -> None:
            self.storage.copy(f"{record.prefix}/{rel}", f"{folder}/{rel}")

        def copy_if_damaged(rel: str) -> None:
            # The manifests agree on it; its bytes may not (what `verify` names damaged,
            # and a rebuild must mend).
            sha256 = wanted[rel]
            if sha256 is not None and not self.storage.matches(f"{folder}/{rel}", sha256):
                copy(rel)

        same = [r for r in wanted if r != MANIFEST and r not in changed]
        with ThreadPoolExecutor(self.storage.concurrency) as pool:
            list(pool.map(copy, changed))
            list(pool.map(copy_if_damaged, same))
        copy(MANIFEST)
        moved = Record(
            day, record.build, folder, record.manifest_sha256, record.committed_at, record.objects
        )
        staged_keys = tuple(f"{record.prefix}/{r}" for r in wanted)
        self._write_retired(Retired(day, record.build, time.time(),
                                    staged_keys, (), MOVED_IN_PLACE))  # fmt: skip
        try:
            return self.storage.replace(record_key(day), moved.to_bytes(), etag)
        except (PreconditionFailed, ObjectMissing):
            raise StoreLockedError(
                f"another run changed {day.isoformat()} in {self.describe()} while this one "
                "was moving it in place",
                "run again once the other run is done (safe to retry)",
            ) from None

    def _retire(self, version: Version, reason: str) -> None:
        """Keep a version's keys through the grace period (its readers finish on it)."""
        keys = version.keys().values()
        self._write_retired(
            Retired(
                version.snapshot_date,
                version.record.build + "." + uuid.uuid4().hex[:8],
                time.time(),
                tuple(sorted(k for k in keys if not k.startswith(POOL))),
                tuple(sorted(k for k in keys if k.startswith(POOL))),
                reason,
            )
        )

    def _retired(self) -> list[tuple[str, Retired | None]]:
        """Every entry of `.retired/`, by key (None: unreadable)."""
        found = []
        for info in self.storage.objects(RETIRED):
            try:
                found.append((info.key, Retired.from_bytes(self.storage.read(info.key)[0])))
            except ObjectMissing:  # removed meanwhile
                continue
        return found

    def _write_retired(self, retired: Retired) -> None:
        self.storage.write(retired.key, retired.to_bytes())

    # -- latest.json ----------------------------------------------------------------------------
    def _point_latest_at(self, day: date) -> None:
        """latest.json names `day` if it is the newest date and no pin holds it."""
        self._update_latest(
            lambda current: (
                LatestFile.of(day)
                if current is None or (day >= current.snapshot_date and self.pinned() is None)
                else current
            )
        )

    def _update_latest(
        self, change: Callable[[LatestFile | None], LatestFile | None]
    ) -> LatestFile | None:
        """Read latest.json, change it, write it back conditionally (again if another
        writer changed it meanwhile). Returns what it said before."""
        for _ in range(10):
            found = self._read_latest()
            current, etag = found if found is not None else (None, None)
            wanted = change(current)
            if wanted == current and (wanted is None or found is not None):
                return current
            try:
                if wanted is None:
                    if etag is not None:
                        self.storage.delete_if(LATEST, etag)
                elif etag is None:
                    self.storage.create(LATEST, wanted.to_bytes())
                else:
                    self.storage.replace(LATEST, wanted.to_bytes(), etag)
                return current
            except (PreconditionFailed, ObjectMissing):
                continue
        raise StoreLockedError(
            f"latest.json in {self.describe()} keeps changing under this run",
            "another program writes it: stop it, then run again",
        )

    def _repair_latest(self) -> str | None:
        """latest.json names the newest published date again after a run was killed
        between its commit and writing latest.json, or when it names no readable snapshot;
        it goes when nothing is published. A pin stays while its date is published.
        Returns what it changed, or None."""
        if self.pinned() is not None:
            return None
        newest = self.newest()
        said: list[str] = []

        def change(current: LatestFile | None) -> LatestFile | None:
            said.clear()
            if newest is None:
                if current is not None or self.storage.head(LATEST) is not None:
                    said.append("removed latest.json: no snapshot is published")
                return None
            if (
                current is None
                or current.pinned
                or self.version(current.snapshot_date) is None
                or current.path != snapshot_dir_name(current.snapshot_date)
                or newest > current.snapshot_date
            ):
                said.append(
                    f"latest.json now names {newest.isoformat()}, the newest published date"
                )
                return LatestFile.of(newest)
            return current

        self._update_latest(change)
        return said[0] if said else None

    # -- unpublishing, pins ---------------------------------------------------------------------
    def prune(self, keep: int, protect: Collection[date] = ()) -> list[date]:
        """Unpublish all but the newest `keep` snapshots; returns the dates removed.

        The date latest.json names is never removed, nor those in `protect` (what the
        same run published, whatever their dates). The record goes now (a reader sees the
        snapshot or no snapshot); the files after the grace period (`clean_up`).
        """
        if keep < 1:
            raise ValueError("keep at least one snapshot")
        self._check_lease()
        latest = self.latest()
        removed = []
        for day in sorted(self.dates(), reverse=True)[keep:]:
            if day == latest or day in protect:
                continue
            self._unpublish(day, "pruned")
            removed.append(day)
        return sorted(removed)

    def _unpublish(self, day: date, reason: str) -> None:
        found = self.record(day)
        if found is None:
            return
        record, etag = found
        version = self._version_of(record, etag)
        if version is not None:
            self._retire(version, reason)
        else:
            self._write_retired(
                Retired(
                    day,
                    record.build,
                    time.time(),
                    (),
                    record.objects,
                    reason,
                )  # fmt: skip
            )
        self.storage.delete_if(record_key(day), etag)

    def pin(self, snapshot_date: date) -> LatestFile | None:
        """Make latest.json name `snapshot_date` and keep it there (the rollback): runs
        and backfills still publish their dates but leave it alone until `unpin`. Returns
        what latest.json said before. Exit 3 for a date not published; takes the store's
        lease (exit 5 while a run holds it)."""
        with self.lock("snapshots pin"):
            if self.version(snapshot_date) is None:
                raise self._not_published(snapshot_date)
            return self._update_latest(lambda _c: LatestFile.of(snapshot_date, pinned=True))

    def unpin(self) -> tuple[LatestFile | None, date]:
        """Remove the pin: latest.json names the newest published date again. Returns what
        it said before and the date it names now."""
        with self.lock("snapshots unpin"):
            newest = self.newest()
            if newest is None:
                raise NotFoundError(
                    f"no snapshot is published in {self.describe()}",
                    "publish one with `scenario-analytics run` first",
                )
            before = self._update_latest(lambda _c: LatestFile.of(newest))
            return before, newest

    def delete(self, snapshot_date: date, force: bool = False) -> Deleted:
        """Unpublish one date the way retention does: the record goes now, the files after
        the grace period (a reader holding it keeps whole files).

        The date latest.json names is refused (exit 2) unless `force`; then latest.json
        first moves to the newest remaining date, unpinned (or goes with the last
        snapshot), so it never names a missing snapshot. Exit 3 for a date not published.
        """
        with self.lock("snapshots delete"):
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
                    d for d in self.dates() if d != snapshot_date and self.version(d) is not None
                ]
                if remaining:
                    self._update_latest(lambda _c: LatestFile.of(remaining[-1]))
                    deleted = Deleted(snapshot_date, latest_moved_to=remaining[-1])
                else:
                    self._update_latest(lambda _c: None)
                    deleted = Deleted(snapshot_date, latest_removed=True)
            self._unpublish(snapshot_date, "deleted")
            return deleted

    # -- clean-up, verify, repair, usage ----------------------------------------------------------
    def clean_up(self, grace_seconds: float | None = None) -> list[str]:
        """Under the lease: finish moves in place that a killed run left, point latest.json
        right, and delete what no published version uses: retired versions past the grace
        period, uploads never committed, folders of dates no longer published. Returns
        what it removed (keys and folders, one line each). `grace_seconds` (tests) ends
        the grace of every retired version that much after it began."""
        self._check_lease()
        removed: list[str] = self.storage.clean_scratch()
        for day in self.dates():
            found = self.record(day)
            if found is None or found[0].in_place or not found[0].pooled:
                continue
            version = self._version_of(*found)
            if version is not None and not self._folder_in_use(day, grace_seconds):
                self._move_in_place(found[0], found[1], version.manifest)
                removed.append(f"{snapshot_dir_name(day)}: moved its files in place")
        self._repair_latest()
        removed += self._collect(grace_seconds)
        return sorted(set(removed))

    def _collect(self, grace_seconds: float | None) -> list[str]:
        now = time.time()
        records = {d: r for d in self.dates() if (r := self.record(d)) is not None}
        live_objects = {k for r, _ in records.values() for k in r.objects}
        live_prefixes = {r.prefix for r, _ in records.values()}
        retired: list[Retired] = []
        for key, entry in self._retired():
            if entry is None:
                self.storage.delete([key])
                continue
            retired.append(entry)
        grace = self._grace(grace_seconds)
        kept = [r for r in retired if r.since + grace > now]
        expired = [r for r in retired if r.since + grace <= now]
        protected = {k for r in kept for k in (*r.keys, *r.objects)}
        doomed: set[str] = set()
        for entry in expired:
            live: set[str] = set()
            found = records.get(entry.snapshot_date)
            if found is not None:
                version = self._version_of(*found)
                live = set(version.keys().values()) if version is not None else set()
                if version is None:  # unreadable: keep what its folder holds
                    live = {k for k in entry.keys if k.startswith(found[0].prefix + "/")}
            doomed |= set(entry.keys) - live - protected
            doomed |= set(entry.objects) - live_objects - protected
        # What no record and no retired version names: uploads of killed runs, folders of
        # dates no longer published.
        for info in self.storage.objects(POOL):
            if info.key not in live_objects and info.key not in protected:
                doomed.add(info.key)
        for info in self.storage.objects(STAGING):
            build = "/".join(info.key.split("/")[:2])
            if build not in live_prefixes and info.key not in protected:
                doomed.add(info.key)
        for name in self.storage.list_folders(""):
            day = _date_of_folder(name)
            # A retired version's files are kept by key (`protected`), not by its date.
            if day is not None and day not in records:
                doomed |= {
                    o.key for o in self.storage.objects(name + "/") if o.key not in protected
                }
        doomed |= set(self._temporaries())
        self.storage.delete(sorted(doomed))
        self.storage.delete([r.key for r in expired])
        return _summarize_removed(doomed, records)

    def _temporaries(self) -> list[str]:
        """What writes killed half-way left (the storage knows: local disk's temporary
        files; object storage writes an object whole or not at all)."""
        return self.storage.debris()

    def verify(self) -> Verification:
        """Re-hash every published file against its snapshot's manifest; check latest.json,
        the records and, unless a run holds the store now, what killed runs left. Only
        reads (files of manifests without sha256 are noted as not verifiable)."""
        found = Verification()
        aside = {k for _, e in self._retired() if e is not None for k in e.keys}
        aside |= set(self.storage.debris())  # leftovers (`_leftovers`), not damage
        for day in self.dates():
            record = self.record(day)
            if record is None:
                continue
            version = self._version_of(*record)
            if version is None:
                found.problems.append(
                    Problem(
                        f"{day.isoformat()}: manifest.json is missing, unreadable or not the "
                        "one its commit record names",
                        rebuild_hint(day),
                        False,
                        snapshot_date=day,
                    )
                )
                continue
            found.snapshots += 1
            if not version.record.in_place and version.record.pooled and self._folder_in_use(day):
                found.notes.append(
                    f"{day.isoformat()}: rebuilt; its files move into {snapshot_dir_name(day)}/ "
                    "once the version it replaced is an hour old (the next run or "
                    "`snapshots verify --repair` after that)"
                )
            elif not version.record.in_place and version.record.pooled:
                found.problems.append(
                    Problem(
                        f"{day.isoformat()}: its files were not all moved in place (a run "
                        "was stopped while moving them)",
                        f"{REPAIR} (so does the next run)",
                        repairable=True,
                        snapshot_date=day,
                    )
                )
            self._verify_version(version, found, aside)
        self._verify_latest(found)
        if self.is_locked():
            found.notes.append("a run holds the store now: leftovers of killed runs not looked for")
        else:
            for what in self._leftovers():
                found.problems.append(
                    Problem(
                        f"{what} is left over from a killed run",
                        f"{REPAIR} (so does the next run)",
                        repairable=True,
                    )
                )
        return found

    def _verify_version(self, version: Version, found: Verification, aside: set[str]) -> None:
        """One version's files against its manifest; `aside`: keys in a date's folder that
        are not the version's but no damage (a retired version's, half-written files)."""
        day = version.snapshot_date

        def damaged(what: str) -> None:
            found.problems.append(
                Problem(f"{day.isoformat()}: {what}", rebuild_hint(day), False, snapshot_date=day)
            )

        manifest = version.manifest
        if manifest.snapshot_date != day:
            damaged(f"manifest.json is the one of {manifest.snapshot_date.isoformat()}")
        globs = [o.path for o in manifest.outputs if o.files is None and "*" in o.path]
        unverifiable = list(globs)
        listed = manifest.files()
        for rel in sorted(listed):
            problem = _outside(rel)
            if problem is None:
                problem = self._check_file(version, rel, listed[rel])
            if problem is not None:
                damaged(problem)
            elif listed[rel] is None:
                unverifiable.append(rel)
            else:
                found.files += 1
        if version.record.in_place:
            folder = snapshot_dir_name(day)
            named = {version.key(r) for r in listed} | {f"{folder}/{MANIFEST}"}
            for info in self.storage.objects(folder + "/"):
                if (
                    info.key not in named
                    and info.key not in aside
                    # a file of a glob whose files the manifest does not list (noted)
                    and not any(fnmatchcase(info.key[len(folder) + 1 :], g) for g in globs)
                ):
                    damaged(f"{info.key[len(folder) + 1 :]} is not in the manifest")
        if unverifiable:
            found.notes.append(
                f"{day.isoformat()}: not verifiable (manifest without sha256): "
                + ", ".join(unverifiable)
            )

    def _check_file(self, version: Version, rel: str, sha256: str | None) -> str | None:
        key = version.key(rel)
        try:
            self.storage.fetch(key, sha256, verify=sha256 is not None)
        except ObjectMissing:
            return f"{rel} is missing"
        except StorageError as exc:
            if "sha256" in exc.message:
                return f"{rel} is damaged: its sha256 is not the manifest's"
            return f"{rel} cannot be read: {exc.message}"
        return None

    def _verify_latest(self, found: Verification) -> None:
        current = self.latest_file()
        newest = self.newest()
        if current is None:
            if self.storage.head(LATEST) is not None:
                what = "latest.json is unreadable"
            elif newest is not None:
                what = f"latest.json is missing, while {newest.isoformat()} is published"
            else:
                return
        else:
            day = current.snapshot_date.isoformat()
            if self.version(current.snapshot_date) is None:
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

    def _leftovers(self) -> list[str]:
        """What killed runs left: uploads never committed, folders of no published date."""
        records = [r for d in self.dates() if (r := self.record(d)) is not None]
        live_objects = {k for r, _ in records for k in r.objects}
        live_prefixes = {r.prefix for r, _ in records}
        protected = {k for _, e in self._retired() if e is not None for k in (*e.keys, *e.objects)}
        found = set()
        for info in self.storage.objects(STAGING):
            build = "/".join(info.key.split("/")[:2])
            if build not in live_prefixes and info.key not in protected:
                found.add(build)
        for info in self.storage.objects(POOL):
            if info.key not in live_objects and info.key not in protected:
                found.add(info.key)
        dated = {r.snapshot_date for r, _ in records}
        for name in self.storage.list_folders(""):
            day = _date_of_folder(name)
            if (
                day is not None
                and day not in dated
                and not any(k.startswith(name + "/") for k in protected)
            ):
                found.add(name)
        found |= set(self._temporaries())
        return sorted(found)

    def repair(self) -> list[str]:
        """Fix what can be fixed without the exports: finish moves in place, point a
        missing, unreadable or wrong latest.json at the newest published date (a pin
        stays while its date is published), remove what `clean_up` removes. Never deletes
        a snapshot: damaged files are for `verify` to name and a backfill with --force to
        rebuild. Returns what it did, one line each; takes the lease."""
        with self.lock("snapshots verify --repair"):
            done = []
            latest = self._repair_latest()
            if latest is not None:
                done.append(latest)
            done += [f"removed {what}" if " " not in what else what for what in self.clean_up()]
            return done

    def usage(self) -> StoreUsage:
        """Bytes by kind: published snapshots (a shared file counted once), retired
        versions kept for readers, quarantines, the ledger, and the whole store."""
        sizes = {o.key: o.size for o in self.storage.objects("")}
        live: set[str] = set()
        count = 0
        for day in self.dates():
            version = self.version(day)
            if version is not None:
                count += 1
                live |= set(version.keys().values())
        retired_keys: set[str] = set()
        retired = 0
        for _key, entry in self._retired():
            # A published version's own uploads, kept after its move in place, are not a
            # replaced version (they are in the store's total).
            if entry is not None and entry.reason != MOVED_IN_PLACE:
                retired += 1
                retired_keys |= {*entry.keys, *entry.objects}
        retired_keys -= live
        quarantines = self.storage.list_folders(QUARANTINE_FOLDER + "/")
        return StoreUsage(
            snapshots=count,
            snapshot_bytes=sum(sizes.get(k, 0) for k in live),
            replaced=retired,
            replaced_bytes=sum(sizes.get(k, 0) for k in retired_keys),
            quarantines=len(quarantines),
            quarantine_bytes=sum(
                s for k, s in sizes.items() if k.startswith(QUARANTINE_FOLDER + "/")
            ),
            ledger_bytes=sum(s for k, s in sizes.items() if k.startswith(LEDGER_NAME + "/")),
            store_bytes=sum(sizes.values()),
        )

    def _not_published(self, snapshot_date: date) -> NotFoundError:
        return NotFoundError(
            f"no published snapshot for {snapshot_date.isoformat()} in {self.describe()}",
            "`scenario-analytics snapshots` lists the published dates",
        )


REPAIR = "`scenario-analytics snapshots verify --repair` fixes it"


def rebuild_hint(snapshot_date: date) -> str:
    day = snapshot_date.isoformat()
    return f"rebuild it with `scenario-analytics backfill --from {day} --to {day} --force`"


def _date_of_folder(name: str) -> date | None:
    if not name.startswith("snapshot_date="):
        return None
    try:
        return date.fromisoformat(name.split("=", 1)[1])
    except ValueError:
        return None


def _outside(rel: str) -> str | None:
    parts = rel.split("/")
    if rel.startswith("/") or ".." in parts or "" in parts:
        return f"the manifest lists {rel!r}, a path outside the snapshot"
    return None


def _files_in(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _summarize_removed(keys: Collection[str], published: Collection[date] = ()) -> list[str]:
    """Removed keys as people read them: a build's folder once, the folder of a date no
    longer published once, else the key (a published date's folder stays)."""
    shown: set[str] = set()
    for key in keys:
        parts = key.split("/")
        if key.startswith(STAGING):
            shown.add("/".join(parts[:2]))
        elif (day := _date_of_folder(parts[0])) is not None and len(parts) > 1:
            shown.add(parts[0] if day not in published else key)
        else:
            shown.add(key)
    return sorted(shown)


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
    """Bytes by kind (`Store.usage`); `store_bytes` is everything under the location."""

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


@dataclass(frozen=True)
class SnapshotInfo:
    """One published snapshot, as the `snapshots` command lists it."""

    snapshot_date: date
    path: str
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
        cls, version: Version, public: str, size: int, latest: bool, pinned: bool = False
    ) -> SnapshotInfo:
        manifest = version.manifest
        sql = manifest.sql_version
        if sql is None:  # written before manifests named their SQL version
            sql = sql_version((f.file, f.sha256) for f in manifest.sql)
        return cls(
            snapshot_date=version.snapshot_date,
            path=public,
            created_at=manifest.created_at,
            sessions=manifest.counts.sessions_in_snapshot,
            scenarios=manifest.counts.scenarios,
            rejects=manifest.rejects,
            sql_version=sql,
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
            "path": self.path,
            "latest": self.latest,
            "pinned": self.pinned,
        }


def require_store(where: Location | Path | str, settings: StorageSettings | None = None) -> Store:
    """An existing store (exit 3 if there is none), for commands that only read."""
    store = Store(where, settings)
    try:
        store.storage.check(create=False)
    except StorageError as exc:
        if exc.exit_code != 2 or not store.root.is_local:
            raise
        raise NotFoundError(
            f"no snapshot store at {store.describe()}",
            "check --snapshots, or run `scenario-analytics run`",
        ) from None
    if not store.is_store():
        raise NotFoundError(
            f"{store.describe()} is not a snapshot store (no latest.json, snapshots or "
            "ledger in it)",
            "check --snapshots: it names the location `run` publishes into",
        )
    return store
