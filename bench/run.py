"""The benchmark harness: datasets, contenders, rounds, medians, peak memory, checks.

    .venv/bin/python bench/run.py                     # 1m, 10m, 2m-jsonl; 3 rounds
    .venv/bin/python bench/run.py --quick             # 100k smoke run, 1 round
    .venv/bin/python bench/run.py --sizes 1m --only job_full,duckdb_handwritten

Datasets are made once with `scenario-analytics generate` into --data-dir and reused.
Each contender runs as its own subprocess: wall time is measured around it and its peak
memory (maximum RSS) comes from os.wait4(). Within a round the contenders of a dataset
run one after the other in an order that rotates from round to round, so that a noisy
neighbour or a warm cache favours nobody for long; medians over rounds are reported.
Results go to bench/results/<date>-<sizes>.json; bench/report.py renders them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
CLI = BIN / "scenario-analytics"
RESULTS = BENCH / "results"

DEFAULT_SIZES = "1m,10m,2m-jsonl"
QUICK_SIZES = "100k,100k-jsonl"
SEED = 1  # the datasets' generate seed
WINDOWS = ("all", 7, 30, 90)
BACKFILL_DAYS = 30
PRECOMPUTED_SHARE = 0.3
# Contenders whose last stdout line is a JSON document worth keeping with the round.
JSON_STDOUT = {
    "query_library",
    "duckdb_handwritten",
    "duckdb_read_json",
    "polars_unfiltered",
    "pandas_unfiltered",
}

# --- small helpers -------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use e.g. 100k, 1m, 2.5m")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)]
    return int(float(match.group(1)) * scale)


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # e.g. 1m, 2m-jsonl
    sessions: int
    fmt: str  # parquet or jsonl


def parse_datasets(text: str) -> list[DatasetSpec]:
    specs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        size, _, fmt = item.partition("-")
        fmt = fmt or "parquet"
        if fmt not in {"parquet", "jsonl", "csv"}:
            raise SystemExit(f"bench: bad dataset {item!r}: the format is parquet, jsonl or csv")
        specs.append(DatasetSpec(item.lower(), parse_size(size), fmt))
    if not specs:
        raise SystemExit("bench: --sizes names no dataset")
    return specs


def rss_bytes(usage: Any) -> int:
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS
    return int(usage.ru_maxrss) * (1 if sys.platform == "darwin" else 1024)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def link_tree(source: Path, target: Path) -> None:
    """A copy of an exports folder made of hard links (a real copy across file systems)."""
    for path in sorted(source.rglob("*")):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- measuring one subprocess ------------------------------------------------------------


@dataclass
class Measurement:
    seconds: float
    max_rss_bytes: int
    exit_code: int
    user_seconds: float
    system_seconds: float
    timed_out: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 4),
            "max_rss_bytes": self.max_rss_bytes,
            "exit_code": self.exit_code,
            "user_seconds": round(self.user_seconds, 3),
            "system_seconds": round(self.system_seconds, 3),
            **({"timed_out": True} if self.timed_out else {}),
        }


def measure(
    command: list[str],
    cwd: Path,
    stdout: Path,
    stderr: Path,
    timeout: float,
    env: dict[str, str] | None = None,
) -> Measurement:
    """Run `command`; wall time around it, its rusage (peak RSS) from os.wait4()."""
    stdout.parent.mkdir(parents=True, exist_ok=True)
    timed_out = threading.Event()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, cwd=cwd, stdout=out, stderr=err, env=env, start_new_session=True
        )

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measurement(
        seconds=seconds,
        max_rss_bytes=rss_bytes(usage),
        exit_code=proc.returncode,
        user_seconds=usage.ru_utime,
        system_seconds=usage.ru_stime,
        timed_out=timed_out.is_set(),
    )


def run_checked(command: list[str], cwd: Path, what: str, env: dict[str, str] | None = None) -> str:
    """An untimed step (set-up); fails the benchmark with its stderr if it fails."""
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"bench: {what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def last_json_line(path: Path) -> dict[str, Any] | None:
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        value = json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def job_summary_line(path: Path) -> str | None:
    """The job's last one-line summary on stderr (files read/unchanged, rows, time)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    found = [line for line in lines if ": summary: " in line or ": published " in line]
    if not found:
        return None
    return found[-1].removeprefix("scenario-analytics: ").replace(str(ROOT) + os.sep, "")


