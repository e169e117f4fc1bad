"""Loading and validating exports (CONTRACT.md, section 1): every row accepted or rejected.

Each test writes a tiny exports folder into `tmp_path` (see `conftest.py`) and loads it
with `pipeline.load_exports`, then looks at `staged_sessions`, `rejects` and the other
tables the build-phase SQL leaves on the connection.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import (
    AS_OF,
    CSV_SESSION_HEADER,
    Loaded,
    csv_session,
    flat_session,
    session,
    write_exports,
)

from scenario_analytics.engine.database import connect
from scenario_analytics.errors import UnreadableFileError
from scenario_analytics.ingest.readers import common as loading
from scenario_analytics.pipeline.staging import load_exports

Load = Callable[..., Loaded]
PLUS_2 = timezone(timedelta(hours=2))

# --------------------------------------------------------------------------------------
# Session reject reasons, format by format
# --------------------------------------------------------------------------------------

# (record, expected reason) for JSON formats; records are nested unless said otherwise.
JSON_CASES: list[tuple[Any, str | None]] = [
    (session("ok-nested"), None),
    (flat_session("ok-flat"), None),
    (session(...), "missing_id"),
    (session(""), "missing_id"),
    (session("  \t"), "missing_id"),
    (session(None), "missing_id"),
    (session("no-user", user={"email": "x@acme.com"}), "missing_user_id"),
    (session("blank-user", user={"id": " "}), "missing_user_id"),
    (flat_session("flat-no-user", user_id=...), "missing_user_id"),
    (session("no-scenario", scenario={"slug": "s"}), "missing_scenario_id"),
    (session("scenario-null", scenario=None), "missing_scenario_id"),
    (session("no-created", created_at=...), "bad_created_at"),
    (session("date-only", created_at="2026-11-01"), "bad_created_at"),
    (session("feb-30", created_at="2026-02-30T10:00:00Z"), "bad_created_at"),
    (session("epoch", created_at=1700000000), "bad_created_at"),
    (session("string-score", score="82.5"), "bad_score"),
    (session("too-high", score=100.00001), "bad_score"),
    (session("negative", score=-0.5), "bad_score"),
    (session("bool-score", score=True), "bad_score"),
    (session("neg-duration", duration_seconds=-1), "bad_duration"),
    (session("string-duration", duration_seconds="120"), "bad_duration"),
    (session("a-year", duration_seconds=31536000), None),  # a year is the longest
    (session("over-a-year", duration_seconds=31536000.5), "bad_duration"),
    (session("huge-duration", duration_seconds=10**18), "bad_duration"),
    (session("no-valid", is_valid_attempt=...), "bad_is_valid_attempt"),
    (session("string-valid", is_valid_attempt="true"), "bad_is_valid_attempt"),
    (session("number-valid", is_valid_attempt=1), "bad_is_valid_attempt"),
    (session("null-valid", is_valid_attempt=None), "bad_is_valid_attempt"),
    (session("null-score", score=None), "valid_attempt_without_score"),
    (session("absent-score", score=...), "valid_attempt_without_score"),
    (session("ungraded", score=None, is_valid_attempt=False), None),
    (session("null-duration", duration_seconds=None), None),
]

# JSON values that are not objects: malformed records in arrays, pages and JSON Lines.
NOT_OBJECTS: list[Any] = [5, "session", [session("in-array")], None]


def _expected(cases: list[tuple[Any, str | None]], first: int) -> list[tuple[int, str]]:
    return [(i, reason) for i, (_r, reason) in enumerate(cases, start=first) if reason]


def test_jsonl_reasons_and_line_numbers(load: Load) -> None:
    cases = [*JSON_CASES, *[(json.dumps(v), "malformed_record") for v in NOT_OBJECTS]]
    cases.append(('{"id": "truncated", "user": {"id": "u1"', "malformed_record"))
    loaded = load({"sessions/a.jsonl": [record for record, _ in cases]})

    assert loaded.reasons() == _expected(cases, first=1)
    file = loaded.file("sessions/a.jsonl")
    assert (file.rows_read, file.rows_rejected) == (len(cases), len(_expected(cases, 1)))


@pytest.mark.parametrize("shape", ["array", "page"])
def test_json_document_reasons_and_element_numbers(load: Load, shape: str) -> None:
    cases = [*JSON_CASES, *[(v, "malformed_record") for v in NOT_OBJECTS]]
    records = [record for record, _ in cases]
    document: Any = records
    if shape == "page":
        document = {"data": records, "pagination": {"next_cursor": None, "has_more": False}}
    loaded = load({"sessions/a.json": document})

    assert loaded.reasons() == _expected(cases, first=1)
    file = loaded.file("sessions/a.json")
    assert file.rows_read == len(cases)


def test_rejected_rows_keep_their_raw_text(load: Load) -> None:
    line = '{"id": "s1", "score": "82.5",  "extra": [1, 2]}'
    loaded = load(
        {
            "sessions/a.jsonl": [line, "{not json"],
            "sessions/b.json": [5, {"id": "s2", "score": "x"}],
        }
    )
    raws = {(f, pos): raw for f, pos, _reason, raw in loaded.rejects()}
    assert raws[("sessions/a.jsonl", 1)] == line  # the line exactly as written
    assert raws[("sessions/a.jsonl", 2)] == "{not json"
    assert raws[("sessions/b.json", 1)] == "5"
    assert json.loads(raws[("sessions/b.json", 2)]) == {"id": "s2", "score": "x"}


# (CSV row overrides, expected reason); rows follow CSV_SESSION_HEADER.
CSV_CASES: list[tuple[dict[str, str], str | None]] = [
    ({}, None),
    ({"score": " 82.5 ", "duration_seconds": "\t120 "}, None),
    ({"is_valid_attempt": "1"}, None),
    ({"is_valid_attempt": "TRUE"}, None),
    ({"is_valid_attempt": " True "}, None),
    ({"is_valid_attempt": "0", "score": ""}, None),
    ({"is_valid_attempt": "false"}, None),
    ({"is_valid_attempt": "FALSE", "score": "12"}, None),
    ({"duration_seconds": ""}, None),
    ({"id": ""}, "missing_id"),
    ({"id": "   "}, "missing_id"),
    ({"user_id": ""}, "missing_user_id"),
    ({"scenario_id": " "}, "missing_scenario_id"),
    ({"created_at": ""}, "bad_created_at"),
    ({"created_at": "2026-11-01"}, "bad_created_at"),
    ({"created_at": "2026-02-30 10:00"}, "bad_created_at"),
    ({"score": "abc"}, "bad_score"),
    ({"score": "100.00001"}, "bad_score"),
    ({"score": "-1"}, "bad_score"),
    ({"score": "1_0"}, "bad_score"),
    ({"score": "NaN"}, "bad_score"),
    ({"score": "8 2"}, "bad_score"),
    ({"score": ".5", "duration_seconds": "+5."}, None),
    ({"duration_seconds": "1_000"}, "bad_duration"),
    ({"duration_seconds": "Infinity"}, "bad_duration"),
    ({"duration_seconds": "-0.5"}, "bad_duration"),
    ({"duration_seconds": "2m"}, "bad_duration"),
    ({"is_valid_attempt": ""}, "bad_is_valid_attempt"),
    ({"is_valid_attempt": "yes"}, "bad_is_valid_attempt"),
    ({"is_valid_attempt": "2"}, "bad_is_valid_attempt"),
    ({"score": ""}, "valid_attempt_without_score"),
    ({"score": "  ", "is_valid_attempt": "1"}, "valid_attempt_without_score"),
]


def test_csv_reasons_and_line_numbers(load: Load) -> None:
    rows: list[Any] = [CSV_SESSION_HEADER]
    rows += [csv_session(**{"id": f"c{i}", **over}) for i, (over, _) in enumerate(CSV_CASES)]
    rows.append("c-short,u1,,sc1")  # wrong column count
    rows.append(csv_session("c-after"))
    loaded = load({"sessions/a.csv": rows})

    expected = _expected(CSV_CASES, first=2)  # the header is line 1
    short_line = len(CSV_CASES) + 2
    assert loaded.reasons() == [*expected, (short_line, "malformed_record")]
    rejects = {pos: raw for _f, pos, _reason, raw in loaded.rejects()}
    assert rejects[short_line] == "c-short,u1,,sc1"
    # A rejected CSV row keeps its fields as written (untrimmed), by column name.
    first_bad = expected[0][0]
    assert json.loads(rejects[first_bad])["id"] == ""
    assert loaded.staged("pos", "session_id = 'c-after'") == [(short_line + 1,)]


def test_csv_booleans_and_trimmed_numbers_are_typed(load: Load) -> None:
    loaded = load(
        {
            "sessions/a.csv": [
                CSV_SESSION_HEADER,
                csv_session("t1", is_valid_attempt="1", score=" 82.5 ", duration_seconds=" 7 "),
                csv_session("t2", is_valid_attempt="false", score=""),
                csv_session("t3", is_valid_attempt="TRUE", duration_seconds=""),
                csv_session("t4", is_valid_attempt="0", score="1e1"),
            ]
        }
    )
    assert loaded.staged("session_id, is_valid_attempt, score, duration_seconds") == [
        ("t1", True, Decimal("82.5"), Decimal("7")),
        ("t2", False, None, Decimal("120")),
        ("t3", True, Decimal("80.5"), None),
        ("t4", False, Decimal("10"), Decimal("120")),
    ]


def test_a_csv_column_named_like_a_sql_parameter(load: Load) -> None:
    """A header may hold any text: `$paths` once made the loader bind a parameter the
    CSV's SQL did not have, and the file was refused as unreadable."""
    loaded = load(
        {
            "sessions/a.csv": [
                [*CSV_SESSION_HEADER, "$paths", "$file_id"],
                [*csv_session("c1"), "x", "y"],
            ]
        }
    )
    assert loaded.staged("session_id, reject_reason") == [("c1", None)]


