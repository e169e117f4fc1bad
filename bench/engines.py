"""The same run on both engines: seconds, ratio, identical outputs, where Spark spends time.

    .venv/bin/python bench/engines.py --exports bench/data/1m --exports bench/data/10m \\
        --as-of 2026-11-26 --work /tmp/engines --out bench/results/engines/2026-12-03.json

For each exports folder: `scenario-analytics run` into an empty store with `--engine
duckdb`, then with `--engine spark --spark-master local[2]` (`--master`), each timed
as one process (wall seconds; CPU seconds and peak RSS of the job's Python process
only: the Spark JVM it starts is not counted, its memory is set by `--driver-memory`).
Then the two snapshots are compared file for file: every file byte for byte, the
manifest but for its times and the per-engine digests (docs/ENGINES.md). Where the
time goes comes from the runs' JSON logs: the seconds of each stage (load, stage,
validate, build, summarize, write) and of each SQL file. Not part of `make test`: at
10M the Spark run takes minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.machine import git_state, machine_info  # noqa: E402
from bench.harness.measure import measure  # noqa: E402

CLI = str(Path(sys.executable).parent / "scenario-analytics")
VOLATILE = {"created_at", "duration_seconds", "data_digest"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=Path, action="append", required=True)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="6g", help="Spark's JVM (local mode)")
    parser.add_argument("--work", type=Path, default=None, help="scratch (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-engines-"))
    results = []
    for exports in args.exports:
        results.append(compare(exports.resolve(), args, work / exports.name))
    document = {
        "tool": "bench/engines.py",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "git": git_state(),
        "master": args.master,
        "driver_memory": args.driver_memory,
        "datasets": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    for r in results:
        d, s = r["runs"]["duckdb"], r["runs"]["spark"]
        print(
            f"{r['exports']}: duckdb {d['seconds']:.1f} s, spark {s['seconds']:.1f} s "
            f"({s['seconds'] / d['seconds']:.1f}x); identical: {r['identical']}"
        )
    return 0 if all(r["identical"] is True for r in results) else 1


def compare(exports: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    runs: dict[str, Any] = {}
    for engine in ("duckdb", "spark"):
        store = work / engine
        command = [
            CLI, "run", "--exports", str(exports), "--snapshots", str(store),
            "--as-of", args.as_of, "--engine", engine, "--log-format", "json",
            "--skip-check", "stale_exports", "--max-reject-ratio", "0.05",
        ]  # fmt: skip
        if engine == "spark":
            command += ["--spark-master", args.master]
            job = work / "spark.toml"
            job.write_text(
                f'[engine.spark]\nconf = {{ "spark.driver.memory" = "{args.driver_memory}" }}\n'
            )
            command += ["--job", str(job)]
        print(f"bench: {exports.name}: {engine} …", file=sys.stderr, flush=True)
        err = work / f"{engine}.err"
        m = measure(command, ROOT, work / f"{engine}.out", err, args.timeout)
        runs[engine] = {**m.to_json(), "profile": profile(err)}
        if m.exit_code != 0:
            tail = err.read_text(errors="replace").splitlines()[-5:]
            runs[engine]["stderr_tail"] = tail
    identical: bool | str = "not compared: a run failed"
    if all(r["exit_code"] == 0 for r in runs.values()):
        identical = same_snapshot(work / "duckdb", work / "spark")
    return {"exports": exports.name, "runs": runs, "identical": identical}


def profile(stderr: Path) -> dict[str, Any]:
    """Seconds per stage and per SQL file, from the run's JSON log."""
    stages: dict[str, float] = {}
    sql: dict[str, float] = {}
    for line in stderr.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("seconds") is None:
            continue
        kind, stage = event.get("event"), str(event.get("stage"))
        if kind == "done":
            stages[stage] = round(stages.get(stage, 0) + float(event["seconds"]), 3)
        elif kind == "step" and event.get("sql"):
            name = str(event["sql"])
            sql[name] = round(sql.get(name, 0) + float(event["seconds"]), 3)
        elif kind == "info" and "engine" in str(event.get("message", "")):
            stages["engine start"] = round(float(event["seconds"]), 3)
    return {"stages": stages, "sql": sql}


def same_snapshot(left_store: Path, right_store: Path) -> bool | str:
    (left,) = [p for p in left_store.glob("snapshot_date=*")]
    (right,) = [p for p in right_store.glob("snapshot_date=*")]
    a = {p.relative_to(left).as_posix(): p for p in left.rglob("*") if p.is_file()}
    b = {p.relative_to(right).as_posix(): p for p in right.rglob("*") if p.is_file()}
    if sorted(a) != sorted(b):
        return f"different files: {sorted(set(a) ^ set(b))[:5]}"
    for name, path in a.items():
        if name == "manifest.json":
            if manifest(path) != manifest(b[name]):
                return "manifests differ"
        elif sha256(path) != sha256(b[name]):
            return f"{name} differs"
    return True


def manifest(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for key in VOLATILE:
        data.pop(key, None)
    for output in data["outputs"]:
        output.pop("partitions", None)
    return data


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    raise SystemExit(main())
