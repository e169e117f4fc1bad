"""Refusing to publish what is evidently incomplete (CONTRACT.md section 5), end to end
through the command line: files left out of an export, as-of dates not over yet,
retention around what a run just published, `validate --rejects-out`, no store made by
a refused run, and the job file's `memory_limit`.

Each test checks the exit code, stdout (data) and stderr (logs, the error) separately,
and what the store holds afterwards.
"""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import Result
from conftest import (
    CSV_SESSION_HEADER,
    FIXTURE_SKIPS,
    csv_session,
    flat_session,
    session,
    write_exports,
)
from helpers_ops import base_exports, cli, snapshot_files

from scenario_analytics.errors import ExitCode
from scenario_analytics.publish.records import record_key
from scenario_analytics.publish.store import Store

RATIO = ["--max-reject-ratio", "0.5"]  # base_exports rejects 3 of its 9 session rows
FIRST = "2026-11-26"  # the good first run
NEXT = "2026-11-27"  # the next night's run
TODAY = date(2026, 11, 27)  # the clock of the date tests: after every fixture session


# -- helpers ------------------------------------------------------------------------------


def run(exports: Path, store: Path, as_of: str, *extra: str) -> Result:
    return cli(
        "run", "--exports", str(exports), "--snapshots", str(store), "--as-of", as_of,
        *RATIO, *extra,
    )  # fmt: skip


def backfill(exports: Path, store: Path, start: str, end: str, *extra: str) -> Result:
    return cli(
        "backfill", "--exports", str(exports), "--snapshots", str(store), "--from", start,
        "--to", end, *RATIO, *extra,
    )  # fmt: skip


def published(exports: Path, store: Path, as_of: str, *extra: str) -> Result:
    result = run(exports, store, as_of, *extra)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{store / f'snapshot_date={as_of}'}\n"
    return result


def store_state(store: Path) -> dict[str, Any]:
    """What readers of a store see: latest.json's bytes, and every published snapshot
    (its commit record, naming the version, and its manifest's bytes)."""
    state: dict[str, Any] = {"latest.json": (store / "latest.json").read_bytes()}
    published = Store(store)
    for day in published.dates():
        version = published.version(day)
        assert version is not None, day
        record, _etag = published.storage.read(record_key(day))
        manifest = published.fetch(version, "manifest.json").read_bytes()
        state[f"snapshot_date={day.isoformat()}"] = (record, manifest)
    return state


def store_files(store: Path) -> dict[str, bytes]:
    """Every file under the store, by path: what a run that never touched it leaves."""
    return {
        p.relative_to(store).as_posix(): p.read_bytes()
        for p in sorted(store.rglob("*"))
        if p.is_file()
    }


def snapshot_dates(store: Path) -> list[str]:
    """The published dates (a date unpublished is gone from them at once; its folder is
    kept a while for readers that hold it)."""
    return [day.isoformat() for day in Store(store).dates()]


def latest(store: Path) -> str:
    return str(json.loads((store / "latest.json").read_text())["snapshot_date"])


def manifest(store: Path, day: str) -> dict[str, Any]:
    """The manifest of the version of `day` the store publishes (read through the store:
    a rebuild's files may not be in the date's folder yet)."""
    files = snapshot_files(store / f"snapshot_date={day}")
    return dict(json.loads(files["manifest.json"].read_text()))


def input_paths(store: Path, day: str) -> list[str]:
    return [entry["path"] for entry in manifest(store, day)["inputs"]]


def good_exports(root: Path) -> Path:
    """base_exports, with the scenarios as CSV (the issue's `scenarios.csv`)."""
    exports = base_exports(root)
    (exports / "scenarios.parquet").unlink()
    return write_exports(
        exports, {"scenarios.csv": [["id", "slug", "name"], ["sc1", "scenario-one", "One"]]}
    )