PARQUET_CASES: list[tuple[dict[str, Any], str | None]] = [
    (flat_session("p-ok"), None),
    (flat_session(None), "missing_id"),
    (flat_session(" "), "missing_id"),
    (flat_session("p-user", user_id=""), "missing_user_id"),
    (flat_session("p-scenario", scenario_id=None), "missing_scenario_id"),
    (flat_session("p-date", created_at="2026-11-01"), "bad_created_at"),
    (flat_session("p-null-date", created_at=None), "bad_created_at"),
    (flat_session("p-high", score=100.00001), "bad_score"),
    (flat_session("p-low", score=-1.0), "bad_score"),
    (flat_session("p-duration", duration_seconds=-3), "bad_duration"),
    (flat_session("p-valid", is_valid_attempt=None), "bad_is_valid_attempt"),
    (flat_session("p-no-score", score=None), "valid_attempt_without_score"),
    (flat_session("p-ungraded", score=None, is_valid_attempt=False), None),
]


def test_parquet_reasons_and_row_numbers(load: Load) -> None:
    records = [record for record, _ in PARQUET_CASES]
    loaded = load({"sessions/a.parquet": records})

    assert loaded.reasons() == _expected(PARQUET_CASES, first=1)
    # Rejected Parquet rows keep the row as JSON text.
    raw_by_pos = {pos: raw for _f, pos, _reason, raw in loaded.rejects()}
    assert json.loads(raw_by_pos[8])["score"] == 100.00001
    assert json.loads(raw_by_pos[4])["id"] == "p-user"


def test_parquet_nested_structs_and_native_types(load: Load) -> None:
    table = pa.table(
        {
            "id": ["n1", "n2", "n3"],
            "user": [{"id": "u1", "email": "A@Acme.com"}, {"id": None, "email": None}, None],
            "user_id": [None, "u2", "u3"],  # the flat alternative when the nested one is null
            "scenario": [{"id": "sc1", "slug": "one"}] * 3,
            "score": pa.array([Decimal("12.34565"), None, Decimal("0")], pa.decimal128(9, 5)),
            "duration_seconds": pa.array([1.5, None, 2], pa.float32()),
            "is_valid_attempt": [True, False, False],
            "created_at": pa.array(
                [datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=PLUS_2)] * 3,
                pa.timestamp("us", tz="+02:00"),
            ),
        }
    )
    loaded = load({"sessions/a.parquet": table})
    assert loaded.reasons() == []
    assert loaded.staged("session_id, user_id, scenario_id, score, duration_seconds") == [
        ("n1", "u1", "sc1", Decimal("12.3457"), Decimal("1.5")),
        ("n2", "u2", "sc1", None, None),
        ("n3", "u3", "sc1", Decimal("0"), Decimal("2")),
    ]
    # An aware timestamp is an instant: 10:00:00.123456 +02:00 is 08:00:00.123456 UTC.
    assert loaded.staged("created_at", "session_id = 'n1'") == [
        (datetime(2026, 11, 1, 8, 0, 0, 123456),)
    ]


_SESSION_SCHEMA = pa.Table.from_pylist([flat_session()]).schema


def test_parquet_row_numbers_across_row_groups(load: Load) -> None:
    records = [flat_session(f"p{i}", score=200.0 if i % 5 == 0 else 50.0) for i in range(1, 23)]
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(records), buffer, row_group_size=4)
    loaded = load({"sessions/a.parquet": buffer.getvalue().to_pybytes()})
    rejects = [(pos, reason, json.loads(raw)["id"]) for _f, pos, reason, raw in loaded.rejects()]
    assert rejects == [(i, "bad_score", f"p{i}") for i in (5, 10, 15, 20)]


