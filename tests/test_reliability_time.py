"""Time: offsets, naive timestamps, DST changes, leap day, year boundary, microseconds.

Every session below is written the way an export might write it (JSON Lines, CSV, or a
Parquet timestamp column of some unit and zone) next to the UTC instant it means, stated
by hand. Snapshots are built for as-of days on those edges (a US and an EU DST change, a
year end, a leap day); each must hold exactly the sessions up to the last microsecond of
its day, at the stated instants, and answer filtered requests (date filters written with
offsets, naively, as dates alone, with too many fraction digits) exactly as the reference
model does with the stated instants.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers_ops import snapshot_files
from helpers_summary import loads, run_snapshot, session_record, write_csv, write_jsonl
from reference_model import Request, Session, end_of_day, summary

from scenario_analytics import filters
from scenario_analytics.filters import RequestError, parse_request
from scenario_analytics.serve.query import SnapshotQuery

SCENARIO = "t"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def us(value: datetime, micro: int) -> datetime:
    return value.replace(microsecond=micro)


def epoch_ns(value: datetime, extra_ns: int = 0) -> int:
    """Nanoseconds since the epoch, exactly (no float on the way)."""
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000 + extra_ns


@dataclass(frozen=True)
class Moment:
    """One session: its created_at as written, where, and the instant it means."""

    id: str
    user: str
    written: str | int  # text for JSON Lines / CSV; nanoseconds since the epoch for Parquet
    instant: datetime
    source: str = "jsonl"  # jsonl, csv, or a Parquet column type: ns, ns-tz, us-tz


END_2026 = utc(2026, 12, 31, 23, 59, 59, 999999)
MOMENTS = [
    # US DST starts 2026-03-08 02:00 EST -> 03:00 EDT: one microsecond apart in UTC.
    Moment("dst1", "a", "2026-03-08T01:59:59.999999-05:00", utc(2026, 3, 8, 6, 59, 59, 999999)),
    Moment("dst2", "a", "2026-03-08T03:00:00-04:00", utc(2026, 3, 8, 7, 0, 0)),
    Moment("dst3", "b", "2026-03-08 07:00", utc(2026, 3, 8, 7, 0), "csv"),
    Moment("dst4", "b", "2026-03-08T19:00:00.000001-05:00", utc(2026, 3, 9, 0, 0, 0, 1)),
    # EU DST ends 2026-10-25 03:00 CEST -> 02:00 CET: the later session reads earlier.
    Moment("eu1", "c", "2026-10-25T02:30:00+02:00", utc(2026, 10, 25, 0, 30)),
    Moment("eu2", "c", "2026-10-25T02:15:00+01:00", utc(2026, 10, 25, 1, 15)),
    Moment("eu3", "c", "2026-10-25T23:59:59.999999+00:00", utc(2026, 10, 25, 23, 59, 59, 999999)),
    # US DST ends 2026-11-01 02:00 EDT -> 01:00 EST: 01:15 EST is after 01:30 EDT.
    Moment("us1", "d", "2026-11-01T01:30:00-04:00", utc(2026, 11, 1, 5, 30)),
    Moment("us2", "d", "2026-11-01T01:15:00-05:00", utc(2026, 11, 1, 6, 15)),
    Moment("us3", "e", "2026-11-01T19:59:59.999999-04:00", utc(2026, 11, 1, 23, 59, 59, 999999)),
    Moment("us4", "e", "2026-11-01T19:00:00-05:00", utc(2026, 11, 2, 0, 0)),
    Moment(
        "us5",
        "f",
        epoch_ns(utc(2026, 11, 1, 5, 59, 59, 999999), 999),
        utc(2026, 11, 1, 5, 59, 59, 999999),
        "ns-tz",  # 01:59:59.999999999 EDT in an America/New_York nanosecond column
    ),
    # Half-hour and 45-minute zones, and the far ends of the offset range.
    Moment("z1", "g", "2026-11-01T05:44:59.999999+05:45", utc(2026, 10, 31, 23, 59, 59, 999999)),
    Moment("z2", "g", "2026-10-31T21:00:00.000000-03:30", utc(2026, 11, 1, 0, 30)),
    Moment("z3", "h", "2026-11-02T13:59:59.999999+14:00", utc(2026, 11, 1, 23, 59, 59, 999999)),
    Moment("z4", "h", "2026-10-31T12:00:00-12:00", utc(2026, 11, 1, 0, 0)),
    Moment("z5", "h", "2026-11-01T10:00:00+05", utc(2026, 11, 1, 5, 0)),
    # The year boundary, one microsecond either side, written every way.
    Moment("y1", "i", "2026-12-31T23:59:59.999999Z", END_2026),
    Moment("y2", "i", "2027-01-01T00:00:00Z", utc(2027, 1, 1)),
    Moment("y3", "j", "2027-01-01T00:59:59.999999+01:00", END_2026),
    Moment("y4", "j", "2026-12-31T19:00:00-05:00", utc(2027, 1, 1)),
    Moment("y5", "k", "2026-12-31 23:59:59.9999999", END_2026, "csv"),  # 7th digit dropped
    Moment("y6", "k", "2027-01-01T00:00:00.0000001Z", utc(2027, 1, 1)),
    Moment("y7", "l", "2026-12-31T23:59:59.999999", END_2026),  # naive means UTC
    Moment(
        "y8",
        "l",
        epoch_ns(END_2026, 999),
        END_2026,
        "ns",  # 23:59:59.999999999 in a naive nanosecond column: dropped, not rounded
    ),
    Moment("y9", "m", "2027-01-01T09:59:59.999999+10", END_2026),
    Moment(
        "y10",
        "m",
        epoch_ns(utc(2027, 1, 1)) // 1000,
        utc(2027, 1, 1),
        "us-tz",  # 05:45 in Asia/Kathmandu
    ),
    # Leap days: 2028 is one; a 7-day window ending on it starts on the 23rd.
    Moment("l1", "n", "2028-02-29T00:00:00Z", utc(2028, 2, 29)),
    Moment("l2", "n", "2028-02-29T23:59:59.999999Z", utc(2028, 2, 29, 23, 59, 59, 999999)),
    Moment("l3", "o", "2028-03-01T05:29:59.999999+05:30", utc(2028, 2, 29, 23, 59, 59, 999999)),
    Moment("l4", "o", "2028-03-01T00:00:00+00:00", utc(2028, 3, 1)),
    Moment("l5", "p", "2028-02-22T23:59:59.999999Z", utc(2028, 2, 22, 23, 59, 59, 999999)),
    Moment("l6", "p", "2028-02-23 00:00", utc(2028, 2, 23), "csv"),
    Moment("l7", "q", "2028-02-28T23:59:59.999999-00:01", utc(2028, 2, 29, 0, 0, 59, 999999)),
    Moment("l8", "q", "2000-02-29T12:00:00Z", utc(2000, 2, 29, 12)),
    # Naive is UTC, not anyone's local time: 02:30 exists though US clocks skipped it.
    Moment("gap", "r", "2026-03-08T02:30:00", utc(2026, 3, 8, 2, 30)),
]
NOT_A_TIME = [
    "2026-02-29T10:00:00Z",  # 2026 is not a leap year
    "2100-02-29T10:00:00Z",  # nor is 2100
    "2026-11-01T24:00:00Z",
    "2026-11-01T10:00:00+24:00",
    "2026-11-01T10:00:00+0100",
    "2026-11-01",
]
AS_OF_DAYS = [
    date(2026, 3, 8),
    date(2026, 10, 25),
    date(2026, 11, 1),
    date(2026, 12, 31),
    date(2028, 2, 29),
]
# Date filters as written -> the instant each means (start_date, end_date).
FILTERS: list[tuple[str | None, datetime | None, str | None, datetime | None]] = [
    ("2026-03-08", utc(2026, 3, 8), "2026-03-08", us(utc(2026, 3, 8, 23, 59, 59), 999999)),
    (None, None, "2026-03-08T01:59:59.999999-05:00", utc(2026, 3, 8, 6, 59, 59, 999999)),
    ("2026-03-08 07:00", utc(2026, 3, 8, 7), None, None),
    ("2026-10-25T02:15:00+01:00", utc(2026, 10, 25, 1, 15), None, None),
    (None, None, "2026-10-25T02:30:00+02:00", utc(2026, 10, 25, 0, 30)),
    (
        "2026-11-01T01:30:00-04:00",
        utc(2026, 11, 1, 5, 30),
        "2026-11-01T01:15:00-05:00",
        utc(2026, 11, 1, 6, 15),
    ),
    ("2026-11-01T01:30:00.000001-04:00", us(utc(2026, 11, 1, 5, 30), 1), None, None),
    ("2026-11-01", utc(2026, 11, 1), "2026-11-01", us(utc(2026, 11, 1, 23, 59, 59), 999999)),
    (
        "2026-10-31T20:00:00-04:00",
        utc(2026, 11, 1),
        "2026-11-01T23:59:59.9999999Z",
        us(utc(2026, 11, 1, 23, 59, 59), 999999),
    ),
    ("2026-12-31T19:00:00-05:00", utc(2027, 1, 1), None, None),
    (None, None, "2026-12-31T18:59:59.999999-05:00", END_2026),
    ("2026-12-31", utc(2026, 12, 31), "2027-01-01T00:00:00+00:00", utc(2027, 1, 1)),
    ("2028-02-29", utc(2028, 2, 29), "2028-02-29", us(utc(2028, 2, 29, 23, 59, 59), 999999)),
    ("2028-02-28T23:59:59.9999999Z", us(utc(2028, 2, 28, 23, 59, 59), 999999), None, None),
    ("2000-02-29", utc(2000, 2, 29), "2028-02-23T05:30:00+05:30", utc(2028, 2, 23)),
    ("  2028-02-23  ", utc(2028, 2, 23), "", None),
]


def _parquet(moments: list[Moment], path: Path) -> None:
    """One Parquet file per column type; flat session fields."""
    units = {
        "ns": pa.timestamp("ns"),
        "ns-tz": pa.timestamp("ns", tz="America/New_York"),
        "us-tz": pa.timestamp("us", tz="Asia/Kathmandu"),
    }
    for source, type_ in units.items():
        chosen = [m for m in moments if m.source == source]
        table = pa.table(
            {
                "id": [m.id for m in chosen],
                "user_id": [m.user for m in chosen],
                "user_email": [f"{m.user}@acme.com" for m in chosen],
                "scenario_id": [SCENARIO] * len(chosen),
                "score": pa.array([Decimal(_score(m)) for m in chosen], pa.decimal128(9, 4)),
                "duration_seconds": pa.array([60] * len(chosen), pa.int64()),
                "is_valid_attempt": [True] * len(chosen),
                "created_at": pa.array([m.written for m in chosen], pa.int64()).cast(type_),
            }
        )
        pq.write_table(table, path / f"sessions-{source}.parquet")


def _score(moment: Moment) -> str:
    return str(40 + MOMENTS.index(moment) * 7 % 60)


def _email(user: str) -> str:
    return f"{user}@exec.com" if user in {"a", "d", "i"} else f"{user}@acme.com"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # The as-of days include future ones (2026-12-31, 2028-02-29): the clock is set past
    # them, or the job would refuse them as dates that cannot be right yet.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(filters, "utc_today", lambda: date(2030, 1, 1))
        yield _build_store(tmp_path_factory)


@pytest.fixture(autouse=True)
def _clock_past_the_as_of_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters, "utc_today", lambda: date(2030, 1, 1))


def _build_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("time")
    exports = root / "exports"
    records = [
        session_record(
            m.id,
            m.user,
            _score(m),
            str(m.written),
            scenario=SCENARIO,
            duration=60,
            email=_email(m.user),
        )
        for m in MOMENTS
        if m.source == "jsonl"
    ]
    records += [
        session_record(f"bad{i}", "z", "50", text, scenario=SCENARIO, duration=60)
        for i, text in enumerate(NOT_A_TIME)
    ]
    write_jsonl(exports / "sessions" / "part-1.jsonl", records)
    write_csv(
        exports / "sessions" / "part-2.csv",
        [
            "id",
            "user_id",
            "user_email",
            "scenario_id",
            "score",
            "duration_seconds",
            "is_valid_attempt",
            "created_at",
        ],
        [
            {
                "id": m.id,
                "user_id": m.user,
                "user_email": _email(m.user),
                "scenario_id": SCENARIO,
                "score": _score(m),
                "duration_seconds": 60,
                "is_valid_attempt": True,
                "created_at": m.written,
            }
            for m in MOMENTS
            if m.source == "csv"
        ],
    )
    _parquet(MOMENTS, exports)
    snapshots = root / "store"
    for day in AS_OF_DAYS:
        run_snapshot(exports, snapshots, day, max_reject_ratio=0.5)
    return snapshots


def _model_sessions() -> list[Session]:
    return [
        Session(
            m.id, m.user, SCENARIO, m.instant, True, Decimal(_score(m)), Decimal(60), _email(m.user)
        )
        for m in MOMENTS
    ]


def test_rejected_times(store: Path) -> None:
    folder = store / "snapshot_date=2026-03-08"
    rows = duckdb.execute(
        "SELECT position, reason FROM read_parquet(?) ORDER BY position",
        [str(folder / "rejects.parquet")],
    ).fetchall()
    first = sum(1 for m in MOMENTS if m.source == "jsonl") + 1
    assert rows == [(first + i, "bad_created_at") for i in range(len(NOT_A_TIME))]


@pytest.mark.parametrize("as_of", AS_OF_DAYS, ids=str)
def test_snapshot_holds_the_sessions_up_to_the_last_microsecond(store: Path, as_of: date) -> None:
    folder = store / f"snapshot_date={as_of.isoformat()}"
    # The snapshot's session partitions, read through its store (they are shared, by
    # content, in `.objects/`).
    partitions = [
        str(path) for rel, path in snapshot_files(folder).items()
        if rel.startswith("sessions/") and rel.endswith(".parquet")
    ]  # fmt: skip
    assert partitions
    rows = duckdb.execute(
        "SELECT session_id, created_at FROM read_parquet(?, hive_partitioning = false)",
        [partitions],
    ).fetchall()
    cutoff = end_of_day(as_of)
    expected = {
        s.id: s.created_at.replace(tzinfo=None) for s in _model_sessions() if s.created_at <= cutoff
    }
    assert dict(rows) == expected


def _answer(reader: SnapshotQuery, params: dict[str, object]) -> Any:
    answer = reader.answer(SCENARIO, params)
    assert answer.exit_code == 0, answer.body
    return loads(answer.body)


@pytest.mark.parametrize("as_of", AS_OF_DAYS, ids=str)
def test_date_filters_match_the_reference_model(store: Path, as_of: date) -> None:
    reader = SnapshotQuery(store, as_of)
    sessions = _model_sessions()
    try:
        for start_text, start, end_text, end in FILTERS:
            for exclude in (False, True):
                params: dict[str, object] = {"exclude_system_users": exclude}
                if start_text is not None:
                    params["start_date"] = start_text
                if end_text is not None:
                    params["end_date"] = end_text
                request = Request(start=start, end=end, exclude_system_users=exclude)
                expected = summary(SCENARIO, sessions, [], [], request, as_of)
                assert _answer(reader, params) == expected, (as_of, params)
    finally:
        reader.close()


@pytest.mark.parametrize("as_of", AS_OF_DAYS, ids=str)
def test_materialized_windows_match_the_reference_model(store: Path, as_of: date) -> None:
    """`last N days` starts at 00:00:00 UTC N-1 days back: across a leap day, a DST change
    (days are UTC days, whatever the clocks did) and a year end."""
    folder = store / f"snapshot_date={as_of.isoformat()}"
    rows = duckdb.execute(
        "SELECT start_date, end_date, exclude_system_users, body "
        "FROM read_parquet(?, hive_partitioning = false) WHERE scenario_id = ?",
        [str(folder / "summaries.parquet"), SCENARIO],
    ).fetchall()
    windows = set()
    for start, end, exclude, body in rows:
        request = Request(
            start=None if start is None else start.replace(tzinfo=UTC),
            end=None if end is None else end.replace(tzinfo=UTC),
            exclude_system_users=exclude,
        )
        assert loads(body) == summary(SCENARIO, _model_sessions(), [], [], request, as_of)
        if start is not None:
            windows.add((end - start + timedelta(microseconds=1)).days)
            assert end == end_of_day(as_of).replace(tzinfo=None)
    assert windows == {7, 30, 90}


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-29",
        "2100-02-29T00:00:00Z",
        "2026-11-01T24:00:00Z",
        "2026-11-01T10:00+0100",
        "2026-11-01T10:00:00+24:00",
    ],
)
def test_impossible_request_dates_are_invalid(text: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request({"start_date": text})
    assert caught.value.code == "invalid_date"


def test_request_dates_are_normalized_to_utc_in_the_key() -> None:
    """Two spellings of one instant give one canonical key (one precomputed answer)."""
    spellings = [
        "2026-11-01T01:15:00-05:00",
        "2026-11-01T06:15:00Z",
        "2026-11-01 06:15",
        "2026-11-01T11:30:00+05:15",
        "2026-11-01T06:15:00.0000009Z",
    ]
    keys = {parse_request({"end_date": s}).key for s in spellings}
    assert keys == {"end_date=2026-11-01T06:15:00.000000Z"}
    offsets = [
        timezone(timedelta(hours=h, minutes=m)) for h, m in ((14, 0), (-12, 0), (5, 45), (-3, -30))
    ]
    instant = utc(2026, 12, 31, 23, 59, 59, 999999)
    for zone in offsets:
        written = instant.astimezone(zone).isoformat()
        assert parse_request({"start_date": written}).start_date == instant.replace(tzinfo=None)


def test_every_moment_is_used(store: Path) -> None:
    """The fixture wrote every moment once (no source silently skipped)."""
    folder = store / "snapshot_date=2028-02-29"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["sessions_read"] == len(MOMENTS) + len(NOT_A_TIME)
