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

from scenario_analytics import __version__
from scenario_analytics.config import MaterializeConfig
from scenario_analytics.sql_files import SqlFile

# Bumped when the ledger's own layout changes.
LEDGER_FORMAT = "1"


def _sha256(parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


@functools.cache
def code_digest() -> str:
    """The tool's version, its Python sources and the engines it runs on.

    Any change to the code that reads files or writes snapshots may change results, so
    it invalidates the ledger and marks snapshots as out of date. Hashing every module
    is cruder than naming the ones that matter, and cannot forget one.
    """
    package = Path(__file__).resolve().parent
    parts = [__version__, duckdb.__version__, str(pa.__version__)]
    for path in sorted(package.glob("*.py")):
        parts += [path.name, hashlib.sha256(path.read_bytes()).hexdigest()]
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
    materialize: MaterializeConfig,
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
