"""The snapshot store: publishing by commit record, latest.json, the lease, clean-up."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from scenario_analytics.errors import ExitCode, StoreLockedError
from scenario_analytics.publish import store as store_module
from scenario_analytics.publish.manifest import Manifest, OutputEntry, listing_sha256
from scenario_analytics.publish.records import Record, Retired, pool_key
from scenario_analytics.publish.snapshot import SESSIONS_GLOB, write_manifest
from scenario_analytics.publish.store import Store
from scenario_analytics.settings import StorageSettings

DAY = date(2026, 11, 26)
PARTITION = "sessions/created_date=2026-11-20/part-0.parquet"
GONE = "api/scenarios/gone/analytics/summary.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def publish_version(
    store: Store, day: date, text: str, *, sessions: str = "", extra: tuple[str, ...] = ()
) -> str:
    """Publish a small version of `day`, under the store's lease: `users.parquet` holds
    `text`, one session partition holds `sessions` (if given), each of `extra` (paths)
    holds `text` too. The manifest says `text` in its fingerprint."""
    with store.lock("test"):
        build = store.begin(day)
        files = {"users.parquet": text.encode(), **{rel: text.encode() for rel in extra}}
        outputs = [OutputEntry(path=rel, rows=1, sha256=_sha(data)) for rel, data in files.items()]
        if sessions:
            listed = {PARTITION: _sha(sessions.encode())}
            files[PARTITION] = sessions.encode()
            outputs.append(
                OutputEntry(
                    path=SESSIONS_GLOB,
                    rows=1,
                    sha256=listing_sha256(listed),
                    files=listed,
                    partitions={PARTITION: f"p1:1:{_sha(sessions.encode())[:32]}"},
                )
            )
        for rel, data in files.items():
            (build.folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (build.folder / rel).write_bytes(data)
        manifest = Manifest(snapshot_date=day, fingerprint={"text": text}, outputs=outputs)
        write_manifest(build.folder, manifest)
        return store.publish(build, manifest)


def _manifest(store: Store, day: date) -> dict[str, object]:
    version = store.version(day)
    assert version is not None
    data = json.loads(store.fetch(version, "manifest.json").read_text())
    assert isinstance(data, dict)
    return data


def _text(store: Store, day: date) -> str:
    fingerprint = _manifest(store, day)["fingerprint"]
    assert isinstance(fingerprint, dict)
    return str(fingerprint["text"])


def _retired(store: Store) -> list[Retired]:
    entries = [
        Retired.from_bytes(store.storage.read(o.key)[0]) for o in store.storage.objects(".retired/")
    ]
    assert all(e is not None for e in entries)
    return [e for e in entries if e is not None]


def _keys(store: Store, prefix: str = "") -> set[str]:
    return {o.key for o in store.storage.objects(prefix)}


def test_publish_makes_snapshot_and_latest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    public = publish_version(store, DAY, "a", sessions="day 20")
    assert public == str(tmp_path / "snapshot_date=2026-11-26")
    assert json.loads((tmp_path / "latest.json").read_text()) == {
        "snapshot_date": "2026-11-26",
        "path": "snapshot_date=2026-11-26",
    }
    assert store.dates() == [DAY]
    assert _text(store, DAY) == "a"
    assert json.loads((tmp_path / ".store.json").read_text()) == {"format": 2}
    # The date's folder is a real folder with the version's files, no session partitions:
    # those are stored once, by content, in .objects/.
    folder = tmp_path / "snapshot_date=2026-11-26"
    assert folder.is_dir() and not folder.is_symlink()
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "manifest.json",
        "users.parquet",
    ]
    assert (folder / "users.parquet").read_text() == "a"
    pooled = pool_key(PARTITION, _sha(b"day 20"))
    assert pooled == f".objects/sessions/created_date=2026-11-20/{_sha(b'day 20')}.parquet"
    assert (tmp_path / pooled).read_bytes() == b"day 20"
    # The commit record names the folder (the files are in place) and the shared object.
    record = Record.from_bytes((tmp_path / ".commits" / "2026-11-26.json").read_bytes())
    assert record is not None and record.in_place
    assert record.prefix == "snapshot_date=2026-11-26" and record.objects == (pooled,)
    assert record.manifest_sha256 == _sha((folder / "manifest.json").read_bytes())
    # What the store reads for the snapshot includes the partition.
    version = store.version(DAY)
    assert version is not None
    assert store.fetch(version, PARTITION).read_bytes() == b"day 20"
    assert [p.read_bytes() for p in store.session_paths(version)] == [b"day 20"]
    # Nothing is left over: the local folder the version was written in is gone, its
    # uploads in .staging are kept only for readers that read the record before the move
    # in place (a retired entry), and the lease is released.
    assert not list((tmp_path / ".scratch").glob("*"))
    (moved,) = _retired(store)
    assert moved.reason == "moved in place"
    assert _keys(store, ".staging/") == set(moved.keys)
    assert not (tmp_path / ".lease.json").exists()
    assert store.verify().whole
    with store.lock():
        removed = store.clean_up(grace_seconds=0)
    assert removed == [f".staging/{record.build}"]
    assert not (tmp_path / ".staging").exists() and not _retired(store)
    assert store.verify().whole


def test_publish_needs_the_lease(tmp_path: Path) -> None:
    store = Store(tmp_path)
    build = store.begin(DAY)
    manifest = Manifest(snapshot_date=DAY)
    write_manifest(build.folder, manifest)
    with pytest.raises(Exception, match="without its lease"):
        store.publish(build, manifest)
    assert store.dates() == [] and store.latest() is None


def test_backfill_of_older_date_keeps_latest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish_version(store, date(2026, 11, 26), "new")
    publish_version(store, date(2026, 11, 1), "old")
    assert store.latest() == date(2026, 11, 26)
    assert store.dates() == [date(2026, 11, 1), date(2026, 11, 26)]
    assert _text(store, date(2026, 11, 1)) == "old"


def test_rebuild_keeps_the_old_version_readable_through_the_grace_period(tmp_path: Path) -> None:
    """A reader that holds the replaced version reads every file of it, as its manifest
    has them, until the grace period ends: the rebuild is read from .staging meanwhile,
    and its files move into the date's folder only after that."""
    store = Store(tmp_path)
    folder = tmp_path / "snapshot_date=2026-11-26"
    publish_version(store, DAY, "first", sessions="first sessions", extra=(GONE,))
    held = store.version(DAY)  # a reader read the record and manifest of the old one
    assert held is not None
    publish_version(store, DAY, "second", sessions="second sessions")
    assert _text(store, DAY) == "second"
    new = store.version(DAY)
    assert new is not None and new.record.build != held.record.build
    assert new.record.prefix == f".staging/{new.record.build}" and GONE not in new.files()
    assert store.fetch(new, "users.parquet", verify=True).read_text() == "second"
    assert store.fetch(new, PARTITION, verify=True).read_bytes() == b"second sessions"

    def old_files_whole() -> None:
        for rel in held.files():
            store.fetch(held, rel, verify=True)  # there, with the manifest's sha256
        assert store.fetch(held, "users.parquet").read_text() == "first"
        assert store.fetch(held, GONE).read_text() == "first"
        assert store.fetch(held, PARTITION).read_bytes() == b"first sessions"

    old_files_whole()
    (replaced,) = [r for r in _retired(store) if r.reason == "replaced"]
    assert f"snapshot_date=2026-11-26/{GONE}" in replaced.keys
    assert replaced.objects == (pool_key(PARTITION, _sha(b"first sessions")),)
    verified = store.verify()
    assert verified.whole and any("rebuilt; its files move into" in n for n in verified.notes)
    # Within the grace period the replaced version stays; after it, the rebuild moves in
    # place and what only the replaced version used goes.
    with store.lock():
        assert store.clean_up() == []
        old_files_whole()
        removed = store.clean_up(grace_seconds=0)
    assert "snapshot_date=2026-11-26: moved its files in place" in removed
    assert pool_key(PARTITION, _sha(b"first sessions")) in removed
    assert f"snapshot_date=2026-11-26/{GONE}" in removed
    assert not (tmp_path / pool_key(PARTITION, _sha(b"first sessions"))).exists()
    assert not (folder / GONE).exists()
    assert (folder / "users.parquet").read_text() == "second"
    assert not (tmp_path / ".staging").exists() and not _retired(store)
    moved = store.version(DAY)
    assert moved is not None and moved.record.in_place
    assert _text(store, DAY) == "second"
    assert store.fetch(moved, PARTITION, verify=True).read_bytes() == b"second sessions"
    assert store.verify().whole


