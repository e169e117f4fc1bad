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
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from scenario_analytics.errors import AnalyticsError, DataQualityError, UnreadableFileError
from scenario_analytics.ingest.entities import ENTITIES, ExportFile
from scenario_analytics.ingest.readers import suffix_table

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
    root: Path
    files: list[ExportFile]
    ignored: list[str]  # not exports (README.md): listed, not read
    skipped: list[str] = field(default_factory=list)  # `.`/`_` names and ignore globs
    unaccounted: list[Unaccounted] = field(default_factory=list)

    def of(self, entity: str) -> list[ExportFile]:
        return [f for f in self.files if f.entity == entity]


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


def discover(root: Path, ignore: Sequence[str] = ()) -> ExportsFolder:
    """List the files of an exports folder, sorted by relative path (byte order).

    `ignore`: globs matched against each path relative to the folder, from the right as
    `pathlib` matches (`*.bak` at any depth, `sessions/*.tmp` in that folder only).
    """
    if not root.is_dir():
        raise AnalyticsError(
            f"exports folder {root} does not exist or is not a folder",
            "pass --exports with the folder that holds the platform's exports",
        )
    files: list[ExportFile] = []
    ignored: list[str] = []
    skipped: list[str] = []
    unaccounted: list[Unaccounted] = []
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise_walk_error):
        dirnames.sort()
        for name in list(dirnames):
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if name[:1] in "._" or _matches(rel, ignore):
                dirnames.remove(name)  # nothing below it is read
                skipped.append(rel + "/")
                continue
            # os.walk does not follow a linked folder: fine if its files are inside the
            # exports folder anyway (read under their own path), refused otherwise.
            _refuse_outside_links(Path(dirpath) / name, root, real_root)
        for filename in filenames:
            path = Path(dirpath) / filename
            rel = path.relative_to(root).as_posix()
            if filename[:1] in "._" or _matches(rel, ignore):
                skipped.append(rel)
                continue
            _refuse_outside_links(path, root, real_root)
            parts = tuple(rel.split("/"))
            entity = _entity_of(parts)
            fmt = _format_of(filename)
            if entity is not None and fmt is None:
                where = f"inside {parts[0]}/" if len(parts) > 1 else f"named after {entity}"
                unaccounted.append(
                    Unaccounted(rel, f"not an export format ({where}); {_FORMATS_TEXT}")
                )
                continue
            if entity is None and fmt is not None:
                if len(parts) > 1:
                    reason = f"folder {parts[0]}/ matches no entity{_suggestion(parts[0])}"
                else:
                    reason = f"no entity matches{_suggestion(filename)}"
                unaccounted.append(Unaccounted(rel, reason))
                continue
            if entity is None or fmt is None or not path.is_file():
                ignored.append(rel)
                continue
            try:
                size = path.stat().st_size
            except OSError as exc:
                raise UnreadableFileError(rel, exc.strerror or str(exc)) from exc
            files.append(ExportFile(rel, path, entity, fmt[0], fmt[1], size))
    files.sort(key=lambda f: f.rel_path.encode())
    ignored.sort(key=str.encode)
    skipped.sort(key=str.encode)
    unaccounted.sort(key=lambda u: u.rel_path.encode())
    return ExportsFolder(root, files, ignored, skipped, unaccounted)


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


def _refuse_outside_links(path: Path, root: Path, real_root: Path) -> None:
    """Exports are read only from inside the exports folder: a symbolic link that leads
    out of it fails the run (its file would be read, or its folder silently skipped)."""
    if not path.is_symlink():
        return
    try:
        target = path.resolve()
    except (OSError, RuntimeError) as exc:  # a loop of links
        raise UnreadableFileError(
            path.relative_to(root).as_posix(), f"a symbolic link that cannot be resolved ({exc})"
        ) from exc
    if not target.is_relative_to(real_root):
        kind = "folder" if target.is_dir() else "file"
        raise UnreadableFileError(
            path.relative_to(root).as_posix(),
            f"a symbolic link to a {kind} outside the exports folder is not read",
        )


def _raise_walk_error(error: OSError) -> None:
    raise UnreadableFileError(str(error.filename), error.strerror or str(error))
