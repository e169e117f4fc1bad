"""Throughput and latency of `scenario-analytics serve` on a snapshot store, at several
client counts (part of `make bench`, which runs it on each Parquet dataset's reference
snapshot; docs/API.md quotes a run at 10M sessions).

Starts the server on 127.0.0.1 (any free port, a fresh API key sent on every request,
as in production; only 127.0.0.1 is ever asked), waits until its workers hold all
sessions, warms it up, then runs one phase per (kind, clients), one after another:

- `summary_precomputed`: the snapshot's materialized request keys (scenario by id),
  answered from the precomputed bodies on the event loop;
- `summary_computed`: a random `start_date` (a random minute of the last 90 days, never
  midnight: no materialized window) per request, computed with SQL on a worker;
- `participants_precomputed`: the unfiltered participants (from participants.parquet),
  a random sorting, page size and page within the scenario's participants;
- `participants_computed`: the same with a random `start_date` (pages 1-3).

Each client is one keep-alive connection sending its next request when the last one is
answered; a phase stops after --requests requests or --seconds seconds, whichever comes
first. The server's /metrics tell which answers were precomputed: a summary phase that
got answers of the other source fails the run. `--mixed` adds, per client count, the
precomputed clients while one more client asks computed summaries (both for the whole
--seconds, the requests over and over).

The client shares the machine's cores with the server (a small raw HTTP/1.1 client on
uvloop keeps its cost low); each phase records the cores used by the server, by this
client and by every other process (someone else's tests, say) from /proc, and the load
average is recorded at start and end.

Prints one JSON document (also --out FILE): per phase the kind, clients, requests,
seconds, requests/s, p50/p99/max in milliseconds, statuses and answers by source. Any
answer other than 200, a phase without answers, an error logged by the server or a
server that does not exit cleanly fails the run: the document is printed, then the
problems on stderr, exit 1.

    .venv/bin/python bench/serve_load.py --snapshots STORE              # 1, 4, 16 clients
    .venv/bin/python bench/serve_load.py --snapshots STORE --clients 4 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow.compute as pc
import pyarrow.parquet as pq

from scenario_analytics.filters import SORTINGS

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # the only address this script sends requests to
KINDS = (
    "summary_precomputed",
    "summary_computed",
    "participants_precomputed",
    "participants_computed",
)
PAGE_SIZES = (10, 20, 50, 100)
SUMMARY = "/rest/v1/scenarios/{}/analytics/summary"
PARTICIPANTS = "/rest/v1/scenarios/{}/analytics/participants"
_ANSWERS = re.compile(
    r'^scenario_analytics_answers_total\{endpoint="(\w+)",source="(\w+)"\} ([0-9.e+]+)$',
    re.MULTILINE,
)


def cli_path() -> Path:
    beside = Path(sys.executable).with_name("scenario-analytics")
    return beside if beside.exists() else ROOT / ".venv" / "bin" / "scenario-analytics"


def percentile(ordered: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least `share` of the values at or below."""
    return ordered[max(1, math.ceil(share * len(ordered))) - 1] if ordered else float("nan")


# --- requests ------------------------------------------------------------------------------


