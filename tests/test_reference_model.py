"""Tests of the pure-Python reference model of the summary (CONTRACT.md, section 2)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_model import (
    REFERENCE_EXAMPLE_DIR,
    Member,
    Request,
    Session,
    is_system_email,
    load_reference_example,
    participants,
    rank,
    round0,
    round1,
    summary,
    user_emails,
)

SCENARIO = "sc1"
AS_OF = date(2026, 3, 31)
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NO_FILTER = Request()
D = Decimal


def sess(
    id: str,
    user: str,
    score: str | None = "80",
    at: datetime = T0,
    *,
    scenario: str = SCENARIO,
    valid: bool = True,
    duration: str | None = None,
    email: str | None = None,
) -> Session:
    return Session(
        id=id,
        user_id=user,
        scenario_id=scenario,
        created_at=at,
        is_valid_attempt=valid,
        score=None if score is None else D(score),
        duration_seconds=None if duration is None else D(duration),
        email=email,
    )


def body(
    sessions: list[Session],
    request: Request = NO_FILTER,
    *,
    members: list[Member] | None = None,
    memberships: list[tuple[str, str]] | None = None,
    as_of: date = AS_OF,
) -> dict[str, object]:
    return summary(SCENARIO, sessions, members or [], memberships or [], request, as_of)


def people(
    sessions: list[Session],
    request: Request = NO_FILTER,
    *,
    members: list[Member] | None = None,
    memberships: list[tuple[str, str]] | None = None,
    as_of: date = AS_OF,
) -> list[dict[str, object]]:
    return participants(SCENARIO, sessions, members or [], memberships or [], request, as_of)


def user_set(
    sessions: list[Session],
    request: Request = NO_FILTER,
    *,
    members: list[Member] | None = None,
    memberships: list[tuple[str, str]] | None = None,
    as_of: date = AS_OF,
) -> list[object]:
    found = people(sessions, request, members=members, memberships=memberships, as_of=as_of)
    return [p["user_id"] for p in found]


def distribution(result: dict[str, object]) -> dict[str, tuple[object, object]]:
    entries = result["score_distribution"]
    assert isinstance(entries, list)
    return {e["rank"]: (e["count"], e["percentage"]) for e in entries}


EMPTY_BODY: dict[str, object] = {
    "participant_count": 0,
    "total_sessions": 0,
    "average_best_score": 0,
    "average_best_rank": "unranked",
    "average_lift_percentage": 0,
    "total_practice_minutes": 0,
    "average_session_duration_seconds": 0,
    "score_distribution": [
        {"rank": "gold", "count": 0, "percentage": 0},
        {"rank": "silver", "count": 0, "percentage": 0},
        {"rank": "bronze", "count": 0, "percentage": 0},
        {"rank": "unranked", "count": 0, "percentage": 0},
    ],
}


# --- the reference example -----------------------------------------------------------------


def test_reference_example_matches_expected_json() -> None:
    expected_text = (REFERENCE_EXAMPLE_DIR / "expected.json").read_text(encoding="utf-8")
    expected = json.loads(expected_text, parse_float=Decimal)
    sessions = load_reference_example()
    scenario_id = sessions[0].scenario_id

    result = summary(scenario_id, sessions, [], [], NO_FILTER, AS_OF)

    assert result == expected
    assert list(result) == list(expected)  # field order
    assert result["average_best_rank"] == "bronze"  # 74.2 < 75: the thresholds win
    for field in ("participant_count", "total_sessions", "total_practice_minutes"):
        assert type(result[field]) is int
    for field in ("average_best_score", "average_lift_percentage"):
        assert type(result[field]) is Decimal


def test_reference_example_loads_as_documented() -> None:
    sessions = load_reference_example()
    assert len(sessions) == 128
    assert len({s.id for s in sessions}) == 128
    assert len({s.user_id for s in sessions}) == 45
    assert {s.scenario_id for s in sessions} == {"7d3c2b1a-0000-4000-8000-000000000001"}
    assert all(s.created_at.tzinfo is not None for s in sessions)
    assert all(s.created_at.utcoffset() == timedelta(0) for s in sessions)
    assert all(s.created_at.strftime("%Y-%m") == "2026-03" for s in sessions)
    assert all(isinstance(s.score, Decimal) for s in sessions)
    assert sessions[0].email == "p0@acme.com"


def test_reference_example_participants_add_up() -> None:
    sessions = load_reference_example()
    found = participants(sessions[0].scenario_id, sessions, [], [], NO_FILTER, AS_OF)
    assert len(found) == 45
    assert sum(int(str(p["session_count"])) for p in found) == 128
    user_ids = [str(p["user_id"]) for p in found]
    assert user_ids == sorted(user_ids, key=lambda u: u.encode())


def test_reference_example_before_its_sessions_is_empty() -> None:
    sessions = load_reference_example()
    result = summary(sessions[0].scenario_id, sessions, [], [], NO_FILTER, date(2026, 2, 28))
    assert result == EMPTY_BODY


# --- rounding and ranks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("12.25"), D("12.3")),
        (D("70.15"), D("70.2")),
        (D("12.2499999"), D("12.2")),
        (D("0.05"), D("0.1")),
        (D("-0.05"), D("-0.1")),  # half away from zero, also below zero
        (D(80) / D(3), D("26.7")),
        (D("74.99"), D("75.0")),
        (D("40"), D("40")),
    ],
)
def test_round1_half_away_from_zero(value: Decimal, expected: Decimal) -> None:
    assert round1(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(D("742.5"), 743), (D("742.4999"), 742), (D("0.5"), 1), (D("0"), 0), (D("-2.5"), -3)],
)
def test_round0_half_away_from_zero(value: Decimal, expected: int) -> None:
    assert round0(value) == expected
    assert type(round0(value)) is int


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        ("100", "gold"),
        ("90", "gold"),
        ("89.9999", "silver"),
        ("75", "silver"),
        ("74.9999", "bronze"),
        ("50", "bronze"),
        ("49.9999", "unranked"),
        ("0", "unranked"),
    ],
)
def test_rank_thresholds(score: str, expected: str) -> None:
    assert rank(D(score)) == expected


def test_mean_exactly_on_a_half_rounds_away_from_zero() -> None:
    result = body([sess("s1", "u1", "70.1"), sess("s2", "u2", "70.2")])
    assert result["average_best_score"] == D("70.2")  # mean 70.15
    result = body([sess("s1", "u1", "12.2"), sess("s2", "u2", "12.3")])
    assert result["average_best_score"] == D("12.3")  # mean 12.25


def test_average_of_74_99_rounds_to_75_and_ranks_silver() -> None:
    result = body([sess("s1", "u1", "74.99")])
    assert result["average_best_score"] == D("75.0")
    assert result["average_best_rank"] == "silver"
    # The distribution ranks the unrounded best score: 74.99 is bronze.
    assert distribution(result)["bronze"] == (1, D("100"))
    assert distribution(result)["silver"] == (0, D("0"))


def test_one_in_eighty_participants_is_1_3_percent() -> None:
    sessions = [sess("s00", "u00", "95")]
    sessions += [sess(f"s{i:02d}", f"u{i:02d}", "10") for i in range(1, 80)]
    result = body(sessions)
    assert result["participant_count"] == 80
    assert distribution(result)["gold"] == (1, D("1.3"))  # 1.25
    assert distribution(result)["unranked"] == (79, D("98.8"))  # 98.75


def test_thirds_round_to_one_decimal() -> None:
    result = body([sess("s1", "u1", "95"), sess("s2", "u2", "80"), sess("s3", "u3", "80")])
    assert distribution(result)["gold"] == (1, D("33.3"))
    assert distribution(result)["silver"] == (2, D("66.7"))
    assert result["average_best_score"] == D("85.0")  # 255 / 3


def test_total_practice_minutes_rounds_742_5_up() -> None:
    result = body([sess("s1", "u1", duration="44550")])  # 742.5 minutes
    assert result["total_practice_minutes"] == 743
    result = body([sess("s1", "u1", duration="44549.999999")])
    assert result["total_practice_minutes"] == 742


# --- per participant -----------------------------------------------------------------------


def test_first_score_is_earliest_session_and_lift_is_best_minus_first() -> None:
    sessions = [
        sess("s1", "u1", "88", T0 + timedelta(days=1)),
        sess("s2", "u1", "55", T0),
        sess("s3", "u1", "70", T0 + timedelta(days=2)),
    ]
    [p] = people(sessions)
    assert p == {
        "user_id": "u1",
        "session_count": 3,
        "first_score": D("55"),
        "best_score": D("88"),
        "lift": D("33"),
        "total_duration_seconds": D("0"),
    }
    assert body(sessions)["average_lift_percentage"] == D("33")


def test_first_score_tie_is_broken_by_smaller_id() -> None:
    sessions = [sess("b", "u1", "60"), sess("a", "u1", "80")]
    [p] = people(sessions)
    assert p["first_score"] == D("80")
    assert p["lift"] == D("0")


def test_first_score_tie_uses_byte_order_of_ids() -> None:
    # "B" (0x42) < "a" (0x61) and "10" < "9" in byte order.
    [p] = people([sess("a", "u1", "60"), sess("B", "u1", "80")])
    assert p["first_score"] == D("80")
    [p] = people([sess("9", "u1", "60"), sess("10", "u1", "80")])
    assert p["first_score"] == D("80")


def test_first_score_microseconds_matter() -> None:
    sessions = [sess("a", "u1", "60", T0 + timedelta(microseconds=1)), sess("b", "u1", "80")]
    [p] = people(sessions)
    assert p["first_score"] == D("80")


def test_participants_sorted_by_user_id_bytes() -> None:
    sessions = [sess("s1", "b"), sess("s2", "B"), sess("s3", "a"), sess("s4", "10")]
    assert user_set(sessions) == ["10", "B", "a", "b"]


# --- durations -----------------------------------------------------------------------------


def test_null_durations_contribute_nothing() -> None:
    sessions = [
        sess("s1", "u1", duration="100"),
        sess("s2", "u1", duration=None),
        sess("s3", "u2", duration="200.5"),
    ]
    result = body(sessions)
    assert result["total_sessions"] == 3
    assert result["average_session_duration_seconds"] == D("150.3")  # 300.5 / 2 = 150.25
    assert result["total_practice_minutes"] == 5  # 300.5 / 60 = 5.008…
    totals = {p["user_id"]: p["total_duration_seconds"] for p in people(sessions)}
    assert totals == {"u1": D("100"), "u2": D("200.5")}


def test_no_durations_at_all_gives_zero() -> None:
    result = body([sess("s1", "u1"), sess("s2", "u2")])
    assert result["average_session_duration_seconds"] == 0
    assert result["total_practice_minutes"] == 0
    assert [p["total_duration_seconds"] for p in people([sess("s1", "u1")])] == [D("0")]


# --- graded sessions -----------------------------------------------------------------------


def test_invalid_attempts_are_excluded() -> None:
    sessions = [
        sess("s1", "u1", "60"),
        sess("s2", "u1", "99", valid=False),
        sess("s3", "u2", None, valid=False),
    ]
    result = body(sessions)
    assert result["participant_count"] == 1
    assert result["total_sessions"] == 1
    assert result["average_best_score"] == D("60.0")


def test_other_scenarios_are_excluded() -> None:
    result = body([sess("s1", "u1", "60"), sess("s2", "u2", "99", scenario="other")])
    assert result["participant_count"] == 1
    assert result["average_best_score"] == D("60.0")


def test_sessions_after_the_as_of_day_are_excluded() -> None:
    last = datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)
    sessions = [
        sess("s1", "u1", "60", last),
        sess("s2", "u1", "99", last + timedelta(microseconds=1)),
        # 20:00 at -05:00 is 01:00 UTC on the next day.
        sess("s3", "u2", "99", datetime(2026, 3, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))),
    ]
    result = body(sessions, as_of=date(2026, 3, 31))
    assert result["total_sessions"] == 1
    assert result["average_best_score"] == D("60.0")
    assert body(sessions, as_of=date(2026, 4, 1))["total_sessions"] == 3


def test_start_and_end_are_inclusive_to_the_microsecond() -> None:
    start = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
    end = datetime(2026, 3, 20, 23, 59, 59, 999999, tzinfo=UTC)
    tick = timedelta(microseconds=1)
    sessions = [
        sess("s1", "u1", "10", start - tick),
        sess("s2", "u2", "20", start),
        sess("s3", "u3", "30", end),
        sess("s4", "u4", "40", end + tick),
    ]
    assert user_set(sessions, Request(start=start, end=end)) == ["u2", "u3"]
    assert user_set(sessions, Request(start=start)) == ["u2", "u3", "u4"]
    assert user_set(sessions, Request(end=end)) == ["u1", "u2", "u3"]
    assert user_set(sessions, Request(start=start, end=start)) == ["u2"]


def test_start_and_end_compare_instants_across_offsets() -> None:
    plus_two = timezone(timedelta(hours=2))
    sessions = [sess("s1", "u1", "10", datetime(2026, 3, 10, 0, 0, tzinfo=UTC))]
    same_instant = datetime(2026, 3, 10, 2, 0, tzinfo=plus_two)
    assert user_set(sessions, Request(start=same_instant, end=same_instant)) == ["u1"]
    later = same_instant + timedelta(microseconds=1)
    assert user_set(sessions, Request(start=later)) == []


def test_empty_result_body() -> None:
    assert body([]) == EMPTY_BODY
    result = body([sess("s1", "u1")], Request(user_ids=("nobody",)))
    assert result == EMPTY_BODY
    assert list(result) == list(EMPTY_BODY)
    assert result["average_best_rank"] == "unranked"
    for field in ("participant_count", "total_sessions", "total_practice_minutes"):
        assert type(result[field]) is int


# --- filters -------------------------------------------------------------------------------

FILTER_SESSIONS = [
    sess("s1", "u1", email="a@x.com"),
    sess("s2", "u2", email="b@x.com"),
    sess("s3", "u3", email="c@x.com"),
    sess("s4", "u4", email=None),
]


def test_user_ids_and_user_emails_are_unioned() -> None:
    request = Request(user_ids=("u1",), user_emails=(" B@X.com ",))
    assert user_set(FILTER_SESSIONS, request) == ["u1", "u2"]
    # Both lists naming the same user count it once.
    request = Request(user_ids=("u1",), user_emails=("a@x.com",))
    assert user_set(FILTER_SESSIONS, request) == ["u1"]


def test_user_ids_alone_and_user_emails_alone() -> None:
    assert user_set(FILTER_SESSIONS, Request(user_ids=("u3", "u4"))) == ["u3", "u4"]
    assert user_set(FILTER_SESSIONS, Request(user_emails=("C@X.COM",))) == ["u3"]


def test_empty_lists_and_empty_items_are_no_filter() -> None:
    everyone = ["u1", "u2", "u3", "u4"]
    assert user_set(FILTER_SESSIONS, Request()) == everyone
    assert user_set(FILTER_SESSIONS, Request(user_ids=("", "  "), user_emails=(" ",))) == everyone
    assert user_set(FILTER_SESSIONS, Request(user_ids=(" u2 ", ""))) == ["u2"]


def test_unknown_ids_emails_and_groups_match_nothing() -> None:
    assert user_set(FILTER_SESSIONS, Request(user_ids=("u9",))) == []
    assert user_set(FILTER_SESSIONS, Request(user_emails=("z@x.com",))) == []
    assert user_set(FILTER_SESSIONS, Request(group_ids=("g9",))) == []


def test_group_filter_keeps_members_of_any_listed_group() -> None:
    memberships = [("g1", "u1"), ("g2", "u2"), ("g1", "u3"), ("g2", "u3"), ("g3", "u4")]
    request = Request(group_ids=("g1", "g9"))
    assert user_set(FILTER_SESSIONS, request, memberships=memberships) == ["u1", "u3"]
    request = Request(group_ids=("g1", "g2"))
    assert user_set(FILTER_SESSIONS, request, memberships=memberships) == ["u1", "u2", "u3"]
    # Combined with the user filter by AND.
    request = Request(group_ids=("g1",), user_ids=("u2", "u3"))
    assert user_set(FILTER_SESSIONS, request, memberships=memberships) == ["u3"]
    request = Request(group_ids=("g1",), user_ids=("u2",))
    assert body(FILTER_SESSIONS, request, memberships=memberships) == EMPTY_BODY


def test_exclude_system_users() -> None:
    sessions = [
        sess("s1", "u1", email="a@EXEC.com"),
        sess("s2", "u2", email="a@notexec.com"),
        sess("s3", "u3", email="a@mail.exec.com"),
        sess("s4", "u4", email="  B@Exec.Com "),
        sess("s5", "u5", email=None),
    ]
    assert user_set(sessions) == ["u1", "u2", "u3", "u4", "u5"]
    kept = user_set(sessions, Request(exclude_system_users=True))
    assert kept == ["u2", "u3", "u5"]


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("a@exec.com", True),
        ("a@EXEC.com", True),
        ("  A@Exec.Com\t", True),
        ("a@notexec.com", False),
        ("a@mail.exec.com", False),
        ("a@exec.com.au", False),
        ("", False),
        ("   ", False),
        (None, False),
    ],
)
def test_is_system_email(email: str | None, expected: bool) -> None:
    assert is_system_email(email) is expected


def test_system_users_are_judged_on_the_users_email_not_each_session() -> None:
    # The latest session's email decides, even for an older session that says otherwise.
    sessions = [
        sess("s1", "u1", email="me@exec.com", at=T0),
        sess("s2", "u1", email="me@acme.com", at=T0 + timedelta(days=1)),
    ]
    assert user_set(sessions, Request(exclude_system_users=True)) == ["u1"]
    assert body(sessions, Request(exclude_system_users=True))["total_sessions"] == 2


# --- users' emails -------------------------------------------------------------------------


def test_member_email_wins_over_session_email() -> None:
    sessions = [sess("s1", "u1", email="x@exec.com")]
    members = [Member("u1", " Y@Acme.com ")]
    assert user_emails(sessions, members) == {"u1": "y@acme.com"}
    assert user_set(sessions, Request(exclude_system_users=True), members=members) == ["u1"]
    assert user_set(sessions, Request(user_emails=("y@acme.com",)), members=members) == ["u1"]
    assert user_set(sessions, Request(user_emails=("x@exec.com",)), members=members) == []


def test_empty_member_email_falls_back_to_latest_session_email() -> None:
    sessions = [
        sess("s1", "u1", email="old@x.com", at=T0),
        sess("s2", "u1", email="  New@X.com ", at=T0 + timedelta(days=1)),
        sess("s3", "u1", email="   ", at=T0 + timedelta(days=2)),
        sess("s4", "u1", email=None, at=T0 + timedelta(days=3)),
    ]
    for member_email in ("", "   ", None):
        emails = user_emails(sessions, [Member("u1", member_email)])
        assert emails == {"u1": "new@x.com"}


def test_latest_session_email_tie_goes_to_highest_id() -> None:
    sessions = [sess("a", "u1", email="a@x.com"), sess("b", "u1", email="b@x.com")]
    assert user_emails(sessions, []) == {"u1": "b@x.com"}
    sessions = [sess("B", "u1", email="upper@x.com"), sess("a", "u1", email="lower@x.com")]
    assert user_emails(sessions, []) == {"u1": "lower@x.com"}  # "a" > "B" in byte order


def test_session_emails_come_from_all_sessions_whatever_the_as_of_date() -> None:
    late = datetime(2026, 6, 1, tzinfo=UTC)
    sessions = [
        sess("s1", "u1", "80", T0, email="me@acme.com"),
        # Invalid, other scenario and after the as-of day: still the user's latest email.
        sess("s2", "u1", None, late, scenario="other", valid=False, email="me@exec.com"),
    ]
    assert user_emails(sessions, []) == {"u1": "me@exec.com"}
    assert user_set(sessions, Request(exclude_system_users=True)) == []
    assert user_set(sessions, Request(user_emails=("me@exec.com",))) == ["u1"]
    assert user_set(sessions, Request(user_emails=("me@acme.com",))) == []


def test_user_emails_lists_members_without_sessions_and_users_without_email() -> None:
    sessions = [sess("s1", "u1")]
    members = [Member("m1", "M@x.com"), Member("m2", None)]
    assert user_emails(sessions, members) == {"u1": None, "m1": "m@x.com", "m2": None}


# --- misuse is caught ----------------------------------------------------------------------


def test_duplicate_session_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate session id"):
        body([sess("s1", "u1"), sess("s1", "u2")])


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        body([sess("s1", "u1", at=datetime(2026, 3, 1))])
    with pytest.raises(ValueError, match="timezone-aware"):
        body([sess("s1", "u1")], Request(start=datetime(2026, 3, 1)))


def test_valid_attempt_without_score_is_rejected() -> None:
    with pytest.raises(ValueError, match="without a score"):
        body([sess("s1", "u1", None)])


# --- properties of the model itself --------------------------------------------------------

scores = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False)
users = st.sampled_from(["u1", "u2", "u3", "u4"])


@st.composite
def session_lists(draw: st.DrawFn) -> list[Session]:
    count = draw(st.integers(min_value=0, max_value=12))
    return [
        Session(
            id=f"s{i}",
            user_id=draw(users),
            scenario_id=SCENARIO,
            created_at=T0 + timedelta(minutes=draw(st.integers(0, 5))),
            is_valid_attempt=True,
            score=draw(scores),
            duration_seconds=draw(st.none() | st.decimals(0, 1000, places=6)),
            email=draw(st.sampled_from([None, "a@x.com", "b@exec.com"])),
        )
        for i in range(count)
    ]


@given(session_lists())
def test_totals_are_consistent(sessions: list[Session]) -> None:
    result = body(sessions)
    found = people(sessions)
    assert result["participant_count"] == len(found)
    assert result["total_sessions"] == len(sessions)
    entries = result["score_distribution"]
    assert isinstance(entries, list)
    assert [e["rank"] for e in entries] == ["gold", "silver", "bronze", "unranked"]
    assert sum(e["count"] for e in entries) == len(found)
    for p in found:
        lift = p["lift"]
        assert isinstance(lift, Decimal) and lift >= 0


@given(
    session_lists(),
    st.lists(users, max_size=3),
    st.lists(st.sampled_from(["a@x.com", "B@EXEC.COM", "z@x.com"]), max_size=2),
)
def test_union_of_user_ids_and_user_emails(
    sessions: list[Session], ids: list[str], emails: list[str]
) -> None:
    both = set(user_set(sessions, Request(user_ids=tuple(ids), user_emails=tuple(emails))))
    by_ids = set(user_set(sessions, Request(user_ids=tuple(ids)))) if ids else set()
    by_emails = set(user_set(sessions, Request(user_emails=tuple(emails)))) if emails else set()
    if ids or emails:
        assert both == by_ids | by_emails
    else:
        assert both == set(user_set(sessions))
