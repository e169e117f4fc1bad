"""The ledger of staged rows: lossless, and never trusted when it could be wrong.

- Rows read back from the ledger are the rows the per-file SQL made: same columns, same
  types, same values (each under this run's file id).
- A run killed at any point of the ledger's write (parts written in the local scratch
  folder, being stored, stored; the catalog being written, written) leaves a catalog
  that names only whole parts; the next run cleans up what the killed one left (in the
  ledger and the scratch folder), parses what the catalog does not hold, and publishes
  what a run from scratch gives. On local disk and on S3.
- Other per-file SQL empties the ledger before anything is parsed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import (
    CSV_SESSION_HEADER,
    FIXTURE_SKIPS,
    S3Place,
    csv_session,
    session,
    write_exports,
)
from helpers_ops import (
    base_exports,
    cli_subprocess,
    snapshot_bytes,
    snapshot_content,
)

from scenario_analytics.engine.database import connect
from scenario_analytics.engine.sql_files import default_sql_dir, load_sql_files, plan_sql_files
from scenario_analytics.ingest.ledger import CATALOG_NAME, LEDGER_NAME, Ledger, ledger_problems
from scenario_analytics.locations import Location
from scenario_analytics.pipeline.run import RunOptions, RunResult, run
from scenario_analytics.pipeline.staging import scan_exports, stage_exports
from scenario_analytics.publish.fingerprint import staging_digest
from scenario_analytics.storage import open_storage
from scenario_analytics.storage.local import SCRATCH

AS_OF = date(2026, 11, 26)


def _run(exports: Path, store: str | Path) -> RunResult:
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
    (tmp_path / "store").mkdir()
    kept = open_storage(Location.parse(tmp_path / "store"))
    found = []
    # No ledger (the SQL's own tables), then parsed and written, then all from the ledger.
    for storage, parsed in [(None, 7), (kept, 7), (kept, 0)]:
        con = connect()
        try:
            ledger = Ledger(con, storage, digest)
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
            storage = open_storage(Location.parse(tmp_path / "store"))
            ledger = Ledger(con, storage, staging_digest(plan.per_file))
            inputs = scan_exports(exports)
            stage_exports(con, inputs, plan, ledger)
            ids = {f.rel_path: f.file_id for f in inputs.files}
            counts = dict(
                con.execute("SELECT file_id, count(*) FROM staged_sessions GROUP BY ALL").fetchall()
            )
        finally:
            con.close()
        assert counts[ids["sessions/b.csv"]] == counts[ids["sessions/z.csv"]] == 3, attempt


# Kills the process (SIGKILL: no clean-up runs) at one point of the ledger's write: the
# parts are written into a local scratch folder, then stored in the ledger one file's
# parts at a time (`upload_parts`; on local disk a rename, under the storage's temporary
# name first), then the catalog is written (on local disk `files.write_atomically`: a
# temporary sibling renamed into place), then the parts no longer named are removed
# (`Ledger._remove_unnamed`). The points of `upload_parts` and after the catalog are
# the same on every storage; the others are local disk's own.
KILL_IN_LEDGER = """
import os, signal, sys
from scenario_analytics import files
from scenario_analytics.ingest import ledger
from scenario_analytics.storage import local
from scenario_analytics.cli import main

point = sys.argv[1]
real = os

def kill():
    os.kill(os.getpid(), signal.SIGKILL)

class Os:
    def __getattr__(self, name):
        return getattr(real, name)

    @staticmethod
    def replace(source, target):
        name = os.path.basename(target)
        in_ledger = ledger.LEDGER_NAME in os.path.normpath(target).split(os.sep)
        if point == "part-uploading" and in_ledger and name.endswith(".parquet"):
            kill()  # the part under the storage's temporary name, in the ledger's folder
        if point == "catalog-tmp" and name == ledger.CATALOG_NAME:
            kill()  # the new catalog under its temporary name, not in place
        real.replace(source, target)

real_upload_parts = ledger.upload_parts

def upload_parts(storage, folder, entry):
    if point == "part-in-scratch":
        kill()  # the first new file's parts written in the scratch folder, none stored
    stored = real_upload_parts(storage, folder, entry)
    if point == "part-uploaded":
        kill()  # the first new file's parts stored in the ledger, the catalog not written
    return stored

real_remove_unnamed = ledger.Ledger._remove_unnamed

def remove_unnamed(self, report=True):
    if point == "catalog-written" and not report:
        kill()  # called once the new catalog is written: its old parts not removed yet
    return real_remove_unnamed(self, report)

