"""Digests that say whether earlier work can be reused: code, SQL, inputs, settings.

- The ledger keeps staged rows per export file; they stay valid while the file's bytes,
  the per-file SQL and the code that reads files are the same (`staging_digest`).
- A published snapshot is up to date while its inputs, SQL, job settings and tool are
  the same (`snapshot_fingerprint`, stored in its manifest); `backfill` skips such days.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
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
# texts, output), the terminal and log renderers under it, the test-only fault hook, how
# events are described, how a signal stops the job, and the generator of synthetic
# exports. Everything else under the package counts, in every sub-package however deep
# (`data_code_files`).
NOT_DATA_CODE: frozenset[str] = frozenset(
    {"cli", "generate", "sql", "events.py", "faults.py", "interrupts.py", "__main__.py"}
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
