"""Snapshots share what did not change: one session file per day, hard-linked to a published
snapshot's when its content is the same (`publish/sharing.py`); every snapshot folder
stays complete, and deleting or pruning one never damages another."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import session, write_exports
from helpers_ops import base_exports, cli, snapshot_content

from scenario_analytics.publish.snapshot import (
    LEGACY_SESSIONS_FILE,
    SESSIONS_FOLDER,
    SESSIONS_GLOB,
    sessions_files,
    sessions_relation,
)
from scenario_analytics.publish.store import Store

DAYS = ["2026-11-21", "2026-11-22", "2026-11-23"]
SCENARIO = "sc1"


def _run(exports: Path, store: Path, day: str, *extra: str) -> str:
    result = cli(
        "run", "--exports", str(exports), "--snapshots", str(store), "--as-of", day,
        "--max-reject-ratio", "0.5", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return result.stderr


def _folder(store: Path, day: str) -> Path:
    folder = Store(store).snapshot_path(date.fromisoformat(day))
    assert folder is not None
    return folder


def _partitions(folder: Path) -> dict[str, tuple[int, int]]:
    """Each session file of a snapshot, by path, with its inode."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_dev, p.stat().st_ino)
        for p in folder.glob(SESSIONS_GLOB)
    }


def _manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return data


def _sessions_entry(folder: Path) -> dict[str, Any]:
    (entry,) = [o for o in _manifest(folder)["outputs"] if o["path"] == SESSIONS_GLOB]
    return entry


def _verify(store: Path) -> None:
    result = cli("snapshots", "verify", "--snapshots", str(store))
    assert result.exit_code == 0, result.stderr


