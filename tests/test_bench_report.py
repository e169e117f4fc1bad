"""Smoke test of the benchmark harness: its modules import, and the report renders.

The benchmark itself (`make bench`) is far too slow for the test suite; this only checks
that bench/ still fits together, on a tiny made-up results document.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report, run, serve_load  # noqa: E402
from bench.harness.checks import DECIMALS, FIGURES, check_baselines  # noqa: E402
from bench.harness.contenders import Harness, summarize_rounds  # noqa: E402
from bench.harness.datasets import Dataset  # noqa: E402
from bench.harness.serve import serve_wanted  # noqa: E402
from bench.harness.store_growth import store_growth_dataset  # noqa: E402
from bench.harness.util import DatasetSpec, parse_datasets  # noqa: E402


@pytest.mark.parametrize(
    "module",
    [
        "bench.run",
        "bench.query_latency",
        "bench.serve_load",
        "bench.harness.serve",
        "bench.harness.store_growth",
        "bench.store_growth",
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
        "by_kind": {
            "precomputed": {"p50_ms": 2.0, "p99_ms": 5.0, "mean_ms": 2.5},
            "computed": {"p50_ms": 8.0, "p99_ms": 60.0, "mean_ms": 12.0},
        },
    }
    contenders = {
        "job_full": _contender(10 * scale),
        "job_unfiltered": _contender(8 * scale),
        "job_new_day": _contender(2.5 * scale),
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
    specs = parse_datasets("100k, 1m,2.5m-jsonl,100m")
    assert [(s.name, s.sessions, s.fmt) for s in specs] == [
        ("100k", 100_000, "parquet"),
        ("1m", 1_000_000, "parquet"),
        ("2.5m-jsonl", 2_500_000, "jsonl"),
        ("100m", 100_000_000, "parquet"),
    ]


def _store_document(nights: int = 30, dataset: str = "10m") -> dict[str, Any]:
    """What bench/store_growth.py writes (--out), trimmed: a store that grows by 100 MiB a
    night beside a snapshot of 1 GiB."""
    mib = 2**20
    days = [f"2026-11-{d:02d}" for d in range(27 - nights, 27)] if nights < 27 else []
    days = days or [f"night-{n}" for n in range(nights)]
    rows = [
        {
            "day": day,
            "seconds": 30.0 if n == 0 else 12.0 + n / 10,
            "new_rows": 111_000,
            "store_bytes": (1500 + 100 * n) * mib,
            "ledger_bytes": 450 * mib,
            "snapshot_bytes": 1024 * mib,
            "shared_bytes": 0 if n == 0 else 900 * mib,
        }
        for n, day in enumerate(days)
    ]
    return {
        "kind": "store_growth",
        "command": "bench/store_growth.py --exports bench/data/10m --as-of 2026-11-26 "
        "--work /tmp/g --out bench/results/store/x.json",
        "started_at": "2026-12-03T10:00:00Z",
        "ended_at": "2026-12-03T10:10:00Z",
        "note": "",
        "exports": "bench/data/10m",
        "dataset": dataset,
        "sessions": 10_001_000,
        "nights": rows,
        "rows": {"base": 6_700_000, "after_last_night": 0},
        "first_night_seconds": rows[0]["seconds"],
        "store_bytes": rows[-1]["store_bytes"],
        "ledger_bytes": rows[-1]["ledger_bytes"],
        "snapshot_bytes": rows[-1]["snapshot_bytes"],
        "ratio": round(rows[-1]["store_bytes"] / rows[-1]["snapshot_bytes"], 3),
    }


def _scale_dataset(name: str, sessions: int, seconds: float, peak: int) -> dict[str, Any]:
    """A 100M dataset as bench/run.py records it: job_full and the hand-written pass only."""
    dataset = _dataset(name, sessions, "parquet", 1.0)
    dataset["contenders"] = {
        "job_full": _contender(seconds, rss=peak),
        "duckdb_handwritten": _contender(seconds / 2),
    }
    for found in dataset["contenders"].values():
        found.update(summarize_rounds(found["rounds"]))
    dataset["engine"] = {"threads": None, "memory_limit": "6GB"}
    dataset["limited_to"] = ["job_full", "duckdb_handwritten"]
    return dataset


def test_targets_are_judged_on_the_largest_parquet_dataset() -> None:
    targets = {t.name: t for t in report.evaluate_targets(_results())}
    full = targets["Full nightly run ≤ 1.5× the hand-written DuckDB pass"]
    assert (full.dataset, full.ratio, full.status) == ("10m", "2.00×", "not met")
    unfiltered = targets["Job with only the unfiltered summary ≤ 1.0× Polars (same summaries)"]
    assert (unfiltered.ratio, unfiltered.limit, unfiltered.status) == ("0.89×", "≤ 1.0×", "met")
    new_day = targets["Next night after one new day ≤ 0.15× a full run"]
    assert (new_day.ratio, new_day.limit, new_day.status) == ("0.25×", "≤ 0.15×", "not met")
    backfill = targets["30-day backfill ≤ 2× one full run"]
    assert backfill.status.startswith("not measured: not available")
    assert backfill.limit == "≤ 2×"
    jsonl = targets["JSON Lines: loading and validating ≤ 3× DuckDB's bare read_json"]
    assert (jsonl.dataset, jsonl.status) == ("2m-jsonl", "met")
    # The query targets are for computed requests (the fixture's p50 8 ms, p99 60 ms).
    p50 = targets["`query` computed requests p50 ≤ 10 ms"]
    assert (p50.dataset, p50.status) == ("10m", "met")
    assert p50.measured.startswith("8.0 ms (computed requests")
    assert targets["`query` computed requests p99 ≤ 50 ms"].status == "not met"
    assert targets["Full nightly run: peak memory ≤ 2 GiB"].status == "met"
    # The old targets are gone.
    assert not [name for name in targets if "40%" in name or "≤ 5×" in name or "20 ms" in name]


def test_targets_say_why_they_were_not_measured() -> None:
    results = _results()
    ten = results["datasets"][1]
    ten["contenders"]["query_library"]["median"]["latency_by_kind"].pop("computed")
    del ten["contenders"]["polars_unfiltered"]
    ten["contenders"]["job_new_day"]["median"] = None  # failed in every round
    targets = {t.name: t for t in report.evaluate_targets(results)}
    assert targets["`query` computed requests p50 ≤ 10 ms"].status == (
        "not measured: no computed requests in query_library's results"
    )
    unfiltered = targets["Job with only the unfiltered summary ≤ 1.0× Polars (same summaries)"]
    assert unfiltered.status == "not measured: polars_unfiltered not run"
    new_day = targets["Next night after one new day ≤ 0.15× a full run"]
    assert new_day.status == "not measured: job_new_day failed in every round"
    store = targets["Store after 30 nightly runs ≤ 4× one snapshot (ledger included)"]
    assert store.status.startswith("not measured: store growth not run (bench/run.py --store")
    for title in (
        "100M sessions: full run peak RSS ≤ 8 GiB (memory_limit 6GB)",
        "100M sessions: time per session ≤ 1.3× that at 10M (full run)",
    ):
        assert targets[title].status.startswith(
            "not measured: no dataset of 100M sessions in this run (bench/run.py --sizes 10m,100m"
        )

    # Without the JSON Lines dataset.
    results["datasets"].pop()
    jsonl = {t.name: t for t in report.evaluate_targets(results)}[
        "JSON Lines: loading and validating ≤ 3× DuckDB's bare read_json"
    ]
    assert jsonl.status == "not measured: no such dataset in this run"


def test_a_later_run_replaces_the_contenders_it_measured(tmp_path: Path) -> None:
    """`--contenders FILE`: a later run of some contenders (say after a change to the
    nightly path) replaces those of the main file for its dataset; targets are judged
    within one run, never across the two."""
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(_results()), encoding="utf-8")
    later = _results()
    ten = next(d for d in later["datasets"] if d["name"] == "10m")
    kept = ("job_full", "job_new_day", "duckdb_handwritten")
    ten["contenders"] = {n: c for n, c in ten["contenders"].items() if n in kept}
    ten["contenders"]["job_new_day"] = _contender(10.0)  # 1.00× of a later job_full
    ten["contenders"]["job_new_day"].update(summarize_rounds(_contender(10.0)["rounds"]))
    later["datasets"] = [ten]
    later["command"] = ".venv/bin/python bench/run.py --sizes 10m --only " + ",".join(kept)
    later_file = tmp_path / "later.json"
    later_file.write_text(json.dumps(later), encoding="utf-8")
    page = tmp_path / "PERFORMANCE.md"
    report.main([str(results_file), "--contenders", str(later_file), "--out", str(page)])
    text = page.read_text(encoding="utf-8")
    shown = os.path.relpath(later_file.resolve(), ROOT)
    assert "| Next night after one new day ≤ 0.15× a full run | 10m | job_new_day 10" in text
    assert f"From `{shown}`, a later run of `bench/run.py` (`--contenders`): `job_full`, " in text
    assert f"--only job_full,job_new_day,duckdb_handwritten --out {shown}" in text
    assert f" --contenders {shown}" in text.split("## Targets")[0]
    # A ratio whose two sides come from different runs is not judged.
    merged = _results()
    report.merge_contenders(merged, later, shown)
    targets = {t.name: t for t in report.evaluate_targets(merged)}
    unfiltered = targets["Job with only the unfiltered summary ≤ 1.0× Polars (same summaries)"]
    assert unfiltered.status == "met"  # both from the main file
    del merged["datasets"][1]["contenders"]["duckdb_handwritten"]["source"]
    targets = {t.name: t for t in report.evaluate_targets(merged)}
    full = targets["Full nightly run ≤ 1.5× the hand-written DuckDB pass"]
    assert full.status == ("not measured: job_full and duckdb_handwritten come from different runs")


def test_store_target_and_section_from_the_results_file() -> None:
    results = _results()
    results["datasets"][1]["store_growth"] = {
        "command": [".venv/bin/python", "bench/store_growth.py", "--nights", "30"],
        "seconds": 600.0,
        "exit_code": 0,
        "result": _store_document(),
    }
    targets = {t.name: t for t in report.evaluate_targets(results)}
    store = targets[
        "Store after 30 nightly runs ≤ 4× one snapshot (ledger included), store on local disk"
    ]
    assert (store.dataset, store.ratio, store.status) == ("10m", "4.30×", "not met")
    assert store.measured == "store 4.30 GiB (ledger 450 MiB) / snapshot 1.00 GiB after 30 nights"
    section = report.store_section(results)
    assert "### store growth at 10m on local disk (10,001,000 sessions, 30 nights" in section
    first = "| first (empty store; new rows: all before it too) | night-0 | 30.00 | 6,811,000 |"
    assert first + " 1.46 GiB | 450 MiB |" in section
    assert "| later nights, median of 29 | — | 13.50 | 111,000 |" in section
    assert "| last | night-29 | 14.90 | 111,000 | 4.30 GiB | 450 MiB | 1.00 GiB |" in section
    assert "**4.30×** (target ≤ 4× after 30 nights)" in section
    assert "Command: `.venv/bin/python bench/store_growth.py --nights 30`" in section

    # A smoke run's few nights on a small dataset are judged, and say what the target is for.
    results["datasets"][1]["store_growth"]["result"] = _store_document(nights=3)
    results["datasets"][1]["name"] = "100k"
    store = {t.name: t for t in report.evaluate_targets(results)}[store.name]
    assert store.dataset == "100k (target is for 10m; 3 nights; target is after 30)"
    assert store.status == "met"

    # A failed run says why.
    results["datasets"][1]["store_growth"] = {
        "command": ["x"],
        "seconds": 5.0,
        "exit_code": 1,
        "error": "night 2026-11-25 failed (3):\nexit 1",
    }
    store = {t.name: t for t in report.evaluate_targets(results)}[store.name]
    assert store.status == "not measured: store_growth.py failed: exit 1"
    assert "**Failed**: exit 1" in report.store_section(results)


def test_report_renders_a_separate_store_growth_document(tmp_path: Path) -> None:
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(_results()), encoding="utf-8")
    store_file = tmp_path / "store.json"
    document = _store_document()
    del document["dataset"]  # documents before --dataset: named by their session count
    store_file.write_text(json.dumps(document), encoding="utf-8")
    page = tmp_path / "PERFORMANCE.md"
    report.main([str(results_file), "--store", str(store_file), "--out", str(page)])
    text = page.read_text(encoding="utf-8")
    section = text.split("## Store growth")[1].split("## Object storage")[0]
    assert "### store growth at 10m on local disk (10,001,000 sessions, 30 nights" in section
    assert "a separate run of `bench/store_growth.py`" in section
    title = "Store after 30 nightly runs ≤ 4× one snapshot (ledger included)"
    assert f"| {title}, store on local disk | 10m |" in text
    assert "\nbench/store_growth.py --exports bench/data/10m" in text
    assert " --store " in text.split("## Targets")[0]


def test_report_renders_store_growth_and_full_runs_on_s3(tmp_path: Path) -> None:
    """`--store` given twice (local disk and S3) gives a target and a section each; `--s3`
    a results file of local and S3 runs taking turns: the object storage target from its
    own ratio, and a section with both times per dataset."""
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(_results()), encoding="utf-8")
    local, remote = tmp_path / "local.json", tmp_path / "s3.json"
    local.write_text(json.dumps(_store_document(dataset="1m")), encoding="utf-8")
    document = _store_document(dataset="1m")
    document["store"] = "s3 (seaweedfs)"
    document["nights"][-1]["store_bytes"] = document["store_bytes"] = 3 * 2**30  # 3.00×
    remote.write_text(json.dumps(document), encoding="utf-8")
    s3_results = _results()
    for dataset, (disk, bucket) in zip(
        s3_results["datasets"][:2], ((2.0, 2.5), (40.0, 46.0)), strict=True
    ):
        dataset["contenders"] = {"job_full": _contender(disk), "job_full_s3": _contender(bucket)}
        for found in dataset["contenders"].values():
            found.update(summarize_rounds(found["rounds"]))
    s3_file = tmp_path / "s3-results.json"
    s3_file.write_text(json.dumps(s3_results), encoding="utf-8")
    page = tmp_path / "PERFORMANCE.md"
    argv = [str(results_file), "--store", str(local), "--store", str(remote)]
    report.main([*argv, "--s3", str(s3_file), "--out", str(page)])
    text = page.read_text(encoding="utf-8")
    title = "Store after 30 nightly runs ≤ 4× one snapshot (ledger included)"
    assert f"| {title}, store on local disk | 1m (target is for 10m) |" in text
    assert f"| {title}, store on s3 (seaweedfs) | 1m (target is for 10m) |" in text
    assert "| 3.00× | met |" in text and "| 4.30× | not met |" in text
    assert "### store growth at 1m on s3 (seaweedfs) (10,001,000 sessions" in text
    s3_target = (
        "| Full run with exports and store on a local S3 server ≤ 1.3× on local disk | 10m |"
    )
    assert s3_target in text and "job_full_s3 46.02 s / job_full 40.02 s" in text
    section = text.split("## Object storage")[1].split("## Results by dataset")[0]
    assert f"From `{os.path.relpath(s3_file, report.ROOT)}`" in section
    assert "| 10m | 10,000,000 | 40.02 | 46.02 | 1.15× |" in section
    reproduce = text.split("## Targets")[0]
    assert " --s3 " in reproduce and reproduce.count(" --store ") == 2


def test_scale_targets_from_the_same_run_or_a_separate_one(tmp_path: Path) -> None:
    results = _results()
    gib = 2**30
    # 10m's job_full takes 110.02 s (11.0 µs a session); 100m's 1,300 s (13.0 µs).
    results["datasets"].append(_scale_dataset("100m", 100_000_000, 1299.98, 7 * gib))
    targets = {t.name: t for t in report.evaluate_targets(results)}
    # The 10M targets stay on 10m.
    assert targets["Full nightly run ≤ 1.5× the hand-written DuckDB pass"].dataset == "10m"
    peak = targets["100M sessions: full run peak RSS ≤ 8 GiB (memory_limit 6GB)"]
    assert (peak.dataset, peak.status) == ("100m", "met")
    assert peak.measured == "7.00 GiB (highest round; memory_limit 6GB)"
    per = targets["100M sessions: time per session ≤ 1.3× that at 10M (full run)"]
    assert (per.dataset, per.ratio, per.status) == ("100m vs 10m", "1.18×", "met")
    assert per.measured.startswith("13.00 µs vs 11.00 µs per session")

    # Another memory limit is named in the dataset column.
    results["datasets"][-1]["engine"]["memory_limit"] = "10GB"
    peak = {t.name: t for t in report.evaluate_targets(results)}[peak.name]
    assert peak.dataset == "100m (memory_limit 10GB; target is for 6GB)"

    # A separate 100m run without 10m: its per-session target is not measured, and why.
    scale = {**_results(), "datasets": [_scale_dataset("100m", 100_000_000, 1300.0, 9 * gib)]}
    scale["command"] = ".venv/bin/python bench/run.py --sizes 100m --rounds 1"
    scale_file = tmp_path / "scale.json"
    scale_file.write_text(json.dumps(scale), encoding="utf-8")
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(_results()), encoding="utf-8")
    page = tmp_path / "PERFORMANCE.md"
    report.main([str(results_file), "--scale", str(scale_file), "--out", str(page)])
    text = page.read_text(encoding="utf-8")
    assert "| 100M sessions: full run peak RSS ≤ 8 GiB (memory_limit 6GB) | 100m |" in text
    assert "9.00 GiB (highest round; memory_limit 6GB; from " in text
    assert "| not met |" in text.split("100M sessions: full run peak RSS")[1].split("\n")[0]
    assert "not measured: needs 10m in the same run (bench/run.py --sizes 10m,100m" in text
    assert "### 100m: 100,000,000 sessions, Parquet" in text
    assert "a separate run (`.venv/bin/python bench/run.py --sizes 100m --rounds 1`" in text
    assert "DuckDB memory limit 6GB (job files, DuckDB baselines)" in text
    assert "at this size only `job_full`, `duckdb_handwritten`" in text
    assert " --scale " in text.split("## Targets")[0]


def test_100m_runs_only_what_its_targets_need_under_6gb(tmp_path: Path) -> None:
    def harness(*argv: str) -> Harness:
        found = Harness.__new__(Harness)  # without __init__: no `--help` of the CLI
        found.args = run.parse_args(list(argv))
        found.caps = {"backfill": True, "full_refresh": True}
        return found

    def dataset(name: str) -> Dataset:
        (spec,) = parse_datasets(name)
        return Dataset(spec, tmp_path / name, tmp_path / ".scratch" / name, {})

    big, ten = dataset("100m"), dataset("10m")
    plain = harness("--sizes", "10m,100m")
    contenders = plain.contenders()
    assert [c.name for c in plain.for_dataset(big, contenders)] == [
        "job_full",
        "duckdb_handwritten",
    ]
    assert len(plain.for_dataset(ten, contenders)) == len(contenders)
    assert (plain.memory_limit(big), plain.memory_limit(ten)) == ("6GB", None)
    job = plain.job_file(big, unfiltered_only=False).read_text(encoding="utf-8")
    assert 'memory_limit = "6GB"' in job
    assert "memory_limit" not in plain.job_file(ten, unfiltered_only=False).read_text()
    assert plain.engine_flags(big) == ["--memory-limit", "6GB"]
    assert not serve_wanted(plain.args, big) and serve_wanted(plain.args, ten)

    # --only and --memory-limit say otherwise.
    chosen = harness("--sizes", "100m", "--only", "job_full,serve", "--memory-limit", "5GB")
    assert [c.name for c in chosen.for_dataset(big, chosen.contenders())] == ["job_full"]
    assert chosen.memory_limit(big) == chosen.memory_limit(ten) == "5GB"
    assert serve_wanted(chosen.args, big)


def test_store_growth_is_opt_in_on_the_largest_parquet_dataset_under_100m() -> None:
    specs = parse_datasets("1m,10m,2m-jsonl,100m")
    assert store_growth_dataset(run.parse_args([]), specs) is None
    assert store_growth_dataset(run.parse_args(["--store-growth"]), specs) == "10m"
    only = run.parse_args(["--only", "store_growth", "--store-growth-on", "1m"])
    assert store_growth_dataset(only, specs) == "1m"
    with pytest.raises(SystemExit, match="not a Parquet dataset"):
        store_growth_dataset(run.parse_args(["--store-growth-on", "2m-jsonl"]), specs)
    assert run.parse_args(["--quick"]).store_nights == 3
    assert run.parse_args([]).store_nights == 30


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
