"""How `query` runs the summarize SQL: the files inlined into one statement, parsed once,
with some optimizer passes off (serve/query.py), give the same bytes as running the files
statement by statement with every pass on, as the nightly job does.

Over many random requests on a generated export: user ids, emails (any case), groups,
start and end dates at any time of day (not only whole days), the system-user flag;
summaries and participants pages, with sessions held in memory and read per scenario.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from helpers_summary import run_snapshot

from scenario_analytics.engine.sql_files import inline_sql_files, load_sql_files, run_sql_files
from scenario_analytics.errors import AnalyticsError
from scenario_analytics.filters import (
    SORT_FIELDS,
    parse_participants_request,
    parse_request,
)
from scenario_analytics.generate.exports import generate_exports
from scenario_analytics.publish.materialize import create_filters_table
from scenario_analytics.serve import query as query_module
from scenario_analytics.serve.participants import page_body
from scenario_analytics.serve.query import SnapshotQuery

AS_OF = date(2026, 11, 26)
REQUESTS = 150
SUMMARIZE = [f for f in load_sql_files() if f.phase == "summarize"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("statement")
    generate_exports(root / "exports", 4000, seed=7, start_date="2026-08-29")
    run_snapshot(root / "exports", root / "snapshots", AS_OF)
    return root / "snapshots"


@pytest.fixture(scope="module")
def requests(store: Path) -> list[tuple[str, dict[str, object]]]:
    """Random requests over the snapshot's scenarios, users, emails and groups."""
    snapshot = store / f"snapshot_date={AS_OF.isoformat()}"
    con = duckdb.connect()
    try:

        def column(sql: str) -> list[Any]:
            return [row[0] for row in con.execute(sql, {"p": str(snapshot)}).fetchall()]

        scenarios = column("SELECT scenario_id FROM read_parquet($p || '/scenarios.parquet')")
        users = column("SELECT user_id FROM read_parquet($p || '/users.parquet') ORDER BY 1")
        emails = column(
            "SELECT email FROM read_parquet($p || '/users.parquet') WHERE email IS NOT NULL"
        )
        groups = column(
            "SELECT DISTINCT group_id FROM read_parquet($p || '/group_memberships.parquet')"
        )
    finally:
        con.close()
    rng = random.Random(15)
    day0 = datetime(2026, 11, 26)
    drawn: list[tuple[str, dict[str, object]]] = []
    for _ in range(REQUESTS):
        params: dict[str, object] = {}
        if rng.random() < 0.35:
            params["user_ids"] = ",".join(rng.sample(users, rng.randint(1, 40)))
        if rng.random() < 0.25:
            picked = rng.sample(emails, rng.randint(1, 20))
            params["user_emails"] = ",".join(e.upper() if rng.random() < 0.3 else e for e in picked)
        if rng.random() < 0.4:
            params["group_ids"] = ",".join(rng.sample(groups, rng.randint(1, 3)))
        if rng.random() < 0.7:
            start = day0 - timedelta(days=rng.randint(0, 100), seconds=rng.randint(0, 86399))
            params["start_date"] = (
                start.date().isoformat() if rng.random() < 0.3 else start.isoformat() + "Z"
            )
            if rng.random() < 0.5:
                later = timedelta(days=rng.randint(0, 60), microseconds=rng.randint(0, 10**11))
                end = start + later
                params["end_date"] = end.isoformat() + "+02:00"
        if rng.random() < 0.5:
            params["exclude_system_users"] = rng.random() < 0.5
        drawn.append((rng.choice(scenarios), params))
    return drawn


def file_by_file_summary(reader: SnapshotQuery, scenario: str, params: dict[str, object]) -> str:
    """The body as the summarize files give it run one statement at a time, every optimizer
    pass on: the way `query` computed it before, and the nightly job still does."""
    reader._select_sessions(scenario)
    with every_optimizer_pass(reader.con):
        create_filters_table(reader.con, [parse_request(params)])
        run_sql_files(reader.con, SUMMARIZE, {})
        row = reader.con.execute("SELECT body FROM summaries").fetchone()
    assert row is not None
    return str(row[0])


