"""The `query` command and `SnapshotQuery`: lookup, errors, exit codes, request keys.

CLI tests check the exit code, stdout (data: one JSON body per answer) and stderr
(messages) separately.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result
from helpers_summary import GOLDEN_DIR, ask, loads, run_snapshot, session_record, write_jsonl

from scenario_analytics.cli import main
from scenario_analytics.errors import ExitCode, InvalidUsageError
from scenario_analytics.filters import SummaryRequest, parse_request
from scenario_analytics.publish.materialize import (
    create_filters_table,
    materialized_requests,
)
from scenario_analytics.serve import query as query_module
from scenario_analytics.serve.query import SnapshotNotFound, SnapshotQuery
from scenario_analytics.settings import ExtraRequest, MaterializeSettings, load_job

EXAMPLE_EXPORTS = Path(__file__).resolve().parent / "data" / "summary-example" / "exports"
LATEST = date(2026, 11, 26)
OLDER = date(2026, 11, 25)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The summary example plus scenarios sharing a slug, published for two days."""
    root = tmp_path_factory.mktemp("query")
    exports = root / "exports"
    shutil.copytree(EXAMPLE_EXPORTS, exports)
    write_jsonl(
        exports / "scenarios-extra.jsonl",
        [
            {"id": "b-2", "slug": "shared", "name": "B"},
            {"id": "a-10", "slug": "shared", "name": "A"},
            {"id": "zeta", "slug": "alpha-id", "name": "Zeta"},
            {"id": "alpha-id", "slug": "other", "name": "Alpha"},
        ],
    )
    at = "2026-11-02T10:00:00Z"
    write_jsonl(
        exports / "sessions" / "extra.jsonl",
        [
            session_record("x1", "u1", "90", at, scenario="a-10", email="alice@acme.com"),
            session_record("x2", "u2", "10", at, scenario="b-2", email="bob@acme.com"),
            session_record("x3", "u2", "55", at, scenario="zeta", email="bob@acme.com"),
        ],
    )
    snapshots = root / "snapshots"
    run_snapshot(exports, snapshots, LATEST)
    run_snapshot(exports, snapshots, OLDER)  # a backfill does not move latest.json back
    return snapshots


@pytest.fixture(scope="module")
def reader(store: Path) -> Iterator[SnapshotQuery]:
    query = SnapshotQuery(store)
    yield query
    query.close()


def query(*args: str | Path, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["query", *map(str, args)], input=input)


def golden(name: str) -> str:
    return (GOLDEN_DIR / name).read_text(encoding="utf-8")


def body_of(result: Result) -> Any:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return loads(lines[0])


def assert_error(result: Result, exit_code: ExitCode, code: str) -> dict[str, Any]:
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    error = body_of(result)["error"]
    assert error["code"] == code
    stderr = result.stderr.splitlines()
    assert len(stderr) == 1, result.stderr
    assert stderr[0].startswith("scenario-analytics: error: ")
    assert code in stderr[0]
    return dict(error)


# --- looking up scenarios ----------------------------------------------------------------


def test_by_id(store: Path) -> None:
    result = query("--snapshots", store, "sc-a")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == golden("summary-example.unfiltered.json") + "\n"
    assert result.stderr == ""


def test_by_slug(store: Path) -> None:
    result = query("--snapshots", store, "negotiation")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == golden("summary-example.unfiltered.json") + "\n"


def test_shared_slug_gives_the_smaller_id(reader: SnapshotQuery) -> None:
    assert reader.resolve("shared") == "a-10"  # "a-10" < "b-2"
    body = loads(reader.answer("shared", {}).body)
    assert body["average_best_score"] == 90
    assert reader.answer("shared", {}).body == reader.answer("a-10", {}).body


def test_id_wins_over_slug(reader: SnapshotQuery) -> None:
    # "alpha-id" is one scenario's id and another's slug.
    assert reader.resolve("alpha-id") == "alpha-id"
    assert reader.resolve("other") == "alpha-id"
    assert loads(reader.answer("alpha-id", {}).body)["participant_count"] == 0


def test_lookup_is_exact(reader: SnapshotQuery) -> None:
    for near_miss in ("SC-A", " sc-a", "sc-a ", "Negotiation", "sc", "%"):
        assert reader.resolve(near_miss) is None, near_miss


