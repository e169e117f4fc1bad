"""The completeness checks against history and the quarantine (CONTRACT.md section 5),
end to end through `run` and `backfill`: each check at its threshold, what a refusal
leaves (exit 4, the message, the store untouched, the quarantine), `--skip-check` and
the job file's `[checks]`, the manifest's `checks`, and a backfill stopped by a check.

The suite's conftest skips `stale_exports` for every test (its fixtures are not dated
relative to the as-of dates); every test here turns all checks back on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import Result
from conftest import session, write_exports
from helpers_ops import base_exports, cli, snapshot_files

from scenario_analytics.pipeline.checks import evaluate_checks
from scenario_analytics.publish.records import snapshot_dir_name
from scenario_analytics.publish.store import Store
from scenario_analytics.settings import ChecksSettings

THURSDAY = date(2026, 11, 26)  # the as-of date of most tests
WEEKS_BEFORE = [THURSDAY - timedelta(weeks=n) for n in (4, 3, 2, 1)]  # 10-29 ... 11-19
PREVIOUS = THURSDAY - timedelta(weeks=1)  # 2026-11-19, where the store's history ends
CHECK_NAMES = ["entity_missing", "entity_drop", "day_volume", "stale_exports"]
QUARANTINE = re.compile(r"rejected rows and the report are in (\S+)$")
History = tuple[Path, Path, Callable[..., Path]]  # exports, store, rewrite (see `history`)


@pytest.fixture(autouse=True)
def _all_checks_on(_skip_stale_exports_check: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # After conftest's fixture set it (hence the argument); restored after the test.
    monkeypatch.delenv("SCENARIO_ANALYTICS_SKIP_CHECK", raising=False)


# -- exports --------------------------------------------------------------------------------


def _sessions(day: date, count: int) -> list[dict[str, Any]]:
    """`count` valid sessions created on `day` at 10:00 UTC (ids unique per day)."""
    return [session(f"{day}-{n}", created_at=f"{day}T10:00:00Z") for n in range(count)]


def _members(count: int) -> list[list[str]]:
    return [["id", "email"], *([f"m{n}", f"m{n}@acme.com"] for n in range(count))]


def _weekly(weeks: list[int], today: int) -> list[dict[str, Any]]:
    """Sessions on the four Thursdays before THURSDAY (`weeks`, oldest first) and on it."""
    records = []
    for day, count in zip(WEEKS_BEFORE, weeks, strict=True):
        records += _sessions(day, count)
    return records + _sessions(THURSDAY, today)


def _exports(root: Path, sessions: list[Any], members: int | None = 10) -> Path:
    """An exports folder of `sessions` (and `members` members; None: no members file),
    written afresh: files of an earlier call are removed."""
    for old in ("sessions/a.jsonl", "members.csv"):
        (root / old).unlink(missing_ok=True)
    files: dict[str, Any] = {"sessions/a.jsonl": sessions}
    if members is not None:
        files["members.csv"] = _members(members)
    return write_exports(root, files)


# -- commands and what they leave -------------------------------------------------------------


def _run(exports: Path, store: Path, day: date | str, *extra: str, **kw: Any) -> Result:
    return cli(
        "run", "--exports", str(exports), "--snapshots", str(store), "--as-of", str(day),
        *extra, **kw,
    )  # fmt: skip


def _backfill(exports: Path, store: Path, first: str, last: str, *extra: str) -> Result:
    return cli(
        "backfill", "--exports", str(exports), "--snapshots", str(store),
        "--from", first, "--to", last, *extra,
    )  # fmt: skip


def _published(result: Result, store: Path, day: date | str) -> dict[str, Any]:
    """The run published `day`: its manifest (the published version's, read through the
    store: a rebuild's files may not be in the date's folder yet)."""
    assert result.exit_code == 0, result.stderr
    folder = store / f"snapshot_date={day}"
    assert result.stdout == f"{folder}\n"
    return _manifest(store, day)


def _manifest(store: Path, day: date | str) -> dict[str, Any]:
    """The manifest of the version of `day` the store publishes."""
    files = snapshot_files(store / f"snapshot_date={day}")
    return dict(json.loads(files["manifest.json"].read_text()))


def _checks(manifest: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The manifest's checks: name -> (status, detail), in the manifest's order."""
    return {c["name"]: (c["status"], c["detail"]) for c in manifest["checks"]}


def _state(store: Path) -> dict[str, Any]:
    """What readers see of a store: latest.json's bytes, and each published snapshot's
    folder, version (the build its commit record names) and manifest bytes."""
    latest = store / "latest.json"
    state: dict[str, Any] = {"latest.json": latest.read_bytes() if latest.exists() else None}
    published = Store(store)
    for day in published.dates():
        version = published.version(day)
        assert version is not None, day
        manifest = published.fetch(version, "manifest.json").read_bytes()
        state[snapshot_dir_name(day)] = (version.record.build, manifest)
    return state


