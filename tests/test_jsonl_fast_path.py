"""JSON Lines read through DuckDB's line split give exactly what pyarrow's split gives.

`readers/jsonl.py` splits a plain file with DuckDB (lines numbered in order, then parsed
on all threads, raw text filled in afterwards for rejected rows) and leaves every other
file to pyarrow's split, the reference. Each test loads the same exports both ways
(`jsonl.DUCKDB_SPLIT` off is the reference) and compares everything validation leaves:
staged rows, rejects with their positions and raw text, per-file counts. A few lines
are also checked against hand-written values, so that both ways being wrong alike fails.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import AS_OF, session, write_exports

from scenario_analytics.engine.database import connect
from scenario_analytics.engine.sql_files import load_sql_files
from scenario_analytics.ingest.readers import jsonl
from scenario_analytics.pipeline.staging import load_exports


def _line(record: Any) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


# Awkward and well-formed lines, all valid UTF-8 with line feeds only: DuckDB can split
# them. Comments give the line number (blank lines count).
AWKWARD: list[bytes] = [
    _line(session("ok-1")),  # 1
    _line(session("score-null", score=None)),  # 2: valid attempt without score
    _line(session("score-absent", score=..., is_valid_attempt=False)),  # 3: accepted
    b'{"id":"big-score","user":{"id":"u1"},"scenario":{"id":"sc1"},"score":'
    b"1234567890123456789012345"
    b',"is_valid_attempt":true,"created_at":"2026-11-20T10:00:00Z"}',  # 4: bad_score
    _line(session("half-up", score=89.99995)),  # 5: 90.0000
    b"",  # 6: blank
    b"   \t ",  # 7: white space only
    _line(session("string-score", score="82.5")),  # 8: bad_score
    _line(session("string-bool", is_valid_attempt="true")),  # 9: bad_is_valid_attempt
    b'{"id":"nested-id","user":{"id":{"x":1}},"scenario":{"id":"sc1"},"score":50,'
    b'"is_valid_attempt":true,"created_at":"2026-11-20T10:00:00Z"}',  # 10: object id
    b"[1, 2]",  # 11: not an object
    b'"a string"',  # 12: not an object
    b"42",  # 13: not an object
    b"{not json",  # 14: malformed
    b'{"id":"dup","id":"dup-2","user":{"id":"u1"},"scenario":{"id":"sc1"},"score":70,'
    b'"is_valid_attempt":true,"created_at":"2026-11-20T10:00:00Z"}',  # 15: first key wins
    _line(session(12345)),  # 16: integer id, kept as text
    _line(session(1.5)),  # 17: number id: missing_id
    _line(session('esc\\"aped\u00e9\n', user={"id": "u\t1", "email": "A@X.com"})),  # 18
    _line(session("exact", score=100.0000000000000001)),  # 19: the digits as written
    b'{"id":"exact-2","user":{"id":"u1"},"scenario":{"id":"sc1"},'
    b'"score":100.0000000000000001,"duration_seconds":31536000.0000000000001,'
    b'"is_valid_attempt":true,"created_at":"2026-11-20T10:00:00Z"}',  # 20: bad_score
    _line({**session("flat-null"), "user": {"id": None}, "user_id": "u-flat"}),  # 21
    _line(session("no-user", user=None)),  # 22: missing_user_id
    _line(session("dur-string", duration_seconds="120")),  # 23: bad_duration
    b'  {"id":"padded","user":{"id":"u1"},"scenario":{"id":"sc1"},"score":60,'
    b'"is_valid_attempt":false,"created_at":"2026-11-20T10:00:00Z"}  ',  # 24
    _line(session("exp-score", score=1e1)),  # 25
    b'{"id":"nan","user":{"id":"u1"},"scenario":{"id":"sc1"},"score":NaN,'
    b'"is_valid_attempt":true,"created_at":"2026-11-20T10:00:00Z"}',  # 26
    _line(session("")),  # 27: missing_id
    _line(session("bad-date", created_at="2026-11-20")),  # 28: bad_created_at
    _line(session("ok-last")),  # 29
]


def _file(lines: list[bytes], end: bytes = b"\n", last: bool = True) -> bytes:
    return end.join(lines) + (end if last else b"")


def _snapshot(con: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Everything loading and validating leave for the sessions, in a fixed order."""
    return {
        "staged": con.execute(
            "SELECT f.rel_path, s.* EXCLUDE (file_id) FROM staged_sessions s "
            "JOIN export_files f USING (file_id) ORDER BY f.rel_path, s.pos"
        ).fetchall(),
        "rejects": con.execute(
            "SELECT entity, source_file, position, reason, raw FROM rejects "
            "ORDER BY entity, source_file, position"
        ).fetchall(),
        "members": con.execute(
            "SELECT f.rel_path, s.* EXCLUDE (file_id) FROM staged_members s "
            "JOIN export_files f USING (file_id) ORDER BY f.rel_path, s.pos"
        ).fetchall(),
    }