def test_parquet_string_score_is_a_bad_score(load: Load) -> None:
    # Parquet is typed: a text column holds strings, not numbers (as in JSON).
    loaded = load({"sessions/a.parquet": [flat_session("s1", score="82.5")]})
    assert loaded.reasons() == [(1, "bad_score")]


FIRST_REASON_CASES: list[tuple[dict[str, Any], str]] = [
    (session(..., user={"email": "x"}), "missing_id"),
    (session("a", user={}, scenario={}), "missing_user_id"),
    (session("b", scenario={}, created_at="bad"), "missing_scenario_id"),
    (session("c", created_at="2026-11-01", score="82.5"), "bad_created_at"),
    (session("d", score=101, duration_seconds=-1), "bad_score"),
    (session("e", duration_seconds="1", is_valid_attempt="yes"), "bad_duration"),
    (session("f", is_valid_attempt="yes", score=None), "bad_is_valid_attempt"),
]


def test_first_applicable_reason_wins(load: Load) -> None:
    loaded = load({"sessions/a.jsonl": [record for record, _ in FIRST_REASON_CASES]})
    assert loaded.reasons() == _expected(FIRST_REASON_CASES, first=1)


# --------------------------------------------------------------------------------------
# Values: scores, durations, timestamps
# --------------------------------------------------------------------------------------


def _with_score(sid: str, written: str) -> str:
    """A JSON record whose score is the number exactly as written (not through a float)."""
    return json.dumps(session(sid)).replace('"score": 80.5', f'"score": {written}')


def _score_exports(written: list[str]) -> dict[str, Any]:
    """The same scores in JSON Lines, a JSON array, a JSON page and CSV.

    The JSON documents interleave elements that are not objects, so that reading the
    exact numbers of a document keeps them with the right element.
    """
    records = [_with_score(f"s{i}", w) for i, w in enumerate(written)]
    interleaved = ", ".join(f"{r}, 7" for r in records)
    return {
        "sessions/a.jsonl": records,
        "sessions/b.json": f"[{interleaved}]",
        "sessions/c.json": f'{{"data": ["x", {interleaved}], "pagination": {{}}}}',
        "sessions/d.csv": [CSV_SESSION_HEADER]
        + [csv_session(f"s{i}", score=w) for i, w in enumerate(written)],
    }


SCORES_AS_STORED = {
    "12.34565": "12.3457",  # half away from zero
    "12.34564": "12.3456",
    "0.00005": "0.0001",
    "0.00004": "0.0000",
    "99.99995": "100.0000",  # in range as written, rounded afterwards
    "100": "100.0000",
    "0": "0.0000",
    "1e1": "10.0000",
    "-0": "0.0000",
    # More digits than a double holds: still exact.
    "12.34564999999999999999": "12.3456",
    "12.34565000000000000001": "12.3457",
}


def test_score_is_rounded_half_away_from_zero_to_4_places(load: Load) -> None:
    written = list(SCORES_AS_STORED)
    loaded = load(_score_exports(written))
    assert {reason for _p, reason in loaded.reasons()} == {"malformed_record"}
    for file_id in range(4):
        stored = loaded.rows(
            "SELECT score FROM staged_sessions WHERE file_id = ? AND reject_reason IS NULL "
            "ORDER BY pos",
            [file_id],
        )
        assert dict(zip(written, [str(s) for (s,) in stored], strict=True)) == SCORES_AS_STORED


def test_score_range_is_checked_on_the_value_as_written(load: Load) -> None:
    written = ["100.00001", "100.0000000000000000001", "-0.00001", "-0.0000000000000000001"]
    loaded = load(_score_exports(written))
    reasons = loaded.rows(
        "SELECT reason, count(*) FROM rejects WHERE reason <> 'malformed_record' GROUP BY 1"
    )
    assert reasons == [("bad_score", 16)]
    assert loaded.rows("SELECT count(*) FROM staged_sessions WHERE reject_reason IS NULL") == [(0,)]


def test_duration_is_an_exact_decimal(load: Load) -> None:
    line = json.dumps(session("s1")).replace(
        '"duration_seconds": 120', '"duration_seconds": 12345.123456'
    )
    loaded = load({"sessions/a.jsonl": [line, session("s2", duration_seconds=0)]})
    assert loaded.staged("duration_seconds") == [(Decimal("12345.123456"),), (Decimal("0"),)]


def test_json_lines_read_the_same_whatever_the_spelling(load: Load) -> None:
    """Spellings the JSON Lines reader must not tell apart from the plain record: white
    space before it, escaped strings, a number with an exponent; and an exact score read
    even though the other exact field (the duration) is not a number."""
    escaped = 'q"uote \\ back\u00e9\n'
    exact_score = (
        json.dumps(session("exact"))
        .replace('"score": 80.5', '"score": 100.0000000000000001')
        .replace('"duration_seconds": 120', '"duration_seconds": "120"')
    )
    lines = [
        " \t" + json.dumps(session("padded")),
        json.dumps(session(escaped, user={"id": "u\u00e91"})),  # ASCII with \u escapes
        json.dumps(session("exponent")).replace('"score": 80.5', '"score": 8.05E1'),
        exact_score,
        " [1, 2]",
        "\t5",
    ]
    loaded = load({"sessions/a.jsonl": lines})
    assert loaded.reasons() == [(4, "bad_score"), (5, "malformed_record"), (6, "malformed_record")]
    assert loaded.staged("session_id, user_id, score", "reject_reason IS NULL") == [
        ("padded", "u1", Decimal("80.5")),
        (escaped, "u\u00e91", Decimal("80.5")),
        ("exponent", "u1", Decimal("80.5")),
    ]


UTC_10 = datetime(2026, 11, 1, 10, 0)

CREATED_AT_IN_UTC = {
    "2026-11-01T10:00:00Z": UTC_10,
    "2026-11-01 10:00:00Z": UTC_10,
    "2026-11-01T10:00:00": UTC_10,  # no offset: UTC
    "2026-11-01 10:00": UTC_10,  # no seconds
    "2026-11-01T10:00Z": UTC_10,
    "2026-11-01T12:00:00+02": UTC_10,
    "2026-11-01T12:00+02:00": UTC_10,
    "2026-11-01T05:30:00-04:30": UTC_10,
    "2026-11-01T10:00-00": UTC_10,
    "2026-11-01T10:00:00+00:00": UTC_10,
    "2026-11-01T00:30:00+01:00": datetime(2026, 10, 31, 23, 30),
    "2026-12-31T23:30:00-01:00": datetime(2027, 1, 1, 0, 30),
    "2026-11-01T10:00:00.5Z": datetime(2026, 11, 1, 10, 0, 0, 500000),
    "2026-11-01T10:00:00.123456Z": datetime(2026, 11, 1, 10, 0, 0, 123456),
    # Fraction digits beyond 6 are dropped, not rounded.
    "2026-11-01T10:00:00.1234569999Z": datetime(2026, 11, 1, 10, 0, 0, 123456),
    "2026-11-01 10:00:59.9999999+01:00": datetime(2026, 11, 1, 9, 0, 59, 999999),
    "2024-02-29T00:00:00Z": datetime(2024, 2, 29),
}


