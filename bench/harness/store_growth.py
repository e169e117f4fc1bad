"""How the store grows: bench/store_growth.py on one Parquet dataset, after its rounds (its
document goes with the dataset's results).

Opt-in (`--store-growth`, `--store-growth-on NAME`, or `store_growth` in --only): 30
nightly runs take about ten minutes at 10m and a few GB of scratch, on top of `make
bench`. Once per run, on one dataset: by default the largest Parquet dataset under 100M
sessions (the store target is for 10m). The scratch folder (a copy of the exports made of
hard links, the day files, the store) is removed afterwards; the logs stay.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.harness.datasets import Dataset
from bench.harness.measure import measure, tool_entry
from bench.harness.util import BENCH, SCALE_SESSIONS, DatasetSpec, log, only_names, remove

STORE_GROWTH = "store_growth"  # its name for --only
DEFAULT_NIGHTS = 30
QUICK_NIGHTS = 3


def store_growth_requested(args: argparse.Namespace) -> bool:
    return bool(args.store_growth or args.store_growth_on) or STORE_GROWTH in only_names(args)


def store_growth_dataset(args: argparse.Namespace, specs: list[DatasetSpec]) -> str | None:
    """The dataset store growth runs on: --store-growth-on, else the largest Parquet one
    under 100M sessions (else the largest Parquet one); None when not requested."""
    if not store_growth_requested(args):
        return None
    parquet = sorted((s for s in specs if s.fmt == "parquet"), key=lambda s: s.sessions)
    if args.store_growth_on:
        if args.store_growth_on not in {s.name for s in parquet}:
            raise SystemExit(
                f"bench: --store-growth-on {args.store_growth_on!r} is not a Parquet dataset "
                f"of --sizes ({', '.join(s.name for s in parquet) or 'none'})"
            )
        return str(args.store_growth_on)
    if not parquet:
        raise SystemExit("bench: store growth needs a Parquet dataset in --sizes")
    below = [s for s in parquet if s.sessions < SCALE_SESSIONS]
    return (below or parquet)[-1].name


def run_store_growth(
    ds: Dataset, args: argparse.Namespace, env: dict[str, str], job: Path | None
) -> dict[str, Any]:
    """store_growth.py on the dataset's exports: what it measured, or why it failed."""
    logs = ds.scratch / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = logs / "store_growth.json"
    remove(out)
    work = ds.scratch / "store-growth"
    command = [sys.executable, str(BENCH / "store_growth.py")]
    command += ["--exports", str(ds.path), "--as-of", ds.as_of.isoformat()]
    command += ["--work", str(work), "--nights", str(args.store_nights)]
    command += ["--dataset", ds.name, "--out", str(out)]
    if job is not None:
        command += ["--job", str(job)]
    log(f"{ds.name}: store growth ({args.store_nights} nightly runs, one new day each)")
    stderr = logs / "store_growth.err"
    try:
        m = measure(command, ds.scratch, logs / "store_growth.out", stderr, args.timeout, env)
    finally:
        remove(work)
    entry, why = tool_entry(command, m, out, stderr, args.timeout)
    if why is not None:
        log(f"{ds.name}: store growth FAILED ({why}); see {stderr}")
    else:
        ratio = (entry.get("result") or {}).get("ratio")
        log(f"{ds.name}: store growth: {m.seconds:.0f} s, store / snapshot {ratio}×")
    return entry
