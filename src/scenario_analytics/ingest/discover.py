"""Finding the export files in an exports folder: which entity, which format.

Every file is accounted for (CONTRACT.md section 5):
- a name starting with `.` or `_` (a file or a folder, at any depth) is skipped, as
  Hadoop and Spark do (`.DS_Store`, `_SUCCESS`), and so is a path matching one of the
  job file's `ignore` globs;
- a file in an entity's folder (`sessions/…`) or named after an entity at the top level
  (`sessions-0001.jsonl`) is an export, and must have an export format's extension;
- a file with an export format's extension that matches no entity (`group-memberships.csv`,
  `session/part-1.jsonl`) is an unmatched export;
- any other file (`README.md`, `NOTES.txt`) is listed as ignored.
Exports without a format and unmatched exports are `unaccounted`: the job refuses to
publish from such a folder (`check_accounted`, exit 4), naming each with the closest
entity name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from scenario_analytics.errors import AnalyticsError, DataQualityError
from scenario_analytics.ingest.entities import ENTITIES, ExportFile
from scenario_analytics.ingest.readers import suffix_table
from scenario_analytics.locations import Location
from scenario_analytics.storage import Storage, StorageMissing, open_storage

# (suffix, format, gzip) from the readers' registry; `.jsonl.gz` is tried before `.gz`.
_FORMATS: tuple[tuple[str, str, bool], ...] = suffix_table()


@dataclass(frozen=True)
class Unaccounted:
    """A file that looks like an export but cannot be read as one, and why."""

    rel_path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.rel_path}: {self.reason}"


@dataclass(frozen=True)
class ExportsFolder:
    storage: Storage
    files: list[ExportFile]
    ignored: list[str]  # not exports (README.md): listed, not read
    skipped: list[str] = field(default_factory=list)  # `.`/`_` names and ignore globs
    unaccounted: list[Unaccounted] = field(default_factory=list)

    def of(self, entity: str) -> list[ExportFile]:
        return [f for f in self.files if f.entity == entity]

    @property
    def root(self) -> str:
        """The folder as people see it (a path or an s3:// URI)."""
        return self.storage.describe()


def check_accounted(folder: ExportsFolder) -> None:
    """Refuse (exit 4) a folder with exports that would be left out: a file named like an
    export but matching no entity, or a file in an entity's folder that is no export."""
    if not folder.unaccounted:
        return
    listed = "; ".join(str(u) for u in folder.unaccounted)
    count = len(folder.unaccounted)
    raise DataQualityError(
        f"{count} file{'s' if count > 1 else ''} in {folder.root} would be left out: {listed}",
        "rename each to its entity (sessions, scenarios, members, groups, group_memberships) "
        "with an export format's extension, remove it, or list it in the job file's ignore "
        "globs; nothing was published",
    )


def _suggestion(name: str) -> str:
    """`; did you mean <entity>?` for the entity closest to a file or folder name."""
    stem = name
    while True:  # drop every export suffix (`.jsonl.gz`)
        fmt = _format_suffix(stem)
        if fmt is None:
            break
        stem = stem[: -len(fmt)]
    candidates = {stem, stem.replace("-", "_"), *re.split(r"[-.](?=\d)|[.]", stem)[:1]}
    candidates |= {c.replace("-", "_") for c in candidates}
    best, score = None, 0.0
    for candidate in candidates:
        for entity in ENTITIES:
            ratio = difflib.SequenceMatcher(None, candidate.lower(), entity).ratio()
            if ratio > score:
                best, score = entity, ratio
    return f"; did you mean {best}?" if best is not None and score >= 0.6 else ""


def _format_suffix(name: str) -> str | None:
    lower = name.lower()
    for suffix, _fmt, _gz in _FORMATS:
        if lower.endswith(suffix):
            return suffix
    return None


def _format_of(name: str) -> tuple[str, bool] | None:
    lower = name.lower()
    for suffix, fmt, gz in _FORMATS:
        if lower.endswith(suffix):
            return fmt, gz
    return None


def _entity_of(parts: tuple[str, ...]) -> str | None:
    if len(parts) > 1:
        return parts[0] if parts[0] in ENTITIES else None
    name = parts[0]
    for entity in sorted(ENTITIES, key=len, reverse=True):
        if name.startswith(entity) and len(name) > len(entity) and name[len(entity)] in "-_.":
            return entity
    return None


def discover(folder: Storage | Location | Path, ignore: Sequence[str] = ()) -> ExportsFolder:
    """List the files of an exports folder (local or on S3), sorted by relative path
    (byte order).

    `ignore`: globs matched against each path relative to the folder, from the right as
    `pathlib` matches (`*.bak` at any depth, `sessions/*.tmp` in that folder only).
    """
    storage = folder if isinstance(folder, Storage) else open_storage(Location.parse(folder))
    try:
        storage.check(create=False)
    except StorageMissing:
        raise AnalyticsError(
            f"exports folder {storage.describe()} does not exist or is not a folder",
            "pass --exports with the folder that holds the platform's exports",
        ) from None
    files: list[ExportFile] = []
    ignored: list[str] = []
    skipped: list[str] = []
    unaccounted: list[Unaccounted] = []
    skipped_folders: list[str] = []
    for info in storage.objects(""):
        rel = info.key
        parts = tuple(rel.split("/"))
        folders = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        if any(f + "/" in skipped_folders for f in folders):
            continue  # nothing below a skipped folder is read
        hidden = next(
            (f for f in folders if f.rsplit("/", 1)[-1][:1] in "._" or _matches(f, ignore)),
            None,
        )
        if hidden is not None:
            skipped_folders.append(hidden + "/")
            skipped.append(hidden + "/")
            continue
        filename = parts[-1]
        if filename[:1] in "._" or _matches(rel, ignore):
            skipped.append(rel)
            continue
        entity = _entity_of(parts)
        fmt = _format_of(filename)
        if entity is not None and fmt is None:
            where = f"inside {parts[0]}/" if len(parts) > 1 else f"named after {entity}"
            unaccounted.append(Unaccounted(rel, f"not an export format ({where}); {_FORMATS_TEXT}"))
            continue
        if entity is None and fmt is not None:
            if len(parts) > 1:
                reason = f"folder {parts[0]}/ matches no entity{_suggestion(parts[0])}"
            else:
                reason = f"no entity matches{_suggestion(filename)}"
            unaccounted.append(Unaccounted(rel, reason))
            continue
        if entity is None or fmt is None:
            ignored.append(rel)
            continue
        files.append(ExportFile(rel, None, entity, fmt[0], fmt[1], info.size, info.etag))
    files.sort(key=lambda f: f.rel_path.encode())
    ignored.sort(key=str.encode)
    skipped.sort(key=str.encode)
    unaccounted.sort(key=lambda u: u.rel_path.encode())
    return ExportsFolder(storage, files, ignored, skipped, unaccounted)


_FORMATS_TEXT = (
    "export formats are "
    + ", ".join(suffix for suffix, _fmt, gz in _FORMATS if not gz)
    + " (text formats also gzipped: "
    + ", ".join(s for s, _f, gz in _FORMATS if gz)
    + ")"
)


def _matches(rel: str, globs: Sequence[str]) -> bool:
    path = PurePosixPath(rel)
    return any(path.match(glob) for glob in globs)