def test_created_at_forms(load: Load) -> None:
    written = list(CREATED_AT_IN_UTC)
    loaded = load(
        {
            "sessions/a.jsonl": [session(f"s{i}", created_at=w) for i, w in enumerate(written)],
            "sessions/b.csv": [CSV_SESSION_HEADER]  # CSV values are trimmed
            + [csv_session(f"s{i}", created_at=f" {w} ") for i, w in enumerate(written)],
            # So is white space (tab, line feed, carriage return) around a JSON string.
            "sessions/c.jsonl": [
                session(f"s{i}", created_at=f"\t\r\n {w}\n\t") for i, w in enumerate(written)
            ],
        }
    )
    assert loaded.reasons() == []
    for rel_path in ("sessions/a.jsonl", "sessions/b.csv", "sessions/c.jsonl"):
        parsed = loaded.rows(
            "SELECT created_at FROM staged_sessions JOIN export_files USING (file_id) "
            "WHERE rel_path = ? ORDER BY pos",
            [rel_path],
        )
        assert dict(zip(written, [t for (t,) in parsed], strict=True)) == CREATED_AT_IN_UTC


BAD_CREATED_AT = [
    "2026-11-01",  # a date alone
    "2026-02-30T10:00:00Z",
    "2026-02-29T10:00:00Z",
    "2026-13-01T10:00:00Z",
    "2026-11-01T24:00:00Z",
    "2026-11-01T10:60:00Z",
    "2026-11-01T10",
    "2026-11-01T10:00:00.Z",
    "2026-11-01T10:00.5Z",
    "2026-11-01T10:00:00+25:00",
    "2026-11-01T10:00:00 Z",
    "01/11/2026 10:00",
    "yesterday",
    "",
    "2026-11-01T10:00:00Z\x0b",  # a vertical tab is not white space here
    "\f2026-11-01T10:00:00Z",
]


def test_bad_created_at(load: Load) -> None:
    loaded = load(
        {"sessions/a.jsonl": [session(f"s{i}", created_at=w) for i, w in enumerate(BAD_CREATED_AT)]}
    )
    reasons = {BAD_CREATED_AT[pos - 1]: reason for pos, reason in loaded.reasons()}
    assert reasons == dict.fromkeys(BAD_CREATED_AT, "bad_created_at")


# --------------------------------------------------------------------------------------
# Record shapes
# --------------------------------------------------------------------------------------


def test_nested_and_flat_records_give_the_same_fields(load: Load) -> None:
    user = {"id": "u1", "email": "A@x.com"}
    scenario = {"id": "sc1", "slug": "one", "name": "One"}
    nested = session("s1", user=user, scenario=scenario)
    flat = flat_session("s2", user_email="A@x.com", scenario_slug="one", scenario_name="One")
    mixed = session("s3", user=..., user_id="u1", user_email="A@x.com", scenario=scenario)
    records = [nested, flat, mixed]
    loaded = load({"sessions/a.jsonl": records, "sessions/b.json": records})
    assert loaded.reasons() == []
    columns = "user_id, user_email, scenario_id, scenario_slug, scenario_name, score"
    expected = ("u1", "A@x.com", "sc1", "one", "One", Decimal("80.5"))
    assert loaded.rows(f"SELECT DISTINCT {columns} FROM staged_sessions") == [expected]
    assert loaded.rows("SELECT count(*) FROM staged_sessions") == [(6,)]


def test_integer_ids_are_kept_as_text(load: Load) -> None:
    record = session(7, user={"id": 42}, scenario={"id": 9})
    loaded = load({"sessions/a.jsonl": [record]})
    assert loaded.staged("session_id, user_id, scenario_id") == [("7", "42", "9")]


def test_nested_null_falls_back_to_the_flat_field(load: Load) -> None:
    record = session("s1", user=None, user_id="u9", scenario={"id": None}, scenario_id="sc9")
    loaded = load({"sessions/a.jsonl": [record]})
    assert loaded.staged("user_id, scenario_id") == [("u9", "sc9")]


def test_unknown_fields_and_input_rank_are_ignored(load: Load) -> None:
    records = [
        session("s1", rank="not-a-rank", extra={"deep": [1, 2]}, notes="hello"),
        session("s2", rank=17, score=10),
        flat_session("s3", rank=None, something_else=True),
    ]
    csv_rows = [
        [*CSV_SESSION_HEADER, "rank", "comment"],
        [*csv_session("c1"), "gold", "whatever, really"],
    ]
    loaded = load({"sessions/a.jsonl": records, "sessions/b.csv": csv_rows})
    assert loaded.reasons() == []
    columns = [c for (c,) in loaded.rows("SELECT column_name FROM (DESCRIBE staged_sessions)")]
    assert "rank" not in columns


# --------------------------------------------------------------------------------------
# Text formats: lines, encodings, compression
# --------------------------------------------------------------------------------------


def test_blank_lines_are_skipped_and_not_counted(load: Load) -> None:
    lines = [session("s1"), "", "   ", session("s2"), "\t", "{bad json", "", session("s3")]
    csv_rows: list[Any] = [
        CSV_SESSION_HEADER,
        "",
        csv_session("c1"),
        "  ",
        "x,y",
        csv_session("c2"),
    ]
    loaded = load({"sessions/a.jsonl": lines, "sessions/b.csv": csv_rows})

    assert loaded.rejects() == [
        ("sessions/a.jsonl", 6, "malformed_record", "{bad json"),
        ("sessions/b.csv", 5, "malformed_record", "x,y"),
    ]
    assert sorted(loaded.staged("session_id, pos", "reject_reason IS NULL")) == [
        ("c1", 3),
        ("c2", 6),
        ("s1", 1),
        ("s2", 4),
        ("s3", 8),
    ]
    assert loaded.file("sessions/a.jsonl").rows_read == 4
    assert loaded.file("sessions/b.csv").rows_read == 3


def test_line_with_record_separator_byte_is_malformed(load: Load) -> None:
    bad = '{"id": "s\x1e2", "user": {"id": "u1"}}'
    lines = [session("s1"), bad, "", "\x1e", " \x1f\x1e ", session("s6")]
    loaded = load({"sessions/a.jsonl": lines})
    # Only spaces, tabs and CRs make a line blank; the separator bytes do not.
    assert loaded.rejects() == [
        ("sessions/a.jsonl", 2, "malformed_record", bad),
        ("sessions/a.jsonl", 4, "malformed_record", "\x1e"),
        ("sessions/a.jsonl", 5, "malformed_record", " \x1f\x1e "),
    ]
    assert sorted(loaded.staged("session_id, pos", "reject_reason IS NULL")) == [
        ("s1", 1),
        ("s6", 6),
    ]


