"""Faults: `run` and `backfill` killed at every stage boundary, and at random moments.

The test-only hook (`faults.py`) sends SIGKILL at a named stage when
SCENARIO_ANALYTICS_KILL_AT names it; `NAME:N` kills the N-th time (a backfill passes the
per-day stages once per day). After each kill:

- `latest.json` and every published snapshot are whole (`assert_whole`);
- before the commit point (the commit record written, stage `committed`) nothing visible
  has changed; from it on, the new snapshot is published and whole (read where its record
  says: `.staging/` until its files are moved into its date's folder), and latest.json
  names it once the run got past `moved`;
- the next run (or backfill) succeeds, cleans up what the killed one left, and gives
  exactly the snapshot a run that was never killed gives (same bodies, rows, counts):
  the store's ledger of staged files is not left half-written either;
- a killed backfill resumes: days published before the kill are skipped as up to date.

`tests/test_faults.py` kills `run` at timed moments on a bigger export; here
`test_backfill_killed_at_random_moments` does the same for `backfill`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result
from helpers_ops import snapshot_files
from test_reliability_store import _session, assert_clean, assert_whole, state, write_exports

from scenario_analytics.cli import main
from scenario_analytics.faults import KILL_AT, STAGES
from scenario_analytics.publish.fingerprint import code_digest

BEFORE = "2026-11-25"  # published before each kill
NEW = "2026-11-26"
FROM, TO = "2026-11-23", "2026-11-26"
COMMIT = STAGES.index("committed")
LATEST = STAGES.index("published")  # latest.json written (a new date that is the newest)
RUN_STAGES = [s for s in STAGES if s != "day-published"]
# Stages a backfill passes once, and per-day stages killed at their 2nd day.
PER_DAY = ("built", "summarized", "written", "uploaded", "committed", "moved", "published")
BACKFILL_KILLS = [
    *[s for s in STAGES[: STAGES.index("built")] if s != "published"],
    *[f"{s}:2" for s in (*PER_DAY, "day-published")],
    "pruned",
]


def _cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "scenario_analytics", *map(str, args)]


def _invoke(*args: str | Path) -> Result:
    # The killed runs hash the sources afresh; so must this process (it caches the hash).
    code_digest.cache_clear()
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _add_new_file(exports: Path) -> None:
    """More exports after the first run: the next run must parse and stage them."""
    lines = [_session(f"n{i}", f"u{i % 5}", f"2026-11-{20 + i % 7:02d}", 60 + i) for i in range(15)]
    (exports / "sessions" / "b.jsonl").write_text("\n".join(lines) + "\n")


def _killed(stage: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, KILL_AT: stage}
    done = subprocess.run(_cli(*args), capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == -signal.SIGKILL, (stage, done.returncode, done.stderr[-2000:])
    return done


def _content(store: Path, day: str) -> dict[str, Any]:
    """What a snapshot says, apart from timestamps: bodies, rows, counts (its files read
    through the store: where its commit record says, session partitions included)."""
    found = snapshot_files(store / f"snapshot_date={day}")
    manifest = json.loads(found["manifest.json"].read_text())
    tables = {}
    for name in ("summaries", "participants", "sessions", "users", "rejects"):
        paths = [str(p) for rel, p in found.items() if rel.startswith(f"{name}/")]
        tables[name] = duckdb.execute(
            "SELECT * FROM read_parquet(?, hive_partitioning = false) ORDER BY ALL",
            [paths or [str(found[f"{name}.parquet"])]],
        ).fetchall()
    assert tables["sessions"], day
    bodies = {rel: p.read_text() for rel, p in found.items() if rel.startswith("api/scenarios/")}
    return {
        "counts": manifest["counts"],
        "inputs": manifest["inputs"],
        "rejects_by_reason": manifest["rejects_by_reason"],
        "tables": tables,
        "bodies": bodies,
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each day's snapshot from a store no run was ever killed in."""
    root = tmp_path_factory.mktemp("reference")
    exports = write_exports(root)
    _add_new_file(exports)
    store = root / "store"
    result = _invoke("backfill", "--exports", exports, "--snapshots", store, "--from", FROM,
                     "--to", TO)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return {day: _content(store, day) for day in _days(FROM, TO)}


def _days(start: str, end: str) -> list[str]:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    exports = write_exports(tmp_path)
    store = tmp_path / "store"
    result = _invoke("run", "--exports", exports, "--snapshots", store, "--as-of", BEFORE)
    assert result.exit_code == 0, result.stderr
    _add_new_file(exports)
    return exports, store


def test_the_hook_knows_every_stage_the_tests_kill_at() -> None:
    assert {"locked", "loaded", "validated", "summarized", "written", "published"} <= set(STAGES)
    assert "day-published" in STAGES


REBUILD_STAGES = ("staged", "written", "uploaded", "committed", "published")


