"""Writing a snapshot's tables: the session partitions are sorted without sorting per
snapshot."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from scenario_analytics.engine.database import EngineSettings, connect, insertion_order_kept
from scenario_analytics.engine.sql_files import load_sql_files, run_sql_files
from scenario_analytics.filters import as_of_end
from scenario_analytics.pipeline.staging import compress_history
from scenario_analytics.publish.manifest import file_sha256, listing_sha256
from scenario_analytics.publish.snapshot import SESSIONS_GLOB, session_partition, write_sessions

SORTED = """
    SELECT scenario_id, user_id, session_id, created_at, score, duration_seconds
    FROM sessions
    WHERE is_valid_attempt AND created_at <= $end
    ORDER BY CAST(created_at AS DATE), scenario_id, user_id, created_at, session_id"""


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """Many threads and a `sessions` table of several row groups, stored shuffled, with
    ties on (scenario, user, created_at) that only the session id breaks."""
    con = connect(EngineSettings(threads=4))
    con.execute(
        """CREATE TABLE sessions AS
           SELECT 's' || i AS session_id,
                  'u' || (hash(i * 7) % 3000) AS user_id,
                  'sc' || (hash(i * 3) % 23) AS scenario_id,
                  TIMESTAMP '2026-11-01' + to_seconds(hash(i * 13) % 400 * 3600) AS created_at,
                  CAST(hash(i * 17) % 10001 / 100 AS DECIMAL(9, 4)) AS score,
                  CAST(hash(i * 19) % 900 AS DECIMAL(38, 6)) AS duration_seconds,
                  i % 10 <> 0 AS is_valid_attempt
           FROM range(400000) AS t(i)
           ORDER BY hash(i * 31)"""
    )
    # What 0070's day_digests reads besides the sessions (0040...0060 make them): empty.
    con.execute(
        """CREATE TABLE user_directory (user_id VARCHAR, email VARCHAR, is_system BOOLEAN,
               is_member BOOLEAN, first_session_at TIMESTAMP, first_name VARCHAR,
               last_name VARCHAR);
           CREATE TABLE scenario_directory (scenario_id VARCHAR, slug VARCHAR, name VARCHAR,
               in_scenarios_export BOOLEAN, first_session_at TIMESTAMP);
           CREATE TABLE groups (group_id VARCHAR, name VARCHAR);
           CREATE TABLE group_memberships (group_id VARCHAR, user_id VARCHAR)"""
    )
    yield con
    con.close()


@pytest.mark.parametrize("compressed", [False, True], ids=["in-memory", "compressed"])
def test_session_partitions_are_sorted_for_each_as_of_date(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, compressed: bool
) -> None:
    files = {f.name: f for f in load_sql_files()}
    history, graded = files["0070_session_history.sql"], files["0100_graded_sessions.sql"]
    assert not history.keeps_order  # the writer sorts each day it writes
    run_sql_files(con, [history], {})
    if compressed:  # as a backfill of several days holds it
        compress_history(con)
        assert con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE view_name = 'graded_history'"
        ).fetchall() == [(1,)]
    for n, day in enumerate([date(2026, 11, 12), date(2026, 11, 17)]):
        run_sql_files(con, [graded], {"as_of_end": as_of_end(day)})
        folder = tmp_path / str(n)
        folder.mkdir()
        entry = write_sessions(con, folder)
        expected = con.execute(SORTED, {"end": as_of_end(day)}).fetchall()
        days = sorted({row[3].date() for row in expected})
        assert days[-1] == day
        partitions = sorted(folder.glob(SESSIONS_GLOB))
        assert [p.relative_to(folder).as_posix() for p in partitions] == [
            session_partition(d) for d in days
        ]
        assert entry.path == SESSIONS_GLOB and entry.rows == len(expected)
        assert entry.files == {
            p.relative_to(folder).as_posix(): file_sha256(p) for p in partitions
        }  # of the files as written
        assert entry.sha256 == listing_sha256(entry.files)
        assert entry.partitions is not None and set(entry.partitions) == set(entry.files)
        # Each day in several row groups, written from several of the table's.
        assert len(expected) / len(days) > 16384
        written = []
        for partition in partitions:
            rows = duckdb.sql(
                f"SELECT * FROM read_parquet('{partition}', hive_partitioning = false)"
            ).fetchall()
            assert {r[3].date().isoformat() for r in rows} == {partition.parent.name[13:]}
            written += rows
        assert written == expected, day
    # The job's default stays: no order kept where none was asked for.
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchall() == [
        (False,)
    ]


def test_order_setting_is_restored_after_a_failure(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(duckdb.Error), insertion_order_kept(con):
        con.execute("SELECT * FROM no_such_table")
    setting = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    assert setting == [(False,)]
