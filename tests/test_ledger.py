"""The ledger of staged rows: lossless, and never trusted when it could be wrong.

- Rows read back from the ledger are the rows the per-file SQL made: same columns, same
  types, same values (each under this run's file id).
- A run killed at any point of the ledger's write leaves a catalog that names only
  whole parts; the next run cleans up what the killed one left, parses what the catalog
  does not hold, and publishes what a run from scratch gives.
- Other per-file SQL empties the ledger before anything is parsed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import CSV_SESSION_HEADER, FIXTURE_SKIPS, csv_session, session, write_exports
from helpers_ops import base_exports, cli_subprocess, snapshot_content

from scenario_analytics.engine.database import connect
from scenario_analytics.engine.sql_files import default_sql_dir, load_sql_files, plan_sql_files
from scenario_analytics.ingest.ledger import CATALOG_NAME, LEDGER_NAME, Ledger, ledger_problems
from scenario_analytics.pipeline.run import RunOptions, RunResult, run
from scenario_analytics.pipeline.staging import scan_exports, stage_exports
from scenario_analytics.publish.fingerprint import staging_digest

AS_OF = date(2026, 11, 26)


def _run(exports: Path, store: Path) -> RunResult:
    return run(
        RunOptions(
            exports=exports,
            snapshots=store,
            as_of=AS_OF,
            max_reject_ratio=0.5,
            skip_checks=FIXTURE_SKIPS,
        )
    )


def _staged(con: duckdb.DuckDBPyConnection, table: str) -> tuple[list[object], list[object]]:
    types = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
    rows = con.execute(f"SELECT * FROM {table} ORDER BY file_id, pos").fetchall()
    return types, rows


def test_rows_read_back_from_the_ledger_are_the_rows_the_sql_made(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    plan = plan_sql_files(load_sql_files())
    tables = [t for f in plan.per_file for t in f.creates]
    digest = staging_digest(plan.per_file)
    kept = tmp_path / "store" / LEDGER_NAME
    kept.parent.mkdir()
    found = []
    # No ledger (the SQL's own tables), then parsed and written, then all from the ledger.
    for path, parsed in [(None, 7), (kept, 7), (kept, 0)]:
        con = connect()
        try:
            ledger = Ledger(con, path, digest)
            loaded = stage_exports(con, scan_exports(exports), plan, ledger)
            assert loaded.files_parsed == parsed
            found.append({table: _staged(con, table) for table in tables})
        finally:
            con.close()
    assert all(rows for _types, rows in found[0].values())
    assert found[1] == found[0]
    assert found[2] == found[0]


def test_a_part_shared_by_two_paths_gives_each_its_own_file_id(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    shutil.copyfile(exports / "sessions" / "b.csv", exports / "sessions" / "z.csv")
    plan = plan_sql_files(load_sql_files())
    (tmp_path / "store").mkdir()
    for attempt in range(2):
        con = connect()
        try:
            ledger = Ledger(con, tmp_path / "store" / LEDGER_NAME, staging_digest(plan.per_file))
            inputs = scan_exports(exports)
            stage_exports(con, inputs, plan, ledger)
            ids = {f.rel_path: f.file_id for f in inputs.files}
            counts = dict(
                con.execute("SELECT file_id, count(*) FROM staged_sessions GROUP BY ALL").fetchall()
            )
        finally:
            con.close()
        assert counts[ids["sessions/b.csv"]] == counts[ids["sessions/z.csv"]] == 3, attempt


# Kills the process (SIGKILL: no clean-up runs) at one point of the ledger's write, by
# wrapping the renames that give a temporary file its name.
KILL_IN_LEDGER = """
import os, signal, sys
from scenario_analytics import files
from scenario_analytics.ingest import ledger
from scenario_analytics.cli import main

point = sys.argv[1]
real = os

