"""Finding the export files in an exports folder: which entity, which format."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from scenario_analytics.errors import AnalyticsError, UnreadableFileError
from scenario_analytics.ingest.entities import ENTITIES, ExportFile
from scenario_analytics.ingest.readers import suffix_table

# (suffix, format, gzip) from the readers' registry; `.jsonl.gz` is tried before `.gz`.
_FORMATS: tuple[tuple[str, str, bool], ...] = suffix_table()


@dataclass(frozen=True)
class ExportsFolder:
    root: Path
    files: list[ExportFile]
    ignored: list[str]

    def of(self, entity: str) -> list[ExportFile]:
        return [f for f in self.files if f.entity == entity]


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


def discover(root: Path) -> ExportsFolder:
    """List the files of an exports folder, sorted by relative path (byte order).

    Files that match no entity or have an unknown extension are returned in `ignored`.
    """
    if not root.is_dir():
        raise AnalyticsError(
            f"exports folder {root} does not exist or is not a folder",
            "pass --exports with the folder that holds the platform's exports",
        )
    files: list[ExportFile] = []
    ignored: list[str] = []
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise_walk_error):
        dirnames.sort()
        for name in dirnames:
            # os.walk does not follow a linked folder: fine if its files are inside the
            # exports folder anyway (read under their own path), refused otherwise.
            _refuse_outside_links(Path(dirpath) / name, root, real_root)
        for filename in filenames:
            path = Path(dirpath) / filename
            rel = path.relative_to(root).as_posix()
            _refuse_outside_links(path, root, real_root)
            entity = _entity_of(tuple(rel.split("/")))
            fmt = _format_of(filename)
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
    return ExportsFolder(root, files, ignored)


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
