"""Incremental runs: the ledger parses only new or changed files, and the result is
always what a run from scratch on the same folder gives."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import CSV_SESSION_HEADER, FIXTURE_SKIPS, csv_session, session, write_exports
from helpers_ops import base_exports, cli, cli_subprocess, snapshot_content

from scenario_analytics.engine.sql_files import default_sql_dir
from scenario_analytics.ingest.ledger import LEDGER_NAME
from scenario_analytics.pipeline.run import RunOptions, RunResult, run

AS_OF = date(2026, 11, 26)


def _run(exports: Path, store: Path, full_refresh: bool = False) -> RunResult:
    return run(
        RunOptions(
            exports=exports,
            snapshots=store,
            as_of=AS_OF,
            max_reject_ratio=0.5,
            full_refresh=full_refresh,
            skip_checks=FIXTURE_SKIPS,
        )
    )


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
    assert (store / LEDGER_NAME).is_file()

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
    # (file ids are recomputed from the current paths, not kept in the ledger).
    (exports / "sessions" / "d.jsonl").rename(exports / "sessions" / "0-d.jsonl")
    renamed = _agree(exports, store, tmp_path)
    assert (renamed.files_parsed, renamed.files_reused) == (1, 7)
    dup = duckdb.sql(
        f"SELECT score FROM '{renamed.path / 'sessions/*/*.parquet'}' WHERE session_id = 'dup'"
    ).fetchall()
    assert [float(s) for (s,) in dup] == [60.0]  # a.jsonl now sorts last and wins

    # Shrunk: a file disappears and takes its rows with it.
    (exports / "sessions" / "c.parquet").unlink()
    (exports / "members.csv").unlink()
    shrunk = _agree(exports, store, tmp_path)
    assert (shrunk.files_parsed, shrunk.files_reused) == (0, 6)
    manifest = snapshot_content(shrunk.path)["manifest.json"]
    assert "sessions/c.parquet" not in [i["path"] for i in manifest["inputs"]]
    ledger = duckdb.connect(str(store / LEDGER_NAME), read_only=True)
    try:
        paths = [p for (p,) in ledger.sql("SELECT rel_path FROM files ORDER BY 1").fetchall()]
        keys = ledger.sql("SELECT DISTINCT file_key FROM staged_sessions").fetchall()
    finally:
        ledger.close()
    assert "sessions/c.parquet" not in paths and "members.csv" not in paths
    assert len(keys) == 3  # only the session files still in the folder


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


@pytest.mark.parametrize("damage", ["not a database", "another layout"])
def test_a_broken_ledger_is_rebuilt(tmp_path: Path, damage: str) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    first = _run(exports, store)
    (store / LEDGER_NAME).unlink()
    if damage == "not a database":
        (store / LEDGER_NAME).write_bytes(b"this is not a DuckDB database" * 100)
    else:
        other = duckdb.connect(str(store / LEDGER_NAME))
        other.execute("CREATE TABLE meta (x INTEGER, y INTEGER, z INTEGER)")
        other.close()
    events: list[str] = []
    result = run(
        RunOptions(
            exports=exports,
            snapshots=store,
            as_of=AS_OF,
            max_reject_ratio=0.5,
            skip_checks=FIXTURE_SKIPS,
        ),
        lambda e: events.append(f"{e.kind}: {e.message}"),
    )
    assert result.files_parsed == 7
    assert any(e.startswith("warning: ledger") for e in events)
    assert snapshot_content(first.path) == snapshot_content(result.path)


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
    result = run(
        RunOptions(
            exports=exports,
            snapshots=store,
            as_of=date(2026, 11, 27),
            max_reject_ratio=0.5,
            skip_checks=FIXTURE_SKIPS,
        )
    )
    assert (result.files_parsed, result.files_reused) == (0, 8)
    fresh = run(
        RunOptions(
            exports=exports,
            snapshots=tmp_path / "fresh",
            as_of=date(2026, 11, 27),
            max_reject_ratio=0.5,
            skip_checks=FIXTURE_SKIPS,
        )
    )
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


def test_a_ledger_open_in_another_program_is_left_alone(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _run(exports, store)
    code = (
        "import duckdb, sys, time\n"
        f"c = duckdb.connect({str(store / LEDGER_NAME)!r})\n"
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
    assert result.exit_code == 5, result.stderr
    assert "is open in another program" in result.stderr
    assert _run(exports, store).files_reused == 7  # the ledger was kept
