"""How the store grows: 30 consecutive nightly runs, each with one new day of exports.

    .venv/bin/python bench/store_growth.py --exports /tmp/b10m --as-of 2026-11-26 \\
        --work /tmp/store-growth --out bench/results/store/2026-12-03-10m.json
    .venv/bin/python bench/store_growth.py ... --s3 seaweedfs     # the store in a bucket

`--exports` is a generated dataset (`scenario-analytics generate --out DIR --sessions
10000000 --seed 1 --end-date 2026-11-26`, as `bench/run.py` makes them); `--as-of` its
last day. The script splits the dataset's session
files by the day of `created_at`: everything before the first of the `--nights` days into
one base file, and one file per night. The other exports are hard-linked. Night 1 starts
from an empty store with the base file and its day's file; each later night adds its
day's file and runs `run --as-of <that day>`, with retention off (no `--keep`), as a
scheduler would. After each night it records the run's time, the store's bytes (every
file once, however many snapshots share it: what `du` counts on local disk, the sum of
the objects' sizes in a bucket, as S3 bills them), the ledger's bytes and the newest
snapshot's own bytes (all its files, the shared session files too: what a snapshot
weighs alone). The target of issues #15 and #22: store bytes after 30 nights ≤ 4× one
snapshot's bytes, on local disk and on S3 (`--s3 seaweedfs` or `--s3 moto`: the store
in a bucket of that server, started on 127.0.0.1; the exports stay local).

Prints one line per night and writes a JSON document (`--out`) that `bench/report.py
--store FILE` renders; `bench/run.py --store-growth` runs it on one of its datasets and
keeps the document in its results. `--job FILE` passes a job file to every night's
`run` (engine settings; its `[materialize]` too). Not part of `make test`: at 10M it
takes about 10 minutes and a few GB of scratch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness.s3server import start_moto, start_seaweedfs  # noqa: E402
from scenario_analytics.publish.store import Store  # noqa: E402

CLI = Path(sys.executable).with_name("scenario-analytics")


def store_bytes(root: Path, seen: set[tuple[int, int]] | None = None) -> int:
    """Bytes of the files under `root`, each inode once (as `du` counts hard links)."""
    seen = set() if seen is None else seen
    total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            info = os.lstat(os.path.join(folder, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def measure_store(where: str, day: date) -> dict[str, int]:
    """Bytes of the store (each object once; on local disk each inode once, as `du`),
    of its ledger, and of the snapshot of `day` (every file it uses, shared or not)."""
    store = Store(where)
    try:
        sizes = {o.key: o.size for o in store.storage.objects("")}
        version = store.version(day)
        assert version is not None, day
        snapshot = sum(sizes.get(k, 0) for k in set(version.keys().values()))
        root = store.root.path
        total = store_bytes(root) if root is not None else sum(sizes.values())
        ledger = sum(s for k, s in sizes.items() if k.startswith(".ledger/"))
        return {"store_bytes": total, "ledger_bytes": ledger, "snapshot_bytes": snapshot}
    finally:
        store.close()


def split_sessions(source: Path, target: Path, days: list[date]) -> dict[str, int]:
    """The dataset's sessions as `target/base.parquet` (before `days[0]`, or without a
    readable created_at) and `target/day-<date>.parquet` per day; rows of each."""
    target.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE s AS SELECT *, CAST(try_cast(created_at AS TIMESTAMPTZ) AT TIME ZONE "
        "'UTC' AS DATE) AS day__ FROM read_parquet($p, union_by_name = true)",
        {"p": str(source / "sessions" / "*.parquet")},
    )
    rows: dict[str, int] = {}
    first = days[0]
    ((rows["base"],),) = con.execute(
        f"COPY (SELECT * EXCLUDE (day__) FROM s WHERE day__ IS NULL OR day__ < $d) "
        f"TO '{target / 'base.parquet'}' (FORMAT PARQUET)",
        {"d": first},
    ).fetchall()
    for day in days:
        name = f"day-{day.isoformat()}.parquet"
        ((rows[name],),) = con.execute(
            f"COPY (SELECT * EXCLUDE (day__) FROM s WHERE day__ = $d) TO '{target / name}' "
            "(FORMAT PARQUET)",
            {"d": day},
        ).fetchall()
    later = con.execute("SELECT count(*) FROM s WHERE day__ > $d", {"d": days[-1]}).fetchall()
    rows["after_last_night"] = int(later[0][0])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=Path, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--note", default="")
    parser.add_argument("--job", type=Path, help="job file for every night's `run`")
    parser.add_argument("--dataset", default="", help="the dataset's name, for the report")
    parser.add_argument(
        "--s3", choices=["seaweedfs", "moto"], help="put the store in a bucket of this server"
    )
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=0,
        help="the store's grace period for readers of replaced versions (default 0: nights "
        "run 24 hours apart, far beyond the default hour, so each night's clean-up removes "
        "what the night before replaced; here they run seconds apart)",
    )
    args = parser.parse_args()
    os.environ["SCENARIO_ANALYTICS_STORAGE_GRACE_SECONDS"] = str(args.grace_seconds)
    server = None
    if args.s3:
        server = start_seaweedfs() if args.s3 == "seaweedfs" else start_moto()
        os.environ.update(server.env())

    if args.work.exists():
        shutil.rmtree(args.work)
    days = [args.as_of - timedelta(days=args.nights - 1 - n) for n in range(args.nights)]
    exports, parts = args.work / "exports", args.work / "days"
    store = f"s3://{server.new_bucket()}/store" if server else str(args.work / "store")
    shutil.copytree(
        args.exports,
        exports,
        ignore=shutil.ignore_patterns("sessions"),
        copy_function=lambda s, d: Path(d).hardlink_to(s),
    )
    (exports / "sessions").mkdir()
    started_at = datetime.now(UTC)
    rows = split_sessions(args.exports, parts, days)
    print(f"split: {rows['base']:,} rows before {days[0]}, {args.nights} day files", flush=True)
    (exports / "sessions" / "base.parquet").hardlink_to(parts / "base.parquet")

    nights: list[dict[str, Any]] = []
    for day in days:
        name = f"day-{day.isoformat()}.parquet"
        (exports / "sessions" / name).hardlink_to(parts / name)
        began = time.monotonic()
        done = subprocess.run(
            [str(CLI), "run", "--exports", str(exports), "--snapshots", str(store),
             "--as-of", day.isoformat(), "--log-format", "json",
             *(["--job", str(args.job)] if args.job else [])],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        seconds = time.monotonic() - began
        if done.returncode != 0:
            sys.exit(f"night {day} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        shared = 0
        for line in done.stderr.splitlines():
            event = json.loads(line)
            if event.get("stage") == "write" and event.get("event") == "done":
                shared = int(event.get("shared_files", 0))
        night = {
            "day": day.isoformat(),
            "seconds": round(seconds, 2),
            "new_rows": rows[name],
            **measure_store(store, day),
            "shared_files": shared,
        }
        nights.append(night)
        print(
            f"{day}: {seconds:.1f}s, store {night['store_bytes'] / 2**20:,.0f} MiB "
            f"(ledger {night['ledger_bytes'] / 2**20:,.0f}), snapshot "
            f"{night['snapshot_bytes'] / 2**20:,.0f} MiB, {shared} session files shared",
            flush=True,
        )
    last = nights[-1]
    reader = Store(store)
    version = reader.version(days[-1])
    assert version is not None
    manifest = version.manifest.model_dump(mode="json")
    reader.close()
    later = [n["seconds"] for n in nights[1:]]
    result = {
        "kind": "store_growth",
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ended_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "note": args.note,
        "grace_seconds": args.grace_seconds,
        "exports": str(args.exports),
        "store": "s3 (" + args.s3 + ")" if args.s3 else "local disk",
        "dataset": args.dataset,
        "sessions": int((manifest.get("counts") or {}).get("sessions_in_snapshot") or 0),
        "nights": nights,
        "rows": rows,
        "first_night_seconds": nights[0]["seconds"],
        "later_nights_median_seconds": statistics.median(later) if later else None,
        "store_bytes": last["store_bytes"],
        "ledger_bytes": last["ledger_bytes"],
        "snapshot_bytes": last["snapshot_bytes"],
        "ratio": round(last["store_bytes"] / last["snapshot_bytes"], 3),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "nights"}))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if server is not None:
        server.stop()


if __name__ == "__main__":
    main()