BASE_INPUTS = [
    "group_memberships.csv",
    "groups.json",
    "members.csv",
    "scenarios.parquet",
    "sessions/a.jsonl",
    "sessions/b.csv",
    "sessions/c.parquet",
]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> date:
    """Today (UTC) is TODAY for the command, wherever it asks."""
    monkeypatch.setattr("scenario_analytics.filters.utc_today", lambda: TODAY)
    return TODAY


# -- 1. every file accounted for --------------------------------------------------------------


def _rename(old: str, new: str) -> Any:
    def change(exports: Path) -> None:
        (exports / new).parent.mkdir(parents=True, exist_ok=True)
        (exports / old).rename(exports / new)

    return change


def _add_parket(exports: Path) -> None:
    (exports / "sessions" / "part-0004.parket").write_bytes(
        (exports / "sessions" / "c.parquet").read_bytes()
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        pytest.param(
            _rename("group_memberships.csv", "group-memberships.csv"),
            "group-memberships.csv: no entity matches; did you mean group_memberships?",
            id="group-memberships.csv",
        ),
        pytest.param(
            _rename("scenarios.csv", "scenario.csv"),
            "scenario.csv: no entity matches; did you mean scenarios?",
            id="scenario.csv",
        ),
        pytest.param(
            _add_parket,
            "sessions/part-0004.parket: not an export format (inside sessions/)",
            id="sessions/part-0004.parket",
        ),
        pytest.param(
            _rename("sessions/b.csv", "session/b.csv"),
            "session/b.csv: folder session/ matches no entity; did you mean sessions?",
            id="session/b.csv",
        ),
    ],
)
def test_a_file_left_out_refuses_the_run_and_publishes_nothing(
    tmp_path: Path, change: Any, named: str
) -> None:
    exports = good_exports(tmp_path / "exports")
    store = tmp_path / "store"
    published(exports, store, FIRST)
    before = store_state(store)
    files = store_files(store)

    change(exports)
    result = run(exports, store, NEXT)

    assert result.exit_code == ExitCode.DATA_QUALITY, result.stderr
    assert result.stdout == ""
    assert f"error: 1 file in {exports} would be left out: {named}" in result.stderr
    assert "nothing was published" in result.stderr
    assert store_state(store) == before
    assert latest(store) == FIRST
    # Refused before the store was touched: no new version (nothing uploaded, staged or
    # committed), no lease left, no quarantine: every file as it was.
    assert store_files(store) == files
    assert not (store / ".quarantine").exists()


def test_every_file_left_out_is_named_once(tmp_path: Path) -> None:
    exports = good_exports(tmp_path / "exports")
    _rename("group_memberships.csv", "group-memberships.csv")(exports)
    _rename("scenarios.csv", "scenario.csv")(exports)
    _add_parket(exports)
    result = run(exports, tmp_path / "store", FIRST)
    assert result.exit_code == ExitCode.DATA_QUALITY
    error = result.stderr.split("error: ", 1)[1]
    assert error.startswith(
        f"3 files in {exports} would be left out: "
        "group-memberships.csv: no entity matches; did you mean group_memberships?; "
        "scenario.csv: no entity matches; did you mean scenarios?; "
        "sessions/part-0004.parket: not an export format (inside sessions/)"
    )
    assert "nothing was published" in error


def test_validate_refuses_a_file_left_out(tmp_path: Path) -> None:
    exports = good_exports(tmp_path / "exports")
    _rename("group_memberships.csv", "group-memberships.csv")(exports)
    result = cli("validate", "--exports", str(exports), *RATIO)
    assert result.exit_code == ExitCode.DATA_QUALITY
    assert result.stdout == ""
    assert "did you mean group_memberships?" in result.stderr


# -- 2. skipped names and ignore globs ------------------------------------------------------------


