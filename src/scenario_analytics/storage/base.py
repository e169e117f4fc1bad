"""The storage interface: objects under keys, read and written whole.

Everything the job keeps (snapshots, the ledger, the lease, quarantines) and everything
it reads (exports) goes through a `Storage`: a local folder (`local.py`) or an S3
bucket and prefix (`s3.py`). Keys are `/`-separated paths relative to the location.
What object storage lacks is not used above this interface: there is no rename, no
link and no lock. What it has is: a write of one object is atomic (readers see the
old object or the new one), and a write can be conditional on the object not existing
(`create`) or on its entity tag (`replace`), which is how the store commits and leases.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scenario_analytics.errors import AnalyticsError, ExitCode
from scenario_analytics.locations import Location
from scenario_analytics.settings import StorageSettings


@dataclass(frozen=True)
class ObjectInfo:
    """One object: its key, size, entity tag and last-modified time (Unix seconds).

    `etag` changes whenever the object is written; on S3 it is the server's ETag, on local
    disk a tag of the file's identity (see `local.py`).
    """

    key: str
    size: int
    etag: str
    modified: float


class StorageError(AnalyticsError):
    """A storage operation failed (exit 1); the message names the object."""


class ObjectMissing(StorageError):
    """The object does not exist."""

    exit_code = ExitCode.NOT_FOUND


class PreconditionFailed(StorageError):
    """A conditional write lost: the object exists (`create`) or changed (`replace`).
    Another writer got there first."""

    exit_code = ExitCode.LOCKED


class StorageMissing(StorageError):
    """The bucket (or the folder's parent) does not exist: a usage error (exit 2),
    raised before any work."""

    exit_code = ExitCode.USAGE


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class Storage(ABC):
    """Objects under keys at one location. Implementations are thread-safe."""

    location: Location
    settings: StorageSettings
    concurrency = 4  # requests worth running at once (uploads, copies)
    # Whether an object's tag changes exactly when its content may have (S3's ETag): an
    # unchanged tag then stands for unchanged bytes, and the job need not re-read them.
    content_tags = False

    def __str__(self) -> str:
        return str(self.location)

    def describe(self, key: str = "") -> str:
        """How people see an object (or the location itself): a path or an s3:// URI."""
        return self.location.child(key) if key else str(self.location)

    # -- reading ------------------------------------------------------------------------------
    @abstractmethod
    def read(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and entity tag; `ObjectMissing` if there is none."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """The object's size and tag, or None if there is none."""

    @abstractmethod
    def objects(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with `prefix` (a folder: end it with `/`), at any
        depth, sorted by key (byte order)."""

    @abstractmethod
    def list_folders(self, prefix: str = "") -> list[str]:
        """The names of the `folders` directly under `prefix` (keys with a `/` after the
        prefix), sorted."""

    @abstractmethod
    def fetch(
        self,
        key: str,
        sha256: str | None = None,
        *,
        verify: bool = False,
        etag: str | None = None,
    ) -> Path:
        """A local file with the object's bytes, for readers that need a path (DuckDB,
        pyarrow): the file itself on local disk, a downloaded copy in the cache folder
        (`cache_folder`) on S3, checked against `sha256` before it is used (a copy that
        does not have it is a `StorageError`: nothing damaged or half-written is read as
        good). `verify`: check this object's bytes now (local disk re-hashes the file, which
        is read in place otherwise; S3 downloads it even when the cache has its content). `etag`:
        the object must still be the version listed with this tag (else `StorageError`)."""

    @abstractmethod
    def matches(self, key: str, sha256: str) -> bool:
        """Whether the object exists with this sha256, as cheaply as the storage can tell
        (local disk re-hashes the file; S3 compares the SHA-256 it stored at upload)."""

    def read_if_changed(self, key: str, etag: str | None) -> tuple[bytes, str] | None:
        """The object and its tag if its tag is not `etag` (None: unchanged);
        `ObjectMissing` if there is none. What pollers use."""
        info = self.head(key)
        if info is None:
            raise ObjectMissing(f"{self.describe(key)} does not exist")
        if info.etag == etag:
            return None
        return self.read(key)

    def read_text(self, key: str) -> str:
        return self.read(key)[0].decode("utf-8")

    # -- writing ------------------------------------------------------------------------------
    @abstractmethod
    def write(self, key: str, data: bytes) -> str:
        """Write an object whole (replacing any); returns its new tag."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> str:
        """Write an object that must not exist yet; `PreconditionFailed` if it does."""

    @abstractmethod
    def replace(self, key: str, data: bytes, etag: str) -> str:
        """Write an object whose tag is still `etag`; `PreconditionFailed` otherwise
        (another writer changed or removed it)."""

    @abstractmethod
    def upload(self, key: str, source: Path, sha256: str, *, move: bool = False) -> None:
        """Store a local file under `key`, verified: the stored object has the file's size
        and `sha256`, or this raises. `move`: the source may be consumed (on local disk it
        is renamed into place when it can be)."""

    @abstractmethod
    def copy(self, source: str, target: str) -> None:
        """Copy one object to another key, within the location."""

    @abstractmethod
    def delete(self, keys: Iterable[str]) -> None:
        """Delete objects; keys that do not exist are no error."""

    def delete_if(self, key: str, etag: str) -> None:
        """Delete an object whose tag is still `etag`; `PreconditionFailed` otherwise."""
        info = self.head(key)
        if info is None or info.etag != etag:
            raise PreconditionFailed(f"{self.describe(key)} changed or went meanwhile")
        self.delete([key])

    # -- the location as a whole --------------------------------------------------------------
    @abstractmethod
    def check(self, *, create: bool) -> None:
        """Fail early when the location cannot be used: a bucket that does not exist
        (`StorageMissing`, exit 2), no permission, an unreachable endpoint. `create`:
        a local folder may be made (a store); else it must exist (exports)."""

    @abstractmethod
    def scratch(self, name: str) -> Path:
        """A new, empty local folder for files about to be uploaded, named `name`; on local
        disk it is inside the location, so that an upload with `move` is a rename."""

    def retain(self, sha256s: set[str]) -> None:  # noqa: B027 (no cache on local disk)
        """Keep only these objects' downloads in the cache folder (a long-running reader
        that no longer needs the others)."""

    def is_empty(self) -> bool:
        """Whether the location holds nothing at all (read without walking it: a store's
        first run is told from this; a location that does not exist is `check`'s)."""
        return not self.list_folders("") and not self.objects("")

    def remove_location(self, *, keep_folder: bool = False) -> None:  # noqa: B027
        """Remove the location itself once it holds nothing but the storage's own lock
        (a local folder a failed first run made, `Store.discard_new`; with `keep_folder`
        an empty folder given before stays); never one that holds anything. Object
        storage has no folders: nothing to do."""

    def clean_scratch(self) -> list[str]:
        """Remove scratch folders and half-written files (`debris`) that killed jobs left
        (only under the store's lease: then none is in use). Returns what it removed."""
        return []

    def debris(self) -> list[str]:
        """Keys of files that writes killed half-way left (none on object storage, which
        writes an object whole or not at all)."""
        return []

    @property
    @abstractmethod
    def cache_folder(self) -> Path | None:
        """Where fetched copies are kept (None on local disk: files are read in place)."""

    def close(self) -> None:  # noqa: B027 (nothing to let go of on local disk)
        """Let go of connections and scratch folders."""