def test_filters_on_the_command_line(store: Path) -> None:
    result = query(
        "--snapshots",
        store,
        "sc-a",
        "--user-emails",
        " DAN@acme.com ,carol@EXEC.com,",
        "--exclude-system-users",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == golden("summary-example.emails-without-system-users.json") + "\n"
    result = query("--snapshots", store, "sc-a", "--group-ids", "g1")
    assert result.stdout == golden("summary-example.group-g1.json") + "\n"
    result = query(
        "--snapshots", store, "negotiation", "--start-date", "2026-11-15", "--end-date",
        "2026-11-25",
    )  # fmt: skip
    assert result.stdout == golden("summary-example.dates-nov-15-to-25.json") + "\n"


def test_user_ids_and_emails_are_unioned(reader: SnapshotQuery) -> None:
    both = loads(reader.answer("sc-a", {"user_ids": "u1", "user_emails": "bob@acme.com"}).body)
    assert both["participant_count"] == 2
    assert both["total_sessions"] == 3
    # ...but ANDed with groups: u4 is in no group.
    none = loads(reader.answer("sc-a", {"user_ids": "u4", "group_ids": "g1,g2"}).body)
    assert none["participant_count"] == 0


# --- errors ------------------------------------------------------------------------------


def test_not_found(store: Path) -> None:
    result = query("--snapshots", store, "no-such-scenario", "--group-ids", "g1")
    error = assert_error(result, ExitCode.NOT_FOUND, "scenario_not_found")
    assert result.stdout == golden("error.scenario_not_found.json") + "\n"
    assert error["type"] == "not_found"
    assert "Scenario not found: no-such-scenario" in result.stderr


def test_scenario_after_the_as_of_day_is_not_found(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    write_jsonl(
        exports / "sessions.jsonl",
        [
            session_record("1", "u1", "80", "2026-11-26T12:00:00Z", scenario="now"),
            session_record("2", "u1", "80", "2026-11-27T00:00:00Z", scenario="later"),
        ],
    )
    run_snapshot(exports, tmp_path / "snapshots", LATEST)
    assert_error(
        query("--snapshots", tmp_path / "snapshots", "later"),
        ExitCode.NOT_FOUND,
        "scenario_not_found",
    )
    assert query("--snapshots", tmp_path / "snapshots", "now").exit_code == 0


@pytest.mark.parametrize(
    "value",
    [
        "2026-13-01",
        "yesterday",
        "2026-11-01T25:00:00Z",
        "2026-02-30",
        "2026-11-01Z",
        "2026/11/01",
        "\uff12\uff10\uff12\uff16-11-01",  # full-width digits are not ISO 8601 digits
        "2026-11-01T10:00:00+24:00",
    ],
)
def test_invalid_date(store: Path, value: str) -> None:
    result = query("--snapshots", store, "sc-a", "--start-date", value)
    error = assert_error(result, ExitCode.USAGE, "invalid_date")
    assert error["type"] == "invalid_request"
    # What to do is about the form, not about picking an earlier day (issue #28).
    assert result.stderr.rstrip().endswith(
        "— give a date as YYYY-MM-DD (a whole UTC day) or a date-time such as 2026-11-20T08:00:00Z"
    ), result.stderr
    result = query("--snapshots", store, "sc-a", "--end-date", value)
    assert_error(result, ExitCode.USAGE, "invalid_date")


def test_invalid_date_is_checked_before_the_lookup(store: Path) -> None:
    result = query("--snapshots", store, "no-such-scenario", "--end-date", "soon")
    assert_error(result, ExitCode.USAGE, "invalid_date")


def test_invalid_date_range(store: Path) -> None:
    result = query(
        "--snapshots", store, "sc-a", "--start-date", "2026-11-20", "--end-date", "2026-11-10"
    )
    assert_error(result, ExitCode.USAGE, "invalid_date_range")
    assert result.stdout == golden("error.invalid_date_range.json") + "\n"
    # The same day as start and end is a valid range: the whole day.
    same_day = query(
        "--snapshots", store, "sc-a", "--start-date", "2026-11-20", "--end-date", "2026-11-20"
    )
    assert same_day.exit_code == 0
    assert body_of(same_day)["total_sessions"] == 1


def test_empty_dates_are_no_filter(reader: SnapshotQuery) -> None:
    unfiltered = reader.answer("sc-a", {}).body
    assert reader.answer("sc-a", {"start_date": "", "end_date": " "}).body == unfiltered


def test_no_arguments_is_a_usage_error(store: Path) -> None:
    result = query("--snapshots", store)
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert "SCENARIO" in result.stderr


# --- many requests -----------------------------------------------------------------------


def test_requests_file(store: Path, reader: SnapshotQuery, tmp_path: Path) -> None:
    lines = [
        {"scenario_id": "sc-a"},
        {"scenario_id": "negotiation", "group_ids": "g1"},
        {"scenario_id": "sc-a", "user_id": "u1"},  # unknown key
        {"scenario_id": "no-such-scenario"},
        {"scenario_id": "sc-a", "start_date": "2026-11-20", "end_date": "2026-11-10"},
        {"scenario_id": "sc-a", "start_date": "not a date"},
        {"scenario_id": "sc-a", "exclude_system_users": True, "user_emails": "DAN@acme.com"},
        {"group_ids": "g1"},  # no scenario_id
        {"scenario_id": "sc-a", "exclude_system_users": "maybe"},
        {"scenario_id": "sc-a", "user_ids": ["u1"]},
    ]
    text = "\n".join(json.dumps(line) for line in lines[:5])
    text += "\n\n   \nnot json\n" + "\n".join(json.dumps(line) for line in lines[5:]) + "\n"
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8") + b'{"scenario_id": "\xff"}\n')
    result = query("--snapshots", store, "--requests", path)
    assert result.exit_code == 0, result.stderr
    out = result.stdout.splitlines()
    # Every non-blank line: "not json" and a line that is not UTF-8 included.
    assert len(out) == len(lines) + 2
    bodies = [loads(line) for line in out]
    codes = [b["error"]["code"] if "error" in b else None for b in bodies]
    assert codes == [
        None,
        None,
        "invalid_parameter",
        "scenario_not_found",
        "invalid_date_range",
        "invalid_parameter",  # "not json"
        "invalid_date",
        None,
        "invalid_parameter",
        "invalid_parameter",
        "invalid_parameter",
        "invalid_parameter",  # not UTF-8
    ]
    assert out[0] == golden("summary-example.unfiltered.json")
    assert out[1] == golden("summary-example.group-g1.json")
    assert out[2] == golden("error.invalid_parameter.json")
    assert out[7] == golden("summary-example.emails-without-system-users.json")
    # Each answer is the one a single query gives.
    single = reader.answer("sc-a", {"exclude_system_users": True, "user_emails": "DAN@acme.com"})
    assert out[7] == single.body
    # From stdin too.
    piped = query("--snapshots", store, "--requests", "-", input=text)
    assert piped.stdout.splitlines() == out[:-1]
    assert piped.exit_code == 0


def test_requests_accept_integer_scenario_ids(tmp_path: Path) -> None:
    """Ids may be integers in the exports; a request may name one as a JSON number."""
    exports = tmp_path / "exports"
    write_jsonl(
        exports / "sessions.jsonl",
        [{**session_record("1", "u1", "80", "2026-11-26T12:00:00Z"), "scenario": {"id": 42}}],
    )
    run_snapshot(exports, tmp_path / "snapshots", LATEST)
    path = tmp_path / "requests.jsonl"
    path.write_text('{"scenario_id": 42}\n{"scenario_id": "42"}\n{"scenario_id": true}\n')
    result = query("--snapshots", tmp_path / "snapshots", "--requests", path)
    assert result.exit_code == 0
    out = [loads(line) for line in result.stdout.splitlines()]
    assert out[0] == out[1]
    assert out[0]["participant_count"] == 1
    assert out[2]["error"]["code"] == "invalid_parameter"


# --- snapshots ---------------------------------------------------------------------------


def test_no_snapshot_in_store(tmp_path: Path) -> None:
    result = query("--snapshots", tmp_path / "empty", "sc-a")
    error = assert_error(result, ExitCode.NOT_FOUND, "snapshot_not_found")
    assert error["type"] == "not_found"
    path = tmp_path / "requests.jsonl"
    path.write_text('{"scenario_id": "sc-a"}\n{"scenario_id": "sc-b"}\n', encoding="utf-8")
    result = query("--snapshots", tmp_path / "empty", "--requests", path)
    assert_error(result, ExitCode.NOT_FOUND, "snapshot_not_found")  # one body only
    with pytest.raises(SnapshotNotFound):
        SnapshotQuery(tmp_path / "empty")


def test_as_of_selects_an_older_snapshot(store: Path) -> None:
    latest = query("--snapshots", store, "sc-a")
    older = query("--snapshots", store, "--as-of", OLDER.isoformat(), "sc-a")
    explicit = query("--snapshots", store, "--as-of", LATEST.isoformat(), "sc-a")
    assert older.exit_code == 0, older.stderr
    assert explicit.stdout == latest.stdout
    # s05 (u4) was created in the last microsecond of Nov 26: not in Nov 25's snapshot.
    assert body_of(latest)["participant_count"] == 4
    assert body_of(older)["participant_count"] == 3
    assert body_of(older)["total_sessions"] == 4
    assert json.loads((store / "latest.json").read_text())["snapshot_date"] == "2026-11-26"


def test_as_of_without_a_snapshot(store: Path) -> None:
    result = query("--snapshots", store, "--as-of", "2026-11-01", "sc-a")
    error = assert_error(result, ExitCode.NOT_FOUND, "snapshot_not_found")
    assert "2026-11-01" in error["message"]


def test_as_of_must_be_a_date(store: Path) -> None:
    result = query("--snapshots", store, "--as-of", "2026-11", "sc-a")
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""


# --- materialized answers equal computed ones --------------------------------------------


def materialized_rows(reader: SnapshotQuery) -> list[dict[str, Any]]:
    con = duckdb.connect()
    try:
        cursor = con.execute(
            "SELECT * FROM read_parquet($p)", {"p": str(reader.table("summaries"))}
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def test_every_materialized_summary_equals_the_computed_one(reader: SnapshotQuery) -> None:
    rows = materialized_rows(reader)
    assert len(rows) == len({(r["scenario_id"], r["request_key"]) for r in rows})
    assert len(rows) > 100
    for row in rows:
        request = SummaryRequest(
            user_ids=tuple(row["user_ids"]),
            user_emails=tuple(row["user_emails"]),
            group_ids=tuple(row["group_ids"]),
            start_date=row["start_date"],
            end_date=row["end_date"],
            exclude_system_users=row["exclude_system_users"],
        )
        assert request.key == row["request_key"]
        assert reader.precomputed(row["scenario_id"], row["request_key"]) == row["body"]
        assert reader.compute(row["scenario_id"], request) == row["body"], row["request_key"]


def test_materialized_and_computed_through_the_api(reader: SnapshotQuery) -> None:
    """An equivalent request that is not materialized (a group no one is in added)."""
    for row in materialized_rows(reader):
        if not row["group_ids"]:
            continue
        params: dict[str, object] = {
            "group_ids": ",".join([*row["group_ids"], "no-such-group"]),
            "exclude_system_users": row["exclude_system_users"],
        }
        if row["start_date"] is not None:
            params["start_date"] = row["start_date"].isoformat() + "Z"
            params["end_date"] = row["end_date"].isoformat() + "Z"
        request = parse_request(params)
        assert reader.precomputed(row["scenario_id"], request.key) is None
        answer = reader.answer(row["scenario_id"], params)
        assert answer.body == row["body"], params


def test_materialized_keys_of_the_default_set(reader: SnapshotQuery) -> None:
    keys = {r["request_key"] for r in materialized_rows(reader) if r["scenario_id"] == "sc-a"}
    assert "" in keys
    assert "exclude_system_users=true" in keys
    assert "group_ids=g2" in keys
    assert (
        "end_date=2026-11-26T23:59:59.999999Z&exclude_system_users=true&group_ids=g1"
        "&start_date=2026-10-28T00:00:00.000000Z"
    ) in keys  # last 30 days
    assert (
        "end_date=2026-11-26T23:59:59.999999Z&start_date=2026-11-20T00:00:00.000000Z"
    ) in keys  # last 7 days
    assert len(keys) == 3 * 2 * 4  # {all, g1, g2} x {with, without system} x 4 windows


# --- batches: sessions read per scenario, or all held in memory ---------------------------

# Requests that alternate between scenarios: users in several scenarios (u1, u2), emails,
# groups, system users, dates, a scenario without sessions (sc-empty, alpha-id), a slug,
# and precomputed answers in between.
BATCH: list[tuple[str, dict[str, object]]] = [
    ("sc-a", {"user_ids": "u1,u4", "start_date": "2026-11-02"}),
    ("b-2", {"user_emails": "BOB@acme.com"}),
    ("sc-a", {"group_ids": "g2", "exclude_system_users": True}),
    ("sc-empty", {"user_ids": "u1"}),
    ("shared", {"group_ids": "g1,nope"}),
    ("zeta", {"group_ids": "g2", "user_emails": "bob@acme.com"}),
    ("alpha-id", {"start_date": "2026-01-01"}),
    ("sc-a", {"user_emails": "carol@exec.com,dan@acme.com", "exclude_system_users": True}),
    ("b-2", {"group_ids": "g1", "end_date": "2026-11-20"}),
    ("sc-a", {}),
    ("zeta", {"user_ids": "u2", "exclude_system_users": True}),
    ("sc-a", {"user_ids": "u3"}),
    ("a-10", {"group_ids": "g2"}),
]


@pytest.fixture(scope="module")
def alone(store: Path) -> list[str]:
    """Each request of BATCH answered by a reader of its own."""
    return [ask(store, scenario, params).body for scenario, params in BATCH]


def test_batch_alone_answers_are_not_trivial(alone: list[str]) -> None:
    counts = [loads(body)["participant_count"] for body in alone]
    assert counts == [2, 1, 1, 0, 1, 1, 0, 1, 1, 4, 1, 1, 0]


@pytest.mark.parametrize("reads_before_loading", [0, 1, 3, 10**6])
def test_batch_answers_do_not_depend_on_where_sessions_come_from(
    store: Path, alone: list[str], reads_before_loading: int
) -> None:
    """Sessions read per scenario from the session files, all loaded at once, or loaded
    part-way through the batch: the same answers as for each request alone, twice over."""
    reader = SnapshotQuery(store, reads_before_loading=reads_before_loading)
    try:
        for _ in range(2):
            assert [reader.answer(s, p).body for s, p in BATCH] == alone
        assert reader.sessions_in_memory == (reads_before_loading < 10**6)
    finally:
        reader.close()


def test_default_loads_sessions_once_a_batch_has_read_enough_scenarios(store: Path) -> None:
    reader = SnapshotQuery(store)  # a small file: one scenario read, then all of them
    try:
        reader.answer("sc-a", {"user_ids": "u1"})
        reader.answer("sc-a", {"user_ids": "u2"})
        assert not reader.sessions_in_memory  # a batch about one scenario reads only it
        reader.answer("b-2", {"user_ids": "u2"})
        assert reader.sessions_in_memory
    finally:
        reader.close()


def test_batch_past_the_cache_limit(
    store: Path, alone: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Precomputed bodies evicted from the per-scenario cache are fetched again."""
    monkeypatch.setattr(query_module, "CACHED_SCENARIOS", 2)
    scenarios = ["sc-a", "a-10", "b-2", "zeta", "alpha-id", "sc-empty"]
    params: list[dict[str, object]] = [{}, {"group_ids": "g1"}, {"exclude_system_users": True}]
    expected = {(s, i): ask(store, s, p).body for s in scenarios for i, p in enumerate(params)}
    reader = SnapshotQuery(store, reads_before_loading=0)
    try:
        for _ in range(2):
            for s in scenarios:
                for i, p in enumerate(params):
                    assert reader.answer(s, p).body == expected[(s, i)], (s, p)
            assert [reader.answer(s, p).body for s, p in BATCH] == alone
    finally:
        reader.close()


class FailingLoad:
    """A connection on which loading the per-scenario tables runs out of memory."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def execute(
        self, query: str | duckdb.Statement, parameters: Any = None
    ) -> duckdb.DuckDBPyConnection:
        # Requests run statements parsed once (duckdb.Statement); loads run SQL text.
        if isinstance(query, str) and "CREATE TABLE scenario_group_memberships" in query:
            raise duckdb.OutOfMemoryException("Out of Memory Error: (in a test)")
        return self._con.execute(query, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def test_a_failed_load_leaves_the_batch_reading_per_scenario(store: Path, alone: list[str]) -> None:
    reader = SnapshotQuery(store, reads_before_loading=1)
    reader.con = FailingLoad(reader.con)  # type: ignore[assignment]
    try:
        for _ in range(2):
            assert [reader.answer(s, p).body for s, p in BATCH] == alone
        assert not reader.sessions_in_memory
    finally:
        reader.close()


def test_one_request_filters_table_is_the_batch_one() -> None:
    """`create_filters_table` makes one request's table by another path than a batch's."""
    con = duckdb.connect()
    try:
        other = parse_request({"user_ids": "z"})
        for params in [
            {},
            {"user_ids": "a, b", "user_emails": "X@y.com", "group_ids": "g'1"},
            {"start_date": "2026-11-01T10:00:00.5+02:00", "end_date": "2026-11-20"},
            {"exclude_system_users": True, "user_ids": ",".join(f"u{i}" for i in range(5000))},
        ]:
            request = parse_request(params)
            create_filters_table(con, [request, other])
            batch = con.execute("SELECT * FROM filters WHERE filter_id = 0").fetchall()
            types = con.execute("DESCRIBE filters").fetchall()
            create_filters_table(con, [request])
            assert con.execute("SELECT * FROM filters").fetchall() == batch
            assert con.execute("DESCRIBE filters").fetchall() == types
    finally:
        con.close()


# --- canonical request keys --------------------------------------------------------------

CONTRACT_KEY = (
    "end_date=2026-11-20T23:59:59.999999Z&exclude_system_users=true&group_ids=g1"
    "&start_date=2026-10-22T00:00:00.000000Z"
)


@pytest.mark.parametrize(
    "params",
    [
        {
            "group_ids": "g1",
            "start_date": "2026-10-22",
            "end_date": "2026-11-20",
            "exclude_system_users": True,
        },
        {
            "group_ids": " g1 ,g1,,",
            "start_date": "2026-10-22T02:00:00+02:00",
            "end_date": "2026-11-20T23:59:59.999999",
            "exclude_system_users": "true",
            "user_ids": "",
        },
        {
            "end_date": "2026-11-20T18:59:59.9999999-05:00",
            "start_date": "2026-10-22 00:00Z",
            "exclude_system_users": True,
            "group_ids": "g1",
            "user_emails": " , ",
        },
    ],
)
def test_contract_key_example(params: dict[str, object]) -> None:
    assert parse_request(params).key == CONTRACT_KEY


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({}, ""),
        ({"exclude_system_users": False, "start_date": "", "user_ids": ""}, ""),
        (
            {"user_emails": "B@X.com, a@x.com,b@x.com"},
            "user_emails=a%40x.com,b%40x.com",
        ),
        ({"user_ids": "u9, u10,U1,u9 "}, "user_ids=U1,u10,u9"),
        ({"user_ids": "a b,ä,x/y"}, "user_ids=a%20b,x%2Fy,%C3%A4"),
        ({"group_ids": "g:1,g-2,g_3,g.4,g~5"}, "group_ids=g-2,g.4,g:1,g_3,g~5"),
        (
            {"user_ids": "u1", "user_emails": "a+b@x.com", "group_ids": "g1"},
            "group_ids=g1&user_emails=a%2Bb%40x.com&user_ids=u1",
        ),
        ({"start_date": "2026-11-01"}, "start_date=2026-11-01T00:00:00.000000Z"),
        ({"end_date": "2026-11-01"}, "end_date=2026-11-01T23:59:59.999999Z"),
        (
            {"start_date": "2026-11-01T00:30:00.5+01:00"},
            "start_date=2026-10-31T23:30:00.500000Z",
        ),
    ],
)
def test_request_keys(params: dict[str, object], key: str) -> None:
    assert parse_request(params).key == key


def test_request_dates_are_naive_utc() -> None:
    request = parse_request({"start_date": "2026-11-01T01:00:00+01:00"})
    assert request.start_date == datetime(2026, 11, 1, 0, 0)


def test_filters_with_requests_file_are_refused(store: Path, tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text('{"scenario_id": "sc-a"}\n', encoding="utf-8")
    result = query("--snapshots", store, "--requests", path, "--group-ids", "g1")
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert "--requests" in result.stderr


# --- emails ------------------------------------------------------------------------------


def test_emails_match_their_own_text_whatever_the_script(tmp_path: Path) -> None:
    """An email in a request matches the same email in the exports, in any case.

    Python's str.lower and the SQL lower() differ on `İ` and a final `Σ`; the request
    side must lower-case the way the data side does.
    """
    exports = tmp_path / "exports"
    at = "2026-11-20T10:00:00Z"
    write_jsonl(
        exports / "sessions.jsonl",
        [
            session_record("1", "u1", "80", at, email="ΣΑΣ@X.COM"),
            session_record("2", "u2", "60", at, email="İpek@Acme.com"),
            session_record("3", "u3", "40", at, email="Ärger@Acme.com"),
        ],
    )
    run_snapshot(exports, tmp_path / "snapshots", LATEST)
    reader = SnapshotQuery(tmp_path / "snapshots")
    try:
        for emails, users in [
            ("ΣΑΣ@X.COM", 1),
            ("σασ@x.com", 1),
            ("İpek@Acme.com", 1),
            ("İPEK@ACME.COM", 1),
            ("ipek@acme.com", 1),
            ("ÄRGER@acme.COM, ärger@acme.com", 1),
            ("ΣΑΣ@X.COM,İpek@Acme.com,Ärger@Acme.com", 3),
        ]:
            body = loads(reader.answer("sc1", {"user_emails": emails}).body)
            assert body["participant_count"] == users, emails
    finally:
        reader.close()


# --- snapshot files ----------------------------------------------------------------------


def test_summary_json_paths_are_percent_encoded(tmp_path: Path) -> None:
    ids = {
        "a/b": "a%2Fb",
        "..": "%2E%2E",
        ".": "%2E",
        "é t": "%C3%A9%20t",
        "x%2F": "x%252F",
        "A-z_0.9~": "A-z_0.9~",
        "..x": "..x",
    }
    exports = tmp_path / "exports"
    write_jsonl(
        exports / "scenarios.jsonl", [{"id": i, "slug": f"slug{n}"} for n, i in enumerate(ids)]
    )
    at = "2026-11-20T10:00:00Z"
    write_jsonl(
        exports / "sessions.jsonl",
        [session_record(str(n), "u1", "80", at, scenario=i) for n, i in enumerate(ids)],
    )
    snapshot = run_snapshot(exports, tmp_path / "snapshots", LATEST)
    folder = snapshot / "api" / "scenarios"
    assert sorted(p.name for p in folder.iterdir()) == sorted(ids.values())
    reader = SnapshotQuery(tmp_path / "snapshots")
    try:
        for scenario_id, encoded in ids.items():
            text = (folder / encoded / "analytics" / "summary.json").read_text(encoding="utf-8")
            assert text == reader.answer(scenario_id, {}).body
            assert loads(text)["participant_count"] == 1
    finally:
        reader.close()
    written = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("summary.json"))
    assert all(p.startswith("api/scenarios/") for p in written)
    assert len(written) == len(ids)


# --- the materialized set ----------------------------------------------------------------


def test_materialized_requests_default_set() -> None:
    requests = materialized_requests(MaterializeSettings(), LATEST, ["g2", "g1", "G1"])
    keys = [r.key for r in requests]
    assert keys[0] == ""
    assert len(keys) == len(set(keys)) == 4 * 2 * 4
    assert "group_ids=G1" in keys
    week = next(r for r in requests if r.key.startswith("end_date") and not r.group_ids)
    assert week.end_date == datetime(2026, 11, 26, 23, 59, 59, 999999)
    starts = sorted({r.start_date for r in requests if r.start_date is not None})
    assert starts == [datetime(2026, 8, 29), datetime(2026, 10, 28), datetime(2026, 11, 20)]


def test_materialized_requests_from_a_job_file() -> None:
    spec = MaterializeSettings(
        audiences=["each_group"],
        system_users=["exclude"],
        windows=[1],
        requests=[
            ExtraRequest(user_emails="B@x.com,a@x.com"),
            ExtraRequest(user_emails="a@x.com, b@X.com"),  # the same request
            ExtraRequest(group_ids="g1", start_date="2026-11-26", end_date="2026-11-26",
                         exclude_system_users=True),  # the same as a group window
        ],
    )  # fmt: skip
    keys = [r.key for r in materialized_requests(spec, LATEST, ["g1"])]
    assert keys == [
        "",
        "end_date=2026-11-26T23:59:59.999999Z&exclude_system_users=true&group_ids=g1"
        "&start_date=2026-11-26T00:00:00.000000Z",
        "user_emails=a%40x.com,b%40x.com",
    ]


def test_a_bad_request_in_a_job_file_is_a_usage_error(tmp_path: Path) -> None:
    """Found when the job file is read, before any export is: exit 2 naming the key."""
    job = tmp_path / "job.toml"
    job.write_text('[[materialize.requests]]\nstart_date = "2026-02-30"\n')
    with pytest.raises(InvalidUsageError, match=r"materialize.requests: .*#1.*invalid_date"):
        load_job(job)


# --- text that is not valid Unicode --------------------------------------------------------


def test_arguments_that_are_not_utf8(store: Path) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates; they must not crash."""
    result = query("--snapshots", store, "\udcff")
    error = assert_error(result, ExitCode.NOT_FOUND, "scenario_not_found")
    assert error["message"] == "Scenario not found: \\udcff"
    result = query("--snapshots", store, "sc-a", "--user-emails", "a\udcff@x.com")
    assert_error(result, ExitCode.USAGE, "invalid_parameter")
    result = query("--snapshots", store, "sc-a", "--end-date", "2026-11-01\udcff")
    assert_error(result, ExitCode.USAGE, "invalid_date")


def test_requests_with_lone_surrogate_escapes(store: Path, tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(
        '{"scenario_id": "\\ud800"}\n'
        '{"scenario_id": "sc-a", "group_ids": "g1,\\udcff"}\n'
        '{"scenario_id": "sc-a", "\\udcff": 1}\n'
        '{"scenario_id": "sc-a"}\n',
        encoding="utf-8",
    )
    result = query("--snapshots", store, "--requests", path)
    assert result.exit_code == 0, result.stderr
    out = [loads(line) for line in result.stdout.splitlines()]
    assert [b.get("error", {}).get("code") for b in out] == [
        "scenario_not_found",
        "invalid_parameter",
        "invalid_parameter",
        None,
    ]


# --- slugs and names of scenarios ----------------------------------------------------------


def test_slug_and_name_sources(tmp_path: Path) -> None:
    """From the scenarios export if it has them, else the latest session that has them."""
    exports = tmp_path / "exports"
    write_jsonl(
        exports / "scenarios.jsonl",
        [
            {"id": "exp", "slug": "from-export", "name": "From export"},
            {"id": "blank", "slug": " \t", "name": ""},
            {"id": "none"},
            {"id": "pad", "slug": " padded\t", "name": " Padded "},
        ],
    )

    def rec(id: str, scenario: str, slug: str | None, at: str) -> dict[str, Any]:
        return session_record(id, "u1", "80", at, scenario=scenario, slug=slug, name=slug)

    write_jsonl(
        exports / "sessions.jsonl",
        [
            rec("1", "exp", "from-session", "2026-11-20T10:00:00Z"),
            rec("2", "blank", "older", "2026-11-20T10:00:00Z"),
            rec("3", "blank", "newer", "2026-11-21T10:00:00Z"),
            rec("4", "none", "tie-a", "2026-11-21T10:00:00Z"),
            rec("5", "none", "tie-b", "2026-11-21T10:00:00Z"),  # same time, higher id
            rec("6", "none", None, "2026-11-22T10:00:00Z"),  # has no slug
            rec("7", "late", "late-old", "2026-11-20T10:00:00Z"),
            rec("8", "late", "late-new", "2026-11-30T10:00:00Z"),  # after the as-of day
            rec("9", "spaced", "\tspaced-out ", "2026-11-20T10:00:00Z"),
        ],
    )
    run_snapshot(exports, tmp_path / "snapshots", LATEST)
    reader = SnapshotQuery(tmp_path / "snapshots")
    try:
        rows = reader.con.execute("SELECT scenario_id, slug, name FROM scenario_index").fetchall()
        assert sorted(rows) == [
            ("blank", "newer", "newer"),
            ("exp", "from-export", "From export"),
            ("late", "late-new", "late-new"),  # all sessions count, as for emails
            ("none", "tie-b", "tie-b"),
            ("pad", "padded", "Padded"),
            ("spaced", "spaced-out", "spaced-out"),
        ]
        assert reader.resolve("newer") == "blank"
        assert reader.resolve("from-session") is None
    finally:
        reader.close()
