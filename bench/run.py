"""The benchmark harness: datasets, contenders, rounds, medians, peak memory, checks.

    .venv/bin/python bench/run.py                     # 1m, 10m, 2m-jsonl; 3 rounds
    .venv/bin/python bench/run.py --quick             # 100k smoke run, 1 round
    .venv/bin/python bench/run.py --sizes 1m --only job_full,duckdb_handwritten
    .venv/bin/python bench/run.py --sizes 10m --only serve  # serve_load.py on the snapshot
    .venv/bin/python bench/run.py --sizes 10m --only store_growth   # 30 nightly runs
    .venv/bin/python bench/run.py --sizes 10m,100m --rounds 1   # the 100M targets

Datasets are made once with `scenario-analytics generate` into --data-dir and reused.
Each contender runs as its own subprocess: wall time is measured around it and its peak
memory (maximum RSS) comes from os.wait4(). Within a round the contenders of a dataset
run one after the other in an order that rotates from round to round, so that a noisy
neighbour or a warm cache favours nobody for long; medians over rounds are reported.
Datasets of 100M sessions and more run only job_full and duckdb_handwritten, under a
6 GB DuckDB memory limit, unless --only and --memory-limit say otherwise.
Results go to bench/results/<date>-<sizes>.json; bench/report.py renders them.
This file is the entry point (options, main); the parts are in bench/harness/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# `python bench/run.py` puts only bench/ on sys.path; bench.harness needs the repository.
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from bench.harness.contenders import BACKFILL_DAYS, Harness  # noqa: E402
from bench.harness.datasets import ensure_dataset  # noqa: E402
from bench.harness.machine import git_state, machine_info  # noqa: E402
from bench.harness.requests import PRECOMPUTED_SHARE  # noqa: E402
from bench.harness.serve import DEFAULT_CLIENTS, DEFAULT_SECONDS, QUICK_SECONDS  # noqa: E402
from bench.harness.store_growth import (  # noqa: E402
    DEFAULT_NIGHTS,
    QUICK_NIGHTS,
    store_growth_dataset,
)
from bench.harness.util import (  # noqa: E402
    BENCH,
    CLI,
    ROOT,
    SCALE_CONTENDERS,
    SCALE_MEMORY_LIMIT,
    SCALE_SESSIONS,
    log,
    parse_datasets,
)

RESULTS = BENCH / "results"

DEFAULT_SIZES = "1m,10m,2m-jsonl"
QUICK_SIZES = "100k,100k-jsonl"
WINDOWS = ("all", 7, 30, 90)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the job against hand-written baselines (see bench/README.md).",
    )
    parser.add_argument(
        "--sizes",
        help=f"datasets, comma-separated: size plus optional -jsonl/-csv "
        f"(default {DEFAULT_SIZES}; --quick: {QUICK_SIZES})",
    )
    parser.add_argument("--rounds", type=int, help="rounds per dataset (default 3; --quick: 1)")
    parser.add_argument(
        "--only",
        help="comma-separated contender names, `serve` and `store_growth` among them "
        "(default: all but store_growth; at 100m: " + ", ".join(SCALE_CONTENDERS) + ")",
    )
    parser.add_argument("--quick", action="store_true", help="100k smoke run: small, 1 round")
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data", help="datasets (reused)")
    parser.add_argument("--requests", type=int, default=1000, help="query requests per round")
    parser.add_argument("--threads", type=int, help="DuckDB/Polars threads (default: theirs)")
    parser.add_argument(
        "--memory-limit",
        help="DuckDB memory limit for the job and DuckDB baselines "
        f"(default: theirs; at 100m and more: {SCALE_MEMORY_LIMIT})",
    )
    parser.add_argument(
        "--serve-clients",
        default=DEFAULT_CLIENTS,
        help=f"serve: concurrent clients, comma-separated (default {DEFAULT_CLIENTS})",
    )
    parser.add_argument(
        "--serve-seconds",
        type=float,
        help=f"serve: seconds per phase at most (default {DEFAULT_SECONDS:g}; "
        f"--quick: {QUICK_SECONDS:g})",
    )
    parser.add_argument(
        "--store-growth",
        action="store_true",
        help="also run bench/store_growth.py on one Parquet dataset after its rounds",
    )
    parser.add_argument(
        "--store-growth-on",
        metavar="NAME",
        help="store growth's dataset (default: the largest Parquet one under 100m)",
    )
    parser.add_argument(
        "--store-nights",
        type=int,
        help=f"store growth: nightly runs (default {DEFAULT_NIGHTS}; --quick: {QUICK_NIGHTS})",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per subprocess")
    parser.add_argument(
        "--out", type=Path, help="results file (default bench/results/<date>-<sizes>.json)"
    )
    args = parser.parse_args(argv)
    args.sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.serve_seconds = args.serve_seconds or (QUICK_SECONDS if args.quick else DEFAULT_SECONDS)
    args.store_nights = args.store_nights or (QUICK_NIGHTS if args.quick else DEFAULT_NIGHTS)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.store_nights < 1:
        parser.error("--store-nights must be at least 1")
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    if not CLI.exists():
        raise SystemExit(f"bench: {CLI} not found; run `make bench` (it installs the venv)")
    specs = parse_datasets(args.sizes)
    args.store_growth_on = store_growth_dataset(args, specs)
    args.data_dir = args.data_dir.resolve()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    harness = Harness(args)
    contenders = harness.contenders()
    started = datetime.now(UTC)
    log(f"capabilities: {harness.caps}")
    document: dict[str, Any] = {
        "schema": 1,
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(
            [".venv/bin/python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "git": git_state(),
        "machine": machine_info(),
        "load_average_start": list(os.getloadavg()),
        "settings": {
            "sizes": args.sizes,
            "rounds": args.rounds,
            "requests": args.requests,
            "precomputed_share": PRECOMPUTED_SHARE,
            "threads": args.threads,
            "memory_limit": args.memory_limit,
            "windows": list(WINDOWS),
            "backfill_days": BACKFILL_DAYS,
            "serve_clients": args.serve_clients,
            "serve_seconds": args.serve_seconds,
            "store_growth_on": args.store_growth_on,
            "store_nights": args.store_nights if args.store_growth_on else None,
            "scale": {
                "sessions": SCALE_SESSIONS,
                "memory_limit": args.memory_limit or SCALE_MEMORY_LIMIT,
                "contenders": None if args.only else list(SCALE_CONTENDERS),
            },
        },
        "capabilities": harness.caps,
        "datasets": [],
    }
    out = (
        args.out or RESULTS / f"{started.date().isoformat()}-{'_'.join(s.name for s in specs)}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        dataset = ensure_dataset(spec, args.data_dir)
        document["datasets"].append(harness.run_dataset(dataset, contenders))
        # Saved after each dataset: a long run that dies later keeps what it measured.
        document["load_average_end"] = list(os.getloadavg())
        out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    document["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    log(f"results: {os.path.relpath(out, ROOT)}")
    log(f"render: .venv/bin/python bench/report.py {os.path.relpath(out, ROOT)}")
    return out


if __name__ == "__main__":
    main()
