"""Writes that fail, and runs and readers at the same time on one store.

- A write that fails (a full disk: a real ENOSPC from /dev/full; a read-only store,
  simulated by failing the file-system call, since root ignores permission bits) gives
  exit 1 and a clear message, and nothing visible changes: `latest.json`, the published
  dates and the versions they resolve to are as before. The next run succeeds and cleans
  up after the failed one.
- Two runs on one store: the second exits 5 at once, naming the holder; a lock left by a
  killed process never blocks the next run.
- A reader looping over `latest.json` and the files it names while runs publish never
  sees a missing or partial file.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from helpers_ops import snapshot_content

from scenario_analytics import files
from scenario_analytics.cli import main
from scenario_analytics.ingest import ledger as ledger_module
from scenario_analytics.ingest.ledger import CATALOG_NAME, LEDGER_NAME, ledger_problems
from scenario_analytics.publish.sharing import Sharing
from scenario_analytics.publish.store import Store

SCENARIO = "sc/1 é"  # its summary.json folder is percent-encoded
ENCODED = "sc%2F1%20%C3%A9"


def _session(sid: str, user: str, day: str, score: int = 80) -> str:
    return json.dumps(
        {
            "id": sid,
            "user": {"id": user, "email": f"{user}@acme.com"},
            "scenario": {"id": SCENARIO, "slug": "one", "name": "One"},
            "score": score,
            "duration_seconds": 60,
            "is_valid_attempt": True,
            "created_at": f"{day}T10:00:00Z",
        }
    )


def write_exports(root: Path, sessions: int = 20) -> Path:
    exports = root / "exports"
    (exports / "sessions").mkdir(parents=True, exist_ok=True)
    lines = [
        _session(f"s{i}", f"u{i % 7}", f"2026-11-{1 + i % 25:02d}", 40 + i % 60)
        for i in range(sessions)
    ]
    (exports / "sessions" / "a.jsonl").write_text("\n".join(lines) + "\n")
    return exports


def run_cli(exports: Path, store: Path, as_of: str) -> Result:
    return CliRunner().invoke(
        main, ["run", "--exports", str(exports), "--snapshots", str(store), "--as-of", as_of]
    )


def state(store: Path) -> dict[str, Any]:
    """What a reader can see: latest.json's bytes, and each date's resolved version."""
    latest = store / "latest.json"
    return {
        "latest": latest.read_bytes() if latest.exists() else None,
        "dates": {
            d.isoformat(): (store / f"snapshot_date={d.isoformat()}").resolve().name
            for d in Store(store).dates()
        },
    }


def assert_whole(store: Path) -> None:
    """latest.json names a published snapshot, and every published snapshot is complete."""
    latest = store / "latest.json"
    if latest.exists():
        data = json.loads(latest.read_text())
        assert (store / data["path"] / "manifest.json").is_file()
        assert data["snapshot_date"] == max(Store(store).dates()).isoformat()
    for day in Store(store).dates():
        folder = Store(store).snapshot_path(day)
        assert folder is not None, day
        manifest = json.loads((folder / "manifest.json").read_text())
        for output in manifest["outputs"]:
            if output["path"].endswith(".parquet"):
                files = output.get("files") or {output["path"]: None}
                rows = sum(pq.read_metadata(folder / rel).num_rows for rel in files)
                assert rows == output["rows"], output["path"]
        bodies = sorted(folder.glob("api/scenarios/*/analytics/summary.json"))
        (listed,) = [o for o in manifest["outputs"] if o["path"].startswith("api/")]
        assert len(bodies) == listed["rows"] > 0
        for body in bodies:
            assert "participant_count" in json.loads(body.read_text())


def assert_clean(store: Path) -> None:
    """No leftovers of failed or killed runs once a run has succeeded."""
    assert not list((store / ".staging").iterdir())
    assert not list(store.glob(".snapshot_date=*.link"))
    assert not list(store.glob(".latest.json.*.tmp"))
    live = {(store / f"snapshot_date={d.isoformat()}").resolve().name for d in Store(store).dates()}
    for version in (store / ".versions").iterdir():
        assert version.name in live or (version / ".replaced").exists(), version
    # The ledger: every part the catalog names is whole, and nothing else is left.
    if (store / LEDGER_NAME).exists():
        assert ledger_problems(store / LEDGER_NAME) == []


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    """A store with one published snapshot (2026-11-25), and its exports."""
    exports = write_exports(tmp_path)
    store = tmp_path / "store"
    result = run_cli(exports, store, "2026-11-25")
    assert result.exit_code == 0, result.stderr
    return exports, store


def assert_failed_cleanly(result: Result, reason: str, stdout: str = "") -> None:
    """Exit 1, the message; stdout holds nothing (a backfill: the days published before)."""
    assert result.exit_code == 1, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == stdout
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "error:" in x]
    assert line.startswith("scenario-analytics: error: ")
    assert reason in line, line
    assert " — " in line  # what happened — what to do next


# --- a full disk ------------------------------------------------------------------------

# Session partitions (written, not shared: see the test): the exports' first and last
# days (2026-11-01 and 2026-11-20).
FULL_DISK_FILES = [
    "summaries.parquet",
    "participants.parquet",
    "sessions/created_date=2026-11-01/part-0.parquet",
    "sessions/created_date=2026-11-20/part-0.parquet",
    "users.parquet",
    "rejects.parquet",
    f"api/scenarios/{ENCODED}/analytics/summary.json",
    "manifest.json",
]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("target", FULL_DISK_FILES)
def test_full_disk_while_writing_a_snapshot_file(
    published: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    """The file is a link to /dev/full, so writing it fails with a real ENOSPC."""
    exports, store = published
    as_of = "2026-11-25"  # a rebuild: the old snapshot of the date must stay
    before = state(store)
    new_staging = Store.new_staging

    def staging_on_a_full_disk(self: Store) -> Path:
        folder = new_staging(self)
        (folder / target).parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/dev/full", folder / target)
        return folder

    monkeypatch.setattr(Store, "new_staging", staging_on_a_full_disk)
    # A rebuild of unchanged data shares every partition with the published snapshot
    # (publish/sharing.py): written only where nothing can be shared.
    monkeypatch.setattr(Store, "sharing", lambda self, day: Sharing())
    result = run_cli(exports, store, as_of)
    assert_failed_cleanly(result, "No space left on device")
    assert Path(target).name in result.stderr
    assert state(store) == before
    assert_whole(store)
    monkeypatch.undo()
    again = run_cli(exports, store, as_of)
    assert again.exit_code == 0, again.stderr
    assert_whole(store)
    assert_clean(store)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_on_the_second_day_of_a_backfill(
    published: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The days before stay published (each is committed on its own), the failing day and
    the ones after are untouched, and the rerun resumes."""
    exports, store = published
    before = state(store)
    new_staging = Store.new_staging
    calls: list[Path] = []

    def second_day_on_a_full_disk(self: Store) -> Path:
        folder = new_staging(self)
        calls.append(folder)
        if len(calls) == 2:
            os.symlink("/dev/full", folder / "participants.parquet")
        return folder

    monkeypatch.setattr(Store, "new_staging", second_day_on_a_full_disk)
    args = ["backfill", "--exports", str(exports), "--snapshots", str(store)]
    result = CliRunner().invoke(main, [*args, "--from", "2026-11-24", "--to", "2026-11-26"])
    # Each day is printed as it is done: the failed backfill has told what it published.
    told = "".join(
        f"{day}\t{status}\t{store / f'snapshot_date={day}'}\n"
        for day, status in (("2026-11-24", "published"), ("2026-11-25", "skipped"))
    )
    assert_failed_cleanly(result, "No space left on device", stdout=told)
    after = state(store)
    assert after["latest"] == before["latest"]
    assert set(after["dates"]) == {"2026-11-24", "2026-11-25"}
    assert after["dates"]["2026-11-25"] == before["dates"]["2026-11-25"]
    assert_whole(store)
    monkeypatch.undo()
    again = CliRunner().invoke(main, [*args, "--from", "2026-11-24", "--to", "2026-11-26"])
    assert again.exit_code == 0, again.stderr
    assert again.stdout.splitlines()[0].split("\t")[:2] == ["2026-11-24", "skipped"]
    assert_whole(store)
    assert_clean(store)


