"""What finding and restating late days costs: `snapshots stale` over a 30-day store, and
`run --restate-days N` against a plain run (issue 13's note).

    .venv/bin/python bench/stale.py --exports /tmp/b10m --as-of 2026-11-26 --work /tmp/stale-bench

`--exports` is a generated dataset (`scenario-analytics generate --out DIR --sessions
10000000 --seed 1 --end-date 2026-11-26`, as `bench/run.py` makes them); `--as-of` its
last day. The script hard-links the exports into
`--work`, backfills the 30 days up to `--as-of` (timed, for reference), adds a late file
of `--late` sessions created on the first of those days (so all 30 snapshots are
stale), then times:

- `snapshots stale --json` (with the session comparison) and `--no-sessions`;
- `run --as-of <as-of + 1>` with `--restate-days 0`, then the same with
  `--restate-days 2` (rebuilds the 2 newest stale days after its own).

Prints one line per step (seconds, what it found) and a JSON object at the end. Not part
of `make test` or `make bench`: it needs the 10M dataset and a few GB of scratch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CLI = Path(sys.executable).with_name("scenario-analytics")


def timed(name: str, *args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run([str(CLI), *args], capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    print(f"{name}: {seconds:.1f}s", flush=True)
    return seconds, done.stdout


def late_file(exports: Path, day: date, count: int) -> Path:
    """`count` new sessions (ids prefixed late-) created at noon of `day`, from the first
    rows of the first session file."""
    source = sorted((exports / "sessions").glob("*.parquet"))[0]
    rows = pq.ParquetFile(source).read_row_group(0).slice(0, count)
    ids = pa.array([f"late-{n:08}" for n in range(len(rows))])
    rows = rows.set_column(rows.schema.get_field_index("id"), "id", ids)
    noon = pa.array([f"{day.isoformat()}T12:00:00Z"] * len(rows))
    rows = rows.set_column(rows.schema.get_field_index("created_at"), "created_at", noon)
    target = exports / "sessions" / "zz-late.parquet"
    pq.write_table(rows, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=Path, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--late", type=int, default=1000)
    args = parser.parse_args()

    if args.work.exists():
        shutil.rmtree(args.work)
    exports, store = args.work / "exports", args.work / "store"
    shutil.copytree(args.exports, exports, copy_function=lambda s, d: Path(d).hardlink_to(s))
    where = ["--exports", str(exports), "--snapshots", str(store), "--log-format", "plain"]
    first = args.as_of - timedelta(days=args.days - 1)
    results: dict[str, object] = {"days": args.days, "late_sessions": args.late}
    results["backfill_seconds"], _ = timed(
        f"backfill {args.days} days", "backfill", *where, "--from", first.isoformat(),
        "--to", args.as_of.isoformat(),
    )  # fmt: skip
    late_file(exports, first, args.late)

    seconds, out = timed("snapshots stale --json", "snapshots", "stale", *where, "--json")
    found = json.loads(out)
    print(f"  {len(found)} stale; newest: {found[-1]['sessions'] if found else None}")
    results["stale_seconds"], results["stale_days"] = seconds, len(found)
    results["stale_added"] = [d["sessions"]["added"] for d in found]
    seconds, out = timed(
        "snapshots stale --json --no-sessions", "snapshots", "stale", *where, "--json",
        "--no-sessions",
    )  # fmt: skip
    results["stale_no_sessions_seconds"] = seconds

    after = (args.as_of + timedelta(days=1)).isoformat()
    results["run_restate_0_seconds"], _ = timed(
        "run --restate-days 0", "run", *where, "--as-of", after, "--skip-check", "day_volume",
        "--skip-check", "stale_exports", "--restate-days", "0",
    )  # fmt: skip
    results["run_restate_2_seconds"], out = timed(
        "run --restate-days 2", "run", *where, "--as-of", after, "--skip-check", "day_volume",
        "--skip-check", "stale_exports", "--restate-days", "2",
    )  # fmt: skip
    print(json.dumps(results))


if __name__ == "__main__":
    main()
