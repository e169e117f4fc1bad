"""Render docs/PERFORMANCE.md from one results file of bench/run.py.

    .venv/bin/python bench/report.py                          # the newest bench/results/*.json
    .venv/bin/python bench/report.py bench/results/X.json --out docs/PERFORMANCE.md
    .venv/bin/python bench/report.py X.json --out -           # print instead of writing
    .venv/bin/python bench/report.py X.json --serve S.json    # serve from a serve_load run
    .venv/bin/python bench/report.py X.json --store G.json    # a store_growth.py document
    .venv/bin/python bench/report.py X.json --scale Y.json    # 100M targets from a 10m,100m run

The page is generated, except its "Profile notes" section: everything from that heading
to the end of the existing page is kept as it is when the page is rendered again.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# `python bench/report.py` puts only bench/ on sys.path; bench.harness needs the repository.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness.util import SCALE_MEMORY_LIMIT, SCALE_SESSIONS  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "PERFORMANCE.md"
NOTES_HEADING = "## Profile notes"
NOTES_PLACEHOLDER = f"""{NOTES_HEADING}

_Written by hand; `bench/report.py` keeps this section when it renders the page again._

- Where the full run's time goes (`scenario-analytics run` logs the time of each load
  step and SQL file): to be filled in.
- What was tuned, and what it changed: to be filled in.
- What is left, and why: to be filled in.
"""

GIB = 2**30
MIB = 2**20
QUERY_KIND = "computed"  # the kind of `query` request the latency targets are for


# --- formatting ----------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def memory(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / GIB:.2f} GiB" if value >= GIB else f"{value / MIB:.0f} MiB"


def rate(count: float, secs: float | None) -> str:
    if not secs:
        return "—"
    per_second = count / secs
    if per_second >= 1e6:
        return f"{per_second / 1e6:.2f} M/s"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.0f} k/s"
    return f"{per_second:.0f}/s"


def milliseconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- reading results -----------------------------------------------------------------------


def contender(dataset: dict[str, Any], name: str) -> dict[str, Any] | None:
    found = dataset.get("contenders", {}).get(name)
    return found if isinstance(found, dict) else None


def median_seconds(dataset: dict[str, Any] | None, name: str) -> float | None:
    if dataset is None:
        return None
    found = contender(dataset, name)
    if not found or not found.get("median"):
        return None
    return float(found["median"]["seconds"])


def latency(dataset: dict[str, Any] | None, key: str, kind: str | None = None) -> float | None:
    """query_library's median `key` (p50_ms, p99_ms…), over all requests or one kind."""
    if dataset is None:
        return None
    found = contender(dataset, "query_library")
    if not found or not found.get("median") or "latency" not in found["median"]:
        return None
    if kind is None:
        return float(found["median"]["latency"][key])
    by_kind = found["median"].get("latency_by_kind") or {}
    return float(by_kind[kind][key]) if kind in by_kind else None


def round_ratios(dataset: dict[str, Any] | None, top: str, bottom: str) -> list[float]:
    """numerator / denominator within each round where both succeeded: how much of a
    ratio is noise shows in how far these spread."""
    if dataset is None:
        return []
    times: list[dict[int, float]] = []
    for name in (top, bottom):
        found = contender(dataset, name) or {}
        times.append(
            {
                int(r["round"]): float(r["seconds"])
                for r in found.get("rounds", [])
                if r.get("exit_code") == 0 and r.get("seconds")
            }
        )
    both = sorted(set(times[0]) & set(times[1]))
    return [times[0][n] / times[1][n] for n in both]


def why_missing(dataset: dict[str, Any] | None, *names: str) -> str:
    if dataset is None:
        return "no such dataset in this run"
    for name in names:
        found = contender(dataset, name)
        if found is None:
            return f"{name} not run"
        if not found.get("available", True):
            return str(found.get("reason") or f"{name} not available")
        if not found.get("median"):
            return f"{name} failed in every round"
    return "not measured"


def parquet_datasets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = [d for d in results.get("datasets", []) if d.get("format") == "parquet"]
    return sorted(found, key=lambda d: int(d.get("sessions", 0)))


def text_datasets(results: dict[str, Any], fmt: str) -> list[dict[str, Any]]:
    found = [d for d in results.get("datasets", []) if d.get("format") == fmt]
    return sorted(found, key=lambda d: int(d.get("sessions", 0)))


# --- targets -------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    dataset: str
    measured: str
    limit: str
    ratio: str
    status: str  # met, not met, not measured: <why>


def _ratio_target(
    name: str,
    dataset: dict[str, Any] | None,
    wanted: str,
    numerator: str,
    denominator: str,
    limit: float,
    shown: str = "",
) -> Target:
    label = dataset["name"] if dataset else "—"
    if dataset is not None and dataset["name"] != wanted:
        label += f" (target is for {wanted})"
    top = median_seconds(dataset, numerator)
    bottom = median_seconds(dataset, denominator)
    bound = f"≤ {shown or f'{limit:g}'}×"
    if top is None or bottom is None or bottom == 0:
        reason = why_missing(dataset, numerator, denominator)
        return Target(name, label, "—", bound, "—", f"not measured: {reason}")
    sources = {_source_of(dataset, numerator), _source_of(dataset, denominator)}
    if len(sources) > 1:
        reason = f"{numerator} and {denominator} come from different runs"
        return Target(name, label, "—", bound, "—", f"not measured: {reason}")
    ratio = top / bottom
    met = ratio <= limit
    measured = f"{numerator} {seconds(top)} s / {denominator} {seconds(bottom)} s"
    paired = round_ratios(dataset, numerator, denominator)
    if len(paired) > 1:
        measured += f" (per round: {', '.join(f'{r:.2f}' for r in paired)})"
    return Target(name, label, measured, bound, f"{ratio:.2f}×", "met" if met else "not met")


def _source_of(dataset: dict[str, Any] | None, contender: str) -> str:
    """The later results file a contender's rounds come from (`--contenders`), or ""."""
    found = ((dataset or {}).get("contenders") or {}).get(contender) or {}
    return str(found.get("source", ""))


