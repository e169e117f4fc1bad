"""Per-day data digests (issue 13, parts 3 and 4): a day is up to date while what it uses
is unchanged; late exports make exactly the days from theirs on stale; `snapshots stale`
lists them, `backfill --stale` rebuilds them, `run` warns of them."""

from __future__ import annotations

import dataclasses
import hashlib
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
    snapshot_files,
)

from scenario_analytics.publish.fingerprint import data_digest
from scenario_analytics.publish.records import record_key
from scenario_analytics.publish.store import Store

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
    assert f"backfill --from {DAYS[3]} --to {DAYS[3]} --stale --exports " in warning["command"]


def test_an_old_manifest_without_a_data_digest_is_not_up_to_date(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _backfill(exports, store, DAYS[0], DAYS[1])
    # As an earlier version wrote it: the manifest without the digest, published (its
    # commit record names the manifest's sha256).
    published = Store(store)
    day = date.fromisoformat(DAYS[0])
    found = published.record(day)
    assert found is not None
    key = f"{found[0].prefix}/manifest.json"
    manifest = json.loads(published.storage.read(key)[0])
    del manifest["data_digest"]
    data = json.dumps(manifest).encode()
    published.storage.write(key, data)
    record = dataclasses.replace(found[0], manifest_sha256=hashlib.sha256(data).hexdigest())
    published.storage.write(record_key(day), record.to_bytes())
    snapshot = snapshot_files(store / f"snapshot_date={DAYS[0]}")
    assert "data_digest" not in json.loads(snapshot["manifest.json"].read_text())
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


def _late_and_changed(exports: Path) -> None:
    """s1 (2026-11-20) removed from its file, c1 (2026-11-22) re-exported with another
    score, and a late session of 2026-11-22."""
    write_exports(
        exports,
        {
            "sessions/a.jsonl": [
                session(
                    "s2",
                    user={"id": "u2", "email": "u2@exec.com"},
                    score=91,
                    created_at="2026-11-21T09:00:00Z",
                ),
                "{not json",
                session("dup", score=60, created_at="2026-11-21T12:00:00Z"),
            ],
            "sessions/z.jsonl": [
                session("late", created_at="2026-11-22T01:00:00Z"),
                session("c1", user={"id": "u3"}, score=99, created_at="2026-11-22T08:00:00Z"),
            ],
        },
    )


def test_stale_names_the_sessions_added_changed_and_removed(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _backfill(exports, store, DAYS[0], DAYS[-1])
    _late_and_changed(exports)
    changes = {s["snapshot_date"]: s["sessions"] for s in _stale(exports, store)}
    early = {"added": 0, "changed": 0, "removed": 1,
             "examples": {"added": [], "changed": [], "removed": ["s1"]}}  # fmt: skip
    late = {"added": 1, "changed": 1, "removed": 1,
            "examples": {"added": ["late"], "changed": ["c1"], "removed": ["s1"]}}  # fmt: skip
    assert changes == {DAYS[0]: early, DAYS[1]: early, DAYS[2]: late, DAYS[3]: late}

    # The table: counts per day, then the ids; --examples 0 counts without naming.
    table = cli("snapshots", "stale", *_where(exports, store))
    assert table.exit_code == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:8] == ["date", "sessions", "then", "sessions", "now", "added",
                                  "changed", "removed"]  # fmt: skip
    assert rows[2].split()[:6] == [DAYS[2], "4", "4", "1", "1", "1"]
    assert f"  {DAYS[2]} changed: c1" in rows
    assert f"  {DAYS[0]} removed: s1" in rows
    counted = _stale(exports, store, "--examples", "0")
    assert counted[3]["sessions"]["added"] == 1
    assert counted[3]["sessions"]["examples"] == {"added": [], "changed": [], "removed": []}
    assert {s["sessions"] is None for s in _stale(exports, store, "--no-sessions")} == {True}


def test_stale_with_more_changes_than_examples_says_how_many_more(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _backfill(exports, store, DAYS[3], DAYS[3])
    late = [session(f"late{n:02}", created_at="2026-11-22T01:00:00Z") for n in range(12)]
    write_exports(exports, {"sessions/z.jsonl": late})
    (found,) = _stale(exports, store)
    assert found["sessions"]["added"] == 12
    assert found["sessions"]["examples"]["added"] == [f"late{n:02}" for n in range(5)]
    table = cli("snapshots", "stale", *_where(exports, store), "--examples", "2")
    assert f"  {DAYS[3]} added: late00, late01 and 10 more" in table.stdout.splitlines()


def test_stale_says_so_when_a_snapshot_cannot_be_compared(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _backfill(exports, store, DAYS[3], DAYS[3])
    _late_and_changed(exports)
    # A new file in place of the partition (shared, by content, in `.objects/`): the old
    # one may be shared with other snapshots.
    published = Store(store)
    version = published.version(date.fromisoformat(DAYS[3]))
    assert version is not None
    key = next(
        version.key(rel)
        for rel in version.files()
        if rel.startswith("sessions/") and rel.endswith(".parquet")
    )
    partition = store / key
    assert partition.is_file()
    partition.unlink()
    partition.write_bytes(b"not parquet")
    result = cli("snapshots", "stale", *_where(exports, store), "--json")
    assert result.exit_code == 0, result.stderr
    (found,) = json.loads(result.stdout)
    assert found["reason"] == "data_changed" and found["sessions"] is None
    assert "cannot compare its sessions with the exports" in result.stderr
    assert "snapshots verify" in result.stderr


def test_run_restates_the_stale_days_of_its_last_restate_days(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _backfill(exports, store, DAYS[0], DAYS[-1])
    untouched = {d: manifest_bytes(store, d) for d in DAYS}
    _late_and_changed(exports)

    # as of 2026-11-24 with 2 days: 11-22 and 11-23 are rebuilt, 11-20 and 11-21 warned of.
    result = cli("run", *_where(exports, store), "--as-of", "2026-11-24", *RATIO,
                 "--restate-days", "2", "--log-format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    line = json.loads(result.stdout)
    assert line["snapshot_date"] == "2026-11-24"
    assert [r["snapshot_date"] for r in line["restated"]] == DAYS[2:]
    assert [r["path"] for r in line["restated"]] == [
        str(store / f"snapshot_date={d}") for d in DAYS[2:]
    ]
    events = [json.loads(e) for e in result.stderr.splitlines()]
    (warning,) = [e for e in events if e["event"] == "warning"]
    assert warning["stale"] == DAYS[:2]
    (summary,) = [e for e in events if e["event"] == "summary"]
    assert summary["restated"] == DAYS[2:]
    assert {d: manifest_bytes(store, d) for d in DAYS[:2]} == {d: untouched[d] for d in DAYS[:2]}
    assert json.loads((store / "latest.json").read_text())["snapshot_date"] == "2026-11-24"
    for day in DAYS[2:]:
        fresh = cli("run", *_where(exports, tmp_path / f"fresh-{day}"), "--as-of", day, *RATIO)
        assert fresh.exit_code == 0, fresh.stderr
        content = snapshot_content(store / f"snapshot_date={day}")
        assert content == snapshot_content(Path(fresh.stdout.strip()))
    assert [s["snapshot_date"] for s in _stale(exports, store)] == DAYS[:2]


def test_restate_days_from_the_job_file_and_its_default(tmp_path: Path) -> None:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    _backfill(exports, store, DAYS[2], DAYS[3])
    _late_and_changed(exports)
    job = tmp_path / "job.toml"
    job.write_text(f'exports = "{exports}"\nsnapshots = "{store}"\nmax_reject_ratio = 0.5\n')
    # Default 0: a warning only.
    plain = cli("run", "--job", str(job), "--as-of", "2026-11-24")
    assert plain.exit_code == 0, plain.stderr
    assert "2 earlier snapshots out of date" in plain.stderr
    assert "restate_days" in plain.stderr
    assert [s["snapshot_date"] for s in _stale(exports, store)] == DAYS[2:]

    job.write_text(job.read_text() + "restate_days = 7\n")
    restating = cli("run", "--job", str(job), "--as-of", "2026-11-24")
    assert restating.exit_code == 0, restating.stderr
    assert restating.stdout.strip() == str(store / "snapshot_date=2026-11-24")
    assert "rebuilding 2 earlier snapshots" in restating.stderr
    assert "out of date (late" not in restating.stderr
    assert _stale(exports, store) == []
    # Nothing stale: nothing restated.
    again = cli("run", "--job", str(job), "--as-of", "2026-11-24", "--log-format", "json")
    assert json.loads(again.stdout)["restated"] == []

    job.write_text(job.read_text().replace("restate_days = 7", "restate_days = -1"))
    bad = cli("run", "--job", str(job), "--as-of", "2026-11-24")
    assert bad.exit_code == 2 and "restate_days" in bad.stderr
