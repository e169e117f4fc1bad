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

import duckdb

from scenario_analytics.database import connect
from scenario_analytics.errors import ExitCode
from scenario_analytics.materialize import create_filters_table
from scenario_analytics.requests import RequestError, parse_request
from scenario_analytics.sql_files import load_sql_files, run_sql_files
from scenario_analytics.store import Store


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
    body = {"error": {"type": kind, "code": code, "message": message}}
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
        self.con.execute(
            "CREATE TABLE scenario_index AS SELECT scenario_id, slug, name FROM read_parquet($p)",
            {"p": str(path / "scenarios.parquet")},
        )
        self.con.execute(
            "CREATE TABLE users AS SELECT * FROM read_parquet($p)",
            {"p": str(path / "users.parquet")},
        )
        self.con.execute(
            "CREATE TABLE group_memberships AS SELECT * FROM read_parquet($p)",
            {"p": str(path / "group_memberships.parquet")},
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
        try:
            request = parse_request(params)
        except RequestError as exc:
            return Answer(ExitCode.USAGE, json.dumps(exc.body(), separators=(",", ":")))
        scenario_id = self.resolve(scenario)
        if scenario_id is None:
            return Answer(
                ExitCode.NOT_FOUND,
                error_body("not_found", "scenario_not_found", f"Scenario not found: {scenario}"),
            )
        row = self.con.execute(
            "SELECT body FROM read_parquet($p) WHERE scenario_id = $s AND request_key = $k",
            {"p": str(self.path / "summaries.parquet"), "s": scenario_id, "k": request.key},
        ).fetchone()
        if row is not None:
            return Answer(ExitCode.OK, str(row[0]))
        self.con.execute(
            """CREATE OR REPLACE TABLE graded_sessions AS
               SELECT session_id, scenario_id, user_id, created_at, score, duration_seconds
               FROM read_parquet($p) WHERE scenario_id = $s""",
            {"p": str(self.path / "sessions.parquet"), "s": scenario_id},
        )
        self.con.execute(
            """CREATE OR REPLACE TABLE snapshot_scenarios AS
               SELECT scenario_id, slug, name FROM scenario_index WHERE scenario_id = $s""",
            {"s": scenario_id},
        )
        create_filters_table(self.con, [request])
        run_sql_files(self.con, self.sql_files, {})
        computed = self.con.execute("SELECT body FROM summaries").fetchone()
        assert computed is not None
        return Answer(ExitCode.OK, str(computed[0]))
