"""Per-day data digests (issue 13, parts 3 and 4): a day is up to date while what it uses
is unchanged; late exports make exactly the days from theirs on stale; `snapshots stale`
lists them, `backfill --stale` rebuilds them, `run` warns of them."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from conftest import session, write_exports
from helpers_ops import (
    base_exports,
    cli,
    day_digests,
    manifest_bytes,
    snapshot_content,
)

from scenario_analytics.publish.fingerprint import data_digest

RATIO = ["--max-reject-ratio", "0.5"]
DAYS = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]


def _where(exports: Path, store: Path) -> list[str]:
    return ["--exports", str(exports), "--snapshots", str(store)]


def _backfill(exports: Path, store: Path, first: str, last: str, *extra: str) -> list[str]:
    result = cli("backfill", *_where(exports, store), "--from", first, "--to", last,
                 *RATIO, *extra)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return [line.split("\t")[1] for line in result.stdout.splitlines()]


def _stale(exports: Path, store: Path, *extra: str) -> list[dict[str, object]]:
    result = cli("snapshots", "stale", *_where(exports, store), "--json", *extra)
    assert result.exit_code == 0, result.stderr
    found: list[dict[str, object]] = json.loads(result.stdout)
    return found


def test_a_file_of_later_sessions_leaves_earlier_days_up_to_date(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    assert _backfill(exports, store, DAYS[0], DAYS[-1]) == ["published"] * 4
    before = {d: manifest_bytes(store, d) for d in DAYS}
    write_exports(
        exports, {"sessions/z.jsonl": [session("later", created_at="2026-11-24T08:00:00Z")]}
    )
    assert _stale(exports, store) == []
    statuses = _backfill(exports, store, DAYS[0], "2026-11-24")
    assert statuses == ["skipped"] * 4 + ["published"]
    assert {d: manifest_bytes(store, d) for d in DAYS} == before


def test_a_late_file_makes_exactly_the_days_from_its_own_stale(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    assert _backfill(exports, store, DAYS[0], DAYS[-1]) == ["published"] * 4
    untouched = {d: manifest_bytes(store, d) for d in DAYS[:2]}
    write_exports(
        exports, {"sessions/z.jsonl": [session("late", created_at="2026-11-22T01:00:00Z")]}
    )
    stale = _stale(exports, store)
    assert [(s["snapshot_date"], s["sessions_then"], s["sessions_now"]) for s in stale] == [
        ("2026-11-22", 4, 5),
        ("2026-11-23", 5, 6),
    ]
    assert {s["reason"] for s in stale} == {"data_changed"}
    assert [s["snapshot_date"] for s in _stale(exports, store, "--to", DAYS[2])] == [DAYS[2]]

    # The next run warns, naming the days and the command that rebuilds them.
    result = cli("run", *_where(exports, store), "--as-of", "2026-11-24", *RATIO)
    assert result.exit_code == 0, result.stderr
    assert "2 earlier snapshots out of date" in result.stderr
    assert "2026-11-22, 2026-11-23" in result.stderr
    assert "--from 2026-11-22 --to 2026-11-23 --stale" in result.stderr

    # --stale rebuilds exactly those (a day not published stays so), equal to fresh runs.
    statuses = _backfill(exports, store, "2026-11-19", "2026-11-24", "--stale")
    assert statuses == ["skipped", "skipped", "published", "published", "skipped"]
    assert not (store / "snapshot_date=2026-11-19").exists()
    assert {d: manifest_bytes(store, d) for d in DAYS[:2]} == untouched
    for day in DAYS:
        fresh = cli("run", *_where(exports, tmp_path / f"fresh-{day}"), "--as-of", day, *RATIO)
        assert fresh.exit_code == 0, fresh.stderr
        content = snapshot_content(store / f"snapshot_date={day}")
        assert content == snapshot_content(Path(fresh.stdout.strip())) or day in DAYS[:2]
    assert _stale(exports, store) == []


def test_a_directory_row_a_day_uses_makes_it_stale(tmp_path: Path) -> None:
    """A user who is not a member takes the email of their latest session: a later session
    with another email changes what earlier days show, so they are stale (by design)."""
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _backfill(exports, store, DAYS[2], DAYS[3])
    write_exports(
        exports,
        {
            "sessions/z.jsonl": [
                session(
                    "newer",
                    user={"id": "u4", "email": "new@acme.com"},
                    created_at="2026-11-24T08:00:00Z",
                )
            ]
        },
    )
    # u4's first session is of 2026-11-23: the day before does not show u4.
    assert [s["snapshot_date"] for s in _stale(exports, store)] == [DAYS[3]]
    result = cli("run", *_where(exports, store), "--as-of", "2026-11-24", *RATIO,
                 "--log-format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    (warning,) = [e for e in events if e["event"] == "warning"]
    assert warning["stale"] == [DAYS[3]]
    assert warning["command"].endswith(f"--from {DAYS[3]} --to {DAYS[3]} --stale")


def test_an_old_manifest_without_a_data_digest_is_not_up_to_date(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _backfill(exports, store, DAYS[0], DAYS[1])
    path = store / f"snapshot_date={DAYS[0]}" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["data_digest"]
    path.write_text(json.dumps(manifest))
    # The fingerprint still matches: up to date without loading.
    assert _backfill(exports, store, DAYS[0], DAYS[1]) == ["skipped", "skipped"]
    write_exports(
        exports, {"sessions/z.jsonl": [session("later", created_at="2026-11-24T08:00:00Z")]}
    )
    assert [s["reason"] for s in _stale(exports, store)] == ["no_data_digest"]
    assert _backfill(exports, store, DAYS[0], DAYS[1]) == ["published", "skipped"]


def test_the_digest_is_order_independent(tmp_path: Path) -> None:
    records = [
        session(f"s{n}", score=50 + n, created_at=f"2026-11-{20 + n % 4}T0{n % 10}:00:00Z")
        for n in range(12)
    ]
    one = write_exports(tmp_path / "one", {"sessions/a.jsonl": records})
    other = write_exports(
        tmp_path / "other",
        {
            "sessions/x.jsonl": records[::-2],
            "sessions/z.jsonl": list(reversed(records[-2::-2])),
        },
    )
    first, second = day_digests(one), day_digests(other)
    assert first.days == second.days and first.rows == second.rows
    fingerprint = {"sql": "x", "tool": "y", "settings": "z"}
    for n in range(18, 26):
        day = date(2026, 11, n)
        assert data_digest(first.at(day), fingerprint) == data_digest(second.at(day), fingerprint)


def test_the_digest_changes_with_a_score_from_that_day_on(tmp_path: Path) -> None:
    records = [session(f"s{n}", created_at=f"2026-11-{20 + n}T08:00:00Z") for n in range(4)]
    changed = [dict(r) for r in records]
    changed[2]["score"] = 12.5  # created 2026-11-22
    first = day_digests(write_exports(tmp_path / "one", {"sessions/a.jsonl": records}))
    second = day_digests(write_exports(tmp_path / "two", {"sessions/a.jsonl": changed}))
    fingerprint = {"sql": "x", "tool": "y", "settings": "z"}
    same = [
        data_digest(first.at(date(2026, 11, n)), fingerprint)
        == data_digest(second.at(date(2026, 11, n)), fingerprint)
        for n in range(19, 25)
    ]
    assert same == [True, True, True, False, False, False]
    assert first.at(date(2026, 11, 23)).sessions == 4