def test_the_grace_period_is_a_storage_setting(tmp_path: Path) -> None:
    """`[storage] grace_seconds` (0 here: readers never hold a version long) lets a
    rebuild move in place at once and the next clean-up delete what it replaced; an entry
    written with its end (`until`, by an earlier release) is read as retired an hour
    before it."""
    store = Store(tmp_path, settings=StorageSettings(grace_seconds=0))
    publish_version(store, DAY, "first", sessions="first sessions")
    publish_version(store, DAY, "second", sessions="second sessions")
    moved = store.version(DAY)
    assert moved is not None and moved.record.in_place
    with store.lock():
        assert pool_key(PARTITION, _sha(b"first sessions")) in store.clean_up()
    assert not _retired(store) and not (tmp_path / ".staging").exists()
    assert _text(store, DAY) == "second"
    old = Retired.from_bytes(
        json.dumps({"snapshot_date": "2026-11-26", "build": "b", "until": 7200.0}).encode()
    )
    assert old is not None and old.since == 3600.0
    assert Retired.from_bytes(Retired(DAY, "b", 5.0).to_bytes()) == Retired(DAY, "b", 5.0)


def test_clean_up_removes_leftovers_of_killed_runs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    publish_version(store, DAY, "kept", sessions="kept sessions")
    kept = _keys(store)
    # What killed runs leave: uploads never committed (to .staging and to .objects), a
    # local scratch folder, the folder of a date whose record never got written.
    orphan = pool_key(PARTITION, _sha(b"half"))
    store.storage.write(".staging/dead/users.parquet", b"half")
    store.storage.write(orphan, b"half")
    (store.storage.scratch("dead") / "users.parquet").write_bytes(b"half")
    store.storage.write("snapshot_date=2026-11-25/users.parquet", b"half")
    assert {p.what.split(" is left")[0] for p in store.verify().problems} == {
        ".staging/dead",
        orphan,
        "snapshot_date=2026-11-25",
    }
    with store.lock():
        removed = store.clean_up()
    assert sorted(removed) == [orphan, ".scratch/dead", ".staging/dead", "snapshot_date=2026-11-25"]
    assert store.dates() == [DAY]
    assert _keys(store) == kept
    assert not (tmp_path / "snapshot_date=2026-11-25").exists()
    assert store.verify().whole


