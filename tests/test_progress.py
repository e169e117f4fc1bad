"""Progress and logs: events, the plain/JSON/terminal renderers, the fault hook."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pytest
from helpers_ops import base_exports, cli

from scenario_analytics.cli.progress import JsonLog, PlainLog, TerminalProgress, clock
from scenario_analytics.engine.spark.session import log_file
from scenario_analytics.events import Event
from scenario_analytics.faults import KILL_AT, PAUSE_AT, STAGES

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
    # stdout is JSON too with --log-format json: `>>log 2>&1` gives a file of JSON lines.
    assert json.loads(result.stdout) == {
        "status": "published",
        "snapshot_date": "2026-11-26",
        "path": summary["snapshot"],
        "restated": [],
    }
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


def test_the_pause_hook_writes_its_line_and_sleeps() -> None:
    code = (
        "from scenario_analytics import faults\n"
        "faults.PAUSE_SECONDS = 0.2\n"
        "faults.checkpoint('scanned'); faults.checkpoint('loaded'); faults.checkpoint('loaded')\n"
        "print('done', flush=True)\n"
    )
    env = {**os.environ, PAUSE_AT: "loaded"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "paused at loaded\n"  # once: the first time, as `loaded:1` would
    assert done.stdout == "done\n"


# -- streams: what `>>log 2>&1` collects ----------------------------------------------------

ROOT = Path(__file__).parents[1]
OPERATIONS = (ROOT / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")
INSTALL, LOGS = "/opt/scenario-analytics", "/var/log/scenario-analytics"
SAMPLE_DAY = "2026-11-26"  # the sample's newest sessions; the recipes build yesterday


def _fenced(language: str) -> list[str]:
    """The doc's fenced blocks of `language`, as written."""
    return [b.split("\n```", 1)[0] for b in OPERATIONS.split(f"```{language}\n")[1:]]


def _install(tmp_path: Path) -> tuple[Path, Path]:
    """What the recipes expect under /opt/scenario-analytics: the virtual environment and
    jobs/nightly.toml, its production paths swapped for temporary ones."""
    script = Path(sys.prefix) / "bin" / "scenario-analytics"
    if not script.exists():
        pytest.skip("the scenario-analytics script is not installed next to this Python")
    app, store = tmp_path / "app", tmp_path / "snapshots"
    (app / "jobs").mkdir(parents=True)
    (app / ".venv").symlink_to(Path(sys.prefix))
    nightly = (ROOT / "jobs" / "nightly.toml").read_text(encoding="utf-8")
    job = nightly
    for production, here in [
        ("/srv/exec/exports", ROOT / "data" / "sample"),
        ("/srv/exec/snapshots", store),
        ("/srv/exec/tmp", tmp_path / "spill"),
    ]:
        assert f'"{production}"' in job, production
        job = job.replace(f'"{production}"', json.dumps(str(here)))
    (app / "jobs" / "nightly.toml").write_text(job, encoding="utf-8")
    (tmp_path / "logs").mkdir()
    return app, store


def _json_log(log: Path) -> list[dict[str, object]]:
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines
    return [json.loads(line) for line in lines]  # every line, stdout's and stderr's


def _assert_published(objects: list[dict[str, object]], store: Path) -> None:
    summary, result = objects[-2:]
    assert (summary["event"], summary["status"]) == ("summary", "published")
    path = str(store / f"snapshot_date={SAMPLE_DAY}")
    assert result == {
        "status": "published",
        "snapshot_date": SAMPLE_DAY,
        "path": path,
        "restated": [],
    }
    assert summary["snapshot"] == path


def test_the_crontab_recipe_logs_json_lines(tmp_path: Path) -> None:
    (entry,) = [line for block in _fenced("crontab") for line in block.splitlines()]
    schedule, command = entry.split(" ", 5)[:5], entry.split(" ", 5)[5]
    assert schedule == ["30", "3", "*", "*", "*"]
    app, store = _install(tmp_path)
    command = command.replace(INSTALL, str(app)).replace(LOGS, str(tmp_path / "logs"))
    env = {**os.environ, "SCENARIO_ANALYTICS_AS_OF": SAMPLE_DAY}
    done = subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout == done.stderr == b""  # all of it went to the log
    log = tmp_path / "logs" / "nightly.log"
    _assert_published(_json_log(log), store)
    # A night that fails appends JSON lines too: the error is the summary's.
    refused = {**env, "SCENARIO_ANALYTICS_MAX_REJECT_RATIO": "0"}
    done = subprocess.run(["sh", "-c", command], env=refused, capture_output=True, timeout=300)
    assert done.returncode == 4
    last = _json_log(log)[-1]
    assert (last["event"], last["status"], last["exit_code"]) == ("summary", "failed", 4)
    assert str(last["error"]).startswith("30 of 3,057 session rows rejected")


