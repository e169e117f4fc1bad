"""The hostile-input and fault probe of `serve` (issue #24), rerun: each case against a
real server on 127.0.0.1 with a keys file and `ulimit -n 1024`, counted.

    .venv/bin/python bench/serve_probe.py [--sessions 200000] [--out FILE.json]

Makes exports (`generate --sessions N --seed 3`) and a store of two dates, then:

1. **damaged session file**: 2 kB overwritten inside a day file only the newest snapshot
   has (`dd conv=notrunc` alike), the server (re)started: answers from that snapshot
   (200 with its date) to computed and precomputed summaries, 5xx other than 503, and
   whether an older date still answers by `as_of`.
2. **huge header and half-open connections**: a 64 MB header being sent and 1,100
   connections that sent half a request line, while a keep-alive client that connected
   before asks `/healthz` and a summary: their slowest answer, and answers other than 200.
3. **latest.json deleted under load**: requests while it is missing: answers other than
   200.
4. **malformed requests** (a request line over 64 KB, NUL and non-ASCII bytes in the
   path, an unknown method, not HTTP): answers that are not a JSON error body.
5. **`as_of` cycling**: two clients cycling four past dates while a third asks one more
   past date for 10 s: the third's answers and median latency.

Prints a table and writes the counts (`--out`); exit 1 if a case fails its bar (0
answers from a damaged file, 0 500s, 0 non-JSON answers, `/healthz` under 50 ms, no
outage from a missing latest.json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("scenario-analytics"))
DAYS = ["2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"]


def cli(*args: str) -> None:
    subprocess.run([CLI, *args], check=True, capture_output=True, text=True)


class Server:
    def __init__(self, store: Path, keys: Path) -> None:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

        self.process = subprocess.Popen(
            [CLI, "serve", "--snapshots", str(store), "--keys-file", str(keys), "--port", "0"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, preexec_fn=limit,
        )  # fmt: skip
        self.port = 0
        self.lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.lines.append(line)
                if '"listening"' in line:
                    self.port = int(json.loads(line)["port"])
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            raise SystemExit("serve did not start:\n" + "".join(self.lines))
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(self.url + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        if self.process.poll() is not None:
            raise SystemExit("serve stopped:\n" + "".join(self.lines))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    return received


def is_json_error(answer: bytes) -> bool:
    if not answer:
        return True  # closed (or reset) without an answer: nothing outside the contract
    _head, _, body = answer.partition(b"\r\n\r\n")
    try:
        return "error" in json.loads(body)
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="serve-probe-"))
    exports, store, keys = work / "exports", work / "store", work / "keys.json"
    cli(
        "generate",
        "--out",
        str(exports),
        "--sessions",
        str(args.sessions),
        "--seed",
        "3",
        "--end-date",
        "2026-11-26",
    )
    for day in DAYS:
        cli("run", "--exports", str(exports), "--snapshots", str(store), "--as-of", day,
            "--skip-check", "stale_exports")  # fmt: skip
    key = subprocess.run(
        [CLI, "keys", "create", "--keys-file", str(keys), "--name", "probe"],
        check=True, capture_output=True, text=True,
    ).stdout.strip().split()[-1]  # fmt: skip
    auth = {"Authorization": f"Bearer {key}"}
    scenarios = store / f"snapshot_date={DAYS[-1]}" / "scenarios.parquet"
    ((sid,),) = duckdb.sql(f"SELECT min(scenario_id) FROM '{scenarios}'").fetchall()
    path = f"/rest/v1/scenarios/{quote(str(sid), safe='')}/analytics/summary"
    cases: dict[str, dict[str, Any]] = {}

    # 1. a damaged session file of the newest snapshot
    newest = DAYS[-1]
    manifest = json.loads((store / f"snapshot_date={newest}" / "manifest.json").read_text())
    files = next(o["files"] for o in manifest["outputs"] if "sessions" in o["path"])
    rel = f"sessions/created_date={newest}/part-0.parquet"
    target = store / ".objects" / "sessions" / f"created_date={newest}" / f"{files[rel]}.parquet"
    original = target.read_bytes()
    with target.open("r+b") as handle:
        handle.seek(target.stat().st_size // 3)
        handle.write(os.urandom(2048))
    server = Server(store, keys)
    try:
        answers: list[tuple[int, str]] = []
        for params in ({}, {"start_date": "2026-11-20"}) * 5:
            response = httpx.get(server.url + path, params=params, headers=auth)
            answers.append((response.status_code, response.headers.get("x-snapshot-date", "")))
        older = httpx.get(server.url + path, params={"as_of": DAYS[-2]}, headers=auth)
        cases["damaged_file"] = {
            "answers_from_damaged": sum(1 for s, d in answers if s == 200 and d == newest),
            "statuses": sorted({s for s, _ in answers}),
            "5xx_not_503": sum(1 for s, _ in answers if s >= 500 and s != 503),
            "older_date_status": older.status_code,
            "readyz": httpx.get(server.url + "/readyz").json(),
        }
    finally:
        server.stop()
    target.write_bytes(original)  # repaired, for the other cases

    server = Server(store, keys)
    try:
        # 2. a 64 MB header and 1,100 half-open connections, with a client connected before
        with httpx.Client(headers=auth) as client:
            client.get(server.url + "/healthz")
            huge = threading.Thread(
                target=raw,
                args=(
                    server.port,
                    b"GET /healthz HTTP/1.1\r\nX: " + b"a" * (64 * 2**20) + b"\r\n\r\n",
                ),
            )
            huge.start()
            held = []
            for _ in range(1100):
                try:
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
                    sock.sendall(b"GET /healthz HTT")
                    held.append(sock)
                except OSError:
                    break
            times, bad = [], 0
            for n in range(100):
                started = time.perf_counter()
                response = client.get(server.url + ("/healthz" if n % 2 else path))
                times.append(time.perf_counter() - started)
                bad += response.status_code != 200
            huge.join()
            for sock in held:
                sock.close()
            cases["header_and_connections"] = {
                "half_open_opened": len(held),
                "healthz_and_summary_slowest_ms": round(max(times) * 1000, 1),
                "median_ms": round(statistics.median(times) * 1000, 2),
                "not_200": bad,
            }
            # 3. latest.json deleted under load
            latest = store / "latest.json"
            saved = latest.read_bytes()
            latest.unlink()
            statuses = []
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                statuses.append(client.get(server.url + path).status_code)
            readyz = client.get(server.url + "/readyz").json()
            latest.write_bytes(saved)
            cases["latest_json_missing"] = {
                "requests": len(statuses),
                "not_200": sum(s != 200 for s in statuses),
                "readyz_while_missing": readyz,
            }
        # 4. malformed requests
        malformed = {
            "request line over 64 KB": b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "NUL in path": b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
            "non-ASCII in path": b"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
            "unknown method": b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            "not HTTP": b"hello\r\n\r\n",
        }
        cases["malformed"] = {
            name: is_json_error(raw(server.port, data)) for name, data in malformed.items()
        }
        # 5. as_of cycling by two clients while a third asks one date
        stop = threading.Event()

        def cycle() -> None:
            with httpx.Client(headers=auth) as c:
                while not stop.is_set():
                    for day in DAYS[:4]:
                        c.get(server.url + path, params={"as_of": day})

        cyclers = [threading.Thread(target=cycle) for _ in range(2)]
        for t in cyclers:
            t.start()
        latencies, codes = [], []
        with httpx.Client(headers=auth) as c:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                started = time.perf_counter()
                codes.append(c.get(server.url + path, params={"as_of": DAYS[-2]}).status_code)
                latencies.append(time.perf_counter() - started)
        stop.set()
        for t in cyclers:
            t.join()
        cases["as_of_cycling"] = {
            "answers_in_10s": len(codes),
            "median_ms": round(statistics.median(latencies) * 1000, 2),
            "not_200": sum(c != 200 for c in codes),
        }
        errors = [line for line in server.lines if '"internal_error"' in line]
        cases["internal_errors_logged"] = len(errors)
    finally:
        server.stop()
    failed = [
        cases["damaged_file"]["answers_from_damaged"] != 0,
        cases["damaged_file"]["5xx_not_503"] != 0,
        cases["header_and_connections"]["healthz_and_summary_slowest_ms"] > 50,
        cases["header_and_connections"]["not_200"] != 0,
        cases["latest_json_missing"]["not_200"] != 0,
        not all(cases["malformed"].values()),
        cases["internal_errors_logged"] != 0,
    ]
    document = {
        "kind": "serve_probe",
        "command": " ".join([".venv/bin/python", "bench/serve_probe.py", *sys.argv[1:]]),
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sessions": args.sessions,
        "cases": cases,
        "ok": not any(failed),
    }
    text = json.dumps(document, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if document["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