@pytest.mark.parametrize(
    ("stage", "as_of"),
    [(s, NEW) for s in RUN_STAGES] + [(s, BEFORE) for s in REBUILD_STAGES],
    ids=[f"{s}-new-date" for s in RUN_STAGES] + [f"{s}-rebuild" for s in REBUILD_STAGES],
)
def test_run_killed_at_a_stage_boundary(
    published: tuple[Path, Path], reference: dict[str, dict[str, Any]], stage: str, as_of: str
) -> None:
    exports, store = published
    before = state(store)
    args = ["run", "--exports", exports, "--snapshots", store, "--as-of", as_of, "--keep", "9"]
    _killed(stage, *args)
    # Killed between the commit and latest.json, a new date is published and latest.json
    # still names the date before it (the next run points it at the new one).
    lagging = as_of == NEW and COMMIT <= STAGES.index(stage) < LATEST
    assert_whole(store, latest_is_newest=not lagging)
    after = state(store)
    if STAGES.index(stage) < COMMIT:
        assert after == before
    else:
        assert after["dates"][as_of] != before["dates"].get(as_of)
        assert json.loads(after["latest"])["snapshot_date"] == (
            BEFORE if lagging else max(as_of, BEFORE)
        )
        assert _content(store, as_of) == reference[as_of]
    again = _invoke(*args)
    assert again.exit_code == 0, again.stderr
    assert_whole(store)
    assert_clean(store)
    assert _content(store, as_of) == reference[as_of]


@pytest.mark.parametrize("kill", BACKFILL_KILLS)
def test_backfill_killed_at_a_stage_boundary(
    published: tuple[Path, Path], reference: dict[str, dict[str, Any]], kill: str
) -> None:
    exports, store = published
    before = state(store)
    args = ["backfill", "--exports", exports, "--snapshots", store, "--from", FROM, "--to", TO,
            "--keep", "9"]  # fmt: skip
    _killed(kill, *args)
    assert_whole(store)  # the days before 2026-11-25 never move latest.json
    after = state(store)
    stage, _, nth = kill.partition(":")
    # Days published before the kill: none before the per-day stages, one (or two, when
    # killed after the second day's commit) during them; all of them at `pruned`.
    if stage == "pruned":
        done = _days(FROM, TO)
    elif nth:
        done = _days(FROM, "2026-11-24" if STAGES.index(stage) >= COMMIT else FROM)
    else:
        done = []
    for day in _days(FROM, TO):
        if day in done:
            assert after["dates"][day] != before["dates"].get(day), day
            assert _content(store, day) == reference[day], day
        else:
            assert after["dates"].get(day) == before["dates"].get(day), day
    again = _invoke(*args)
    assert again.exit_code == 0, again.stderr
    statuses = dict(line.split("\t")[:2] for line in again.stdout.splitlines())
    assert [d for d, status in statuses.items() if status == "skipped"] == done
    assert_whole(store)
    assert_clean(store)
    for day in _days(FROM, TO):
        assert _content(store, day) == reference[day], day
    assert json.loads((store / "latest.json").read_text())["snapshot_date"] == TO


def _big_exports(root: Path, sessions: int) -> Path:
    exports = root / "exports"
    (exports / "sessions").mkdir(parents=True)
    duckdb.execute(
        f"""COPY (
            SELECT 's' || i AS id, {{'id': 'u' || (i % 4000)}} AS user,
                   {{'id': 'sc' || (i % 25)}} AS scenario, (i * 37 % 10001) / 100.0 AS score,
                   60 + i % 900 AS duration_seconds, i % 9 <> 0 AS is_valid_attempt,
                   strftime(TIMESTAMP '2026-10-01' + to_seconds(i * 41), '%Y-%m-%dT%H:%M:%SZ')
                       AS created_at
            FROM range({sessions}) t(i)
        ) TO '{exports / "sessions" / "part.jsonl"}' (FORMAT JSON)"""
    )
    return exports


@pytest.mark.slow
def test_backfill_killed_at_random_moments(tmp_path: Path) -> None:
    exports = _big_exports(tmp_path, 20_000)
    store = tmp_path / "store"
    args = _cli("backfill", "--exports", exports, "--snapshots", store, "--from", "2026-11-22",
                "--to", "2026-11-26")  # fmt: skip
    started = time.monotonic()
    reference = tmp_path / "reference"
    done = subprocess.run(
        _cli("backfill", "--exports", exports, "--snapshots", reference, "--from", "2026-11-22",
             "--to", "2026-11-26"),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    full = time.monotonic() - started
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    for _ in range(3):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full * rng.uniform(0.05, 0.95))
        proc.kill()
        proc.wait()
        print(f"seed {seed}")  # shown if a check below fails
        assert_whole(store, latest_is_newest=False)  # killed before latest.json, maybe
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (seed, done.stderr)
    assert_whole(store)
    assert_clean(store)
    for day in _days("2026-11-22", "2026-11-26"):
        assert _content(store, day) == _content(reference, day), (seed, day)
