"""Running the versioned SQL files of `sql/` in order, with bound parameters."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from scenario_analytics.errors import AnalyticsError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_PHASE = re.compile(r"^--\s*Phase:\s*(build|summarize)\s*$", re.MULTILINE | re.IGNORECASE)
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


def default_sql_dir() -> Path:
    """`sql/` at the top of the project (the package is installed in editable mode)."""
    override = os.environ.get("SCENARIO_ANALYTICS_SQL_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "sql"


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

    def statements(self) -> list[str]:
        """Statements end with `;` at the end of a line (the files' own convention)."""
        parts = re.split(r";[ \t]*$", self.text, flags=re.MULTILINE)
        return [p.strip() for p in parts if _strip_comments(p).strip()]


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))


def load_sql_files(sql_dir: Path | None = None) -> list[SqlFile]:
    """The numbered files in order; refuses gaps, duplicates and files without a phase."""
    sql_dir = sql_dir or default_sql_dir()
    if not sql_dir.is_dir():
        raise AnalyticsError(
            f"SQL folder {sql_dir} not found",
            "install the project in editable mode (make run) or set SCENARIO_ANALYTICS_SQL_DIR",
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


def run_sql_files(
    con: duckdb.DuckDBPyConnection,
    files: list[SqlFile],
    params: dict[str, object],
    log: Callable[[str], None] | None = None,
) -> None:
    """Execute each statement, binding only the named parameters it uses."""
    for sql_file in files:
        started = time.monotonic()
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
                raise AnalyticsError(f"{sql_file.name} failed: {exc}") from exc
        if log is not None:
            log(f"sql {sql_file.name} done in {time.monotonic() - started:.1f}s")
