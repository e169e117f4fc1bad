"""Random kills of runs on an S3 store while a reader polls it: does a reader ever see a
partial snapshot? (issue #22: "a reader polling during 100 random kills of runs never
sees a partial snapshot").

    .venv/bin/python bench/s3_kills.py --kills 100 --out bench/results/s3/kills.json

Starts moto's S3 server (or `--server seaweedfs`) on 127.0.0.1, uploads exports made by
`scenario-analytics generate` (`--sessions`, default 20,000), publishes one date, then
`--kills` times: starts `run` for one of five dates (new dates and rebuilds of published
ones, in random order), kills it with SIGKILL after a random time within its usual
duration, and goes on with the next (whose run cleans up after the killed one). A reader
thread polls all along: it reads latest.json, the version of the date it names, and
every file of that version (downloaded and checked against its manifest's sha256), and
counts reads that were whole and reads that were not. At the end one more run of each
date must publish and `snapshots verify` must find the store whole.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness.s3server import read_whole, start_moto, start_seaweedfs  # noqa: E402
from scenario_analytics.publish.store import Store  # noqa: E402

CLI = [sys.executable, "-m", "scenario_analytics"]
DATES = ["2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--server", choices=["moto", "seaweedfs"], default="moto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    server = start_moto() if args.server == "moto" else start_seaweedfs()
    work = Path(tempfile.mkdtemp(prefix="s3-kills-"))
    started = datetime.now(UTC)
    try:
        os.environ.update(server.env())
        env = {**os.environ, "SCENARIO_ANALYTICS_SKIP_CHECK": "stale_exports day_volume"}
        bucket = server.new_bucket()
        exports = work / "exports"
        subprocess.run([*CLI, "generate", "--out", str(exports), "--sessions",
                        str(args.sessions), "--seed", "3", "--end-date", "2026-11-26"],
                       check=True, env=env)  # fmt: skip
        client = server.client()
        for path in sorted(p for p in exports.rglob("*") if p.is_file()):
            key = f"exports/{path.relative_to(exports).as_posix()}"
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        store = f"s3://{bucket}/store"

        def run(day: str) -> list[str]:
            return [*CLI, "run", "--exports", f"s3://{bucket}/exports", "--snapshots", store,
                    "--as-of", day]  # fmt: skip

        subprocess.run(run(DATES[0]), check=True, env=env, capture_output=True)
        began = time.monotonic()  # a rebuild, as most runs below are: what they take
        subprocess.run(run(DATES[0]), check=True, env=env, capture_output=True)
        one_run = time.monotonic() - began
        print(f"one run: {one_run:.1f}s", flush=True)

        def builds() -> dict[str, str]:
            found = Store(store)
            try:
                return {
                    d.isoformat(): r[0].build
                    for d in found.dates()
                    if (r := found.record(d)) is not None
                }
            finally:
                found.close()

        reads = {"whole": 0, "partial": 0}
        problems: list[str] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                problem = read_whole(store)
                reads["whole" if problem is None else "partial"] += 1
                if problem is not None:
                    problems.append(problem)

        reader = threading.Thread(target=poll)
        reader.start()
        rng = random.Random(args.seed)
        exits: dict[str, int] = {}
        committed_before_kill = 0  # killed after its commit: its date's build changed
        try:
            for n in range(args.kills):
                day = rng.choice(DATES)
                before = builds().get(day)
                proc = subprocess.Popen(run(day), env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)  # fmt: skip
                time.sleep(rng.uniform(0.1, one_run * 1.2))
                if proc.poll() is None:
                    proc.kill()
                    outcome = "killed"
                else:
                    outcome = f"exit {proc.returncode}"
                proc.wait()
                if outcome == "killed" and builds().get(day) != before:
                    committed_before_kill += 1
                exits[outcome] = exits.get(outcome, 0) + 1
                print(f"{n + 1}/{args.kills} {day}: {outcome}; reads {reads}", flush=True)
            final = [subprocess.run(run(d), env=env, capture_output=True) for d in DATES]
        finally:
            stop.set()
            reader.join()
        verify = subprocess.run([*CLI, "snapshots", "verify", "--snapshots", store],
                                env=env, capture_output=True, text=True)  # fmt: skip
        result = {
            "kind": "s3_kills",
            "command": " ".join(sys.argv),
            "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "server": args.server,
            "sessions": args.sessions,
            "one_run_seconds": round(one_run, 2),
            "kills": args.kills,
            "outcomes": exits,
            "killed_after_their_commit": committed_before_kill,
            "reads": reads,
            "problems": problems[:20],
            "final_runs_exit_codes": [r.returncode for r in final],
            "verify_exit_code": verify.returncode,
            "verify": verify.stderr.strip().splitlines()[-1:] if verify.stderr else [],
        }
        print(json.dumps(result, indent=1))
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1) + "\n")
        if reads["partial"] or verify.returncode or any(r.returncode for r in final):
            sys.exit(1)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
