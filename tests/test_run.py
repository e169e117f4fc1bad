"""`run` end to end: snapshot files, manifest, determinism, the gate and the lock."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from helpers_ops import snapshot_files

from scenario_analytics.cli import main
from scenario_analytics.publish.snapshot import encode_path_segment
from scenario_analytics.publish.store import Store

REFERENCE = Path(__file__).parent / "data" / "reference-example" / "exports"
MANIFEST_KEYS = {
    "snapshot_date",
    "tool_version",
    "sql",
    "inputs",
    "counts",
    "rejects_by_reason",
    "outputs",
    "ignored_files",
    "created_at",
}


def _session(sid: str, user: str, scenario: str, score: float | None, when: str) -> str:
    record = {
        "id": sid,
        "user": {"id": user, "email": f"{user}@acme.com"},
        "scenario": {"id": scenario, "slug": f"slug-{scenario}", "name": "N"},
        "score": score,
        "duration_seconds": 300,
        "is_valid_attempt": score is not None,
        "created_at": when,
    }
    return json.dumps(record)


def _run(exports: Path, store: Path, *extra: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["run", "--exports", str(exports), "--snapshots", str(store), *extra],
    )
    return result.exit_code, result.stdout, result.stderr


def test_run_publishes_reference_example(tmp_path: Path) -> None:
    code, out, err = _run(REFERENCE, tmp_path / "store", "--as-of", "2026-03-31")
    assert code == 0, err
    folder = tmp_path / "store" / "snapshot_date=2026-03-31"
    assert out.strip() == str(folder)
    assert "published" in err
    manifest = json.loads((folder / "manifest.json").read_text())
    assert MANIFEST_KEYS <= set(manifest)
    assert manifest["counts"] == {
        "sessions_read": 128,
        "sessions_accepted": 128,
        "sessions_rejected": 0,
        "sessions_duplicate": 0,
        "sessions_in_snapshot": 128,
        "scenarios": 1,
        "users": 45,
    }
    assert [s["file"] for s in manifest["sql"]] == sorted(
        p.name for p in (Path(__file__).parents[1] / "sql").glob("*.sql")
    )
    (entry,) = manifest["inputs"]
    assert entry["path"] == "sessions/export.jsonl"
    assert entry["rows_read"] == entry["rows_accepted"] + entry["rows_rejected"] == 128
    files = snapshot_files(folder)  # through the store: the session partitions too
    for output in manifest["outputs"]:
        if output["path"].endswith(".parquet"):
            listed = output.get("files") or {output["path"]: None}
            paths = [str(files[rel]) for rel in listed]
            rows = duckdb.execute("SELECT count(*) FROM read_parquet(?)", [paths]).fetchall()
            assert rows[0][0] == output["rows"], output["path"]
    summary = folder / "api/scenarios/7d3c2b1a-0000-4000-8000-000000000001/analytics/summary.json"
    assert json.loads(summary.read_text())["participant_count"] == 45


def test_hive_readers_see_snapshot_date(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for day in ("2026-03-30", "2026-03-31"):
        assert _run(REFERENCE, store, "--as-of", day)[0] == 0
    rows = duckdb.sql(
        f"SELECT snapshot_date, count(*) FROM read_parquet('{store}/snapshot_date=*/"
        "summaries.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert [str(r[0]) for r in rows] == ["2026-03-30", "2026-03-31"]


def test_same_inputs_give_identical_snapshots(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert _run(REFERENCE, tmp_path / name, "--as-of", "2026-03-31")[0] == 0
    # Every file of each snapshot, through its store (the session partitions too).
    a = snapshot_files(tmp_path / "a" / "snapshot_date=2026-03-31")
    b = snapshot_files(tmp_path / "b" / "snapshot_date=2026-03-31")
    assert sorted(a) == sorted(b)
    assert any(rel.startswith("sessions/") for rel in a)
    for rel in a:
        if rel == "manifest.json":
            ma, mb = (json.loads(files[rel].read_text()) for files in (a, b))
            for volatile in ("created_at", "duration_seconds"):
                ma.pop(volatile), mb.pop(volatile)
            assert ma == mb
        elif rel.endswith(".parquet"):
            ta = duckdb.sql(f"SELECT * FROM '{a[rel]}'").fetchall()
            tb = duckdb.sql(f"SELECT * FROM '{b[rel]}'").fetchall()
            assert ta == tb, rel
        else:
            assert a[rel].read_bytes() == b[rel].read_bytes(), rel


def test_reject_gate_publishes_nothing(tmp_path: Path) -> None:
    exports = tmp_path / "exports" / "sessions"
    exports.mkdir(parents=True)
    lines = [_session(f"s{i}", "u1", "sc", 80, "2026-03-01T10:00:00Z") for i in range(9)]
    lines.append("{not json")
    (exports / "part.jsonl").write_text("\n".join(lines) + "\n")
    store = tmp_path / "store"
    code, out, err = _run(tmp_path / "exports", store, "--as-of", "2026-03-31")
    assert code == 4
    assert out == ""
    assert "1 of 10 session rows rejected" in err and "malformed_record 1" in err
    assert Store(store).dates() == [] and not (store / "latest.json").exists()
    code, _out, err = _run(
        tmp_path / "exports", store, "--as-of", "2026-03-31", "--max-reject-ratio", "0.1"
    )
    assert code == 0, err


def test_second_run_on_locked_store_exits_5(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with Store(store).lock():
        code, out, err = _run(REFERENCE, store, "--as-of", "2026-03-31")
    assert code == 5
    assert out == ""
    assert "scenario-analytics: error: the snapshot store" in err and "in use by pid" in err


def test_unreadable_file_fails_and_publishes_nothing(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    (exports / "sessions").mkdir(parents=True)
    (exports / "sessions" / "a.jsonl").write_text(
        _session("s1", "u1", "sc", 80, "2026-03-01T10:00:00Z") + "\n"
    )
    (exports / "sessions" / "b.parquet").write_bytes(b"this is not parquet")
    code, out, err = _run(exports, tmp_path / "store", "--as-of", "2026-03-31")
    assert code == 1
    assert "cannot read export file sessions/b.parquet" in err
    assert Store(tmp_path / "store").dates() == []


@pytest.mark.parametrize(
    "scenario_id",
    ["a/b", "..", ".", "50% off", "naïve café", "x?y#z", "../../etc"],
)
def test_odd_scenario_ids_stay_inside_their_snapshot(tmp_path: Path, scenario_id: str) -> None:
    exports = tmp_path / "exports" / "sessions"
    exports.mkdir(parents=True)
    (exports / "a.jsonl").write_text(
        _session("s1", "u1", scenario_id, 91, "2026-03-01T10:00:00Z") + "\n"
    )
    store = tmp_path / "store"
    assert _run(tmp_path / "exports", store, "--as-of", "2026-03-31")[0] == 0
    folder = (store / "snapshot_date=2026-03-31").resolve()
    written = [p for p in folder.rglob("summary.json")]
    assert len(written) == 1
    assert written[0].resolve().is_relative_to(folder / "api" / "scenarios")
    segment = encode_path_segment(scenario_id)
    assert written[0] == folder / "api" / "scenarios" / segment / "analytics" / "summary.json"
    result = CliRunner().invoke(main, ["query", "--snapshots", str(store), scenario_id])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["participant_count"] == 1


def test_default_as_of_is_yesterday(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("scenario_analytics.filters.utc_today", lambda: date(2026, 4, 1))
    code, _out, err = _run(REFERENCE, tmp_path / "store")
    assert code == 0, err
    assert Store(tmp_path / "store").latest() == date(2026, 3, 31)
