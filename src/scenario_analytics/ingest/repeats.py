"""Which session ids repeat across the export files: build state kept between runs.

`sql/0040_deduplicate.sql` finds the session ids with more than one accepted row by
grouping every staged session, then keeps one row of each. A night whose only change is
new session files need not group them all again: the ids that repeated among the files
of the run before are kept in the store, and an id of a new file can only repeat if it
occurs twice in the new files or once in an old one, which one pass finds by probing the
old rows' ids against a hash of the new ones (10M sessions: 0.26 s, and 0040 then takes
3.4 s instead of 4.1 s). The result is the same set of ids, exactly: the old files are
unchanged, and files only added cannot make an id repeat less.

    DIR/.ledger/repeats.json                   the state: under which ledger digest and
                                               from which session files (path -> sha256)
    DIR/.ledger/repeats/<sha256>.parquet       its ids (one column, session_id)

The state is used only if it was made under the ledger's digest (the per-file SQL and
the code), and every session file it lists is among the run's files with the same
content; a removed or changed file, another digest, `--full-refresh`, a missing or
damaged part: 0040 runs whole, and the run keeps its result as the new state. Only the
DuckDB engine keeps it (the Spark engine runs 0040 whole, on Spark: docs/ENGINES.md). It
is derived data: deleting it costs one grouping of every session, nothing else.

Written like the ledger's parts: the Parquet file first (uploaded, verified), then
`repeats.json` (one object: the old state or the new one), then the old Parquet file is
deleted; what a killed run leaves unnamed, the ledger removes (`Ledger._remove_unnamed`
keeps what `state_names` lists).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from scenario_analytics.engine.database import quote_literal
from scenario_analytics.events import Event, Report, ignore
from scenario_analytics.layout import LEDGER_NAME
from scenario_analytics.storage import ObjectMissing, Storage, StorageError

if TYPE_CHECKING:  # the ledger imports this module
    from scenario_analytics.ingest.ledger import InputFile

STATE_NAME = "repeats.json"
STATE_KEY = f"{LEDGER_NAME}/{STATE_NAME}"
STATE_FORMAT = 1
SQL_FILE = "0040_deduplicate.sql"  # makes TABLE first, then uses it
TABLE = "repeated_ids"
_PART = re.compile(r"^repeats/[0-9a-f]{64}\.parquet$")


def _sessions(files: Sequence[InputFile]) -> list[InputFile]:
    """The session export files among a run's files."""
    return [f for f in files if f.export.entity == "sessions"]


@dataclass(frozen=True)
class RepeatsState:
    """`repeats.json`: which files the ids were found among, and where the ids are."""

    digest: str
    files: dict[str, str]  # rel_path -> sha256, the session files
    part: str  # repeats/<sha256>.parquet, relative to the ledger's folder
    rows: int
    size: int

    @property
    def sha256(self) -> str:
        return self.part.split("/")[1].split(".")[0]

    def to_bytes(self) -> bytes:
        body = {
            "format": STATE_FORMAT,
            "digest": self.digest,
            "part": self.part,
            "rows": self.rows,
            "bytes": self.size,
            "files": dict(sorted(self.files.items())),
        }
        return json.dumps(body, indent=1).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> RepeatsState:
        """ValueError (or KeyError, TypeError) if it is not a state this code wrote."""
        body = json.loads(data)
        if body["format"] != STATE_FORMAT:
            raise ValueError(f"format {body['format']!r}, not {STATE_FORMAT}")
        state = cls(
            str(body["digest"]),
            {str(k): str(v) for k, v in dict(body["files"]).items()},
            str(body["part"]),
            int(body["rows"]),
            int(body["bytes"]),
        )
        if not _PART.match(state.part):
            raise ValueError(f"part {state.part!r}")
        return state

    def covers(self, files: Sequence[InputFile]) -> bool:
        """Whether every session file the state was made from is among `files`, unchanged."""
        now = {f.rel_path: f.sha256 for f in _sessions(files)}
        return all(now.get(path) == sha256 for path, sha256 in self.files.items())