def file_by_file_page(reader: SnapshotQuery, scenario: str, params: dict[str, object]) -> str:
    request = parse_participants_request(params)
    reader._select_sessions(scenario)
    with every_optimizer_pass(reader.con):
        create_filters_table(reader.con, [request.filters])
        run_sql_files(reader.con, SUMMARIZE[:3], {})  # up to 0130 filter_participants
        reader.con.execute(
            """CREATE OR REPLACE TABLE page_participants AS
               SELECT user_id, session_count, first_score,
                      score_rank(first_score) AS first_rank, best_score,
                      score_rank(best_score) AS best_rank, lift, total_duration_seconds
               FROM filter_participants"""
        )
        return page_body(reader.con, request)


@contextmanager
def every_optimizer_pass(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    ((disabled,),) = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()
    assert disabled == ""  # outside a computed statement, the reader runs every pass
    yield


@pytest.fixture(scope="module", params=[0, 10**6], ids=["in-memory", "per-scenario"])
def reader(store: Path, request: pytest.FixtureRequest) -> Iterator[SnapshotQuery]:
    query = SnapshotQuery(store, reads_before_loading=request.param)
    yield query
    query.close()


def test_summarize_files_are_the_last_three() -> None:
    """file_by_file_page runs the files up to filter_participants: 0110, 0120, 0130."""
    assert [f.creates[-1] for f in SUMMARIZE] == [
        "filter_windows",
        "participant_facts",
        "filter_participants",
        "summaries",
    ]


def test_summaries_equal_the_file_by_file_ones(
    reader: SnapshotQuery, requests: list[tuple[str, dict[str, object]]]
) -> None:
    nonzero = 0
    for scenario, params in requests:
        request = parse_request(params)
        inlined = reader.compute(scenario, request)
        assert inlined == file_by_file_summary(reader, scenario, params), (scenario, params)
        nonzero += '"participant_count":0,' not in inlined
    assert nonzero > REQUESTS // 3  # the requests are not all empty answers


def test_participants_pages_equal_the_file_by_file_ones(
    reader: SnapshotQuery, requests: list[tuple[str, dict[str, object]]]
) -> None:
    rng = random.Random(6)
    for scenario, params in requests[:120]:
        paged = {
            **params,
            # A key the summary does not materialize, so the page is computed.
            "start_date": params.get("start_date", "2000-01-01T00:00:01Z"),
            "sorting": rng.choice([*SORT_FIELDS, *("-" + f for f in SORT_FIELDS)]),
            "page": rng.randint(1, 3),
            "page_size": rng.choice([5, 50]),
        }
        answer = reader.participants(scenario, paged)
        assert answer.body == file_by_file_page(reader, scenario, paged), (scenario, paged)


def test_the_disabled_optimizers_exist() -> None:
    """A name DuckDB does not know would fail every request: each one is a pass."""
    con = duckdb.connect()
    try:
        known = {name for (name,) in con.execute("SELECT name FROM duckdb_optimizers()").fetchall()}
    finally:
        con.close()
    assert set(query_module.REQUEST_DISABLED_OPTIMIZERS) <= known


def test_inlining_keeps_macros_apart_and_refuses_other_statements(tmp_path: Path) -> None:
    inlined = inline_sql_files(SUMMARIZE, {"filters": "SELECT 1 AS filter_id"}, "SELECT 1")
    assert len(inlined.setup) == 1 and "MACRO score_rank" in inlined.setup[0]
    assert inlined.query.startswith("WITH filters AS (")
    for name in ("filter_windows", "participant_facts", "filter_participants", "summaries"):
        assert f"{name} AS MATERIALIZED (" in inlined.query
    (tmp_path / "0010_x.sql").write_text(
        "-- Purpose: t.\n-- Grain: t.\n-- Phase: summarize\nCREATE VIEW v AS SELECT 1;\n",
        encoding="utf-8",
    )
    with pytest.raises(AnalyticsError, match="can be inlined"):
        inline_sql_files(load_sql_files(tmp_path), {}, "SELECT 1")
