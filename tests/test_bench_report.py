"""Smoke test of the benchmark harness: its modules import, and the report renders.

The benchmark itself (`make bench`) is far too slow for the test suite; this only checks
that bench/ still fits together, on a tiny made-up results document.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report, serve_load  # noqa: E402
from bench.harness.checks import DECIMALS, FIGURES, check_baselines  # noqa: E402
from bench.harness.contenders import summarize_rounds  # noqa: E402
from bench.harness.datasets import Dataset  # noqa: E402
from bench.harness.util import DatasetSpec, parse_datasets  # noqa: E402


@pytest.mark.parametrize(
    "module",
    [
        "bench.run",
        "bench.query_latency",
        "bench.serve_load",
        "bench.harness.serve",
        "bench.baselines.inputs",
        "bench.baselines.duckdb_handwritten",
        "bench.baselines.duckdb_read_json",
        "bench.baselines.polars_summary",
        "bench.baselines.pandas_summary",
    ],
)
def test_bench_modules_import(module: str) -> None:
    if module.endswith("polars_summary"):
        pytest.importorskip("polars", reason="the bench extra is not installed")
    if module.endswith("pandas_summary"):
        pytest.importorskip("pandas", reason="the bench extra is not installed")
    importlib.import_module(module)


def _contender(seconds: float, rss: int = 500 * 2**20, **extra: Any) -> dict[str, Any]:
    rounds = [
        {"round": i, "seconds": seconds + i / 100, "max_rss_bytes": rss, "exit_code": 0}
        for i in (1, 2, 3)
    ]
    for r in rounds:
        r.update(extra)
    return {"description": "x", "unit": "sessions", "available": True, "rounds": rounds}


def _dataset(name: str, sessions: int, fmt: str, scale: float) -> dict[str, Any]:
    latency = {
        "p50_ms": 12.0,
        "p99_ms": 140.0,
        "mean_ms": 20.0,
        "max_ms": 300.0,
        "open_seconds": 0.1,
        "by_kind": {"precomputed": {"p50_ms": 2.0, "p99_ms": 5.0, "mean_ms": 2.5}},
    }
    contenders = {
        "job_full": _contender(10 * scale),
        "job_unfiltered": _contender(8 * scale),
        "job_new_day": _contender(3 * scale),
        "job_backfill_30": {
            "description": "backfill",
            "unit": "sessions",
            "available": False,
            "reason": "not available: there is no `backfill` command yet",
            "rounds": [],
        },
        "job_validate": _contender(5 * scale),
        "duckdb_handwritten": _contender(5 * scale),
        "duckdb_read_json": _contender(2 * scale),
        "polars_unfiltered": _contender(9 * scale),
        "pandas_unfiltered": {
            "description": "pandas",
            "unit": "sessions",
            "available": True,
            "rounds": [{"round": 1, "exit_code": 1, "error": "MemoryError"}],
        },
        "query_library": {**_contender(20.0, extra=latency), "unit": "requests"},
        "query_cli": {**_contender(25.0), "unit": "requests"},
    }
    for found in contenders.values():
        found.update(summarize_rounds(found["rounds"]))
    return {
        "name": name,
        "format": fmt,
        "sessions": sessions,
        "session_rows_written": sessions + sessions // 100,
        "duplicates": sessions // 100,
        "files": 7,
        "bytes": sessions * 20,
        "as_of": "2026-11-26",
        "setup": {
            "materialized_filters_per_scenario": 176,
            "counts": {"scenarios": 20, "users": 25_000},
            "requests": {"computed": 690, "precomputed": 300, "not_found": 10},
            "precomputed_verified": "300/300",
        },
        "contenders": contenders,
        "checks": {
            "duckdb_handwritten": {
                "compared": "every default materialized summary",
                "job_rows": 3520,
                "baseline_rows": 3520,
                "equal": 3520,
                "last_digit_off": 0,
                "different": 0,
                "missing_in_baseline": 0,
                "extra_in_baseline": 0,
                "ok": True,
            }
        },
    }


SOURCES = {
    "summary_precomputed": "summary/precomputed",
    "summary_computed": "summary/computed",
    "participants_precomputed": "participants/computed",
    "participants_computed": "participants/computed",
}


def _phase(kind: str, clients: int, rps: float, p50: float, p99: float) -> dict[str, Any]:
    requests = int(rps * 10)
    return {
        "kind": kind,
        "clients": clients,
        "requests": requests,
        "seconds": 10.0,
        "requests_per_second": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": p99 * 2,
        "statuses": {"200": requests},
        "cpu_cores": {"server": 1.2, "client": 0.3, "other": 0.4},
        # What the server's /metrics counted meanwhile: participants are always computed.
        "answers": {SOURCES[kind]: requests},
    }


def _serve_document(sessions: int, scale: float) -> dict[str, Any]:
    """What bench/serve_load.py prints (trimmed): 1, 4 and 16 clients per kind."""
    phases = []
    for kind, rps, p50, p99 in (
        ("summary_precomputed", 4000.0, 0.8, 1.5),
        ("summary_computed", 60.0, 30.0, 80.0),
        ("participants_precomputed", 200.0, 5.0, 12.0),
        ("participants_computed", 50.0, 40.0, 90.0),
    ):
        for clients in (1, 4, 16):
            load = clients / 4 * scale
            phases.append(_phase(kind, clients, rps / scale, p50 * load, p99 * load))
    return {
        "tool": "bench/serve_load.py",
        "command": ".venv/bin/python bench/serve_load.py --snapshots S --out bench/x.json",
        "started_at": "2026-11-27T11:00:00Z",
        "finished_at": "2026-11-27T11:04:00Z",
        "store": "S",
        "snapshot": {"date": "2026-11-26", "sessions": sessions, "scenarios": 200},
        "settings": {"clients": [1, 4, 16], "requests": 20000, "seconds": 15.0, "workers": 2},
        "machine": {"nproc": 2, "load_average_start": [1.0, 1, 1], "load_average_end": [2.0, 1, 1]},
        "note": "",
        "server": {"ready_seconds": 6.5, "peak_rss_mib": 1800, "exit_code": 0},
        "warm_up": {"requests": 10, "statuses": {"200": 10}},
        "phases": phases,
        "ok": True,
        "problems": [],
    }


def _results() -> dict[str, Any]:
    datasets = [
        _dataset("1m", 1_000_000, "parquet", 1.0),
        _dataset("10m", 10_000_000, "parquet", 11.0),
        _dataset("2m-jsonl", 2_000_000, "jsonl", 2.0),
    ]
    for dataset, scale in zip(datasets[:2], (0.5, 1.0), strict=True):
        document = _serve_document(dataset["sessions"], scale)
        dataset["serve"] = {"command": ["x"], "seconds": 240.0, "exit_code": 0, "result": document}
    return {
        "schema": 1,
        "started_at": "2026-11-27T10:00:00Z",
        "finished_at": "2026-11-27T11:00:00Z",
        "command": ".venv/bin/python bench/run.py --sizes 1m,10m,2m-jsonl",
        "git": {"commit": "0123456789abcdef", "dirty": True},
        "machine": {
            "nproc": 2,
            "memory_bytes": 24 * 2**30,
            "cpu_model": "Test CPU",
            "platform": "Linux",
            "versions": {"python": "3.11.7", "duckdb": "2.0.1"},
        },
        "load_average_start": [1.0, 1.0, 1.0],
        "load_average_end": [2.0, 1.5, 1.0],
        "settings": {"rounds": 3, "threads": None, "memory_limit": None},
        "capabilities": {"backfill": False, "full_refresh": True},
        "datasets": datasets,
    }


def test_summarize_rounds_takes_medians_of_successful_rounds() -> None:
    rounds = [
        {"seconds": 3.0, "max_rss_bytes": 30, "exit_code": 0},
        {"seconds": 1.0, "max_rss_bytes": 10, "exit_code": 0},
        {"seconds": 9.0, "max_rss_bytes": 90, "exit_code": 1},
        {"seconds": 2.0, "max_rss_bytes": 20, "exit_code": 0},
    ]
    summary = summarize_rounds(rounds)
    assert summary["median"] == {
        "seconds": 2.0,
        "max_rss_bytes": 20,
        "range_seconds": [1.0, 3.0],
    }
    assert summary["peak_rss_bytes"] == 30
    assert summary["rounds_ok"] == 3


def test_dataset_names() -> None:
    specs = parse_datasets("100k, 1m,2.5m-jsonl")
    assert [(s.name, s.sessions, s.fmt) for s in specs] == [
        ("100k", 100_000, "parquet"),
        ("1m", 1_000_000, "parquet"),
        ("2.5m-jsonl", 2_500_000, "jsonl"),
    ]


def test_targets_are_judged_on_the_largest_parquet_dataset() -> None:
    targets = {t.name: t for t in report.evaluate_targets(_results())}
    full = targets["Full nightly run ≤ 1.5× the hand-written DuckDB pass"]
    assert (full.dataset, full.ratio, full.status) == ("10m", "2.00×", "not met")
    assert targets["Full nightly run: peak memory ≤ 2 GiB"].status == "met"
    assert targets["Nightly run after one new day ≤ 40% of a full run"].status == "met"
    backfill = targets["30-day backfill ≤ 5× one full run"]
    assert backfill.status.startswith("not measured: not available")
    assert targets["`query` p50 ≤ 20 ms per request"].status == "met"
    assert targets["`query` p99 ≤ 100 ms per request"].status == "not met"
    scaling = targets["Time per session at 10M within 1.3× of that at 1M (full run)"]
    assert (scaling.ratio, scaling.status) == ("1.10×", "met")
    jsonl = targets["JSON Lines: loading and validating ≤ 3× DuckDB's bare read_json"]
    assert (jsonl.dataset, jsonl.status) == ("2m-jsonl", "met")


def test_serve_targets_are_judged_at_4_clients_on_the_largest_dataset() -> None:
    results = _results()
    targets = {t.name: t for t in report.evaluate_targets(results)}
    p99 = targets["`serve`: precomputed summaries p99 ≤ 10 ms at 4 clients"]
    assert (p99.dataset, p99.measured, p99.status) == ("10m", "1.5 ms (p50 0.8 ms)", "met")
    throughput = targets["`serve`: precomputed summaries ≥ 1,000 requests/s at 4 clients"]
    assert (throughput.ratio, throughput.status) == ("4.00× the floor", "met")
    computed = targets["`serve`: computed summaries p99 ≤ 100 ms at 4 clients"]
    assert (computed.measured, computed.status) == ("80.0 ms (p50 30.0 ms)", "met")

    # An answer other than 200 fails the target whatever the latency.
    phase = report.serve_phase(results["datasets"][1]["serve"], "summary_computed", 4)
    assert phase is not None
    phase["statuses"] = {"200": 590, "503": 10}
    computed = {t.name: t for t in report.serve_targets(results)}[computed.name]
    assert computed.status == "not met: 10 answers other than 200"

    for dataset in results["datasets"]:
        dataset.pop("serve", None)
    assert {t.status for t in report.serve_targets(results)} == {"not measured: serve not run"}
    assert "Not measured in this run" in report.serve_section(results)


def test_report_renders_the_serve_section(tmp_path: Path) -> None:
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(_results()), encoding="utf-8")
    page = tmp_path / "PERFORMANCE.md"
    report.main([str(results_file), "--out", str(page)])
    text = page.read_text(encoding="utf-8")
    serve = text.split("## Serve")[1].split("## Results by dataset")[0]
    assert serve.index("### serve at 1m") < serve.index("### serve at 10m (10,000,000 sessions")
    assert "| kind | clients | requests | requests/s | p50 | p99 |" in serve
    assert "| summaries, precomputed | 4 | 40,000 | 4,000 | 0.8 ms | 1.5 ms |" in serve
    assert "participants, random `start_date` | 16 |" in serve
    assert "- `serve`: computed summaries p99 ≤ 100 ms at 4 clients: 80.0 ms" in serve
    assert "— **met**" in serve

    # A separate serve_load.py run (--serve) replaces the results file's serve figures.
    document = _serve_document(10_001_000, 2.0)
    document["ok"] = False
    document["problems"] = ["summary_computed at 16 client(s): answers other than 200"]
    serve_file = tmp_path / "serve.json"
    serve_file.write_text(json.dumps(document), encoding="utf-8")
    report.main([str(results_file), "--serve", str(serve_file), "--out", str(page)])
    text = page.read_text(encoding="utf-8")
    assert text.count("### serve at") == 1 and "### serve at 10m (10,001,000 sessions" in text
    assert "a separate run of `bench/serve_load.py`" in text
    assert "**Failed**: summary_computed at 16 client(s)" in text
    assert "\n.venv/bin/python bench/report.py " in text and " --serve " in text
    targets = {t.name: t for t in report.evaluate_targets(json.loads(results_file.read_text()))}
    assert targets["`serve`: computed summaries p99 ≤ 100 ms at 4 clients"].dataset == "10m"


def test_serve_load_fails_loudly_on_answers_other_than_200() -> None:
    document = _serve_document(1000, 1.0)
    assert serve_load.problems_of(document) == []
    document["phases"][0]["answers"] = {"summary/precomputed": 10}  # not all 10 * 4000
    document["phases"][4]["statuses"] = {"200": 599, "500": 1}
    document["phases"][4]["answers"] = {"summary/computed": 599}
    document["server"]["exit_code"] = 1
    problems = serve_load.problems_of(document)
    assert any("summary_precomputed at 1 client(s): the server's answers" in p for p in problems)
    assert any("summary_computed at 4 client(s): answers other than 200" in p for p in problems)
    assert any("exited with 1" in p for p in problems)
    assert len(problems) == 3


def test_report_renders_and_keeps_the_profile_notes(tmp_path: Path) -> None:
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(_results()), encoding="utf-8")
    page = tmp_path / "PERFORMANCE.md"
    report.main([str(results_file), "--out", str(page)])
    text = page.read_text(encoding="utf-8")
    assert "## Targets" in text and "### 10m: 10,000,000 sessions, Parquet" in text
    assert "not available: there is no `backfill` command yet" in text
    assert "failed: MemoryError" in text
    assert ".venv/bin/python bench/run.py --sizes 1m,10m,2m-jsonl" in text
    assert text.count(report.NOTES_HEADING) == 1

    notes = f"{report.NOTES_HEADING}\n\nThe load step takes most of the time.\n"
    page.write_text(text.split(report.NOTES_HEADING)[0] + notes, encoding="utf-8")
    report.main([str(results_file), "--out", str(page)])
    again = page.read_text(encoding="utf-8")
    assert again.endswith(notes)
    assert again.count(report.NOTES_HEADING) == 1


def test_baseline_checks_tell_float_ties_from_differences(tmp_path: Path) -> None:
    """A float baseline one last digit off (a tenth, or a minute of practice: an exact tie
    the float sum missed) is counted apart from a real difference."""
    ds = Dataset(DatasetSpec("1k", 1000, "parquet"), tmp_path, tmp_path, {})
    ds.info["as_of"] = "2026-11-26"
    snapshot = tmp_path / "reference" / "snapshot_date=2026-11-26"
    snapshot.mkdir(parents=True)
    figures = ", ".join(
        f"CAST({v} AS DECIMAL(4, 1)) AS {f}"
        if f in DECIMALS
        else (f"'bronze' AS {f}" if f == "average_best_rank" else f"{v} AS {f}")
        for f, v in ((f, 50 if f == "total_practice_minutes" else 10) for f in FIGURES)
    )
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT 'sc' || i AS scenario_id, '' AS request_key,
                         CAST([] AS VARCHAR[]) AS user_ids, CAST([] AS VARCHAR[]) AS user_emails,
                         CAST([] AS VARCHAR[]) AS group_ids, false AS exclude_system_users,
                         CAST(NULL AS TIMESTAMP) AS start_date, {figures}
                  FROM range(4) AS t(i))
            TO '{snapshot / "summaries.parquet"}' (FORMAT PARQUET)"""
    )
    # sc0 equal; sc1 a mean a tenth off; sc2 practice minutes one off; sc3 two minutes off.
    con.execute(
        f"""COPY (SELECT * EXCLUDE (request_key, user_ids, user_emails, group_ids,
                                    exclude_system_users, start_date)
                  REPLACE (
                      CASE scenario_id WHEN 'sc1' THEN 10.1 ELSE 10.0 END AS average_best_score,
                      total_practice_minutes
                          + CASE scenario_id WHEN 'sc2' THEN 1 WHEN 'sc3' THEN 2 ELSE 0 END
                          AS total_practice_minutes)
                  FROM read_parquet('{snapshot / "summaries.parquet"}', hive_partitioning = false))
            TO '{tmp_path / "base.parquet"}' (FORMAT PARQUET)"""
    )
    checks = check_baselines(ds, {"polars_unfiltered": tmp_path / "base.parquet"})
    check = checks["polars_unfiltered"]
    assert (check["equal"], check["last_digit_off"], check["different"]) == (1, 2, 1)
    assert not check["ok"]