def stderr_tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- the machine and the tools -----------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if cpu_model is None:
        cpu_model = platform.processor() or platform.machine()
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        nproc: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    versions = {"python": platform.python_version()}
    for package in ("duckdb", "pyarrow", "polars", "pandas", "scenario-analytics"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "nproc": nproc,
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory,
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "versions": versions,
    }


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        except OSError:
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


def capabilities() -> dict[str, Any]:
    """What the installed CLI can do: backfill and incremental runs are being built."""

    def help_text(*args: str) -> tuple[int, str]:
        proc = subprocess.run([str(CLI), *args, "--help"], capture_output=True, text=True)
        return proc.returncode, proc.stdout

    backfill_code, _ = help_text("backfill")
    _, run_help = help_text("run")
    return {"backfill": backfill_code == 0, "full_refresh": "--full-refresh" in run_help}


# --- datasets ------------------------------------------------------------------------------


@dataclass
class Dataset:
    spec: DatasetSpec
    path: Path
    scratch: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def as_of(self) -> date:
        return date.fromisoformat(self.info["as_of"])

    def session_files(self) -> list[Path]:
        return sorted(
            (p for p in (self.path / "sessions").rglob("*") if p.is_file()),
            key=lambda p: p.relative_to(self.path).as_posix().encode(),
        )


def session_source(files: list[Path], fmt: str) -> str:
    names = "[" + ", ".join(sql_literal(str(p)) for p in files) + "]"
    if fmt == "parquet":
        return f"read_parquet({names}, filename = true, file_row_number = true)"
    if fmt == "jsonl":
        return f"read_json({names}, format = 'newline_delimited', filename = true)"
    return f"read_csv({names}, header = true, all_varchar = true, filename = true)"


def ensure_dataset(spec: DatasetSpec, data_dir: Path) -> Dataset:
    """Generate the dataset once (into a temporary name, then renamed) and describe it."""
    path = data_dir / spec.name
    meta = data_dir / f"{spec.name}.json"
    if not (path.is_dir() and meta.is_file()):
        remove(path)
        tmp = data_dir / f".tmp-{spec.name}"
        remove(tmp)
        log(f"generating {spec.name}: {spec.sessions:,} sessions as {spec.fmt} (once)")
        started = time.perf_counter()
        report = run_checked(
            [
                str(CLI),
                "generate",
                "--out",
                str(tmp),
                "--sessions",
                str(spec.sessions),
                "--seed",
                str(SEED),
                "--format",
                spec.fmt,
            ],
            ROOT,
            f"generate {spec.name}",
        )
        generated = json.loads(report)
        dataset = Dataset(spec, tmp, data_dir / ".scratch" / spec.name)
        files = dataset.session_files()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        row = con.execute(
            f"""SELECT max(CAST(TRY_CAST(created_at AS TIMESTAMPTZ) AS DATE))
                FROM {session_source(files, spec.fmt)}"""
        ).fetchone()
        con.close()
        info = {
            "name": spec.name,
            "format": spec.fmt,
            "sessions": spec.sessions,
            "seed": SEED,
            "session_rows_written": generated.get("sessions_written"),
            "duplicates": generated.get("duplicates"),
            "files": len(generated.get("files", [])),
            "as_of": row[0].isoformat() if row and row[0] else None,
            "generate_seconds": round(time.perf_counter() - started, 1),
        }
        tmp.rename(path)
        meta.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    info = json.loads(meta.read_text(encoding="utf-8"))
    info["bytes"] = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    info["path"] = os.path.relpath(path, ROOT)
    dataset = Dataset(spec, path, data_dir / ".scratch" / spec.name, info)
    if dataset.info.get("as_of") is None:
        raise SystemExit(f"bench: cannot tell the last day of {path}; delete it and run again")
    return dataset


