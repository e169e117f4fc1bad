"""Exact rounding and the edges of the summary (contract section 2), on handmade sessions.

One export holds one scenario per case, so the job runs once for the whole module. Every
case is checked against figures worked out by hand and against the reference model.
Several cases are chosen where binary floating point (or Python's round-half-even) gives
a different answer: 60.05 -> 60.1, 70.05 -> 70.1, 1.25 -> 1.3, 742.5 -> 743, 0.15 -> 0.2.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from helpers_summary import (
    BODY_FIELDS,
    empty_body,
    loads,
    run_snapshot,
    session_record,
    write_exports,
)
from reference_model import Member, Request, Session, summary

from scenario_analytics.errors import ExitCode
from scenario_analytics.serve.query import SnapshotQuery

AS_OF = date(2026, 3, 31)
T = "2026-03-10T09:00:00Z"


class Cases:
    """Sessions per scenario; session ids are `<scenario>/<n>` unless a case needs its own."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add(
        self,
        scenario: str,
        user: str,
        score: str,
        created_at: str = T,
        *,
        duration: str | None = None,
        id: str | None = None,
        valid: bool = True,
    ) -> None:
        self.records.append(
            session_record(
                id or f"{scenario}/{len(self.records):04d}",
                user,
                score,
                created_at,
                scenario=scenario,
                slug=scenario,
                duration=duration,
                valid=valid,
            )
        )


def build_cases() -> Cases:
    c = Cases()
    # Means exactly at x.x5 round up: (60.0 + 60.1) / 2 = 60.05 -> 60.1 (float: 60.0).
    c.add("mean-60.05", "a", "60.0")
    c.add("mean-60.05", "b", "60.1")
    c.add("mean-70.15", "a", "70.1")
    c.add("mean-70.15", "b", "70.2")
    for user in ("a", "b", "c"):
        c.add("mean-70.05-x3", user, "70.05")
    # Lift: first 50 -> best 50.1 and first 50 -> best 50.2: lifts 0.1 and 0.2 -> 0.15 -> 0.2.
    c.add("lift-0.15", "a", "50", "2026-03-01T09:00:00Z")
    c.add("lift-0.15", "a", "50.1", "2026-03-02T09:00:00Z")
    c.add("lift-0.15", "b", "50", "2026-03-01T09:00:00Z")
    c.add("lift-0.15", "b", "50.2", "2026-03-02T09:00:00Z")
    # The rank comes from the ROUNDED average; the distribution from each best score.
    c.add("rank-74.99", "a", "74.99")  # 75.0 silver; distribution: bronze
    c.add("rank-74.94", "a", "74.94")  # 74.9 bronze
    c.add("rank-75", "a", "75")  # silver, distribution silver
    c.add("rank-89.95", "a", "89.95")  # 90.0 gold; distribution silver
    c.add("rank-49.95", "a", "49.95")  # 50.0 bronze; distribution unranked
    c.add("rank-49.9999", "a", "49.9999")  # 50.0 bronze; distribution unranked
    c.add("rank-mixed", "a", "90")  # 90 gold, 89.99 silver -> 89.995 -> 90.0 gold
    c.add("rank-mixed", "b", "89.99")
    # Percentages: 1/80 = 1.25 -> 1.3, 2/80 = 2.5, 7/80 = 8.75 -> 8.8, 70/80 = 87.5.
    for i in range(80):
        score = "95" if i < 1 else "80" if i < 3 else "60" if i < 10 else "10"
        c.add("pct-of-80", f"user{i:02d}", score)
    # 2/3 = 66.666... -> 66.7, 1/3 -> 33.3.
    c.add("pct-of-3", "a", "90")
    c.add("pct-of-3", "b", "99.5")
    c.add("pct-of-3", "c", "12")
    # Minutes: 44550 s = 742.5 min -> 743; 44549.999999 s -> 742.
    c.add("minutes-742.5", "a", "80", duration="44550")
    c.add("minutes-742.49", "a", "80", duration="44549.999999")
    # Durations: mean over the sessions that have one: (10.1 + 10.2) / 2 = 10.15 -> 10.2.
    c.add("duration-nulls", "a", "80", "2026-03-01T09:00:00Z", duration="10.1")
    c.add("duration-nulls", "a", "81", "2026-03-02T09:00:00Z")
    c.add("duration-nulls", "b", "82", duration="10.2")
    c.add("duration-nulls", "c", "83")
    c.add("duration-none", "a", "80")
    c.add("duration-none", "b", "70")
    # First score: the earliest session; a tie on created_at goes to the smallest id in
    # byte order ("10" < "9", "B" < "a"), whatever the offset the time was written with.
    c.add("first-tie", "a", "90", "2026-03-01T10:00:00+01:00", id="9")
    c.add("first-tie", "a", "50", "2026-03-01T09:00:00Z", id="10")
    c.add("first-tie", "b", "60", "2026-03-01T09:00:00Z", id="a")
    c.add("first-tie", "b", "80", "2026-03-01T09:00:00.000000Z", id="B")
    # Only the as-of day counts; an invalid attempt is not graded.
    c.add("cutoff", "a", "70", "2026-03-31T23:59:59.999999Z")
    c.add("cutoff", "a", "99", "2026-04-01T00:00:00Z")
    c.add("cutoff", "b", "99", "2026-03-31T20:00:00-04:00")  # 2026-04-01T00:00Z
    c.add("cutoff", "a", "100", valid=False)
    return c


