"""Where the baselines find their input files in an exports folder written by `generate`.

Deliberately independent of `scenario_analytics`: a baseline is what someone would write
by hand for this one folder layout (sessions in `sessions/`, every other entity in one
top-level file named after it), not a second copy of the job's discovery rules.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

FORMATS = {
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
}


@dataclass(frozen=True)
class InputFile:
    path: Path
    fmt: str  # parquet, jsonl, json (an API list page), csv


@dataclass(frozen=True)
class Inputs:
    root: Path
    sessions: list[InputFile]
    members: InputFile | None
    scenarios: InputFile | None
    groups: InputFile | None
    group_memberships: InputFile | None

    @property
    def sessions_format(self) -> str:
        formats = {f.fmt for f in self.sessions}
        if len(formats) != 1:
            raise SystemExit(f"{self.root}: expected one sessions format, found {sorted(formats)}")
        return formats.pop()


def _format(path: Path) -> str | None:
    return FORMATS.get(path.suffix.lower())


def _entity_file(root: Path, entity: str) -> InputFile | None:
    for path in sorted(root.iterdir(), key=lambda p: p.name.encode()):
        name = path.name
        if (
            path.is_file()
            and name.startswith(entity)
            and len(name) > len(entity)
            and name[len(entity)] in "-_."
            and _format(path) is not None
        ):
            return InputFile(path, _format(path) or "")
    return None


def find_inputs(root: Path) -> Inputs:
    folder = root / "sessions"
    sessions = sorted(
        (p for p in folder.rglob("*") if p.is_file() and _format(p) is not None),
        # the contract's duplicate rule: files by relative path, byte order
        key=lambda p: p.relative_to(root).as_posix().encode(),
    )
    if not sessions:
        raise SystemExit(f"no session files under {folder}")
    return Inputs(
        root=root,
        sessions=[InputFile(p, _format(p) or "") for p in sessions],
        members=_entity_file(root, "members"),
        scenarios=_entity_file(root, "scenarios"),
        groups=_entity_file(root, "groups"),
        group_memberships=_entity_file(root, "group_memberships"),
    )


def as_of_end(as_of: date) -> datetime:
    """The last microsecond of the as-of day (naive UTC)."""
    return datetime.combine(as_of, time.max)


def window_start(as_of: date, days: int) -> datetime:
    """'Last N days': from 00:00:00 UTC N-1 days before the as-of day."""
    return datetime.combine(as_of - timedelta(days=days - 1), time.min)


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--exports", type=Path, required=True, help="exports folder")
    parser.add_argument("--as-of", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    parser.add_argument("--out", type=Path, help="write the figures here (Parquet)")
    parser.add_argument("--threads", type=int, help="worker threads (DuckDB only)")
    parser.add_argument("--memory-limit", help="memory limit (DuckDB only), e.g. 2GB")
    return parser.parse_args()
