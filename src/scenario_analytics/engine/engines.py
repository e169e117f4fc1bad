"""Which engine runs the SQL files: DuckDB in this process (the default) or Spark.

The job's DuckDB connection is always there: it reads the exports into the ledger, runs
the per-file SQL, and writes the snapshot. An engine runs the rest of the SQL files;
afterwards the tables the job reads are tables (DuckDB) or views (Spark) of the same
names and types in that connection (`engine/spark/runner.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import duckdb

from scenario_analytics.engine.database import compress_table, quote_ident
from scenario_analytics.engine.sql_files import SqlFile, run_sql_files
from scenario_analytics.settings import EngineSettings

OnStep = Callable[[SqlFile, float | None], None]
T = TypeVar("T")
R = TypeVar("R")


class SqlEngine(Protocol):
    name: str
    log: Path | None  # where the engine writes a log of its own, if it does
    # Whether export files are parsed in the engine's tasks (`run_tasks`, in parallel,
    # each file on its own) rather than one after another in this process.
    stages_in_tasks: bool

    def run_tasks(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`function` of each item, where the engine runs tasks; results in item order."""

    def run(
        self,
        con: duckdb.DuckDBPyConnection,
        files: list[SqlFile],
        params: dict[str, object],
        on_step: OnStep | None = None,
    ) -> None:
        """Run the files; their tables are then readable through `con`."""

    def fetch(self, con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a query (DuckDB's dialect) over the files' tables, computed where
        the tables are: for aggregates over big tables (the staged rows)."""

    def use_ledger(self, parts_by_table: dict[str, list[tuple[str, int]]]) -> None:
        """The staged tables are these Parquet parts of the ledger (path, file_id)."""

    def release(self, con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
        """Free tables no later step reads."""

    def keep_compressed(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        """A big table many later steps read: hold it compressed if that helps."""

    def close(self) -> None:
        """Free what the engine holds for this job."""


class DuckDBEngine:
    """The SQL files on the job's own DuckDB connection."""

    name = "duckdb"
    log: Path | None = None
    stages_in_tasks = False

    def run_tasks(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [function(item) for item in items]

    def run(
        self,
        con: duckdb.DuckDBPyConnection,
        files: list[SqlFile],
        params: dict[str, object],
        on_step: OnStep | None = None,
    ) -> None:
        run_sql_files(con, files, params, on_step=on_step)

    def fetch(self, con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
        return con.execute(sql).fetchall()

    def use_ledger(self, parts_by_table: dict[str, list[tuple[str, int]]]) -> None:
        pass  # the ledger made its views in the connection already

    def release(self, con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
        for table in tables:
            con.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")

    def keep_compressed(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        compress_table(con, table)

    def close(self) -> None:
        pass


DUCKDB = DuckDBEngine()


def check_engine(settings: EngineSettings) -> None:
    """Refuse at once (exit 2, naming what to install) an engine this machine lacks."""
    if settings.name == "spark":
        from scenario_analytics.engine.spark.session import require_spark

        require_spark()


def open_engine(
    settings: EngineSettings,
    files: list[SqlFile],
    work: Callable[[], Path],
    empty_inputs: Callable[[duckdb.DuckDBPyConnection], None],
) -> SqlEngine:
    """The engine `settings.name` names, for the SQL `files`.

    Spark needs a folder both it and this process can read and write (`work()`, made
    only for Spark: a folder in the store) and the job's empty input tables
    (`empty_inputs`), to learn the types DuckDB gives each table.
    """
    if settings.name == "duckdb":
        return DUCKDB
    from scenario_analytics.engine.spark.runner import SparkEngine, duckdb_schemas
    from scenario_analytics.engine.spark.session import log_file, open_session, require_spark

    require_spark()
    schemas = duckdb_schemas(files, empty_inputs)
    engine = SparkEngine(open_session(settings.spark), work(), files, schemas)
    engine.log = log_file() if log_file().exists() else None
    try:
        engine.probe()
    except BaseException:
        engine.close()
        raise
    return engine