def _staged_leftovers(store: Path) -> list[str]:
    """Uploads in `.staging` that no published or retired version names (what a build
    that was not committed would leave), as `snapshots verify` names them."""
    found = Store(store)
    assert not found.is_locked()
    return [
        p.what
        for p in found.verify().problems
        if p.what.startswith(".staging/") and "left over" in p.what
    ]


def _error(result: Result) -> str:
    """The one `error:` line on stderr, without its prefix."""
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("scenario-analytics: error:")]
    return line.removeprefix("scenario-analytics: error: ")


def _refused(
    result: Result,
    store: Path,
    before: dict[str, Any],
    day: date | str,
    *texts: str,
    stdout: str = "",
) -> Path:
    """A refusal: exit 4, nothing on stdout (a backfill: the days it published before),
    `texts` in the error message, the store as it was `before`; returns the quarantine
    folder the message names (which exists)."""
    assert result.exit_code == 4, result.stderr
    assert result.stdout == stdout
    message = _error(result)
    for text in texts:
        assert text in message, (text, message)
    assert "nothing was published" in message
    assert _state(store) == before
    found = QUARANTINE.search(message)
    assert found, message
    folder = Path(found.group(1))
    assert folder.parent == store / ".quarantine"
    assert folder.name.startswith(f"{day}_")
    assert (folder / "rejects.parquet").is_file()
    assert (folder / "report.json").is_file()
    return folder


def _check_refusal(
    result: Result,
    store: Path,
    before: dict[str, Any],
    day: date | str,
    stdout: str = "",
    **failed: str,
) -> Path:
    """A refusal by the checks `failed` (name -> detail, in order): the message names
    each with its figures, and the next step skips exactly those."""
    details = "; ".join(f"check {name} failed: {detail}" for name, detail in failed.items())
    folder = _refused(
        result,
        store,
        before,
        day,
        f"the exports look incomplete for {day}: {details} — ",
        stdout=stdout,
    )
    skips = " ".join(f"--skip-check {name}" for name in failed)
    assert f"if they are complete, run again with {skips} (or tune [checks]" in _error(result)
    for name in set(CHECK_NAMES) - set(failed):
        assert f"check {name} failed" not in result.stderr
    return folder


def _report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text())


def _rows(parquet: Path) -> list[tuple[Any, ...]]:
    return duckdb.sql(
        f"SELECT entity, source_file, position, reason, raw FROM read_parquet('{parquet}')"
    ).fetchall()


@pytest.fixture
def history(tmp_path: Path) -> History:
    """A store with the snapshots of 2026-11-12 and 2026-11-19 from exports of 120
    sessions on each of the four Thursdays before 2026-11-26, 40 on it, and 10 members.
    Returns (exports, store, rewrite): `rewrite(sessions, members)` rewrites the exports
    (None sessions: the same sessions again)."""
    exports, store = tmp_path / "exports", tmp_path / "store"
    _exports(exports, _weekly([120] * 4, 40))
    for day in ("2026-11-12", PREVIOUS):
        _published(_run(exports, store, day), store, day)

    def rewrite(sessions: list[Any] | None = None, members: int | None = 10) -> Path:
        return _exports(exports, _weekly([120] * 4, 40) if sessions is None else sessions, members)

    return exports, store, rewrite


# -- 1. each check at its threshold -------------------------------------------------------


def test_entity_missing_refuses_until_skipped(history: History, tmp_path: Path) -> None:
    exports, store, rewrite = history
    rewrite(members=None)  # the members export did not arrive
    before = _state(store)
    missing = "members has no rows now (10 in the snapshot of 2026-11-19)"
    drop = "members: 0 accepted rows, under 50% of the 10 in the snapshot of 2026-11-19"
    _check_refusal(
        _run(exports, store, THURSDAY), store, before, THURSDAY,
        entity_missing=missing, entity_drop=drop,
    )  # fmt: skip
    # Skipping entity_missing alone: entity_drop still sees members fall to zero.
    result = _run(exports, store, THURSDAY, "--skip-check", "entity_missing")
    _check_refusal(result, store, before, THURSDAY, entity_drop=drop)
    assert "check entity_missing skipped: --skip-check" in result.stderr
    # Turned off in a job file: the same for every run with it.
    job = tmp_path / "job.toml"
    job.write_text(
        "[checks.entity_missing]\nenabled = false\n[checks.entity_drop]\nenabled = false\n"
    )
    checks = _checks(_published(_run(exports, store, THURSDAY, "--job", str(job)), store, THURSDAY))
    for name in ("entity_missing", "entity_drop"):
        off = f"turned off in the job file ([checks.{name}] enabled = false)"
        assert checks[name] == ("skipped", off)
    # Skipped for one run on the command line.
    result = _run(
        exports, store, THURSDAY, "--skip-check", "entity_missing", "--skip-check", "entity_drop"
    )
    checks = _checks(_published(result, store, THURSDAY))
    assert checks["entity_missing"] == ("skipped", "--skip-check")
    assert checks["entity_drop"] == ("skipped", "--skip-check")
    assert checks["day_volume"][0] == checks["stale_exports"][0] == "passed"
    assert Store(store).latest() == THURSDAY