class Os:
    def __getattr__(self, name):
        return getattr(real, name)

    @staticmethod
    def replace(source, target):
        catalog = os.path.basename(target) == ledger.CATALOG_NAME
        if point == ("catalog-tmp" if catalog else "part-tmp"):
            os.kill(os.getpid(), signal.SIGKILL)
        real.replace(source, target)
        if point == ("catalog-written" if catalog else "part-renamed"):
            os.kill(os.getpid(), signal.SIGKILL)

ledger.os = Os()  # the parts' renames
files.os = Os()  # the catalog's (files.write_atomically)
main(sys.argv[2:])
"""

# Where the kill lands, and how many files the next run then parses: before the catalog
# is renamed into place, the new files' rows are not in the ledger.
KILL_POINTS = {
    "part-tmp": 2,  # a new part written under its temporary name
    "part-renamed": 2,  # the first new part renamed, the catalog not written
    "catalog-tmp": 2,  # every new part in place, the new catalog not renamed yet
    "catalog-written": 0,  # the new catalog in place, the old parts not removed yet
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_run_killed_while_writing_the_ledger(tmp_path: Path, point: str) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    first = _run(exports, store)
    # A new file, a changed one and one gone: parts to write and parts to remove.
    write_exports(exports, {"sessions/d.jsonl": [session("s9", created_at="2026-11-25T10:00:00Z")]})
    write_exports(
        exports,
        {
            "sessions/b.csv": [
                CSV_SESSION_HEADER,
                csv_session("c1", created_at="2026-11-22T08:00:00Z"),
            ]
        },
    )
    (exports / "sessions" / "c.parquet").unlink()
    args = ["run", "--exports", str(exports), "--snapshots", str(store), "--as-of", "2026-11-26"]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_LEDGER, point, *args, "--max-reject-ratio", "0.5"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert snapshot_content(store / "snapshot_date=2026-11-26") == snapshot_content(first.path)
    # Whatever catalog is there names whole parts only; what it does not name is left over.
    ledger = store / LEDGER_NAME
    assert [p for p in ledger_problems(ledger) if "not named by the catalog" not in p] == []
    assert ledger_problems(ledger)  # killed in the middle: something is left to clean up
    again = _run(exports, store)
    assert (again.files_parsed, again.files_reused) == (KILL_POINTS[point], 7 - KILL_POINTS[point])
    assert ledger_problems(ledger) == []  # the next run cleaned up
    fresh = _run(exports, tmp_path / "fresh")
    assert snapshot_content(again.path) == snapshot_content(fresh.path)


def test_a_run_killed_after_the_ledger_is_opened_under_other_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other per-file SQL: the ledger is emptied when it is opened, before any parsing, so
    a run killed right after finds no rows made under the old SQL."""
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _run(exports, store)
    assert (store / LEDGER_NAME / CATALOG_NAME).is_file()
    sql = tmp_path / "sql"
    shutil.copytree(default_sql_dir(), sql)
    validate = sql / "0010_validate_sessions.sql"
    validate.write_text(validate.read_text() + "\n-- a change in a per-file SQL file\n")
    args = ["run", "--exports", str(exports), "--snapshots", str(store), "--as-of", "2026-11-26"]
    killed = cli_subprocess(
        *args,
        "--max-reject-ratio",
        "0.5",
        env={"SCENARIO_ANALYTICS_KILL_AT": "loaded", "SCENARIO_ANALYTICS_SQL_DIR": str(sql)},
    )
    assert killed.returncode == -9
    assert not (store / LEDGER_NAME / CATALOG_NAME).exists()
    assert [p for p in (store / LEDGER_NAME).rglob("*") if p.is_file()] == []
    monkeypatch.setenv("SCENARIO_ANALYTICS_SQL_DIR", str(sql))
    assert _run(exports, store).files_parsed == 7
    catalog = json.loads((store / LEDGER_NAME / CATALOG_NAME).read_text())
    assert len(catalog["files"]) == 7
