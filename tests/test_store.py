"""The snapshot store: atomic publishing, latest.json, the lock, clean-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from scenario_analytics.errors import ExitCode, StoreLockedError
from scenario_analytics.publish.store import Store


def _staged(store: Store, text: str) -> Path:
    folder = store.new_staging()
    (folder / "manifest.json").write_text(json.dumps({"text": text}))
    return folder


def _manifest(store: Store, day: date) -> dict[str, object]:
    path = store.snapshot_path(day)
    assert path is not None
    data = json.loads((path / "manifest.json").read_text())
    assert isinstance(data, dict)
    return data


def test_publish_makes_snapshot_and_latest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    public = store.publish(_staged(store, "a"), date(2026, 11, 26))
    assert public == tmp_path / "snapshot_date=2026-11-26"
    assert json.loads((tmp_path / "latest.json").read_text()) == {
        "snapshot_date": "2026-11-26",
        "path": "snapshot_date=2026-11-26",
    }
    assert store.dates() == [date(2026, 11, 26)]
    assert _manifest(store, date(2026, 11, 26)) == {"text": "a"}
    assert not list((tmp_path / ".staging").iterdir())


def test_backfill_of_older_date_keeps_latest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.publish(_staged(store, "new"), date(2026, 11, 26))
    store.publish(_staged(store, "old"), date(2026, 11, 1))
    assert store.latest() == date(2026, 11, 26)
    assert store.dates() == [date(2026, 11, 1), date(2026, 11, 26)]


def test_rebuild_swaps_and_old_version_stays_readable(tmp_path: Path) -> None:
    store = Store(tmp_path)
    day = date(2026, 11, 26)
    store.publish(_staged(store, "first"), day)
    held = store.snapshot_path(day)  # a reader resolved the old one
    assert held is not None
    store.publish(_staged(store, "second"), day)
    assert _manifest(store, day) == {"text": "second"}
    assert json.loads((held / "manifest.json").read_text()) == {"text": "first"}
    # Within the grace period the replaced version stays; after it, it goes.
    assert store.clean_up() == []
    removed = store.clean_up(grace_seconds=0)
    assert removed == [f".versions/{held.name}"]
    assert _manifest(store, day) == {"text": "second"}


def test_clean_up_removes_leftovers_of_killed_runs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.publish(_staged(store, "kept"), date(2026, 11, 26))
    leftover = _staged(store, "half")  # never published
    orphan = store.versions / "2026-11-25.dead"  # renamed, but the link never made
    orphan.mkdir()
    removed = store.clean_up()
    assert f".staging/{leftover.name}" in removed
    assert ".versions/2026-11-25.dead" in removed
    assert store.dates() == [date(2026, 11, 26)]


def test_second_lock_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.lock():
        started = time.monotonic()
        with pytest.raises(StoreLockedError) as caught:
            with Store(tmp_path).lock():
                pass
        assert time.monotonic() - started < 1
    assert caught.value.exit_code == ExitCode.LOCKED
    assert f"pid {os.getpid()}" in str(caught.value)


def test_lock_of_killed_process_does_not_block(tmp_path: Path) -> None:
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
    with pytest.raises(StoreLockedError):
        with Store(tmp_path).lock():
            pass
    proc.kill()
    proc.wait()
    with Store(tmp_path).lock():
        pass


def test_missing_snapshot(tmp_path: Path) -> None:
    store = Store(tmp_path / "nothing")
    assert store.latest() is None
    assert store.dates() == []
    assert store.snapshot_path(date(2026, 1, 1)) is None