def test_entity_missing_passes_with_one_row(history: History) -> None:
    exports, store, rewrite = history
    rewrite(members=1)
    result = _run(exports, store, THURSDAY, "--skip-check", "entity_drop")
    checks = _checks(_published(result, store, THURSDAY))
    assert checks["entity_missing"] == (
        "passed",
        "every entity with rows in the snapshot of 2026-11-19 has rows",
    )


@pytest.mark.parametrize(("members", "passes"), [(4, False), (5, True)])
def test_entity_drop_at_half_of_the_previous_rows(
    history: History, members: int, passes: bool
) -> None:
    exports, store, rewrite = history
    rewrite(members=members)  # 10 in the snapshot of 2026-11-19
    before = _state(store)
    result = _run(exports, store, THURSDAY)
    if passes:
        checks = _checks(_published(result, store, THURSDAY))
        assert checks["entity_drop"] == (
            "passed",
            "every entity has at least 50% of its rows in the snapshot of 2026-11-19, and "
            "520 sessions up to 2026-11-26 (then 480)",
        )
    else:
        _check_refusal(
            result, store, before, THURSDAY,
            entity_drop="members: 4 accepted rows, under 50% of the 10 in the snapshot of "
            "2026-11-19",
        )  # fmt: skip


@pytest.mark.parametrize(("later", "passes"), [(2, False), (0, True)])
def test_entity_drop_sessions_only_accumulate(tmp_path: Path, later: int, passes: bool) -> None:
    """Sessions up to the as-of date below the previous snapshot's sessions_in_snapshot
    fail, however many rows the files hold: 10 up to 2026-11-19, then the same 10 rows
    of which `later` are dated after the as-of date (2026-11-26)."""
    exports, store = tmp_path / "exports", tmp_path / "store"
    _exports(exports, _sessions(date(2026, 11, 19), 10))
    _published(_run(exports, store, PREVIOUS), store, PREVIOUS)
    sessions = _sessions(THURSDAY, 10 - later) + _sessions(date(2026, 11, 27), later)
    _exports(exports, sessions)
    before = _state(store)
    result = _run(exports, store, THURSDAY)
    if passes:
        checks = _checks(_published(result, store, THURSDAY))
        assert checks["entity_drop"][0] == "passed"
        assert checks["entity_drop"][1].endswith("10 sessions up to 2026-11-26 (then 10)")
    else:
        _check_refusal(
            result, store, before, THURSDAY,
            entity_drop="8 sessions up to 2026-11-26, fewer than the 10 up to 2026-11-19 "
            "(sessions only accumulate)",
        )  # fmt: skip


@pytest.mark.parametrize(
    ("weeks", "today", "status", "median"),
    [
        ([120] * 4, 29, "failed", "120"),  # 25% is 30
        ([120] * 4, 30, "passed", "120"),
        ([100, 101, 150, 151], 31, "failed", "125.5"),  # 25% is 31.375
        ([100, 101, 150, 151], 32, "passed", "125.5"),
        ([100] * 4, 24, "failed", "100"),  # a median of exactly min_median is judged
        ([0, 99, 99, 500], 1, "skipped", "99"),
    ],
)
def test_day_volume_at_a_quarter_of_the_median(
    tmp_path: Path, weeks: list[int], today: int, status: str, median: str
) -> None:
    exports, store = _exports(tmp_path / "exports", _weekly(weeks, today)), tmp_path / "store"
    result = _run(exports, store, THURSDAY)
    detail = (
        f"{today} session{'' if today == 1 else 's'} created on 2026-11-26; the median of "
        "the 4 Thursdays before is "
        f"{median}"
        + {"failed": ": under 25% of it", "passed": "", "skipped": ", under 100: too few to judge"}[
            status
        ]
    )
    if status == "failed":
        _check_refusal(result, store, {"latest.json": None}, THURSDAY, day_volume=detail)
    else:
        checks = _checks(_published(result, store, THURSDAY))
        assert checks["day_volume"] == (status, detail)


