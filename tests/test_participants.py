"""The participants endpoint, GET /scenarios/{id}/analytics/participants, from a snapshot:
values worked out by hand on the summary example (tests/data/summary-example/README.md),
golden bodies, sorting, paging edges, errors, and the `query` command's options.

The reference model comparison (random exports, every sorting and page) is in
tests/test_properties.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers_summary import assert_golden, loads, run_snapshot, session_record, write_jsonl

from scenario_analytics.cli import main
from scenario_analytics.errors import ExitCode
from scenario_analytics.filters import SORTINGS, RequestError, parse_participants_request
from scenario_analytics.serve.query import SnapshotQuery

EXAMPLE_EXPORTS = Path(__file__).resolve().parent / "data" / "summary-example" / "exports"
AS_OF = date(2026, 11, 26)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    snapshots = tmp_path_factory.mktemp("participants") / "snapshots"
    run_snapshot(EXAMPLE_EXPORTS, snapshots, AS_OF)
    return snapshots


@pytest.fixture(scope="module")
def reader(store: Path) -> Iterator[SnapshotQuery]:
    query = SnapshotQuery(store)
    yield query
    query.close()


def page(reader: SnapshotQuery, scenario: str, **params: object) -> dict[str, Any]:
    answer = reader.participants(scenario, params)
    assert answer.exit_code == ExitCode.OK, answer.body
    body: dict[str, Any] = loads(answer.body)
    return body


def user(uid: str, email: str, first: str | None, last: str | None) -> dict[str, Any]:
    return {"id": uid, "email": email, "first_name": first, "last_name": last}


def entry(
    who: dict[str, Any],
    count: int,
    first: str,
    first_rank: str,
    best: str,
    best_rank: str,
    lift: str,
    duration: str,
) -> dict[str, Any]:
    return {
        "user": who,
        "session_count": count,
        "first_score": loads(first),
        "first_rank": first_rank,
        "best_score": loads(best),
        "best_rank": best_rank,
        "lift_percentage": loads(lift),
        "total_duration_seconds": loads(duration),
    }


# By hand, from the summary example's README: names from members.csv (u4 is no member and
# its sessions carry no names); u4's 70.05 rounds to 70.1 and stays bronze.
ALICE = entry(user("u1", "alice@acme.com", "Alice", "A"), 2, "60.0", "bronze", "80.0",
              "silver", "20.0", "900.0")  # fmt: skip
BOB = entry(user("u2", "bob@acme.com", "Bob", "B"), 1, "92.5", "gold", "92.5", "gold", "0.0",
            "0.0")  # fmt: skip
CAROL = entry(user("u3", "carol@exec.com", "Carol", "C"), 1, "45.0", "unranked", "45.0",
              "unranked", "0.0", "120.0")  # fmt: skip
DAN = entry(user("u4", "dan@acme.com", None, None), 1, "70.1", "bronze", "70.1", "bronze",
            "0.0", "90.5")  # fmt: skip


def pagination(page_no: int, size: int, total: int, pages: int) -> dict[str, int]:
    return {"page": page_no, "page_size": size, "total_count": total, "total_pages": pages}


def test_unfiltered_page_by_hand(reader: SnapshotQuery) -> None:
    body = page(reader, "sc-a")
    assert list(body) == ["data", "pagination"]
    assert body["data"] == [BOB, ALICE, DAN, CAROL]  # -best_score: 92.5, 80, 70.05, 45
    assert body["pagination"] == pagination(1, 20, 4, 1)
    assert list(body["data"][0]) == [
        "user",
        "session_count",
        "first_score",
        "first_rank",
        "best_score",
        "best_rank",
        "lift_percentage",
        "total_duration_seconds",
    ]
    answer = reader.participants("negotiation", {})
    assert_golden("participants-example.unfiltered.json", answer.body)


def test_filtered_page_is_computed_from_the_sessions(reader: SnapshotQuery) -> None:
    body = page(reader, "sc-a", group_ids="g1", sorting="first_score")
    assert body["data"] == [ALICE, BOB]
    assert body["pagination"] == pagination(1, 20, 2, 1)
    answer = reader.participants("sc-a", {"group_ids": "g1", "sorting": "first_score"})
    assert_golden("participants-example.group-g1-by-first-score.json", answer.body)
    window = page(reader, "sc-a", start_date="2026-11-15", end_date="2026-11-25")
    # Only s02 of u1 (80, 600 s) and s04 of u3 (45, 120 s) are in the window.
    assert [e["user"]["id"] for e in window["data"]] == ["u1", "u3"]
    assert window["data"][0]["first_score"] == loads("80.0")
    assert window["data"][0]["total_duration_seconds"] == loads("600.0")
    excluded = page(reader, "sc-a", exclude_system_users="true")
    assert [e["user"]["id"] for e in excluded["data"]] == ["u2", "u1", "u4"]


@pytest.mark.parametrize(
    ("sorting", "order"),
    [
        ("best_score", ["u3", "u4", "u1", "u2"]),
        ("-best_score", ["u2", "u1", "u4", "u3"]),
        ("first_score", ["u3", "u1", "u4", "u2"]),
        ("-first_score", ["u2", "u4", "u1", "u3"]),
        # lift 20 for u1, 0 for the others: ties by user id ascending, either direction.
        ("lift_percentage", ["u2", "u3", "u4", "u1"]),
        ("-lift_percentage", ["u1", "u2", "u3", "u4"]),
        ("total_duration_seconds", ["u2", "u4", "u3", "u1"]),
        ("-total_duration_seconds", ["u1", "u3", "u4", "u2"]),
        ("session_count", ["u2", "u3", "u4", "u1"]),
        ("-session_count", ["u1", "u2", "u3", "u4"]),
    ],
)
def test_every_sorting(reader: SnapshotQuery, sorting: str, order: list[str]) -> None:
    assert sorting in SORTINGS
    for params in ({}, {"start_date": "2000-01-01"}):  # precomputed, then computed
        body = page(reader, "sc-a", sorting=sorting, **params)
        assert [e["user"]["id"] for e in body["data"]] == order, params


def test_paging_edges(reader: SnapshotQuery) -> None:
    first = page(reader, "sc-a", page_size=3)
    assert [e["user"]["id"] for e in first["data"]] == ["u2", "u1", "u4"]
    assert first["pagination"] == pagination(1, 3, 4, 2)
    second = page(reader, "sc-a", page=2, page_size="3")
    assert second["data"] == [CAROL]
    assert second["pagination"] == pagination(2, 3, 4, 2)
    past = page(reader, "sc-a", page=3, page_size=3)
    assert past == {"data": [], "pagination": pagination(3, 3, 4, 2)}
    far = page(reader, "sc-a", page=2**31 - 1, page_size=100)
    assert far == {"data": [], "pagination": pagination(2**31 - 1, 100, 4, 1)}
    one = page(reader, "sc-a", page_size=1, page=4)
    assert one["data"] == [CAROL] and one["pagination"]["total_pages"] == 4
    # Empty values are the defaults, as for the dates; white space around digits is fine.
    assert page(reader, "sc-a", page="", page_size=" 20 ", sorting="") == page(reader, "sc-a")


def test_a_scenario_without_participants(reader: SnapshotQuery) -> None:
    body = page(reader, "cold-call")
    assert body == {"data": [], "pagination": pagination(1, 20, 0, 0)}
    assert page(reader, "sc-a", user_ids="nobody") == body


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"sorting": "best"}, "invalid_parameter"),
        ({"sorting": "+best_score"}, "invalid_parameter"),
        ({"sorting": "--best_score"}, "invalid_parameter"),
        ({"sorting": "BEST_SCORE"}, "invalid_parameter"),
        ({"sorting": 3}, "invalid_parameter"),
        ({"page": "0"}, "invalid_parameter"),
        ({"page": 0}, "invalid_parameter"),
        ({"page": "-1"}, "invalid_parameter"),
        ({"page": "1.0"}, "invalid_parameter"),
        ({"page": "1e3"}, "invalid_parameter"),
        ({"page": "٣"}, "invalid_parameter"),  # a digit, but not an ASCII one
        ({"page": str(2**31)}, "invalid_parameter"),
        ({"page": "9" * 400}, "invalid_parameter"),
        ({"page": True}, "invalid_parameter"),
        ({"page": 1.5}, "invalid_parameter"),
        ({"page_size": "0"}, "invalid_parameter"),
        ({"page_size": "101"}, "invalid_parameter"),
        ({"page_size": "ten"}, "invalid_parameter"),
        ({"per_page": "10"}, "invalid_parameter"),
        ({"start_date": "yesterday", "sorting": "x"}, "invalid_date"),  # filters first
        ({"start_date": "2026-11-20", "end_date": "2026-11-01"}, "invalid_date_range"),
    ],
)
def test_invalid_parameters(reader: SnapshotQuery, params: dict[str, object], code: str) -> None:
    answer = reader.participants("sc-a", params)
    assert answer.exit_code == ExitCode.USAGE
    error = loads(answer.body)["error"]
    assert (error["type"], error["code"]) == ("invalid_request", code)
    with pytest.raises(RequestError):
        parse_participants_request(params)


def test_parameters_are_checked_before_the_lookup(reader: SnapshotQuery) -> None:
    assert loads(reader.participants("nope", {"page": "0"}).body)["error"]["code"] == (
        "invalid_parameter"
    )
    answer = reader.participants("nope", {})
    assert answer.exit_code == ExitCode.NOT_FOUND
    assert loads(answer.body)["error"]["message"] == "Scenario not found: nope"


def test_ranks_come_from_the_exact_scores(tmp_path: Path) -> None:
    """89.96 rounds to 90.0 but is silver; 49.95 rounds to 50.0 but is unranked: counting
    best ranks gives the summary's distribution, which is over exact scores too."""
    at = "2026-11-02T10:00:00Z"
    write_jsonl(
        tmp_path / "exports" / "sessions" / "a.jsonl",
        [
            session_record("a", "u1", "49.95", at, first_name="Ann", last_name="Lee"),
            session_record("b", "u1", "89.96", "2026-11-03T10:00:00Z"),
            session_record("c", "u2", "49.95", at, email="x@acme.com", duration="0.05"),
        ],
    )
    run_snapshot(tmp_path / "exports", tmp_path / "snapshots", AS_OF)
    with SnapshotQuery(tmp_path / "snapshots") as reader:
        body = page(reader, "sc1")
        summary = loads(reader.answer("sc1", {}).body)
    u1, u2 = body["data"]
    assert (u1["first_score"], u1["first_rank"]) == (loads("50.0"), "unranked")
    assert (u1["best_score"], u1["best_rank"]) == (loads("90.0"), "silver")
    assert u1["lift_percentage"] == loads("40.0")  # 40.01, rounded
    assert u1["user"] == user("u1", None, "Ann", "Lee")  # type: ignore[arg-type]
    assert u2["total_duration_seconds"] == loads("0.1")  # 0.05, half away from zero
    counts = {d["rank"]: d["count"] for d in summary["score_distribution"]}
    assert counts == {"gold": 0, "silver": 1, "bronze": 0, "unranked": 1}


