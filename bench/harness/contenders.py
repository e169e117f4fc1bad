"""Contenders, one subprocess each; the harness that sets up a dataset and runs its rounds
in an order that rotates; and the medians over rounds."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.harness.checks import check_baselines
from bench.harness.datasets import SEED, Dataset, make_new_day
from bench.harness.machine import capabilities
from bench.harness.measure import (
    job_summary_line,
    last_json_line,
    measure,
    run_checked,
    stderr_tail,
)
from bench.harness.requests import make_requests, verify_precomputed
from bench.harness.s3server import S3Server, start_seaweedfs
from bench.harness.serve import SERVE, run_serve, serve_wanted
from bench.harness.store_growth import STORE_GROWTH, run_store_growth
from bench.harness.util import (
    BENCH,
    CLI,
    ROOT,
    SCALE_CONTENDERS,
    SCALE_MEMORY_LIMIT,
    SCALE_SESSIONS,
    link_tree,
    log,
    median,
    only_names,
    remove,
)

BACKFILL_DAYS = 30
# Contenders whose last stdout line is a JSON document worth keeping with the round.
JSON_STDOUT = {
    "query_library",
    "duckdb_handwritten",
    "duckdb_read_json",
    "polars_unfiltered",
    "pandas_unfiltered",
}


@dataclass
class Prepared:
    command: list[str]
    cleanup: Callable[[], None] = lambda: None
    output: Path | None = None  # a baseline's figures, for the check


@dataclass
class Contender:
    name: str
    description: str
    formats: tuple[str, ...]
    prepare: Callable[[Dataset, int], Prepared]
    unit: str = "sessions"  # what "rows/s" counts
    available: bool = True
    reason: str = ""


def materialize_toml(unfiltered_only: bool) -> str:
    if unfiltered_only:
        return (
            "# Only the unfiltered summary (all users, system users included, all time).\n"
            '[materialize]\naudiences = ["all_users"]\nsystem_users = ["include"]\n'
            'windows = ["all"]\n'
        )
    return (
        "# The contract's default set of materialized filters.\n"
        '[materialize]\naudiences = ["all_users", "each_group"]\n'
        'system_users = ["include", "exclude"]\nwindows = ["all", 7, 30, 90]\n'
    )


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.caps = capabilities()
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + ([self.env["PYTHONPATH"]] if self.env.get("PYTHONPATH") else [])
        )
        if args.threads:
            self.env["POLARS_MAX_THREADS"] = str(args.threads)
        self._s3: S3Server | None = None
        self._s3_exports: dict[str, str] = {}  # dataset -> its exports' s3:// URI

    # the local S3 server (job_full_s3) ------------------------------------------------------
    def s3_exports(self, ds: Dataset) -> tuple[S3Server, str]:
        """The S3 server (SeaweedFS, started once on 127.0.0.1) and the dataset's exports
        uploaded to it (once, untimed); the AWS variables point every contender at it."""
        if self._s3 is None:
            self._s3 = start_seaweedfs()
            atexit.register(self._s3.stop)
            self.env.update(self._s3.env())
        if ds.name not in self._s3_exports:
            bucket = self._s3.new_bucket()
            client = self._s3.client()
            for path in sorted(p for p in ds.path.rglob("*") if p.is_file()):
                key = f"exports/{path.relative_to(ds.path).as_posix()}"
                client.upload_file(str(path), bucket, key)
            self._s3_exports[ds.name] = f"s3://{bucket}/exports"
        return self._s3, self._s3_exports[ds.name]

    # engine settings --------------------------------------------------------------------
    def memory_limit(self, dataset: Dataset) -> str | None:
        """--memory-limit; else 6GB at 100M sessions and more (util.SCALE_SESSIONS)."""
        if self.args.memory_limit:
            return str(self.args.memory_limit)
        return SCALE_MEMORY_LIMIT if dataset.spec.sessions >= SCALE_SESSIONS else None

    def engine(self, dataset: Dataset) -> dict[str, Any]:
        return {"threads": self.args.threads, "memory_limit": self.memory_limit(dataset)}

    def for_dataset(self, dataset: Dataset, contenders: list[Contender]) -> list[Contender]:
        """At 100M sessions and more, only what the 100M targets need, unless --only."""
        if dataset.spec.sessions < SCALE_SESSIONS or only_names(self.args):
            return contenders
        return [c for c in contenders if c.name in SCALE_CONTENDERS]

    # job files -------------------------------------------------------------------------
    def job_file(self, dataset: Dataset, unfiltered_only: bool) -> Path:
        path = dataset.scratch / ("job-unfiltered.toml" if unfiltered_only else "job-default.toml")
        lines = ["# Written by bench/run.py.", "max_reject_ratio = 0.01", "", "[engine]"]
        spill = dataset.scratch / "spill"
        spill.mkdir(parents=True, exist_ok=True)
        lines.append(f"temp_directory = {json.dumps(str(spill))}")
        if self.args.threads:
            lines.append(f"threads = {self.args.threads}")
        limit = self.memory_limit(dataset)
        if limit:
            lines.append(f"memory_limit = {json.dumps(limit)}")
        path.write_text("\n".join(lines) + "\n\n" + materialize_toml(unfiltered_only), "utf-8")
        return path

    def engine_flags(self, dataset: Dataset) -> list[str]:
        flags = []
        if self.args.threads:
            flags += ["--threads", str(self.args.threads)]
        limit = self.memory_limit(dataset)
        if limit:
            flags += ["--memory-limit", limit]
        return flags

    def fresh(self, path: Path) -> Path:
        remove(path)
        return path

    # contenders -----------------------------------------------------------------------
    def contenders(self) -> list[Contender]:
        full_refresh = ["--full-refresh"] if self.caps["full_refresh"] else []

        def job_run(unfiltered_only: bool) -> Callable[[Dataset, int], Prepared]:
            def prepare(ds: Dataset, _round: int) -> Prepared:
                store = self.fresh(ds.scratch / "store-run")
                command = [str(CLI), "run", "--exports", str(ds.path), "--snapshots", str(store)]
                command += ["--as-of", ds.as_of.isoformat()]
                command += ["--job", str(self.job_file(ds, unfiltered_only)), *full_refresh]
                return Prepared(command, lambda: remove(store))

            return prepare

        def job_run_s3(ds: Dataset, number: int) -> Prepared:
            # The same full run, exports and store on the local S3 server (SeaweedFS).
            server, exports = self.s3_exports(ds)
            bucket = exports.removeprefix("s3://").split("/")[0]
            store = f"s3://{bucket}/store-r{number + 1}"
            command = [str(CLI), "run", "--exports", exports, "--snapshots", store]
            command += ["--as-of", ds.as_of.isoformat()]
            command += ["--job", str(self.job_file(ds, False)), *full_refresh]

            def cleanup() -> None:
                client = server.client()
                pages = client.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=f"store-r{number + 1}/"
                )
                for page in pages:
                    keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                    if keys:
                        client.delete_objects(Bucket=bucket, Delete={"Objects": keys})

            return Prepared(command, cleanup)

        def job_validate(ds: Dataset, _round: int) -> Prepared:
            # The checks judge the dataset's own last day (the default, yesterday, would
            # find its exports days old and fail the freshness check).
            command = [str(CLI), "validate", "--exports", str(ds.path), "--json"]
            return Prepared(command + ["--as-of", ds.as_of.isoformat()])

        def job_new_day(ds: Dataset, _round: int) -> Prepared:
            # Untimed: a copy of the exports (hard links), a full run of the last day into a
            # fresh store; then one more day of exports arrives. Timed: the next night's run.
            exports = self.fresh(ds.scratch / "exports-new-day")
            store = self.fresh(ds.scratch / "store-new-day")
            link_tree(ds.path, exports)
            job = self.job_file(ds, unfiltered_only=False)
            base = [str(CLI), "run", "--exports", str(exports), "--snapshots", str(store)]
            run_checked(
                base + ["--as-of", ds.as_of.isoformat(), "--job", str(job)],
                ds.scratch,
                f"{ds.name}: the full run before the new day",
                self.env,
            )
            new_day = ds.scratch / f"new-day.{ds.spec.fmt}"
            name = f"part-{(ds.as_of + timedelta(days=1)).isoformat()}.{ds.spec.fmt}"
            os.link(new_day, exports / "sessions" / name)
            next_day = (ds.as_of + timedelta(days=1)).isoformat()

            def cleanup() -> None:
                remove(exports)
                remove(store)

            return Prepared(base + ["--as-of", next_day, "--job", str(job)], cleanup)

        def job_backfill(ds: Dataset, _round: int) -> Prepared:
            store = self.fresh(ds.scratch / "store-backfill")
            first = ds.as_of - timedelta(days=BACKFILL_DAYS - 1)
            command = [str(CLI), "backfill", "--exports", str(ds.path), "--snapshots", str(store)]
            command += ["--from", first.isoformat(), "--to", ds.as_of.isoformat()]
            command += ["--job", str(self.job_file(ds, unfiltered_only=False))]
            return Prepared(command, lambda: remove(store))

        def baseline(module: str, engine: bool) -> Callable[[Dataset, int], Prepared]:
            def prepare(ds: Dataset, _round: int) -> Prepared:
                out = ds.scratch / f"out-{module}.parquet"
                command = [sys.executable, "-m", f"bench.baselines.{module}"]
                command += ["--exports", str(ds.path), "--as-of", ds.as_of.isoformat()]
                command += ["--out", str(out)] + (self.engine_flags(ds) if engine else [])
                return Prepared(command, output=out)

            return prepare

        def read_json(ds: Dataset, _round: int) -> Prepared:
            command = [sys.executable, "-m", "bench.baselines.duckdb_read_json"]
            return Prepared(command + ["--exports", str(ds.path)] + self.engine_flags(ds))

        def query_library(ds: Dataset, _round: int) -> Prepared:
            command = [sys.executable, str(BENCH / "query_latency.py")]
            command += ["--snapshots", str(ds.scratch / "reference")]
            command += ["--requests", str(ds.scratch / "requests.jsonl")]
            command += ["--kinds", str(ds.scratch / "requests.kinds.json")]
            return Prepared(command)

        def query_cli(ds: Dataset, _round: int) -> Prepared:
            command = [str(CLI), "query", "--snapshots", str(ds.scratch / "reference")]
            command += ["--requests", str(ds.scratch / "requests.jsonl")]
            return Prepared(command)

        every = ("parquet", "jsonl", "csv")
        contenders = [
            Contender(
                "job_full",
                "`run`: full nightly run, default materialized filters",
                every,
                job_run(False),
            ),
            Contender(
                "job_full_s3",
                "`run` as job_full, exports and store on a local S3 server (SeaweedFS)",
                ("parquet", "jsonl"),
                job_run_s3,
            ),
            Contender(
                "job_unfiltered",
                "`run` with a job file that keeps only the unfiltered summary",
                every,
                job_run(True),
            ),
            Contender(
                "job_new_day",
                "`run --as-of D+1` after one new day of exports (incremental)",
                every,
                job_new_day,
                available=self.caps["full_refresh"],
                reason="not available: `run` has no --full-refresh (no incremental runs yet)",
            ),
            Contender(
                "job_backfill_30",
                f"`backfill` of {BACKFILL_DAYS} days into an empty store",
                every,
                job_backfill,
                available=self.caps["backfill"],
                reason="not available: there is no `backfill` command yet",
            ),
            Contender(
                "job_validate",
                "`validate --json`: loading and validating only",
                every,
                job_validate,
            ),
            Contender(
                "duckdb_handwritten",
                "hand-written DuckDB pass: the same default summaries, no validation",
                ("parquet", "jsonl"),
                baseline("duckdb_handwritten", engine=True),
            ),
            Contender(
                "duckdb_read_json",
                "DuckDB's bare `read_json` of the sessions files into a table",
                ("jsonl",),
                read_json,
            ),
            Contender(
                "polars_unfiltered",
                "Polars: the unfiltered summary of every scenario",
                ("parquet", "jsonl"),
                baseline("polars_summary", engine=False),
            ),
            Contender(
                "pandas_unfiltered",
                "pandas: the unfiltered summary of every scenario",
                ("parquet", "jsonl"),
                baseline("pandas_summary", engine=False),
            ),
            Contender(
                "query_library",
                f"{self.args.requests:,} requests through SnapshotQuery.answer, one process",
                every,
                query_library,
                unit="requests",
            ),
            Contender(
                "query_cli",
                f"`query --requests FILE` with the same {self.args.requests:,} requests, "
                "end to end",
                every,
                query_cli,
                unit="requests",
            ),
        ]
        if self.args.only:
            wanted = {name.strip() for name in self.args.only.split(",") if name.strip()}
            unknown = wanted - {c.name for c in contenders} - {SERVE, STORE_GROWTH}
            if unknown:
                names = ", ".join([c.name for c in contenders] + [SERVE, STORE_GROWTH])
                raise SystemExit(f"bench: unknown contender(s) {sorted(unknown)}; known: {names}")
            contenders = [c for c in contenders if c.name in wanted]
        return contenders

    # set-up of one dataset --------------------------------------------------------------
    def setup(self, ds: Dataset, contenders: list[Contender]) -> dict[str, Any]:
        ds.scratch.mkdir(parents=True, exist_ok=True)
        names = {c.name for c in contenders if c.available}
        setup: dict[str, Any] = {}
        # The reference snapshot: the job's figures for the checks, and what queries read.
        reference = self.fresh(ds.scratch / "reference")
        log(f"{ds.name}: reference run (untimed; also warms the page cache)")
        started = time.perf_counter()
        run_checked(
            [
                str(CLI),
                "run",
                "--exports",
                str(ds.path),
                "--snapshots",
                str(reference),
                "--as-of",
                ds.as_of.isoformat(),
                "--job",
                str(self.job_file(ds, unfiltered_only=False)),
            ],
            ds.scratch,
            f"{ds.name}: reference run",
            self.env,
        )
        setup["reference_run_seconds"] = round(time.perf_counter() - started, 2)
        manifest = json.loads(
            (reference / f"snapshot_date={ds.as_of.isoformat()}" / "manifest.json").read_text()
        )
        setup["materialized_filters_per_scenario"] = manifest.get(
            "materialized_filters_per_scenario"
        )
        setup["counts"] = manifest.get("counts")
        if names & {"query_library", "query_cli"}:
            snapshot = reference / f"snapshot_date={ds.as_of.isoformat()}"
            requests, kinds = make_requests(snapshot, ds.as_of, self.args.requests, SEED)
            (ds.scratch / "requests.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in requests), encoding="utf-8"
            )
            (ds.scratch / "requests.kinds.json").write_text(json.dumps(kinds), encoding="utf-8")
            setup["requests"] = {kind: kinds.count(kind) for kind in sorted(set(kinds))}
            setup["precomputed_verified"] = verify_precomputed(snapshot, requests, kinds)
        if "job_new_day" in names:
            setup["new_day"] = make_new_day(ds, ds.scratch / f"new-day.{ds.spec.fmt}")
        return setup

    # one dataset, all rounds ------------------------------------------------------------
    def run_dataset(self, ds: Dataset, contenders: list[Contender]) -> dict[str, Any]:
        limited = self.for_dataset(ds, contenders)
        described: dict[str, Any] = {"engine": self.engine(ds)}
        if len(limited) < len(contenders):
            described["limited_to"] = [c.name for c in limited]
            log(f"{ds.name}: at this size only {', '.join(described['limited_to'])} (no --only)")
        contenders = limited
        runnable = [c for c in contenders if c.available and ds.spec.fmt in c.formats]
        growth = self.args.store_growth_on == ds.name
        if not runnable and not serve_wanted(self.args, ds) and not growth:
            log(f"{ds.name}: nothing selected runs on this dataset")
            return {**ds.info, **described, "setup": {}, "contenders": {}, "checks": {}}
        # Store growth alone needs no reference snapshot: it makes its own store.
        setup = self.setup(ds, contenders) if runnable or serve_wanted(self.args, ds) else {}
        results: dict[str, Any] = {}
        for c in contenders:
            if ds.spec.fmt not in c.formats:
                continue
            results[c.name] = {
                "description": c.description,
                "unit": c.unit,
                "available": c.available,
                **({} if c.available else {"reason": c.reason}),
                "rounds": [],
            }
        outputs: dict[str, Path] = {}
        for number in range(self.args.rounds if runnable else 0):
            shift = number % len(runnable) if runnable else 0
            order = runnable[shift:] + runnable[:shift]
            names = ", ".join(c.name for c in order)
            log(f"{ds.name}: round {number + 1}/{self.args.rounds}: {names}")
            for c in order:
                try:
                    prepared = c.prepare(ds, number)
                except (SystemExit, Exception) as exc:  # a set-up step failed: no measurement
                    log(f"{ds.name}: {c.name}: set-up failed: {exc}")
                    results[c.name]["rounds"].append(
                        {"round": number + 1, "exit_code": None, "error": f"set-up: {exc}"}
                    )
                    continue
                logs = ds.scratch / "logs"
                stdout = logs / f"{c.name}.r{number + 1}.out"
                stderr = logs / f"{c.name}.r{number + 1}.err"
                m = measure(
                    prepared.command, ds.scratch, stdout, stderr, self.args.timeout, self.env
                )
                entry = {"round": number + 1, **m.to_json()}
                extra = last_json_line(stdout) if c.name in JSON_STDOUT else None
                if extra is not None:
                    entry["extra"] = extra
                summary = job_summary_line(stderr) if c.name.startswith("job_") else None
                if summary:
                    entry["job_summary"] = summary
                if m.exit_code != 0:
                    why = f"timed out after {self.args.timeout:g} s" if m.timed_out else ""
                    why = why or f"exit {m.exit_code}"
                    entry["error"] = f"{stderr_tail(stderr)}\n{why}".strip()
                    log(f"{ds.name}: {c.name} failed ({why}); see {stderr}")
                else:
                    log(
                        f"{ds.name}: {c.name}: {m.seconds:.2f} s, "
                        f"peak {m.max_rss_bytes / 2**20:,.0f} MiB"
                    )
                results[c.name]["command"] = [
                    os.path.relpath(a, ROOT) if a.startswith(str(ROOT)) else a
                    for a in prepared.command
                ]
                results[c.name]["rounds"].append(entry)
                if prepared.output is not None and m.exit_code == 0:
                    outputs[c.name] = prepared.output
                prepared.cleanup()
        for result in results.values():
            result.update(summarize_rounds(result["rounds"]))
        checks = check_baselines(ds, outputs) if outputs else {}
        found = {**ds.info, **described, "setup": setup, "contenders": results, "checks": checks}
        # Engine settings reach serve and store growth through a job file, when there are any.
        engine = self.args.threads or self.memory_limit(ds)
        job = self.job_file(ds, unfiltered_only=False) if engine else None
        if serve_wanted(self.args, ds):
            # On the reference snapshot, after the rounds (bench/harness/serve.py: why once).
            found["serve"] = run_serve(ds, self.args, self.env, job)
        if growth:
            # On the dataset's exports (bench/harness/store_growth.py: why opt-in, once).
            found["store_growth"] = run_store_growth(ds, self.args, self.env, job)
        return found


def summarize_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rounds if r.get("exit_code") == 0]
    if not ok:
        return {"median": None} if rounds else {}
    summary: dict[str, Any] = {
        "median": {
            "seconds": round(median([r["seconds"] for r in ok]) or 0.0, 4),
            "max_rss_bytes": int(median([r["max_rss_bytes"] for r in ok]) or 0),
        },
        "peak_rss_bytes": max(r["max_rss_bytes"] for r in ok),
        "rounds_ok": len(ok),
    }
    summary["median"]["range_seconds"] = [
        round(min(r["seconds"] for r in ok), 4),
        round(max(r["seconds"] for r in ok), 4),
    ]
    cpu = [r["user_seconds"] + r["system_seconds"] for r in ok if "user_seconds" in r]
    if cpu:
        summary["median"]["cpu_seconds"] = round(median(cpu) or 0.0, 3)
    latency = [
        r["extra"] for r in ok if isinstance(r.get("extra"), dict) and "p50_ms" in r["extra"]
    ]
    if latency:
        summary["median"]["latency"] = {
            key: round(median([float(x[key]) for x in latency]) or 0.0, 3)
            for key in ("p50_ms", "p99_ms", "mean_ms", "max_ms", "open_seconds")
        }
        kinds = sorted({k for x in latency for k in x.get("by_kind", {})})
        summary["median"]["latency_by_kind"] = {
            kind: {
                key: round(
                    median(
                        [float(x["by_kind"][kind][key]) for x in latency if kind in x["by_kind"]]
                    )
                    or 0.0,
                    3,
                )
                for key in ("p50_ms", "p99_ms", "mean_ms")
            }
            for kind in kinds
        }
    return summary
