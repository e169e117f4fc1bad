"""Objects as files in a local folder.

A key is a path below the folder. A write goes to a temporary sibling first, is fsynced
and renamed into place (`files.write_atomically`), so a reader sees the old file or
the new one, as with an object store. The entity tag of a file is its identity and
version as the file system gives it (device, inode, size, modification time in ns):
every write replaces the file by a new one, so the tag changes with every write.

Conditional writes: `create` links a finished temporary file to the key (`link` fails
if the name exists: atomic, no lock); `replace` compares and renames under an advisory
lock of the folder (`.cas.lock`, held for microseconds), which every process of the job
that writes this folder takes. This is the local implementation of what S3 does with
`If-None-Match` and `If-Match`; nothing above this module knows the difference.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from scenario_analytics.errors import UnreadableFileError
from scenario_analytics.files import (
    OBJECT_MODE,
    fsync_folder,
    object_mode,
    temporary_name,
    write_atomically,
)
from scenario_analytics.locations import Location
from scenario_analytics.settings import StorageSettings
from scenario_analytics.storage.base import (
    ObjectInfo,
    ObjectMissing,
    PreconditionFailed,
    Storage,
    StorageError,
    StorageMissing,
    sha256_file,
)

CAS_LOCK = ".cas.lock"
SCRATCH = ".scratch"  # scratch folders live here, inside the location (renames stay cheap)


def _tag(info: os.stat_result) -> str:
    return f"{info.st_dev:x}-{info.st_ino:x}-{info.st_size:x}-{info.st_mtime_ns:x}"


class LocalStorage(Storage):
    def __init__(self, location: Location, settings: StorageSettings | None = None) -> None:
        self.location = location
        self.settings = settings or StorageSettings()
        self.root = location.local_path

    def path(self, key: str) -> Path:
        pure = PurePosixPath(key)
        if not key or pure.is_absolute() or ".." in pure.parts:
            raise StorageError(f"internal error: {key!r} is not a key inside the location")
        return self.root / key

    def _failed(self, key: str, what: str, exc: OSError) -> StorageError:
        reason = exc.strerror or str(exc)
        hint = (
            "free space in the store's file system, then run again"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT)
            else "check the folder's permissions and file system, then run again"
        )
        return StorageError(f"cannot {what} {self.describe(key)}: {reason}", hint)

    # -- reading ------------------------------------------------------------------------------
    def read(self, key: str) -> tuple[bytes, str]:
        path = self.path(key)
        try:
            with path.open("rb") as handle:
                tag = _tag(os.fstat(handle.fileno()))
                return handle.read(), tag
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectMissing(f"{self.describe(key)} does not exist") from None
        except IsADirectoryError:
            raise ObjectMissing(f"{self.describe(key)} is a folder, not a file") from None
        except OSError as exc:
            raise self._failed(key, "read", exc) from exc

    def head(self, key: str) -> ObjectInfo | None:
        try:
            info = self.path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._failed(key, "read", exc) from exc
        if not os.path.isfile(self.path(key)):
            return None
        return ObjectInfo(key, info.st_size, _tag(info), info.st_mtime)

    def objects(self, prefix: str = "") -> list[ObjectInfo]:
        folder = prefix.rpartition("/")[0]
        base = self.root / folder if folder else self.root
        found = []
        for path in self._walk(base):
            key = path.relative_to(self.root).as_posix()
            if not key.startswith(prefix):
                continue
            try:
                info = path.stat()
            except FileNotFoundError:  # removed meanwhile
                continue
            except OSError as exc:
                raise self._failed(key, "read", exc) from exc
            found.append(ObjectInfo(key, info.st_size, _tag(info), info.st_mtime))
        return sorted(found, key=lambda o: o.key.encode())

    def _walk(self, base: Path) -> Iterator[Path]:
        """Files below `base`. A symbolic link is followed only while it stays inside the
        location: one that leads out of it is an error naming it (its file would be read
        from elsewhere, or its folder silently left out); a linked folder is not walked
        (its files are read under their own names, inside the location)."""
        if not base.is_dir():
            return
        real_root = self.root.resolve()

        def fail(error: OSError) -> None:
            raise UnreadableFileError(str(error.filename), error.strerror or str(error))

        for dirpath, dirnames, filenames in os.walk(base, onerror=fail):
            dirnames.sort()
            for name in dirnames:
                self._refuse_outside_link(Path(dirpath) / name, real_root)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                self._refuse_outside_link(path, real_root)
                if path.is_file():
                    yield path

    def _refuse_outside_link(self, path: Path, real_root: Path) -> None:
        if not path.is_symlink():
            return
        rel = path.relative_to(self.root).as_posix()
        try:
            target = path.resolve()
        except (OSError, RuntimeError) as exc:  # a loop of links
            raise UnreadableFileError(
                rel, f"a symbolic link that cannot be resolved ({exc})"
            ) from exc
        if not target.is_relative_to(real_root):
            kind = "folder" if target.is_dir() else "file"
            raise UnreadableFileError(
                rel, f"a symbolic link to a {kind} outside the folder {self.root} is not read"
            )

    def list_folders(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        try:
            return sorted(e.name for e in base.iterdir() if e.is_dir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise self._failed(prefix or ".", "list", exc) from exc

    def fetch(
        self,
        key: str,
        sha256: str | None = None,
        *,
        verify: bool = False,
        etag: str | None = None,
    ) -> Path:
        del etag  # read in place: `_check_unchanged` (staging) sees a file rewritten meanwhile
        path = self.path(key)
        if not path.is_file():
            raise ObjectMissing(f"{self.describe(key)} does not exist")
        if verify and sha256 is not None:
            try:
                actual = sha256_file(path)
            except OSError as exc:
                raise self._failed(key, "read", exc) from exc
            if actual != sha256:
                raise StorageError(f"{self.describe(key)} does not have the sha256 recorded for it")
        return path

    def matches(self, key: str, sha256: str) -> bool:
        try:
            return sha256_file(self.path(key)) == sha256
        except OSError:
            return False

    # -- writing ------------------------------------------------------------------------------
    def _parent(self, path: Path, key: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._failed(key, "write", exc) from exc

    def write(self, key: str, data: bytes) -> str:
        path = self.path(key)
        self._parent(path, key)
        try:
            write_atomically(path, data, sync_folder=True)
            return _tag(path.stat())
        except OSError as exc:
            raise self._failed(key, "write", exc) from exc

    def create(self, key: str, data: bytes) -> str:
        path = self.path(key)
        self._parent(path, key)
        for attempt in range(3):
            tmp = temporary_name(path)
            try:
                _write_synced(tmp, data)
                os.link(tmp, path)
                fsync_folder(path.parent)
                return _tag(path.stat())
            except FileExistsError:
                raise PreconditionFailed(f"{self.describe(key)} exists already") from None
            except FileNotFoundError as exc:
                if attempt == 2:  # a clean-up removed the temporary file meanwhile: again
                    raise self._failed(key, "write", exc) from exc
            except OSError as exc:
                raise self._failed(key, "write", exc) from exc
            finally:
                tmp.unlink(missing_ok=True)
        raise AssertionError("unreachable")

    def replace(self, key: str, data: bytes, etag: str) -> str:
        with self._cas():
            current = self.head(key)
            if current is None or current.etag != etag:
                raise PreconditionFailed(f"{self.describe(key)} changed or went meanwhile")
            return self.write(key, data)

    def delete_if(self, key: str, etag: str) -> None:
        with self._cas():
            super().delete_if(key, etag)

    @contextmanager
    def _cas(self) -> Iterator[None]:
        """The folder's compare-and-swap lock (held only around one comparison and write)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / CAS_LOCK, os.O_RDWR | os.O_CREAT, OBJECT_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def upload(self, key: str, source: Path, sha256: str, *, move: bool = False) -> None:
        target = self.path(key)
        if source.resolve() == target.resolve():
            _settle(target)
            return  # written in place (a scratch folder inside the location)
        self._parent(target, key)
        size = source.stat().st_size
        tmp = temporary_name(target)
        try:
            if move:
                try:
                    os.rename(source, tmp)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    shutil.copyfile(source, tmp)
            else:
                shutil.copyfile(source, tmp)
            _settle(tmp)
            _fsync_file(tmp)
            if tmp.stat().st_size != size:
                raise StorageError(f"{self.describe(key)}: the copy has another size")
            os.replace(tmp, target)
        except OSError as exc:
            raise self._failed(key, "write", exc) from exc
        finally:
            tmp.unlink(missing_ok=True)
        del sha256  # a rename or a local copy changes no byte; readers verify on `fetch`

    def copy(self, source: str, target: str) -> None:
        """A hard link when the file system allows one (same bytes, no copy: files are
        never changed in place, so sharing them is safe), else a copy."""
        src, dst = self.path(source), self.path(target)
        self._parent(dst, target)
        tmp = temporary_name(dst)
        try:
            try:
                os.link(src, tmp)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError):
                    raise
                shutil.copyfile(src, tmp)
                _settle(tmp)
                _fsync_file(tmp)
            os.replace(tmp, dst)
        except FileNotFoundError:
            raise ObjectMissing(f"{self.describe(source)} does not exist") from None
        except OSError as exc:
            raise self._failed(target, "write", exc) from exc
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, keys: Iterable[str]) -> None:
        parents: set[Path] = set()
        for key in keys:
            path = self.path(key)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except IsADirectoryError:
                shutil.rmtree(path, ignore_errors=True)
            except OSError as exc:
                raise self._failed(key, "delete", exc) from exc
            parents.add(path.parent)
        # Folders emptied go too (object stores have no empty folders).
        for parent in sorted(parents, key=lambda p: -len(p.parts)):
            folder = parent
            while folder != self.root and folder.is_relative_to(self.root):
                try:
                    folder.rmdir()
                except OSError:
                    break
                folder = folder.parent

    # -- the location as a whole --------------------------------------------------------------
    def check(self, *, create: bool) -> None:
        if self.root.is_dir():
            return
        if self.root.exists():
            raise StorageMissing(f"{self.root} is not a folder")
        if not create:
            raise StorageMissing(f"{self.root} does not exist")
        parent = self.root.parent
        if not parent.is_dir():
            what = "is not a folder" if parent.exists() else "does not exist"  # a file
            raise StorageMissing(
                f"{parent} {what}",
                f"create it, or name a folder whose parent exists for {self.root}",
            )
        try:
            self.root.mkdir(exist_ok=True)
        except OSError as exc:
            raise self._failed(".", "create", exc) from exc

    def scratch(self, name: str) -> Path:
        folder = self.root / SCRATCH / name
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise self._failed(f"{SCRATCH}/{name}", "create", exc) from exc
        return folder

    def debris(self) -> list[str]:
        """Temporary files (`files.temporary_name`: `.<name>.<random>.tmp`) that writes
        killed half-way left. (Asked under the store's lease, when no other job writes;
        a job trying to take the lease meanwhile writes its own again: `create`.)"""
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root and SCRATCH in dirnames:
                dirnames.remove(SCRATCH)  # scratch folders are `clean_scratch`'s
            for name in filenames:
                if name.startswith(".") and name.endswith(".tmp"):
                    found.append((Path(dirpath) / name).relative_to(self.root).as_posix())
        return sorted(found)

    def is_empty(self) -> bool:
        try:
            return not any(self.root.iterdir())
        except OSError as exc:
            raise self._failed(".", "list", exc) from exc

    def remove_location(self, *, keep_folder: bool = False) -> None:
        # The compare-and-swap lock file is the last thing a job leaves; a job starting
        # here meanwhile would have written its lease, and the folder then stays.
        if [o.key for o in self.objects("")] == [CAS_LOCK]:
            (self.root / CAS_LOCK).unlink(missing_ok=True)
        if not keep_folder:
            try:
                self.root.rmdir()  # only an empty folder
            except OSError:
                pass

    def clean_scratch(self) -> list[str]:
        removed = self.debris()
        self.delete(removed)
        scratch = self.root / SCRATCH
        if not scratch.is_dir():
            return removed
        for entry in sorted(scratch.iterdir()):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(f"{SCRATCH}/{entry.name}")
        try:
            scratch.rmdir()
        except OSError:
            pass
        return removed

    @property
    def cache_folder(self) -> Path | None:
        return None


def _settle(path: Path) -> None:
    """The mode of every file in the store: 0640 under the process's umask (tables hold
    emails and names: the job's group may read them, others not; umask 077 gives 0600)."""
    os.chmod(path, object_mode())


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OBJECT_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
