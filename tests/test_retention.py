"""Retention: `--keep N` / `keep_snapshots` keep the newest N snapshots; pruning never
removes what latest.json names and never pulls files from under a reader."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from helpers_ops import base_exports, cli
from test_store import publish_version

from scenario_analytics.publish.store import Store

DAYS = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]


def _run(exports: Path, store: Path, day: str, *extra: str) -> None:
    result = cli(
        "run", "--exports", str(exports), "--snapshots", str(store), "--as-of", day,
        "--max-reject-ratio", "0.5", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr


def test_keep_prunes_the_oldest_and_keeps_the_latest(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    for day in DAYS[:3]:
        _run(exports, store, day)
    # A reader read the oldest snapshot's record and manifest before the run.
    held = Store(store).version(date.fromisoformat(DAYS[0]))
    assert held is not None
    result = cli(
        "run", "--exports", str(exports), "--snapshots", str(store), "--as-of", DAYS[3],
        "--max-reject-ratio", "0.5", "--keep", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [d.isoformat() for d in Store(store).dates()] == DAYS[2:]
    assert Store(store).latest() == date.fromisoformat(DAYS[3])
    assert f"pruned snapshot {DAYS[0]}" in result.stderr
    # The reader keeps whole files until the grace period is over: every file of the
    # version it holds, as its manifest has them (the pruned date's own and shared ones).
    lib = Store(store)
    for rel in held.files():
        assert lib.fetch(held, rel, verify=True).is_file(), rel
    with lib.lock():
        assert lib.clean_up() == []
        removed = lib.clean_up(grace_seconds=0)
    assert {f"snapshot_date={d}" for d in DAYS[:2]} <= set(removed)
    assert not any(r.startswith(tuple(f"snapshot_date={d}" for d in DAYS[2:])) for r in removed)
    assert not (store / f"snapshot_date={DAYS[0]}").exists()
    # What only the pruned versions used is gone; what they shared with the published
    # ones (session partitions of earlier days) stays, once.
    live = {
        key
        for day in lib.dates()
        if (version := lib.version(day)) is not None
        for key in version.keys().values()
    }
    for key in held.keys().values():
        assert (store / key).is_file() == (key in live), key
    assert any(key in live for key in held.keys().values())  # a shared partition
    assert [d.isoformat() for d in Store(store).dates()] == DAYS[2:]
    assert cli("snapshots", "verify", "--snapshots", str(store)).exit_code == 0


def test_pruning_never_removes_what_latest_names(tmp_path: Path) -> None:
    store = Store(tmp_path)
    days = [date(2026, 11, d) for d in (1, 2, 3)]
    for day in days:
        publish_version(store, day, day.isoformat())
    # Pinned back by hand (e.g. after a bad day): latest.json names an older snapshot.
    (tmp_path / "latest.json").write_text(
        json.dumps({"snapshot_date": "2026-11-01", "path": "snapshot_date=2026-11-01"})
    )
    with store.lock():
        assert store.prune(1) == [date(2026, 11, 2)]
        assert store.dates() == [date(2026, 11, 1), date(2026, 11, 3)]
        assert store.prune(1) == []
    assert store.latest() == date(2026, 11, 1)


def test_keep_snapshots_in_the_job_file_and_in_backfills(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    job = tmp_path / "job.toml"
    job.write_text("keep_snapshots = 2\nmax_reject_ratio = 0.5\n")
    result = cli(
        "backfill", "--exports", str(exports), "--snapshots", str(store), "--job", str(job),
        "--from", DAYS[0], "--to", DAYS[-1],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    # Retention never removes what the same command published: all four days stay.
    assert [d.isoformat() for d in Store(store).dates()] == DAYS
    _run(exports, store, DAYS[-1], "--job", str(job))  # the next run applies keep = 2
    assert [d.isoformat() for d in Store(store).dates()] == DAYS[2:]
    _run(exports, store, "2026-11-24", "--job", str(job), "--keep", "1")  # the option wins
    assert [d.isoformat() for d in Store(store).dates()] == ["2026-11-24"]
    assert Store(store).latest() == date(2026, 11, 24)


def test_keep_must_be_positive(tmp_path: Path) -> None:
    result = cli("run", "--exports", str(tmp_path), "--snapshots", str(tmp_path), "--keep", "0")
    assert result.exit_code == 2
    job = tmp_path / "job.toml"
    job.write_text("keep_snapshots = 0\n")
    result = cli("run", "--job", str(job))
    assert result.exit_code == 2 and "keep_snapshots" in result.stderr