def test_dot_and_underscore_names_are_skipped_everywhere(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    write_exports(
        exports,
        {
            "_SUCCESS": b"",
            ".DS_Store": b"\x00\x00\x00\x01Bud1\x00",
            "sessions/_SUCCESS": b"",
            "sessions/.DS_Store": b"\x00\x00\x00\x01Bud1\x00",
            "sessions/_temporary/0/part-0009.jsonl": ["{half a line"],
            ".trash/group-memberships.csv": [["group_id", "user_id"]],
            "README.md": "# exports\n",
        },
    )
    store = tmp_path / "store"
    result = published(exports, store, FIRST)
    assert "skipped 6 (names starting with . or _, or ignore globs)" in result.stderr
    assert manifest(store, FIRST)["ignored_files"] == ["NOTES.txt", "README.md"]
    assert input_paths(store, FIRST) == BASE_INPUTS


def test_ignore_globs_of_the_job_file_let_the_run_publish(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    write_exports(
        exports,
        {
            "group-memberships-2026-10.csv": [["group_id", "user_id"], ["g9", "u9"]],
            "sessions/a.jsonl.tmp": ["{half a line"],
            "archive/sessions/old.jsonl": [session("old", created_at="2026-10-01T00:00:00Z")],
        },
    )
    store = tmp_path / "store"
    refused = run(exports, store, FIRST)
    assert refused.exit_code == ExitCode.DATA_QUALITY
    assert f"3 files in {exports} would be left out" in refused.stderr
    assert not store.exists()

    job = tmp_path / "job.toml"
    job.write_text('ignore = ["group-memberships-*.csv", "sessions/*.tmp", "archive"]\n')
    published(exports, store, FIRST, "--job", str(job))
    assert manifest(store, FIRST)["ignored_files"] == ["NOTES.txt"]
    assert input_paths(store, FIRST) == BASE_INPUTS
    assert manifest(store, FIRST)["counts"]["sessions_read"] == 9  # not the archived one


# -- 3. dates --------------------------------------------------------------------------------------


def test_run_for_a_date_after_today_creates_no_store(tmp_path: Path, clock: date) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    result = run(exports, store, "2026-11-28")
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert "error: invalid_date: --as-of 2026-11-28 is after today (2026-11-27, UTC)" in (
        result.stderr
    )
    assert not store.exists()


def test_run_for_a_date_after_today_leaves_the_store_as_it_was(tmp_path: Path, clock: date) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    published(exports, store, FIRST)
    before = store_state(store)
    for day in ("2026-11-28", "2027-01-01"):
        result = run(exports, store, day, "--allow-partial-day")
        assert result.exit_code == ExitCode.USAGE, day
        assert result.stdout == ""
        assert "invalid_date" in result.stderr
        assert store_state(store) == before


def test_run_against_the_real_clock_refuses_a_far_future_date(tmp_path: Path) -> None:
    result = run(base_exports(tmp_path / "exports"), tmp_path / "store", "2100-01-01")
    assert result.exit_code == ExitCode.USAGE
    assert "invalid_date: --as-of 2100-01-01 is after today" in result.stderr
    assert not (tmp_path / "store").exists()


def test_today_needs_allow_partial_day(tmp_path: Path, clock: date) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    published(exports, store, FIRST)
    before = store_state(store)

    refused = run(exports, store, NEXT)
    assert refused.exit_code == ExitCode.USAGE
    assert refused.stdout == ""
    assert "invalid_date: --as-of 2026-11-27 is today, a day not over yet" in refused.stderr
    assert "--allow-partial-day" in refused.stderr
    assert store_state(store) == before

    published(exports, store, NEXT, "--allow-partial-day")
    assert latest(store) == NEXT
    assert snapshot_dates(store) == [FIRST, NEXT]
    assert manifest(store, NEXT)["snapshot_date"] == NEXT


def test_backfill_reaching_past_today_is_refused_whole(tmp_path: Path, clock: date) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    refused = backfill(exports, store, "2026-11-20", "2026-11-28")
    assert refused.exit_code == ExitCode.USAGE
    assert refused.stdout == ""
    assert "invalid_date: --to 2026-11-28 is after today (2026-11-27, UTC)" in refused.stderr
    assert not store.exists()

    published(exports, store, FIRST)
    before = store_state(store)
    for end, extra in (("2026-11-28", ["--allow-partial-day"]), ("2026-11-27", [])):
        result = backfill(exports, store, "2026-11-20", end, *extra)
        assert result.exit_code == ExitCode.USAGE, end
        assert result.stdout == ""
        assert "invalid_date" in result.stderr
        assert store_state(store) == before  # no day of the range

    done = backfill(exports, store, "2026-11-26", "2026-11-27", "--allow-partial-day")
    assert done.exit_code == 0, done.stderr
    assert snapshot_dates(store) == [FIRST, NEXT]
    assert latest(store) == NEXT


@pytest.mark.parametrize("with_store", [True, False], ids=["store", "no-store"])
def test_query_for_a_date_after_today_is_invalid_date(
    tmp_path: Path, clock: date, with_store: bool
) -> None:
    store = tmp_path / "store"
    if with_store:
        published(base_exports(tmp_path / "exports"), store, FIRST)
        good = cli("query", "--snapshots", str(store), "--as-of", FIRST, "sc1")
        assert good.exit_code == 0, good.stderr
    result = cli("query", "--snapshots", str(store), "--as-of", "2026-11-28", "sc1")
    assert result.exit_code == ExitCode.USAGE
    body = json.loads(result.stdout)
    assert result.stdout.count("\n") == 1
    assert body["error"]["type"] == "invalid_request"
    assert body["error"]["code"] == "invalid_date"
    assert "2026-11-28" in body["error"]["message"]
    assert "error: invalid_date:" in result.stderr
    assert store.exists() == with_store


# -- 4. retention around what the run published ----------------------------------------------------


def test_keep_never_prunes_the_older_date_just_published(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    published(exports, store, FIRST)
    result = published(exports, store, "2026-11-20", "--keep", "1")
    assert snapshot_dates(store) == ["2026-11-20", FIRST]
    assert latest(store) == FIRST
    assert "pruned snapshot" not in result.stderr


def test_keep_prunes_around_the_published_and_the_latest(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    published(exports, store, "2026-11-23")
    published(exports, store, FIRST)
    result = published(exports, store, "2026-11-20", "--keep", "1")
    assert snapshot_dates(store) == ["2026-11-20", FIRST]
    assert latest(store) == FIRST
    assert "pruned snapshot 2026-11-23" in result.stderr


def test_backfill_keep_never_prunes_the_days_it_published(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    published(exports, store, FIRST)
    result = backfill(exports, store, "2026-11-20", "2026-11-21", "--keep", "1")
    assert result.exit_code == 0, result.stderr
    assert snapshot_dates(store) == ["2026-11-20", "2026-11-21", FIRST]
    assert latest(store) == FIRST


def test_backfill_keep_again_keeps_the_days_of_its_range(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    published(exports, store, FIRST)
    first = backfill(exports, store, "2026-11-20", "2026-11-21", "--keep", "1")
    assert first.exit_code == 0, first.stderr
    again = backfill(exports, store, "2026-11-20", "2026-11-21", "--keep", "1")
    assert again.exit_code == 0, again.stderr
    lines = again.stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["2026-11-20", "skipped"],
        ["2026-11-21", "skipped"],
    ]
    for line in lines:  # what the command prints is there
        assert Path(line.split("\t")[2]).is_dir(), line
    assert snapshot_dates(store) == ["2026-11-20", "2026-11-21", FIRST]


# -- 5. validate --rejects-out ---------------------------------------------------------------------


def rejects_exports(root: Path) -> Path:
    return write_exports(
        root,
        {
            "sessions/a.jsonl": [
                session("s1", created_at="2026-11-20T10:00:00Z"),
                "{not json",
                session("s2", created_at="yesterday"),
                session("s3", score=101),
            ],
            "sessions/b.csv": [
                CSV_SESSION_HEADER,
                csv_session("c1"),
                csv_session("c2", is_valid_attempt="maybe"),
                csv_session("c3", user_id=""),
            ],
            "sessions/c.parquet": [flat_session("p1"), flat_session("p2", duration_seconds=-5)],
            "members.csv": [["id", "email"], ["u1", "one@acme.com"], ["", "nobody@acme.com"]],
            "groups.json": {"data": [{"id": "g1", "name": "G"}, {"name": "no id"}]},
            "group_memberships.csv": [
                ["group_id", "user_id"],
                ["g1", "u1"],
                ["", "u1"],
                ["g1", ""],
            ],
            "scenarios.parquet": [{"id": "sc1", "slug": "scenario-one", "name": "One"}],
        },
    )


# (entity, source_file, position, reason), in file and position order.
EXPECTED_REJECTS = [
    ("group_memberships", "group_memberships.csv", 3, "missing_group_id"),
    ("group_memberships", "group_memberships.csv", 4, "missing_user_id"),
    ("groups", "groups.json", 2, "missing_id"),
    ("members", "members.csv", 3, "missing_id"),
    ("sessions", "sessions/a.jsonl", 2, "malformed_record"),
    ("sessions", "sessions/a.jsonl", 3, "bad_created_at"),
    ("sessions", "sessions/a.jsonl", 4, "bad_score"),
    ("sessions", "sessions/b.csv", 3, "bad_is_valid_attempt"),
    ("sessions", "sessions/b.csv", 4, "missing_user_id"),
    ("sessions", "sessions/c.parquet", 2, "bad_duration"),
]


def read_rejects(path: Path) -> list[tuple[str, str, int, str, str]]:
    if path.suffix == ".parquet":
        rows = duckdb.sql(
            f"SELECT entity, source_file, position, reason, raw FROM read_parquet('{path}')"
        ).fetchall()
    else:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            assert next(reader) == ["entity", "source_file", "position", "reason", "raw"]
            rows = list(reader)
    return [(str(e), str(f), int(p), str(r), str(raw)) for e, f, p, r, raw in rows]


def test_rejects_out_holds_every_rejected_row_in_both_formats(tmp_path: Path) -> None:
    exports = rejects_exports(tmp_path / "exports")
    found = {}
    for name in ("x.parquet", "x.csv"):
        out = tmp_path / name
        result = cli(
            "validate", "--exports", str(exports), "--rejects-out", str(out), "--json",
            "--max-reject-ratio", "1",
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        assert sum(report["rejects_by_reason"].values()) == len(EXPECTED_REJECTS)
        found[name] = read_rejects(out)
    rows = found["x.parquet"]
    assert [row[:4] for row in rows] == EXPECTED_REJECTS
    assert found["x.csv"] == rows
    raw = {(row[1], row[2]): row[4] for row in rows}
    assert raw["sessions/a.jsonl", 2] == "{not json"
    assert json.loads(raw["sessions/a.jsonl", 3])["created_at"] == "yesterday"
    assert json.loads(raw["sessions/c.parquet", 2])["id"] == "p2"
    assert json.loads(raw["sessions/b.csv", 3])["is_valid_attempt"] == "maybe"
    assert all(text for text in raw.values())


def test_rejects_out_in_a_missing_folder_is_a_usage_error_before_any_work(
    tmp_path: Path,
) -> None:
    """Not found out after the whole validation and blamed on free space (issue #28)."""
    exports = rejects_exports(tmp_path / "exports")
    result = cli("validate", "--exports", str(exports), "--rejects-out", "nodir/rej.csv")
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert result.stderr.splitlines() == [
        f"scenario-analytics: error: --rejects-out nodir/rej.csv: the folder "
        f"{Path.cwd() / 'nodir'} does not exist — create it, or name a file in a folder "
        "that exists"
    ]


def test_rejects_out_is_written_when_the_gate_refuses(tmp_path: Path) -> None:
    exports = rejects_exports(tmp_path / "exports")
    out = tmp_path / "rejects.csv"
    result = cli("validate", "--exports", str(exports), "--rejects-out", str(out))
    assert result.exit_code == ExitCode.DATA_QUALITY
    assert "6 of 9 session rows rejected" in result.stderr
    assert [row[:4] for row in read_rejects(out)] == EXPECTED_REJECTS


@pytest.mark.parametrize("name", ["x.txt", "x.json", "x"])
def test_rejects_out_of_another_format_is_a_usage_error(tmp_path: Path, name: str) -> None:
    exports = rejects_exports(tmp_path / "exports")
    out = tmp_path / name
    result = cli(
        "validate", "--exports", str(exports), "--rejects-out", str(out),
        "--max-reject-ratio", "1",
    )  # fmt: skip
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert f"error: --rejects-out {out}: the file name must end in .parquet or .csv" in (
        result.stderr
    )
    assert not out.exists()


# -- 6. a refused run creates no store; `snapshots` on what is not a store -------------------------


def _missing(root: Path) -> tuple[Path, int, str]:
    exports = root / "exprots"
    return exports, ExitCode.FAILURE, f"exports folder {exports} does not exist"


def _empty(root: Path) -> tuple[Path, int, str]:
    exports = root / "exports"
    exports.mkdir()
    return exports, ExitCode.FAILURE, f"no sessions export found in {exports}"


def _left_out(root: Path) -> tuple[Path, int, str]:
    exports = base_exports(root / "exports")
    _rename("group_memberships.csv", "group-memberships.csv")(exports)
    return exports, ExitCode.DATA_QUALITY, "did you mean group_memberships?"


@pytest.mark.parametrize("command", ["run", "backfill"])
@pytest.mark.parametrize("make", [_missing, _empty, _left_out], ids=["typo", "empty", "left-out"])
def test_a_refused_run_creates_no_store(tmp_path: Path, command: str, make: Any) -> None:
    exports, code, message = make(tmp_path)
    store = tmp_path / "snapshots"
    if command == "run":
        result = run(exports, store, FIRST)
    else:
        result = backfill(exports, store, "2026-11-20", FIRST)
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
    assert message in result.stderr
    assert not store.exists()
    assert not store.is_symlink()


def test_snapshots_on_a_folder_that_is_no_store_is_not_found(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    before = sorted(p.relative_to(exports).as_posix() for p in exports.rglob("*"))
    result = cli("snapshots", "--snapshots", str(exports))
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stdout == ""
    assert f"error: {exports} is not a snapshot store" in result.stderr
    assert sorted(p.relative_to(exports).as_posix() for p in exports.rglob("*")) == before

    missing = tmp_path / "nowhere"
    result = cli("snapshots", "--snapshots", str(missing))
    assert result.exit_code == ExitCode.NOT_FOUND
    assert f"no snapshot store at {missing}" in result.stderr
    assert not missing.exists()


def test_snapshots_on_an_empty_folder_lists_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "snapshots"
    empty.mkdir()
    listed = cli("snapshots", "--snapshots", str(empty), "--json")
    assert listed.exit_code == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    table = cli("snapshots", "--snapshots", str(empty))
    assert table.exit_code == 0, table.stderr
    assert table.stdout.splitlines()[0].startswith("date")
    assert len(table.stdout.splitlines()) == 1
    assert list(empty.iterdir()) == []


def test_snapshots_lists_a_store_after_a_refused_run(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    published(exports, store, FIRST)
    _add_parket(exports)
    assert run(exports, store, NEXT).exit_code == ExitCode.DATA_QUALITY
    listed = cli("snapshots", "--snapshots", str(store), "--json")
    assert listed.exit_code == 0, listed.stderr
    assert [(s["snapshot_date"], s["latest"]) for s in json.loads(listed.stdout)] == [(FIRST, True)]


# -- 7. the job file's memory_limit ----------------------------------------------------------------


def _job(tmp_path: Path, memory_limit: str) -> Path:
    job = tmp_path / "job.toml"
    job.write_text(f'[engine]\nmemory_limit = "{memory_limit}"\n')
    return job


@pytest.mark.parametrize("value", ["lots", "0GB", "-1GB", "4", "4 parsecs"])
def test_a_memory_limit_that_is_no_size_is_a_usage_error(tmp_path: Path, value: str) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    result = run(exports, store, FIRST, "--job", str(_job(tmp_path, value)))
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert result.stdout == ""
    assert "memory_limit" in result.stderr
    assert f"'{value}' is not a memory size" in result.stderr
    assert not store.exists()


@pytest.mark.parametrize("value", ["100B", "63MB", "0.05GiB"])
def test_a_memory_limit_too_small_for_duckdb_is_a_usage_error(tmp_path: Path, value: str) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    result = run(exports, store, FIRST, "--job", str(_job(tmp_path, value)))
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert f"'{value}' is too little for DuckDB" in result.stderr
    assert not store.exists()


@pytest.mark.parametrize("value", ["4GB", "1.5GiB", "512MB", "64MB"])
def test_a_memory_size_is_accepted(tmp_path: Path, value: str) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    published(exports, store, FIRST, "--job", str(_job(tmp_path, value)))
    assert latest(store) == FIRST


# -- a failed first run leaves no store (issue #28) ----------------------------------------

SKIP_ARGS = [arg for check in sorted(FIXTURE_SKIPS) for arg in ("--skip-check", check)]


def _truncated_gzip(exports: Path) -> None:
    (exports / "sessions" / "broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00truncated")


def test_a_failed_first_run_leaves_no_store_behind(tmp_path: Path) -> None:
    """A store that did not exist before a failed run does not exist after it: the folder
    the run made, its ledger and lease go (the ledger had parts of the good files); an
    empty folder given as the store stays, empty; a store that holds anything is kept."""
    exports = base_exports(tmp_path / "exports")
    _truncated_gzip(exports)
    store = tmp_path / "st_v1"
    result = cli("run", "--exports", str(exports), "--snapshots", str(store), "--as-of",
                 "2026-11-26", "--max-reject-ratio", "0.5", *SKIP_ARGS)  # fmt: skip
    assert result.exit_code == ExitCode.FAILURE, result.stderr
    assert "cannot read export file sessions/broken.jsonl.gz" in result.stderr
    assert f"removed {store}: the run that made it failed before publishing" in result.stderr
    assert not store.exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("run", "--exports", str(exports), "--snapshots", str(empty), "--as-of",
                 "2026-11-26", "--max-reject-ratio", "0.5", *SKIP_ARGS)  # fmt: skip
    assert result.exit_code == ExitCode.FAILURE
    assert empty.is_dir() and not list(empty.iterdir())

    # A store with a published snapshot keeps everything, the ledger too.
    (exports / "sessions" / "broken.jsonl.gz").unlink()
    assert cli("run", "--exports", str(exports), "--snapshots", str(store), "--as-of",
               "2026-11-25", "--max-reject-ratio", "0.5", *SKIP_ARGS).exit_code == 0  # fmt: skip
    _truncated_gzip(exports)
    before = sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file())
    result = cli("run", "--exports", str(exports), "--snapshots", str(store), "--as-of",
                 "2026-11-26", "--max-reject-ratio", "0.5", *SKIP_ARGS)  # fmt: skip
    assert result.exit_code == ExitCode.FAILURE
    assert "removed" not in result.stderr
    after = sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file())
    assert [p for p in before if p not in after] == []


def test_a_refused_first_run_keeps_its_evidence(tmp_path: Path) -> None:
    """A refusal's quarantine is the evidence an operator reads: the store it is in stays."""
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    result = cli("run", "--exports", str(exports), "--snapshots", str(store), "--as-of",
                 "2026-11-26", "--max-reject-ratio", "0", *SKIP_ARGS)  # fmt: skip
    assert result.exit_code == ExitCode.DATA_QUALITY, result.stderr
    assert list((store / ".quarantine").iterdir())