def make_new_day(dataset: Dataset, target: Path) -> dict[str, Any]:
    """One more day of exports: the sessions of the dataset's last day, moved one day later
    with new ids, as one extra sessions part file.

    Taken from the dataset itself rather than from `generate --seed <other>`: another seed
    has other users and other scenario ids, so its "new day" would be a different
    workspace. Here the new day's sessions belong to the same users and scenarios, and
    the number of them is that of one ordinary day (about N/90).
    """
    files = dataset.session_files()
    fmt = dataset.spec.fmt
    day = dataset.as_of
    target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # Parquet has row numbers; for text formats the last file is enough to pick one row
    # per id (the new day only needs distinct ids, not the contract's exact winner).
    order = "filename DESC, file_row_number DESC" if fmt == "parquet" else "filename DESC"
    drop = "filename, file_row_number, ts" if fmt == "parquet" else "filename, ts"
    con.execute(
        f"""CREATE TABLE new_day AS
            SELECT * EXCLUDE ({drop}) REPLACE (
                substr(md5(CAST(id AS VARCHAR) || '/next-day'), 1, 12) AS id,
                strftime(ts + INTERVAL 1 DAY, '%Y-%m-%dT%H:%M:%S.%fZ') AS created_at)
            FROM (SELECT *, CAST(TRY_CAST(created_at AS TIMESTAMPTZ) AS TIMESTAMP) AS ts
                  FROM {session_source(files, fmt)})
            WHERE CAST(ts AS DATE) = $day
            QUALIFY row_number() OVER (PARTITION BY id ORDER BY {order}) = 1""",
        {"day": day},
    )
    row = con.execute(
        f"""SELECT (SELECT count(*) FROM new_day),
                   (SELECT count(*) FROM new_day
                    WHERE id IN (SELECT CAST(id AS VARCHAR) FROM {session_source(files, fmt)})),
                   (SELECT count(*) - count(DISTINCT id) FROM new_day)"""
    ).fetchone()
    assert row is not None
    rows, collisions, repeated = (int(v) for v in row)
    if collisions or repeated:
        raise SystemExit(
            f"bench: the new day's session ids collide ({collisions} with the dataset, "
            f"{repeated} among themselves); change the salt in make_new_day()"
        )
    options = "(FORMAT PARQUET, COMPRESSION ZSTD)" if fmt == "parquet" else "(FORMAT JSON)"
    if fmt == "csv":
        options = "(FORMAT CSV, HEADER true)"
    con.execute(f"COPY new_day TO {sql_literal(str(target))} {options}")
    con.close()
    return {"date": (day + timedelta(days=1)).isoformat(), "sessions": rows, "id_collisions": 0}


# --- query requests ------------------------------------------------------------------------