def test_csv_line_of_control_characters_is_not_blank(load: Load) -> None:
    rows: list[Any] = [CSV_SESSION_HEADER, csv_session("c1"), "\x1c", "\x0c", csv_session("c4")]
    loaded = load({"sessions/a.csv": rows})
    assert loaded.reasons() == [(3, "malformed_record"), (4, "malformed_record")]


def test_many_removed_lines_keep_later_line_numbers_right(load: Load) -> None:
    lines: list[Any] = []
    for i in range(1, 41):
        lines.append(session(f"s{i}") if i % 3 else ("" if i % 2 else "{oops"))
    loaded = load({"sessions/a.jsonl": lines})
    accepted = sorted(
        (int(s[1:]), pos) for s, pos in loaded.staged("session_id, pos", "reject_reason IS NULL")
    )
    assert accepted == [(i, i) for i in range(1, 41) if i % 3]
    assert loaded.reasons() == [(i, "malformed_record") for i in range(1, 41) if i % 6 == 0]


def test_csv_row_with_wrong_column_count_is_one_rejected_row(load: Load) -> None:
    loaded = load(
        {
            "sessions/a.csv": [
                CSV_SESSION_HEADER,
                csv_session("c1"),
                "c2,u1,u1@acme.com,sc1,80,120,true,2026-11-01T10:00:00Z,extra",
                "c3,u1",
                csv_session("c4"),
            ]
        }
    )
    assert loaded.reasons() == [(3, "malformed_record"), (4, "malformed_record")]
    assert loaded.staged("session_id, pos", "reject_reason IS NULL") == [("c1", 2), ("c4", 5)]
    assert loaded.file("sessions/a.csv").rows_read == 4


def test_csv_value_spanning_lines_keeps_later_line_numbers(load: Load) -> None:
    header = ",".join(CSV_SESSION_HEADER)
    rest = "sc1,80,1,true,2026-11-01 10:00"
    text = "\n".join(
        [
            header,  # line 1
            f'c1,u1,"two\nlines",{rest}',  # lines 2-3
            "c2,short",  # line 4
            f"c3,u1,,{rest}",  # line 5
            "",  # line 6
            f'c4,u1,"three\r\n\r\nlines",{rest}',  # lines 7-9 (CRLF inside the quotes)
            'c5,short,"also\nshort"',  # lines 10-11
            f"c6,u1,,{rest}",  # line 12
        ]
    )
    loaded = load({"sessions/a.csv": text + "\n"})
    assert loaded.reasons() == [(4, "malformed_record"), (10, "malformed_record")]
    assert loaded.staged("session_id, pos, user_email", "reject_reason IS NULL") == [
        ("c1", 2, "two\nlines"),
        ("c3", 5, None),
        ("c4", 7, "three\r\n\r\nlines"),
        ("c6", 12, None),
    ]


def test_line_numbers_across_read_blocks(load: Load, monkeypatch: pytest.MonkeyPatch) -> None:
    # pyarrow reads text files in blocks; removed lines in every block must still shift
    # the rows after them.
    monkeypatch.setattr(loading, "_BLOCK_SIZE", 1 << 10)
    lines: list[Any] = []
    csv_rows: list[Any] = [CSV_SESSION_HEADER]
    for i in range(1, 201):
        bad = i % 7 == 0 or i % 13 == 0
        lines.append("" if i % 11 == 0 else "{bad" if bad else session(f"s{i}"))
        csv_rows.append("" if i % 11 == 0 else "x,y" if bad else csv_session(f"c{i + 1}"))
    loaded = load({"sessions/a.jsonl": lines, "sessions/b.csv": csv_rows})
    wrong = loaded.rows(
        "SELECT count(*) FROM staged_sessions WHERE reject_reason IS NULL "
        "AND session_id <> CASE file_id WHEN 0 THEN 's' ELSE 'c' END || pos"
    )
    assert wrong == [(0,)]
    bad_lines = [i for i in range(1, 201) if i % 11 and (i % 7 == 0 or i % 13 == 0)]
    assert loaded.rows(
        "SELECT position FROM rejects WHERE source_file = 'sessions/a.jsonl' ORDER BY 1"
    ) == [(i,) for i in bad_lines]
    assert loaded.rows(
        "SELECT position FROM rejects WHERE source_file = 'sessions/b.csv' ORDER BY 1"
    ) == [(i + 1,) for i in bad_lines]


def test_csv_quoted_values(load: Load) -> None:
    header = ",".join(CSV_SESSION_HEADER)
    loaded = load(
        {
            "sessions/a.csv": [
                header,
                '"c,1",u1,"a@x.com",sc1,"82.5",,"true","2026-11-01 10:00"',
            ]
        }
    )
    assert loaded.staged("session_id, score, duration_seconds") == [("c,1", Decimal("82.5"), None)]


def test_bom_is_tolerated(load: Load) -> None:
    bom = b"\xef\xbb\xbf"
    jsonl = (json.dumps(session("s1")) + "\n" + json.dumps(session("s2")) + "\n").encode()
    csv_text = ",".join(CSV_SESSION_HEADER) + "\n" + ",".join(csv_session("c1")) + "\n"
    loaded = load(
        {
            "sessions/a.jsonl": bom + jsonl,
            "sessions/b.csv": bom + csv_text.encode(),
            "sessions/c.json": bom + json.dumps([session("j1")]).encode(),
        }
    )
    assert loaded.reasons() == []
    assert sorted(loaded.staged("session_id, pos", "reject_reason IS NULL")) == [
        ("c1", 2),
        ("j1", 1),
        ("s1", 1),
        ("s2", 2),
    ]


def test_crlf_line_endings(load: Load) -> None:
    jsonl = "\r\n".join([json.dumps(session("s1")), "", "{bad", json.dumps(session("s2"))])
    csv_lines = [",".join(CSV_SESSION_HEADER), ",".join(csv_session("c1")), "c2,short"]
    csv_text = "\r\n".join([*csv_lines, ",".join(csv_session("c3", is_valid_attempt="1"))])
    loaded = load({"sessions/a.jsonl": jsonl + "\r\n", "sessions/b.csv": csv_text + "\r\n"})
    assert loaded.rejects() == [
        ("sessions/a.jsonl", 3, "malformed_record", "{bad"),
        ("sessions/b.csv", 3, "malformed_record", "c2,short"),
    ]
    assert sorted(loaded.staged("session_id, pos, is_valid_attempt", "reject_reason IS NULL")) == [
        ("c1", 2, True),
        ("c3", 4, True),
        ("s1", 1, True),
        ("s2", 4, True),
    ]