# --- the command line --------------------------------------------------------------------


def query(*args: str | Path, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["query", *map(str, args)], input=input)


def test_query_participants_on_the_command_line(store: Path, reader: SnapshotQuery) -> None:
    options = ["--sorting", "-lift_percentage", "--page", "1", "--page-size", "2"]
    result = query("--snapshots", store, "negotiation", "--participants", *options,
                   "--group-ids", "g1")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    expected = reader.participants(
        "sc-a", {"sorting": "-lift_percentage", "page": "1", "page_size": "2", "group_ids": "g1"}
    )
    assert result.stdout == expected.body + "\n"
    assert [e["user"]["id"] for e in loads(result.stdout)["data"]] == ["u1", "u2"]


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["sc-a", "--participants", "--page-size", "101"], 2, "invalid_parameter"),
        (["sc-a", "--participants", "--sorting", "name"], 2, "invalid_parameter"),
        (["nope", "--participants"], 3, "scenario_not_found"),
    ],
)
def test_query_participants_errors(
    store: Path, args: list[str], exit_code: int, message: str
) -> None:
    result = query("--snapshots", store, *args)
    assert result.exit_code == exit_code
    assert loads(result.stdout)["error"]["code"] == message
    (line,) = result.stderr.splitlines()
    assert line.startswith("scenario-analytics: error: ") and message in line