def make_requests(
    snapshot: Path, as_of: date, count: int, seed: int
) -> tuple[list[dict], list[str]]:
    """Random requests against one snapshot; about PRECOMPUTED_SHARE of them name a
    materialized filter (given in varied but equivalent forms), the rest mix users,
    emails, groups, dates and the system-user flag at random."""
    rng = random.Random(seed)
    con = duckdb.connect()

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return con.execute(sql.replace("{S}", sql_literal(str(snapshot)))).fetchall()

    scenarios = rows(
        "SELECT scenario_id, slug FROM read_parquet({S} || '/scenarios.parquet') ORDER BY 1"
    )
    users = rows("SELECT user_id, email FROM read_parquet({S} || '/users.parquet') ORDER BY 1")
    groups = [
        g
        for (g,) in rows(
            """SELECT group_id FROM read_parquet({S} || '/groups.parquet')
               UNION SELECT group_id FROM read_parquet({S} || '/group_memberships.parquet')
               ORDER BY 1"""
        )
    ]
    participants: dict[str, list[str]] = {}
    for scenario_id, user_id in rows(
        """SELECT scenario_id, user_id FROM read_parquet({S} || '/participants.parquet')
           ORDER BY 1, 2"""
    ):
        participants.setdefault(scenario_id, []).append(user_id)
    emails = {u: e for u, e in users if e}
    materialized = rows(
        """SELECT scenario_id, group_ids, start_date, end_date, exclude_system_users
           FROM read_parquet({S} || '/summaries.parquet')
           WHERE len(user_ids) = 0 AND len(user_emails) = 0 ORDER BY scenario_id, request_key"""
    )
    con.close()

    def scenario_ref(scenario_id: str) -> str:
        slug = dict(scenarios).get(scenario_id)
        return slug if slug and rng.random() < 0.4 else scenario_id

    def iso(moment: datetime, end: bool) -> str:
        style = rng.random()
        if style < 0.4 and (moment.time() == datetime.min.time() or end):
            return moment.date().isoformat()
        if style < 0.7:
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return (moment + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f+02:00")

    requests: list[dict[str, Any]] = []
    kinds: list[str] = []
    day0 = datetime.combine(as_of, datetime.min.time())
    for _ in range(count):
        if materialized and rng.random() < PRECOMPUTED_SHARE:
            scenario_id, group_ids, start, end, exclude = rng.choice(materialized)
            request: dict[str, Any] = {"scenario_id": scenario_ref(scenario_id)}
            if group_ids:
                request["group_ids"] = ",".join(group_ids)
            if start is not None:
                request["start_date"] = iso(start, end=False)
            if end is not None:
                request["end_date"] = iso(end, end=True)
            if exclude:
                request["exclude_system_users"] = True
            requests.append(request)
            kinds.append("precomputed")
            continue
        if rng.random() < 0.02 or not scenarios:
            requests.append({"scenario_id": f"no-such-scenario-{rng.randrange(10**6)}"})
            kinds.append("not_found")
            continue
        scenario_id = rng.choice(scenarios)[0]
        request = {"scenario_id": scenario_ref(scenario_id)}
        known = participants.get(scenario_id) or [u for u, _ in users]
        if rng.random() < 0.35 and known:
            request["user_ids"] = ",".join(rng.sample(known, min(len(known), rng.randint(1, 5))))
        if rng.random() < 0.25 and known:
            picked = [emails[u] for u in rng.sample(known, min(len(known), 3)) if u in emails]
            if picked:
                request["user_emails"] = ",".join(
                    e.upper() if rng.random() < 0.2 else e for e in picked
                )
        if rng.random() < 0.4 and groups:
            request["group_ids"] = ",".join(rng.sample(groups, min(len(groups), rng.randint(1, 3))))
        if rng.random() < 0.6:
            start = day0 - timedelta(days=rng.randint(0, 120), hours=rng.randint(0, 23))
            request["start_date"] = iso(start, end=False)
            if rng.random() < 0.5:
                end = start + timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23))
                request["end_date"] = iso(end, end=True)
        if rng.random() < 0.5:
            request["exclude_system_users"] = rng.random() < 0.5
        requests.append(request)
        kinds.append("computed")
    return requests, kinds


def verify_precomputed(snapshot: Path, requests: list[dict], kinds: list[str]) -> str:
    """How many requests meant to hit a materialized summary do, by the job's own
    canonical key (scenario_analytics.serve.requests.parse_request)."""
    from scenario_analytics.serve.requests import parse_request

    con = duckdb.connect()
    path = sql_literal(str(snapshot))
    keys = set(
        con.execute(
            f"SELECT scenario_id, request_key FROM read_parquet({path} || '/summaries.parquet')"
        ).fetchall()
    )
    by_slug: dict[str, str] = {}
    ids = set()
    for scenario_id, slug in con.execute(
        f"SELECT scenario_id, slug FROM read_parquet({path} || '/scenarios.parquet') ORDER BY 1"
    ).fetchall():
        ids.add(scenario_id)
        if slug is not None:
            by_slug.setdefault(slug, scenario_id)
    con.close()
    meant = hits = 0
    for request, kind in zip(requests, kinds, strict=True):
        if kind != "precomputed":
            continue
        meant += 1
        params = {k: v for k, v in request.items() if k != "scenario_id"}
        ref = request["scenario_id"]
        scenario_id = ref if ref in ids else by_slug.get(ref)
        hits += (scenario_id, parse_request(params).key) in keys
    return f"{hits}/{meant}"


