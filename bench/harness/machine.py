"""The machine and the tools: CPU, memory and versions, the git commit, and what the
installed CLI can do."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.harness.util import CLI, ROOT


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
