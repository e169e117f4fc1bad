"""A snapshot's `manifest.json`: one definition, used to write it and to read it back.

Warehouse readers and operators read the file directly (docs/DATA_DICTIONARY.md lists
its fields); the job reads it to list snapshots and to skip days that are up to date.
Fields are written in the order they are declared. Reading tolerates manifests of other
versions of the job: unknown keys are ignored, and keys added since have defaults.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SqlFileEntry(_Part):
    file: str
    sha256: str


class InputEntry(_Part):
    """One export file the snapshot was built from."""

    path: str
    entity: str
    sha256: str
    bytes: int
    rows_read: int
    rows_accepted: int
    rows_rejected: int


class Counts(_Part):
    sessions_read: int = 0
    sessions_accepted: int = 0
    sessions_rejected: int = 0
    sessions_duplicate: int = 0
    sessions_in_snapshot: int = 0
    scenarios: int = 0
    users: int = 0


class OutputEntry(_Part):
    """A file of the snapshot (or, for summary.json bodies, a glob) and its rows.

    `sha256` is the file's digest, taken once it was written. For the glob, `files` maps
    each file it matches (path relative to the snapshot folder) to its sha256, and
    `sha256` is `listing_sha256(files)`. Manifests written before these keys existed have
    neither: `snapshots verify` reports their files as not verifiable.

    The sessions' entry (a glob over one partition file per day) also has `partitions`:
    each file's content digest (`snapshot.partition_digest`), by which the next snapshot
    finds the partitions it can share instead of writing them (`publish/sharing.py`).
    """

    path: str
    rows: int
    sha256: str | None = None
    files: dict[str, str] | None = None
    partitions: dict[str, str] | None = None

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # `files` only on the globs' entries, not `"files": null` on every table's.
        data: dict[str, Any] = handler(self)
        optional = ("sha256", "files", "partitions")
        return {k: v for k, v in data.items() if v is not None or k not in optional}


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, as hex (what `sha256sum` prints)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def listing_sha256(files: Mapping[str, str]) -> str:
    """One digest over several files: the sha256 of the lines `sha256sum` prints for them
    (`<sha256>  <path>`), sorted by path, so `find api -name summary.json | LC_ALL=C sort |
    xargs sha256sum | sha256sum` in a snapshot folder gives the same."""
    lines = "".join(f"{files[path]}  {path}\n" for path in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


class CheckResult(_Part):
    """One completeness check of a run: `passed`, `failed`, or `skipped` (turned off, or
    nothing to compare with), and what it found, in words with the figures."""

    name: str
    status: Literal["passed", "failed", "skipped"]
    detail: str


class Manifest(_Part):
    """A snapshot's manifest.json: date, tool and SQL versions, inputs with their sha256,
    counts, rejects, output files, the settings' fingerprint, when and how long."""

    snapshot_date: date
    tool_version: str = ""
    sql: list[SqlFileEntry] = []
    sql_version: str | None = None  # manifests of early versions lack it
    inputs: list[InputEntry] = []
    counts: Counts = Counts()
    rejects_by_reason: dict[str, int] = {}
    outputs: list[OutputEntry] = []
    ignored_files: list[str] = []
    materialized_filters_per_scenario: int = 0
    fingerprint: dict[str, str] = {}
    data_digest: str | None = None  # what the day is made of; manifests of early versions lack it
    checks: list[CheckResult] = []
    created_at: str = ""
    duration_seconds: float = 0.0

    def to_json(self) -> str:
        """The file's text: indented, non-ASCII kept, a final line break."""
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def read(cls, path: Path) -> Manifest | None:
        """The manifest in `path` (a file), or None if it is missing or unreadable."""
        try:
            return cls.parse(path.read_bytes())
        except OSError:
            return None

    @classmethod
    def parse(cls, data: bytes) -> Manifest | None:
        """A manifest from its bytes, or None if they are not one."""
        try:
            return cls.model_validate_json(data)
        except (ValueError, ValidationError):
            return None

    def files(self) -> dict[str, str | None]:
        """Every file the manifest names, by path in the snapshot, with its sha256 (None
        where it recorded none); the files of a glob without its `files` are not known."""
        found: dict[str, str | None] = {}
        for output in self.outputs:
            if output.files is not None:
                found.update(output.files)
            elif "*" not in output.path:
                found[output.path] = output.sha256
        return found

    @property
    def rejects(self) -> int:
        return sum(self.rejects_by_reason.values())