# --- contenders ----------------------------------------------------------------------------


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

    # job files -------------------------------------------------------------------------
    def job_file(self, dataset: Dataset, unfiltered_only: bool) -> Path:
        path = dataset.scratch / ("job-unfiltered.toml" if unfiltered_only else "job-default.toml")
        lines = ["# Written by bench/run.py.", "max_reject_ratio = 0.01", "", "[engine]"]
        spill = dataset.scratch / "spill"
        spill.mkdir(parents=True, exist_ok=True)
        lines.append(f"temp_directory = {json.dumps(str(spill))}")
        if self.args.threads:
            lines.append(f"threads = {self.args.threads}")
        if self.args.memory_limit:
            lines.append(f"memory_limit = {json.dumps(self.args.memory_limit)}")
        path.write_text("\n".join(lines) + "\n\n" + materialize_toml(unfiltered_only), "utf-8")
        return path

    def engine_flags(self) -> list[str]:
        flags = []
        if self.args.threads:
            flags += ["--threads", str(self.args.threads)]
        if self.args.memory_limit:
            flags += ["--memory-limit", self.args.memory_limit]
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

        def job_validate(ds: Dataset, _round: int) -> Prepared:
            return Prepared([str(CLI), "validate", "--exports", str(ds.path), "--json"])

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
                command += ["--out", str(out)] + (self.engine_flags() if engine else [])
                return Prepared(command, output=out)

            return prepare

        def read_json(ds: Dataset, _round: int) -> Prepared:
            command = [sys.executable, "-m", "bench.baselines.duckdb_read_json"]
            return Prepared(command + ["--exports", str(ds.path)] + self.engine_flags())

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
            unknown = wanted - {c.name for c in contenders}
            if unknown:
                names = ", ".join(c.name for c in contenders)
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
        runnable = [c for c in contenders if c.available and ds.spec.fmt in c.formats]
        setup = self.setup(ds, contenders)
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
        for number in range(self.args.rounds):
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
        checks = check_baselines(ds, outputs)
        return {**ds.info, "setup": setup, "contenders": results, "checks": checks}


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


# --- checks: the baselines compute the job's figures ----------------------------------------

FIGURES = (
    "participant_count",
    "total_sessions",
    "average_best_score",
    "average_best_rank",
    "average_lift_percentage",
    "total_practice_minutes",
    "average_session_duration_seconds",
    "gold_count",
    "gold_percentage",
    "silver_count",
    "silver_percentage",
    "bronze_count",
    "bronze_percentage",
    "unranked_count",
    "unranked_percentage",
)
DECIMALS = {
    "average_best_score",
    "average_lift_percentage",
    "average_session_duration_seconds",
    "gold_percentage",
    "silver_percentage",
    "bronze_percentage",
    "unranked_percentage",
}
# Whole minutes rounded from a sum of durations: an exact half minute (a tie, e.g. 17,903,130
# seconds = 298,385.5 minutes) can come out one minute off in a float sum.
WHOLE_ROUNDED = {"total_practice_minutes"}


