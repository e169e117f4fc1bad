"""Incremental equals full, over random sequences of nights (issue #23's property).

Each example is a few nights on one store. Before each night the exports change the way
the platform changes them: a new day's file, a late file for an old day, a re-export
that changes a session's score or validity, a removed file, a user's email or name
changing, a group membership added or removed, a scenario renamed, and, between nights,
a change of the SQL (its digest: what the ledger and the fingerprints are keyed by).
The night's `run` on the store that has every earlier night (the ledger, shared session
files, earlier snapshots) must publish exactly what a `run` into a new, empty store
publishes from the same exports. Today that is the ledger's promise; the state of issue
#23 must keep it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import session, write_exports
from helpers_ops import snapshot_content
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenario_analytics.engine.sql_files import SQL_DIR_ENV, default_sql_dir
from scenario_analytics.pipeline.run import RunOptions, run

FIRST = date(2026, 11, 20)
USERS = ["u1", "u2", "u3", "u4"]
SCENARIOS = ["sc1", "sc2"]
SKIPS = frozenset({"stale_exports", "day_volume", "entity_drop", "entity_missing"})

KINDS = ["new_day", "late_file", "rescore", "invalidate", "remove_file", "email", "name",
         "join_group", "leave_group", "rename_scenario", "sql_change"]  # fmt: skip


class Exports:
    """The exports folder as the platform would leave it, rewritten whole before a night
    (unchanged files keep their bytes, so the ledger sees them unchanged)."""

    def __init__(self) -> None:
        self.sessions: dict[str, list[dict[str, Any]]] = {}
        self.members = {u: {"id": u, "email": f"{u}@acme.com", "first_name": u.upper()}
                        for u in USERS}  # fmt: skip
        self.memberships = {("g1", "u1")}
        self.scenario_names = {s: f"Scenario {s}" for s in SCENARIOS}
        self.counter = 0

    def new_file(self, day: date, rows: int, seed: int) -> None:
        name = f"sessions/f{len(self.sessions):03d}.jsonl"
        records = []
        for n in range(rows):
            self.counter += 1
            user, scenario = USERS[(seed + n) % len(USERS)], SCENARIOS[(seed * 3 + n) % 2]
            records.append(
                session(
                    f"s{self.counter}",
                    user={"id": user, "email": f"{user}@acme.com"},
                    scenario={"id": scenario, "slug": scenario, "name": f"Scenario {scenario}"},
                    score=(seed * 7 + n * 13) % 101,
                    duration_seconds=60 + n,
                    created_at=f"{day.isoformat()}T{(seed + n) % 24:02d}:15:00Z",
                )
            )
        self.sessions[name] = records

    def write(self, root: Path) -> Path:
        if root.exists():
            shutil.rmtree(root)
        files: dict[str, Any] = dict(self.sessions)
        files["members.csv"] = [["id", "email", "first_name"]] + [
            [m["id"], m["email"], m["first_name"]] for m in self.members.values()
        ]
        files["groups.json"] = {"data": [{"id": "g1", "name": "G"}, {"id": "g2", "name": "H"}],
                                "pagination": {}}  # fmt: skip
        files["group_memberships.csv"] = [["group_id", "user_id"]] + [
            list(pair) for pair in sorted(self.memberships)
        ]
        files["scenarios.csv"] = [["id", "slug", "name"]] + [
            [s, s, name] for s, name in sorted(self.scenario_names.items())
        ]
        return write_exports(root, files)


@contextmanager
def sql_folder(tmp: Path, changed: bool) -> Iterator[None]:
    """The job's SQL, or a copy whose first file has one more comment (another digest)."""
    if not changed:
        yield
        return
    folder = tmp / "sql-changed"
    if not folder.exists():
        shutil.copytree(default_sql_dir(), folder)
        first = sorted(folder.glob("*.sql"))[0]
        first.write_text(first.read_text("utf-8") + "\n-- changed between nights\n", "utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SQL_DIR_ENV, str(folder))
        yield


def _run(exports: Path, store: Path, day: date) -> str:
    options = RunOptions(exports=exports, snapshots=store, as_of=day, max_reject_ratio=1.0,
                         skip_checks=SKIPS)  # fmt: skip
    return run(options).path


night = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 1000)), min_size=1, max_size=4)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(nights=st.lists(night, min_size=2, max_size=3))
def test_a_night_on_a_used_store_publishes_what_a_new_store_would(
    tmp_path_factory: pytest.TempPathFactory, nights: list[list[tuple[str, int]]]
) -> None:
    tmp = tmp_path_factory.mktemp("nights")
    exports = Exports()
    exports.new_file(FIRST, 6, 0)
    store = tmp / "store"
    changed_sql = False
    for number, operations in enumerate(nights, start=1):
        day = FIRST + timedelta(days=number)
        for kind, seed in operations:
            _apply(exports, kind, seed, day)
            if kind == "sql_change":
                changed_sql = not changed_sql
        folder = exports.write(tmp / "exports")
        with sql_folder(tmp, changed_sql):
            used = _run(folder, store, day)
            fresh = _run(folder, tmp / f"fresh-{number}", day)
        assert snapshot_content(used) == snapshot_content(fresh), (number, operations)


def _apply(exports: Exports, kind: str, seed: int, day: date) -> None:
    names = sorted(exports.sessions)
    if kind == "new_day":
        exports.new_file(day, 3 + seed % 4, seed)
    elif kind == "late_file":
        exports.new_file(FIRST + timedelta(days=seed % max(1, (day - FIRST).days)), 2, seed)
    elif kind in ("rescore", "invalidate") and names:
        records = exports.sessions[names[seed % len(names)]]
        if records:
            record = dict(records[seed % len(records)])
            if kind == "rescore":
                record["score"] = (record["score"] + 37) % 101
            else:
                record["is_valid_attempt"] = not record.get("is_valid_attempt", True)
            records[seed % len(records)] = record
    elif kind == "remove_file" and len(names) > 1:
        del exports.sessions[names[seed % len(names)]]
    elif kind == "email":
        user = USERS[seed % len(USERS)]
        exports.members[user]["email"] = f"{user}.{seed}@acme.com"
    elif kind == "name":
        user = USERS[seed % len(USERS)]
        exports.members[user]["first_name"] = f"N{seed}"
    elif kind == "join_group":
        exports.memberships.add((f"g{1 + seed % 2}", USERS[seed % len(USERS)]))
    elif kind == "leave_group" and exports.memberships:
        exports.memberships.discard(sorted(exports.memberships)[seed % len(exports.memberships)])
    elif kind == "rename_scenario":
        scenario = SCENARIOS[seed % len(SCENARIOS)]
        exports.scenario_names[scenario] = f"Renamed {seed}"
