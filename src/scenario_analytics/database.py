"""Opening DuckDB the same way everywhere, and quoting what cannot be bound."""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

# Bounded by default so a nightly run cannot take the machine: DuckDB spills past it.
# 1.6 GB for DuckDB leaves room for Python and pyarrow within 2 GiB of resident memory
# (a 10M-session run peaks at ~1.8 GiB; at 2 GB it peaked at 2.15 GiB, no faster).
DEFAULT_MEMORY_LIMIT = "1.6GB"


@dataclass(frozen=True)
class EngineSettings:
    """DuckDB resources; None means DEFAULT_MEMORY_LIMIT, all cores, a private spill folder."""

    memory_limit: str | None = None
    threads: int | None = None
    temp_directory: Path | None = None


def connect(
    settings: EngineSettings | None = None, database: str = ":memory:"
) -> duckdb.DuckDBPyConnection:
    settings = settings or EngineSettings()
    con = duckdb.connect(database)
    # Every timestamp in this job is UTC; a session time zone would leak into casts.
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    # stdout is data: DuckDB's own progress bar must never reach it.
    con.execute("SET enable_progress_bar = false")
    con.execute("SET memory_limit = ?", [settings.memory_limit or DEFAULT_MEMORY_LIMIT])
    if settings.threads:
        con.execute("SET threads = ?", [settings.threads])
    # DuckDB's default spill folder is `.tmp` in the working directory; use a private one
    # under the system's temporary folder instead (DuckDB removes it on close).
    spill = settings.temp_directory or Path(tempfile.gettempdir()) / (
        f"scenario-analytics-spill-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    )
    con.execute("SET temp_directory = ?", [str(spill)])
    return con


def quote_ident(name: str) -> str:
    """Quote an identifier (a column name read from a file header) for SQL text."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string for the few places DuckDB cannot bind a parameter (COPY ... TO 'path')."""
    return "'" + value.replace("'", "''") + "'"