ledger.upload_parts = upload_parts
ledger.Ledger._remove_unnamed = remove_unnamed
local.os = Os()  # the parts' uploads on local disk (a rename into place)
files.os = Os()  # the catalog's write on local disk (files.write_atomically)
main(sys.argv[2:])
"""

# Where the kill lands, how many files the next run then parses (until the new catalog
# is in place, the new files' rows are not in the ledger), and where the killed run's
# leftovers are: in the scratch folder (parts never stored) or in the ledger's folder
# (files the catalog does not name).
KILL_POINTS = {
    "part-in-scratch": (2, "scratch"),  # a new part written locally, not stored
    "part-uploading": (2, "ledger"),  # a part being stored, not in place yet
    "part-uploaded": (2, "ledger"),  # the first file's parts stored, the catalog not written
    "catalog-tmp": (2, "ledger"),  # every new part stored, the new catalog not in place
    "catalog-written": (0, "ledger"),  # the new catalog in place, the old parts not removed
}
# On S3: no rename, no temporary name; the scratch folder is the job's own temporary
# folder (gone with its container), not in the bucket.
# One point on S3 (the new catalog in place, the parts it no longer names not yet
# deleted: what the next run must clean up in the bucket); the others run the same code
# on local disk.
S3_KILL_POINTS = ["catalog-written"]


def _ledger_problems(store: str | Path) -> list[str]:
    storage = open_storage(Location.parse(store))
    try:
        return ledger_problems(storage)
    finally:
        storage.close()


def _scratch_files(store: Path) -> list[Path]:
    return sorted(p for p in (store / SCRATCH).rglob("*") if p.is_file())


def _changed_exports(exports: Path) -> None:
    """A new file, a changed one and one gone: parts to write and parts to remove."""
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


def _killed_in_ledger(
    exports: Path, store: str | Path, point: str, env: dict[str, str] | None = None
) -> list[str]:
    """Run with a kill at `point` of the ledger's write; check that the published
    snapshot is untouched and that the catalog left names whole parts only; returns the
    ledger's problems (files the catalog does not name: what the kill left there)."""
    published = snapshot_content(f"{store}/snapshot_date=2026-11-26")
    args = ["run", "--exports", str(exports), "--snapshots", str(store), "--as-of", "2026-11-26"]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_LEDGER, point, *args, "--max-reject-ratio", "0.5"],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert snapshot_content(f"{store}/snapshot_date=2026-11-26") == published
    # Whatever catalog is there names whole parts only; what it does not name is left over.
    problems = _ledger_problems(store)
    assert [p for p in problems if "not named by the catalog" not in p] == []
    return problems


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_run_killed_while_writing_the_ledger(tmp_path: Path, point: str) -> None:
    parsed, leftovers = KILL_POINTS[point]
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _run(exports, store)
    _changed_exports(exports)
    problems = _killed_in_ledger(exports, store, point)
    # Killed in the middle: something is left to clean up, where the point leaves it.
    if leftovers == "scratch":
        assert problems == []  # nothing of the killed run reached the ledger
        assert any(p.suffix == ".parquet" for p in _scratch_files(store))
    else:
        assert problems
    again = _run(exports, store)
    assert (again.files_parsed, again.files_reused) == (parsed, 7 - parsed)
    assert _ledger_problems(store) == []  # the next run cleaned up
    assert _scratch_files(store) == []
    fresh = _run(exports, tmp_path / "fresh")
    assert snapshot_content(again.path) == snapshot_content(fresh.path)


@pytest.mark.parametrize("point", S3_KILL_POINTS)
def test_a_run_killed_while_writing_the_ledger_on_s3(
    s3: S3Place, tmp_path: Path, point: str
) -> None:
    parsed, _leftovers = KILL_POINTS[point]
    exports = base_exports(tmp_path / "exports")
    _run(exports, s3.uri)
    _changed_exports(exports)
    work = tmp_path / "work"  # the killed job's temporary folder (its scratch)
    work.mkdir()
    assert _killed_in_ledger(exports, s3.uri, point, {"TMPDIR": str(work)})  # left over
    again = _run(exports, s3.uri)
    assert (again.files_parsed, again.files_reused) == (parsed, 7 - parsed)
    assert _ledger_problems(s3.uri) == []  # the next run cleaned up
    fresh = _run(exports, tmp_path / "fresh")
    assert snapshot_bytes(again.path) == snapshot_bytes(fresh.path)


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