def test_gzip_compressed_text_formats(load: Load) -> None:
    loaded = load(
        {
            "sessions/a.jsonl.gz": [session("s1"), "", "{bad", session("s2")],
            "sessions/b.csv.gz": [CSV_SESSION_HEADER, csv_session("c1")],
            "sessions/c.json.gz": {"data": [session("j1"), 3], "pagination": {}},
            "sessions/d.ndjson.gz": [session("n1")],
        }
    )
    assert loaded.rows("SELECT source_file, position, reason FROM rejects ORDER BY 1") == [
        ("sessions/a.jsonl.gz", 3, "malformed_record"),
        ("sessions/c.json.gz", 2, "malformed_record"),
    ]
    assert sorted(s for (s,) in loaded.staged("session_id", "reject_reason IS NULL")) == [
        "c1",
        "j1",
        "n1",
        "s1",
        "s2",
    ]
    formats = {f.path: f.format for f in loaded.result.files}
    assert formats["sessions/a.jsonl.gz"] == "jsonl.gz"


def test_invalid_utf8_line_is_malformed(load: Load) -> None:
    good = json.dumps(session("s1")).encode()
    bad = b'{"id": "s2\xff"}'
    header = ",".join(CSV_SESSION_HEADER).encode()
    row = ",".join(csv_session("c1")).encode()
    loaded = load(
        {
            "sessions/a.jsonl": good + b"\n" + bad + b"\n" + good.replace(b"s1", b"s3"),
            "sessions/b.csv": b"\n".join([header, row.replace(b"u1@", b"\xe9@"), row]),
        }
    )
    assert loaded.rows("SELECT source_file, position, reason FROM rejects ORDER BY 1") == [
        ("sessions/a.jsonl", 2, "malformed_record"),
        ("sessions/b.csv", 2, "malformed_record"),
    ]


def test_rows_read_is_accepted_plus_rejected_per_file(load: Load) -> None:
    loaded = load(
        {
            "sessions/a.jsonl": [session("s1"), "", "{x", session("s2", score="1")],
            "sessions/b.csv": [CSV_SESSION_HEADER, csv_session("c1"), csv_session("")],
            "sessions/c.json": [session("j1"), session("j1")],
            "sessions/d.parquet": [flat_session("p1"), flat_session(None)],
            "members.jsonl": [{"id": "u1"}, {"email": "x"}],
            "group_memberships.csv": [["group_id", "user_id"], ["g1", "u1"], ["g1", ""]],
        }
    )
    stats = {f.path: (f.rows_read, f.rows_accepted, f.rows_rejected) for f in loaded.result.files}
    assert stats == {
        "group_memberships.csv": (2, 1, 1),
        "members.jsonl": (2, 1, 1),
        "sessions/a.jsonl": (3, 1, 2),
        "sessions/b.csv": (2, 1, 1),
        "sessions/c.json": (2, 2, 0),
        "sessions/d.parquet": (2, 1, 1),
    }
    for f in loaded.result.files:
        assert f.rows_read == f.rows_accepted + f.rows_rejected
        assert sum(f.rejects_by_reason.values()) == f.rows_rejected
    assert loaded.result.rejects_by_reason == {
        "bad_score": 1,
        "malformed_record": 1,
        "missing_id": 3,
        "missing_user_id": 1,
    }


# --------------------------------------------------------------------------------------
# Other entities
# --------------------------------------------------------------------------------------


def test_other_entities_reject_rows_without_their_key(load: Load) -> None:
    loaded = load(
        {
            "sessions/a.jsonl": [session("s1")],
            "members/a.jsonl": [{"id": "u1", "email": "a@x.com"}, {"email": "b@x.com"}, "[1]"],
            "scenarios.csv": [["id", "slug", "name"], ["sc1", "one", "One"], [" ", "two", "T"]],
            "groups/g.json": {"data": [{"id": "g1", "name": "G"}, {"id": None}, 7]},
            "group_memberships/m.jsonl": [
                {"group_id": "g1", "user_id": "u1"},
                {"user_id": "u1"},
                {"group_id": "g1", "user_id": ""},
                {"group_id": "", "user_id": ""},
                "{bad",
            ],
            "group_memberships/m.parquet": [
                {"group_id": "g2", "user_id": None},
                {"group_id": None, "user_id": "u2"},
            ],
        }
    )
    assert loaded.reasons("members") == [(2, "missing_id"), (3, "malformed_record")]
    assert loaded.reasons("scenarios") == [(3, "missing_id")]
    assert loaded.reasons("groups") == [(2, "missing_id"), (3, "malformed_record")]
    assert loaded.rows(
        "SELECT source_file, position, reason FROM rejects WHERE entity = 'group_memberships' "
        "ORDER BY 1, 2"
    ) == [
        ("group_memberships/m.jsonl", 2, "missing_group_id"),
        ("group_memberships/m.jsonl", 3, "missing_user_id"),
        ("group_memberships/m.jsonl", 4, "missing_group_id"),
        ("group_memberships/m.jsonl", 5, "malformed_record"),
        ("group_memberships/m.parquet", 1, "missing_user_id"),
        ("group_memberships/m.parquet", 2, "missing_group_id"),
    ]
    assert loaded.rows("SELECT user_id FROM members") == [("u1",)]
    assert loaded.rows("SELECT scenario_id, slug FROM scenarios_export") == [("sc1", "one")]
    assert loaded.rows("SELECT group_id, name FROM groups") == [("g1", "G")]
    assert loaded.rows("SELECT * FROM group_memberships") == [("g1", "u1")]


def test_memberships_are_a_set_of_pairs(load: Load) -> None:
    loaded = load(
        {
            "sessions/a.jsonl": [session("s1")],
            "group_memberships/a.jsonl": [{"group_id": "g1", "user_id": "u1"}] * 3,
            "group_memberships/b.csv": [["user_id", "group_id"], ["u1", "g1"], ["u2", "g1"]],
        }
    )
    assert sorted(loaded.rows("SELECT group_id, user_id FROM group_memberships")) == [
        ("g1", "u1"),
        ("g1", "u2"),
    ]


def test_entities_deduplicate_by_id_last_wins(load: Load) -> None:
    loaded = load(
        {
            "sessions/a.jsonl": [session("s1")],
            "scenarios/a.jsonl": [{"id": "sc1", "name": "old"}, {"id": "sc1", "name": "mid"}],
            "scenarios/b.jsonl": [{"id": "sc1", "name": "new"}, {"id": "sc2", "name": "two"}],
            "groups.jsonl": [{"id": "g1", "name": "first"}, {"id": "g1", "name": "last"}],
        }
    )
    assert sorted(loaded.rows("SELECT scenario_id, name FROM scenarios_export")) == [
        ("sc1", "new"),
        ("sc2", "two"),
    ]
    assert loaded.rows("SELECT group_id, name FROM groups") == [("g1", "last")]


