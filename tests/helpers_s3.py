"""The S3-compatible test servers and the fault proxy (bench/harness/s3server.py, which
the benchmarks use too)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness.s3server import (  # noqa: E402
    ACCESS_KEY,
    SECRET_KEY,
    FaultProxy,
    Rule,
    S3Server,
    env_set,
    free_port,
    read_whole,
    start_moto,
    start_seaweedfs,
)

__all__ = [
    "ACCESS_KEY",
    "SECRET_KEY",
    "FaultProxy",
    "Rule",
    "S3Server",
    "env_set",
    "free_port",
    "read_whole",
    "start_moto",
    "start_seaweedfs",
]
