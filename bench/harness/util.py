"""Small helpers of the benchmark harness: where things are, logging, sizes and dataset
names, files and folders, SQL literals."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
CLI = BIN / "scenario-analytics"

# Datasets of 100M sessions and more ("100m") are there for the 100M targets: a full run's
# peak memory under a 6 GB DuckDB limit, and its time per session against 10M. Unless
# --only names contenders (or --memory-limit a limit), they run only these, under this
# limit: everything at 100M would take hours, and DuckDB's default limit (80% of RAM)
# would crowd a shared machine.
SCALE_SESSIONS = 100_000_000
SCALE_MEMORY_LIMIT = "6GB"
SCALE_CONTENDERS = ("job_full", "duckdb_handwritten")


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use e.g. 100k, 1m, 2.5m")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)]
    return int(float(match.group(1)) * scale)


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # e.g. 1m, 2m-jsonl
    sessions: int
    fmt: str  # parquet or jsonl


def parse_datasets(text: str) -> list[DatasetSpec]:
    specs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        size, _, fmt = item.partition("-")
        fmt = fmt or "parquet"
        if fmt not in {"parquet", "jsonl", "csv"}:
            raise SystemExit(f"bench: bad dataset {item!r}: the format is parquet, jsonl or csv")
        specs.append(DatasetSpec(item.lower(), parse_size(size), fmt))
    if not specs:
        raise SystemExit("bench: --sizes names no dataset")
    return specs


def only_names(args: argparse.Namespace) -> set[str]:
    """The contenders --only names (empty: no --only, everything)."""
    return {name.strip() for name in (args.only or "").split(",") if name.strip()}


def rss_bytes(usage: Any) -> int:
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS
    return int(usage.ru_maxrss) * (1 if sys.platform == "darwin" else 1024)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def link_tree(source: Path, target: Path) -> None:
    """A copy of an exports folder made of hard links (a real copy across file systems)."""
    for path in sorted(source.rglob("*")):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