@pytest.mark.parametrize(
    ("newest", "hours"),
    [
        ("2026-11-24T00:00:00Z", None),  # exactly 72 hours before the end of 2026-11-26
        ("2026-11-24T01:00:00+01:00", None),  # the same instant, written with an offset
        ("2026-11-27T08:00:00Z", None),  # after the as-of day
        ("2026-11-23T23:59:59Z", "72.0"),  # a second more
        ("2026-11-24T00:30:00+01:00", "72.5"),
        ("2026-11-19T10:00:00Z", "182.0"),
    ],
)
def test_stale_exports_at_72_hours(tmp_path: Path, newest: str, hours: str | None) -> None:
    older = _sessions(date(2026, 11, 10), 3)
    exports = _exports(tmp_path / "exports", [*older, session("newest", created_at=newest)])
    store = tmp_path / "store"
    result = _run(exports, store, THURSDAY)
    utc = {
        "2026-11-24T01:00:00+01:00": "2026-11-24T00:00:00Z",
        "2026-11-24T00:30:00+01:00": "2026-11-23T23:30:00Z",
    }.get(newest, newest)
    figures = f"the newest accepted session was created at {utc}"
    if hours is None:
        checks = _checks(_published(result, store, THURSDAY))
        assert checks["stale_exports"] == ("passed", figures)
    else:
        _check_refusal(
            result, store, {"latest.json": None}, THURSDAY,
            stale_exports=f"{figures}, {hours} hours before the end of 2026-11-26 (more than 72)",
        )  # fmt: skip
        assert not store.joinpath("latest.json").exists() and not Store(store).dates()


@pytest.mark.parametrize(
    ("sessions", "extra"), [([], []), (["{not json", "{nor this"], ["--max-reject-ratio", "1"])]
)
def test_stale_exports_without_any_accepted_session(
    tmp_path: Path, sessions: list[Any], extra: list[str]
) -> None:
    """An empty sessions export, or one whose rows are all rejected (with the gate
    opened), is as stale as can be."""
    exports, store = _exports(tmp_path / "exports", sessions), tmp_path / "store"
    result = _run(exports, store, THURSDAY, *extra)
    folder = _check_refusal(
        result, store, {"latest.json": None}, THURSDAY, stale_exports="no accepted session at all"
    )
    assert _report(folder)["rejects"] == len(sessions)


def test_checks_compare_with_the_newest_snapshot_before_the_as_of_date(tmp_path: Path) -> None:
    """Not the latest one, nor a snapshot of the same date being rebuilt."""
    exports, store = tmp_path / "exports", tmp_path / "store"
    sessions = [s for n in range(17, 27) for s in _sessions(date(2026, 11, n), 1)]
    for day, members in (("2026-11-19", 10), ("2026-11-26", 100)):
        _published(_run(_exports(exports, sessions, members), store, day), store, day)
    _exports(exports, sessions, 4)  # under half of 2026-11-19's 10
    before = _state(store)
    _check_refusal(
        _run(exports, store, "2026-11-22"), store, before, "2026-11-22",
        entity_drop="members: 4 accepted rows, under 50% of the 10 in the snapshot of 2026-11-19",
    )  # fmt: skip
    _exports(exports, sessions, 6)  # under half of 2026-11-26's 100, not of 2026-11-19's
    checks = _checks(_published(_run(exports, store, "2026-11-22"), store, "2026-11-22"))
    assert checks["entity_drop"][0] == "passed"
    assert "snapshot of 2026-11-19" in checks["entity_drop"][1]
    assert Store(store).latest() == THURSDAY  # an older date does not move latest.json
    # Rebuilding 2026-11-26 compares with 2026-11-22 (6), not with its own 100.
    _exports(exports, sessions, 40)
    checks = _checks(_published(_run(exports, store, THURSDAY), store, THURSDAY))
    assert checks["entity_drop"][0] == "passed"
    assert "snapshot of 2026-11-22" in checks["entity_drop"][1]


# -- 2. every refusal leaves the store as it was -------------------------------------------