def _failing(
    monkeypatch: pytest.MonkeyPatch, name: str, store: Path, error: int, when: Callable[..., bool]
) -> None:
    """Make `os.<name>` fail with `error` for calls about the store that `when` accepts."""
    original = getattr(os, name)

    def failing(*args: Any, **kwargs: Any) -> Any:
        paths = [str(a) for a in args if isinstance(a, str | os.PathLike)]
        if any(p.startswith(str(store)) for p in paths) and when(*paths):
            raise OSError(error, os.strerror(error), paths[-1])
        return original(*args, **kwargs)

    monkeypatch.setattr(os, name, failing)


PUBLISH_STEPS: dict[str, tuple[str, Callable[..., bool]]] = {
    # staging folder -> .versions/
    "move into .versions": ("rename", lambda src, dst: ".versions" in dst),
    # the new link, made under a temporary name
    "make the link": ("symlink", lambda *paths: True),
    # the new link renamed over snapshot_date=D
    "swap the link": ("replace", lambda src, dst: "snapshot_date=" in dst and "latest" not in dst),
    # latest.json written to a temporary file and renamed
    "replace latest.json": ("replace", lambda src, dst: dst.endswith("latest.json")),
}


@pytest.mark.parametrize("step", list(PUBLISH_STEPS))
@pytest.mark.parametrize(
    ("as_of", "error"),
    [("2026-11-25", errno.ENOSPC), ("2026-11-26", errno.EROFS)],
    ids=["rebuild-full-disk", "new-date-read-only"],
)
def test_failure_at_each_step_of_publishing(
    published: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, step: str, error: int, as_of: str
) -> None:
    exports, store = published
    before = state(store)
    name, when = PUBLISH_STEPS[step]
    _failing(monkeypatch, name, store, error, when)
    result = run_cli(exports, store, as_of)
    assert_failed_cleanly(result, os.strerror(error))
    assert state(store) == before
    assert_whole(store)
    monkeypatch.undo()
    again = run_cli(exports, store, as_of)
    assert again.exit_code == 0, again.stderr
    assert_whole(store)
    assert_clean(store)