def read_state(storage: Storage) -> RepeatsState | None:
    """The store's state; None if there is none or it cannot be read (it is rebuilt)."""
    try:
        data, _etag = storage.read(STATE_KEY)
        return RepeatsState.from_bytes(data)
    except (ObjectMissing, StorageError, KeyError, TypeError, ValueError):
        return None


def state_names(storage: Storage) -> set[str]:
    """What the state names in the ledger's folder (for the ledger's clean-up to keep)."""
    state = read_state(storage)
    return {STATE_NAME, state.part} if state is not None else {STATE_NAME}


def forget_state(storage: Storage) -> None:
    """Delete the state (a new ledger: `--full-refresh`, another digest)."""
    state = read_state(storage)
    storage.delete([STATE_KEY, *([f"{LEDGER_NAME}/{state.part}"] if state else [])])


def repeated_ids_from_state(
    con: duckdb.DuckDBPyConnection,
    storage: Storage,
    digest: str,
    files: Sequence[InputFile],
    report: Report = ignore,
) -> bool:
    """Make the `repeated_ids` table (what 0040 makes first) from the state and the new
    session files' rows (`staged_sessions` of this run), if the state holds for this run; returns
    whether it did (then the caller runs 0040 without that statement)."""
    state = read_state(storage)
    why = _unusable(state, digest, files)
    if why is None:
        assert state is not None
        try:
            local = storage.fetch(f"{LEDGER_NAME}/{state.part}", state.sha256, verify=True)
        except (StorageError, OSError) as exc:
            why = f"its part cannot be read ({exc})"
    if why is not None:
        report(Event("validate", "info", f"repeated session ids: found in full ({why})"))
        return False
    assert state is not None
    new = sorted(f.file_id for f in _sessions(files) if f.rel_path not in state.files)
    listed = ", ".join(str(i) for i in new) or "NULL"
    con.execute(
        f"""CREATE OR REPLACE TABLE {TABLE} AS
            WITH new_ids AS (
                SELECT session_id, count(*) AS n
                FROM staged_sessions
                WHERE reject_reason IS NULL AND file_id IN ({listed})
                GROUP BY session_id
            )
            SELECT session_id FROM read_parquet({quote_literal(str(local))})
            UNION
            SELECT session_id FROM new_ids WHERE n > 1
            UNION
            SELECT session_id FROM staged_sessions
            WHERE reject_reason IS NULL AND file_id NOT IN ({listed})
              AND session_id IN (SELECT session_id FROM new_ids)"""
    )
    report(
        Event(
            "validate",
            "info",
            f"repeated session ids: {state.rows:,} known from the last run, and those of "
            f"{len(new)} new session file{'' if len(new) == 1 else 's'}",
            data={"repeats_from_state": True, "repeats_new_files": len(new)},
        )
    )
    return True


def _unusable(state: RepeatsState | None, digest: str, files: Sequence[InputFile]) -> str | None:
    if state is None:
        return "no state kept by an earlier run"
    if state.digest != digest:
        return "the state was made by other SQL or code"
    if not state.covers(files):
        return "a session file of the last run is gone or changed"
    return None


def keep_state(
    con: duckdb.DuckDBPyConnection,
    storage: Storage,
    digest: str,
    files: Sequence[InputFile],
) -> None:
    """Keep this run's `repeated_ids` as the state for the next run (unless the state
    already describes exactly these session files)."""
    old = read_state(storage)
    wanted = {f.rel_path: f.sha256 for f in _sessions(files)}
    if old is not None and old.digest == digest and old.files == wanted:
        return
    scratch = storage.scratch(f"repeats-{uuid.uuid4().hex}")
    try:
        local = scratch / "repeats.parquet"
        ((rows,),) = con.execute(
            f"COPY (SELECT session_id FROM {TABLE} ORDER BY session_id) "
            f"TO {quote_literal(str(local))} (FORMAT PARQUET, COMPRESSION ZSTD)"
        ).fetchall()
        with local.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
        state = RepeatsState(digest, wanted, f"repeats/{sha256}.parquet", int(rows), size)
        storage.upload(f"{LEDGER_NAME}/{state.part}", local, sha256, move=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    storage.write(STATE_KEY, state.to_bytes())
    if old is not None and old.part != state.part:
        storage.delete([f"{LEDGER_NAME}/{old.part}"])
