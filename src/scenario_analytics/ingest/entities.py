"""The entities of an export: their names, their fields and where every format keeps
them, why a session row is rejected, and one export file of one entity.

One place for all formats: JSON readers take `json_paths`, Parquet `columns` (nested
paths first), CSV the flat column names; the raw tables have a value and a type tag
column per field (`ingest/loader.py`), which validation (`sql/0010_*.sql`) reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

ENTITIES: tuple[str, ...] = ("sessions", "scenarios", "members", "groups", "group_memberships")

# Why a session row is rejected, in the contract's order (the first that applies wins;
# sql/0010_validate_sessions.sql decides).
SESSION_REASONS: tuple[str, ...] = (
    "malformed_record",
    "missing_id",
    "missing_user_id",
    "missing_scenario_id",
    "bad_created_at",
    "bad_score",
    "bad_duration",
    "bad_is_valid_attempt",
    "valid_attempt_without_score",
)


@dataclass(frozen=True)
class ExportFile:
    """One input file. `rel_path` is relative to the exports folder, POSIX style (its key
    in the exports' storage); `path` a local file with its bytes once it was fetched
    (`pipeline/staging.py`: in place on local disk, downloaded from S3), None before;
    `etag` the storage's tag of the object when it was listed."""

    rel_path: str
    path: Path | None
    entity: str
    fmt: str
    gzip: bool
    size: int
    etag: str = ""

    @property
    def local(self) -> Path:
        """The local file, which readers need: fetched before they run."""
        if self.path is None:
            raise ValueError(f"internal error: {self.rel_path} was not fetched before reading")
        return self.path

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.local.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


@dataclass(frozen=True)
class Field:
    """One field of an entity and where each format keeps it (nested paths first)."""

    name: str
    json_paths: tuple[str, ...]
    columns: tuple[tuple[str, ...], ...]  # Parquet column paths; CSV uses the flat ones

    @property
    def csv_names(self) -> tuple[str, ...]:
        return tuple(path[0] for path in self.columns if len(path) == 1)


def _flat(name: str) -> Field:
    return Field(name, (f"$.{name}",), ((name,),))


def _nested(name: str, parent: str, child: str) -> Field:
    return Field(name, (f"$.{parent}.{child}", f"$.{name}"), ((parent, child), (name,)))


ENTITY_FIELDS: dict[str, tuple[Field, ...]] = {
    "sessions": (
        _flat("id"),
        _nested("user_id", "user", "id"),
        _nested("user_email", "user", "email"),
        _nested("user_first_name", "user", "first_name"),
        _nested("user_last_name", "user", "last_name"),
        _nested("scenario_id", "scenario", "id"),
        _nested("scenario_slug", "scenario", "slug"),
        _nested("scenario_name", "scenario", "name"),
        _flat("score"),
        _flat("duration_seconds"),
        _flat("is_valid_attempt"),
        _flat("created_at"),
    ),
    "members": (
        _flat("id"),
        _flat("email"),
        _flat("first_name"),
        _flat("last_name"),
        _flat("role"),
    ),
    "scenarios": (_flat("id"), _flat("slug"), _flat("name")),
    "groups": (_flat("id"), _flat("name")),
    "group_memberships": (_flat("group_id"), _flat("user_id")),
}

# Columns a CSV header or Parquet schema must have, or the file cannot be read.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "sessions": ("id", "user_id", "scenario_id", "created_at", "is_valid_attempt"),
    "members": ("id",),
    "scenarios": ("id",),
    "groups": ("id",),
    "group_memberships": ("group_id", "user_id"),
}
