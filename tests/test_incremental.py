"""Incremental runs: the ledger parses only new or changed files, and the result is
always what a run from scratch on the same folder gives."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import CSV_SESSION_HEADER, csv_session, session, write_exports
from helpers_ops import (
    base_exports,
    cli,
    cli_subprocess,
    run_base,
    snapshot_content,
    snapshot_files,
)

from scenario_analytics.engine.sql_files import default_sql_dir
from scenario_analytics.ingest.ledger import CATALOG_NAME, LEDGER_NAME, ledger_problems
from scenario_analytics.locations import Location
from scenario_analytics.pipeline.run import RunResult
from scenario_analytics.storage import open_storage


def _run(exports: Path, store: Path, full_refresh: bool = False) -> RunResult:
    return run_base(exports, store, full_refresh=full_refresh)


def _ledger_problems(store: Path) -> list[str]:
    """What is inconsistent in the ledger of the store at `store` (empty: whole)."""
    storage = open_storage(Location.parse(store))
    try:
        return ledger_problems(storage)
    finally:
        storage.close()


def _agree(exports: Path, incremental: Path, scratch: Path) -> RunResult:
    """Run incrementally into `incremental` and from scratch elsewhere; compare."""
    result = _run(exports, incremental)
    fresh_store = scratch / f"fresh-{len(list(scratch.glob('fresh-*')))}"
    fresh = _run(exports, fresh_store)
    assert fresh.files_reused == 0
    assert snapshot_content(result.path) == snapshot_content(fresh.path)
    return result


def test_grown_changed_renamed_and_shrunk_folders_agree_with_fresh_runs(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    first = _agree(exports, store, tmp_path)
    assert (first.files_parsed, first.files_reused) == (7, 0)
    assert (store / LEDGER_NAME / CATALOG_NAME).is_file()
    assert _ledger_problems(store) == []

    # Nothing changed: nothing parsed.
    again = _agree(exports, store, tmp_path)
    assert (again.files_parsed, again.files_reused) == (0, 7)

    # Grown: a new day of sessions, with a re-graded session that now wins (last file).
    write_exports(
        exports,
        {
            "sessions/d.jsonl": [
                session("dup", score=99, created_at="2026-11-21T12:00:00Z"),
                session("s9", created_at="2026-11-25T10:00:00Z", score=70),
            ]
        },
    )
    grown = _agree(exports, store, tmp_path)
    assert (grown.files_parsed, grown.files_reused) == (1, 7)

    # Changed: same path, other bytes (a session removed, one rejected).
    write_exports(
        exports,
        {
            "sessions/b.csv": [
                CSV_SESSION_HEADER,
                csv_session("c1", user_id="u3", created_at="2026-11-22T08:00:00Z", score="12"),
                csv_session("c2", created_at="not a date"),
            ]
        },
    )
    changed = _agree(exports, store, tmp_path)
    assert (changed.files_parsed, changed.files_reused) == (1, 7)

    # Renamed: the same bytes under a path that sorts first, so "last file wins" changes
    # (file ids are recomputed from the current paths, not kept in the ledger). The ledger
    # keys rows by content: the renamed file's rows are reused, under their new rank.
    (exports / "sessions" / "d.jsonl").rename(exports / "sessions" / "0-d.jsonl")
    renamed = _agree(exports, store, tmp_path)
    assert (renamed.files_parsed, renamed.files_reused) == (0, 8)
    partitions = [
        str(path) for rel, path in snapshot_files(renamed.path).items()
        if rel.startswith("sessions/") and rel.endswith(".parquet")
    ]  # fmt: skip
    assert partitions
    dup = duckdb.sql(
        "SELECT score FROM read_parquet(?, hive_partitioning = false) WHERE session_id = 'dup'",
        params=[partitions],
    ).fetchall()
    assert [float(s) for (s,) in dup] == [60.0]  # a.jsonl now sorts last and wins

    # Shrunk: a file disappears and takes its rows with it.
    (exports / "sessions" / "c.parquet").unlink()
    (exports / "members.csv").unlink()
    shrunk = _agree(exports, store, tmp_path)
    assert (shrunk.files_parsed, shrunk.files_reused) == (0, 6)
    manifest = snapshot_content(shrunk.path)["manifest.json"]
    assert "sessions/c.parquet" not in [i["path"] for i in manifest["inputs"]]
    catalog = json.loads((store / LEDGER_NAME / CATALOG_NAME).read_text())
    paths = [f["rel_path"] for f in catalog["files"]]
    assert "sessions/c.parquet" not in paths and "members.csv" not in paths
    # Only the session files still in the folder have parts, and nothing else is left.
    assert len(list((store / LEDGER_NAME / "staged_sessions").iterdir())) == 3
    assert not (store / LEDGER_NAME / "staged_members").exists()
    assert _ledger_problems(store) == []


def test_full_refresh_parses_everything_and_gives_the_same_snapshot(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    first = _run(exports, store)
    refreshed = _run(exports, store, full_refresh=True)
    assert (refreshed.files_parsed, refreshed.files_reused) == (7, 0)
    assert snapshot_content(first.path) == snapshot_content(refreshed.path)
    assert _run(exports, store).files_reused == 7  # the rebuilt ledger is used again


def test_the_cli_flag_and_the_summary_line(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    args = ["run", "--exports", str(exports), "--snapshots", str(store), "--as-of", "2026-11-26"]
    args += ["--max-reject-ratio", "0.5"]
    assert cli(*args).exit_code == 0
    second = cli(*args)
    assert second.exit_code == 0, second.stderr
    assert "summary: 7 files (0 read, 7 unchanged), 1 ignored" in second.stderr
    refresh = cli(*args, "--full-refresh")
    assert "summary: 7 files (7 read, 0 unchanged)" in refresh.stderr
    assert "full refresh" in refresh.stderr


def test_a_sql_change_invalidates_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _run(exports, store)
    sql = tmp_path / "sql"
    shutil.copytree(default_sql_dir(), sql)
    validate = sql / "0010_validate_sessions.sql"
    validate.write_text(validate.read_text() + "\n-- a change in a per-file SQL file\n")
    monkeypatch.setenv("SCENARIO_ANALYTICS_SQL_DIR", str(sql))
    assert _run(exports, store).files_parsed == 7
    assert _run(exports, store).files_parsed == 0
    # A change in the SQL after the per-file part keeps the staged rows.
    users = sql / "0080_users.sql"
    users.write_text(users.read_text() + "\n-- a change after the per-file part\n")
    assert _run(exports, store).files_parsed == 0


def _events_run(exports: Path, store: Path) -> tuple[RunResult, list[str]]:
    events: list[str] = []
    result = run_base(exports, store, report=lambda e: events.append(f"{e.kind}: {e.message}"))
    return result, events


@pytest.mark.parametrize("damage", ["not JSON", "another layout", "a part outside"])
def test_a_broken_ledger_catalog_is_rebuilt(tmp_path: Path, damage: str) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    first = _run(exports, store)
    catalog = store / LEDGER_NAME / CATALOG_NAME
    if damage == "not JSON":
        catalog.write_bytes(b"this is not a catalog" * 100)
    elif damage == "another layout":
        catalog.write_text(json.dumps({"format": 1, "digest": "x", "files": []}))
    else:  # a table name that would reach outside the ledger's folder
        body = json.loads(catalog.read_text())
        body["files"][0]["parts"][0]["table"] = "../../exports"
        catalog.write_text(json.dumps(body))
    result, events = _events_run(exports, store)
    assert result.files_parsed == 7
    assert any(e.startswith("warning: ledger .ledger/catalog.json cannot be read") for e in events)
    assert snapshot_content(first.path) == snapshot_content(result.path)
    assert _ledger_problems(store) == []
    assert (exports / "sessions" / "a.jsonl").is_file()  # nothing outside was touched
    assert _run(exports, store).files_parsed == 0


@pytest.mark.parametrize("damage", ["truncated", "altered", "missing", "another part"])
def test_a_damaged_ledger_part_is_never_trusted(tmp_path: Path, damage: str) -> None:
    """A part that is not what the catalog recorded: its file is parsed again, with a
    warning; the other files' rows are reused; the snapshot is what a fresh run gives."""
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    first = _run(exports, store)
    ledger = store / LEDGER_NAME
    catalog = json.loads((ledger / CATALOG_NAME).read_text())
    (entry,) = [f for f in catalog["files"] if f["rel_path"] == "sessions/a.jsonl"]
    part = ledger / f"staged_sessions/{entry['sha256']}.sessions.jsonl.parquet"
    data = part.read_bytes()
    if damage == "truncated":
        part.write_bytes(data[: len(data) // 2])
    elif damage == "altered":  # one byte in the middle: same size, still a Parquet file
        middle = len(data) // 2
        part.write_bytes(data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :])
    elif damage == "missing":
        part.unlink()
    else:  # a whole, valid Parquet file with other rows
        (other,) = [f for f in catalog["files"] if f["rel_path"] == "sessions/c.parquet"]
        name = f"staged_sessions/{other['sha256']}.sessions.parquet.parquet"
        shutil.copyfile(ledger / name, part)
    result, events = _events_run(exports, store)
    assert (result.files_parsed, result.files_reused) == (1, 6)
    warnings = [e for e in events if e.startswith("warning: ledger part")]
    assert len(warnings) == 1 and part.name in warnings[0], events
    assert snapshot_content(first.path) == snapshot_content(result.path)
    assert _ledger_problems(store) == []
    assert _run(exports, store).files_parsed == 0


def test_the_same_bytes_under_two_paths_share_one_part(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    shutil.copyfile(exports / "sessions" / "a.jsonl", exports / "sessions" / "z-copy.jsonl")
    first = _agree(exports, store, tmp_path)
    assert (first.files_parsed, first.files_reused) == (8, 0)
    assert len(list((store / LEDGER_NAME / "staged_sessions").iterdir())) == 3
    again = _agree(exports, store, tmp_path)
    assert (again.files_parsed, again.files_reused) == (0, 8)
    # Each path's rows count, under its own rank (the copy sorts last: its rows win).
    manifest = snapshot_content(again.path)["manifest.json"]
    inputs = {i["path"]: i for i in manifest["inputs"]}
    assert inputs["sessions/z-copy.jsonl"]["rows_read"] == inputs["sessions/a.jsonl"]["rows_read"]
    assert inputs["sessions/z-copy.jsonl"]["rows_read"] > 0
    (exports / "sessions" / "a.jsonl").unlink()  # the copy still needs the shared part
    shrunk = _agree(exports, store, tmp_path)
    assert (shrunk.files_parsed, shrunk.files_reused) == (0, 7)
    assert len(list((store / LEDGER_NAME / "staged_sessions").iterdir())) == 3
    assert _ledger_problems(store) == []


def test_an_old_duckdb_ledger_is_removed(tmp_path: Path) -> None:
    """A store of an earlier version kept its ledger in a DuckDB file: it is removed with
    a message, every file is parsed once, and the new ledger is used from then on."""
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    first = _run(exports, store)
    old = duckdb.connect(str(store / ".ledger.duckdb"))
    old.execute("CREATE TABLE files (file_key INTEGER, rel_path VARCHAR)")
    old.close()
    (store / ".ledger.duckdb.wal").write_bytes(b"a write-ahead log")
    shutil.rmtree(store / LEDGER_NAME)
    result, events = _events_run(exports, store)
    assert result.files_parsed == 7
    removed = "removed the ledger of an earlier version (.ledger.duckdb, .ledger.duckdb.wal)"
    assert any(removed in e for e in events), events
    assert not (store / ".ledger.duckdb").exists()
    assert not (store / ".ledger.duckdb.wal").exists()
    assert snapshot_content(first.path) == snapshot_content(result.path)
    again, events = _events_run(exports, store)
    assert again.files_reused == 7
    assert not any("earlier version" in e for e in events)


def test_a_run_killed_after_the_ledger_update_is_safe_to_rerun(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _run(exports, store)
    write_exports(exports, {"sessions/d.jsonl": [session("s9", created_at="2026-11-25T10:00:00Z")]})
    args = ["run", "--exports", str(exports), "--snapshots", str(store), "--as-of", "2026-11-27"]
    killed = cli_subprocess(
        *args, "--max-reject-ratio", "0.5", env={"SCENARIO_ANALYTICS_KILL_AT": "staged"}
    )
    assert killed.returncode == -9
    assert not (store / "snapshot_date=2026-11-27").exists()
    result = run_base(exports, store, as_of=date(2026, 11, 27))
    assert (result.files_parsed, result.files_reused) == (0, 8)
    fresh = run_base(exports, tmp_path / "fresh", as_of=date(2026, 11, 27))
    assert snapshot_content(result.path) == snapshot_content(fresh.path)


def test_a_file_rewritten_during_the_run_fails_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports = write_exports(tmp_path / "exports", {"sessions/a.jsonl": [session("s1")]})
    from scenario_analytics.ingest import loader as loading

    original = loading.Loader.load

    def load_then_touch(self: loading.Loader, file_id: int, export: object) -> None:
        original(self, file_id, export)  # type: ignore[arg-type]
        (exports / "sessions" / "a.jsonl").write_text("{}\n{}\n")

    monkeypatch.setattr(loading.Loader, "load", load_then_touch)
    result = cli(
        "run",
        "--exports",
        str(exports),
        "--snapshots",
        str(tmp_path / "s"),
        "--as-of",
        "2026-11-26",
    )
    assert result.exit_code == 1
    assert "sessions/a.jsonl changed while the job was reading it" in result.stderr


def test_an_old_ledger_open_in_another_program_does_not_stop_the_run(tmp_path: Path) -> None:
    """The DuckDB ledger of earlier versions, held open (and locked) by a `duckdb` shell:
    the new ledger needs nothing of it, so the run removes it and goes on (it used to
    exit 5, waiting for the other program to let go)."""
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _run(exports, store)
    old = duckdb.connect(str(store / ".ledger.duckdb"))
    old.close()
    code = (
        "import duckdb, sys, time\n"
        f"c = duckdb.connect({str(store / '.ledger.duckdb')!r})\n"
        "print('open', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        args = ["run", "--exports", str(exports), "--snapshots", str(store)]
        result = cli(*args, "--as-of", "2026-11-27", "--max-reject-ratio", "0.5")
    finally:
        proc.kill()
        proc.wait()
    assert result.exit_code == 0, result.stderr
    assert "removed the ledger of an earlier version" in result.stderr
    assert not (store / ".ledger.duckdb").exists()
    assert _run(exports, store).files_reused == 7  # the new ledger was kept
