"""Writing one snapshot's files (Parquet tables, API JSON bodies, manifest) into a folder."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import duckdb

from scenario_analytics.engine.database import insertion_order_kept, quote_literal
from scenario_analytics.errors import AnalyticsError
from scenario_analytics.filters import FILTERS
from scenario_analytics.publish.manifest import (
    Manifest,
    OutputEntry,
    file_sha256,
    listing_sha256,
)

if TYPE_CHECKING:
    from scenario_analytics.publish.sharing import Sharing

# The figures of a summary, as summaries.parquet has a column each (sql/0140 computes them;
# `serve/diff.py` compares them), in the order of the response body.
SUMMARY_FIGURES: tuple[str, ...] = (
    "participant_count",
    "total_sessions",
    "average_best_score",
    "average_best_rank",
    "average_lift_percentage",
    "total_practice_minutes",
    "average_session_duration_seconds",
    *(
        f"{rank}_{what}"
        for rank in ("gold", "silver", "bronze", "unranked")
        for what in ("count", "percentage")
    ),
)

# Table name -> the query that fills it; rows in a fixed order so files are reproducible.
# Each is written with DuckDB's insertion order kept (`database.insertion_order_kept`).
# Ranks come from the SQL's `score_rank` (sql/0130_filter_participants.sql).
TABLES: dict[str, str] = {
    "summaries": f"""
        SELECT scenario_id, request_key, {", ".join(f.name for f in FILTERS)},
               {", ".join(SUMMARY_FIGURES)}, body
        FROM summaries ORDER BY scenario_id, request_key""",
    "participants": """
        SELECT p.scenario_id, p.user_id, p.session_count, p.first_score,
               score_rank(p.first_score) AS first_rank, p.best_score,
               score_rank(p.best_score) AS best_rank,
               p.lift, p.total_duration_seconds, p.sessions_with_duration
        FROM filter_participants AS p JOIN filters AS f ON f.filter_id = p.filter_id
        WHERE f.request_key = ''
        ORDER BY p.scenario_id, p.user_id""",
    "scenarios": """
        SELECT scenario_id, slug, name, in_scenarios_export FROM snapshot_scenarios
        ORDER BY scenario_id""",
    # The sessions are not one table but one file per day: `write_sessions`.
    # New columns go last: readers that select by position keep working.
    "users": """
        SELECT user_id, email, is_system, is_member, first_name, last_name FROM users
        ORDER BY user_id""",
    "groups": "SELECT group_id, name FROM groups ORDER BY group_id",
    "group_memberships": """
        SELECT group_id, user_id FROM group_memberships ORDER BY group_id, user_id""",
    "rejects": """
        SELECT entity, source_file, position, reason, raw FROM rejects
        ORDER BY source_file, position""",
}


def encode_path_segment(value: str) -> str:
    """RFC 3986 percent-encoding for a path segment; `.` and `..` are encoded too."""
    encoded = quote(value, safe="-._~")
    if encoded in {".", ".."}:
        encoded = encoded.replace(".", "%2E")
    return encoded


# Longest percent-encoded id used as a folder name as it is (CONTRACT.md section 5); file
# systems allow 255 bytes per name.
MAX_SEGMENT_BYTES = 200


def scenario_folder(scenario_id: str) -> str:
    """The folder name of a scenario's API files: its percent-encoded id, or, when that is
    over MAX_SEGMENT_BYTES, `%-` and the sha256 of the id (no encoding yields `%-`)."""
    encoded = encode_path_segment(scenario_id)
    if len(encoded) > MAX_SEGMENT_BYTES:
        return "%-" + hashlib.sha256(scenario_id.encode()).hexdigest()
    return encoded


def summary_path(scenario_id: str) -> str:
    return f"api/scenarios/{scenario_folder(scenario_id)}/analytics/summary.json"


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A write that fails (full disk, read-only store) fails the run naming the file.

    Everything here is written in the staging folder, so nothing is published then.
    """
    try:
        yield
    except (OSError, duckdb.Error) as exc:
        code = exc.errno if isinstance(exc, OSError) else _duckdb_errno(exc)
        if code is not None:
            reason = os.strerror(code)
        elif isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
        else:
            reason = str(exc).strip().splitlines()[0]
        raise AnalyticsError(
            f"cannot write snapshot file {path}: {reason}",
            "free space or fix permissions in the snapshot store, then run again; "
            "nothing was published",
        ) from exc


def _duckdb_errno(exc: duckdb.Error) -> int | None:
    """The OS error number DuckDB reports in an I/O error's text, if any."""
    match = re.search(r'"errno"\s*:\s*"(\d+)"', str(exc))
    return int(match.group(1)) if match else None