def merge_contenders(results: dict[str, Any], later: dict[str, Any], source: str) -> None:
    """`--contenders`: the contenders a later bench/run.py results file measured replace
    the main file's of the same dataset and name (a dataset it alone has is added), each
    marked with `source`; a ratio of two contenders from different runs is not judged."""
    datasets = {d["name"]: d for d in results.setdefault("datasets", [])}
    for dataset in later.get("datasets", []):
        marked = {n: {**c, "source": source} for n, c in dataset.get("contenders", {}).items()}
        if dataset["name"] not in datasets:
            results["datasets"].append({**dataset, "contenders": marked})
            continue
        target = datasets[dataset["name"]]
        target["contenders"] = {**target.get("contenders", {}), **marked}
        setup = dict(target.get("setup") or {})
        setup.update(dataset.get("setup") or {})
        target["setup"] = setup
    results.setdefault("later_runs", []).append(
        {
            "source": source,
            "command": later.get("command", ".venv/bin/python bench/run.py"),
            "started_at": later.get("started_at"),
            "finished_at": later.get("finished_at"),
            "commit": ((later.get("git") or {}).get("commit") or "unknown")[:12],
        }
    )


def big_dataset(results: dict[str, Any]) -> dict[str, Any] | None:
    """The dataset the 10M targets are judged on: the largest Parquet one under 100M."""
    below = [d for d in parquet_datasets(results) if int(d.get("sessions", 0)) < SCALE_SESSIONS]
    return below[-1] if below else None


def labelled(dataset: dict[str, Any] | None, wanted: str) -> str:
    if dataset is None:
        return "—"
    return dataset["name"] + ("" if dataset["name"] == wanted else f" (target is for {wanted})")


def evaluate_targets(results: dict[str, Any]) -> list[Target]:
    """Issues #15's and #23's targets (the stricter where both set one): on the largest
    Parquet dataset under 100M (10m in a full run), the JSON Lines one, the store growth
    run and the 100M run; then the serve targets."""
    big = big_dataset(results)
    jsonl = text_datasets(results, "jsonl")
    lines = jsonl[-1] if jsonl else None
    label = labelled(big, "10m")
    targets = [
        _ratio_target(
            "Full nightly run ≤ 1.5× the hand-written DuckDB pass",
            big,
            "10m",
            "job_full",
            "duckdb_handwritten",
            1.5,
        ),
        _ratio_target(
            "Job with only the unfiltered summary ≤ 1.0× Polars (same summaries)",
            big,
            "10m",
            "job_unfiltered",
            "polars_unfiltered",
            1.0,
            shown="1.0",
        ),
        _ratio_target(
            "Full run with exports and store on a local S3 server ≤ 1.3× on local disk",
            big_dataset(s3_source(results)),
            "10m",
            "job_full_s3",
            "job_full",
            1.3,
        ),
        _ratio_target(
            "Next night after one new day ≤ 0.15× a full run",
            big,
            "10m",
            "job_new_day",
            "job_full",
            0.15,
            shown="0.15",
        ),
        _ratio_target(
            "30-day backfill ≤ 2× one full run",
            big,
            "10m",
            "job_backfill_30",
            "job_full",
            2.0,
        ),
        _ratio_target(
            "JSON Lines: loading and validating ≤ 3× DuckDB's bare read_json",
            lines,
            "2m-jsonl",
            "job_validate",
            "duckdb_read_json",
            3.0,
        ),
        *store_targets(results),
    ]
    for key, limit_ms, title in (
        ("p50_ms", 10.0, "`query` computed requests p50 ≤ 10 ms"),
        ("p99_ms", 50.0, "`query` computed requests p99 ≤ 50 ms"),
    ):
        bound = f"≤ {limit_ms:g} ms"
        value = latency(big, key, QUERY_KIND)
        if value is None:
            why = why_missing(big, "query_library")
            if why == "not measured":  # it ran, but its results have no such kind
                why = f"no {QUERY_KIND} requests in query_library's results"
            targets.append(Target(title, label, "—", bound, "—", f"not measured: {why}"))
            continue
        targets.append(
            Target(
                title,
                label,
                f"{milliseconds(value)} ({QUERY_KIND} requests, median over rounds)",
                bound,
                f"{value / limit_ms:.2f} of the limit",
                "met" if value <= limit_ms else "not met",
            )
        )
    targets.append(
        peak_target("Full nightly run: peak memory ≤ 2 GiB", big, label, 2 * GIB, "≤ 2 GiB")
    )
    return targets + scale_targets(results) + serve_targets(results)


def peak_target(
    title: str, dataset: dict[str, Any] | None, label: str, limit: float, bound: str, note: str = ""
) -> Target:
    found = contender(dataset, "job_full") if dataset else None
    if not found or not found.get("peak_rss_bytes"):
        why = why_missing(dataset, "job_full")
        return Target(title, label, "—", bound, "—", f"not measured: {why}")
    peak = float(found["peak_rss_bytes"])
    return Target(
        title,
        label,
        f"{memory(peak)} (highest round{note})",
        bound,
        f"{peak / limit:.2f} of the limit",
        "met" if peak <= limit else "not met",
    )


# --- 100M ----------------------------------------------------------------------------------

SCALE_RUN = "bench/run.py --sizes 10m,100m --rounds 1"


