"""Writes that fail, and runs and readers at the same time on one store.

- A write that fails (a full disk: a real ENOSPC from /dev/full; a read-only store,
  simulated by failing the file-system call, since root ignores permission bits) gives
  exit 1 and a clear message, and nothing visible changes: `latest.json`, the published
  dates and the versions their commit records name are as before. The next run succeeds
  and cleans up after the failed one.
- Two runs on one store: the second exits 5 at once, naming the holder of the lease; the
  lease a killed process left never blocks the next run on the same host.
- A reader looping over `latest.json` and the files of the version it names while runs
  publish never sees a missing, partial or other version's file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from helpers_ops import snapshot_content, snapshot_files

from scenario_analytics import files
from scenario_analytics.cli import main
from scenario_analytics.faults import KILL_AT
from scenario_analytics.ingest import ledger as ledger_module
from scenario_analytics.ingest.ledger import CATALOG_NAME, LEDGER_NAME, ledger_problems
from scenario_analytics.publish.records import Retired
from scenario_analytics.publish.sharing import Sharing
from scenario_analytics.publish.store import Build, Store
from scenario_analytics.storage import StorageError

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
    """What a reader can see: latest.json's bytes, and the version each published date's
    commit record names (its build and its manifest's sha256)."""
    latest = store / "latest.json"
    lib = Store(store)
    return {
        "latest": latest.read_bytes() if latest.exists() else None,
        "dates": {
            d.isoformat(): (found[0].build, found[0].manifest_sha256)
            for d in lib.dates()
            if (found := lib.record(d)) is not None
        },
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_whole(store: Path, *, latest_is_newest: bool = True) -> None:
    """latest.json names a published snapshot (the newest one, unless a run was stopped
    between its commit and latest.json: `latest_is_newest=False`), and every published
    snapshot is complete: each file its manifest lists, read where its commit record says
    (session partitions from .objects/), has the manifest's sha256 and rows; once the
    record says its files are in place, its date's folder has them all."""
    lib = Store(store)
    dates = lib.dates()
    latest = store / "latest.json"
    if latest.exists():
        data = json.loads(latest.read_text())
        assert data["path"] == f"snapshot_date={data['snapshot_date']}"
        assert lib.version(date.fromisoformat(data["snapshot_date"])) is not None
        if latest_is_newest:
            assert data["snapshot_date"] == max(dates).isoformat()
    for day in dates:
        version = lib.version(day)
        assert version is not None, day
        folder = store / f"snapshot_date={day.isoformat()}"
        found = snapshot_files(folder)
        assert set(found) == set(version.files()), day
        for rel, sha256 in version.files().items():
            assert sha256 is None or _sha256(found[rel]) == sha256, (day, rel)
        manifest = json.loads(found["manifest.json"].read_text())
        for output in manifest["outputs"]:
            if output["path"].endswith(".parquet"):
                listed = output.get("files") or {output["path"]: None}
                rows = sum(pq.read_metadata(found[rel]).num_rows for rel in listed)
                assert rows == output["rows"], output["path"]
        bodies = [r for r in found if r.startswith("api/scenarios/")]
        (listed,) = [o for o in manifest["outputs"] if o["path"].startswith("api/")]
        assert len(bodies) == listed["rows"] > 0
        for rel in bodies:
            assert "participant_count" in json.loads(found[rel].read_text())
        if version.record.in_place:  # what warehouses read, globbing the folders
            for rel, sha256 in version.files().items():
                if not rel.startswith("sessions/"):
                    assert _sha256(folder / rel) == sha256, (day, rel)


def assert_clean(store: Path) -> None:
    """No leftovers of failed or killed runs once a run has succeeded: `snapshots verify`
    finds the store whole (every published version in place, or a rebuild waiting in
    .staging for the version it replaced to be past its grace period; nothing left over);
    no lease, no scratch folder or temporary file; nothing in .staging, .objects or a
    date's folder that neither a published version nor a version retired for its readers
    (`.retired/`) names."""
    lib = Store(store)
    assert not (store / ".lease.json").exists()
    assert not (store / ".scratch").exists() or not list((store / ".scratch").iterdir())
    assert not list(store.rglob(".*.tmp"))
    assert [str(p) for p in lib.verify().problems] == []
    live: set[str] = set()
    for day in lib.dates():
        version = lib.version(day)
        assert version is not None, day
        live |= set(version.keys().values())
    kept: set[str] = set()
    for path in store.glob(".retired/*.json"):
        entry = Retired.from_bytes(path.read_bytes())
        assert entry is not None, path
        kept |= {*entry.keys, *entry.objects}
    for path in store.rglob("*"):
        key = path.relative_to(store).as_posix()
        if path.is_file() and key.startswith((".staging/", ".objects/", "snapshot_date=")):
            assert key in live or key in kept, key
    # The ledger: every part the catalog names is whole, and nothing else is left.
    if (store / LEDGER_NAME).exists():
        assert ledger_problems(lib.storage) == []


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    """A store with one published snapshot (2026-11-25), and its exports."""
    exports = write_exports(tmp_path)
    store = tmp_path / "store"
    result = run_cli(exports, store, "2026-11-25")
    assert result.exit_code == 0, result.stderr
    return exports, store


def assert_failed_cleanly(result: Result, reason: str, stdout: str = "", code: int = 1) -> None:
    """Exit 1 (or `code`), the message; stdout holds nothing (a backfill: the days
    published before)."""
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == stdout
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "error:" in x]
    assert line.startswith("scenario-analytics: error: ")
    assert reason in line, line
    assert " — " in line  # what happened — what to do next


def _on_a_full_disk(monkeypatch: pytest.MonkeyPatch, target: str, nth: int = 1) -> None:
    """The `nth` version begun gets `target` (a path in it) as a link to /dev/full."""
    begin = Store.begin
    builds: list[Build] = []

    def begin_on_a_full_disk(self: Store, day: date) -> Build:
        build = begin(self, day)
        builds.append(build)
        if len(builds) == nth:
            (build.folder / target).parent.mkdir(parents=True, exist_ok=True)
            os.symlink("/dev/full", build.folder / target)
        return build

    monkeypatch.setattr(Store, "begin", begin_on_a_full_disk)


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
    _on_a_full_disk(monkeypatch, target)
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
    _on_a_full_disk(monkeypatch, "participants.parquet", nth=2)
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


def _nth_write(name: str, n: int) -> Callable[..., bool]:
    """Accepts the `n`-th call whose target (the last path) ends with `name`."""
    seen = [0]

    def when(*paths: str) -> bool:
        if not paths[-1].endswith(name):
            return False
        seen[0] += 1
        return seen[0] == n

    return when


# Each step of publishing (`Store.publish`), by the file-system calls that do it on local
# disk (`storage/local.py`): (calls, which of them fail, the commit point passed).
PUBLISH_STEPS: dict[str, tuple[tuple[str, ...], Callable[[str], Callable[..., bool]]]] = {
    # the new version's files renamed into .staging/<build>/ and .objects/ (uploads)
    "upload": (("replace",), lambda day: lambda *p: "/.staging/" in p[-1] or "/.objects/" in p[-1]),
    # .commits/<date>.json written: created (a new date) or replaced (a rebuild)
    "commit": (("link", "replace"), lambda day: _nth_write(f"/.commits/{day}.json", 1)),
    # a file copied into snapshot_date=<date>/ (a temporary link renamed over the file)
    "copy in place": (("replace",), lambda day: lambda *p: "/snapshot_date=" in p[-1]),
    # .commits/<date>.json replaced again, naming the date's folder
    "re-commit": (("link", "replace"), lambda day: _nth_write(f"/.commits/{day}.json", 2)),
    # latest.json replaced (a temporary file renamed over it)
    "latest.json": (("replace",), lambda day: lambda *p: p[-1].endswith("/latest.json")),
}
# A rebuild's run uploads and commits it; its files move into the date's folder (the copy
# and the re-commit) after the grace period of the version it replaced (`clean_up`: the
# next test), and latest.json, naming the date already, is left alone.
REBUILD_STEPS = ["upload", "commit"]


@pytest.mark.parametrize(
    ("step", "as_of", "error"),
    [(s, "2026-11-26", errno.EROFS) for s in PUBLISH_STEPS]
    + [(s, "2026-11-25", errno.ENOSPC) for s in REBUILD_STEPS],
    ids=[f"new-date-read-only-{s}" for s in PUBLISH_STEPS]
    + [f"rebuild-full-disk-{s}" for s in REBUILD_STEPS],
)
def test_failure_at_each_step_of_publishing(
    published: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, step: str, error: int, as_of: str
) -> None:
    """Exit 1 with the cause, and nothing visible changes: a new date whose publishing
    fails after its commit (its files not all in place, its record or latest.json not
    written) is taken back. The next run succeeds and cleans up."""
    exports, store = published
    before = state(store)
    names, when = PUBLISH_STEPS[step]
    accept = when(as_of)
    for name in names:
        _failing(monkeypatch, name, store, error, accept)
    result = run_cli(exports, store, as_of)
    assert_failed_cleanly(result, os.strerror(error))
    assert state(store) == before
    assert_whole(store)
    monkeypatch.undo()
    again = run_cli(exports, store, as_of)
    assert again.exit_code == 0, again.stderr
    assert_whole(store)
    assert_clean(store)


@pytest.mark.parametrize("step", ["copy in place", "re-commit"])
def test_failure_moving_a_rebuild_in_place(
    published: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """A rebuild is read from .staging until the version it replaced is past its grace
    period; then `clean_up` copies its files into the date's folder and re-commits it
    there. If that fails (a read-only file system), the error says so, the rebuild stays
    published, read where its record says, latest.json is as it was; the next clean-up
    moves it."""
    exports, store = published
    day = date(2026, 11, 25)
    assert run_cli(exports, store, day.isoformat()).exit_code == 0  # the rebuild
    rebuilt = state(store)
    found = Store(store).record(day)
    assert found is not None and not found[0].in_place  # its folder is the old version's
    names, when = PUBLISH_STEPS[step]
    # Here the re-commit is the first write of the record.
    accept = _nth_write(f"/.commits/{day}.json", 1) if step == "re-commit" else when(str(day))
    for name in names:
        _failing(monkeypatch, name, store, errno.EROFS, accept)
    lib = Store(store)
    with pytest.raises(StorageError, match="Read-only file system"), lib.lock():
        lib.clean_up(grace_seconds=0)
    monkeypatch.undo()
    assert state(store) == rebuilt
    assert_whole(store)
    with lib.lock():
        assert f"snapshot_date={day}: moved its files in place" in lib.clean_up(grace_seconds=0)
    found = Store(store).record(day)
    assert found is not None and found[0].in_place
    assert state(store) == rebuilt  # the same version, now read from its folder
    assert_whole(store)
    assert_clean(store)


def test_read_only_store_cannot_start_a_snapshot(
    published: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local folder a new version is written in (`.scratch/`, in the store) cannot
    be made."""
    exports, store = published
    before = state(store)
    _failing(monkeypatch, "mkdir", store, errno.EROFS, lambda path, *rest: ".scratch" in path)
    result = run_cli(exports, store, "2026-11-26")
    assert_failed_cleanly(result, "Read-only file system")
    assert ".scratch" in result.stderr
    assert state(store) == before


def test_store_path_under_a_file(tmp_path: Path) -> None:
    exports = write_exports(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    result = run_cli(exports, tmp_path / "a-file" / "store", "2026-11-26")
    # A usage error, found before any work (the store's location is checked first).
    assert_failed_cleanly(result, f"{tmp_path / 'a-file'} is not a folder", code=2)
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
    if target == "a part":
        # A part is written (DuckDB's COPY) into a local folder, then uploaded.
        write_part = ledger_module._write_part

        def part_on_dev_full(con: Any, folder: Path, entry: Any, table: str, file_id: int) -> Any:
            final = folder / entry.part_path(ledger_module.Part(table, 0, 0, ""))
            final.parent.mkdir(parents=True, exist_ok=True)
            final.symlink_to("/dev/full")
            return write_part(con, folder, entry, table, file_id)

        monkeypatch.setattr(ledger_module, "_write_part", part_on_dev_full)
    else:
        temporary = files.temporary_name

        def catalog_on_dev_full(path: Path) -> Path:
            tmp = temporary(path)
            if path.name == CATALOG_NAME:
                tmp.symlink_to("/dev/full")
            return tmp

        # The catalog's temporary name (`files.write_atomically`, under `Storage.write`).
        monkeypatch.setattr(files, "temporary_name", catalog_on_dev_full)
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
    # The part is written in a local folder (in the store's `.scratch/`), then uploaded
    # into the ledger: cut short, it never reaches it.
    assert "/.scratch/ledger-" in done.stderr.splitlines()[-1]
    assert "/staged_sessions/" in done.stderr.splitlines()[-1]
    assert state(store) == before
    assert (store / LEDGER_NAME / CATALOG_NAME).read_bytes() == catalog
    assert ledger_problems(Store(store).storage) == []  # no part the catalog does not name
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


@pytest.mark.parametrize("stage", ["committed", "moved"])
def test_killed_between_the_commit_and_latest_json(
    published: tuple[Path, Path], stage: str
) -> None:
    """The commit record is the commit point: killed right after it (its files still in
    .staging, or moved in place), the new snapshot is published and whole, latest.json
    still names a whole one, and the next run (even one for an older date) moves it in
    place if need be and makes latest.json name the newest date."""
    exports, store = published
    before = (store / "latest.json").read_bytes()
    killed = subprocess.run(
        [sys.executable, "-m", "scenario_analytics", "run", "--exports", str(exports),
         "--snapshots", str(store), "--as-of", "2026-11-26"],
        capture_output=True, text=True, timeout=120, env={**os.environ, KILL_AT: stage},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (store / "latest.json").read_bytes() == before
    assert [d.isoformat() for d in Store(store).dates()] == ["2026-11-25", "2026-11-26"]
    found = Store(store).record(date(2026, 11, 26))
    assert found is not None and found[0].in_place == (stage == "moved")
    assert_whole(store, latest_is_newest=False)
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
    # The holder dies without releasing anything: its lease stays, naming a pid that no
    # longer runs on this host, and the next run takes it over at once.
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert f"pid {holder.pid} on " in (Store(store).holder() or "")
    assert not Store(store).is_locked()
    third = subprocess.run(
        _cli("run", "--exports", exports, "--snapshots", store, "--as-of", "2026-11-26"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert third.returncode == 0, third.stderr
    assert_whole(store)
    assert_clean(store)


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
        deadline = time.monotonic() + 60
        while f"pid {first.pid} " not in (Store(store).holder() or ""):
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
    """Loops the way a consumer of the store does (`query`, `serve`): latest.json, then the
    version of the date it names, read once (its commit record and manifest, so that one
    version is read throughout), then every file the manifest lists, checked against its
    sha256: no missing, partial or other version's file."""

    def __init__(self, store: Path) -> None:
        super().__init__(daemon=True)
        self.store = Store(store)
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
        pointer = self.store.latest_file()
        if pointer is None:
            return
        version = self.store.version(pointer.snapshot_date)
        assert version is not None, f"latest.json names {pointer.snapshot_date}, not readable"
        self.versions.add(version.record.build)
        found = {rel: self.store.fetch(version, rel, verify=True) for rel in version.files()}
        manifest = json.loads(found["manifest.json"].read_bytes())
        assert manifest["snapshot_date"] == pointer.snapshot_date.isoformat()
        for output in manifest["outputs"]:
            if output["path"].endswith(".parquet"):
                listed = output.get("files") or {output["path"]: None}
                rows = sum(pq.read_table(found[rel]).num_rows for rel in listed)
                assert rows == output["rows"], output
        body = found[f"api/scenarios/{ENCODED}/analytics/summary.json"]
        assert json.loads(body.read_bytes())["participant_count"] > 0
        summaries = pq.read_table(found["summaries.parquet"]).to_pylist()
        assert {r["body"] for r in summaries if r["request_key"] == ""} == {body.read_text()}
        self.reads += 1


def test_reader_never_sees_a_missing_or_partial_file(tmp_path: Path) -> None:
    exports = write_exports(tmp_path, sessions=300)
    store = tmp_path / "store"
    assert run_cli(exports, store, "2026-11-20").exit_code == 0
    reader = Reader(store)
    reader.start()
    try:
        # Rebuilds of the same date (a new commit record) and newer dates (latest moves).
        for day in ("2026-11-20", "2026-11-21", "2026-11-21", "2026-11-22", "2026-11-20"):
            done = run_cli(exports, store, day)
            assert done.exit_code == 0, done.stderr
            time.sleep(0.1)  # let the reader read each version at least once
        # The rebuilds' files move in place once the versions they replaced are past
        # their grace period (here at once), while the reader reads.
        lib = Store(store)
        with lib.lock():
            assert len([r for r in lib.clean_up(grace_seconds=0) if "moved" in r]) == 2
        time.sleep(0.2)
    finally:
        reader.stop.set()
        reader.join(timeout=30)
    assert reader.errors == []
    assert reader.reads >= 5
    assert len(reader.versions) >= 4
    assert json.loads((store / "latest.json").read_text())["snapshot_date"] == "2026-11-22"
