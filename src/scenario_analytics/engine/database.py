"""Opening DuckDB the same way everywhere, and quoting what cannot be bound."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from scenario_analytics import interrupts
from scenario_analytics.settings import EngineSettings

# Bounded by default so a nightly run cannot take the machine: DuckDB spills past it.
# 1.6 GB for DuckDB leaves room for Python and pyarrow within 2 GiB of resident memory
# (a 10M-session run peaks at ~1.8 GiB; at 2 GB it peaked at 2.15 GiB, no faster).
DEFAULT_MEMORY_LIMIT = "1.6GB"


def connect(
    settings: EngineSettings | None = None, database: str = ":memory:"
) -> duckdb.DuckDBPyConnection:
    settings = settings or EngineSettings()
    con = duckdb.connect(database)
    interrupts.watch(con)  # SIGINT/SIGTERM stop its running query at once
    # Every timestamp in this job is UTC; a session time zone would leak into casts.
    con.execute("SET TimeZone = 'UTC'")
    # Loading and joining need no row order; keeping it costs memory on big inserts.
    # Where the order matters, `insertion_order_kept` turns it back on.
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


@contextmanager
def insertion_order_kept(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Statements run here keep rows in order: DuckDB's `preserve_insertion_order`.

    With it on, DuckDB documents that `CREATE TABLE AS` and `COPY` store rows in the
    order of their query, and that a query over one table with only WHERE and SELECT
    (no join, no GROUP BY) gives the table's rows in the order they were inserted. So
    a table filled from an ORDER BY query can be filtered and written many times, still
    sorted, without sorting again. (`connect` turns the setting off for everything else.)
    """
    ((before,),) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    except BaseException:
        # The statement's own error is the one to report, not a failed reset after it.
        with suppress(duckdb.Error):
            con.execute("SET preserve_insertion_order = ?", [bool(before)])
        raise
    con.execute("SET preserve_insertion_order = ?", [bool(before)])


def quote_ident(name: str) -> str:
    """Quote an identifier (a column name read from a file header) for SQL text."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string for the few places DuckDB cannot bind a parameter (COPY ... TO 'path')."""
    return "'" + value.replace("'", "''") + "'"


# The in-memory catalog `compress_table` moves tables into.
COMPRESSED_CATALOG = "compressed"


def compress_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Keep a big table that later statements only read compressed, in the same row order.

    DuckDB holds the tables of an in-memory database uncompressed; an in-memory catalog
    attached with COMPRESS stores them compressed once it is checkpointed. The table moves
    there and its name becomes a view of it: the 10M graded sessions of a backfill take
    ~0.2 GB instead of ~1 GB, so each day's summaries no longer push them to the spill
    folder under the default memory limit. Moving costs about one read and one write of
    the table (~2 s at 10M rows), so it pays only for tables read many times.
    """
    name = quote_ident(table)
    con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {COMPRESSED_CATALOG} (COMPRESS)")
    with insertion_order_kept(con):
        con.execute(f"CREATE OR REPLACE TABLE {COMPRESSED_CATALOG}.{name} AS FROM {name}")
    con.execute(f"DROP TABLE {name}")
    con.execute(f"CHECKPOINT {COMPRESSED_CATALOG}")
    con.execute(f"CREATE VIEW {name} AS FROM {COMPRESSED_CATALOG}.{name}")
