"""Running the versioned SQL files of `sql/` in order, with bound parameters."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import os
import re
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import duckdb

from scenario_analytics import interrupts
from scenario_analytics.engine.database import insertion_order_kept
from scenario_analytics.errors import AnalyticsError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_PHASE = re.compile(r"^--\s*Phase:\s*(build|summarize)\s*$", re.MULTILINE | re.IGNORECASE)
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")
_SCOPE = re.compile(r"^--\s*Scope:\s*per-file\b", re.MULTILINE | re.IGNORECASE)
_ORDER = re.compile(r"^--\s*Order:\s*kept\b", re.MULTILINE | re.IGNORECASE)
_CREATES = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+([a-z_][a-z0-9_]*)", re.MULTILINE | re.IGNORECASE
)
# A whole statement `CREATE [OR REPLACE] TABLE name AS query` (comment lines removed).
_CREATE_TABLE_AS = re.compile(
    r"\A\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+([a-z_][a-z0-9_]*)\s+AS\s+(.*\S)\s*\Z",
    re.IGNORECASE | re.DOTALL,
)
_CREATE_MACRO = re.compile(r"\A\s*CREATE\s+(?:OR\s+REPLACE\s+)?MACRO\b", re.IGNORECASE)


# Names another folder of SQL files to run instead of the installed ones (for trying a
# change to the SQL without reinstalling; documented in the README).
SQL_DIR_ENV = "SCENARIO_ANALYTICS_SQL_DIR"


def default_sql_dir() -> Path:
    """The installed SQL: package data `scenario_analytics.sql`, which is the project's
    top-level `sql/` folder in an editable install and a copy of it in a wheel."""
    override = os.environ.get(SQL_DIR_ENV)
    if override:
        return Path(override)
    return Path(str(importlib.resources.files("scenario_analytics.sql")))


@dataclass(frozen=True)
class SqlFile:
    number: int
    path: Path
    phase: str
    text: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def per_file(self) -> bool:
        """Declared `-- Scope: per-file`: each export file's rows are handled on their own,
        so the result can be kept per file (the incremental ledger relies on it)."""
        return bool(_SCOPE.search(self.text))

    @property
    def keeps_order(self) -> bool:
        """Declared `-- Order: kept`: the tables it fills keep the row order of the table
        they select from (`database.insertion_order_kept` is on while it runs)."""
        return bool(_ORDER.search(self.text))

    @property
    def parameters(self) -> set[str]:
        return set(_PARAM.findall(_strip_comments(self.text)))

    @property
    def creates(self) -> list[str]:
        """The tables the file creates, in order."""
        return [name.lower() for name in _CREATES.findall(_strip_comments(self.text))]

    def macros(self) -> list[str]:
        """Its `CREATE MACRO` statements (they hold no rows)."""
        return [s for s in self.statements() if _CREATE_MACRO.match(_strip_comments(s))]

    def without(self, table: str) -> SqlFile:
        """The file without the statement that creates `table` (a table the job makes
        another way, e.g. from state kept between runs), under the same name."""
        statements = self.statements()
        kept = [s for s in statements if table not in _CREATES.findall(_strip_comments(s))]
        if len(kept) == len(statements):
            raise AnalyticsError(f"{self.name} does not create {table}")
        return dataclasses.replace(self, text=";\n\n".join(kept) + ";\n")

    def statements(self) -> list[str]:
        """Statements end with `;` at the end of a line (the files' own convention)."""
        parts = re.split(r";[ \t]*$", self.text, flags=re.MULTILINE)
        return [p.strip() for p in parts if _strip_comments(p).strip()]


@dataclass(frozen=True)
class InlinedSql:
    """SQL files as one query (`inline_sql_files`): `setup` holds the statements that
    define macros, to run once per connection; `query` is the rest, one statement."""

    setup: list[str]
    query: str


def inline_sql_files(files: list[SqlFile], inputs: dict[str, str], result: str) -> InlinedSql:
    """The files' tables as the common table expressions of one query, in file order.

    Each `CREATE [OR REPLACE] TABLE name AS query` becomes `name AS MATERIALIZED (query)`
    (computed once, as the table was), after `inputs` (name: query, for tables the files
    read that the caller makes, e.g. `filters`), and `result` (a query over those names)
    ends it. Macro definitions go to `setup`. Any other statement cannot be inlined and is
    refused. The files stay the one definition: this only changes how many statements
    DuckDB parses, binds and plans (one, instead of one per table plus their writes).
    """
    setup: list[str] = []
    tables = [f"{name} AS (\n{query}\n)" for name, query in inputs.items()]
    for sql_file in files:
        if sql_file.parameters:
            raise AnalyticsError(f"{sql_file.name} binds parameters: it cannot be inlined")
        for statement in sql_file.statements():
            code = _strip_comments(statement)
            if _CREATE_MACRO.match(code):
                setup.append(statement)
                continue
            table = _CREATE_TABLE_AS.match(code)
            if table is None:
                raise AnalyticsError(
                    f"{sql_file.name}: only CREATE TABLE ... AS and CREATE MACRO statements "
                    "can be inlined into one query"
                )
            tables.append(f"{table.group(1)} AS MATERIALIZED (\n{table.group(2)}\n)")
    return InlinedSql(setup, "WITH " + ",\n".join(tables) + "\n" + result)


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))