CASES = build_cases()
SCENARIOS_EXPORT = [{"id": "empty", "slug": "empty", "name": "Only in the scenarios export"}]


def dist(*counts_and_pcts: tuple[int, str]) -> list[dict[str, Any]]:
    return [
        {"rank": name, "count": count, "percentage": Decimal(pct)}
        for name, (count, pct) in zip(
            ("gold", "silver", "bronze", "unranked"), counts_and_pcts, strict=True
        )
    ]


def one(rank: str) -> list[dict[str, Any]]:
    return [
        {"rank": r, "count": int(r == rank), "percentage": Decimal(100 if r == rank else 0)}
        for r in ("gold", "silver", "bronze", "unranked")
    ]


def expect(**figures: Any) -> dict[str, Any]:
    body = empty_body()
    for key, value in figures.items():
        body[key] = Decimal(value) if isinstance(value, str) and value[0].isdigit() else value
    return body


EXPECTED: dict[str, dict[str, Any]] = {
    "mean-60.05": expect(
        participant_count=2,
        total_sessions=2,
        average_best_score="60.1",
        average_best_rank="bronze",
        score_distribution=dist((0, "0"), (0, "0"), (2, "100"), (0, "0")),
    ),
    "mean-70.15": expect(
        participant_count=2,
        total_sessions=2,
        average_best_score="70.2",
        average_best_rank="bronze",
        score_distribution=dist((0, "0"), (0, "0"), (2, "100"), (0, "0")),
    ),
    "mean-70.05-x3": expect(
        participant_count=3,
        total_sessions=3,
        average_best_score="70.1",
        average_best_rank="bronze",
        score_distribution=dist((0, "0"), (0, "0"), (3, "100"), (0, "0")),
    ),
    "lift-0.15": expect(
        participant_count=2,
        total_sessions=4,
        average_best_score="50.2",  # (50.1 + 50.2) / 2 = 50.15
        average_best_rank="bronze",
        average_lift_percentage="0.2",
        score_distribution=dist((0, "0"), (0, "0"), (2, "100"), (0, "0")),
    ),
    "rank-74.99": expect(
        participant_count=1,
        total_sessions=1,
        average_best_score="75.0",
        average_best_rank="silver",
        score_distribution=one("bronze"),
    ),
    "rank-74.94": expect(
        participant_count=1,
        total_sessions=1,
        average_best_score="74.9",
        average_best_rank="bronze",
        score_distribution=one("bronze"),
    ),
    "rank-75": expect(
        participant_count=1,
        total_sessions=1,
        average_best_score="75",
        average_best_rank="silver",
        score_distribution=one("silver"),
    ),
    "rank-89.95": expect(
        participant_count=1,
        total_sessions=1,
        average_best_score="90.0",
        average_best_rank="gold",
        score_distribution=one("silver"),
    ),
    "rank-49.95": expect(
        participant_count=1,
        total_sessions=1,
        average_best_score="50.0",
        average_best_rank="bronze",
        score_distribution=one("unranked"),
    ),
    "rank-49.9999": expect(
        participant_count=1,
        total_sessions=1,
        average_best_score="50.0",
        average_best_rank="bronze",
        score_distribution=one("unranked"),
    ),
    "rank-mixed": expect(
        participant_count=2,
        total_sessions=2,
        average_best_score="90.0",
        average_best_rank="gold",
        score_distribution=dist((1, "50"), (1, "50"), (0, "0"), (0, "0")),
    ),
    "pct-of-80": expect(
        participant_count=80,
        total_sessions=80,
        # (95 + 2 * 80 + 7 * 60 + 70 * 10) / 80 = 1375 / 80 = 17.1875
        average_best_score="17.2",
        average_best_rank="unranked",
        score_distribution=dist((1, "1.3"), (2, "2.5"), (7, "8.8"), (70, "87.5")),
    ),
    "pct-of-3": expect(
        participant_count=3,
        total_sessions=3,
        average_best_score="67.2",  # 201.5 / 3 = 67.1666...
        average_best_rank="bronze",
        score_distribution=dist((2, "66.7"), (0, "0"), (0, "0"), (1, "33.3")),
    ),
    "minutes-742.5": expect(
        participant_count=1,
        total_sessions=1,
        average_best_score="80",
        average_best_rank="silver",
        total_practice_minutes=743,
        average_session_duration_seconds="44550",
        score_distribution=one("silver"),
    ),
    "minutes-742.49": expect(
        participant_count=1,
        total_sessions=1,
        average_best_score="80",
        average_best_rank="silver",
        total_practice_minutes=742,
        average_session_duration_seconds="44550.0",  # 44549.999999 -> 1 decimal
        score_distribution=one("silver"),
    ),
    "duration-nulls": expect(
        participant_count=3,
        total_sessions=4,
        average_best_score="82.0",  # (81 + 82 + 83) / 3
        average_best_rank="silver",
        average_lift_percentage="0.3",  # a: 80 -> 81, lift 1; 1 / 3 = 0.333...
        total_practice_minutes=0,  # 20.3 s
        average_session_duration_seconds="10.2",
        score_distribution=dist((0, "0"), (3, "100"), (0, "0"), (0, "0")),
    ),
    "duration-none": expect(
        participant_count=2,
        total_sessions=2,
        average_best_score="75",
        average_best_rank="silver",
        score_distribution=dist((0, "0"), (1, "50"), (1, "50"), (0, "0")),
    ),
    "first-tie": expect(
        participant_count=2,
        total_sessions=4,
        average_best_score="85",  # a: best 90, b: best 80
        average_best_rank="silver",
        # a: first is id "10" (50) -> lift 40; b: first is id "B" (80) -> lift 0.
        average_lift_percentage="20",
        score_distribution=dist((1, "50"), (1, "50"), (0, "0"), (0, "0")),
    ),
    "cutoff": expect(
        participant_count=1,
        total_sessions=1,
        average_best_score="70",
        average_best_rank="bronze",
        score_distribution=one("bronze"),
    ),
    "empty": empty_body(),
}


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnapshotQuery]:
    root = tmp_path_factory.mktemp("rounding")
    write_exports(root / "exports", CASES.records, scenarios=SCENARIOS_EXPORT)
    run_snapshot(root / "exports", root / "snapshots", AS_OF)
    query = SnapshotQuery(root / "snapshots")
    yield query
    query.close()


