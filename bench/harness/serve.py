"""`scenario-analytics serve` under load: bench/serve_load.py on a dataset's reference
snapshot, once per Parquet dataset, after its rounds (its results go with the dataset's).

Once, not once per round: each phase already times hundreds to thousands of requests,
and at 10m the whole run (server start, warm-up, 12 phases of at most 15 s) takes about
three minutes; three runs would add six more to `make bench` for little. Parquet
datasets only: the server reads the snapshot, which does not depend on the format of
the exports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.harness.datasets import Dataset
from bench.harness.measure import measure, tool_entry
from bench.harness.util import BENCH, SCALE_SESSIONS, log, only_names, remove

SERVE = "serve"  # its name for --only
DEFAULT_CLIENTS = "1,4,16"
DEFAULT_SECONDS = 15.0
QUICK_SECONDS = 3.0


def serve_wanted(args: argparse.Namespace, ds: Dataset) -> bool:
    """On Parquet datasets, when --only names it or there is no --only (then not at 100M
    and above: bench/harness/util.py SCALE_SESSIONS)."""
    only = only_names(args)
    if ds.spec.fmt != "parquet":
        return False
    return SERVE in only if only else ds.spec.sessions < SCALE_SESSIONS


def run_serve(
    ds: Dataset, args: argparse.Namespace, env: dict[str, str], job: Path | None
) -> dict[str, Any]:
    """serve_load.py on the reference snapshot: what it measured, or why it failed."""
    logs = ds.scratch / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = logs / "serve_load.json"
    remove(out)
    command = [sys.executable, str(BENCH / "serve_load.py")]
    command += ["--snapshots", str(ds.scratch / "reference"), "--clients", args.serve_clients]
    command += ["--seconds", f"{args.serve_seconds:g}"]
    command += ["--warm-up-seconds", f"{min(10.0, args.serve_seconds):g}"]
    command += ["--server-log", str(logs / "serve.server.err"), "--out", str(out)]
    if job is not None:
        command += ["--job", str(job)]
    log(f"{ds.name}: serve under load ({args.serve_clients} clients, ≤ {args.serve_seconds:g} s)")
    stderr = logs / "serve_load.err"
    m = measure(command, ds.scratch, logs / "serve_load.out", stderr, args.timeout, env)
    entry, why = tool_entry(command, m, out, stderr, args.timeout)
    if why is not None:
        log(f"{ds.name}: serve FAILED ({why}); see {stderr}")
    else:
        log(f"{ds.name}: serve: {m.seconds:.0f} s, every answer 200")
    return entry