# ZSTD level 1 for the sessions instead of the default 3: a quarter less CPU (10M rows:
# 2.5 s instead of 3.5 s) for files 1% larger, and most days' files are shared, not
# written. The other tables are written whole into every snapshot's folder (warehouses
# glob them there): level 9, 9-25% smaller than level 1 at 1M sessions (participants
# 926 kB -> 839 kB, group_memberships 262 kB -> 197 kB) for a few tens of milliseconds.
# String dictionaries capped at 1 kB: the ids of the sessions have too many values per
# row group for one to pay off; trying costs 15% of the CPU, and sorted plain strings
# compress as well.
_PARQUET_OPTIONS = (
    "FORMAT PARQUET, COMPRESSION ZSTD, COMPRESSION_LEVEL {level}, ROW_GROUP_SIZE {row_group}, "
    "STRING_DICTIONARY_PAGE_SIZE_LIMIT 1024"
)
_TABLE_LEVEL = 9
_SESSION_LEVEL = 1
_ROW_GROUP = 122880
# A day's partition in row groups of 16k rows, each a slice of the day's scenarios in
# order, so that a reader of one scenario (`query`) decodes a few row groups per day.
_SESSION_ROW_GROUP = 16384

# The sessions of a snapshot: one Parquet file per UTC day of `created_at` (Hive-style
# `created_date=YYYY-MM-DD` folders), each sorted by scenario, user, created_at and
# session id. Readers glob SESSIONS_GLOB; `sessions_files` also knows the single
# `sessions.parquet` of snapshots written before partitions.
SESSIONS_FOLDER = "sessions"
SESSIONS_GLOB = f"{SESSIONS_FOLDER}/created_date=*/part-0.parquet"
LEGACY_SESSIONS_FILE = "sessions.parquet"
SESSION_COLUMNS = "scenario_id, user_id, session_id, created_at, score, duration_seconds"
# A day's rows in a partition file: by scenario first (a reader of one scenario decodes a
# few row groups), session id last (ids are unique: one order for equal rows).
PARTITION_ORDER = "scenario_id, user_id, created_at, session_id"
# Bumped whenever what a partition file holds or how it is written changes, so that no
# snapshot shares a partition written another way (`partition_digest`).
PARTITION_FORMAT = "p1"


def session_partition(day: date) -> str:
    """The path of a day's sessions in a snapshot folder."""
    return f"{SESSIONS_FOLDER}/created_date={day.isoformat()}/part-0.parquet"


def partition_digest(rows: int, h1: int, h2: int) -> str:
    """What a day's partition holds, from sql/0070's `graded_days`: the format, the row
    count and two XORs of row hashes. Equal digests: equal rows, in the same order."""
    return f"{PARTITION_FORMAT}:{rows}:{h1:016x}{h2:016x}"


def session_file_names(files: Iterator[str] | list[str]) -> list[str]:
    """Of a snapshot's files (paths in it), its session files, in day order: the day
    partitions, or the one `sessions.parquet` of snapshots written before partitions."""
    names = list(files)
    if LEGACY_SESSIONS_FILE in names:
        return [LEGACY_SESSIONS_FILE]
    prefix = SESSIONS_FOLDER + "/created_date="
    return sorted(n for n in names if n.startswith(prefix) and n.endswith("/part-0.parquet"))


def sessions_relation(files: list[Path]) -> str:
    """SQL for a FROM clause: a snapshot's graded sessions (`SESSION_COLUMNS`) from its
    `sessions_files`, typed even when it has none (read_parquet of no files is an error)."""
    if not files:
        return """(SELECT CAST(NULL AS VARCHAR) AS scenario_id, CAST(NULL AS VARCHAR) AS user_id,
                          CAST(NULL AS VARCHAR) AS session_id,
                          CAST(NULL AS TIMESTAMP) AS created_at,
                          CAST(NULL AS DECIMAL(9, 4)) AS score,
                          CAST(NULL AS DECIMAL(38, 6)) AS duration_seconds
                   WHERE false)"""
    listing = ", ".join(quote_literal(str(f)) for f in files)
    return f"read_parquet([{listing}], hive_partitioning = false)"


def write_tables(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    on_table: Callable[[str, float], None] | None = None,
    sharing: Sharing | None = None,
) -> list[OutputEntry]:
    """Every table's Parquet file, then the sessions' partitions up to the as-of day;
    `on_table(name, seconds)` after each one. With `sharing`, a partition a published
    snapshot has with the same content is not written (`publish/sharing.py`)."""
    outputs = []
    for name in TABLES:
        started = time.monotonic()
        outputs.append(write_table(con, folder, name))
        if on_table is not None:
            on_table(name, time.monotonic() - started)
    started = time.monotonic()
    outputs.append(write_sessions(con, folder, sharing))
    if on_table is not None:
        on_table(SESSIONS_FOLDER, time.monotonic() - started)
    return outputs


