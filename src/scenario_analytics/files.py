"""Replacing a file so that a reader sees the old content or the new, never a part.

Used for the store's `latest.json` and quarantine reports, the ledger's catalog and the
API key file: write a temporary sibling (a dot name ending in `.tmp`, which clean-ups
recognize), fsync it, rename it over the file.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

OBJECT_MODE = 0o640  # a store's files (see `object_mode`)
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux tells (/proc), else by
    setting and restoring it under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def object_mode() -> int:
    """0640 under the process's umask: the mode of the files a store holds (some hold
    emails and names): group-readable for the job's readers, never others. For `chmod`;
    a file `os.open` creates with `OBJECT_MODE` gets it from the kernel, which applies
    the umask itself."""
    return OBJECT_MODE & ~current_umask()


def temporary_name(path: Path) -> Path:
    """A sibling to write before renaming into `path`: `.<name>.<random>.tmp`."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_atomically(
    path: Path, data: bytes, *, private: bool = False, sync_folder: bool = False
) -> None:
    """Replace `path` with `data` atomically; the temporary file is removed if that fails.
    `private`: readable by the owner only, and the temporary file must be new (never one
    a link planted there points to); `sync_folder`: also fsync the folder, so the rename
    itself survives a power loss."""
    tmp = temporary_name(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if private else os.O_TRUNC)
    fd = os.open(tmp, flags, 0o600 if private else OBJECT_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_folder:
        fsync_folder(path.parent)


def fsync_folder(path: Path) -> None:
    """Make the names in a folder (renames, new files) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