def model_sessions() -> list[Session]:
    sessions = []
    for r in CASES.records:
        text = r["created_at"].replace("Z", "+00:00")
        sessions.append(
            Session(
                id=r["id"],
                user_id=r["user"]["id"],
                scenario_id=r["scenario"]["id"],
                created_at=datetime.fromisoformat(text).astimezone(UTC),
                is_valid_attempt=r["is_valid_attempt"],
                score=r["score"],
                duration_seconds=r["duration_seconds"],
            )
        )
    return sessions


def test_every_case_has_expectations() -> None:
    scenarios = {r["scenario"]["id"] for r in CASES.records} | {"empty"}
    assert scenarios == set(EXPECTED)


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_rounding_case(scenario: str, reader: SnapshotQuery) -> None:
    answer = reader.answer(scenario, {})
    assert answer.exit_code == ExitCode.OK, answer.body
    got = loads(answer.body)
    assert list(got) == BODY_FIELDS
    assert got == EXPECTED[scenario]
    members: list[Member] = []
    model = summary(scenario, model_sessions(), members, [], Request(), AS_OF)
    assert got == model


@pytest.mark.parametrize("scenario", ["pct-of-80", "first-tie", "duration-nulls", "empty"])
def test_compute_path_rounds_the_same(scenario: str, reader: SnapshotQuery) -> None:
    """A filter that keeps everyone but is not materialized runs the SQL on the snapshot."""
    answer = reader.answer(scenario, {"start_date": "2000-01-01"})
    assert answer.exit_code == ExitCode.OK, answer.body
    assert loads(answer.body) == EXPECTED[scenario]
    assert answer.body == reader.answer(scenario, {}).body


def test_numbers_are_written_as_json_numbers(reader: SnapshotQuery) -> None:
    text = reader.answer("pct-of-80", {}).body
    assert '"percentage":1.3' in text
    assert '"average_best_score":17.2' in text
    assert '"total_practice_minutes":0' in text


def test_first_score_tie_in_participants_table(reader: SnapshotQuery) -> None:
    rows = reader.con.execute(
        """SELECT user_id, first_score, best_score, lift FROM read_parquet($p)
           WHERE scenario_id = 'first-tie' ORDER BY user_id""",
        {"p": str(reader.table("participants"))},
    ).fetchall()
    assert rows == [
        ("a", Decimal("50"), Decimal("90"), Decimal("40")),
        ("b", Decimal("80"), Decimal("80"), Decimal("0")),
    ]