def scale_source(results: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The results the 100M targets come from: a separate results file (--scale), else
    this one."""
    run = results.get("scale_run")
    if run:
        return run["results"], str(run["source"])
    return results, None


def s3_source(results: dict[str, Any]) -> dict[str, Any]:
    """The results the object storage target comes from: a separate results file (--s3,
    local and S3 runs taking turns), else this one."""
    run = results.get("s3_run")
    return run["results"] if run else results


def s3_section(results: dict[str, Any]) -> str:
    """The full run with exports and store on a local S3 server, beside the same run on
    local disk, per dataset of the run that measured both."""
    source = s3_source(results)
    out = [
        "## Object storage",
        "",
        "`job_full_s3`: the full nightly `run` with the exports and the store in buckets of a",
        "SeaweedFS server started on 127.0.0.1 (`s3://…` locations, the ledger in the store),",
        "beside `job_full` on local disk, the two taking turns in each round.",
    ]
    run = results.get("s3_run")
    if run:
        started, finished = source.get("started_at"), source.get("finished_at")
        out += [
            "",
            f"From `{run['source']}`, a separate run of `bench/run.py` ({started} to "
            f"{finished} UTC), command `{source.get('command', '')}`.",
        ]
    rows = []
    for dataset in parquet_datasets(source):
        local, remote = median_seconds(dataset, "job_full"), median_seconds(dataset, "job_full_s3")
        if local is None or remote is None or not local:
            continue
        paired = round_ratios(dataset, "job_full_s3", "job_full")
        rows.append(
            [
                dataset["name"],
                f"{int(dataset.get('sessions', 0)):,}",
                seconds(local),
                seconds(remote),
                f"{remote / local:.2f}×",
                ", ".join(f"{r:.2f}" for r in paired) or "—",
            ]
        )
    if not rows:
        out += ["", "Not measured (`bench/run.py --only job_full,job_full_s3`, or `--s3 FILE`)."]
        return "\n".join(out)
    out += [
        "",
        table(
            ["dataset", "sessions", "local disk s", "S3 s", "ratio", "per round"],
            rows,
        ),
    ]
    return "\n".join(out)


def dataset_memory_limit(results: dict[str, Any], dataset: dict[str, Any]) -> str | None:
    engine = dataset.get("engine")
    if isinstance(engine, dict):
        return engine.get("memory_limit")
    return (results.get("settings") or {}).get("memory_limit")  # results before "engine"


def scale_pair(
    results: dict[str, Any],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The largest Parquet dataset of 100M sessions or more, and the one of the same run
    it is compared with (10m, else the largest under 100M)."""
    parquet = parquet_datasets(results)
    huge = [d for d in parquet if int(d.get("sessions", 0)) >= SCALE_SESSIONS]
    below = [d for d in parquet if int(d.get("sessions", 0)) < SCALE_SESSIONS]
    base = next((d for d in below if d["name"] == "10m"), below[-1] if below else None)
    return (huge[-1] if huge else None), base


def scale_targets(results: dict[str, Any]) -> list[Target]:
    """The 100M targets: job_full's peak RSS under a 6 GB DuckDB limit, and its time per
    session against 10M's in the same run."""
    found, source = scale_source(results)
    scale, base = scale_pair(found)
    from_file = f"; from {source}" if source else ""
    peak_title = f"100M sessions: full run peak RSS ≤ 8 GiB (memory_limit {SCALE_MEMORY_LIMIT})"
    per_title = "100M sessions: time per session ≤ 1.3× that at 10M (full run)"
    if scale is None:
        why = f"no dataset of 100M sessions in this run ({SCALE_RUN}; or report.py --scale FILE)"
        return [
            Target(peak_title, "—", "—", "≤ 8 GiB", "—", f"not measured: {why}"),
            Target(per_title, "—", "—", "≤ 1.3×", "—", f"not measured: {why}"),
        ]
    label = labelled(scale, "100m")
    limit = dataset_memory_limit(found, scale)
    if limit != SCALE_MEMORY_LIMIT:
        label += f" (memory_limit {limit or 'DuckDB default'}; target is for {SCALE_MEMORY_LIMIT})"
    note = f"; memory_limit {limit}" if limit else ""
    targets = [peak_target(peak_title, scale, label, 8 * GIB, "≤ 8 GiB", note + from_file)]

    scale_s = median_seconds(scale, "job_full")
    base_s = median_seconds(base, "job_full")
    if base is None or scale_s is None or base_s is None:
        why = f"needs 10m in the same run ({SCALE_RUN})" if base is None else ""
        why = why or (
            why_missing(scale, "job_full") if scale_s is None else why_missing(base, "job_full")
        )
        targets.append(Target(per_title, label, "—", "≤ 1.3×", "—", f"not measured: {why}"))
        return targets
    per_scale = scale_s / int(scale["sessions"]) * 1e6
    per_base = base_s / int(base["sessions"]) * 1e6
    ratio = per_scale / per_base
    pair = f"{scale['name']} vs {base['name']}"
    if (scale["name"], base["name"]) != ("100m", "10m"):
        pair += " (target is for 100m vs 10m)"
    targets.append(
        Target(
            per_title,
            pair,
            f"{per_scale:.2f} µs vs {per_base:.2f} µs per session "
            f"(job_full {seconds(scale_s)} s / {seconds(base_s)} s{from_file})",
            "≤ 1.3×",
            f"{ratio:.2f}×",
            "met" if ratio <= 1.3 else "not met",
        )
    )
    return targets


# --- store growth --------------------------------------------------------------------------

STORE_NIGHTS = 30  # the nights the store target is for
STORE_LIMIT = 4.0


def store_runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The store growth measurements to report: a standalone store_growth.py document
    given to report.py (--store), else the one in the results (bench/run.py)."""
    if results.get("store_runs"):
        return sorted(results["store_runs"], key=lambda r: int(r.get("sessions") or 0))
    runs = [
        {"dataset": d["name"], "sessions": int(d.get("sessions") or 0), **d["store_growth"]}
        for d in results.get("datasets", [])
        if isinstance(d.get("store_growth"), dict)
    ]
    return sorted(runs, key=lambda r: r["sessions"])


def store_label(run: dict[str, Any]) -> str:
    result = run.get("result") or {}
    notes = [] if run["dataset"] == "10m" else ["target is for 10m"]
    nights = len(result.get("nights") or [])
    if nights and nights != STORE_NIGHTS:
        notes.append(f"{nights} nights; target is after {STORE_NIGHTS}")
    return run["dataset"] + (f" ({'; '.join(notes)})" if notes else "")


def store_where(run: dict[str, Any]) -> str:
    """Where a store growth run kept its store: "local disk" or "s3 (server)"."""
    return str((run.get("result") or {}).get("store") or "local disk")


def store_targets(results: dict[str, Any]) -> list[Target]:
    """The store target of the largest run of each kind of store (local disk, S3)."""
    runs = store_runs(results)
    if not runs:
        return [store_target(None)]
    largest: dict[str, dict[str, Any]] = {}
    for run in runs:  # sorted by sessions: the last of each kind wins
        largest[store_where(run).split(" ")[0]] = run
    return [store_target(run) for run in largest.values()]


def store_target(run: dict[str, Any] | None) -> Target:
    title = f"Store after {STORE_NIGHTS} nightly runs ≤ 4× one snapshot (ledger included)"
    bound = f"≤ {STORE_LIMIT:g}×"
    if run is None:
        why = "store growth not run (bench/run.py --store-growth, or report.py --store FILE)"
        return Target(title, "—", "—", bound, "—", f"not measured: {why}")
    title += f", store on {store_where(run)}"
    result = run.get("result") or {}
    nights = result.get("nights") or []
    if not nights or not result.get("snapshot_bytes"):
        error = (run.get("error") or "no document").strip().splitlines() or [""]
        why = f"store_growth.py failed: {error[-1][:120]}"
        return Target(title, store_label(run), "—", bound, "—", f"not measured: {why}")
    store, snapshot = float(result["store_bytes"]), float(result["snapshot_bytes"])
    ledger = result.get("ledger_bytes", nights[-1].get("ledger_bytes"))
    ratio = store / snapshot
    return Target(
        title,
        store_label(run),
        f"store {memory(store)} (ledger {memory(ledger)}) / snapshot {memory(snapshot)} "
        f"after {len(nights)} nights",
        bound,
        f"{ratio:.2f}×",
        "met" if ratio <= STORE_LIMIT else "not met",
    )


def store_section(results: dict[str, Any]) -> str:
    runs = store_runs(results)
    out = [
        "## Store growth",
        "",
        "`bench/store_growth.py`: consecutive nightly `run`s into one store, each after one",
        "more day of exports (the dataset's sessions split by the day of `created_at`: all",
        "before the first night in one file, then one file per night), retention off. After",
        "each night: the store's bytes (every file once, however many snapshots share it:",
        "what `du` counts on local disk, the sum of the objects' sizes in a bucket; the ledger",
        "included), the ledger's, and the newest snapshot's own bytes (all its files, shared",
        "or not). `bench/run.py --store-growth` runs it after the rounds, on the largest",
        "Parquet dataset under 100m; `--s3 seaweedfs` keeps the store in a bucket of a local",
        "S3 server.",
    ]
    if not runs:
        out += ["", "Not measured in this run (`bench/run.py --store-growth`, or `--store FILE`)."]
        return "\n".join(out)
    for run in runs:
        result = run.get("result") or {}
        nights = result.get("nights") or []
        facts = []
        sessions = int(result.get("sessions") or run.get("sessions") or 0)
        if sessions:
            facts.append(f"{sessions:,} sessions")
        facts.append(f"{len(nights)} nights")
        if nights:
            facts.append(f"{nights[0]['day']} to {nights[-1]['day']}")
        out += [
            "",
            f"### store growth at {run['dataset']} on {store_where(run)} ({', '.join(facts)})",
            "",
        ]
        command = run.get("command")
        command = " ".join(command) if isinstance(command, list) else result.get("command", "")
        if run.get("source"):
            out += [
                f"From `{run['source']}`, a separate run of `bench/store_growth.py` (not part "
                f"of the results file above), {result.get('started_at')} to "
                f"{result.get('ended_at')} (UTC).",
                "",
            ]
        if result.get("note"):
            out += [f"Note: {result['note']}.", ""]
        if not nights:
            error = (run.get("error") or "no document").strip().splitlines() or [""]
            out += [f"**Failed**: {error[-1]}", "", f"Command: `{command}`"]
            continue
        rows = result.get("rows") or {}
        first, last = nights[0], nights[-1]
        later = nights[1:]

        def sizes(night: dict[str, Any]) -> list[object]:
            return [
                memory(night.get("store_bytes")),
                memory(night.get("ledger_bytes")),
                memory(night.get("snapshot_bytes")),
                memory(night.get("shared_bytes")),
            ]

        table_rows: list[list[object]] = [
            [
                "first (empty store; new rows: all before it too)",
                first["day"],
                seconds(first.get("seconds")),
                f"{int(rows.get('base', 0)) + int(first.get('new_rows', 0)):,}",
                *sizes(first),
            ]
        ]
        if len(later) > 1:
            table_rows.append(
                [
                    f"later nights, median of {len(later)}",
                    "—",
                    seconds(statistics.median(float(n["seconds"]) for n in later)),
                    f"{statistics.median(int(n.get('new_rows', 0)) for n in later):,.0f}",
                    *["—"] * 4,
                ]
            )
        if later:
            table_rows.append(
                [
                    "last",
                    last["day"],
                    seconds(last.get("seconds")),
                    f"{int(last.get('new_rows', 0)):,}",
                    *sizes(last),
                ]
            )
        out.append(
            table(
                ["night", "day", "run s", "new rows", "store", "ledger", "snapshot", "shared"],
                table_rows,
            )
        )
        ratio = float(result["store_bytes"]) / float(result["snapshot_bytes"])
        out += [
            "",
            "store: every file once (what `du` counts); snapshot: the newest snapshot's files, "
            "shared or not (what it weighs alone); shared: what the night linked from a "
            "neighbouring snapshot instead of writing it.",
            "",
            f"After {len(nights)} nights the store holds {memory(result['store_bytes'])} "
            f"(ledger {memory(result.get('ledger_bytes', last.get('ledger_bytes')))}) and "
            f"one snapshot weighs {memory(result['snapshot_bytes'])}: **{ratio:.2f}×** "
            f"(target ≤ {STORE_LIMIT:g}× after {STORE_NIGHTS} nights).",
            "",
            f"Command: `{command}`",
        ]
    return "\n".join(out)


# --- serve ---------------------------------------------------------------------------------

SERVE_KINDS = {
    "summary_precomputed": "summaries, precomputed",
    "summary_computed": "summaries, computed (random `start_date`)",
    "participants_precomputed": "participants, unfiltered (participants.parquet)",
    "participants_computed": "participants, random `start_date`",
    "mixed_summary_precomputed": "summaries, precomputed, while 1 client asks computed ones",
    "mixed_summary_computed": "summaries, computed, beside the precomputed clients",
}
SERVE_CLIENTS = 4  # the client count the targets are judged at
# (title, kind, figure, limit, at least?)
SERVE_TARGETS = (
    ("`serve`: precomputed summaries p99 ≤ 10 ms", "summary_precomputed", "p99_ms", 10, False),
    (
        "`serve`: precomputed summaries ≥ 1,000 requests/s",
        "summary_precomputed",
        "requests_per_second",
        1000,
        True,
    ),
    ("`serve`: computed summaries p99 ≤ 100 ms", "summary_computed", "p99_ms", 100, False),
)


def size_name(sessions: int) -> str:
    """10,001,000 sessions -> "10m": the dataset name a standalone run compares with."""
    if sessions >= 1_000_000:
        return f"{sessions / 1e6:.3g}m".replace(".0m", "m")
    return f"{sessions / 1e3:.3g}k".replace(".0k", "k")


def serve_runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The serve measurements to report: a standalone serve_load.py document given to
    report.py (--serve), else each dataset's (bench/run.py), smallest first."""
    if results.get("serve_run"):
        return [results["serve_run"]]
    runs = [
        {"dataset": d["name"], "sessions": int(d.get("sessions") or 0), **d["serve"]}
        for d in results.get("datasets", [])
        if isinstance(d.get("serve"), dict)
    ]
    return sorted(runs, key=lambda r: r["sessions"])


def serve_phase(run: dict[str, Any], kind: str, clients: int) -> dict[str, Any] | None:
    for phase in (run.get("result") or {}).get("phases", []):
        if phase.get("kind") == kind and phase.get("clients") == clients:
            return phase
    return None


def non_200(phase: dict[str, Any]) -> int:
    return sum(int(n) for s, n in (phase.get("statuses") or {}).items() if s != "200")


def serve_targets(results: dict[str, Any]) -> list[Target]:
    """The issue's serve targets, at 4 clients, on the largest dataset measured."""
    runs = serve_runs(results)
    run = runs[-1] if runs else None
    label = "—"
    if run is not None:
        label = run["dataset"] + ("" if run["dataset"] == "10m" else " (target is for 10m)")
    targets = []
    for title, kind, figure, limit, at_least in SERVE_TARGETS:
        title = f"{title} at {SERVE_CLIENTS} clients"
        bound = f"≥ {limit:,}/s" if at_least else f"≤ {limit:g} ms"
        phase = serve_phase(run, kind, SERVE_CLIENTS) if run else None
        if phase is None or phase.get(figure) is None:
            why = "serve not run" if run is None else f"no {kind} phase at {SERVE_CLIENTS} clients"
            if run is not None and run.get("error") and phase is None:
                why = "serve_load.py failed"
            targets.append(Target(title, label, "—", bound, "—", f"not measured: {why}"))
            continue
        value = float(phase[figure])
        if at_least:
            measured = f"{value:,.0f} requests/s (p99 {milliseconds(phase.get('p99_ms'))})"
            ratio = f"{value / limit:.2f}× the floor"
            met = value >= limit
        else:
            measured = f"{milliseconds(value)} (p50 {milliseconds(phase.get('p50_ms'))})"
            ratio = f"{value / limit:.2f} of the limit"
            met = value <= limit
        status = "met" if met else "not met"
        bad = non_200(phase)
        if bad:
            status = f"not met: {bad:,} answers other than 200"
        targets.append(Target(title, label, measured, bound, ratio, status))
    return targets


def reproduce(results: dict[str, Any], source: str) -> list[str]:
    """The commands of the runs that came separately (--scale, --serve, --store), then the
    report's own."""
    lines = []
    report = f".venv/bin/python bench/report.py {source}"
    scale = results.get("scale_run")
    if scale:
        lines.append(str(scale["results"].get("command", f".venv/bin/python {SCALE_RUN}")))
        report += f" --scale {scale['source']}"
    s3 = results.get("s3_run")
    if s3:
        lines.append(str(s3["results"].get("command", ".venv/bin/python bench/run.py")))
        report += f" --s3 {s3['source']}"
    for later in results.get("later_runs", []):
        command = str(later["command"])
        lines.append(command if "--out" in command else f"{command} --out {later['source']}")
        report += f" --contenders {later['source']}"
    runs = [("--serve", "serve_load.py", results.get("serve_run"))]
    runs += [("--store", "store_growth.py", run) for run in results.get("store_runs", [])]
    for option, tool, run in runs:
        if not run:
            continue
        command = (run.get("result") or {}).get("command", f".venv/bin/python bench/{tool}")
        lines.append(command if "--out" in command else f"{command} > {run['source']}")
        report += f" {option} {run['source']}"
    return lines + [report]


def serve_section(results: dict[str, Any]) -> str:
    runs = serve_runs(results)
    out = [
        "## Serve",
        "",
        "`scenario-analytics serve` under `bench/serve_load.py`: the server on 127.0.0.1 with its",
        "default 2 workers and an API key on every request; per kind of request and number of",
        "concurrent keep-alive clients (each sends its next request when the last one is",
        "answered), as many requests as are answered within the phase's time. Kinds: summaries",
        "answered from the precomputed bodies; summaries with a random `start_date` (computed",
        "with SQL on a worker); the unfiltered participants, a random sorting and page (read",
        "from participants.parquet, on a worker); participants with a random `start_date`. The",
        "clients run on the same cores as the server; *other* is the CPU every other process",
        "used meanwhile (someone else's tests, say; the machine is shared): where it is not near",
        "0, the figures are pessimistic. `make bench` runs it once per Parquet dataset, on the",
        "reference snapshot, after the rounds.",
    ]
    if not runs:
        out += [
            "",
            "Not measured in this run (`--only` without `serve`, or an older results file).",
        ]
        return "\n".join(out)
    for run in runs:
        result = run.get("result") or {}
        snap = result.get("snapshot") or {}
        facts = [f"{int(snap.get('sessions') or run.get('sessions') or 0):,} sessions"]
        if snap.get("scenarios"):
            facts.append(f"{snap['scenarios']} scenarios")
        if snap.get("precomputed_bodies"):
            facts.append(f"{snap['precomputed_bodies']:,} precomputed bodies")
        out += ["", f"### serve at {run['dataset']} ({', '.join(facts)})", ""]
        if run.get("source"):
            out += [
                f"From `{run['source']}`, a separate run of `bench/serve_load.py` (not part of "
                "the results file above): "
                f"`{result.get('command', '')}`, {result.get('started_at')} to "
                f"{result.get('finished_at')} (UTC), snapshot {snap.get('date')} of "
                f"`{result.get('store')}`.",
                "",
            ]
        server = result.get("server") or {}
        settings = result.get("settings") or {}
        machine = result.get("machine") or {}
        load = [machine.get("load_average_start"), machine.get("load_average_end")]
        load_text = " → ".join("/".join(f"{x:.1f}" for x in v) for v in load if isinstance(v, list))
        notes = [
            f"{settings.get('workers', '?')} workers",
            f"ready (workers holding all sessions) after {seconds(server.get('ready_seconds'))} s",
            f"server peak RSS {server['peak_rss_mib']:,} MiB" if server.get("peak_rss_mib") else "",
            f"each phase ≤ {settings.get('seconds', 0):g} s and ≤ "
            f"{settings.get('requests', 0):,} requests",
            f"load average (1/5/15 min) {load_text}" if load_text else "",
        ]
        out.append("; ".join(n for n in notes if n) + ".")
        if result.get("note"):
            out += ["", f"Note: {result['note']}."]
        if run.get("exit_code") not in (0, None) or result.get("problems"):
            problems = result.get("problems") or [(run.get("error") or "failed").splitlines()[-1]]
            out += ["", "**Failed**: " + "; ".join(str(p) for p in problems)]
        rows = []
        for phase in result.get("phases", []):
            cpu = phase.get("cpu_cores") or {}
            clients = str(phase.get("clients"))
            if phase.get("kind") == "mixed_summary_precomputed":
                clients += " (+1 computed)"
            elif phase.get("kind") == "mixed_summary_computed":
                clients += f" (+{phase.get('with_clients')} precomputed)"
            rows.append(
                [
                    SERVE_KINDS.get(phase.get("kind", ""), phase.get("kind", "")),
                    clients,
                    f"{phase.get('requests', 0):,}",
                    f"{float(phase.get('requests_per_second') or 0):,.0f}",
                    milliseconds(phase.get("p50_ms")),
                    milliseconds(phase.get("p99_ms")),
                    milliseconds(phase.get("max_ms")),
                    f"{non_200(phase):,}",
                    "/".join(f"{cpu.get(k, 0):.1f}" for k in ("server", "client", "other"))
                    if cpu
                    else "—",
                ]
            )
        if rows:
            out += [
                "",
                table(
                    [
                        "kind",
                        "clients",
                        "requests",
                        "requests/s",
                        "p50",
                        "p99",
                        "max",
                        "non-200",
                        "cores: server/client/other",
                    ],
                    rows,
                ),
            ]
    targets = serve_targets(results)
    out += ["", f"Targets, at {SERVE_CLIENTS} clients, judged on {targets[0].dataset}:", ""]
    out += [f"- {t.name}: {t.measured} — **{t.status}**" for t in targets]
    return "\n".join(out)


# --- the page ------------------------------------------------------------------------------


def describe_machine(results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    versions = machine.get("versions", {})
    parts = [
        str(machine.get("cpu_model") or "unknown CPU"),
        f"{machine.get('nproc')} cores available (nproc)",
        f"{(machine.get('memory_bytes') or 0) / GIB:.0f} GiB RAM",
        str(machine.get("platform") or ""),
    ]
    tools = ", ".join(
        f"{name} {versions[key]}"
        for key, name in (
            ("python", "Python"),
            ("duckdb", "DuckDB"),
            ("pyarrow", "pyarrow"),
            ("polars", "Polars"),
            ("pandas", "pandas"),
            ("scenario-analytics", "scenario-analytics"),
        )
        if versions.get(key)
    )
    return "; ".join(p for p in parts if p) + f". {tools}."


def dataset_section(dataset: dict[str, Any]) -> str:
    sessions = int(dataset.get("sessions", 0))
    setup = dataset.get("setup", {})
    counts = setup.get("counts") or {}
    fmt = {"parquet": "Parquet", "jsonl": "JSON Lines", "csv": "CSV"}.get(
        dataset.get("format", ""), dataset.get("format", "")
    )
    lines = [f"### {dataset['name']}: {sessions:,} sessions, {fmt}", ""]
    facts = [
        f"{dataset.get('session_rows_written', 0) or 0:,} session rows written "
        f"({dataset.get('duplicates', 0) or 0:,} re-exported duplicates)",
        f"{dataset.get('files', '?')} files, {memory(dataset.get('bytes'))}",
        f"as-of {dataset.get('as_of')}",
    ]
    if counts:
        facts.append(f"{counts.get('scenarios', '?')} scenarios, {counts.get('users', 0):,} users")
    if setup.get("materialized_filters_per_scenario"):
        facts.append(f"{setup['materialized_filters_per_scenario']} materialized filters/scenario")
    if setup.get("new_day"):
        facts.append(f"new day: {setup['new_day']['sessions']:,} sessions")
    limit = (dataset.get("engine") or {}).get("memory_limit")
    if limit:
        facts.append(f"DuckDB memory limit {limit} (job files, DuckDB baselines)")
    if dataset.get("limited_to"):
        facts.append("at this size only " + ", ".join(f"`{n}`" for n in dataset["limited_to"]))
    lines += ["; ".join(facts) + ".", ""]
    later: dict[str, list[str]] = {}
    for name, found in dataset.get("contenders", {}).items():
        if found.get("source"):
            later.setdefault(str(found["source"]), []).append(f"`{name}`")
    for source, names in later.items():
        lines += [
            f"From `{source}`, a later run of `bench/run.py` (`--contenders`): "
            f"{', '.join(names)}; the others from the main results file. Ratios are "
            "judged only between contenders of one run.",
            "",
        ]

    rows: list[list[object]] = []
    query_rows: list[list[object]] = []
    for name, found in dataset.get("contenders", {}).items():
        if not found.get("available", True):
            rows.append([f"`{name}`", found.get("description", ""), *["—"] * 5, found["reason"]])
            continue
        rounds = found.get("rounds", [])
        med = found.get("median")
        if not med:
            errors = [r.get("error", "") for r in rounds if r.get("exit_code") != 0]
            first = (errors[0].splitlines() or [""])[-1][:120] if errors else "no rounds"
            rows.append([f"`{name}`", found.get("description", ""), *["—"] * 5, f"failed: {first}"])
            continue
        secs = float(med["seconds"])
        unit = found.get("unit", "sessions")
        if unit == "requests":
            count = sum(setup.get("requests", {}).values()) or 0
            throughput = rate(count, secs).replace("/s", " req/s")
        else:
            throughput = rate(sessions, secs)
        ok = f"{found.get('rounds_ok', len(rounds))}/{len(rounds)}"
        good = [r for r in rounds if r.get("exit_code") == 0 and "seconds" in r]
        spread = [min(r["seconds"] for r in good), max(r["seconds"] for r in good)]
        cpu = [r["user_seconds"] + r["system_seconds"] for r in good if "user_seconds" in r]
        rows.append(
            [
                f"`{name}`",
                found.get("description", ""),
                seconds(secs),
                f"{seconds(spread[0])}–{seconds(spread[1])}",
                seconds(statistics.median(cpu)) if cpu else "—",
                throughput,
                memory(med.get("max_rss_bytes")),
                ok,
            ]
        )
        if unit == "requests":
            lat = med.get("latency")
            count = sum(setup.get("requests", {}).values()) or 0
            if lat:
                by_kind = med.get("latency_by_kind", {})
                kinds = ", ".join(
                    f"{kind} p50 {milliseconds(v['p50_ms'])} / p99 {milliseconds(v['p99_ms'])}"
                    for kind, v in by_kind.items()
                )
                query_rows.append(
                    [
                        f"`{name}`",
                        milliseconds(lat["p50_ms"]),
                        milliseconds(lat["p99_ms"]),
                        milliseconds(lat["mean_ms"]),
                        milliseconds(lat["max_ms"]),
                        kinds,
                    ]
                )
            elif count:
                per = secs / count * 1000
                query_rows.append(
                    [f"`{name}`", "—", "—", f"{per:.1f} ms (whole process / requests)", "—", ""]
                )
    lines.append(
        table(
            [
                "contender",
                "what",
                "median s",
                "min–max s",
                "CPU s",
                "rows/s",
                "peak RSS (median)",
                "rounds ok / note",
            ],
            rows,
        )
    )
    lines += [
        "",
        "CPU s: median user + system time of the process (less sensitive to a busy machine "
        "than wall time, but blind to waiting). "
        "rows/s: the dataset's sessions over the median time, whatever the contender does "
        "with them (`job_backfill_30` builds 30 snapshots; `job_new_day` has one new day's "
        "file to read); for queries, requests per second over the whole process.",
    ]
    if query_rows:
        lines += [
            "",
            "Query latency per request (medians over rounds of p50, p99, mean, max):",
            "",
            table(["contender", "p50", "p99", "mean", "max", "by kind"], query_rows),
        ]
        if setup.get("requests"):
            mix = ", ".join(f"{n} {kind}" for kind, n in setup["requests"].items())
            verified = setup.get("precomputed_verified")
            if verified:
                mix += f" ({verified} of the precomputed ones match a stored request key)"
            lines += ["", f"Requests: {mix}."]
    logged = []
    for name in ("job_new_day", "job_backfill_30"):
        found = dataset.get("contenders", {}).get(name) or {}
        said = [r["job_summary"] for r in found.get("rounds", []) if r.get("job_summary")]
        if said:
            logged.append(f"- `{name}`, last round: `{said[-1]}`")
    if logged:
        lines += ["", "What the job logged:", "", *logged]
    checks = dataset.get("checks", {})
    if checks:
        check_rows = []
        for name, check in checks.items():
            check_rows.append(
                [
                    f"`{name}`",
                    check.get("compared", ""),
                    f"{check.get('equal')}/{check.get('job_rows')}",
                    # Older results files name it one_tenth_off (it then counted decimals only).
                    check.get("last_digit_off", check.get("one_tenth_off")),
                    check.get("different"),
                    f"{check.get('missing_in_baseline')}/{check.get('extra_in_baseline')}",
                    "ok" if check.get("ok") else "MISMATCH",
                ]
            )
        lines += [
            "",
            "Baselines against the job's `summaries.parquet` (same dataset, same as-of):",
            "",
            table(
                [
                    "baseline",
                    "compared",
                    "rows equal",
                    "last digit off (float tie)",
                    "different",
                    "missing/extra",
                    "status",
                ],
                check_rows,
            ),
        ]
    return "\n".join(lines)


def render(results: dict[str, Any], source: str, notes: str | None = None) -> str:
    settings = results.get("settings", {})
    git = results.get("git", {})
    commit = (git.get("commit") or "unknown")[:12] + (
        " with local changes" if git.get("dirty") else ""
    )
    engine = []
    if settings.get("threads"):
        engine.append(f"{settings['threads']} threads")
    if settings.get("memory_limit"):
        engine.append(f"memory limit {settings['memory_limit']}")
    engine_text = ", ".join(engine) if engine else "DuckDB's and Polars' defaults (all cores)"
    own = [
        f"{d['name']}: memory limit {d['engine']['memory_limit']}"
        for d in results.get("datasets", [])
        if (d.get("engine") or {}).get("memory_limit") not in (None, settings.get("memory_limit"))
    ]
    if own:
        engine_text += f" ({'; '.join(own)})"
    load = results.get("load_average_start"), results.get("load_average_end")
    load_text = " → ".join(
        "/".join(f"{x:.1f}" for x in values) for values in load if isinstance(values, list)
    )
    capability = results.get("capabilities", {})
    targets = evaluate_targets(results)
    out = [
        "# Performance",
        "",
        f"<!-- Generated by bench/report.py from {source}. Edit bench/report.py, not this page;",
        '     only the "Profile notes" section at the end is written by hand and kept. -->',
        "",
        "What `make bench` measures (see `bench/README.md`): the full nightly `run` with the",
        "default materialized filters, a run with the unfiltered summary only, the next",
        "night's run after one new day of exports, a 30-day `backfill`, `validate`",
        "(loading and validating), and `query` latency over random requests; against a",
        "hand-written DuckDB pass computing the same default summaries without validation",
        "or publishing (the floor for this engine), DuckDB's bare `read_json`, and Polars and",
        "pandas computing the unfiltered summary of every scenario, on the same files in",
        "the same run. Each contender is its own process; times are wall-clock medians",
        "over rounds in which the contenders take turns; peak RSS is the process's maximum",
        "resident set size. `serve` is measured under load from 1, 4 and 16 clients; the",
        "store's growth over 30 nightly runs and a full run of 100M sessions (under a 6 GB",
        "DuckDB memory limit) are measured on request (`bench/README.md`).",
        "",
        f"- Run: {results.get('started_at')} to {results.get('finished_at') or '(unfinished)'} "
        f"(UTC), commit "
        f"{commit}; rounds per dataset: {settings.get('rounds')}; engine settings: "
        f"{engine_text}.",
        f"- Machine: {describe_machine(results)}",
        f"- Load average (1/5/15 min) at start → end: {load_text or 'unknown'}. The machine is "
        "shared: compare ratios within one run, not seconds across runs.",
        f"- Incremental runs (`run --full-refresh` present): "
        f"{'yes' if capability.get('full_refresh') else 'no'}; `backfill` present: "
        f"{'yes' if capability.get('backfill') else 'no'}.",
        "",
        "Reproduce:",
        "",
        "```",
        "make bench                      # full run: 1m, 10m, 2m-jsonl, 3 rounds, then this page",
        f"{results.get('command', '.venv/bin/python bench/run.py')}",
        *reproduce(results, source),
        "```",
        "",
        "## Targets",
        "",
        table(
            ["target", "dataset", "measured", "limit", "ratio", "status"],
            [[t.name, t.dataset, t.measured, t.limit, t.ratio, t.status] for t in targets],
        ),
        "",
    ]
    out += [serve_section(results), "", store_section(results), "", s3_section(results)]
    out += ["", "## Results by dataset"]
    for dataset in results.get("datasets", []):
        out += ["", dataset_section(dataset)]
    scale, scale_file = scale_source(results)
    if scale_file:
        for dataset in parquet_datasets(scale):
            if int(dataset.get("sessions", 0)) < SCALE_SESSIONS:
                continue  # its 10m is there for the ratio; the main run's 10m is above
            section = dataset_section(dataset).split("\n", 2)
            lead = (
                f"From `{scale_file}`, a separate run (`{scale.get('command')}`, "
                f"{scale.get('started_at')} to {scale.get('finished_at') or '(unfinished)'} "
                "UTC)"
            )
            base = scale_pair(scale)[1]
            lead += (
                f"; the time-per-session target compares it with that run's {base['name']}."
                if base
                else "."
            )
            out += ["", section[0], "", lead, "", *section[2:]]
    out += ["", (notes or NOTES_PLACEHOLDER).rstrip(), ""]
    return "\n".join(out)


def existing_notes(page: Path) -> str | None:
    """The hand-written "Profile notes" section of the current page, if any."""
    try:
        text = page.read_text(encoding="utf-8")
    except OSError:
        return None
    at = text.find("\n" + NOTES_HEADING)
    if at < 0:
        return None
    return text[at + 1 :]


def newest_results() -> Path:
    files = sorted(RESULTS.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    if not files:
        raise SystemExit("report: no results in bench/results; run bench/run.py first")
    return files[-1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render docs/PERFORMANCE.md from bench results.")
    parser.add_argument("results", nargs="?", type=Path, help="default: the newest results file")
    parser.add_argument("--out", default=str(PAGE), help="page to write, or - for stdout")
    parser.add_argument(
        "--serve",
        type=Path,
        help="the serve section from this bench/serve_load.py document instead",
    )
    parser.add_argument(
        "--store",
        type=Path,
        action="append",
        help="the store growth section from this bench/store_growth.py document instead "
        "(repeat for several: local disk and S3)",
    )
    parser.add_argument(
        "--s3",
        type=Path,
        help="the object storage section and target from this bench/run.py results file "
        "(e.g. --only job_full,job_full_s3)",
    )
    parser.add_argument(
        "--contenders",
        type=Path,
        action="append",
        help="a later bench/run.py results file (e.g. --sizes 10m --only job_full,job_new_day):"
        " its contenders replace the main file's of the same dataset (repeatable)",
    )
    parser.add_argument(
        "--scale",
        type=Path,
        help=f"the 100M targets from this results file instead (e.g. {SCALE_RUN})",
    )
    args = parser.parse_args(argv)
    source = args.results or newest_results()
    results = json.loads(source.read_text(encoding="utf-8"))
    shown = os.path.relpath(source.resolve(), ROOT)
    if args.serve:
        document = json.loads(args.serve.read_text(encoding="utf-8"))
        sessions = int((document.get("snapshot") or {}).get("sessions") or 0)
        results["serve_run"] = {
            "dataset": size_name(sessions),
            "sessions": sessions,
            "source": os.path.relpath(args.serve.resolve(), ROOT),
            "exit_code": 0 if document.get("ok") else 1,
            "result": document,
        }
    for store in args.store or []:
        document = json.loads(store.read_text(encoding="utf-8"))
        sessions = int(document.get("sessions") or 0)
        name = document.get("dataset") or (
            size_name(sessions) if sessions else Path(str(document.get("exports", "?"))).name
        )
        results.setdefault("store_runs", []).append(
            {
                "dataset": name,
                "sessions": sessions,
                "source": os.path.relpath(store.resolve(), ROOT),
                "exit_code": 0,
                "result": document,
            }
        )
    for later in args.contenders or []:
        document = json.loads(later.read_text(encoding="utf-8"))
        merge_contenders(results, document, os.path.relpath(later.resolve(), ROOT))
    if args.s3:
        results["s3_run"] = {
            "source": os.path.relpath(args.s3.resolve(), ROOT),
            "results": json.loads(args.s3.read_text(encoding="utf-8")),
        }
    if args.scale:
        results["scale_run"] = {
            "source": os.path.relpath(args.scale.resolve(), ROOT),
            "results": json.loads(args.scale.read_text(encoding="utf-8")),
        }
    if args.out == "-":
        sys.stdout.write(render(results, shown))
        return
    page = Path(args.out)
    page.write_text(render(results, shown, existing_notes(page)), encoding="utf-8")
    print(f"report: wrote {page} from {shown}", file=sys.stderr)


if __name__ == "__main__":
    main()
