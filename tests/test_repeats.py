"""The session ids that repeat across export files, kept between runs (`ingest/repeats.py`):
a night whose only change is new session files takes them from the store's state, with
the same snapshot as a run from scratch; anything else finds them in full."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from conftest import session, write_exports
from helpers_ops import base_exports, run_base, snapshot_content

from scenario_analytics.engine.sql_files import load_sql_files
from scenario_analytics.events import Event
from scenario_analytics.ingest.ledger import LEDGER_NAME, ledger_problems
from scenario_analytics.ingest.repeats import STATE_NAME, TABLE
from scenario_analytics.locations import Location
from scenario_analytics.pipeline.run import RunResult
from scenario_analytics.storage import open_storage


def _run(exports: Path, store: Path, full_refresh: bool = False) -> tuple[RunResult, str]:
    """One run; returns its result and what it said about the repeated ids."""
    said: list[str] = []

    def report(event: Event) -> None:
        if event.message.startswith("repeated session ids"):
            said.append(event.message)

    result = run_base(exports, store, full_refresh=full_refresh, report=report)
    assert len(said) == 1, said
    return result, said[0]


def _state_ids(store: Path) -> list[str]:
    state = json.loads((store / LEDGER_NAME / STATE_NAME).read_text())
    part = store / LEDGER_NAME / state["part"]
    return [r[0] for r in duckdb.sql(f"SELECT session_id FROM '{part}'").fetchall()]


def _agree(exports: Path, store: Path, scratch: Path) -> str:
    """Run into `store` and into a new store; the snapshots and the kept ids agree.
    Returns what the run into `store` said about the repeated ids."""
    result, said = _run(exports, store)
    fresh_store = scratch / f"fresh-{len(list(scratch.glob('fresh-*')))}"
    fresh, fresh_said = _run(exports, fresh_store)
    assert fresh_said.startswith("repeated session ids: found in full (no state kept")
    assert snapshot_content(result.path) == snapshot_content(fresh.path)
    assert _state_ids(store) == _state_ids(fresh_store)
    storage = open_storage(Location.parse(store))
    try:
        assert ledger_problems(storage) == []
    finally:
        storage.close()
    return said


def test_new_session_files_take_the_repeated_ids_from_the_state(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    said = _agree(exports, store, tmp_path)
    assert said == "repeated session ids: found in full (no state kept by an earlier run)"
    assert _state_ids(store) == ["dup"]  # in a.jsonl and b.csv

    # New files: an old session again (re-graded, it wins: its file sorts last), an id
    # twice in one new file, an id in two new files, and a new one.
    write_exports(
        exports,
        {
            "sessions/d.jsonl": [
                session("s1", score=99, created_at="2026-11-20T10:00:00Z"),
                session("twice", score=50, created_at="2026-11-24T10:00:00Z"),
                session("twice", score=80, created_at="2026-11-24T10:00:00Z"),
                session("across", score=61, created_at="2026-11-25T10:00:00Z"),
            ],
            "sessions/e.jsonl": [
                session("across", score=62, created_at="2026-11-25T10:00:00Z"),
                session("only-new", score=70, created_at="2026-11-25T11:00:00Z"),
            ],
        },
    )
    said = _agree(exports, store, tmp_path)
    assert said == (
        "repeated session ids: 1 known from the last run, and those of 2 new session files"
    )
    assert _state_ids(store) == ["across", "dup", "s1", "twice"]

    # Nothing new: the state holds as it is.
    said = _agree(exports, store, tmp_path)
    assert said.startswith("repeated session ids: 4 known from the last run, and those of 0 new")


@pytest.mark.parametrize("change", ["removed", "changed"])
def test_a_removed_or_changed_session_file_finds_them_in_full(tmp_path: Path, change: str) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _agree(exports, store, tmp_path)
    if change == "removed":
        (exports / "sessions" / "b.csv").unlink()  # one of the two rows of "dup"
    else:
        write_exports(exports, {"sessions/a.jsonl": [session("s1", score=12)]})
    said = _agree(exports, store, tmp_path)
    assert said == (
        "repeated session ids: found in full (a session file of the last run is gone or changed)"
    )
    assert _state_ids(store) == []


def test_a_damaged_state_is_rebuilt_and_full_refresh_forgets_it(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _agree(exports, store, tmp_path)
    state = json.loads((store / LEDGER_NAME / STATE_NAME).read_text())
    (store / LEDGER_NAME / state["part"]).write_bytes(b"not the ids")
    write_exports(exports, {"sessions/d.jsonl": [session("dup", score=1)]})
    said = _agree(exports, store, tmp_path)
    assert said.startswith("repeated session ids: found in full (its part cannot be read")
    assert _state_ids(store) == ["dup"]

    (store / LEDGER_NAME / STATE_NAME).write_text("{not json")
    said = _agree(exports, store, tmp_path)
    assert said == "repeated session ids: found in full (no state kept by an earlier run)"

    _result, said = _run(exports, store, full_refresh=True)
    assert said == "repeated session ids: found in full (no state kept by an earlier run)"


def test_the_file_runs_without_the_statement_the_state_replaces() -> None:
    dedupe = {f.name: f for f in load_sql_files()}["0040_deduplicate.sql"]
    assert dedupe.creates[0] == TABLE
    rest = dedupe.without(TABLE)
    assert (rest.name, rest.phase) == (dedupe.name, dedupe.phase)
    assert rest.creates == dedupe.creates[1:]
    assert rest.statements() == dedupe.statements()[1:]
