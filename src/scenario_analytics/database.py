"""Opening DuckDB the same way everywhere, and quoting what cannot be bound."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class EngineSettings:
    """DuckDB resources; None leaves DuckDB's own default."""

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
    if settings.memory_limit:
        con.execute("SET memory_limit = ?", [settings.memory_limit])
    if settings.threads:
        con.execute("SET threads = ?", [settings.threads])
    if settings.temp_directory:
        con.execute("SET temp_directory = ?", [str(settings.temp_directory)])
    return con


def quote_ident(name: str) -> str:
    """Quote an identifier (a column name read from a file header) for SQL text."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string for the few places DuckDB cannot bind a parameter (COPY ... TO 'path')."""
    return "'" + value.replace("'", "''") + "'"
