"""`backfill`: one snapshot per day, each equal to `run --as-of` that day; up-to-date
days skipped, `--force` rebuilds, a killed backfill resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import session, write_exports
from helpers_ops import base_exports, cli, cli_subprocess, snapshot_content, snapshot_files

from scenario_analytics.publish.store import Store

DAYS = ["2026-11-21", "2026-11-22", "2026-11-23"]
RATIO = ["--max-reject-ratio", "0.5"]


def _backfill(
    exports: Path, store: Path, first: str, last: str, *extra: str
) -> tuple[int, list[list[str]], str]:
    result = cli(
        "backfill",
        "--exports",
        str(exports),
        "--snapshots",
        str(store),
        "--from",
        first,
        "--to",
        last,
        *RATIO,
        *extra,
    )
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    return result.exit_code, lines, result.stderr


def _manifest(store: Path, day: str) -> dict[str, Any]:
    """The manifest of the version of `day` the store publishes (read through the store:
    a rebuild's files may not be in the date's folder yet)."""
    files = snapshot_files(store / f"snapshot_date={day}")
    return dict(json.loads(files["manifest.json"].read_text()))


def created_at(store: Path, day: str) -> str:
    return str(_manifest(store, day)["created_at"])


def _run(exports: Path, store: Path, day: str) -> Path:
    result = cli(
        "run", "--exports", str(exports), "--snapshots", str(store), "--as-of", day, *RATIO
    )
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip())


def test_backfill_days_equal_per_day_runs(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    code, lines, err = _backfill(exports, store, DAYS[0], DAYS[-1])
    assert code == 0, err
    assert [(d, s) for d, s, _p in lines] == [(d, "published") for d in DAYS]
    assert [p for _d, _s, p in lines] == [str(store / f"snapshot_date={d}") for d in DAYS]
    assert Store(store).latest().isoformat() == DAYS[-1]  # type: ignore[union-attr]
    for day in DAYS:
        alone = _run(exports, tmp_path / f"run-{day}", day)
        assert snapshot_content(store / f"snapshot_date={day}") == snapshot_content(alone), day
    # Days differ where the as-of date matters.
    counts = [_manifest(store, d)["counts"] for d in DAYS]
    assert [c["sessions_in_snapshot"] for c in counts] == [3, 4, 5]
    assert "summary: 3 days (3 published, 0 skipped as up to date)" in err


def test_up_to_date_days_are_skipped_and_force_rebuilds(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _run(exports, store, DAYS[1])  # a nightly run counts as up to date too
    made = created_at(store, DAYS[1])
    code, lines, err = _backfill(exports, store, DAYS[0], DAYS[-1])
    assert code == 0, err
    assert [s for _d, s, _p in lines] == ["published", "skipped", "published"]
    assert f"{DAYS[1]}: up to date, skipped" in err
    assert created_at(store, DAYS[1]) == made

    before = {d: created_at(store, d) for d in DAYS}
    code, lines, err = _backfill(exports, store, DAYS[0], DAYS[-1])
    assert [s for _d, s, _p in lines] == ["skipped"] * 3
    assert "loaded" not in err  # nothing to build: the exports are not even parsed
    assert {d: created_at(store, d) for d in DAYS} == before

    code, lines, err = _backfill(exports, store, DAYS[0], DAYS[-1], "--force")
    assert code == 0, err
    assert [s for _d, s, _p in lines] == ["published"] * 3
    assert all(created_at(store, d) != before[d] for d in DAYS)


def test_new_inputs_or_other_settings_make_days_out_of_date(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    assert _backfill(exports, store, DAYS[0], DAYS[1])[0] == 0
    write_exports(
        exports, {"sessions/z.jsonl": [session("late", created_at="2026-11-21T01:00:00Z")]}
    )
    code, lines, _err = _backfill(exports, store, DAYS[0], DAYS[1])
    assert [s for _d, s, _p in lines] == ["published", "published"]
    job = tmp_path / "job.toml"
    job.write_text('[materialize]\nwindows = ["all", 7]\n')
    code, lines, _err = _backfill(exports, store, DAYS[0], DAYS[1], "--job", str(job))
    assert [s for _d, s, _p in lines] == ["published", "published"]
    code, lines, _err = _backfill(exports, store, DAYS[0], DAYS[1], "--job", str(job))
    assert [s for _d, s, _p in lines] == ["skipped", "skipped"]


def test_a_killed_backfill_resumes_where_it_stopped(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    days = ["2026-11-20", *DAYS]
    killed = cli_subprocess(
        "backfill",
        "--exports",
        str(exports),
        "--snapshots",
        str(store),
        "--from",
        days[0],
        "--to",
        days[-1],
        *RATIO,
        env={"SCENARIO_ANALYTICS_KILL_AT": "day-published:2"},
    )
    assert killed.returncode == -9, killed.stderr
    assert [d.isoformat() for d in Store(store).dates()] == days[:2]
    assert Store(store).latest().isoformat() == days[1]  # type: ignore[union-attr]
    code, lines, err = _backfill(exports, store, days[0], days[-1])
    assert code == 0, err
    assert [s for _d, s, _p in lines] == ["skipped", "skipped", "published", "published"]
    assert "summary: 4 days (2 published, 2 skipped as up to date)" in err
    assert "7 files (0 read, 7 unchanged)" in err  # the ledger kept the parsed files
    # Nothing the killed run left stays: no upload never committed (`.staging`, `.objects`),
    # no folder of a date not published; every published file whole.
    assert not Store(store).is_locked()  # else verify would not look for leftovers
    verification = Store(store).verify()
    assert verification.whole, [str(p) for p in verification.problems]
    assert Store(store).latest().isoformat() == days[-1]  # type: ignore[union-attr]


def test_backfill_of_older_days_keeps_latest(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _run(exports, store, "2026-11-26")
    assert _backfill(exports, store, DAYS[0], DAYS[-1])[0] == 0
    assert Store(store).latest().isoformat() == "2026-11-26"  # type: ignore[union-attr]
    code, _lines, err = _backfill(exports, store, DAYS[0], DAYS[0])
    assert code == 0 and "summary: 1 day (0 published, 1 skipped as up to date)" in err
    # The range's last day, not called the store's newest (2026-11-26 is; issue #28).
    assert f"; last day of the range {store / ('snapshot_date=' + DAYS[0])} (" in err
    assert "newest" not in err


def test_bad_range_gate_and_lock(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    code, lines, err = _backfill(exports, store, DAYS[-1], DAYS[0])
    assert code == 2 and lines == []
    assert "is after --to" in err
    result = cli(
        "backfill",
        "--exports",
        str(exports),
        "--snapshots",
        str(store),
        "--from",
        DAYS[0],
        "--to",
        DAYS[-1],
        "--max-reject-ratio",
        "0.1",
    )
    assert result.exit_code == 4, result.stderr
    assert result.stdout == "" and Store(store).dates() == []
    with Store(store).lock():
        code, lines, err = _backfill(exports, store, DAYS[0], DAYS[-1])
    assert code == 5 and "in use by" in err
