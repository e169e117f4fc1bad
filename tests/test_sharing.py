"""Snapshots share what did not change: one session file per day, stored once by content
in `.objects/` and named by every snapshot whose manifest has that content for that day
(`publish/sharing.py`); every snapshot stays complete, and deleting or pruning one never
damages another."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import session, write_exports
from helpers_ops import base_exports, cli, snapshot_content, snapshot_files

from scenario_analytics.publish.manifest import Manifest, OutputEntry
from scenario_analytics.publish.records import Record, pool_key
from scenario_analytics.publish.snapshot import (
    LEGACY_SESSIONS_FILE,
    SESSIONS_FOLDER,
    SESSIONS_GLOB,
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
    """A published date's folder (its files but its session partitions, in .objects/)."""
    folder = store / f"snapshot_date={day}"
    assert date.fromisoformat(day) in Store(store).dates()
    return folder


def _record(store: Path, day: str) -> Record:
    record = Record.from_bytes((store / ".commits" / f"{day}.json").read_bytes())
    assert record is not None
    return record


def _partitions(store: Path, day: str) -> dict[str, str]:
    """Each session file of a snapshot, by path in it, with the key it is stored under."""
    version = Store(store).version(date.fromisoformat(day))
    assert version is not None
    return {rel: key for rel, key in version.keys().items() if rel.startswith(SESSIONS_FOLDER)}


def _keys(store: Path, day: str) -> list[str]:
    """Every file of a snapshot, by the key it is stored under."""
    version = Store(store).version(date.fromisoformat(day))
    assert version is not None
    return list(version.keys().values())


def _objects(store: Path) -> dict[str, tuple[int, int]]:
    """The stored session partitions, by key, with their inodes (rewritten = a new one)."""
    return {
        p.relative_to(store).as_posix(): (p.stat().st_dev, p.stat().st_ino)
        for p in (store / ".objects").rglob("*")
        if p.is_file()
    }


def _manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return data


def _sessions_entry(folder: Path) -> dict[str, Any]:
    (entry,) = [o for o in _manifest(folder)["outputs"] if o["path"] == SESSIONS_GLOB]
    return entry


def _session_paths(store: Path, day: str) -> list[Path]:
    lib = Store(store)
    version = lib.version(date.fromisoformat(day))
    assert version is not None
    return lib.session_paths(version)


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
    parts = [_partitions(store, d) for d in DAYS]
    # One file per day with a graded session, up to the as-of day.
    assert sorted(parts[2]) == [
        f"{SESSIONS_FOLDER}/created_date={d}/part-0.parquet"
        for d in ("2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23")
    ]
    for before, after in zip(parts, parts[1:], strict=False):
        assert set(before) < set(after)
        for rel, key in before.items():
            assert after[rel] == key, rel  # the same object, not a copy
    # Each is stored once, under its content, and every commit record names the ones its
    # snapshot uses; no snapshot folder holds a session file.
    stored = _objects(store)
    assert sorted(stored) == sorted(parts[2].values())
    for day, part in zip(DAYS, parts, strict=True):
        assert set(_record(store, day).objects) == set(part.values())
        assert not (_folder(store, day) / SESSIONS_FOLDER).exists()
    for rel, key in parts[2].items():
        sha256 = _sessions_entry(folders[2])["files"][rel]
        assert key == pool_key(rel, sha256)
        assert hashlib.sha256((store / key).read_bytes()).hexdigest() == sha256
    # The manifests list each file with its sha256 and content digest, equal where shared.
    entries = [_sessions_entry(f) for f in folders]
    for rel in parts[0]:
        assert len({e["files"][rel] for e in entries}) == 1
        assert len({e["partitions"][rel] for e in entries}) == 1
    # Tables are each snapshot's own files in its folder (the same bytes where unchanged:
    # users changes, u4 starting on the 23rd; the summaries each day).
    for name in ("groups.parquet", "group_memberships.parquet", "rejects.parquet"):
        assert (folders[1] / name).read_bytes() == (folders[2] / name).read_bytes(), name
    for name in ("users.parquet", "summaries.parquet"):
        assert (folders[1] / name).read_bytes() != (folders[2] / name).read_bytes(), name
    # An unchanged table is copied from the snapshot that has it, not written again (on
    # local disk a copy is a hard link: the same inode).
    for name in ("groups.parquet", "group_memberships.parquet", "rejects.parquet"):
        assert (folders[1] / name).stat().st_ino == (folders[2] / name).stat().st_ino, name
    _verify(store)


