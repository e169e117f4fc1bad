"""Answering summary requests from a published snapshot alone.

A request is first normalized to its canonical key; if the snapshot precomputed that
key for the scenario, the stored body is the answer. Otherwise the summarize-phase SQL
files run on the snapshot's session-level tables for that one scenario, which gives the
same answer the materialization would have.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

import duckdb

from scenario_analytics.database import connect
from scenario_analytics.errors import ExitCode
from scenario_analytics.materialize import create_filters_table
from scenario_analytics.requests import RequestError, SummaryRequest, is_text, parse_request
from scenario_analytics.sql_files import load_sql_files, run_sql_files
from scenario_analytics.store import Store

_T = TypeVar("_T")
# How many scenarios' bodies and sessions a batch of requests keeps in memory.
CACHED_SCENARIOS = 64


@dataclass(frozen=True)
class Answer:
    exit_code: ExitCode
    body: str  # JSON text: the response body or the error body

    @property
    def message(self) -> str:
        """A one-line description of an error answer, for stderr."""
        if self.exit_code == ExitCode.OK:
            return ""
        error = json.loads(self.body)["error"]
        return f"{error['code']}: {error['message']}"


def error_body(kind: str, code: str, message: str) -> str:
    # A message may quote what the user typed; lone surrogates in it (bytes that were
    # not UTF-8) are shown as \\udcff escapes so that the body can always be written.
    printable = message.encode("utf-8", "backslashreplace").decode("utf-8")
    body = {"error": {"type": kind, "code": code, "message": printable}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class SnapshotNotFound(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.answer = Answer(
            ExitCode.NOT_FOUND, error_body("not_found", "snapshot_not_found", message)
        )


class SnapshotQuery:
    def __init__(self, store_root: Path, as_of: date | None = None) -> None:
        store = Store(store_root)
        snapshot_date = as_of or store.latest()
        if snapshot_date is None:
            raise SnapshotNotFound(f"no snapshot in {store_root}")
        path = store.snapshot_path(snapshot_date)
        if path is None:
            raise SnapshotNotFound(f"no snapshot for {snapshot_date.isoformat()} in {store_root}")
        self.snapshot_date = snapshot_date
        self.path = path
        self.sql_files = [f for f in load_sql_files() if f.phase == "summarize"]
        self.con: duckdb.DuckDBPyConnection = connect()
        # Per-scenario caches for batches of requests (`query --requests`).
        self._bodies: dict[str, dict[str, str]] = {}
        self._sessions_of: str | None = None  # the scenario graded_sessions holds now
        # Snapshot tables are read as they are: no Hive columns from `x=y` folder names.
        for table, source, columns in (
            ("scenario_index", "scenarios", "scenario_id, slug, name"),
            ("users", "users", "user_id, email, is_system, is_member"),
            ("group_memberships", "group_memberships", "group_id, user_id"),
        ):
            self.con.execute(
                f"CREATE TABLE {table} AS SELECT {columns} "
                "FROM read_parquet($p, hive_partitioning = false)",
                {"p": str(path / f"{source}.parquet")},
            )

    def close(self) -> None:
        self.con.close()

    def resolve(self, scenario: str) -> str | None:
        """By exact id, else by exact slug (the smallest id if two share it)."""
        row = self.con.execute(
            """SELECT coalesce(
                   (SELECT scenario_id FROM scenario_index WHERE scenario_id = $s),
                   (SELECT min(scenario_id) FROM scenario_index WHERE slug = $s))""",
            {"s": scenario},
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def answer(self, scenario: str, params: Mapping[str, object]) -> Answer:
        """The API's answer: parameters are checked first, then the scenario is looked up."""
        try:
            request = parse_request(params)
        except RequestError as exc:
            return Answer(ExitCode.USAGE, error_body("invalid_request", exc.code, exc.message))
        scenario_id = self.resolve(scenario) if is_text(scenario) else None
        if scenario_id is None:
            return Answer(
                ExitCode.NOT_FOUND,
                error_body("not_found", "scenario_not_found", f"Scenario not found: {scenario}"),
            )
        body = self.precomputed(scenario_id, request.key)
        if body is None:
            body = self.compute(scenario_id, request)
        return Answer(ExitCode.OK, body)

    def precomputed(self, scenario_id: str, request_key: str) -> str | None:
        """The materialized body of this scenario and canonical request key, if any.

        A scenario's bodies are read once (the file is sorted by scenario, so this
        reads few row groups) and kept for the next requests of a batch.
        """
        bodies = self._bodies.get(scenario_id)
        if bodies is None:
            rows = self.con.execute(
                """SELECT request_key, body FROM read_parquet($p, hive_partitioning = false)
                   WHERE scenario_id = $s""",
                {"p": str(self.path / "summaries.parquet"), "s": scenario_id},
            ).fetchall()
            bodies = {str(key): str(body) for key, body in rows}
            self._remember(self._bodies, scenario_id, bodies)
        return bodies.get(request_key)

    def _remember(self, cache: dict[str, _T], key: str, value: _T) -> None:
        if len(cache) >= CACHED_SCENARIOS:
            cache.pop(next(iter(cache)))
        cache[key] = value

    def compute(self, scenario_id: str, request: SummaryRequest) -> str:
        """Run the summarize-phase SQL on the snapshot's sessions of one scenario."""
        if self._sessions_of != scenario_id:
            self.con.execute(
                """CREATE OR REPLACE TABLE graded_sessions AS
                   SELECT session_id, scenario_id, user_id, created_at, score, duration_seconds
                   FROM read_parquet($p, hive_partitioning = false) WHERE scenario_id = $s""",
                {"p": str(self.path / "sessions.parquet"), "s": scenario_id},
            )
            self.con.execute(
                """CREATE OR REPLACE TABLE snapshot_scenarios AS
                   SELECT scenario_id, slug, name FROM scenario_index WHERE scenario_id = $s""",
                {"s": scenario_id},
            )
            self._sessions_of = scenario_id
        create_filters_table(self.con, [request])
        run_sql_files(self.con, self.sql_files, {})
        computed = self.con.execute("SELECT body FROM summaries").fetchone()
        assert computed is not None
        return str(computed[0])
