"""Per-request latency of `SnapshotQuery.answer` over a file of requests, in one process.

Opens the snapshot once (timed separately), then times each request of the file (one
JSON object per line, `scenario_id` plus the API's filter parameters, as for
`scenario-analytics query --requests`) around `answer()` alone. Prints one JSON document
on stdout: open time, p50/p99/mean/max in milliseconds, the same per request kind when a
kinds file (a JSON list, one kind per request) is given, and the count of each exit code.

    .venv/bin/python bench/query_latency.py --snapshots STORE --requests requests.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import date
from pathlib import Path

from scenario_analytics import SnapshotQuery


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list (share in 0..1)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


def stats(latencies_ms: list[float]) -> dict[str, float | int]:
    ordered = sorted(latencies_ms)
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50), 3),
        "p99_ms": round(percentile(ordered, 0.99), 3),
        "mean_ms": round(sum(ordered) / len(ordered), 3) if ordered else float("nan"),
        "max_ms": round(ordered[-1], 3) if ordered else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=Path, required=True)
    parser.add_argument("--requests", type=Path, required=True)
    parser.add_argument("--kinds", type=Path, help="JSON list: the kind of each request")
    parser.add_argument("--as-of", type=date.fromisoformat)
    args = parser.parse_args()

    requests = [
        json.loads(line)
        for line in args.requests.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    kinds: list[str] = (
        json.loads(args.kinds.read_text(encoding="utf-8"))
        if args.kinds
        else ["all"] * len(requests)
    )
    started = time.perf_counter()
    reader = SnapshotQuery(args.snapshots, args.as_of)
    open_seconds = time.perf_counter() - started
    latencies: list[float] = []
    exit_codes: dict[str, int] = {}
    try:
        for request in requests:
            scenario = str(request.pop("scenario_id"))
            begin = time.perf_counter()
            answer = reader.answer(scenario, request)
            latencies.append((time.perf_counter() - begin) * 1000)
            code = str(int(answer.exit_code))
            exit_codes[code] = exit_codes.get(code, 0) + 1
    finally:
        reader.close()
    by_kind: dict[str, list[float]] = {}
    for kind, latency in zip(kinds, latencies, strict=True):
        by_kind.setdefault(kind, []).append(latency)
    result = {
        "open_seconds": round(open_seconds, 4),
        **stats(latencies),
        "by_kind": {kind: stats(values) for kind, values in sorted(by_kind.items())},
        "exit_codes": exit_codes,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
