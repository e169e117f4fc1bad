"""Golden files: response bodies whose bytes are the contract.

Each body is checked twice: by value against figures worked out by hand (or the API
reference example's `expected.json`), and byte for byte against a committed golden file
in `tests/data/golden/`. To regenerate the golden files on purpose:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py

then review `git diff tests/data/golden` (the by-value checks still run while updating).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers_summary import (
    BODY_FIELDS,
    ENGINES,
    assert_golden,
    empty_body,
    loads,
    run_snapshot,
    summary_json_path,
)
from reference_model import REFERENCE_EXAMPLE_DIR

from scenario_analytics.errors import ExitCode
from scenario_analytics.serve.query import SnapshotQuery

DATA = Path(__file__).resolve().parent / "data"
REFERENCE_SCENARIO = "7d3c2b1a-0000-4000-8000-000000000001"
EXAMPLE_EXPORTS = DATA / "summary-example" / "exports"
EXAMPLE_AS_OF = date(2026, 11, 26)


def dist(gold: tuple[int, str], silver: tuple[int, str], bronze: tuple[int, str],
         unranked: tuple[int, str]) -> list[dict[str, Any]]:  # fmt: skip
    return [
        {"rank": name, "count": count, "percentage": Decimal(pct)}
        for name, (count, pct) in zip(
            ("gold", "silver", "bronze", "unranked"), (gold, silver, bronze, unranked), strict=True
        )
    ]


def body(
    participants: int,
    sessions: int,
    best: str,
    rank: str,
    lift: str,
    minutes: int,
    duration: str,
    distribution: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "participant_count": participants,
        "total_sessions": sessions,
        "average_best_score": Decimal(best),
        "average_best_rank": rank,
        "average_lift_percentage": Decimal(lift),
        "total_practice_minutes": minutes,
        "average_session_duration_seconds": Decimal(duration),
        "score_distribution": distribution,
    }


# --- the API reference example -------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_reference_example_summary_json(tmp_path: Path, engine: str) -> None:
    snapshot = run_snapshot(
        REFERENCE_EXAMPLE_DIR / "exports", tmp_path / "snapshots", date(2026, 3, 31), engine=engine
    )
    text = summary_json_path(snapshot, REFERENCE_SCENARIO).read_text(encoding="utf-8")
    expected = loads((REFERENCE_EXAMPLE_DIR / "expected.json").read_text(encoding="utf-8"))
    got = loads(text)
    assert got == expected  # by value: 40 == 40.0, 348 == 348.0
    assert list(got) == BODY_FIELDS
    assert [d["rank"] for d in got["score_distribution"]] == [
        "gold",
        "silver",
        "bronze",
        "unranked",
    ]
    assert_golden("reference-example.summary.json", text)
    # The query command answers the same bytes, by id and by slug.
    reader = SnapshotQuery(tmp_path / "snapshots")
    try:
        for scenario in (REFERENCE_SCENARIO, "procurement-discovery"):
            answer = reader.answer(scenario, {})
            assert answer.exit_code == ExitCode.OK
            assert answer.body == text
    finally:
        reader.close()


# --- a small handmade export (tests/data/summary-example) ------------------------------


_EXAMPLE_STORES: dict[str, Path] = {}


@pytest.fixture(scope="module", params=list(ENGINES))
def example_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's store, built by each engine in turn (every test below runs on both);
    once per test process, whichever order the workers run the tests in."""
    engine = str(request.param)
    if engine not in _EXAMPLE_STORES:
        store = tmp_path_factory.mktemp(f"summary-example-{engine}") / "snapshots"
        run_snapshot(EXAMPLE_EXPORTS, store, EXAMPLE_AS_OF, engine=engine)
        _EXAMPLE_STORES[engine] = store
    return _EXAMPLE_STORES[engine]


@pytest.fixture(scope="module")
def reader(example_store: Path) -> Iterator[SnapshotQuery]:
    query = SnapshotQuery(example_store)
    yield query
    query.close()


