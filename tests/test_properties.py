"""Property tests: the SQL summaries agree with the pure-Python reference model.

Hypothesis draws small exports (a few scenarios, users and groups, up to ~60 sessions)
with the awkward cases the contract names: scores at the rank boundaries and with up to
4 decimals, null durations, invalid attempts, ties on `created_at` (also written with
different offsets), re-graded duplicates, system and look-alike emails, members with an
empty email, sessions after the as-of day. Each example runs the job once, then checks:

- random filter requests: `SnapshotQuery.answer` (precomputed or computed) equals
  `reference_model.summary`, by value;
- every row of `summaries.parquet` (the materialized filters) equals the model for its
  parameters, its typed columns equal its body, and the set of keys is the default set;
- `participants.parquet` equals `reference_model.participants` for the unfiltered request.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from helpers_summary import (
    BODY_FIELDS,
    SESSION_CSV_COLUMNS,
    flat_session,
    loads,
    run_snapshot,
    session_record,
    write_csv,
    write_jsonl,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from reference_model import (
    Member,
    Request,
    Session,
    end_of_day,
    participants,
    participants_page,
    summary,
)

from scenario_analytics.errors import ExitCode
from scenario_analytics.filters import parse_request
from scenario_analytics.publish.snapshot import summary_path
from scenario_analytics.serve.query import SnapshotQuery

AS_OF = date(2026, 3, 31)
AS_OF_END = end_of_day(AS_OF)
SCENARIOS = ["s1", "s2", "S1"]
EMPTY_SCENARIO = "s-empty"
USERS = ["u1", "u2", "u9", "u10", "U1", "u 3"]
GROUPS = ["g1", "g2", "G1", "g3"]
# System users end with @exec.com after trimming and lower-casing; look-alikes do not.
EMAILS = [
    "a@acme.com",
    "A@Acme.COM",
    " b@exec.com ",
    "c@EXEC.com",
    "d@notexec.com",
    "e@mail.exec.com",
    "f@exec.com.au",
    "",
    "  ",
]
# Names: absent, blank (unknown: the next source is used), and as written otherwise.
NAMES = [None, "", "  ", "Ann", "ann ", "Zoë", "O'Brien"]
BOUNDARY_SCORES = ["0", "49.9999", "50", "74.99", "74.9999", "75", "89.99", "90", "100"]
BOUNDARY_TIMES = [
    AS_OF_END,
    AS_OF_END + timedelta(microseconds=1),
    AS_OF_END - timedelta(days=7),
    AS_OF_END - timedelta(days=7) + timedelta(microseconds=1),
    datetime.combine(AS_OF - timedelta(days=29), time.min, UTC),
    datetime.combine(AS_OF - timedelta(days=29), time.min, UTC) - timedelta(microseconds=1),
    datetime.combine(AS_OF - timedelta(days=89), time.min, UTC),
]
FIRST_TIME = datetime(2025, 12, 15, tzinfo=UTC)
LAST_TIME = datetime(2026, 4, 3, tzinfo=UTC)
OFFSETS = [None, 0, 120, -330, 840]  # None: no offset at all (UTC); 0: "Z"


# --- drawing exports -------------------------------------------------------------------


@dataclass
class Example:
    sessions: list[dict[str, Any]]  # raw records in file order (duplicates included)
    split: int  # sessions[:split] go to the first file, the rest to the second
    formats: tuple[str, str]
    members: list[dict[str, Any]]
    members_format: str
    groups: list[str]
    memberships: list[tuple[str, str]]
    scenarios: list[str]
    model_sessions: list[Session] = field(default_factory=list)
    model_members: list[Member] = field(default_factory=list)


def format_time(moment: datetime, offset: int | None, space: bool) -> str:
    """ISO 8601 as exports write it: `T` or space, optional fraction, Z / ±HH:MM / none."""
    local = moment.astimezone(timezone(timedelta(minutes=offset or 0)))
    text = local.strftime("%Y-%m-%d" + (" " if space else "T") + "%H:%M:%S")
    if local.microsecond:
        text += f".{local.microsecond:06d}".rstrip("0")
    if offset is None:
        return text
    if offset == 0:
        return text + "Z"
    sign = "+" if offset > 0 else "-"
    return text + f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


@st.composite
def score_values(draw: st.DrawFn) -> Decimal:
    """0..100 with 0 to 4 decimal places, written with exactly those digits."""
    places = draw(st.integers(0, 4))
    whole = draw(st.integers(0, 100))
    fraction = 0 if whole == 100 else draw(st.integers(0, 10**places - 1))
    return Decimal(whole) + Decimal(fraction).scaleb(-places)


scores = st.one_of(st.sampled_from(BOUNDARY_SCORES).map(Decimal), score_values())
durations = st.one_of(
    st.none(),
    st.integers(0, 3600).map(Decimal),
    st.integers(0, 3_600_000).map(lambda n: Decimal(n).scaleb(-3)),
)
moments = st.one_of(
    st.sampled_from(BOUNDARY_TIMES),
    st.datetimes(
        min_value=FIRST_TIME.replace(tzinfo=None), max_value=LAST_TIME.replace(tzinfo=None)
    ).map(lambda d: d.replace(tzinfo=UTC)),
)


@st.composite
def examples(draw: st.DrawFn) -> Example:
    # A small pool of times so that ties on created_at are common.
    times = draw(st.lists(moments, min_size=1, max_size=12))
    n = draw(st.integers(0, 60))
    ids = draw(st.lists(st.integers(1, 70), min_size=n, max_size=n))
    records: list[dict[str, Any]] = []
    for number in ids:
        valid = draw(st.integers(0, 5)) > 0
        score = draw(scores) if valid or draw(st.booleans()) else None
        offset = draw(st.sampled_from(OFFSETS))
        email = draw(st.sampled_from([None, *EMAILS]))
        scenario = draw(st.sampled_from(SCENARIOS))
        records.append(
            session_record(
                str(number),
                draw(st.sampled_from(USERS)),
                score,
                format_time(draw(st.sampled_from(times)), offset, draw(st.booleans())),
                scenario=scenario,
                slug=f"slug-{scenario}",
                duration=draw(durations),
                valid=valid,
                email=email,
                first_name=draw(st.sampled_from(NAMES)),
                last_name=draw(st.sampled_from(NAMES)),
            )
        )
    member_ids = draw(st.lists(st.sampled_from([*USERS, "m-only"]), unique=True, max_size=5))
    members = []
    for member in member_ids:
        record = {
            "id": member,
            "email": draw(st.sampled_from([None, *EMAILS])),
            "first_name": draw(st.sampled_from(NAMES)),
            "last_name": draw(st.sampled_from(NAMES)),
        }
        members.append({k: v for k, v in record.items() if v is not None})
    groups = draw(st.lists(st.sampled_from(GROUPS), unique=True, max_size=3))
    memberships = draw(
        st.lists(
            st.tuples(st.sampled_from([*GROUPS, "g-ghost"]), st.sampled_from([*USERS, "nobody"])),
            unique=True,
            max_size=10,
        )
    )
    scenarios = draw(
        st.lists(st.sampled_from([*SCENARIOS, EMPTY_SCENARIO]), unique=True, max_size=3)
    )
    example = Example(
        sessions=records,
        split=draw(st.integers(0, len(records))),
        formats=(draw(st.sampled_from(["jsonl", "csv"])), draw(st.sampled_from(["jsonl", "csv"]))),
        members=members,
        members_format=draw(st.sampled_from(["jsonl", "csv"])),
        groups=groups,
        memberships=memberships,
        scenarios=scenarios,
    )
    example.model_sessions = model_sessions(records)
    example.model_members = [
        Member(m["id"], m.get("email"), m.get("first_name"), m.get("last_name")) for m in members
    ]
    return example


def parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def model_sessions(records: list[dict[str, Any]]) -> list[Session]:
    """Accepted, de-duplicated: the last record of an id in file order wins."""
    last: dict[str, dict[str, Any]] = {}
    for record in records:
        last.pop(record["id"], None)
        last[record["id"]] = record
    return [
        Session(
            id=r["id"],
            user_id=r["user"]["id"],
            scenario_id=r["scenario"]["id"],
            created_at=parse_time(r["created_at"]),
            is_valid_attempt=r["is_valid_attempt"],
            score=r["score"],
            duration_seconds=r["duration_seconds"],
            email=r["user"].get("email"),
            first_name=r["user"].get("first_name"),
            last_name=r["user"].get("last_name"),
        )
        for r in last.values()
    ]


def write_example(example: Example, root: Path) -> Path:
    parts = (example.sessions[: example.split], example.sessions[example.split :])
    for number, (records, fmt) in enumerate(zip(parts, example.formats, strict=True), start=1):
        # An empty part is still written: a zero-byte JSON Lines file, a header-only CSV.
        path = root / "sessions" / f"part-{number}.{fmt}"
        if fmt == "csv":
            write_csv(path, SESSION_CSV_COLUMNS, [flat_session(r) for r in records])
        else:
            write_jsonl(path, records)
    if example.members:
        if example.members_format == "csv":
            columns = ("id", "email", "first_name", "last_name")
            write_csv(root / "members.csv", columns, example.members)
        else:
            write_jsonl(root / "members.jsonl", example.members)
    if example.groups:
        write_jsonl(root / "groups.jsonl", [{"id": g, "name": g.upper()} for g in example.groups])
    if example.memberships:
        write_csv(
            root / "group_memberships.csv",
            ("group_id", "user_id"),
            [{"group_id": g, "user_id": u} for g, u in example.memberships],
        )
    if example.scenarios:
        write_jsonl(
            root / "scenarios.jsonl",
            [{"id": s, "slug": f"slug-{s}", "name": s} for s in example.scenarios],
        )
    return root


def snapshot_scenarios(example: Example) -> set[str]:
    referenced = {s.scenario_id for s in example.model_sessions if s.created_at <= AS_OF_END}
    return referenced | set(example.scenarios)


# --- drawing requests ------------------------------------------------------------------


@dataclass
class DrawnRequest:
    scenario: str
    params: dict[str, object]
    model: Request
    bad_range: bool


def date_param(draw: st.DrawFn, *, end: bool) -> tuple[str | None, datetime | None]:
    kind = draw(st.sampled_from(["none", "none", "empty", "date", "datetime"]))
    if kind == "none":
        return None, None
    if kind == "empty":
        return "", None
    moment = draw(st.one_of(moments, st.sampled_from(BOUNDARY_TIMES)))
    if kind == "date":
        day = moment.date()
        value = end_of_day(day) if end else datetime.combine(day, time.min, UTC)
        return day.isoformat(), value
    offset = draw(st.sampled_from(OFFSETS))
    return format_time(moment, offset, draw(st.booleans())), moment


def list_param(draw: st.DrawFn, pool: list[str]) -> str | None:
    if draw(st.integers(0, 2)) > 0:
        return None
    items = draw(st.lists(st.sampled_from(pool), max_size=4))
    return ",".join(items)


@st.composite
def requests(draw: st.DrawFn, known: list[str]) -> DrawnRequest:
    """A request, mostly for a scenario of the snapshot (by id or slug)."""
    others = [*SCENARIOS, EMPTY_SCENARIO, "slug-s2", "nope", "slug-nope"]
    if known and draw(st.integers(0, 4)) > 0:
        scenario = draw(st.sampled_from(known))
        scenario = f"slug-{scenario}" if draw(st.integers(0, 4)) == 0 else scenario
    else:
        scenario = draw(st.sampled_from(others))
    params: dict[str, object] = {}
    user_ids = list_param(draw, [*USERS, "ghost", " u1 ", "", "u2 "])
    user_emails = list_param(draw, [*EMAILS, "A@ACME.com", "nobody@x.com", " c@exec.com"])
    group_ids = list_param(draw, [*GROUPS, "g-ghost", " g1", ""])
    start_text, start = date_param(draw, end=False)
    end_text, end = date_param(draw, end=True)
    if start is not None and end is not None and start > end and draw(st.integers(0, 3)) > 0:
        (start_text, start), (end_text, end) = date_param(draw, end=False), (None, None)
    exclude = draw(st.sampled_from([None, False, True]))
    for name, value in (
        ("user_ids", user_ids),
        ("user_emails", user_emails),
        ("group_ids", group_ids),
        ("start_date", start_text),
        ("end_date", end_text),
        ("exclude_system_users", exclude),
    ):
        if value is not None:
            params[name] = value
    model = Request(
        user_ids=tuple((user_ids or "").split(",")),
        user_emails=tuple((user_emails or "").split(",")),
        group_ids=tuple((group_ids or "").split(",")),
        start=start,
        end=end,
        exclude_system_users=bool(exclude),
    )
    bad_range = start is not None and end is not None and start > end
    return DrawnRequest(scenario, params, model, bad_range)


# --- the property ----------------------------------------------------------------------


def model_summary(example: Example, scenario: str, request: Request) -> dict[str, object]:
    return summary(
        scenario,
        example.model_sessions,
        example.model_members,
        example.memberships,
        request,
        AS_OF,
    )


def resolve(example: Example, scenario: str) -> str | None:
    known = snapshot_scenarios(example)
    if scenario in known:
        return scenario
    by_slug = sorted((s for s in known if f"slug-{s}" == scenario), key=str.encode)
    return by_slug[0] if by_slug else None


def expected_keys(example: Example) -> set[str]:
    groups = set(example.groups) | {g for g, _u in example.memberships}
    end = f"end_date={AS_OF.isoformat()}T23:59:59.999999Z"
    keys = {""}
    for group in [None, *sorted(groups)]:
        for exclude in (False, True):
            for window in (None, 7, 30, 90):
                parts = []
                if window:
                    parts.append(end)
                if exclude:
                    parts.append("exclude_system_users=true")
                if group:
                    parts.append(f"group_ids={group}")
                if window:
                    start = AS_OF - timedelta(days=window - 1)
                    parts.append(f"start_date={start.isoformat()}T00:00:00.000000Z")
                keys.add("&".join(parts))
    return keys


def check_requests(example: Example, reader: SnapshotQuery, drawn: list[DrawnRequest]) -> None:
    for request in drawn:
        answer = reader.answer(request.scenario, request.params)
        body = loads(answer.body)
        context = f"{request.scenario} {request.params}: {answer.body}"
        if request.bad_range:
            assert answer.exit_code == ExitCode.USAGE, context
            assert body["error"]["code"] == "invalid_date_range", context
            event("answer: invalid_date_range")
            continue
        scenario_id = resolve(example, request.scenario)
        if scenario_id is None:
            assert answer.exit_code == ExitCode.NOT_FOUND, context
            assert body["error"]["code"] == "scenario_not_found", context
            event("answer: scenario_not_found")
            continue
        assert answer.exit_code == ExitCode.OK, context
        materialized = reader.precomputed(scenario_id, parse_request(request.params).key)
        event("answer: precomputed" if materialized is not None else "answer: computed")
        count = body["participant_count"]
        event(f"participants: {count}" if count < 3 else "participants: 3+")
        assert list(body) == BODY_FIELDS, context
        assert body == model_summary(example, scenario_id, request.model), context


SORTINGS = [
    f"{sign}{name}"
    for name in (
        "best_score",
        "first_score",
        "lift_percentage",
        "total_duration_seconds",
        "session_count",
    )
    for sign in ("", "-")
]


@st.composite
def paging(draw: st.DrawFn) -> dict[str, object]:
    """The participants endpoint's own parameters, each absent or a valid value (as a
    query string gives them, or as JSON integers)."""
    params: dict[str, object] = {}
    if draw(st.booleans()):
        params["sorting"] = draw(st.sampled_from(SORTINGS))
    if draw(st.booleans()):
        page = draw(st.integers(1, 4))
        params["page"] = page if draw(st.booleans()) else str(page)
    if draw(st.booleans()):
        size = draw(st.sampled_from([1, 2, 3, 100]))
        params["page_size"] = size if draw(st.booleans()) else str(size)
    return params


def check_participants(
    example: Example,
    reader: SnapshotQuery,
    drawn: list[DrawnRequest],
    pages: list[dict[str, object]],
) -> None:
    """The participants endpoint against the model, for the drawn filters and pages."""
    for request, page in zip(drawn, pages, strict=True):
        answer = reader.participants(request.scenario, {**request.params, **page})
        body = loads(answer.body)
        context = f"{request.scenario} {request.params} {page}: {answer.body}"
        if request.bad_range:
            assert body["error"]["code"] == "invalid_date_range", context
            continue
        scenario_id = resolve(example, request.scenario)
        if scenario_id is None:
            assert body["error"]["code"] == "scenario_not_found", context
            continue
        assert answer.exit_code == ExitCode.OK, context
        expected = participants_page(
            scenario_id,
            example.model_sessions,
            example.model_members,
            example.memberships,
            request.model,
            AS_OF,
            sorting=str(page.get("sorting", "-best_score")),
            page=int(str(page.get("page", 1))),
            page_size=int(str(page.get("page_size", 20))),
        )
        event(f"participants page entries: {min(len(body['data']), 3)}")
        assert body == expected, context


def check_participants_add_up(example: Example, reader: SnapshotQuery, scenario: str) -> None:
    """Every page of the unfiltered participants, counted, gives the summary: participant
    count, and the score distribution from the participants' best ranks."""
    summary_body = loads(reader.answer(scenario, {}).body)
    entries: list[dict[str, object]] = []
    page = 1
    while True:
        body = loads(reader.participants(scenario, {"page": page, "page_size": 2}).body)
        entries += body["data"]
        if page >= body["pagination"]["total_pages"]:
            break
        page += 1
    assert body["pagination"]["total_count"] == summary_body["participant_count"] == len(entries)
    counts = {d["rank"]: d["count"] for d in summary_body["score_distribution"]}
    assert counts == {r: sum(1 for e in entries if e["best_rank"] == r) for r in counts}
    assert sum(e["session_count"] for e in entries) == summary_body["total_sessions"]  # type: ignore[misc]
    users = [e["user"]["id"] for e in entries]  # type: ignore[index]
    assert len(set(users)) == len(users)


