"""Where exports and snapshots are: a local folder or a bucket and prefix on S3.

`--exports`, `--snapshots` and the job file's `exports` and `snapshots` take a local path,
`file://…` or `s3://bucket/prefix` (`s3a://` and `s3n://` too, the names Hadoop and
Spark use: the scheme is kept as written; docs/ENGINES.md says what Spark reads). A
`Location` is
the parsed value; `storage.open_storage` opens it. Only `storage/` knows how each kind
is read and written: the rest of the code passes locations around and prints them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

S3_SCHEMES = ("s3", "s3a", "s3n")
# Bucket names as S3 allows them (3-63 lower-case letters, digits, dots and hyphens);
# S3-compatible servers accept the same.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class LocationError(ValueError):
    """A location that cannot be parsed; its message says what is wrong."""


@dataclass(frozen=True)
class Location:
    """A local folder (`path`) or an S3 bucket and key prefix (no leading or trailing
    `/`; "" for the whole bucket). `scheme` is `file` or the S3 scheme as written."""

    scheme: str
    path: Path | None = None
    bucket: str = ""
    prefix: str = ""

    @classmethod
    def parse(cls, value: str | Path | Location) -> Location:
        if isinstance(value, Location):
            return value
        if isinstance(value, Path):
            return cls("file", path=value)
        text = str(value)
        if "://" not in text:
            return cls("file", path=Path(text))
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise LocationError(f"{text}: a file:// location names no host (file:///path)")
            return cls("file", path=Path(unquote(parts.path)))
        if scheme in S3_SCHEMES:
            bucket = parts.netloc
            if not _BUCKET.match(bucket):
                raise LocationError(
                    f"{text}: {bucket!r} is not a bucket name (3-63 lower-case letters, "
                    "digits, dots and hyphens)"
                )
            if parts.query or parts.fragment:
                raise LocationError(f"{text}: an S3 location has no query or fragment")
            prefix = parts.path.strip("/")
            if any(p in ("", ".", "..") for p in prefix.split("/")) and prefix:
                raise LocationError(f"{text}: empty, '.' or '..' parts in the key prefix")
            return cls(scheme, bucket=bucket, prefix=prefix)
        raise LocationError(
            f"{text}: {scheme}:// is not supported (a local path, file:// or s3://bucket/prefix)"
        )

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def local_path(self) -> Path:
        """The folder of a local location (a ValueError for S3: check `is_local`)."""
        if self.path is None:
            raise ValueError(f"{self} is not a local folder")
        return self.path

    def child(self, name: str) -> str:
        """How a file or folder under this location is shown to people (messages, the
        paths `run` prints): `store/snapshot_date=…` or `s3://bucket/prefix/snapshot_…`."""
        if self.path is not None:
            return str(self.path / name)
        return f"{self}/{name}"

    def resolved(self, base: Path) -> Location:
        """A relative local path taken relative to `base` (a job file's folder)."""
        if self.path is None or self.path.is_absolute():
            return self
        return Location("file", path=Path(os.path.normpath(base / self.path)))

    def overlaps(self, other: Location) -> bool:
        """One location is the other or inside it (symbolic links resolved)."""
        if self.path is not None and other.path is not None:
            mine, theirs = self.path.resolve(), other.path.resolve()
            return mine.is_relative_to(theirs) or theirs.is_relative_to(mine)
        if self.is_local or other.is_local or self.bucket != other.bucket:
            return False
        ours, other_prefix = self.prefix + "/", other.prefix + "/"
        return (
            ours.startswith(other_prefix)
            or other_prefix.startswith(ours)
            or not (self.prefix and other.prefix)
        )

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        return f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