def test_a_night_with_unchanged_exports_writes_no_session_file(
    three_nights: tuple[Path, Path],
) -> None:
    exports, store = three_nights
    before, stored = _partitions(store, DAYS[2]), _objects(store)
    stderr = _run(exports, store, DAYS[2])  # a rerun of the same date
    assert _partitions(store, DAYS[2]) == before
    assert _objects(store) == stored  # no object written, none rewritten
    assert f"; {len(before)} session partitions shared with published snapshots" in stderr


def test_deleting_or_pruning_any_snapshot_leaves_the_others_whole(
    three_nights: tuple[Path, Path], tmp_path: Path
) -> None:
    exports, store = three_nights
    expected = {d: (snapshot_content(_folder(store, d)), _answers(store, d)) for d in DAYS}
    result = cli("snapshots", "delete", "--snapshots", str(store), DAYS[1])
    assert result.exit_code == 0, result.stderr
    lib = Store(store)
    with lib.lock():
        lib.clean_up(grace_seconds=0)  # the deleted version's files go too
    _verify(store)
    for day in (DAYS[0], DAYS[2]):
        assert snapshot_content(_folder(store, day)) == expected[day][0]
        assert _answers(store, day) == expected[day][1]
    _run(exports, store, "2026-11-24", "--keep", "1")  # prunes the two oldest
    with lib.lock():
        lib.clean_up(grace_seconds=0)
    assert [d.isoformat() for d in Store(store).dates()] == ["2026-11-24"]
    _verify(store)
    # Only what the remaining snapshot uses is left in .objects/.
    assert sorted(_objects(store)) == sorted(_partitions(store, "2026-11-24").values())
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
    keys = [_partitions(store, "2026-11-21"), _partitions(store, "2026-11-22")]
    assert keys[0][day20] != keys[1][day20]  # a new object for the changed day
    assert keys[0][day21] == keys[1][day21]  # the same object for the other
    assert len(_objects(store)) == 3
    for folder, score in ((first, 50.0), (second, 95.0)):
        rows = duckdb.execute(
            "SELECT session_id, score FROM read_parquet(?)", [str(snapshot_files(folder)[day20])]
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
    damaged = store / _partitions(store, DAYS[2])[rel]
    good = damaged.read_bytes()
    data = bytearray(good)
    data[10:14] = b"\x00\x01\x02\x03"  # bit rot: the same bytes, shared by every snapshot
    damaged.write_bytes(bytes(data))
    result = cli("snapshots", "verify", "--snapshots", str(store))
    assert result.exit_code == 1
    assert all(f"{d}: {rel} is damaged" in result.stderr for d in DAYS)  # one file, 3 names
    stderr = _run(exports, store, "2026-11-24")
    assert "do not match their manifests' sha256 and were not shared" in stderr
    fresh = _folder(store, "2026-11-24")
    assert _sessions_entry(fresh)["files"][rel] == _sessions_entry(newest)["files"][rel]
    # Written anew under its content's key: the new snapshot's file is whole, and so is
    # the one the others name (the same key), mended.
    assert _partitions(store, "2026-11-24")[rel] == _partitions(store, DAYS[2])[rel]
    assert snapshot_files(fresh)[rel].read_bytes() == good
    _verify(store)


def test_a_snapshot_without_graded_sessions_has_no_session_file(tmp_path: Path) -> None:
    records = [session("a", created_at="2026-11-20T10:00:00Z", score=50)]
    records[0]["is_valid_attempt"] = False
    exports = write_exports(tmp_path / "exports", {"sessions/a.jsonl": records})
    store = tmp_path / "store"
    _run(exports, store, "2026-11-20")
    folder = _folder(store, "2026-11-20")
    assert _session_paths(store, "2026-11-20") == []
    assert not (store / ".objects").exists() and _record(store, "2026-11-20").objects == ()
    assert _sessions_entry(folder)["rows"] == 0 and _sessions_entry(folder)["files"] == {}
    body = cli("query", "--snapshots", str(store), SCENARIO, "--start-date", "2026-11-01")
    assert body.exit_code == 0, body.stderr
    assert json.loads(body.stdout)["participant_count"] == 0
    columns = duckdb.sql(
        f"DESCRIBE SELECT * FROM {sessions_relation(_session_paths(store, '2026-11-20'))}"
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
    """A snapshot of an earlier version has one sessions.parquet in its folder (as a store
    of the first layout converts to: its commit record names no shared object): query and
    stale read it, and a new night shares nothing with it but writes its own days."""
    exports, store = three_nights
    folder = _folder(store, DAYS[2])
    answers = _answers(store, DAYS[2])
    duckdb.execute(
        f"COPY (SELECT * FROM {sessions_relation(_session_paths(store, DAYS[2]))}) TO "
        f"'{folder / LEGACY_SESSIONS_FILE}' (FORMAT PARQUET)"
    )
    manifest = Manifest.parse((folder / "manifest.json").read_bytes())
    assert manifest is not None
    sessions = [o for o in manifest.outputs if o.path == SESSIONS_GLOB]
    legacy = OutputEntry(
        path=LEGACY_SESSIONS_FILE,
        rows=sessions[0].rows,
        sha256=hashlib.sha256((folder / LEGACY_SESSIONS_FILE).read_bytes()).hexdigest(),
    )
    outputs = [legacy if o.path == SESSIONS_GLOB else o for o in manifest.outputs]
    (folder / "manifest.json").write_text(
        manifest.model_copy(update={"outputs": outputs}).to_json()
    )
    record = _record(store, DAYS[2])
    sha256 = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    (store / ".commits" / f"{DAYS[2]}.json").write_bytes(
        dataclasses.replace(record, manifest_sha256=sha256, objects=(), pooled=False).to_bytes()
    )
    assert _session_paths(store, DAYS[2]) == [folder / LEGACY_SESSIONS_FILE]
    assert _answers(store, DAYS[2]) == answers
    stale = cli("snapshots", "stale", "--exports", str(exports), "--snapshots", str(store))
    assert stale.exit_code == 0, stale.stderr
    assert "cannot compare" not in stale.stderr
    _verify(store)
    # The next night: nothing to share with it (the night before it has partitions it
    # does not share either: only the nearest dates are looked at), its own files written.
    stderr = _run(exports, store, "2026-11-24")
    assert "session partitions shared" not in stderr
    assert sorted(_partitions(store, "2026-11-24")) == [
        f"{SESSIONS_FOLDER}/created_date={d}/part-0.parquet"
        for d in ("2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23")
    ]
    assert _answers(store, "2026-11-24")[0] == answers[0]
    _verify(store)


def test_usage_counts_a_shared_file_once(three_nights: tuple[Path, Path]) -> None:
    _exports, store = three_nights
    result = cli("snapshots", "usage", "--snapshots", str(store), "--json")
    assert result.exit_code == 0, result.stderr
    usage = json.loads(result.stdout)
    apparent = sum(
        p.stat().st_size for d in DAYS for p in snapshot_files(_folder(store, d)).values()
    )
    stored = {  # each file once, by the key it is stored under
        key: (store / key).stat().st_size for d in DAYS for key in _keys(store, d)
    }
    assert usage["snapshots"]["bytes"] == sum(stored.values()) < apparent