@pytest.fixture
def load_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any], list[str]]]]:
    """Load exports with DuckDB's split and with pyarrow's; return both snapshots and the
    files DuckDB's split took."""
    sql_files = load_sql_files()
    split = jsonl.split_lines
    taken: list[str] = []

    def spy(con: Any, export: Any) -> bool:
        ok = split(con, export)
        if ok and jsonl.DUCKDB_SPLIT:
            taken.append(export.rel_path)
        return ok

    monkeypatch.setattr(jsonl, "split_lines", spy)

    def _load(files: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        root = write_exports(tmp_path / "exports", files)
        results = []
        for duckdb_split in (True, False):
            monkeypatch.setattr(jsonl, "DUCKDB_SPLIT", duckdb_split)
            con = connect()
            try:
                loaded = load_exports(con, root, AS_OF, sql_files)
                stats = [
                    (f.path, f.rows_read, f.rows_accepted, f.rows_rejected) for f in loaded.files
                ]
                results.append({**_snapshot(con), "files": stats})
            finally:
                con.close()
        return results[0], results[1], sorted(set(taken))

    yield _load


def test_awkward_lines_give_what_pyarrows_split_gives(load_both: Any) -> None:
    fast, reference, taken = load_both({"sessions/a.jsonl": _file(AWKWARD)})
    assert taken == ["sessions/a.jsonl"]  # DuckDB's split did take the file
    assert fast == reference


def test_hand_written_values(load_both: Any) -> None:
    fast, reference, _taken = load_both({"sessions/a.jsonl": _file(AWKWARD)})
    assert fast == reference
    reasons = {pos: reason for _e, _f, pos, reason, _raw in fast["rejects"]}
    assert reasons == {
        2: "valid_attempt_without_score",
        4: "bad_score",
        8: "bad_score",
        9: "bad_is_valid_attempt",
        10: "missing_user_id",
        11: "malformed_record",
        12: "malformed_record",
        13: "malformed_record",
        14: "malformed_record",
        17: "missing_id",
        20: "bad_score",
        22: "missing_user_id",
        23: "bad_duration",
        26: "bad_score",
        27: "missing_id",
        28: "bad_created_at",
    }
    # A rejected well-formed line keeps its text, as written.
    raws = {pos: raw for _e, _f, pos, _reason, raw in fast["rejects"]}
    assert raws[4] == AWKWARD[3].decode()
    assert raws[28] == AWKWARD[27].decode()
    assert raws[14] == "{not json"
    staged = {row[1]: row for row in fast["staged"]}  # by position
    # rel_path, pos, kind, raw, reject_reason, session_id (5), user_id (6), ..., score (14)
    score_at = 14
    assert staged[5][5] == "half-up" and staged[5][score_at] == Decimal("90.0000")
    assert staged[15][5] == "dup"
    assert staged[16][5] == "12345"
    assert staged[18][5] == 'esc\\"aped\u00e9\n' and staged[18][6] == "u\t1"
    assert staged[19][score_at] == Decimal("100.0000")  # 100.0000000000000001, rounded
    assert staged[21][6] == "u-flat"  # a nested null lets the flat field in
    assert staged[24][5] == "padded"
    assert staged[25][score_at] == Decimal("10.0000")
    assert 6 not in staged and 7 not in staged  # blank lines are no rows
    assert fast["files"] == [("sessions/a.jsonl", 27, 11, 16)]


@pytest.mark.parametrize(
    "name, content, duckdb_takes_it",
    [
        ("no-final-line-feed", _file(AWKWARD, last=False), True),
        ("bom", b"\xef\xbb\xbf" + _file(AWKWARD), True),
        ("blank-lines-at-end", _file([*AWKWARD, b"", b"  "]), True),
        ("crlf", _file(AWKWARD, end=b"\r\n"), False),
        ("lone-cr", _file(AWKWARD[:5]) + b"\r" + _file(AWKWARD[5:]), False),
        ("bad-utf8", _file([*AWKWARD[:3], b'{"id":"\xff\xfe"}', *AWKWARD[3:]]), False),
        ("record-separator", _file([*AWKWARD[:3], b'{"id":"a"}\x1e', *AWKWARD[3:]]), False),
        ("nul-byte", _file([*AWKWARD[:3], b'{"id":"a\x00b"}', *AWKWARD[3:]]), True),
    ],
)
def test_file_shapes(load_both: Any, name: str, content: bytes, duckdb_takes_it: bool) -> None:
    fast, reference, taken = load_both({f"sessions/{name}.jsonl": content})
    assert fast == reference
    assert taken == ([f"sessions/{name}.jsonl"] if duckdb_takes_it else [])


def test_gzip_and_other_entities(load_both: Any) -> None:
    members = [
        {"id": "m1", "email": "a@x.com"},
        {"id": None, "email": "b@x.com"},
        {"id": 7, "email": None},
        "",
        "[]",
        {"id": "m4", "email": {"nested": True}},
    ]
    fast, reference, taken = load_both(
        {
            "sessions/a.jsonl.gz": gzip.compress(_file(AWKWARD)),
            "sessions/b.ndjson": _file(AWKWARD[::-1]),
            "members.jsonl": members,
        }
    )
    assert fast == reference
    assert taken == ["members.jsonl", "sessions/b.ndjson"]  # gzip: pyarrow
    assert [r[3] for r in fast["rejects"] if r[0] == "members"] == [
        "missing_id",
        "malformed_record",
    ]


def test_many_lines_keep_their_numbers(load_both: Any) -> None:
    """Lines numbered across DuckDB's reading blocks: ids say where each line was."""
    lines = [_line(session(f"s{n}", score=n % 101)) if n % 97 else b"" for n in range(1, 60001)]
    lines[12344] = b"{bad"
    fast, reference, taken = load_both({"sessions/big.jsonl": _file(lines)})
    assert taken == ["sessions/big.jsonl"]
    assert fast == reference
    staged = {row[1]: row[5] for row in fast["staged"]}
    assert all(staged[pos] == f"s{pos}" for pos in staged if pos != 12345)
    assert [(r[2], r[3]) for r in fast["rejects"]] == [(12345, "malformed_record")]
