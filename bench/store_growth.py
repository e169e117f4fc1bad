"""How the store grows: 30 consecutive nightly runs, each with one new day of exports.

    .venv/bin/python bench/store_growth.py --exports /tmp/b10m --as-of 2026-11-26 \\
        --work /tmp/store-growth --out bench/results/store/2026-12-03-10m.json

`--exports` is a generated dataset (`scenario-analytics generate --out DIR --sessions
10000000 --seed 1`); `--as-of` its last day. The script splits the dataset's session
files by the day of `created_at`: everything before the first of the `--nights` days into
one base file, and one file per night. The other exports are hard-linked. Night 1 starts
from an empty store with the base file and its day's file; each later night adds its
day's file and runs `run --as-of <that day>`, with retention off (no `--keep`), as a
scheduler would. After each night it records the run's time, the store's bytes (every
file once, however many snapshots share it: what `du` counts), the ledger's bytes and
the newest snapshot's own bytes (all its files, shared or not: what a snapshot weighs
alone). The target of issue #15: store bytes after 30 nights ≤ 4× one snapshot's bytes.

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


def apparent_bytes(root: Path) -> int:
    """Bytes of the files under `root`, each name counted (a snapshot alone)."""
    return sum(
        os.lstat(os.path.join(folder, name)).st_size
        for folder, _dirs, names in os.walk(root)
        for name in names
    )


def ledger_bytes(store: Path) -> int:
    """The incremental ledger's bytes, whatever its layout (a file or a folder)."""
    return sum(
        store_bytes(p) if p.is_dir() else p.stat().st_size
        for p in store.iterdir()
        if p.name.startswith(".ledger")
    )


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
    args = parser.parse_args()

    if args.work.exists():
        shutil.rmtree(args.work)
    days = [args.as_of - timedelta(days=args.nights - 1 - n) for n in range(args.nights)]
    exports, store, parts = args.work / "exports", args.work / "store", args.work / "days"
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
                shared = int(event.get("shared_bytes", 0))
        snapshot = (store / f"snapshot_date={day.isoformat()}").resolve()
        night = {
            "day": day.isoformat(),
            "seconds": round(seconds, 2),
            "new_rows": rows[name],
            "store_bytes": store_bytes(store),
            "ledger_bytes": ledger_bytes(store),
            "snapshot_bytes": apparent_bytes(snapshot),
            "shared_bytes": shared,
        }
        nights.append(night)
        print(
            f"{day}: {seconds:.1f}s, store {night['store_bytes'] / 2**20:,.0f} MiB "
            f"(ledger {night['ledger_bytes'] / 2**20:,.0f}), snapshot "
            f"{night['snapshot_bytes'] / 2**20:,.0f} MiB, shared {shared / 2**20:,.0f} MiB",
            flush=True,
        )
    last = nights[-1]
    manifest = json.loads((snapshot / "manifest.json").read_text(encoding="utf-8"))
    later = [n["seconds"] for n in nights[1:]]
    result = {
        "kind": "store_growth",
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ended_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "note": args.note,
        "exports": str(args.exports),
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


if __name__ == "__main__":
    main()
