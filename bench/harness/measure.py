"""Measuring one subprocess: wall time around it, its peak memory (maximum RSS) from
os.wait4(); untimed set-up steps; what a finished contender printed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness.util import ROOT, rss_bytes


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


def tool_entry(
    command: list[str], m: Measurement, out: Path, stderr: Path, timeout: float
) -> tuple[dict[str, Any], str | None]:
    """What a results file keeps of a standalone tool's run (serve_load.py,
    store_growth.py): its command (repository paths relative), time, exit code, the JSON
    document it wrote to `out`, and on failure the tail of its stderr; and why it failed
    (None when it did not)."""
    entry: dict[str, Any] = {
        "command": [os.path.relpath(a, ROOT) if a.startswith(str(ROOT)) else a for a in command],
        "seconds": round(m.seconds, 2),
        "exit_code": m.exit_code,
    }
    try:
        entry["result"] = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    if m.exit_code == 0:
        return entry, None
    why = f"timed out after {timeout:g} s" if m.timed_out else f"exit {m.exit_code}"
    entry["error"] = f"{stderr_tail(stderr)}\n{why}".strip()
    return entry, why