def check_baselines(ds: Dataset, outputs: dict[str, Path]) -> dict[str, Any]:
    """Compare each baseline's figures with the job's summaries.parquet (reference run).

    duckdb_handwritten: every default materialized row, exactly. polars/pandas: the
    unfiltered rows (request_key ''); counts exactly, decimal figures after rounding the
    float to one decimal; a figure rounded from a float that is one last digit off (one
    tenth, or one minute for the practice minutes: an exact tie the float missed) is
    counted apart from real differences.
    """
    summaries = (
        ds.scratch / "reference" / f"snapshot_date={ds.as_of.isoformat()}" / "summaries.parquet"
    )
    checks: dict[str, Any] = {}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""CREATE TABLE job AS SELECT
                scenario_id,
                CASE WHEN len(group_ids) = 0 THEN NULL ELSE group_ids[1] END AS group_id,
                exclude_system_users,
                CASE WHEN start_date IS NULL THEN 0
                     ELSE date_diff('day', CAST(start_date AS DATE), $as_of) + 1 END
                    AS window_days,
                request_key, {", ".join(FIGURES)}
            FROM read_parquet({sql_literal(str(summaries))}, hive_partitioning = false)
            WHERE len(user_ids) = 0 AND len(user_emails) = 0 AND len(group_ids) <= 1""",
        {"as_of": ds.as_of},
    )
    for name, path in sorted(outputs.items()):
        con.execute(
            f"CREATE OR REPLACE TABLE base AS SELECT * FROM read_parquet({sql_literal(str(path))})"
        )
        columns = {c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE base)").fetchall()}
        if "window_days" in columns:
            keys = ["scenario_id", "group_id", "exclude_system_users", "window_days"]
            job_rows = "SELECT * FROM job"
        else:
            keys = ["scenario_id"]
            job_rows = "SELECT * FROM job WHERE request_key = ''"
        on = " AND ".join(f"j.{k} IS NOT DISTINCT FROM b.{k}" for k in keys)
        differences = []
        for f in FIGURES:
            if f in DECIMALS:
                differences.append(
                    f"CASE WHEN round(CAST(b.{f} AS DOUBLE), 1) = CAST(j.{f} AS DOUBLE) THEN 0 "
                    f"WHEN abs(round(CAST(b.{f} AS DOUBLE), 1) - CAST(j.{f} AS DOUBLE)) < 0.1001 "
                    f"THEN 1 ELSE 2 END"
                )
            elif f in WHOLE_ROUNDED:
                differences.append(
                    f"CASE WHEN b.{f} = j.{f} THEN 0 WHEN abs(b.{f} - j.{f}) = 1 THEN 1 ELSE 2 END"
                )
            else:
                differences.append(f"CASE WHEN b.{f} = j.{f} THEN 0 ELSE 2 END")
        worst = f"greatest({', '.join(differences)})"
        row = con.execute(
            f"""WITH j AS ({job_rows}), b AS (SELECT * FROM base),
                    joined AS (
                        SELECT j.scenario_id IS NULL AS extra, b.scenario_id IS NULL AS missing,
                               CASE WHEN j.scenario_id IS NOT NULL AND b.scenario_id IS NOT NULL
                                    THEN {worst} END AS worst
                        FROM j FULL JOIN b ON {on})
                SELECT (SELECT count(*) FROM j), (SELECT count(*) FROM b),
                       count(*) FILTER (WHERE worst = 0), count(*) FILTER (WHERE worst = 1),
                       count(*) FILTER (WHERE worst = 2), count(*) FILTER (WHERE missing),
                       count(*) FILTER (WHERE extra)
                FROM joined"""
        ).fetchone()
        assert row is not None
        job_count, base_count, exact, last_digit, wrong, missing, extra = (int(v) for v in row)
        examples = con.execute(
            f"""WITH j AS ({job_rows}), b AS (SELECT * FROM base)
                SELECT {", ".join(f"j.{k}" for k in keys)},
                       {", ".join(f"j.{f} AS job_{f}, b.{f} AS base_{f}" for f in FIGURES)}
                FROM j JOIN b ON {on} WHERE {worst} > 0 LIMIT 3"""
        ).fetchall()
        checks[name] = {
            "compared": "every default materialized summary"
            if len(keys) > 1
            else "unfiltered summaries (request_key '')",
            "job_rows": job_count,
            "baseline_rows": base_count,
            "equal": exact,
            "last_digit_off": last_digit,
            "different": wrong,
            "missing_in_baseline": missing,
            "extra_in_baseline": extra,
            "ok": wrong == 0 and missing == 0 and extra == 0,
            **({"examples": [[str(v) for v in e] for e in examples]} if examples else {}),
        }
        status = "ok" if checks[name]["ok"] else "MISMATCH"
        log(
            f"{ds.name}: check {name}: {status}: {exact}/{job_count} rows equal, "
            f"{last_digit} last digit off, {wrong} different, {missing} missing, {extra} extra"
        )
    con.close()
    return checks


# --- main ----------------------------------------------------------------------------------


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
    parser.add_argument("--only", help="comma-separated contender names (default: all)")
    parser.add_argument("--quick", action="store_true", help="100k smoke run: small, 1 round")
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data", help="datasets (reused)")
    parser.add_argument("--requests", type=int, default=1000, help="query requests per round")
    parser.add_argument("--threads", type=int, help="DuckDB/Polars threads (default: theirs)")
    parser.add_argument("--memory-limit", help="DuckDB memory limit for the job and baselines")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per subprocess")
    parser.add_argument(
        "--out", type=Path, help="results file (default bench/results/<date>-<sizes>.json)"
    )
    args = parser.parse_args(argv)
    args.sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    if not CLI.exists():
        raise SystemExit(f"bench: {CLI} not found; run `make bench` (it installs the venv)")
    specs = parse_datasets(args.sizes)
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