@pytest.mark.parametrize(
    "args",
    [
        ["sc-a", "--page", "2"],
        ["sc-a", "--sorting", "best_score"],
        ["--requests", "-", "--participants"],
        ["--requests", "-", "--page-size", "5"],
    ],
)
def test_paging_options_need_participants_and_a_scenario(store: Path, args: list[str]) -> None:
    result = query("--snapshots", store, *args, input="")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--participants" in result.stderr or "--requests" in result.stderr


def test_requests_file_with_both_endpoints(store: Path, reader: SnapshotQuery) -> None:
    lines = [
        '{"scenario_id": "sc-a"}',
        '{"scenario_id": "sc-a", "endpoint": "participants", "page_size": 2, "page": 2}',
        '{"scenario_id": "sc-a", "endpoint": "summary", "group_ids": "g1"}',
        '{"scenario_id": "sc-a", "endpoint": "participants", "sorting": "nope"}',
        '{"scenario_id": "sc-a", "endpoint": "people"}',
        '{"scenario_id": "sc-a", "page": 2}',
    ]
    result = query("--snapshots", store, "--requests", "-", input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.stderr
    bodies = result.stdout.splitlines()
    assert bodies[0] == reader.answer("sc-a", {}).body
    assert bodies[1] == reader.participants("sc-a", {"page_size": 2, "page": 2}).body
    assert loads(bodies[1])["data"] == [DAN, CAROL]
    assert bodies[2] == reader.answer("sc-a", {"group_ids": "g1"}).body
    assert loads(bodies[3])["error"]["code"] == "invalid_parameter"
    assert "line 5" in loads(bodies[4])["error"]["message"]
    # `page` is not a summary parameter.
    assert "unknown parameter" in loads(bodies[5])["error"]["message"]