def check_materialized(example: Example, snapshot: Path) -> None:
    con = duckdb.connect()
    try:
        cursor = con.execute(
            "SELECT * FROM read_parquet($p, hive_partitioning = false)",
            {"p": str(snapshot / "summaries.parquet")},
        )
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        participant_rows = con.execute(
            """SELECT scenario_id, user_id, session_count, first_score, best_score, lift,
                      total_duration_seconds
               FROM read_parquet($p, hive_partitioning = false)
               ORDER BY scenario_id, user_id""",
            {"p": str(snapshot / "participants.parquet")},
        ).fetchall()
    finally:
        con.close()
    scenarios = snapshot_scenarios(example)
    keys = expected_keys(example)
    seen: dict[str, set[str]] = {}
    for row in rows:
        seen.setdefault(row["scenario_id"], set()).add(row["request_key"])
        request = Request(
            user_ids=tuple(row["user_ids"]),
            user_emails=tuple(row["user_emails"]),
            group_ids=tuple(row["group_ids"]),
            start=None if row["start_date"] is None else row["start_date"].replace(tzinfo=UTC),
            end=None if row["end_date"] is None else row["end_date"].replace(tzinfo=UTC),
            exclude_system_users=row["exclude_system_users"],
        )
        body = loads(row["body"])
        context = f"{row['scenario_id']} {row['request_key']!r}: {row['body']}"
        assert body == model_summary(example, row["scenario_id"], request), context
        # The typed columns say the same as the body.
        assert row["participant_count"] == body["participant_count"], context
        assert row["total_sessions"] == body["total_sessions"], context
        assert row["average_best_score"] == body["average_best_score"], context
        assert row["average_best_rank"] == body["average_best_rank"], context
        assert row["average_lift_percentage"] == body["average_lift_percentage"], context
        assert row["total_practice_minutes"] == body["total_practice_minutes"], context
        assert (
            row["average_session_duration_seconds"] == body["average_session_duration_seconds"]
        ), context
        for entry in body["score_distribution"]:
            assert row[f"{entry['rank']}_count"] == entry["count"], context
            assert row[f"{entry['rank']}_percentage"] == entry["percentage"], context
    assert set(seen) == scenarios
    for scenario, found in seen.items():
        assert found == keys, scenario
    assert len(rows) == len(scenarios) * len(keys)

    expected_participants = []
    for scenario in sorted(scenarios):
        for p in participants(
            scenario,
            example.model_sessions,
            example.model_members,
            example.memberships,
            Request(),
            AS_OF,
        ):
            expected_participants.append(
                (
                    scenario,
                    p["user_id"],
                    p["session_count"],
                    p["first_score"],
                    p["best_score"],
                    p["lift"],
                    p["total_duration_seconds"],
                )
            )
    # Order of the file: by scenario id, then user id (both as text, byte order).
    expected_participants.sort(key=lambda r: (str(r[0]).encode(), str(r[1]).encode()))
    assert participant_rows == expected_participants


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(example=examples(), data=st.data())
def test_sql_matches_reference_model(example: Example, data: st.DataObject) -> None:
    check_against_model(example, data, "duckdb")