def load_sql_files(sql_dir: Path | None = None) -> list[SqlFile]:
    """The numbered files in order; refuses gaps, duplicates and files without a phase."""
    sql_dir = sql_dir or default_sql_dir()
    if not sql_dir.is_dir():
        raise AnalyticsError(
            f"SQL folder {sql_dir} not found",
            f"reinstall the package (its wheel carries the SQL), or point {SQL_DIR_ENV} "
            "at a folder of SQL files",
        )
    files: list[SqlFile] = []
    for path in sorted(sql_dir.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise AnalyticsError(f"SQL file {path.name} is not named NNNN_name.sql")
        text = path.read_text(encoding="utf-8")
        phase = _PHASE.search(text)
        if not phase:
            raise AnalyticsError(f"SQL file {path.name} does not declare '-- Phase: ...'")
        files.append(SqlFile(int(match.group(1)), path, phase.group(1).lower(), text))
    numbers = [f.number for f in files]
    expected = [10 * (i + 1) for i in range(len(files))]
    if numbers != expected:
        raise AnalyticsError(
            f"SQL files in {sql_dir} must be numbered 0010, 0020, ... without gaps or "
            f"duplicates; found {', '.join(f'{n:04d}' for n in numbers)}"
        )
    phases = [f.phase for f in files]
    if phases != sorted(phases):  # "build" sorts before "summarize"
        raise AnalyticsError("every build-phase SQL file must come before the summarize phase")
    return files


@dataclass(frozen=True)
class SqlPlan:
    """The SQL files grouped by what their results depend on.

    - `per_file`: build files declared `-- Scope: per-file` (they must come first): each
      export file's rows on their own; their output is kept per file by the ledger.
    - `all_files`: the rest of the build phase before the first file that binds
      `$as_of_end`: across files, but the same for every as-of date.
    - `as_of`: the build files from the first one that binds `$as_of_end` on.
    - `summarize`: the summarize phase (it reads as-of tables, so it runs per date too).
    A backfill runs the first two groups once and the last two once per day.
    """

    per_file: list[SqlFile]
    all_files: list[SqlFile]
    as_of: list[SqlFile]
    summarize: list[SqlFile]

    @property
    def all(self) -> list[SqlFile]:
        return [*self.per_file, *self.all_files, *self.as_of, *self.summarize]


def plan_sql_files(files: list[SqlFile]) -> SqlPlan:
    build = [f for f in files if f.phase == "build"]
    summarize = [f for f in files if f.phase == "summarize"]
    per_file = [f for f in build if f.per_file]
    if build[: len(per_file)] != per_file:
        raise AnalyticsError("SQL files marked '-- Scope: per-file' must come first")
    for sql_file in per_file:
        if sql_file.parameters:
            raise AnalyticsError(f"per-file SQL {sql_file.name} must not use parameters")
    rest = build[len(per_file) :]
    first_as_of = next((i for i, f in enumerate(rest) if "as_of_end" in f.parameters), len(rest))
    return SqlPlan(per_file, rest[:first_as_of], rest[first_as_of:], summarize)


def run_sql_files(
    con: duckdb.DuckDBPyConnection,
    files: list[SqlFile],
    params: dict[str, object],
    log: Callable[[str], None] | None = None,
    on_step: Callable[[SqlFile, float | None], None] | None = None,
) -> None:
    """Execute each statement, binding only the named parameters it uses.

    `on_step(file, None)` is called before a file runs, `on_step(file, seconds)` after.
    """
    for sql_file in files:
        if on_step is not None:
            on_step(sql_file, None)
        started = time.monotonic()
        with insertion_order_kept(con) if sql_file.keeps_order else nullcontext():
            _run_statements(con, sql_file, params)
        if log is not None:
            log(f"sql {sql_file.name} done in {time.monotonic() - started:.1f}s")
        if on_step is not None:
            on_step(sql_file, time.monotonic() - started)


def _run_statements(
    con: duckdb.DuckDBPyConnection, sql_file: SqlFile, params: dict[str, object]
) -> None:
    for statement in sql_file.statements():
        names = sorted(set(_PARAM.findall(statement)))
        missing = [n for n in names if n not in params]
        if missing:
            raise AnalyticsError(
                f"{sql_file.name} uses parameter(s) {', '.join(missing)} that the job "
                "does not provide"
            )
        try:
            con.execute(statement, {n: params[n] for n in names})
        except duckdb.Error as exc:
            interrupts.raise_pending(exc)  # "INTERRUPT Error" is no failure of the SQL
            raise AnalyticsError(f"{sql_file.name} failed: {exc}") from exc