REFUSALS = {
    # name: (sessions or None for the history's, members, extra options, failed checks)
    "entity_missing": (
        None, None, [],
        {
            "entity_missing": "members has no rows now (10 in the snapshot of 2026-11-19)",
            "entity_drop": "members: 0 accepted rows, under 50% of the 10 in the snapshot of "
            "2026-11-19",
        },
    ),
    "entity_drop": (
        None, 4, [],
        {"entity_drop": "members: 4 accepted rows, under 50% of the 10 in the snapshot of "
         "2026-11-19"},
    ),
    "day_volume": (
        _weekly([120] * 4, 29), 10, [],
        {"day_volume": "29 sessions created on 2026-11-26; the median of the 4 Thursdays "
         "before is 120: under 25% of it"},
    ),
    "stale_exports": (
        _weekly([120] * 4, 0), 10, ["--skip-check", "day_volume"],
        {"stale_exports": "the newest accepted session was created at 2026-11-19T10:00:00Z, "
         "182.0 hours before the end of 2026-11-26 (more than 72)"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_failed_check_publishes_nothing(history: History, name: str) -> None:
    exports, store, rewrite = history
    sessions, members, extra, failed = REFUSALS[name]
    rewrite(sessions, members)
    before = _state(store)
    assert set(before) == {"latest.json", "snapshot_date=2026-11-12", "snapshot_date=2026-11-19"}
    result = _run(exports, store, THURSDAY, *extra)
    folder = _check_refusal(result, store, before, THURSDAY, **failed)
    for check in failed:
        assert f"warning: check {check} failed" in result.stderr
    assert "summary: run failed after" in result.stderr and "(exit 4)" in result.stderr
    assert Store(store).dates() == [date(2026, 11, 12), PREVIOUS]
    assert _staged_leftovers(store) == []
    report = _report(folder)
    assert report["gate"] == "checks"
    assert [(c["name"], c["status"]) for c in report["checks"] if c["status"] == "failed"] == [
        (check, "failed") for check in failed
    ]


def test_the_reject_gate_publishes_nothing(history: History) -> None:
    exports, store, rewrite = history
    rewrite([*_weekly([120] * 4, 40), "{not json"])
    before = _state(store)
    result = _run(exports, store, THURSDAY, "--max-reject-ratio", "0")
    folder = _refused(
        result, store, before, THURSDAY,
        "1 of 521 session rows rejected (0.19%), more than the allowed 0.00% "
        "(malformed_record 1)",
    )  # fmt: skip
    assert _report(folder)["gate"] == "reject_ratio"
    assert "check entity_missing" not in result.stderr  # refused before the checks ran


# -- 3. skipping and tuning --------------------------------------------------------------------


def test_skip_check_is_for_one_run(tmp_path: Path) -> None:
    exports = _exports(tmp_path / "exports", _weekly([120] * 4, 29))
    store = tmp_path / "store"
    result = _run(exports, store, THURSDAY, "--skip-check", "day_volume")
    checks = _checks(_published(result, store, THURSDAY))
    assert checks["day_volume"] == ("skipped", "--skip-check")
    assert checks["stale_exports"][0] == "passed"  # the others still run
    # The next run checks again.
    before = _state(store)
    _check_refusal(
        _run(exports, store, THURSDAY), store, before, THURSDAY,
        day_volume="29 sessions created on 2026-11-26; the median of the 4 Thursdays before "
        "is 120: under 25% of it",
    )  # fmt: skip
    # The environment variable takes space-separated names.
    env = {"SCENARIO_ANALYTICS_SKIP_CHECK": "day_volume stale_exports"}
    result = _run(exports, store, THURSDAY, env=env)
    checks = _checks(_published(result, store, THURSDAY))
    assert checks["day_volume"] == checks["stale_exports"] == ("skipped", "--skip-check")
    assert checks["entity_missing"][0] == checks["entity_drop"][0] == "skipped"
    assert "no snapshot published before" in checks["entity_drop"][1]


@pytest.mark.parametrize(
    ("toml", "check", "status", "detail"),
    [
        (
            "[checks.day_volume]\nenabled = false\n",
            "day_volume", "skipped",
            "turned off in the job file ([checks.day_volume] enabled = false)",
        ),
        (
            "[checks.day_volume]\nmin_ratio = 0.2\n",
            "day_volume", "passed",
            "29 sessions created on 2026-11-26; the median of the 4 Thursdays before is 120",
        ),
        (
            "[checks.day_volume]\nmin_median = 121\n",
            "day_volume", "skipped",
            "29 sessions created on 2026-11-26; the median of the 4 Thursdays before is 120, "
            "under 121: too few to judge",
        ),
        (
            "[checks.day_volume]\nmin_ratio = 0.1\nweeks = 2\n",
            "day_volume", "passed",
            "29 sessions created on 2026-11-26; the median of the 2 Thursdays before is 120",
        ),
    ],
)  # fmt: skip
def test_the_job_file_turns_a_check_off_or_tunes_it(
    tmp_path: Path, toml: str, check: str, status: str, detail: str
) -> None:
    exports = _exports(tmp_path / "exports", _weekly([120] * 4, 29))
    store, job = tmp_path / "store", tmp_path / "job.toml"
    job.write_text(toml)
    result = _run(exports, store, THURSDAY, "--job", str(job))
    assert _checks(_published(result, store, THURSDAY))[check] == (status, detail)


@pytest.mark.parametrize(
    ("toml", "status"),
    [
        ("[checks.stale_exports]\nenabled = false\n", "skipped"),
        ("[checks.stale_exports]\nmax_hours = 182\n", "passed"),  # 182.0 hours old
        ("[checks.stale_exports]\nmax_hours = 181.9\n", "failed"),
    ],
)
def test_the_job_file_tunes_stale_exports(tmp_path: Path, toml: str, status: str) -> None:
    exports = _exports(tmp_path / "exports", _sessions(PREVIOUS, 3))
    store, job = tmp_path / "store", tmp_path / "job.toml"
    job.write_text(toml)
    result = _run(exports, store, THURSDAY, "--job", str(job))
    newest = "the newest accepted session was created at 2026-11-19T10:00:00Z"
    if status == "failed":
        detail = f"{newest}, 182.0 hours before the end of 2026-11-26 (more than 181.9)"
        _check_refusal(result, store, {"latest.json": None}, THURSDAY, stale_exports=detail)
    else:
        detail = (
            "turned off in the job file ([checks.stale_exports] enabled = false)"
            if status == "skipped"
            else newest
        )
        assert _checks(_published(result, store, THURSDAY))["stale_exports"] == (status, detail)


@pytest.mark.parametrize(
    ("toml", "failed"),
    [
        (
            "[checks.day_volume]\nmin_ratio = 0.5\n",
            {"day_volume": "60 sessions created on 2026-11-26; the median of the 4 Thursdays "
             "before is 160: under 50% of it"},
        ),
        (
            "[checks.day_volume]\nweeks = 1\n",
            {"day_volume": "60 sessions created on 2026-11-26; the median of the Thursday "
             "before is 400: under 25% of it"},
        ),
        (
            "[checks.stale_exports]\nmax_hours = 9.5\n",
            {"stale_exports": "the newest accepted session was created at "
             "2026-11-26T10:00:00Z, 14.0 hours before the end of 2026-11-26 (more than 9.5)"},
        ),
    ],
)  # fmt: skip
def test_a_tuned_threshold_can_refuse(tmp_path: Path, toml: str, failed: dict[str, str]) -> None:
    """60 sessions on 2026-11-26 at 10:00 pass the defaults (at least 25% of the median
    160 of 40, 160, 160, 400); the job file makes a check stricter."""
    exports = _exports(tmp_path / "exports", _weekly([40, 160, 160, 400], 60))
    defaults = tmp_path / "defaults"
    checks = _checks(_published(_run(exports, defaults, THURSDAY), defaults, THURSDAY))
    assert checks["day_volume"][0] == checks["stale_exports"][0] == "passed"
    store, job = tmp_path / "store", tmp_path / "job.toml"
    job.write_text(toml)
    result = _run(exports, store, THURSDAY, "--job", str(job))
    _check_refusal(result, store, {"latest.json": None}, THURSDAY, **failed)


@pytest.mark.parametrize("command", ["run", "backfill"])
def test_an_unknown_check_is_a_usage_error(tmp_path: Path, command: str) -> None:
    exports = _exports(tmp_path / "exports", _weekly([120] * 4, 40))
    store = tmp_path / "store"
    dates = ["--as-of", "2026-11-26"]
    if command == "backfill":
        dates = ["--from", "2026-11-26", "--to", "2026-11-26"]
    base = [command, "--exports", str(exports), "--snapshots", str(store), *dates]
    choices = "is not one of 'entity_missing', 'entity_drop', 'day_volume', 'stale_exports'"
    result = cli(*base, "--skip-check", "day_volume", "--skip-check", "volume")
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert "Invalid value for '--skip-check'" in result.stderr
    assert f"'volume' {choices}" in result.stderr
    result = cli(*base, env={"SCENARIO_ANALYTICS_SKIP_CHECK": "day_volume stale"})
    assert result.exit_code == 2, result.stderr
    assert f"'stale' {choices}" in result.stderr
    job = tmp_path / "job.toml"
    job.write_text("[checks.volume]\nenabled = false\n")
    result = cli(*base, "--job", str(job))
    assert result.exit_code == 2, result.stderr
    assert "checks.volume" in _error(result)
    job.write_text("[checks.day_volume]\nmin_ratio = 0\n")
    result = cli(*base, "--job", str(job))
    assert result.exit_code == 2, result.stderr
    assert "checks.day_volume.min_ratio" in _error(result)
    assert not store.exists()


# -- 4. the manifest ------------------------------------------------------------------------


def test_the_manifest_lists_the_four_checks_in_order(history: History) -> None:
    exports, store, _rewrite = history
    first = _manifest(store, "2026-11-12")
    assert [(c["name"], c["status"]) for c in first["checks"]] == [
        ("entity_missing", "skipped"),
        ("entity_drop", "skipped"),
        ("day_volume", "skipped"),
        ("stale_exports", "passed"),
    ]
    assert list(first["checks"][0]) == ["name", "status", "detail"]
    assert first["checks"][2]["detail"] == (
        "120 sessions created on 2026-11-12; the median of the 4 Thursdays before is 60, "
        "under 100: too few to judge"
    )
    manifest = _published(_run(exports, store, THURSDAY), store, THURSDAY)
    assert manifest["checks"] == [
        {
            "name": "entity_missing",
            "status": "passed",
            "detail": "every entity with rows in the snapshot of 2026-11-19 has rows",
        },
        {
            "name": "entity_drop",
            "status": "passed",
            "detail": "every entity has at least 50% of its rows in the snapshot of 2026-11-19, "
            "and 520 sessions up to 2026-11-26 (then 480)",
        },
        {
            "name": "day_volume",
            "status": "passed",
            "detail": "40 sessions created on 2026-11-26; the median of the 4 Thursdays before "
            "is 120",
        },
        {
            "name": "stale_exports",
            "status": "passed",
            "detail": "the newest accepted session was created at 2026-11-26T10:00:00Z",
        },
    ]


def test_each_check_is_an_event(tmp_path: Path) -> None:
    exports = _exports(tmp_path / "exports", _weekly([120] * 4, 29))
    store = tmp_path / "store"
    result = _run(exports, store, THURSDAY, "--log-format", "json")
    assert result.exit_code == 4, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    checks = [e for e in events if e["stage"] == "check"]
    assert [(e["event"], e["check"], e["status"]) for e in checks] == [
        ("info", "entity_missing", "skipped"),
        ("info", "entity_drop", "skipped"),
        ("warning", "day_volume", "failed"),
        ("info", "stale_exports", "passed"),
    ]
    assert all(e["snapshot_date"] == "2026-11-26" for e in checks)
    assert checks[2]["message"].startswith("check day_volume failed: 29 sessions created on")
    (quarantine,) = [e for e in events if e["stage"] == "quarantine"]
    assert Path(quarantine["path"]).is_dir()
    assert events[-1]["event"] == "summary" and events[-1]["exit_code"] == 4


def test_day_volume_names_a_large_median_in_full() -> None:
    """Too many sessions for an end-to-end run: the check itself, on the table it reads."""
    con = duckdb.connect()
    con.execute("CREATE TABLE sessions_per_day (day DATE, sessions BIGINT, newest TIMESTAMP)")
    for day in WEEKS_BEFORE:
        con.execute("INSERT INTO sessions_per_day VALUES (?, 1234567, ?)", [day, day])
    con.execute("INSERT INTO sessions_per_day VALUES (?, 100000, ?)", [THURSDAY, THURSDAY])
    results = evaluate_checks(con, {}, THURSDAY, None, ChecksSettings())
    assert results[2].status == "failed"
    assert results[2].detail == (
        "100,000 sessions created on 2026-11-26; the median of the 4 Thursdays before is "
        "1,234,567: under 25% of it"
    )


# -- 5. the quarantine --------------------------------------------------------------------------


def _with_rejects(root: Path) -> Path:
    """base_exports (a malformed line, a missing id, a bad score in Parquet) and a member
    without an id: rejects of two entities in three formats."""
    exports = base_exports(root)
    return write_exports(
        exports, {"members.csv": [["id", "email"], ["u1", "one@acme.com"], ["", "x@acme.com"]]}
    )


def test_a_reject_gate_quarantine_holds_every_rejected_row(tmp_path: Path) -> None:
    exports, store = _with_rejects(tmp_path / "exports"), tmp_path / "store"
    expected_rows = tmp_path / "validated.parquet"
    result = cli(
        "validate", "--exports", str(exports), "--rejects-out", str(expected_rows),
        "--max-reject-ratio", "1", "--skip-check", "day_volume", "--skip-check", "stale_exports",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    expected = _rows(expected_rows)
    assert [(e, f, p, r) for e, f, p, r, _raw in expected] == [
        ("members", "members.csv", 3, "missing_id"),
        ("sessions", "sessions/a.jsonl", 3, "malformed_record"),
        ("sessions", "sessions/b.csv", 4, "missing_id"),
        ("sessions", "sessions/c.parquet", 2, "bad_score"),
    ]
    assert expected[1][4] == "{not json"
    assert '"id":"p2"' in expected[3][4]
    for attempt in range(2):  # the second run reuses the files' rows from the ledger
        result = _run(exports, store, "2026-11-23", "--max-reject-ratio", "0")
        folder = _refused(
            result, store, {"latest.json": None}, "2026-11-23",
            "3 of 9 session rows rejected (33.33%), more than the allowed 0.00% "
            "(bad_score 1, malformed_record 1, missing_id 1)",
        )  # fmt: skip
        columns = duckdb.sql(f"SELECT * FROM '{folder / 'rejects.parquet'}'").columns
        assert columns == ["entity", "source_file", "position", "reason", "raw"]
        assert _rows(folder / "rejects.parquet") == expected, attempt
        report = _report(folder)
        assert set(report) == {
            "gate", "message", "checks", "entities", "rejects_by_reason", "snapshot_date",
            "created_at", "rejects",
        }  # fmt: skip
        assert report["gate"] == "reject_ratio"
        assert report["message"] == _error(result).split(" — ")[0]
        assert report["checks"] == []
        assert report["snapshot_date"] == "2026-11-23"
        assert folder.name == f"2026-11-23_{report['created_at']}"
        assert report["rejects"] == 4
        assert report["rejects_by_reason"] == {
            "bad_score": 1, "malformed_record": 1, "missing_id": 2,
        }  # fmt: skip
        assert report["entities"]["sessions"] == {
            "rows_read": 9, "rows_accepted": 6, "rows_rejected": 3,
        }  # fmt: skip
        assert report["entities"]["members"]["rows_rejected"] == 1
    assert len(list((store / ".quarantine").iterdir())) == 2


def test_a_check_quarantine_names_the_failed_check(tmp_path: Path) -> None:
    sessions = [*_weekly([120] * 4, 29), "{not json"]  # one reject, under the gate
    exports, store = _exports(tmp_path / "exports", sessions), tmp_path / "store"
    result = _run(exports, store, THURSDAY)
    detail = (
        "29 sessions created on 2026-11-26; the median of the 4 Thursdays before is 120: "
        "under 25% of it"
    )
    folder = _check_refusal(result, store, {"latest.json": None}, THURSDAY, day_volume=detail)
    report = _report(folder)
    assert report["gate"] == "checks"
    assert report["message"] == (
        f"the exports look incomplete for 2026-11-26: check day_volume failed: {detail}"
    )
    assert [c["name"] for c in report["checks"]] == CHECK_NAMES
    assert report["checks"][2] == {"name": "day_volume", "status": "failed", "detail": detail}
    assert [c["status"] for c in report["checks"]] == ["skipped", "skipped", "failed", "passed"]
    assert report["rejects"] == 1 and report["rejects_by_reason"] == {"malformed_record": 1}
    assert _rows(folder / "rejects.parquet") == [
        ("sessions", "sessions/a.jsonl", 510, "malformed_record", "{not json")
    ]


def test_twelve_refusals_keep_the_newest_ten_quarantines(tmp_path: Path) -> None:
    exports, store = base_exports(tmp_path / "exports"), tmp_path / "store"
    # Decreasing as-of dates: the newest quarantines have the oldest dates in their names.
    days = [date(2026, 11, 12) - timedelta(days=n) for n in range(12)]
    folders = []
    for day in days:
        result = _run(exports, store, day, "--max-reject-ratio", "0")
        folders.append(_refused(result, store, {"latest.json": None}, day))
    kept = sorted((store / ".quarantine").iterdir())
    assert sorted(kept) == sorted(folders[2:])
    assert not folders[0].exists() and not folders[1].exists()
    assert all((f / "rejects.parquet").is_file() and (f / "report.json").is_file() for f in kept)


# -- 6. backfills -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sessions", "first", "last", "failing", "failed"),
    [
        (
            _weekly([120] * 4, 10), "2026-11-24", "2026-11-27", "2026-11-26",
            {"day_volume": "10 sessions created on 2026-11-26; the median of the 4 Thursdays "
             "before is 120: under 25% of it"},
        ),
        (
            [s for n in range(14, 21) for s in _sessions(date(2026, 11, n), 2)],
            "2026-11-21", "2026-11-24", "2026-11-23",
            {"stale_exports": "the newest accepted session was created at 2026-11-20T10:00:00Z, "
             "86.0 hours before the end of 2026-11-23 (more than 72)"},
        ),
    ],
)  # fmt: skip
def test_a_backfill_stops_at_the_day_that_fails(
    tmp_path: Path,
    sessions: list[Any],
    first: str,
    last: str,
    failing: str,
    failed: dict[str, str],
) -> None:
    exports, store = _exports(tmp_path / "exports", sessions), tmp_path / "store"
    result = _backfill(exports, store, first, last)
    days = [date.fromisoformat(first) + timedelta(days=n) for n in range(4)]
    built = [d for d in days if d < date.fromisoformat(failing)]
    # The days before the failing one stay published (latest.json names the last of
    # them); the failing day and those after it are not.
    assert Store(store).dates() == built
    assert Store(store).latest() == built[-1]
    for day in built:
        manifest = json.loads((store / f"snapshot_date={day}" / "manifest.json").read_text())
        assert [c["name"] for c in manifest["checks"]] == CHECK_NAMES
        assert "failed" not in {c["status"] for c in manifest["checks"]}
    # Each day's line was printed as the day was published, before the refusal.
    printed = "".join(f"{d}\tpublished\t{store / f'snapshot_date={d}'}\n" for d in built)
    _check_refusal(result, store, _state(store), failing, printed, **failed)
    assert "summary: backfill failed after" in result.stderr
    for day in built:
        assert f"published {store / f'snapshot_date={day}'}" in result.stderr
    # Skipping the check for one backfill builds the rest; the built days are up to date.
    (name,) = failed
    result = _backfill(exports, store, first, last, "--skip-check", name)
    assert result.exit_code == 0, result.stderr
    assert [line.split("\t")[:2] for line in result.stdout.splitlines()] == [
        [d.isoformat(), "skipped" if d in built else "published"] for d in days
    ]
    assert Store(store).dates() == days


def test_a_backfill_refused_by_the_reject_gate_names_its_first_day(tmp_path: Path) -> None:
    exports, store = base_exports(tmp_path / "exports"), tmp_path / "store"
    result = _backfill(exports, store, "2026-11-20", "2026-11-23", "--max-reject-ratio", "0")
    folder = _refused(result, store, {"latest.json": None}, "2026-11-20", "3 of 9 session rows")
    assert _report(folder)["gate"] == "reject_ratio"
    assert Store(store).dates() == []
