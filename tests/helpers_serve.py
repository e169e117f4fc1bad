"""Helpers for the `serve` tests: a real server in a subprocess, on 127.0.0.1 and a port
the kernel picks (named by its `listening` log line), and a store to serve.

Every request goes to 127.0.0.1 only; loops are bounded in count and time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from helpers_summary import run_snapshot, session_record, write_exports

from scenario_analytics.serve.query import Answer, SnapshotQuery

CLI = Path(sys.executable).with_name("scenario-analytics")
OLDER = date(2026, 11, 25)
LATEST = date(2026, 11, 26)
NEXT = date(2026, 11, 27)
STATUS = {0: 200, 2: 400, 3: 404}


class Server:
    """A running `scenario-analytics serve`, its stderr lines kept as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.port = 0
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if '"listening"' in line:
                self.port = int(json.loads(line)["port"])
                self._listening.set()
        self._listening.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the port is known and /healthz answers."""
        deadline = time.monotonic() + timeout
        if not self._listening.wait(timeout) or not self.port:
            raise AssertionError("the server did not start:\n" + "".join(self.lines))
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("the server did not answer /healthz:\n" + "".join(self.lines))

    def records(self) -> list[dict[str, Any]]:
        """The JSON lines written so far (every line must be JSON)."""
        return [json.loads(line) for line in list(self.lines)]

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (once), then the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> int:
        """The exit code, once the process and its last lines are in."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


@contextmanager
def serving(
    store: Path, *args: str, env: Mapping[str, str] | None = None, ready: bool = True
) -> Iterator[Server]:
    """`serve --snapshots STORE --port 0 ARGS...`, stopped (SIGTERM) at the end."""
    process = subprocess.Popen(
        [str(CLI), "serve", "--snapshots", str(store), "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    server = Server(process)
    try:
        if ready:
            server.wait_ready()
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def create_key(keys_file: Path, name: str) -> str:
    result = subprocess.run(
        [str(CLI), "keys", "create", "--keys-file", str(keys_file), "--name", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def summary_path(scenario: str) -> str:
    return f"/rest/v1/scenarios/{quote(scenario, safe='')}/analytics/summary"


def participants_path(scenario: str) -> str:
    return f"/rest/v1/scenarios/{quote(scenario, safe='')}/analytics/participants"


def with_query(path: str, params: Mapping[str, str] | Sequence[tuple[str, str]]) -> str:
    return path + ("?" + urlencode(params, safe=",:") if params else "")


def expected(
    store: Path,
    endpoint: str,
    scenario: str,
    params: Mapping[str, object],
    as_of: date | None = None,
) -> Answer:
    """What `query` answers (the library under it, `SnapshotQuery`)."""
    reader = SnapshotQuery(store, as_of)
    try:
        if endpoint == "participants":
            return reader.participants(scenario, params)
        return reader.answer(scenario, params)
    finally:
        reader.close()


# -- the served store ------------------------------------------------------------------------

# Scenario ids that a URL must carry percent-encoded, a slug two scenarios share.
ODD_ID = "odd/id é?#%"
SCENARIOS = [
    {"id": "sc1", "slug": "procurement-discovery", "name": "Procurement Discovery"},
    {"id": "sc2", "slug": "negotiation", "name": "Negotiation"},
    {"id": "b-2", "slug": "shared", "name": "B"},
    {"id": "a-10", "slug": "shared", "name": "A"},
    {"id": ODD_ID, "slug": "odd", "name": "Odd"},
]


def build_store(root: Path, days: Sequence[date] = (OLDER, LATEST)) -> Path:
    """Exports with groups, members, system users, a session on each day, published
    for each of `days`; returns the store."""
    users = [
        ("u1", "alice@acme.com", "Alice", "Adams"),
        ("u2", "Bob@Acme.com", "Bob", None),
        ("u3", "carol@exec.com", None, None),  # a system user
        ("u4", "dora@acme.com", "Dora", "Diaz"),
        ("u5", None, None, None),
    ]
    sessions = []
    number = 0
    for s_index, scenario in enumerate(SCENARIOS):
        for u_index, (user, email, first, last) in enumerate(users):
            for attempt in range(1 + (u_index + s_index) % 3):
                number += 1
                day = 20 + (number % 7)  # 2026-11-20 .. 2026-11-26
                score = 35 + (number * 17) % 65
                sessions.append(
                    session_record(
                        f"s{number}",
                        user,
                        str(score),
                        f"2026-11-{day:02d}T{8 + attempt:02d}:30:00Z",
                        scenario=scenario["id"],
                        duration=60 + number * 7 if number % 5 else None,
                        email=email,
                        first_name=first,
                        last_name=last,
                    )
                )
    exports = write_exports(
        root / "exports",
        sessions,
        scenarios=SCENARIOS,
        members=[{"id": "u1", "email": "alice@acme.com", "role": "member"}],
        groups=[{"id": "g1", "name": "One"}, {"id": "g2", "name": "Two"}],
        memberships=[("g1", "u1"), ("g1", "u2"), ("g2", "u3"), ("g2", "u4")],
    )
    store = root / "snapshots"
    for day in days:
        run_snapshot(exports, store, day)
    return store


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