# --------------------------------------------------------------------------------------
# Duplicates
# --------------------------------------------------------------------------------------


def test_duplicates_last_file_by_byte_order_then_last_line_wins(load: Load) -> None:
    loaded = load(
        {
            # Byte order: "B.jsonl" < "a.jsonl" < "a/z.jsonl"? no: "a.jsonl" < "a/..."
            # ('.' 0x2E < '/' 0x2F), and uppercase sorts before lowercase.
            "sessions/B.jsonl": [session("s1", score=10), session("s2", score=20)],
            "sessions/a.jsonl": [
                session("s1", score=11),
                session("s1", score=12),
                session("s3", score=30),
                session("s3", score="bad"),  # rejected rows never win
            ],
            "sessions/a/z.jsonl": [session("s4", score=40)],
            "sessions/a/Z.jsonl": [session("s4", score=41)],
        }
    )
    assert sorted(loaded.rows("SELECT session_id, score FROM sessions")) == [
        ("s1", Decimal("12")),
        ("s2", Decimal("20")),
        ("s3", Decimal("30")),
        ("s4", Decimal("40")),
    ]
    read, accepted, rejected = loaded.result.entity_totals("sessions")
    unique = loaded.rows("SELECT count(*) FROM sessions")[0][0]
    assert (read, accepted, rejected, accepted - unique) == (8, 7, 1, 3)


def test_duplicates_across_formats_follow_the_path_order(load: Load) -> None:
    loaded = load(
        {
            "sessions-2026-11-01.csv": [CSV_SESSION_HEADER, csv_session("s1", score="1")],
            "sessions/x.parquet": [flat_session("s1", score=2.0)],
            "sessions.jsonl": [session("s1", score=3)],
        }
    )
    # "sessions-..." < "sessions.jsonl" < "sessions/x.parquet" in byte order.
    assert loaded.rows("SELECT score FROM sessions") == [(Decimal("2"),)]


# --------------------------------------------------------------------------------------
# Users and emails
# --------------------------------------------------------------------------------------


def _users(loaded: Loaded) -> dict[str, tuple[str | None, bool, bool]]:
    rows = loaded.rows("SELECT user_id, email, is_system, is_member FROM users")
    return {u: (e, s, m) for u, e, s, m in rows}


def test_member_email_wins_over_session_email(load: Load) -> None:
    loaded = load(
        {
            "sessions/a.jsonl": [session("s1", user={"id": "u1", "email": "session@x.com"})],
            "members.jsonl": [{"id": "u1", "email": "  Member@X.com "}],
        }
    )
    assert _users(loaded) == {"u1": ("member@x.com", False, True)}


def test_empty_member_email_falls_back_to_latest_session_email(load: Load) -> None:
    def s(sid: str, user: str, email: Any, created_at: str) -> dict[str, Any]:
        return session(sid, user={"id": user, "email": email}, created_at=created_at)

    loaded = load(
        {
            "sessions/a.jsonl": [
                s("a1", "u1", "old@x.com", "2026-11-01T10:00:00Z"),
                s("a2", "u1", " Newest@X.com ", "2026-11-03T10:00:00Z"),
                s("a3", "u1", None, "2026-11-04T10:00:00Z"),  # no email: skipped
                s("a4", "u1", "  ", "2026-11-05T10:00:00Z"),  # blank email: skipped
                # Same created_at: the highest session id (text order) wins.
                s("b1", "u2", "one@x.com", "2026-11-02T10:00:00Z"),
                s("b9", "u2", "nine@x.com", "2026-11-02T10:00:00Z"),
                s("b10", "u2", "ten@x.com", "2026-11-02T10:00:00Z"),
                # Sessions after the as-of date still count for the email.
                s("c1", "u3", "before@x.com", "2026-11-01T10:00:00Z"),
                s("c2", "u3", "after@x.com", "2030-01-01T10:00:00Z"),
                # A rejected session's email does not count.
                {**s("d1", "u1", "rejected@x.com", "2027-01-01T10:00:00Z"), "score": "x"},
            ],
            "members/m.csv": [["id", "email"], ["u1", " "], ["u2", ""], ["u4", ""]],
        }
    )
    assert _users(loaded) == {
        "u1": ("newest@x.com", False, True),
        "u2": ("nine@x.com", False, True),
        "u3": ("after@x.com", False, False),
        "u4": (None, False, True),
    }


def test_session_email_of_the_deduplicated_session(load: Load) -> None:
    loaded = load(
        {
            "sessions/a.jsonl": [session("s1", user={"id": "u1", "email": "first@x.com"})],
            "sessions/b.jsonl": [session("s1", user={"id": "u1", "email": "regraded@x.com"})],
        }
    )
    assert _users(loaded)["u1"][0] == "regraded@x.com"


SYSTEM_EMAILS = {
    "a@exec.com": True,
    "a@EXEC.com": True,
    " Bot@Exec.Com ": True,
    "a@notexec.com": False,
    "a@mail.exec.com": False,
    "a@exec.com.au": False,
    "exec.com": False,
}


def test_system_users(load: Load) -> None:
    emails = list(SYSTEM_EMAILS)
    loaded = load(
        {
            "sessions/a.jsonl": [
                session(f"s{i}", user={"id": f"u{i}", "email": e}) for i, e in enumerate(emails)
            ],
            "members.jsonl": [{"id": f"m{i}", "email": e} for i, e in enumerate(emails)],
        }
    )
    users = _users(loaded)
    for prefix in ("u", "m"):
        found = {e: users[f"{prefix}{i}"] for i, e in enumerate(emails)}
        assert found == {
            e: (e.strip().lower(), is_system, prefix == "m")
            for e, is_system in SYSTEM_EMAILS.items()
        }


def test_users_are_members_and_users_with_sessions_up_to_as_of(load: Load) -> None:
    loaded = load(
        {
            "sessions/a.jsonl": [
                session("s1", user={"id": "u1"}, created_at="2026-11-26T23:59:59.999999Z"),
                session("s2", user={"id": "u2"}, created_at="2026-11-27T00:00:00Z"),
            ],
            "members.jsonl": [{"id": "m1", "email": "m@x.com"}],
        }
    )
    assert sorted(_users(loaded)) == ["m1", "u1"]


# --------------------------------------------------------------------------------------
# Files that cannot be read
# --------------------------------------------------------------------------------------