def write_table(con: duckdb.DuckDBPyConnection, folder: Path, name: str) -> OutputEntry:
    """One table's Parquet file; returns its manifest entry (COPY counts the rows; the
    sha256 is of the file as written, read back, for `snapshots verify`)."""
    path = folder / f"{name}.parquet"
    with _writing(path), insertion_order_kept(con):
        ((rows,),) = con.execute(
            f"COPY ({TABLES[name]}) TO {quote_literal(str(path))} "
            f"({_PARQUET_OPTIONS.format(row_group=_ROW_GROUP, level=_TABLE_LEVEL)})"
        ).fetchall()
        digest = file_sha256(path)
    return OutputEntry(path=path.name, rows=int(rows), sha256=digest)


def write_sessions(
    con: duckdb.DuckDBPyConnection, folder: Path, sharing: Sharing | None = None
) -> OutputEntry:
    """The graded sessions (`graded_sessions`, sql/0100), one file per day of created_at.

    A day whose content digest (sql/0070's `graded_days`) a published snapshot's
    manifest lists for the same file is not written: the new snapshot uses that file
    (`Sharing.partition`). The others are each one COPY of a day of `graded_sessions`,
    sorted as PARTITION_ORDER says (a day is ~1% of the sessions: sorting the days
    written costs less than sorting all of them once, as most nights write one).
    """
    ((as_of_end,),) = con.execute("SELECT getvariable('as_of_end')").fetchall()
    days = con.execute(
        "SELECT day, sessions, h1, h2 FROM graded_days WHERE day <= CAST($end AS DATE) "
        "ORDER BY day",
        {"end": as_of_end},
    ).fetchall()
    files: dict[str, str] = {}
    partitions: dict[str, str] = {}
    total = 0
    for day, rows, h1, h2 in days:
        rel = session_partition(day)
        digest = partition_digest(int(rows), int(h1), int(h2))
        path = folder / rel
        shared = sharing.partition(rel, digest) if sharing is not None else None
        if shared is None:
            with _writing(path):
                path.parent.mkdir(parents=True, exist_ok=True)
                shared = _write_partition(con, path, day, int(rows))
        files[rel] = shared
        partitions[rel] = digest
        total += int(rows)
    return OutputEntry(
        path=SESSIONS_GLOB,
        rows=total,
        sha256=listing_sha256(files),
        files=files,
        partitions=partitions,
    )


def _write_partition(con: duckdb.DuckDBPyConnection, path: Path, day: date, rows: int) -> str:
    """One day's sessions into `path`; its sha256."""
    start = datetime.combine(day, datetime.min.time())
    with insertion_order_kept(con):
        ((written,),) = con.execute(
            f"""COPY (SELECT {SESSION_COLUMNS} FROM graded_sessions
                      WHERE created_at >= $start AND created_at < $end
                      ORDER BY {PARTITION_ORDER})
                TO {quote_literal(str(path))}
                ({_PARQUET_OPTIONS.format(row_group=_SESSION_ROW_GROUP, level=_SESSION_LEVEL)})""",
            {"start": start, "end": start + timedelta(days=1)},
        ).fetchall()
    if int(written) != rows:
        raise AnalyticsError(
            f"internal error: {written} sessions written for {day.isoformat()}, "
            f"graded_days counts {rows}",
            "report this with the run's log; nothing was published",
        )
    return file_sha256(path)


def write_summary_bodies(con: duckdb.DuckDBPyConnection, folder: Path) -> OutputEntry:
    """One summary.json per scenario: exactly the unfiltered response body. The entry
    lists each file with its sha256 (`files`), and one digest over them (`sha256`)."""
    rows = con.execute(
        "SELECT scenario_id, body FROM summaries WHERE request_key = '' ORDER BY scenario_id"
    ).fetchall()
    files: dict[str, str] = {}
    for scenario_id, body in rows:
        rel = summary_path(str(scenario_id))
        path = folder / rel
        data = str(body).encode("utf-8")
        with _writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        files[rel] = hashlib.sha256(data).hexdigest()
    return OutputEntry(
        path="api/scenarios/*/analytics/summary.json",
        rows=len(rows),
        sha256=listing_sha256(files),
        files=dict(sorted(files.items())),
    )


def write_manifest(folder: Path, manifest: Manifest) -> None:
    path = folder / "manifest.json"
    with _writing(path):
        path.write_text(manifest.to_json(), encoding="utf-8")