# A Spark run of such a small example takes 10-20 seconds, not milliseconds: one example
# a run of the suite (each run draws another), beside the 25 on DuckDB over the same
# semantics; tests/test_golden.py runs the golden examples on Spark too.
@settings(
    max_examples=1,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(example=examples(), data=st.data())
def test_spark_sql_matches_reference_model(example: Example, data: st.DataObject) -> None:
    check_against_model(example, data, "spark")


def check_against_model(example: Example, data: st.DataObject, engine: str) -> None:
    known = sorted(snapshot_scenarios(example))
    drawn = data.draw(st.lists(requests(known), min_size=1, max_size=6), label="requests")
    pages = data.draw(st.lists(paging(), min_size=len(drawn), max_size=len(drawn)), label="pages")
    with tempfile.TemporaryDirectory(prefix="summary-properties-") as tmp:
        root = Path(tmp)
        write_example(example, root / "exports")
        snapshot = run_snapshot(root / "exports", root / "snapshots", AS_OF, engine=engine)
        check_materialized(example, snapshot)
        reader = SnapshotQuery(root / "snapshots")
        try:
            check_requests(example, reader, drawn)
            check_participants(example, reader, drawn, pages)
            for scenario in sorted(snapshot_scenarios(example)):
                # summary.json is the unfiltered body, and a request that keeps everything
                # but is not materialized (so is computed on the snapshot) gives its bytes.
                unfiltered = reader.answer(scenario, {}).body
                assert (snapshot / summary_path(scenario)).read_text("utf-8") == unfiltered
                computed = reader.answer(scenario, {"start_date": "2000-01-01"}).body
                assert computed == unfiltered
                # The same for participants: participants.parquet and the computed path.
                everyone = {"page_size": 100}
                assert (
                    reader.participants(scenario, everyone).body
                    == reader.participants(scenario, {**everyone, "start_date": "2000-01-01"}).body
                )
                check_participants_add_up(example, reader, scenario)
        finally:
            reader.close()
