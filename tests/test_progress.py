"""Progress and logs: events, the plain/JSON/terminal renderers, the fault hook."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from helpers_ops import base_exports, cli

from scenario_analytics.cli.progress import JsonLog, PlainLog, TerminalProgress, clock
from scenario_analytics.events import Event
from scenario_analytics.faults import KILL_AT, STAGES

RUN_STAGES = ["scan", "load", "stage", "validate", "build", "summarize", "write", "publish"]


def _json_lines(stderr: str) -> list[dict[str, object]]:
    events = [json.loads(line) for line in stderr.splitlines()]
    for event in events:
        assert {"time", "event", "stage"} <= set(event)
    return events


def test_json_log_of_a_run_has_one_object_per_event_with_the_stage_fields(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    result = cli(
        "run", "--exports", str(exports), "--snapshots", str(tmp_path / "store"),
        "--as-of", "2026-11-26", "--max-reject-ratio", "0.5", "--log-format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    events = _json_lines(result.stderr)
    done = [e for e in events if e["event"] == "done"]
    assert [e["stage"] for e in done] == RUN_STAGES
    for event in done:
        assert isinstance(event["seconds"], float | int) and event["seconds"] >= 0
    by_stage = {e["stage"]: e for e in done}
    assert by_stage["validate"]["rows"] == 9
    assert by_stage["load"]["rows"] == 9 + 2 + 1 + 2 + 1  # sessions, members, groups, ...
    for stage in ("build", "summarize", "write", "publish"):
        assert by_stage[stage]["snapshot_date"] == "2026-11-26"
    steps = [e["sql"] for e in events if e["event"] == "step"]
    assert steps == sorted(p.name for p in (Path(__file__).parents[1] / "sql").glob("*.sql"))
    summary = events[-1]
    assert summary["event"] == "summary" and summary["stage"] == "run"
    assert summary["status"] == "published"
    assert summary["snapshot"] == result.stdout.strip()
    assert (summary["files_read"], summary["files_skipped"], summary["files_ignored"]) == (7, 0, 1)
    assert (summary["rows"], summary["rejects"], summary["scenarios"]) == (9, 3, 2)
    assert summary["snapshot_date"] == "2026-11-26"


def test_json_log_of_a_backfill_counts_days(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    args = ["backfill", "--exports", str(exports), "--snapshots", str(tmp_path / "store")]
    args += ["--from", "2026-11-21", "--to", "2026-11-23", "--max-reject-ratio", "0.5"]
    result = cli(*args, "--log-format", "json")
    assert result.exit_code == 0, result.stderr
    events = _json_lines(result.stderr)
    days = [e for e in events if e["stage"] == "backfill" and e["event"] == "progress"]
    assert [(e["done"], e["total"], e["unit"]) for e in days] == [(n, 3, "days") for n in (1, 2, 3)]
    assert [e["snapshot_date"] for e in days] == ["2026-11-21", "2026-11-22", "2026-11-23"]
    assert [e["rows"] for e in days] == [3, 7, 12]  # sessions written so far
    assert events[-1]["event"] == "summary" and events[-1]["days_published"] == 3
    assert (events[-1]["sessions"], events[-1]["scenarios"]) == (5, 2)  # the newest day
    assert (events[-1]["files_read"], events[-1]["rejects"]) == (7, 3)
    again = _json_lines(cli(*args, "--log-format", "json").stderr)
    skips = [e for e in again if e["stage"] == "skip"]
    assert [e["snapshot_date"] for e in skips] == ["2026-11-21", "2026-11-22", "2026-11-23"]
    assert again[-1]["days_skipped"] == 3
    assert (again[-1]["files_read"], again[-1]["files_skipped"]) == (0, 7)


def test_plain_log_ends_with_the_summary_and_a_failure_says_so(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    args = ["run", "--exports", str(exports), "--snapshots", str(tmp_path / "store")]
    args += ["--as-of", "2026-11-26"]
    result = cli(*args, "--max-reject-ratio", "0.5")
    lines = result.stderr.splitlines()
    assert all(line.startswith("scenario-analytics: ") for line in lines)
    assert lines[-1].startswith("scenario-analytics: summary: 7 files (7 read, 0 unchanged)")
    assert "9 session rows, 3 rejects; 5 sessions, 2 scenarios; snapshot " in lines[-1]
    failed = cli(*args).stderr.splitlines()  # the default gate: 3 of 9 rejected
    assert "summary: run failed after" in failed[-2] and "(exit 4)" in failed[-2]
    assert failed[-1].startswith("scenario-analytics: error: 3 of 9 session rows rejected")


def test_plain_progress_lines_carry_elapsed_time_and_eta() -> None:
    stream = io.StringIO()
    log = PlainLog(stream)
    log(Event("backfill", "start", "building 4 days", done=0, total=4, unit="days"))
    log.counted["backfill"].started -= 10  # as if ten seconds had passed
    log(Event("backfill", "progress", rows=100, done=1, total=4, unit="days",
              snapshot_date=date(2026, 11, 1)))  # fmt: skip
    log(Event("backfill", "done", "built 4 days"))
    lines = stream.getvalue().splitlines()
    assert lines == [
        "scenario-analytics: building 4 days",
        "scenario-analytics: backfill 1/4 days: 2026-11-01, 100 rows [10s elapsed, ETA 30s]",
        "scenario-analytics: built 4 days",
    ]


def test_terminal_progress_draws_a_bar_with_rows_elapsed_and_eta() -> None:
    stream = io.StringIO()
    bar = TerminalProgress(stream, tick=None, width=200)
    bar(Event("load", "start", "parsing 4 files", done=0, total=4, unit="files",
              data={"bytes_total": 400}))  # fmt: skip
    bar.counted["load"].started -= 20
    bar(Event("load", "progress", "loading 3/4: c.jsonl", rows=1500, done=2, total=4,
              unit="files", data={"bytes_done": 100, "bytes_total": 400}))  # fmt: skip
    status = bar.status()
    assert status.startswith("load [#####---------------] 2/4 files · 1,500 rows · 20s · ETA 1m00s")
    assert status.endswith("loading 3/4: c.jsonl 0s")
    bar(Event("load", "done", "loaded 4 files in 21.0s"))
    assert bar.status() == ""
    bar.close()
    out = stream.getvalue()
    assert "\r" in out and "\x1b[K" in out
    assert "scenario-analytics: parsing 4 files\n" in out
    assert "scenario-analytics: loaded 4 files in 21.0s\n" in out


def test_terminal_ticker_redraws_and_stops() -> None:
    stream = io.StringIO()
    bar = TerminalProgress(stream, tick=0.01, width=80)
    bar(Event("build", "start", "sql 0050_users.sql"))
    time.sleep(0.1)
    bar.close()
    assert stream.getvalue().count("sql 0050_users.sql") >= 2
    assert stream.getvalue().endswith("\r\x1b[K")


def test_json_log_writes_valid_json_per_event() -> None:
    stream = io.StringIO()
    JsonLog(stream)(Event("publish", "done", "published x", seconds=1.23456,
                          snapshot_date=date(2026, 1, 2), data={"path": "x"}))  # fmt: skip
    (line,) = stream.getvalue().splitlines()
    body = json.loads(line)
    assert body["event"] == "done" and body["stage"] == "publish"
    assert body["seconds"] == 1.235 and body["snapshot_date"] == "2026-01-02"
    assert body["path"] == "x" and body["time"].endswith("Z")


def test_clock() -> None:
    assert [clock(s) for s in (0.4, 59, 61, 3600 + 120)] == ["0s", "59s", "1m01s", "1h02m"]


@pytest.mark.parametrize("setting", ["loaded", "loaded:1"])
def test_the_fault_hook_kills_at_the_named_stage(setting: str) -> None:
    code = (
        "from scenario_analytics.faults import checkpoint\n"
        "checkpoint('scanned'); print('past scanned', flush=True)\n"
        "checkpoint('loaded'); print('past loaded', flush=True)\n"
    )
    env = {**os.environ, KILL_AT: setting}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == -9
    assert done.stdout == "past scanned\n"


def test_the_fault_hook_does_nothing_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from scenario_analytics import faults
    from scenario_analytics.faults import checkpoint

    monkeypatch.delenv(KILL_AT, raising=False)
    for stage in STAGES:
        checkpoint(stage)
    monkeypatch.setenv(KILL_AT, "loaded:3")
    checkpoint("loaded")
    checkpoint("loaded")  # the third one would kill
    faults._seen.clear()