def _gzip_truncated(text: str) -> bytes:
    data = gzip.compress(text.encode())
    return data[: len(data) // 2]


def _gzip_corrupt(text: str) -> bytes:
    data = bytearray(gzip.compress(text.encode()))
    for i in range(20, len(data) - 10):  # the deflate stream, between header and trailer
        data[i] ^= 0x5A
    return bytes(data)


UNREADABLE: dict[str, tuple[str, Any]] = {
    "truncated jsonl.gz": (
        "sessions/a.jsonl.gz",
        _gzip_truncated("\n".join(json.dumps(session(f"s{i}")) for i in range(50))),
    ),
    "truncated csv.gz": (
        "sessions/a.csv.gz",
        _gzip_truncated("\n".join([",".join(CSV_SESSION_HEADER)] + [",".join(csv_session())] * 50)),
    ),
    "truncated json.gz": ("sessions/a.json.gz", _gzip_truncated(json.dumps([session()] * 50))),
    "gzip that is not gzip": ("sessions/a.jsonl.gz", b"this is not gzip\n"),
    "corrupt jsonl.gz": ("sessions/a.jsonl.gz", _gzip_corrupt("\n".join(['{"id": 1}'] * 50))),
    "corrupt csv.gz": ("sessions/a.csv.gz", _gzip_corrupt("id\n" + "s1\n" * 50)),
    "corrupt json.gz": ("sessions/a.json.gz", _gzip_corrupt(json.dumps([session()] * 50))),
    "parquet that is not parquet": ("sessions/a.parquet", b"PAR1 not really parquet"),
    "empty parquet file": ("sessions/a.parquet", b""),
    "invalid json": ("sessions/a.json", '[{"id": "s1"},'),
    "json object without data": ("sessions/a.json", {"items": [session()]}),
    "json scalar": ("sessions/a.json", "42"),
    "empty json": ("sessions/a.json", ""),
    "json not utf-8": ("sessions/a.json", b'[{"id": "s\xff"}]'),
    "empty csv": ("sessions/a.csv", ""),
    "csv header repeating a column": ("sessions/a.csv", [[*CSV_SESSION_HEADER, "id"]]),
    "csv without a required column": (
        "sessions/a.csv",
        [[c for c in CSV_SESSION_HEADER if c != "created_at"], ["s1"] * 7],
    ),
    "members csv without id": ("members.csv", [["email"], ["a@x.com"]]),
    "parquet without a required column": (
        "sessions/a.parquet",
        [{k: v for k, v in flat_session().items() if k != "is_valid_attempt"}],
    ),
    "parquet memberships without user_id": ("group_memberships.parquet", [{"group_id": "g"}]),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_file_fails_naming_it(tmp_path: Path, sql_files: list[Any], case: str) -> None:
    rel_path, content = UNREADABLE[case]
    files = {"sessions/0-good.jsonl": [session("s1")], rel_path: content}
    error = _load_error(tmp_path, sql_files, files)
    assert error.path == rel_path
    assert f"cannot read export file {rel_path}: " in str(error)


def _load_error(tmp_path: Path, sql_files: list[Any], files: dict[str, Any]) -> UnreadableFileError:
    """The UnreadableFileError that loading and validating these exports raises."""
    root = write_exports(tmp_path / "exports", files)
    con = connect()
    try:
        with pytest.raises(UnreadableFileError) as info:
            load_exports(con, root, AS_OF, sql_files)
    finally:
        con.close()
    return info.value


def _parquet_with_corrupt_pages() -> bytes:
    """A Parquet file whose footer is intact but whose compressed pages are not."""
    buffer = pa.BufferOutputStream()
    records = [flat_session(f"p{i}") for i in range(2000)]
    pq.write_table(pa.Table.from_pylist(records), buffer, compression="zstd")
    data = bytearray(buffer.getvalue().to_pybytes())
    for i in range(200, 1200):
        data[i] ^= 0x5A
    return bytes(data)


def test_parquet_with_corrupt_pages_fails_naming_it(tmp_path: Path, sql_files: list[Any]) -> None:
    # Loading reads only the footer; the pages are read by validation, which must still
    # name the file rather than the SQL file that happened to read it.
    files = {
        "sessions/a-good.parquet": [flat_session("s1")],
        "sessions/b-corrupt.parquet": _parquet_with_corrupt_pages(),
    }
    error = _load_error(tmp_path, sql_files, files)
    assert error.path == "sessions/b-corrupt.parquet"
    assert "cannot read export file sessions/b-corrupt.parquet: " in str(error)


def test_csv_header_with_a_required_column_missing_names_it(
    tmp_path: Path, sql_files: list[Any]
) -> None:
    header = [c for c in CSV_SESSION_HEADER if c not in ("user_id", "is_valid_attempt")]
    root = write_exports(tmp_path / "exports", {"sessions.csv": [header]})
    con = connect()
    try:
        with pytest.raises(UnreadableFileError, match="user_id, is_valid_attempt"):
            load_exports(con, root, AS_OF, sql_files)
    finally:
        con.close()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file"
)
@pytest.mark.parametrize("name", ["sessions/a.jsonl", "sessions/a.json", "sessions/a.csv"])
def test_file_without_read_permission(tmp_path: Path, sql_files: list[Any], name: str) -> None:
    content: Any = [CSV_SESSION_HEADER, csv_session()] if name.endswith("csv") else [session()]
    root = write_exports(tmp_path / "exports", {name: content})
    (root / name).chmod(0)
    try:
        with pytest.raises(UnreadableFileError) as info:
            load_exports(connect(), root, AS_OF, sql_files)
        assert info.value.path == name
    finally:
        (root / name).chmod(0o644)


@pytest.mark.parametrize("name", ["sessions/a.jsonl", "sessions/a.csv.gz"])
def test_os_error_while_reading_names_the_file(
    tmp_path: Path, sql_files: list[Any], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # Runs as root too, unlike the chmod test above: the error is raised where it would be.
    def denied(export: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(export.path))

    monkeypatch.setattr(loading, "_open_text", denied)
    content: Any = [CSV_SESSION_HEADER, csv_session()] if ".csv" in name else [session()]
    root = write_exports(tmp_path / "exports", {name: content})
    con = connect()
    try:
        with pytest.raises(UnreadableFileError, match="Permission denied") as info:
            load_exports(con, root, AS_OF, sql_files)
    finally:
        con.close()
    assert info.value.path == name


def test_empty_text_files_are_readable_and_hold_no_rows(load: Load) -> None:
    loaded = load(
        {
            "sessions/a.jsonl": "",
            "sessions/b.jsonl": [session("s1")],
            "sessions/c.json": [],
            "sessions/d.json": {"data": [], "pagination": {}},
            "sessions/e.jsonl.gz": "",
            "sessions/f.parquet": pa.Table.from_pylist([], schema=_SESSION_SCHEMA),
            "members.csv": [["id", "email"]],
        }
    )
    stats = {f.path: f.rows_read for f in loaded.result.files}
    assert stats == {
        "sessions/e.jsonl.gz": 0,
        "sessions/f.parquet": 0,
        "members.csv": 0,
        "sessions/a.jsonl": 0,
        "sessions/b.jsonl": 1,
        "sessions/c.json": 0,
        "sessions/d.json": 0,
    }