def _answers(store: Path, day: str) -> list[str]:
    """A precomputed and a computed (from the session files) answer."""
    found = []
    for extra in ([], ["--start-date", "2026-11-21T10:30:00Z"]):
        result = cli(
            "query", "--snapshots", str(store), "--as-of", day, SCENARIO, *extra
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        found.append(result.stdout)
    return found


@pytest.fixture
def three_nights(tmp_path: Path) -> tuple[Path, Path]:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    for day in DAYS:
        _run(exports, store, day)
    return exports, store


def test_a_night_shares_every_earlier_day_and_writes_its_own(
    three_nights: tuple[Path, Path],
) -> None:
    _exports, store = three_nights
    folders = [_folder(store, d) for d in DAYS]
    parts = [_partitions(f) for f in folders]
    # One file per day with a graded session, up to the as-of day.
    assert sorted(parts[2]) == [
        f"{SESSIONS_FOLDER}/created_date={d}/part-0.parquet"
        for d in ("2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23")
    ]
    for before, after in zip(parts, parts[1:], strict=False):
        assert set(before) < set(after)
        for rel, inode in before.items():
            assert after[rel] == inode, rel  # the same file, not a copy
    # The manifests list each file with its sha256 and content digest, equal where shared.
    entries = [_sessions_entry(f) for f in folders]
    for rel in parts[0]:
        assert len({e["files"][rel] for e in entries}) == 1
        assert len({e["partitions"][rel] for e in entries}) == 1
    # Unchanged tables are shared too (users: u4 starts on the 23rd); the summaries not.
    for name in ("groups.parquet", "group_memberships.parquet", "rejects.parquet"):
        assert os.path.samefile(folders[1] / name, folders[2] / name), name
    assert not os.path.samefile(folders[1] / "summaries.parquet", folders[2] / "summaries.parquet")
    _verify(store)


def test_a_night_with_unchanged_exports_writes_no_session_file(
    three_nights: tuple[Path, Path],
) -> None:
    exports, store = three_nights
    before = _partitions(_folder(store, DAYS[2]))
    stderr = _run(exports, store, DAYS[2])  # a rerun of the same date
    after = _partitions(_folder(store, DAYS[2]))
    assert after == before
    assert f"{len(before) + 3} files" in stderr  # + users, groups, group_memberships
    assert "shared with published snapshots" in stderr


def test_deleting_or_pruning_any_snapshot_leaves_the_others_whole(
    three_nights: tuple[Path, Path], tmp_path: Path
) -> None:
    exports, store = three_nights
    expected = {d: (snapshot_content(_folder(store, d)), _answers(store, d)) for d in DAYS}
    result = cli("snapshots", "delete", "--snapshots", str(store), DAYS[1])
    assert result.exit_code == 0, result.stderr
    Store(store).clean_up(grace_seconds=0)  # the replaced version's files go too
    _verify(store)
    for day in (DAYS[0], DAYS[2]):
        assert snapshot_content(_folder(store, day)) == expected[day][0]
        assert _answers(store, day) == expected[day][1]
    _run(exports, store, "2026-11-24", "--keep", "1")  # prunes the two oldest
    Store(store).clean_up(grace_seconds=0)
    assert [d.isoformat() for d in Store(store).dates()] == ["2026-11-24"]
    _verify(store)
    # What it shared with the pruned snapshots is what a store of its own holds.
    alone = tmp_path / "alone"
    _run(exports, alone, "2026-11-24")
    assert snapshot_content(_folder(store, "2026-11-24")) == snapshot_content(
        _folder(alone, "2026-11-24")
    )


def test_a_changed_session_makes_its_day_a_new_file(tmp_path: Path) -> None:
    records = [
        session("a", created_at="2026-11-20T10:00:00Z", score=50),
        session("b", created_at="2026-11-21T10:00:00Z", score=60),
    ]
    exports = write_exports(tmp_path / "exports", {"sessions/a.jsonl": records})
    store = tmp_path / "store"
    _run(exports, store, "2026-11-21")
    first = _folder(store, "2026-11-21")
    # Re-graded: session a (of 2026-11-20) now has another score.
    late = [session("a", created_at="2026-11-20T10:00:00Z", score=95)]
    write_exports(exports, {"sessions/b.jsonl": late})
    _run(exports, store, "2026-11-22")
    second = _folder(store, "2026-11-22")
    day20 = f"{SESSIONS_FOLDER}/created_date=2026-11-20/part-0.parquet"
    day21 = f"{SESSIONS_FOLDER}/created_date=2026-11-21/part-0.parquet"
    assert not os.path.samefile(first / day20, second / day20)
    assert os.path.samefile(first / day21, second / day21)
    for folder, score in ((first, 50.0), (second, 95.0)):
        rows = duckdb.execute(
            "SELECT session_id, score FROM read_parquet(?)", [str(folder / day20)]
        ).fetchall()
        assert [(s, float(v)) for s, v in rows] == [("a", score)]
    assert (
        _sessions_entry(first)["partitions"][day20]
        != (_sessions_entry(second)["partitions"][day20])
    )
    _verify(store)


def test_a_damaged_file_is_never_shared(three_nights: tuple[Path, Path]) -> None:
    exports, store = three_nights
    newest = _folder(store, DAYS[2])
    rel = f"{SESSIONS_FOLDER}/created_date=2026-11-20/part-0.parquet"
    damaged = newest / rel
    data = bytearray(damaged.read_bytes())
    data[10:14] = b"\x00\x01\x02\x03"  # bit rot: the same bytes, shared by every snapshot
    damaged.write_bytes(bytes(data))
    result = cli("snapshots", "verify", "--snapshots", str(store))
    assert result.exit_code == 1
    assert all(f"{d}: {rel} is damaged" in result.stderr for d in DAYS)  # one file, 3 names
    stderr = _run(exports, store, "2026-11-24")
    assert "do not match their manifests' sha256 and were not shared" in stderr
    fresh = _folder(store, "2026-11-24")
    assert not os.path.samefile(fresh / rel, damaged)
    assert _sessions_entry(fresh)["files"][rel] == _sessions_entry(newest)["files"][rel]
    result = cli("snapshots", "verify", "--snapshots", str(store))
    assert "2026-11-24" not in result.stderr


def test_a_snapshot_without_graded_sessions_has_no_session_file(tmp_path: Path) -> None:
    records = [session("a", created_at="2026-11-20T10:00:00Z", score=50)]
    records[0]["is_valid_attempt"] = False
    exports = write_exports(tmp_path / "exports", {"sessions/a.jsonl": records})
    store = tmp_path / "store"
    _run(exports, store, "2026-11-20")
    folder = _folder(store, "2026-11-20")
    assert sessions_files(folder) == []
    assert _sessions_entry(folder)["rows"] == 0 and _sessions_entry(folder)["files"] == {}
    body = cli("query", "--snapshots", str(store), SCENARIO, "--start-date", "2026-11-01")
    assert body.exit_code == 0, body.stderr
    assert json.loads(body.stdout)["participant_count"] == 0
    columns = duckdb.sql(
        f"DESCRIBE SELECT * FROM {sessions_relation(sessions_files(folder))}"
    ).fetchall()
    assert [(c[0], c[1]) for c in columns] == [
        ("scenario_id", "VARCHAR"),
        ("user_id", "VARCHAR"),
        ("session_id", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("score", "DECIMAL(9,4)"),
        ("duration_seconds", "DECIMAL(38,6)"),
    ]
    _verify(store)


def test_snapshots_written_before_partitions_are_still_read(
    three_nights: tuple[Path, Path],
) -> None:
    """A snapshot of an earlier version has one sessions.parquet: query and stale read it,
    and a new night shares nothing with it but writes its own days."""
    exports, store = three_nights
    folder = _folder(store, DAYS[2])
    answers = _answers(store, DAYS[2])
    duckdb.execute(
        f"COPY (SELECT * FROM {sessions_relation(sessions_files(folder))}) TO "
        f"'{folder / LEGACY_SESSIONS_FILE}' (FORMAT PARQUET)"
    )
    for partition in folder.glob(SESSIONS_GLOB):
        partition.unlink()
    assert sessions_files(folder) == [folder / LEGACY_SESSIONS_FILE]
    assert _answers(store, DAYS[2]) == answers
    stale = cli("snapshots", "stale", "--exports", str(exports), "--snapshots", str(store))
    assert stale.exit_code == 0, stale.stderr
    assert "cannot compare" not in stale.stderr


def test_usage_counts_a_shared_file_once(three_nights: tuple[Path, Path]) -> None:
    _exports, store = three_nights
    result = cli("snapshots", "usage", "--snapshots", str(store), "--json")
    assert result.exit_code == 0, result.stderr
    usage = json.loads(result.stdout)
    apparent = sum(
        p.stat().st_size for d in DAYS for p in _folder(store, d).rglob("*") if p.is_file()
    )
    inodes = {
        (p.stat().st_dev, p.stat().st_ino): p.stat().st_size
        for d in DAYS
        for p in _folder(store, d).rglob("*")
        if p.is_file()
    }
    assert usage["snapshots"]["bytes"] == sum(inodes.values()) < apparent