EXAMPLE_CASES: dict[str, tuple[str, dict[str, object], dict[str, Any]]] = {
    "unfiltered": (
        "sc-a",
        {},
        body(
            4,
            5,
            "71.9",
            "bronze",
            "5.0",
            19,
            "277.6",
            dist((1, "25"), (1, "25"), (1, "25"), (1, "25")),
        ),
    ),
    "group-g1": (
        "sc-a",
        {"group_ids": "g1"},
        # u1: 60 -> 80 (900 s); u2: 92.5 (no duration). (80 + 92.5) / 2 = 86.25 -> 86.3.
        body(
            2,
            3,
            "86.3",
            "silver",
            "10.0",
            15,
            "450.0",
            dist((1, "50"), (1, "50"), (0, "0"), (0, "0")),
        ),
    ),
    "dates-nov-15-to-25": (
        "negotiation",
        {"start_date": "2026-11-15", "end_date": "2026-11-25"},
        # s02 (u1, 80, 600 s) and s04 (u3, 45, 120 s).
        body(
            2,
            2,
            "62.5",
            "bronze",
            "0.0",
            12,
            "360.0",
            dist((0, "0"), (1, "50"), (0, "0"), (1, "50")),
        ),
    ),
    "emails-without-system-users": (
        "sc-a",
        {"user_emails": " DAN@acme.com ,carol@EXEC.com,", "exclude_system_users": True},
        # u4 only: 70.05 -> 70.1; 90.5 s -> 2 minutes.
        body(
            1, 1, "70.1", "bronze", "0.0", 2, "90.5", dist((0, "0"), (0, "0"), (1, "100"), (0, "0"))
        ),
    ),
    "last-7-days-materialized": (
        "sc-a",
        {"start_date": "2026-11-20T00:00:00Z", "end_date": "2026-11-26"},
        # s02 (u1, 80), s04 (u3, 45), s05 (u4, 70.05): 195.05 / 3 = 65.0166...
        body(
            3,
            3,
            "65.0",
            "bronze",
            "0.0",
            14,
            "270.2",
            dist((0, "0"), (1, "33.3"), (1, "33.3"), (1, "33.3")),
        ),
    ),
    "empty-scenario": ("cold-call", {}, loads(json.dumps(empty_body()))),
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_CASES))
def test_example_bodies(name: str, reader: SnapshotQuery) -> None:
    scenario, params, expected = EXAMPLE_CASES[name]
    answer = reader.answer(scenario, params)
    assert answer.exit_code == ExitCode.OK, answer.body
    got = loads(answer.body)
    assert got == expected
    assert list(got) == BODY_FIELDS
    assert_golden(f"summary-example.{name}.json", answer.body)


def test_example_summary_json_files(example_store: Path, reader: SnapshotQuery) -> None:
    snapshot = example_store / "snapshot_date=2026-11-26"
    for scenario in ("sc-a", "sc-empty"):
        text = summary_json_path(snapshot, scenario).read_text(encoding="utf-8")
        assert text == reader.answer(scenario, {}).body
    assert_golden(
        "summary-example.unfiltered.json",
        summary_json_path(snapshot, "sc-a").read_text(encoding="utf-8"),
    )


ERROR_CASES: dict[str, tuple[str, dict[str, object], ExitCode, str, str]] = {
    "scenario_not_found": (
        "no-such-scenario",
        {"group_ids": "g1"},
        ExitCode.NOT_FOUND,
        "not_found",
        "Scenario not found: no-such-scenario",
    ),
    "invalid_date": (
        "sc-a",
        {"start_date": "2026-13-01"},
        ExitCode.USAGE,
        "invalid_request",
        "",
    ),
    "invalid_date_range": (
        "sc-a",
        {"start_date": "2026-11-20", "end_date": "2026-11-10"},
        ExitCode.USAGE,
        "invalid_request",
        "",
    ),
    "invalid_parameter": (
        "sc-a",
        {"user_id": "u1"},
        ExitCode.USAGE,
        "invalid_request",
        "",
    ),
}


@pytest.mark.parametrize("code", sorted(ERROR_CASES))
def test_error_bodies(code: str, reader: SnapshotQuery) -> None:
    scenario, params, exit_code, kind, message = ERROR_CASES[code]
    answer = reader.answer(scenario, params)
    assert answer.exit_code == exit_code
    error = loads(answer.body)
    assert list(error) == ["error"]
    assert list(error["error"]) == ["type", "code", "message"]
    assert error["error"]["type"] == kind
    assert error["error"]["code"] == code
    if message:
        assert error["error"]["message"] == message
    assert error["error"]["message"]
    assert_golden(f"error.{code}.json", answer.body)


def test_parameters_are_checked_before_the_lookup(reader: SnapshotQuery) -> None:
    answer = reader.answer("no-such-scenario", {"start_date": "yesterday"})
    assert answer.exit_code == ExitCode.USAGE
    assert loads(answer.body)["error"]["code"] == "invalid_date"
