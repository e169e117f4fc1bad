"""SIGINT and SIGTERM: `run`, `backfill` and `validate` stop at once and cleanly.

Real signals to real processes: the test-only pause hook (`faults.py`,
SCENARIO_ANALYTICS_PAUSE_AT) makes the process write `paused at <stage>` and sleep at a
stage boundary; the test waits for that line and sends the signal. After each:

- exit 130 (SIGINT) or 143 (SIGTERM), well before the pause would have ended;
- one error line naming the stage and what was published, no traceback, and never
  `cannot read export file` (DuckDB and pyarrow report a signal as their own error);
- the store whole: no upload of the stopped build left in `.staging` (only builds that
  a published or retired version names are there), nothing visible changed
  (`latest.json`, the published versions) unless a backfill had published days before;
- the lock released: the next run succeeds at once;
- with `--log-format json`, a last event `summary` of status `interrupted`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers_ops import base_exports, cli, snapshot_files

from scenario_analytics import interrupts
from scenario_analytics.engine.database import connect
from scenario_analytics.errors import Interrupted
from scenario_analytics.faults import PAUSE_AT, PAUSE_SECONDS
from scenario_analytics.ingest.discover import discover
from scenario_analytics.ingest.ledger import ledger_problems
from scenario_analytics.ingest.loader import Loader
from scenario_analytics.ingest.readers.jsonl import JsonLinesReader
from scenario_analytics.pipeline.staging import fetch_export
from scenario_analytics.publish.store import Store
from scenario_analytics.storage.local import SCRATCH

RATIO = ("--max-reject-ratio", "0.5")  # base_exports rejects 3 of 9 session rows
BEFORE, NEW = "2026-11-25", "2026-11-26"
PROMPT = 10.0  # seconds from the signal to the exit, at most (the pause lasts 30)
NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


def state(store: Path) -> dict[str, Any]:
    """What a reader can see: latest.json's bytes, and each published date's version
    (the build its commit record names, and its manifest's sha256)."""
    latest = store / "latest.json"
    found = Store(store)
    dates = {}
    for day in found.dates():
        record = found.record(day)
        assert record is not None, day
        dates[day.isoformat()] = (record[0].build, record[0].manifest_sha256)
    return {"latest": latest.read_bytes() if latest.exists() else None, "dates": dates}


def assert_whole(store: Path) -> None:
    """latest.json names a published snapshot, and every published snapshot is complete
    (read through the store: its session partitions are shared, in `.objects/`)."""
    found = Store(store)
    dates = found.dates()
    latest = store / "latest.json"
    if latest.exists():
        data = json.loads(latest.read_text())
        assert (store / data["path"] / "manifest.json").is_file()
        assert data["snapshot_date"] == max(dates).isoformat()
    for day in dates:
        files = snapshot_files(store / f"snapshot_date={day.isoformat()}")
        manifest = json.loads(files["manifest.json"].read_text())
        for output in manifest["outputs"]:
            if output["path"].endswith(".parquet"):
                listed = output.get("files") or {output["path"]: None}
                rows = sum(pq.read_metadata(files[rel]).num_rows for rel in listed)
                assert rows == output["rows"], output["path"]
        bodies = [
            path for rel, path in files.items()
            if rel.startswith("api/scenarios/") and rel.endswith("/analytics/summary.json")
        ]  # fmt: skip
        (api,) = [o for o in manifest["outputs"] if o["path"].startswith("api/")]
        assert len(bodies) == api["rows"] > 0
        for body in bodies:
            assert "participant_count" in json.loads(body.read_text())


def staged_leftovers(store: Path) -> list[str]:
    """Uploads in `.staging` that no published or retired version names: what a stopped
    build left (`snapshots verify` names them as left over, once no run holds the store:
    the stopped one let go of it)."""
    found = Store(store)
    assert not found.is_locked()
    return [
        p.what
        for p in found.verify().problems
        if p.what.startswith(".staging/") and "left over" in p.what
    ]


def assert_clean(store: Path) -> None:
    """No leftovers of stopped or killed runs once a run has succeeded: `snapshots verify`
    finds nothing wrong (uploads never committed, files of no published version, a
    latest.json out of step), the ledger names whole parts only, no scratch folder."""
    verification = Store(store).verify()
    assert verification.whole, [str(p) for p in verification.problems]
    assert ledger_problems(Store(store).storage) == []
    assert not [p for p in (store / SCRATCH).rglob("*") if p.is_file()]


class Stopped:
    """A command that was paused, signalled and has exited."""

    def __init__(self, returncode: int, stdout: str, stderr: str, seconds: float) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds  # from the signal to the exit

    @property
    def error(self) -> str:
        (line,) = [x for x in self.stderr.splitlines() if "error:" in x]
        return line

    def events(self) -> list[dict[str, object]]:
        lines = [x for x in self.stderr.splitlines() if not x.startswith("paused at ")]
        return [json.loads(x) for x in lines]


def _stop(stage: str, signum: int, *args: str | Path) -> Stopped:
    """Start the command paused at `stage`, send `signum` there, wait for the exit."""
    command = [sys.executable, "-m", "scenario_analytics", *map(str, args)]
    env = {**os.environ, PAUSE_AT: stage}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    watchdog = threading.Timer(120, proc.kill)  # a test that goes wrong must not hang
    watchdog.start()
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("paused at "):
                break
        else:
            raise AssertionError(f"never paused at {stage}: {''.join(seen)[-3000:]}")
        proc.send_signal(signum)
        sent = time.monotonic()
        stdout, rest = proc.communicate(timeout=60)
        seconds = time.monotonic() - sent
    finally:
        watchdog.cancel()
        proc.kill()
    return Stopped(proc.returncode, stdout, "".join(seen) + rest, seconds)


def _assert_stopped_cleanly(stopped: Stopped, signum: int) -> None:
    assert stopped.returncode == 128 + signum, (stopped.returncode, stopped.stderr[-3000:])
    assert stopped.seconds < PROMPT < PAUSE_SECONDS, stopped.seconds
    assert "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
    assert "cannot read export file" not in stopped.stderr


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    """A store with the snapshot of BEFORE, and its exports."""
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    result = cli("run", "--exports", str(exports), "--snapshots", str(store), "--as-of", BEFORE,
                 *RATIO)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return exports, store


RUN_PAUSES = [
    ("loaded", signal.SIGINT, "after load"),
    ("staged", signal.SIGTERM, "after staging"),
    ("built", signal.SIGINT, f"after build ({NEW})"),
    ("written", signal.SIGTERM, f"after write ({NEW})"),
]


@pytest.mark.parametrize(("stage", "signum", "where"), RUN_PAUSES, ids=[p[0] for p in RUN_PAUSES])
def test_run_interrupted_at_a_stage_publishes_nothing(
    published: tuple[Path, Path], stage: str, signum: int, where: str
) -> None:
    exports, store = published
    before = state(store)
    args = ["run", "--exports", exports, "--snapshots", store, "--as-of", NEW, *RATIO]
    stopped = _stop(stage, signum, *args)
    _assert_stopped_cleanly(stopped, signum)
    assert stopped.error == (
        f"scenario-analytics: error: interrupted ({NAMES[signum]}) {where}; nothing was "
        "published — run again"
    )
    assert stopped.stdout == ""
    assert state(store) == before  # latest.json and every published version as they were
    assert staged_leftovers(store) == []
    assert_whole(store)
    again = cli(*map(str, args))  # the lock was released: the next run goes at once
    assert again.exit_code == 0, again.stderr
    assert_whole(store)
    assert_clean(store)


def test_run_interrupted_ends_its_json_log_with_an_interrupted_summary(
    published: tuple[Path, Path],
) -> None:
    exports, store = published
    args = ["run", "--exports", exports, "--snapshots", store, "--as-of", NEW, *RATIO]
    stopped = _stop("written", signal.SIGTERM, *args, "--log-format", "json")
    _assert_stopped_cleanly(stopped, signal.SIGTERM)
    events = stopped.events()  # every line is JSON: the error is in the summary
    last = events[-1]
    assert (last["event"], last["stage"], last["status"]) == ("summary", "run", "interrupted")
    assert (last["signal"], last["exit_code"]) == ("SIGTERM", 143)
    assert last["interrupted_stage"] == "write" and last["published"] == []
    assert last["error"] == (
        f"interrupted (SIGTERM) after write ({NEW}); nothing was published — run again"
    )
    assert stopped.stdout == ""
    assert staged_leftovers(store) == []


def test_backfill_interrupted_says_which_days_it_published(published: tuple[Path, Path]) -> None:
    exports, store = published
    days = ["2026-11-21", "2026-11-22", "2026-11-23"]
    args = ["backfill", "--exports", exports, "--snapshots", store, "--from", days[0],
            "--to", days[-1], *RATIO]  # fmt: skip
    before = state(store)
    stopped = _stop("day-published:2", signal.SIGTERM, *args)
    _assert_stopped_cleanly(stopped, signal.SIGTERM)
    assert stopped.error == (
        f"scenario-analytics: error: interrupted (SIGTERM) after publish ({days[1]}); "
        f"published {days[0]}, {days[1]} before it — run again to build the rest"
    )
    # Each day's line was printed as the day was published.
    assert [line.split("\t")[:2] for line in stopped.stdout.splitlines()] == [
        [days[0], "published"],
        [days[1], "published"],
    ]
    after = state(store)
    assert after["latest"] == before["latest"]  # BEFORE stays the newest date
    assert sorted(after["dates"]) == [days[0], days[1], BEFORE]
    assert staged_leftovers(store) == []
    assert_whole(store)
    again = cli(*map(str, args))
    assert again.exit_code == 0, again.stderr
    assert [line.split("\t")[1] for line in again.stdout.splitlines()] == [
        "skipped",
        "skipped",
        "published",
    ]
    assert_clean(store)


def test_run_interrupted_while_restating_says_what_it_published(tmp_path: Path) -> None:
    """A run publishes its own day, then restates the stale days before it: stopped after
    the first restated day, it names both, and the next run restates the rest."""
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    days = ["2026-11-23", "2026-11-24", BEFORE]
    backfill = cli("backfill", "--exports", str(exports), "--snapshots", str(store),
                   "--from", days[0], "--to", days[-1], *RATIO)  # fmt: skip
    assert backfill.exit_code == 0, backfill.stderr
    late = '{"id": "late", "user": {"id": "u1"}, "scenario": {"id": "sc1"}, "score": 70, '
    late += '"is_valid_attempt": true, "created_at": "2026-11-23T10:00:00Z"}\n'
    (exports / "sessions" / "z-late.jsonl").write_text(late)
    args = ["run", "--exports", exports, "--snapshots", store, "--as-of", NEW, *RATIO,
            "--restate-days", "5"]  # fmt: skip
    stopped = _stop("day-published", signal.SIGTERM, *args)
    _assert_stopped_cleanly(stopped, signal.SIGTERM)
    assert stopped.error == (
        f"scenario-analytics: error: interrupted (SIGTERM) while restate ({days[0]}); "
        f"published {NEW}, {days[0]} before it — run again"
    )
    assert json.loads(state(store)["latest"])["snapshot_date"] == NEW
    assert staged_leftovers(store) == []
    assert_whole(store)
    again = cli("run", "--exports", str(exports), "--snapshots", str(store), "--as-of", NEW,
                *RATIO, "--restate-days", "5", "--log-format", "json")  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert [r["snapshot_date"] for r in json.loads(again.stdout)["restated"]] == days[1:]
    assert_clean(store)


def test_backfill_interrupted_in_json(published: tuple[Path, Path]) -> None:
    exports, store = published
    args = ["backfill", "--exports", exports, "--snapshots", store, "--from", "2026-11-21",
            "--to", "2026-11-23", *RATIO, "--log-format", "json"]  # fmt: skip
    stopped = _stop("day-published", signal.SIGINT, *args)
    _assert_stopped_cleanly(stopped, signal.SIGINT)
    last = stopped.events()[-1]
    assert (last["stage"], last["status"], last["signal"]) == ("backfill", "interrupted", "SIGINT")
    assert last["published"] == ["2026-11-21"] and last["exit_code"] == 130
    assert [json.loads(line) for line in stopped.stdout.splitlines()] == [
        {
            "status": "published",
            "snapshot_date": "2026-11-21",
            "path": str(store / "snapshot_date=2026-11-21"),
        }
    ]


def test_validate_interrupted(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    args = ["validate", "--exports", exports, "--as-of", NEW]
    stopped = _stop("staged", signal.SIGINT, *args)
    _assert_stopped_cleanly(stopped, signal.SIGINT)
    assert (
        stopped.error == "scenario-analytics: error: interrupted (SIGINT) after staging — run again"
    )
    assert stopped.stdout == ""  # no report of a half-read folder
    in_json = _stop("loaded", signal.SIGTERM, *args, "--log-format", "json")
    _assert_stopped_cleanly(in_json, signal.SIGTERM)
    last = in_json.events()[-1]
    assert (last["stage"], last["status"], last["exit_code"]) == ("validate", "interrupted", 143)
    assert "published" not in last


def _big_exports(root: Path, sessions: int) -> Path:
    (root / "sessions").mkdir(parents=True)
    duckdb.execute(
        f"""COPY (
            SELECT 's' || i AS id, {{'id': 'u' || (i % 4000)}} AS user,
                   {{'id': 'sc' || (i % 25)}} AS scenario, (i * 37 % 10001) / 100.0 AS score,
                   60 + i % 900 AS duration_seconds, true AS is_valid_attempt,
                   strftime(TIMESTAMP '2026-11-01' + to_seconds(i), '%Y-%m-%dT%H:%M:%SZ')
                       AS created_at
            FROM range({sessions}) t(i)
        ) TO '{root / "sessions" / "part-0002.jsonl"}' (FORMAT JSON)"""
    )
    return root


def test_ctrl_c_while_a_file_loads_is_no_unreadable_file(tmp_path: Path) -> None:
    """No pause: SIGINT lands while pyarrow and DuckDB read a 70 MB file (about a second)."""
    exports = _big_exports(tmp_path / "exports", 500_000)
    store = tmp_path / "store"
    command = [sys.executable, "-m", "scenario_analytics", "run", "--exports", str(exports),
               "--snapshots", str(store), "--as-of", NEW]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "loading 1/1: sessions/part-0002.jsonl" in line:
                break
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        stdout, rest = proc.communicate(timeout=60)
    finally:
        proc.kill()
    stopped = Stopped(proc.returncode, stdout, "".join(seen) + rest, time.monotonic() - sent)
    _assert_stopped_cleanly(stopped, signal.SIGINT)
    assert stopped.error == (
        "scenario-analytics: error: interrupted (SIGINT) while load; nothing was published — "
        "run again"
    )
    assert staged_leftovers(store) == []
    assert not (store / "latest.json").exists()


def test_the_interrupt_wins_over_the_error_it_surfaced_as(tmp_path: Path) -> None:
    """What pyarrow and DuckDB do with the exception a handler raised inside them: report
    an error of their own. The loader must not blame the file for it."""
    exports = base_exports(tmp_path / "exports")
    folder = discover(exports)
    (listed,) = [f for f in folder.files if f.rel_path == "sessions/a.jsonl"]
    export = fetch_export(folder.storage, listed)
    con = connect()

    def interrupted(_reader: JsonLinesReader, _raw: object, _load: object) -> None:
        assert interrupts.received(signal.SIGINT) is not None  # what the handler does
        raise pa.ArrowInvalid("Python exception: Interrupted")

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(JsonLinesReader, "load", interrupted)
            with pytest.raises(Interrupted) as raised:
                Loader(con).load(0, export)
        assert raised.value.exit_code == 130
        assert isinstance(raised.value.__cause__, pa.ArrowInvalid)
    finally:
        interrupts.reset()
        con.close()


def test_an_interrupt_stops_a_running_query() -> None:
    """`received` interrupts the watched connections: DuckDB stops at once."""
    con = connect()
    timer = threading.Timer(0.5, interrupts.received, [signal.SIGTERM])
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(duckdb.Error, match="INTERRUPT"):
            con.execute("SELECT count(*) FROM range(10_000_000_000) t(i) WHERE hash(i) % 7 = 3")
        assert time.monotonic() - started < PROMPT
        assert interrupts.pending() is not None
    finally:
        timer.cancel()
        interrupts.reset()
        con.close()