class Killed(BaseException):
    """The process ending at a fault checkpoint (no clean-up of the store runs)."""


def test_clean_up_finishes_a_move_in_place_that_a_killed_run_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed right after its commit (the `committed` checkpoint), before copying its
    files in place: the version is published (readers read it where its record says, in
    .staging) and the next clean-up moves it in place and points latest.json at it."""
    store = Store(tmp_path)
    publish_version(store, date(2026, 11, 25), "before")

    def killed_at(stage: str) -> None:
        if stage == "committed":
            raise Killed(stage)

    monkeypatch.setattr(store_module, "checkpoint", killed_at)
    with pytest.raises(Killed):
        publish_version(store, DAY, "moving", sessions="moving sessions")
    monkeypatch.undo()
    assert store.latest() == date(2026, 11, 25)
    found = store.record(DAY)
    assert found is not None and not found[0].in_place
    assert found[0].prefix.startswith(".staging/")
    assert _text(store, DAY) == "moving"
    assert not (tmp_path / "snapshot_date=2026-11-26").exists()
    problems = store.verify().problems
    assert [p.what for p in problems] == [
        "2026-11-26: its files were not all moved in place (a run was stopped while moving them)",
        "latest.json names 2026-11-25, not the newest published date 2026-11-26, and is not pinned",
    ]
    assert all(p.repairable for p in problems)
    with store.lock():
        assert "snapshot_date=2026-11-26: moved its files in place" in store.clean_up()
    found = store.record(DAY)
    assert found is not None and found[0].in_place
    assert (tmp_path / "snapshot_date=2026-11-26" / "users.parquet").read_text() == "moving"
    assert store.latest() == DAY  # latest.json named the newest date, as the run would have
    assert store.verify().whole


def test_second_lock_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.lock():
        started = time.monotonic()
        with pytest.raises(StoreLockedError) as caught:
            with Store(tmp_path).lock():
                pass
        assert time.monotonic() - started < 1
        assert store.is_locked()
        assert f"pid {os.getpid()}" in (store.holder() or "")
    assert caught.value.exit_code == ExitCode.LOCKED
    assert f"pid {os.getpid()}" in str(caught.value)
    assert not store.is_locked() and not (tmp_path / ".lease.json").exists()


def test_lease_of_killed_process_does_not_block(tmp_path: Path) -> None:
    """A process killed while it holds the store leaves its lease (no kernel lock to
    drop): the next job on the same host takes it over at once, its holder being gone."""
    code = (
        "import sys, time; from pathlib import Path; "
        "from scenario_analytics.publish.store import Store\n"
        "with Store(Path(sys.argv[1])).lock():\n"
        "    print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(StoreLockedError, match=f"pid {proc.pid} "):
        with Store(tmp_path).lock():
            pass
    proc.kill()
    proc.wait()
    assert (tmp_path / ".lease.json").exists()  # left behind by the killed process
    started = time.monotonic()
    with Store(tmp_path).lock():
        assert time.monotonic() - started < 1  # no waiting for the lease to expire
        assert f"pid {os.getpid()} " in (Store(tmp_path).holder() or "")
    assert not (tmp_path / ".lease.json").exists()


def test_missing_snapshot(tmp_path: Path) -> None:
    store = Store(tmp_path / "nothing")
    assert store.latest() is None
    assert store.dates() == []
    assert store.version(date(2026, 1, 1)) is None
    assert store.record(date(2026, 1, 1)) is None
