"""Digests that say whether earlier work can be reused: code, SQL, inputs, settings.

- The ledger keeps staged rows per export file; they stay valid while the file's bytes,
  the per-file SQL and the code that reads files are the same (`staging_digest`).
- A published snapshot is up to date while its inputs, SQL, job settings and tool are
  the same (`snapshot_fingerprint`, stored in its manifest); `backfill` skips such days
  without loading anything.
- Otherwise it is still up to date while what its day uses is the same: the sessions up
  to its day, the directory rows it takes, SQL, tool, settings (`data_digest`, from
  `sql/0070`'s `day_digests`, stored in its manifest as `data_digest`).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from scenario_analytics.engine.sql_files import SqlFile
from scenario_analytics.settings import MaterializeSettings
from scenario_analytics.version import __version__

# Bumped when the ledger's own layout changes.
LEDGER_FORMAT = "1"


def _sha256(parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


# Code that cannot change what a run reads or writes: the command line (options, help
# texts, output), the terminal and log renderers under it, the HTTP server (`api`), the
# test-only fault hook, how events are described, how a signal stops the job, and the
# generator of synthetic exports. Everything else under the package counts, in every
# sub-package however deep (`data_code_files`).
NOT_DATA_CODE: frozenset[str] = frozenset(
    {"cli", "api", "generate", "sql", "events.py", "faults.py", "interrupts.py", "__main__.py"}
)


def data_code_files(package: Path | None = None) -> list[Path]:
    """The package's Python files that can change results, sorted by relative path."""
    package = package or Path(__file__).resolve().parents[1]
    return sorted(
        (p for p in package.rglob("*.py") if p.relative_to(package).parts[0] not in NOT_DATA_CODE),
        key=lambda p: p.relative_to(package).as_posix(),
    )


@functools.cache
def code_digest() -> str:
    """The tool's version, the Python code that can change results, and the engines.

    Any change to the code that reads files or writes snapshots may change results, so
    it invalidates the ledger and marks snapshots as out of date. Hashing every such
    module is cruder than naming the ones that matter, and cannot forget one; the
    command line and progress output are left out (`NOT_DATA_CODE`), so a new help text
    does not make the next night parse every file again.
    """
    package = Path(__file__).resolve().parents[1]
    parts = [__version__, duckdb.__version__, str(pa.__version__)]
    for path in data_code_files(package):
        parts += [
            path.relative_to(package).as_posix(),
            hashlib.sha256(path.read_bytes()).hexdigest(),
        ]
    return _sha256(parts)


def sql_version(files: Iterable[tuple[str, str]]) -> str:
    """A short name for a set of SQL files, from (file name, sha256) pairs, in order."""
    return _sha256(f"{name}:{sha}" for name, sha in files)[:12]


def staging_digest(per_file_sql: Iterable[SqlFile]) -> str:
    """What the ledger's staged rows depend on besides each file's own bytes."""
    return _sha256([LEDGER_FORMAT, code_digest(), *(f"{f.name}:{f.sha256}" for f in per_file_sql)])


def snapshot_fingerprint(
    inputs: Iterable[tuple[str, str]],
    ignored: Iterable[str],
    sql_files: Iterable[SqlFile],
    materialize: MaterializeSettings,
) -> dict[str, str]:
    """What a snapshot's content depends on, besides its date, as named digests.

    `inputs` are (relative path, sha256) pairs. Settings that change no output (engine
    resources, the reject gate: a snapshot is published or not) are left out.
    """
    settings = json.dumps(materialize.model_dump(mode="json"), sort_keys=True)
    return {
        "inputs": _sha256([*(f"{path}:{sha}" for path, sha in inputs), "ignored", *ignored]),
        "sql": sql_version((f.name, f.sha256) for f in sql_files),
        "settings": _sha256([settings]),
        "tool": code_digest(),
    }


# -- per-day data digests -------------------------------------------------------------------


@dataclass(frozen=True)
class DayDigest:
    """What one as-of day's snapshot is made of, from `sql/0070`'s `day_digests`: the
    accepted, de-duplicated sessions created up to the end of the day (their number and
    two XORs of row hashes) and the directory rows the day uses (users, scenarios, groups,
    memberships: their number and two XORs)."""

    sessions: int = 0
    h1: int = 0
    h2: int = 0
    directory_rows: int = 0
    d1: int = 0
    d2: int = 0


class DayDigests:
    """The running digests of every day, read once after the build SQL; `at(day)` is the
    newest row on or before `day` (a day without sessions of its own has the one before)."""

    def __init__(self, rows: Iterable[tuple[date, DayDigest]]) -> None:
        pairs = sorted(rows, key=lambda r: r[0])
        self.days = [d for d, _ in pairs]
        self.rows = [r for _, r in pairs]

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> DayDigests:
        found = con.execute(
            "SELECT day, sessions, h1, h2, directory_rows, d1, d2 FROM day_digests ORDER BY day"
        ).fetchall()
        return cls((day, DayDigest(*(int(v) for v in rest))) for day, *rest in found)

    def at(self, day: date) -> DayDigest:
        n = bisect.bisect_right(self.days, day)
        return self.rows[n - 1] if n else DayDigest()


def data_digest(day: DayDigest, fingerprint: Mapping[str, str]) -> str:
    """One hex string for a day's snapshot: its day digest, the SQL version, the code
    digest (`code_digest`) and the materialized filter set (the fingerprint's `settings`).
    Equal for two builds exactly when what determines the snapshot's content is equal
    (but for the date itself, which the snapshot's folder names)."""
    return _sha256(
        [
            "data_digest:1",
            *(f"{name}={getattr(day, name)}" for name in DayDigest.__dataclass_fields__),
            f"sql={fingerprint.get('sql', '')}",
            f"tool={fingerprint.get('tool', '')}",
            f"settings={fingerprint.get('settings', '')}",
        ]
    )
