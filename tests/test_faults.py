"""A run killed with SIGKILL at any moment leaves the store whole; the next run succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from helpers_ops import snapshot_files
from test_reliability_store import assert_clean, assert_whole

from scenario_analytics.publish.store import Store


def _write_exports(root: Path, sessions: int) -> None:
    (root / "sessions").mkdir(parents=True)
    con = duckdb.connect()
    con.execute(
        f"""COPY (
            SELECT 's' || i AS id,
                   {{'id': 'u' || (i % 5000), 'email': 'u' || (i % 5000) || '@acme.com'}} AS user,
                   {{'id': 'sc' || (i % 40), 'slug': 'slug' || (i % 40), 'name': 'S'}}
                       AS scenario,
                   (i * 37 % 10001) / 100.0 AS score,
                   60 + i % 900 AS duration_seconds,
                   i % 10 <> 0 AS is_valid_attempt,
                   strftime(TIMESTAMP '2026-01-01' + to_seconds(i * 17), '%Y-%m-%dT%H:%M:%SZ')
                       AS created_at
            FROM range({sessions}) t(i)
        ) TO '{root / "sessions" / "part.jsonl"}' (FORMAT JSON)"""
    )
    con.execute(
        f"""COPY (SELECT 'g' || (i % 7) AS group_id, 'u' || i AS user_id FROM range(5000) t(i))
            TO '{root / "group_memberships.csv"}' (HEADER)"""
    )


def _run_cmd(exports: Path, store: Path, as_of: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "scenario_analytics",
        "run",
        "--exports",
        str(exports),
        "--snapshots",
        str(store),
        "--as-of",
        as_of,
        # The synthetic sessions end in February: the checks that compare the as-of day
        # with recent days would refuse these March dates; this test is about kills.
        "--skip-check",
        "day_volume",
        "--skip-check",
        "stale_exports",
    ]


def _assert_store_whole(store: Path) -> None:
    """latest.json names a whole snapshot (not the newest one if the run was killed between
    its commit and latest.json), every published snapshot is whole (`assert_whole`: every
    file, read where its commit record says, with its manifest's sha256 and rows), and
    each has summaries."""
    assert_whole(store, latest_is_newest=False)
    for day in Store(store).dates():
        summaries = snapshot_files(store / f"snapshot_date={day.isoformat()}")["summaries.parquet"]
        rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{summaries}')").fetchall()
        assert rows[0][0] > 0


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_store_whole(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    _write_exports(exports, 60_000)
    store = tmp_path / "store"
    started = time.monotonic()
    subprocess.run(_run_cmd(exports, store, "2026-03-01"), check=True, capture_output=True)
    full = time.monotonic() - started
    _assert_store_whole(store)
    before = (store / "latest.json").read_text()
    # Kill rebuilds of the same date and of a newer date at spread-out moments.
    for i, fraction in enumerate((0.1, 0.3, 0.5, 0.7, 0.85, 0.95)):
        as_of = "2026-03-01" if i % 2 else "2026-03-02"
        proc = subprocess.Popen(
            _run_cmd(exports, store, as_of), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(full * fraction)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _assert_store_whole(store)
        if (store / "latest.json").read_text() != before:
            # The run got as far as publishing: then the newer date must be complete.
            assert json.loads((store / "latest.json").read_text())["snapshot_date"] in (
                "2026-03-01",
                "2026-03-02",
            )
    done = subprocess.run(_run_cmd(exports, store, "2026-03-02"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _assert_store_whole(store)
    assert_whole(store)  # latest.json names the newest date again
    assert json.loads((store / "latest.json").read_text())["snapshot_date"] == "2026-03-02"
    assert_clean(store)