class Snapshot:
    """What the requests are drawn from: the served snapshot's materialized keys and
    each scenario's number of (unfiltered) participants."""

    def __init__(self, store: Path) -> None:
        latest = json.loads((store / "latest.json").read_text(encoding="utf-8"))
        self.folder = (store / latest["path"]).resolve()
        self.date = date.fromisoformat(latest["snapshot_date"])
        manifest = json.loads((self.folder / "manifest.json").read_text(encoding="utf-8"))
        self.counts = manifest.get("counts") or {}
        table = pq.read_table(
            self.folder / "summaries.parquet", columns=["scenario_id", "request_key"]
        )
        self.keys = list(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
        self.scenarios = sorted({s for s, _k in self.keys})
        counted = pq.read_table(self.folder / "participants.parquet", columns=["scenario_id"])
        counts = pc.value_counts(counted.column(0)).to_pylist()
        self.participants = {str(c["values"]): int(c["counts"]) for c in counts}
        self.with_participants = sorted(self.participants)
        if not self.keys or not self.with_participants:
            raise SystemExit(f"serve_load: {self.folder} has no summaries or no participants")

    def describe(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "version": self.folder.name,
            "sessions": self.counts.get("sessions_in_snapshot"),
            "scenarios": len(self.scenarios),
            "users": self.counts.get("users"),
            "precomputed_bodies": len(self.keys),
            "participant_rows": sum(self.participants.values()),
        }

    def start_date(self, rng: random.Random) -> str:
        """A minute of the 90 days before the snapshot date, never midnight (the
        materialized windows start at midnight): a request no precomputed body answers."""
        minute = rng.randrange(1, 90 * 24 * 60)
        if minute % (24 * 60) == 0:
            minute += 1
        moment = datetime.combine(self.date, datetime.min.time(), UTC)
        moment -= timedelta(minutes=minute)
        return moment.strftime("%Y-%m-%dT%H:%M:00Z")

    def paths(self, kind: str, count: int, rng: random.Random) -> list[str]:
        out = []
        for _ in range(count):
            if kind == "summary_precomputed":
                scenario, key = rng.choice(self.keys)
                out.append(SUMMARY.format(quote(scenario, safe="")) + (f"?{key}" if key else ""))
            elif kind == "summary_computed":
                scenario = rng.choice(self.scenarios)
                query = f"start_date={self.start_date(rng)}"
                out.append(SUMMARY.format(quote(scenario, safe="")) + "?" + query)
            else:
                scenario = rng.choice(self.with_participants)
                size = rng.choice(PAGE_SIZES)
                query = f"sorting={rng.choice(SORTINGS)}&page_size={size}"
                if kind == "participants_precomputed":
                    pages = max(1, math.ceil(self.participants[scenario] / size))
                    query += f"&page={rng.randint(1, pages)}"
                else:
                    query += f"&page={rng.randint(1, 3)}&start_date={self.start_date(rng)}"
                out.append(PARTICIPANTS.format(quote(scenario, safe="")) + "?" + query)
        return out


# --- the client ----------------------------------------------------------------------------


async def client(
    port: int,
    paths: list[str],
    headers: str,
    latencies: list[float],
    statuses: dict[str, int],
    stop: float,
    repeat: bool = False,
) -> None:
    """One keep-alive connection: each request sent once the previous one is answered."""
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError as exc:
        name = f"connect: {type(exc).__name__}"
        statuses[name] = statuses.get(name, 0) + 1
        return
    try:
        for path in itertools.cycle(paths) if repeat else paths:
            if time.perf_counter() > stop:
                break
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\n{headers}\r\n".encode())
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                status = head.split(b" ", 2)[1].decode()
                match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if match:
                    await reader.readexactly(int(match.group(1)))
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                name = f"connection: {type(exc).__name__}"
                statuses[name] = statuses.get(name, 0) + 1
                return
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def load(
    port: int, headers: str, paths: list[str], clients: int, seconds: float, repeat: bool = False
) -> dict:
    """`clients` connections share `paths`, until each has sent its share (or, with
    `repeat`, its share over and over) or `seconds` are over."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    shares = [paths[i::clients] for i in range(clients)]
    started = time.perf_counter()
    stop = started + seconds
    try:
        # A bound on a hung server too: the time of the phase plus two minutes.
        await asyncio.wait_for(
            asyncio.gather(
                *(
                    client(port, share, headers, latencies, statuses, stop, repeat)
                    for share in shares
                )
            ),
            seconds + 120,
        )
    except TimeoutError:
        statuses["timeout"] = statuses.get("timeout", 0) + 1
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(ordered) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(ordered, 0.5), 2) if ordered else None,
        "p99_ms": round(percentile(ordered, 0.99), 2) if ordered else None,
        "max_ms": round(ordered[-1], 2) if ordered else None,
        "statuses": dict(sorted(statuses.items())),
    }


async def answers(port: int) -> dict[str, float]:
    """The server's successful answers so far, by endpoint/source (from /metrics)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET /metrics HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    text = (await reader.read()).decode("utf-8", "replace")
    writer.close()
    return {f"{e}/{s}": float(n) for e, s, n in _ANSWERS.findall(text)}


# --- CPU time, to tell a busy machine ------------------------------------------------------


def cpu_seconds(pid: int) -> tuple[float, float, float]:
    """(machine busy, the server's, this process's) CPU seconds so far."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        rest = stat[stat.rfind(")") + 2 :].split()
        server = (int(rest[11]) + int(rest[12])) / tick  # utime, stime
    except (OSError, IndexError, ValueError):
        server = 0.0
    mine = os.times()
    return busy / tick, server, mine.user + mine.system


def cores(before: tuple[float, ...], after: tuple[float, ...], seconds: float) -> dict:
    busy, server, mine = (a - b for a, b in zip(after, before, strict=True))
    per = max(seconds, 1e-9)
    return {
        "server": round(server / per, 2),
        "client": round(mine / per, 2),
        "other": round(max(0.0, busy - server - mine) / per, 2),
    }


# --- the server ----------------------------------------------------------------------------


class Server:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        cli = cli_path()
        keys = work / "keys.json"
        created = subprocess.run(
            [str(cli), "keys", "create", "--keys-file", str(keys), "--name", "bench"],
            capture_output=True,
            text=True,
            check=True,
        )
        self.headers = f"Host: {HOST}\r\nAuthorization: Bearer {created.stdout.strip()}\r\n"
        self.log = args.server_log or work / "server.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [str(cli), "serve", "--snapshots", str(args.snapshots), "--host", HOST]
        command += ["--port", "0", "--workers", str(args.workers), "--keys-file", str(keys)]
        if args.job:
            command += ["--job", str(args.job)]
        self.started = time.perf_counter()
        with self.log.open("wb") as err:
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.port = 0
        self.listening_seconds = 0.0
        self.ready_seconds = 0.0

    def wait_ready(self, timeout: float) -> None:
        """Until the server listens and its workers hold all sessions in memory."""
        deadline = time.perf_counter() + timeout
        with self.log.open("rb") as handle:
            pending = b""
            while True:
                chunk = handle.readline()
                if not chunk:
                    if self.process.poll() is not None:
                        raise SystemExit(
                            f"serve_load: the server exited ({self.process.returncode}) "
                            f"before it was ready; see {self.log}"
                        )
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"serve_load: not ready after {timeout:g} s; {self.log}")
                    time.sleep(0.05)
                    continue
                pending += chunk
                if not pending.endswith(b"\n"):
                    continue
                line, pending = pending, b""
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == "listening":
                    self.port = int(record["port"])
                    self.listening_seconds = time.perf_counter() - self.started
                if "hold all sessions" in str(record.get("message", "")):
                    self.ready_seconds = time.perf_counter() - self.started
                    if self.port:
                        return

    def peak_rss_mib(self) -> int | None:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        except OSError:
            return None
        found = [line for line in status.splitlines() if line.startswith("VmHWM")]
        return round(int(found[0].split()[1]) / 1024) if found else None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def errors(self) -> list[str]:
        """The messages the server logged at level error or above."""
        found = []
        with self.log.open("rb") as handle:
            for line in handle:
                if b'"level": "error"' not in line and b'"level": "critical"' not in line:
                    continue
                try:
                    found.append(str(json.loads(line).get("message", "")))
                except ValueError:
                    found.append(line.decode("utf-8", "replace").strip())
        return found


# --- the run -------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, server: Server, snap: Snapshot) -> dict:
    rng = random.Random(args.seed)
    port, headers = server.port, server.headers
    warm = [p for kind in KINDS for p in snap.paths(kind, 50, rng)] + snap.paths(
        "summary_precomputed", 450, rng
    )
    rng.shuffle(warm)
    result: dict[str, Any] = {"warm_up": await load(port, headers, warm, 2, args.warm_up_seconds)}
    phases = []
    plan = [(kind, c) for kind in args.kinds for c in args.clients]
    for kind, clients in plan:
        paths = snap.paths(kind, args.requests, rng)
        before_answers = await answers(port)
        before_cpu = cpu_seconds(server.process.pid)
        found = await load(port, headers, paths, clients, args.seconds)
        after_cpu = cpu_seconds(server.process.pid)
        after = await answers(port)
        delta = {k: int(after[k] - before_answers.get(k, 0)) for k in after}
        phase = {"kind": kind, "clients": clients, **found}
        phase["answers"] = {k: v for k, v in sorted(delta.items()) if v}
        phase["cpu_cores"] = cores(before_cpu, after_cpu, found["seconds"])
        phases.append(phase)
        log(
            f"{kind}, {clients} client(s): {found['requests_per_second']:,.0f}/s, "
            f"p50 {found['p50_ms']} ms, p99 {found['p99_ms']} ms, statuses {found['statuses']}"
        )
    if args.mixed:
        # Both for the whole --seconds (the precomputed requests over and over).
        for clients in args.clients:
            before_cpu = cpu_seconds(server.process.pid)
            started = time.perf_counter()
            fast, slow = await asyncio.gather(
                load(
                    port,
                    headers,
                    snap.paths("summary_precomputed", args.requests, rng),
                    clients,
                    args.seconds,
                    repeat=True,
                ),
                load(
                    port,
                    headers,
                    snap.paths("summary_computed", args.requests, rng),
                    1,
                    args.seconds,
                    repeat=True,
                ),
            )
            used = cores(before_cpu, cpu_seconds(server.process.pid), time.perf_counter() - started)
            for kind, n, found in (
                ("mixed_summary_precomputed", clients, fast),
                ("mixed_summary_computed", 1, slow),
            ):
                phases.append(
                    {
                        "kind": kind,
                        "clients": n,
                        "with_clients": clients,
                        **found,
                        "cpu_cores": used,
                    }
                )
    result["phases"] = phases
    return result


def log(message: str) -> None:
    print(f"serve_load: {message}", file=sys.stderr, flush=True)


def problems_of(document: dict[str, Any]) -> list[str]:
    found = []
    for phase in [{"kind": "warm_up", "clients": 2, **document["warm_up"]}] + document["phases"]:
        name = f"{phase['kind']} at {phase['clients']} client(s)"
        other = {s: n for s, n in phase["statuses"].items() if s != "200"}
        if other:
            found.append(f"{name}: answers other than 200: {other}")
        if not phase["requests"]:
            found.append(f"{name}: no answer at all")
        expected = {"summary_precomputed": "precomputed", "summary_computed": "computed"}.get(
            phase["kind"]
        )
        got = phase.get("answers", {})
        if expected and got.get(f"summary/{expected}", 0) != phase["statuses"].get("200", 0):
            found.append(f"{name}: the server's answers by source were {got}, not all {expected}")
    server = document["server"]
    if server.get("exit_code") != 0:
        found.append(f"the server exited with {server.get('exit_code')} (expected 0 on SIGTERM)")
    if server.get("errors_logged"):
        found.append(f"the server logged {server['errors_logged']} error(s): {server['errors']}")
    return found


def run_loop(coroutine: Coroutine[Any, Any, dict]) -> tuple[dict, str]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine), "asyncio"
    return uvloop.run(coroutine), "uvloop"


def machine() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_model": model}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=Path, required=True, help="the store to serve")
    parser.add_argument(
        "--clients", default="1,4,16", help="concurrent clients, comma-separated (1,4,16)"
    )
    parser.add_argument("--kinds", default=",".join(KINDS), help="phases' kinds (all four)")
    parser.add_argument("--requests", type=int, default=20_000, help="at most, per phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most, per phase")
    parser.add_argument("--warm-up-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="serve --workers")
    parser.add_argument("--job", type=Path, help="serve --job (its [engine] settings)")
    parser.add_argument("--mixed", action="store_true", help="also precomputed + computed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server-log", type=Path, help="the server's stderr (default: temp)")
    parser.add_argument("--start-timeout", type=float, default=600.0, help="seconds to ready")
    parser.add_argument("--note", default="", help="kept in the document (e.g. what else ran)")
    parser.add_argument("--out", type=Path, help="also write the document to this file")
    args = parser.parse_args(argv)
    try:
        args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        parser.error("--clients: comma-separated integers")
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not args.clients or min(args.clients) < 1:
        parser.error("--clients: at least one client count, each at least 1")
    if set(args.kinds) - set(KINDS) or not args.kinds:
        parser.error(f"--kinds: some of {', '.join(KINDS)}")
    if args.requests < 1 or args.seconds <= 0:
        parser.error("--requests and --seconds must be positive")

    snap = Snapshot(args.snapshots)
    document: dict[str, Any] = {
        "tool": "bench/serve_load.py",
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": shlex.join([".venv/bin/python", "bench/serve_load.py", *(argv or sys.argv[1:])]),
        "store": str(args.snapshots),
        "snapshot": snap.describe(),
        "settings": {
            "clients": args.clients,
            "kinds": args.kinds,
            "requests": args.requests,
            "seconds": args.seconds,
            "warm_up_seconds": args.warm_up_seconds,
            "workers": args.workers,
            "job": str(args.job) if args.job else None,
            "seed": args.seed,
        },
        "machine": {**machine(), "load_average_start": list(os.getloadavg())},
        "note": args.note,
    }
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    server = Server(args, work)
    try:
        server.wait_ready(args.start_timeout)
        log(
            f"listening on {HOST}:{server.port} after {server.listening_seconds:.1f} s, "
            f"sessions held after {server.ready_seconds:.1f} s"
        )
        measured, loop = run_loop(measure(args, server, snap))
        peak = server.peak_rss_mib()
    finally:
        exit_code = server.stop()
        errors = server.errors()
    document["settings"]["client_loop"] = loop
    document["machine"]["load_average_end"] = list(os.getloadavg())
    document["server"] = {
        "listening_seconds": round(server.listening_seconds, 2),
        "ready_seconds": round(server.ready_seconds, 2),
        "peak_rss_mib": peak,
        "exit_code": exit_code,
        "errors_logged": len(errors),
        "errors": errors[:5],
        "log": str(server.log) if args.server_log else None,
    }
    document.update(measured)
    document["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    problems = problems_of(document)
    document["ok"] = not problems
    document["problems"] = problems
    text = json.dumps(document, indent=2) + "\n"
    sys.stdout.write(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    if problems:
        for problem in problems:
            log(f"FAILED: {problem}")
        log(f"the server's log: {server.log}")
        (work / "keys.json").unlink(missing_ok=True)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