def test_the_systemd_recipe_logs_json_lines(tmp_path: Path) -> None:
    (service,) = [b for b in _fenced("ini") if "ExecStart=" in b]
    settings = dict(
        line.split("=", 1) for line in service.splitlines() if "=" in line and line[0] != "#"
    )
    app, store = _install(tmp_path)
    cwd = settings["WorkingDirectory"].replace(INSTALL, str(app))
    command = settings["ExecStart"].replace(INSTALL, str(app))
    log = tmp_path / "logs" / "journal"
    env = {**os.environ, "SCENARIO_ANALYTICS_AS_OF": SAMPLE_DAY}
    done = subprocess.run(  # the journal collects stdout and stderr, as this file does
        ["sh", "-c", f"{command} >>{log} 2>&1"], cwd=cwd, env=env, timeout=300
    )
    assert done.returncode == 0
    _assert_published(_json_log(log), store)


def _backfill_args(exports: Path, store: Path) -> list[str]:
    return ["backfill", "--exports", str(exports), "--snapshots", str(store),
            "--from", "2026-11-21", "--to", "2026-11-23", "--max-reject-ratio", "0.5"]  # fmt: skip


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_a_backfill_prints_each_day_as_it_is_published(tmp_path: Path, log_format: str) -> None:
    """Killed (SIGKILL: no chance to print at the end) after its second day, a backfill
    has printed both days."""
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    command = [sys.executable, "-m", "scenario_analytics", *_backfill_args(exports, store)]
    env = {**os.environ, KILL_AT: "day-published:2"}
    done = subprocess.run(
        [*command, "--log-format", log_format], capture_output=True, text=True, env=env
    )
    assert done.returncode == -9, done.stderr
    days = ["2026-11-21", "2026-11-22"]
    paths = [str(store / f"snapshot_date={d}") for d in days]
    if log_format == "plain":
        expected = [f"{d}\tpublished\t{p}" for d, p in zip(days, paths, strict=True)]
        assert done.stdout.splitlines() == expected
    else:
        assert [json.loads(line) for line in done.stdout.splitlines()] == [
            {"status": "published", "snapshot_date": d, "path": p}
            for d, p in zip(days, paths, strict=True)
        ]
    again = cli(*_backfill_args(exports, store), "--log-format", log_format)
    assert again.exit_code == 0, again.stderr
    statuses = ["skipped", "skipped", "published"]
    if log_format == "plain":
        assert [line.split("\t")[1] for line in again.stdout.splitlines()] == statuses
    else:
        assert [json.loads(line)["status"] for line in again.stdout.splitlines()] == statuses


def test_an_error_before_the_run_starts_is_json_too(tmp_path: Path) -> None:
    """A job file that cannot be read: no summary to carry the error, so an error event."""
    job = tmp_path / "job.toml"
    job.write_text("exports = [\n")
    result = cli("run", "--job", str(job), "--as-of", "2026-11-26", "--log-format", "json")
    assert result.exit_code == 2, result.stderr
    (line,) = result.stderr.splitlines()
    event = json.loads(line)
    assert (event["event"], event["stage"], event["exit_code"]) == ("error", "run", 2)
    assert "job.toml" in str(event["message"])
    assert result.stdout == ""


def test_a_failed_run_in_json_tells_its_error_in_the_summary(tmp_path: Path) -> None:
    store = tmp_path / "store"
    args = ["--snapshots", str(store), "--as-of", "2026-11-26", "--log-format", "json"]
    result = cli("run", "--exports", str(tmp_path / "missing"), *args)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()  # no `error:` line after it
    summary = json.loads(line)
    assert (summary["event"], summary["status"], summary["exit_code"]) == ("summary", "failed", 1)
    assert "missing" in str(summary["error"])


def test_the_jvm_log_goes_after_a_command_that_succeeded_and_stays_after_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scenario-analytics-spark-<pid>.log` (the Spark JVM's own output, named when the
    engine starts) is removed when the command succeeds, kept when it fails."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    log = log_file()
    assert log.parent == tmp_path
    log.write_text("the JVM's lines\n")
    failed = cli("snapshots", "list", "--snapshots", str(tmp_path / "none" / "store"))
    assert failed.exit_code == 2 and log.exists()
    done = cli("generate", "--out", str(tmp_path / "exports"), "--sessions", "20")
    assert done.exit_code == 0, done.stderr
    assert not log.exists()


@pytest.mark.parametrize(
    ("args", "env", "wanted"),
    [
        (
            ["run", "--as-of", "2026-13-01", "--log-format", "json"],
            {},
            "'2026-13-01' is not a date",
        ),
        (["run", "--job", "nope.toml", "--log-format=json"], {}, "'nope.toml' does not exist"),
        (
            ["run"],
            {"SCENARIO_ANALYTICS_MAX_REJECT_RATIO": "2", "SCENARIO_ANALYTICS_LOG_FORMAT": "json"},
            "not in the range",
        ),
        (["snapshots", "verify", "--bogus", "--log-format", "json"], {}, "No such option"),
    ],
)
def test_usage_errors_are_json_lines_when_json_logs_are_asked_for(
    args: list[str], env: dict[str, str], wanted: str
) -> None:
    result = cli(*args, env=env)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    event = json.loads(lines[0])
    assert event["event"] == "error" and event["exit_code"] == 2
    assert wanted in event["message"] and "--help`" in event["message"]


def test_usage_errors_stay_plain_text_otherwise() -> None:
    result = cli("run", "--as-of", "2026-13-01")
    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: ") and " run [OPTIONS]" in result.stderr
    assert "Error: Invalid value for '--as-of'" in result.stderr
