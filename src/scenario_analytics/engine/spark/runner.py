"""The SQL files run on Spark; what the job's Python reads of their tables, it reads in DuckDB.

`SparkEngine` runs the translated files (`translate.py`) on a Spark session. Every table
a file makes is written by Spark's executors as Parquet into a work folder in the store
(on the filesystem the cluster shares), and read back as a temporary view of that name:
so a table is computed once, later statements do not recompute it, and it no longer
depends on the tables it was made from (which can then be dropped). The tables the rest
of the job reads (the counts, checks, digests and the snapshot's tables: all but
`SPARK_ONLY`) are then read from those files into tables of the job's DuckDB connection,
each column cast to the type the DuckDB engine gives it (`duckdb_schemas`). So the checks,
the manifest and the snapshot writer run unchanged, and a snapshot cannot tell which
engine built it.

Inputs come to Spark the same way in reverse: the staged tables as the ledger's Parquet
parts (`Ledger.parts_by_table`), which Spark reads itself; small tables the job makes
in DuckDB (`export_files`, `filters`) through Arrow. A table of more than
`MAX_DRIVER_ROWS` rows is never sent from the driver: that is an error, not a slow run.
Files that make only views and session variables (`0100`) run on both engines.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from scenario_analytics.engine.database import insertion_order_kept, quote_ident, quote_literal
from scenario_analytics.engine.spark.translate import translate_files, translate_query
from scenario_analytics.engine.sql_files import SqlFile, load_sql_files, run_sql_files
from scenario_analytics.errors import AnalyticsError, first_line
from scenario_analytics.version import __version__

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Tables only later SQL reads: they stay on Spark. Every other table a file makes is
# mirrored into DuckDB (tests/test_spark_engine.py checks the job reads none of these).
SPARK_ONLY = frozenset(
    {
        "sessions",
        "members",
        "scenarios_export",
        "user_directory",
        "scenario_directory",
        "filter_windows",
        "participant_facts",
    }
)
# The most rows a table the driver made may have to be sent to Spark (filters, file lists).
MAX_DRIVER_ROWS = 100_000
_TWO_TO_THE_64 = 2**64
T = TypeVar("T")
R = TypeVar("R")


class SparkEngine:
    """Runs SQL files on Spark for a job whose DuckDB connection holds the rest."""

    name = "spark"
    stages_in_tasks = True
    log: Path | None = None  # the JVM's output, when this process started it

    def __init__(
        self,
        spark: SparkSession,
        work: Path,
        files: list[SqlFile],
        schemas: dict[str, list[tuple[str, str]]],
    ) -> None:
        self.spark = spark
        # Executors resolve a relative path from their own work folders: every path
        # handed to Spark is absolute.
        self.work = work.absolute()
        self.translated = {f.name: f for f in translate_files(files)}
        self.schemas = schemas
        self.on_spark: set[str] = set()  # tables Spark made (never sent back to it)
        self.ledger_parts: dict[str, list[tuple[str, int]]] = {}
        self.tables: dict[str, Path] = {}  # each table Spark made: its folder of Parquet

    # -- the engine's interface (pipeline/staging.py, pipeline/stages.py) --------------
    def run(
        self,
        con: duckdb.DuckDBPyConnection,
        files: list[SqlFile],
        params: dict[str, object],
        on_step: Callable[[SqlFile, float | None], None] | None = None,
    ) -> None:
        for sql_file in files:
            if on_step is not None:
                on_step(sql_file, None)
            started = time.monotonic()
            translated = self.translated[sql_file.name]
            self._send(con, translated.reads)
            for statement in translated.statements:
                args = {name: params[name] for name in statement.parameters}
                try:
                    frame = self.spark.sql(statement.sql, args=args or None)
                    if statement.table is not None:
                        self._make_table(con, statement.table, frame, statement.order_by)
                except AnalyticsError:
                    raise
                except Exception as exc:  # pyspark's errors share no base class we can name
                    raise AnalyticsError(
                        f"{sql_file.name} failed on Spark: {first_line(exc)}"
                    ) from exc
            self.on_spark.update(translated.makes)
            if not sql_file.creates:
                # Views and session variables only: DuckDB defines them too.
                run_sql_files(con, [sql_file], params)
            else:
                for macro in sql_file.macros():
                    con.execute(macro)  # the snapshot writer uses them too (score_rank)
            if on_step is not None:
                on_step(sql_file, time.monotonic() - started)

    def run_tasks(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """One Spark task an item (export files are few and big: one each), in parallel
        on the executors; `function` and the items travel pickled, the results back."""
        if not items:
            return []
        context = self.spark.sparkContext
        context.setJobDescription(f"scenario-analytics: {len(items)} tasks")
        try:
            return context.parallelize(list(items), len(items)).map(function).collect()
        except Exception as exc:  # pyspark's errors share no base class we can name
            raise AnalyticsError(
                f"a task failed on Spark's executors: {task_error(exc)}",
                "the executors' own logs (the Spark UI, or the workers' work folders) "
                "have the whole error",
            ) from exc

    def probe(self) -> None:
        """One tiny task before any work: the executors' Python imports this package and
        says its version and SQL digest, which must be the driver's. A cluster whose
        executors lack the package, or run another version of it, is one clear error
        here, not four failed attempts of every file's task later."""
        context = self.spark.sparkContext
        context.setJobDescription("scenario-analytics: checking the executors' Python")
        python = context.pythonExec
        hint = (
            f"the executors run their Python workers with {python}: install the same "
            f"scenario-analytics ({__version__}) there, or point spark.pyspark.python "
            "([engine.spark.conf] in the job file) or PYSPARK_PYTHON at a Python that has "
            'it (docs/ENGINES.md, "On a cluster")'
        )
        try:
            ((version, digest),) = context.parallelize([0], 1).map(executor_identity).collect()
        except Exception as exc:  # pyspark's errors share no base class we can name
            raise AnalyticsError(
                f"Spark's executors cannot run this package: {task_error(exc)}", hint
            ) from exc
        mine = executor_identity(0)
        if (version, digest) != mine:
            raise AnalyticsError(
                f"Spark's executors run scenario-analytics {version} (SQL {digest[:12]}), "
                f"this driver {mine[0]} (SQL {mine[1][:12]})",
                hint,
            )

    def fetch(self, con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
        """A query's rows, computed on Spark (its tables are there, or sent there)."""
        query, reads = translate_query(sql)
        self._send(con, reads)
        try:
            return [tuple(row) for row in self.spark.sql(query).collect()]
        except Exception as exc:  # pyspark's errors share no base class we can name
            raise AnalyticsError(f"a query failed on Spark: {first_line(exc)}") from exc

    def use_ledger(self, parts_by_table: dict[str, list[tuple[str, int]]]) -> None:
        """The staged tables are these Parquet parts, each with its file's `file_id`."""
        self.ledger_parts = parts_by_table
        self.on_spark.difference_update(parts_by_table)

    def release(self, con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
        """Forget tables no later step reads, on both sides, and their files."""
        for table in tables:
            if table not in self.tables:
                continue
            if table not in SPARK_ONLY:
                con.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")
            self.spark.catalog.dropTempView(table)
            shutil.rmtree(self.tables.pop(table), ignore_errors=True)
            self.on_spark.discard(table)

    def keep_compressed(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        pass  # the table is on Spark; DuckDB reads it from Parquet

    def close(self) -> None:
        """Drop this job's views on Spark (the session stays: it belongs to the process)
        and the work folder."""
        # A run stopped by an error or an interrupt may leave a Spark job running.
        self.spark.sparkContext.cancelAllJobs()
        for table in sorted(self.on_spark):
            self.spark.catalog.dropTempView(table)
        self.on_spark.clear()
        self.tables.clear()
        shutil.rmtree(self.work, ignore_errors=True)

    # -- moving tables ----------------------------------------------------------------
    def _send(self, con: duckdb.DuckDBPyConnection, reads: frozenset[str]) -> None:
        for table in sorted(reads - self.on_spark):
            if table in self.ledger_parts:
                self._register_parts(table, self.ledger_parts[table])
            else:
                self._send_small(con, table)

    def _register_parts(self, table: str, parts: list[tuple[str, int]]) -> None:
        from pyspark.sql import functions as F

        paths = sorted({str(Path(path).absolute()) for path, _ in parts})
        # A part's file name is unique within its table (it starts with the sha256 of
        # the content it holds), and Spark gives it as is (a path comes as a URI).
        ids = self.spark.createDataFrame(
            [(Path(path).name, file_id) for path, file_id in parts],
            "part_name string, file_id int",
        )
        rows = self.spark.read.parquet(*paths).withColumn("part_name", F.col("_metadata.file_name"))
        # A part two paths share gives its rows to both (the ledger's rule).
        frame: DataFrame = rows.join(F.broadcast(ids), "part_name").drop("part_name")
        columns = [name for name, _ in self.schemas[table]]
        frame.select(*columns).createOrReplaceTempView(table)

    def _send_small(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        name = quote_ident(table)
        try:
            ((rows,),) = con.execute(f"SELECT count(*) FROM {name}").fetchall()
        except duckdb.CatalogException as exc:
            raise AnalyticsError(f"Spark needs table {table}, which the job did not make") from exc
        if rows > MAX_DRIVER_ROWS:
            raise AnalyticsError(
                f"table {table} has {rows:,} rows: too many to send from the driver to Spark "
                f"(at most {MAX_DRIVER_ROWS:,})",
                "Spark must read such a table from files (the ledger's parts)",
            )
        arrow = con.sql(f"SELECT * FROM {name}").to_arrow_table()
        self.spark.createDataFrame(arrow).createOrReplaceTempView(table)

    def _make_table(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        frame: DataFrame,
        order_by: str | None,
    ) -> None:
        """The query's rows as Parquet in the work folder, then a view of them on Spark
        and, unless only Spark reads the table, a table in DuckDB (with DuckDB's types,
        sorted as the query sorts them, by DuckDB: so its rows are laid out as a DuckDB
        run lays them out, and the snapshot files written from them are the same bytes)."""
        folder = self.work / f"{table}-{uuid.uuid4().hex[:8]}"
        frame.write.parquet(str(folder))
        self.spark.read.parquet(str(folder)).createOrReplaceTempView(table)
        self.on_spark.add(table)
        if table not in SPARK_ONLY:
            columns = ", ".join(
                f"{_cast(quote_ident(name), kind)} AS {quote_ident(name)}"
                for name, kind in self.schemas[table]
            )
            files = quote_literal(str(folder / "*.parquet"))
            con.execute(f"DROP VIEW IF EXISTS {quote_ident(table)}")
            # A table, not a view of the files: DuckDB then knows which columns hold no
            # NULL, and writes them as required, as it does for its own tables; and the
            # rows keep the order Spark wrote them in (graded_history's sort).
            with insertion_order_kept(con):
                con.execute(
                    f"CREATE OR REPLACE TABLE {quote_ident(table)} AS "
                    f"SELECT {columns} FROM read_parquet({files})"
                    + (f" ORDER BY {order_by}" if order_by else "")
                )
        old = self.tables.get(table)
        self.tables[table] = folder
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _cast(column: str, kind: str) -> str:
    if kind == "UBIGINT":
        # Spark's digests are signed 64-bit hashes; DuckDB's are unsigned: the same bits.
        return (
            f"CAST(CASE WHEN {column} < 0 THEN CAST({column} AS HUGEINT) + {_TWO_TO_THE_64} "
            f"ELSE {column} END AS UBIGINT)"
        )
    return f"CAST({column} AS {kind})"


def duckdb_schemas(
    files: list[SqlFile], empty_inputs: Callable[[duckdb.DuckDBPyConnection], None]
) -> dict[str, list[tuple[str, str]]]:
    """Each table's columns and types as the DuckDB engine makes them: the files run once
    on empty inputs (`empty_inputs` makes them) in a scratch connection."""
    from scenario_analytics.filters import as_of_end

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        empty_inputs(con)
        run_sql_files(con, files, {"as_of_end": as_of_end(date(2000, 1, 1))})
        schemas: dict[str, list[tuple[str, str]]] = {}
        for sql_file in files:
            for table in sql_file.creates:
                described = con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()
                schemas[table] = [(str(row[0]), str(row[1])) for row in described]
        return schemas
    finally:
        con.close()


def executor_identity(_: int) -> tuple[str, str]:
    """This package's version and a digest of its SQL files, where it runs (a probe
    task: imported on the executor by name, so a missing package fails right here)."""
    files = load_sql_files()
    digest = hashlib.sha256("".join(f"{f.name} {f.sha256}\n" for f in files).encode())
    return __version__, digest.hexdigest()


# What a failed task's error says, in the order they are looked for: the last line of a
# Python traceback (`ModuleNotFoundError: No module named ...`), or the JVM's failure to
# start the Python it was given.
_TASK_ERRORS = (
    re.compile(r'Cannot run program "[^"]*"[^\n]*'),
    re.compile(r"^(?:[A-Za-z_]\w*(?:Error|Exception)): [^\n]+$", re.MULTILINE),
)


def task_error(exc: Exception) -> str:
    """One line out of a failed Spark task's error (a Java stack trace with a Python
    traceback inside)."""
    text = str(exc)
    for pattern in _TASK_ERRORS:
        found = pattern.findall(text)
        if found:
            return str(found[-1] if pattern is _TASK_ERRORS[1] else found[0]).strip()
    return first_line(exc)