def test_read_only_store_cannot_start_a_snapshot(
    published: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    exports, store = published
    before = state(store)
    _failing(monkeypatch, "mkdir", store, errno.EROFS, lambda path, *rest: ".staging" in path)
    result = run_cli(exports, store, "2026-11-26")
    assert_failed_cleanly(result, "Read-only file system")
    assert state(store) == before


def test_store_path_under_a_file(tmp_path: Path) -> None:
    exports = write_exports(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    result = run_cli(exports, tmp_path / "a-file" / "store", "2026-11-26")
    assert_failed_cleanly(result, "Not a directory")
    assert (tmp_path / "a-file").read_text() == "not a folder"


def test_store_path_that_is_a_file(tmp_path: Path) -> None:
    exports = write_exports(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    result = run_cli(exports, tmp_path / "a-file", "2026-11-26")
    assert result.exit_code in (1, 2)
    assert "Traceback" not in result.stderr
    assert (tmp_path / "a-file").read_text() == "not a folder"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("target", ["a part", "the catalog"])
def test_full_disk_under_the_ledger(
    published: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    """A full disk while the ledger is written (a new file's part, or the catalog): exit 1
    with the cause, no traceback, nothing visible changes; the ledger is the previous
    run's, and the next run parses the new file again and cleans up."""
    exports, store = published
    before = state(store)
    catalog = (store / LEDGER_NAME / CATALOG_NAME).read_bytes()
    # A new file: its staged rows must be written into the ledger.
    (exports / "sessions" / "b.jsonl").write_text(_session("new1", "u1", "2026-11-26") + "\n")
    temporary = files.temporary_name

    def on_dev_full(path: Path) -> Path:
        tmp = temporary(path)
        if (path.name == CATALOG_NAME) == (target == "the catalog"):
            tmp.symlink_to("/dev/full")
        return tmp

    # The parts' temporary names (ledger) and the catalog's (files.write_atomically).
    monkeypatch.setattr(ledger_module, "temporary_name", on_dev_full)
    monkeypatch.setattr(files, "temporary_name", on_dev_full)
    result = run_cli(exports, store, "2026-11-26")
    # The message names the cause: DuckDB's failed COPY, or Python's failed write.
    assert_failed_cleanly(result, "No space left on device")
    assert state(store) == before
    assert (store / LEDGER_NAME / CATALOG_NAME).read_bytes() == catalog
    monkeypatch.undo()
    again = CliRunner().invoke(
        main,
        ["run", "--exports", str(exports), "--snapshots", str(store), "--as-of", "2026-11-26",
         "--log-format", "json"],
    )  # fmt: skip
    assert again.exit_code == 0, again.stderr
    summary = json.loads(again.stderr.splitlines()[-1])
    assert (summary["files_read"], summary["files_skipped"]) == (1, 1)
    assert_whole(store)
    assert_clean(store)


# Writes past a size fail with EFBIG ("File too large") as they would with ENOSPC on a full
# disk: RLIMIT_FSIZE applies to every file the process writes, the ledger's own too (a
# small file system to fill is not available in tests).
LIMITED_WRITES = """
import resource, signal, sys
limit = int(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, not the process
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from scenario_analytics.cli import main
main(sys.argv[2:])
"""


def test_a_ledger_part_cut_short_is_never_used(published: tuple[Path, Path]) -> None:
    """A full disk half-way through a new part: the run fails (exit 1, the cause), the part
    never gets its name, the catalog stays the previous run's; the next run parses the
    file again and publishes what a run from scratch gives."""
    exports, store = published
    # Its part (~10 kB) is the first file past the limit the run writes.
    lines = [_session(f"n{i}", f"u{i % 300}", "2026-11-26") for i in range(2000)]
    (exports / "sessions" / "b.jsonl").write_text("\n".join(lines) + "\n")
    before = state(store)
    catalog = (store / LEDGER_NAME / CATALOG_NAME).read_bytes()
    args = ["run", "--exports", str(exports), "--snapshots", str(store), "--as-of", "2026-11-26"]
    done = subprocess.run(
        [sys.executable, "-c", LIMITED_WRITES, "4096", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "File too large" in done.stderr.splitlines()[-1]
    assert "/.ledger/staged_sessions/" in done.stderr.splitlines()[-1]
    assert state(store) == before
    assert (store / LEDGER_NAME / CATALOG_NAME).read_bytes() == catalog
    again = CliRunner().invoke(main, [*args, "--log-format", "json"])
    assert again.exit_code == 0, again.stderr
    summary = json.loads(again.stderr.splitlines()[-1])
    assert (summary["files_read"], summary["files_skipped"]) == (1, 1)
    reference = store.parent / "reference"  # the same exports, a store never failed
    assert run_cli(exports, reference, "2026-11-26").exit_code == 0
    assert snapshot_content(store / "snapshot_date=2026-11-26") == snapshot_content(
        reference / "snapshot_date=2026-11-26"
    )
    assert_whole(store)
    assert_clean(store)


KILL_BEFORE_LATEST = """
import os, signal, sys
from scenario_analytics.publish import store
from scenario_analytics.cli import main

write = store.write_atomically

def killed_before_latest(path, data):
    if path.name == "latest.json":
        os.kill(os.getpid(), signal.SIGKILL)
    write(path, data)

store.write_atomically = killed_before_latest
main(sys.argv[1:])
"""


def test_killed_between_the_link_and_latest_json(published: tuple[Path, Path]) -> None:
    """The link's rename is the commit point: killed right after it, the new snapshot is
    published and whole, latest.json still names a whole one, and the next run (even one
    for an older date) makes latest.json name the newest date."""
    exports, store = published
    before = (store / "latest.json").read_bytes()
    killed = subprocess.run(
        [sys.executable, "-c", KILL_BEFORE_LATEST, "run", "--exports", str(exports),
         "--snapshots", str(store), "--as-of", "2026-11-26"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (store / "latest.json").read_bytes() == before
    assert [d.isoformat() for d in Store(store).dates()] == ["2026-11-25", "2026-11-26"]
    older = run_cli(exports, store, "2026-11-24")
    assert older.exit_code == 0, older.stderr
    assert json.loads((store / "latest.json").read_text())["snapshot_date"] == "2026-11-26"
    assert_whole(store)
    assert_clean(store)


# --- two runs at once --------------------------------------------------------------------

HOLD_LOCK = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from scenario_analytics.publish.store import Store\n"
    "with Store(Path(sys.argv[1])).lock():\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(120)\n"
)


def _cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "scenario_analytics", *map(str, args)]


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the store's lock (the way a long run does)."""
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(store)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_run_exits_5_at_once_naming_the_holder(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    exports = write_exports(tmp_path)
    store = tmp_path / "store"
    started = time.monotonic()
    second = subprocess.run(
        _cli("run", "--exports", exports, "--snapshots", store, "--as-of", "2026-11-26"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 5, second.stderr
    assert time.monotonic() - started < 15  # interpreter start-up; no waiting on the lock
    assert second.stdout == ""
    assert f"in use by pid {holder.pid} on " in second.stderr
    assert "safe to retry" in second.stderr
    assert "Traceback" not in second.stderr
    assert not (store / "latest.json").exists()
    # The holder dies without releasing anything: the kernel drops the lock.
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    third = subprocess.run(
        _cli("run", "--exports", exports, "--snapshots", store, "--as-of", "2026-11-26"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert third.returncode == 0, third.stderr
    assert_whole(store)


def _big_exports(root: Path, sessions: int) -> Path:
    exports = root / "big-exports"
    (exports / "sessions").mkdir(parents=True)
    duckdb.execute(
        f"""COPY (
            SELECT 's' || i AS id, {{'id': 'u' || (i % 3000)}} AS user,
                   {{'id': 'sc' || (i % 30)}} AS scenario, (i * 37 % 10001) / 100.0 AS score,
                   60 + i % 900 AS duration_seconds, true AS is_valid_attempt,
                   strftime(TIMESTAMP '2026-01-01' + to_seconds(i * 17), '%Y-%m-%dT%H:%M:%SZ')
                       AS created_at
            FROM range({sessions}) t(i)
        ) TO '{exports / "sessions" / "part.jsonl"}' (FORMAT JSON)"""
    )
    return exports


@pytest.mark.slow
def test_two_real_runs_on_one_store(tmp_path: Path) -> None:
    """A real run holds the store; a second real run exits 5 while it works; after the
    first is killed mid-run, a third run succeeds and cleans up."""
    exports = _big_exports(tmp_path, 200_000)
    store = tmp_path / "store"
    first = subprocess.Popen(
        _cli("run", "--exports", exports, "--snapshots", store, "--as-of", "2026-11-26"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lock = store / ".lock"
        deadline = time.monotonic() + 60
        while f"pid {first.pid} " not in (lock.read_text() if lock.exists() else ""):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = subprocess.run(
            _cli("run", "--exports", exports, "--snapshots", store, "--as-of", "2026-11-27"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode == 5, second.stderr
        assert f"in use by pid {first.pid} " in second.stderr
    finally:
        first.kill()
        first.wait()
    third = subprocess.run(
        _cli("run", "--exports", exports, "--snapshots", store, "--as-of", "2026-11-26"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert third.returncode == 0, third.stderr
    assert_clean(store)


# --- a reader while runs publish ----------------------------------------------------------


class Reader(threading.Thread):
    """Loops the way a consumer does: latest.json, then the snapshot it names, resolved
    once (so one version is read throughout), then every file the manifest lists."""

    def __init__(self, store: Path) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.reads = 0
        self.versions: set[str] = set()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.read_once()
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def read_once(self) -> None:
        latest = self.store / "latest.json"
        if not latest.exists():
            return
        pointer = json.loads(latest.read_bytes())
        folder = (self.store / pointer["path"]).resolve(strict=True)
        self.versions.add(folder.name)
        manifest = json.loads((folder / "manifest.json").read_bytes())
        assert manifest["snapshot_date"] == pointer["snapshot_date"]
        for output in manifest["outputs"]:
            if output["path"].endswith(".parquet"):
                files = output.get("files") or {output["path"]: None}
                rows = sum(pq.read_table(folder / rel).num_rows for rel in files)
                assert rows == output["rows"], output
        body = folder / "api" / "scenarios" / ENCODED / "analytics" / "summary.json"
        assert json.loads(body.read_bytes())["participant_count"] > 0
        summaries = pq.read_table(folder / "summaries.parquet").to_pylist()
        assert {r["body"] for r in summaries if r["request_key"] == ""} == {body.read_text()}
        self.reads += 1


def test_reader_never_sees_a_missing_or_partial_file(tmp_path: Path) -> None:
    exports = write_exports(tmp_path, sessions=300)
    store = tmp_path / "store"
    assert run_cli(exports, store, "2026-11-20").exit_code == 0
    reader = Reader(store)
    reader.start()
    try:
        # Rebuilds of the same date (the link is swapped) and newer dates (latest moves).
        for day in ("2026-11-20", "2026-11-21", "2026-11-21", "2026-11-22", "2026-11-20"):
            done = run_cli(exports, store, day)
            assert done.exit_code == 0, done.stderr
            time.sleep(0.1)  # let the reader read each version at least once
    finally:
        reader.stop.set()
        reader.join(timeout=30)
    assert reader.errors == []
    assert reader.reads >= 5
    assert len(reader.versions) >= 4
    assert json.loads((store / "latest.json").read_text())["snapshot_date"] == "2026-11-22"
