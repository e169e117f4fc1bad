"""`scenario-analytics validate`: exit code, stdout (data) and stderr (logs, errors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import CSV_SESSION_HEADER, csv_session, flat_session, session, write_exports

from scenario_analytics.cli import main

PREFIX = "scenario-analytics: error: "


def _validate(exports: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["validate", "--exports", str(exports), *args])


def _exports(tmp_path: Path, files: dict[str, Any]) -> Path:
    return write_exports(tmp_path / "exports", files)


def _sessions(good: int, bad: int) -> list[Any]:
    return [session(f"s{i}") for i in range(good)] + ["{bad"] * bad


def test_json_report(tmp_path: Path) -> None:
    exports = _exports(
        tmp_path,
        {
            "sessions/a.jsonl": [session("s1"), "", "{bad", session("s1", score=90)],
            "sessions-b.csv.gz": [CSV_SESSION_HEADER, csv_session("c1"), csv_session("")],
            "members.parquet": [{"id": "u1", "email": "a@x.com"}, {"id": None}],
            "groups.json": {"data": [{"id": "g1"}], "pagination": {}},
            "notes.txt": "not an export",
            "sessions/_SUCCESS": "",  # a marker of the tool that wrote the folder: skipped
        },
    )
    result = _validate(exports, "--json", "--max-reject-ratio", "0.5")

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report) == [
        "files",
        "entities",
        "rejects_by_reason",
        "ignored_files",
        "skipped_files",
        "checks",
    ]
    files = {f["path"]: f for f in report["files"]}
    assert list(files) == [
        "groups.json",
        "members.parquet",
        "sessions-b.csv.gz",
        "sessions/a.jsonl",
    ]
    a = files["sessions/a.jsonl"]
    assert {
        k: a[k] for k in ("entity", "format", "rows_read", "rows_accepted", "rows_rejected")
    } == {
        "entity": "sessions",
        "format": "jsonl",
        "rows_read": 3,
        "rows_accepted": 2,
        "rows_rejected": 1,
    }
    assert a["rejects_by_reason"] == {"malformed_record": 1}
    assert a["bytes"] == (exports / "sessions/a.jsonl").stat().st_size
    assert len(a["sha256"]) == 64
    assert files["sessions-b.csv.gz"]["format"] == "csv.gz"
    assert files["sessions-b.csv.gz"]["rejects_by_reason"] == {"missing_id": 1}
    assert report["entities"] == {
        "groups": {"rows_read": 1, "rows_accepted": 1, "rows_rejected": 0},
        "members": {"rows_read": 2, "rows_accepted": 1, "rows_rejected": 1},
        "sessions": {"rows_read": 5, "rows_accepted": 3, "rows_rejected": 2},
    }
    assert report["rejects_by_reason"] == {"malformed_record": 1, "missing_id": 2}
    assert report["ignored_files"] == ["notes.txt"]
    assert report["skipped_files"] == ["sessions/_SUCCESS"]
    assert [c["name"] for c in report["checks"]] == [
        "entity_missing",
        "entity_drop",
        "day_volume",
        "stale_exports",
    ]
    # Ignored and skipped files are named on stderr too; stdout holds only the JSON document.
    assert "notes.txt" in result.stderr
    assert "sessions/_SUCCESS" in result.stderr
    assert PREFIX not in result.stderr


def test_table_report(tmp_path: Path) -> None:
    exports = _exports(tmp_path, {"sessions/a.jsonl": _sessions(3, 0), "x.txt": ""})
    result = _validate(exports)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["file", "entity", "read", "accepted", "rejected"]
    assert lines[1].split() == ["sessions/a.jsonl", "sessions", "3", "3", "0"]
    assert "x.txt" in result.stdout and "ignored" in result.stdout


@pytest.mark.parametrize(
    ("good", "bad", "args", "exit_code"),
    [
        (99, 1, [], 0),  # 1% is the default limit, and not more than it
        (98, 2, [], 4),
        (3, 1, ["--max-reject-ratio", "0.25"], 0),
        (3, 1, ["--max-reject-ratio", "0.2"], 4),
        (0, 2, ["--max-reject-ratio", "1"], 0),
        (5, 0, ["--max-reject-ratio", "0"], 0),
        (5, 1, ["--max-reject-ratio", "0"], 4),
    ],
)
def test_reject_ratio_gate(
    tmp_path: Path, good: int, bad: int, args: list[str], exit_code: int
) -> None:
    exports = _exports(tmp_path, {"sessions/a.jsonl": _sessions(good, bad)})
    result = _validate(exports, "--json", *args)

    assert result.exit_code == exit_code, result.stderr
    report = json.loads(result.stdout)  # the report is printed either way
    assert report["entities"]["sessions"]["rows_rejected"] == bad
    if exit_code == 4:
        assert f"{PREFIX}{bad:,} of {good + bad:,} session rows rejected" in result.stderr
    else:
        assert PREFIX not in result.stderr


def test_other_entities_rejects_do_not_count_in_the_ratio(tmp_path: Path) -> None:
    exports = _exports(
        tmp_path,
        {"sessions/a.jsonl": _sessions(2, 0), "members.jsonl": [{"email": "x"}] * 10},
    )
    result = _validate(exports, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rejects_by_reason"] == {"missing_id": 10}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("sessions/b.parquet", b"not parquet at all"),
        ("sessions/b.json", '{"items": []}'),
        ("sessions/b.jsonl.gz", b"\x1f\x8b\x08\x00truncated"),
        ("sessions/b.csv", [["id", "user_id"], ["s1", "u1"]]),
        ("sessions/b.parquet", [{k: v for k, v in flat_session().items() if k != "id"}]),
    ],
)
def test_unreadable_file_exits_1_naming_it(tmp_path: Path, name: str, content: Any) -> None:
    exports = _exports(tmp_path, {"sessions/a.jsonl": _sessions(1, 0), name: content})
    result = _validate(exports, "--json")

    assert result.exit_code == 1
    assert result.stdout == ""
    error = [line for line in result.stderr.splitlines() if line.startswith(PREFIX)]
    assert len(error) == 1
    assert error[0].startswith(f"{PREFIX}cannot read export file {name}: ")
    assert "Traceback" not in result.stderr


def test_exports_folder_without_sessions(tmp_path: Path) -> None:
    exports = _exports(tmp_path, {"members.csv": [["id"], ["u1"]]})
    result = _validate(exports)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"{PREFIX}no sessions export found in {exports}")


def test_missing_exports_folder(tmp_path: Path) -> None:
    result = _validate(tmp_path / "nope")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"{PREFIX}exports folder {tmp_path / 'nope'} does not exist" in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 2
    assert "--exports" in result.stderr
    result = _validate(tmp_path, "--max-reject-ratio", "1.5")
    assert result.exit_code == 2
    assert result.stdout == ""


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_json_log_format_makes_every_line_json(tmp_path: Path, extra: list[str]) -> None:
    """With --log-format json, stdout is the report on one line and stderr JSON events:
    `>>log 2>&1` gives a file whose every line parses (docs/OPERATIONS.md)."""
    exports = _exports(tmp_path, {"sessions/a.jsonl": [session("s1"), "{bad"]})
    result = _validate(exports, "--log-format", "json", "--max-reject-ratio", "0.9", *extra)
    assert result.exit_code == 0, result.stderr
    (line,) = result.stdout.splitlines()
    report = json.loads(line)
    assert report["rejects_by_reason"] == {"malformed_record": 1}
    assert all(json.loads(event) for event in result.stderr.splitlines())


@pytest.mark.parametrize("command", ["validate", "run", "backfill"])
def test_a_date_after_today_is_the_same_usage_error_for_every_command(
    tmp_path: Path, command: str
) -> None:
    exports = _exports(tmp_path, {"sessions.json": _sessions(3, 0)})
    store = ["--snapshots", str(tmp_path / "store")]
    dates = {
        "validate": ["--as-of", "2030-01-01"],
        "run": [*store, "--as-of", "2030-01-01"],
        "backfill": [*store, "--from", "2030-01-01", "--to", "2030-01-01"],
    }[command]
    result = CliRunner().invoke(main, [command, "--exports", str(exports), *dates])
    assert result.exit_code == 2, result.stderr
    assert "invalid_date:" in result.stderr and "2030-01-01 is after today" in result.stderr
    assert "--skip-check" not in result.stderr
