"""The synthetic exports generator: determinism, layout, and counts that match the files.

Session files are read back with a small reference classifier written from CONTRACT.md
section 1 (independent of the project's loader), so the report's promises are checked
against what is really on disk.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from scenario_analytics.generate.exports import (
    FORMATS,
    REASONS_BY_FORMAT,
    SESSION_REASONS,
    Format,
    GenerateReport,
    generate_exports,
)

SESSIONS = 3000
SEED = 11
BAD_ROWS = 0.02
ENTITIES = ("sessions", "scenarios", "members", "groups", "group_memberships")
EXTENSIONS = (".jsonl", ".ndjson", ".json", ".csv", ".parquet")

# --- a reference reading of CONTRACT.md section 1 ----------------------------------------

ABSENT: Any = object()

_CREATED_AT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}(?::\d{2})?)?$"
)


def parse_created_at(text: str) -> datetime | None:
    match = _CREATED_AT.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    tz = UTC
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6] or 0))
        tz = timezone(sign * offset)
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micros, tz
        )
    except ValueError:
        return None
    return moment.astimezone(UTC)


def _blank(value: Any) -> bool:
    return value is None or value is ABSENT or str(value).strip() == ""


def _number(value: Any, typed: bool) -> Decimal | None:
    if typed:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return Decimal(str(value))
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _boolean(value: Any, typed: bool) -> bool | None:
    if typed:
        return value if isinstance(value, bool) else None
    if value is None:
        return None
    return {"true": True, "1": True, "false": False, "0": False}.get(str(value).strip().lower())


def classify(record: dict[str, Any], typed: bool) -> str | None:
    """The first reject reason that applies to a parsed session record, or None."""
    for field, reason in (
        ("id", "missing_id"),
        ("user_id", "missing_user_id"),
        ("scenario_id", "missing_scenario_id"),
    ):
        if _blank(record[field]):
            return reason
    created = record["created_at"]
    if not isinstance(created, str) or parse_created_at(created.strip()) is None:
        return "bad_created_at"
    score = record["score"]
    has_score = score is not None and score is not ABSENT
    if has_score:
        number = _number(score, typed)
        if number is None or not 0 <= number <= 100:
            return "bad_score"
    duration = record["duration_seconds"]
    if duration is not None and duration is not ABSENT:
        number = _number(duration, typed)
        if number is None or number < 0:
            return "bad_duration"
    valid = _boolean(record["is_valid_attempt"], typed)
    if valid is None:
        return "bad_is_valid_attempt"
    if valid and not has_score:
        return "valid_attempt_without_score"
    return None


@dataclass(frozen=True)
class SessionRow:
    path: str
    position: int
    reason: str | None
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.record["id"])


def _from_nested(obj: dict[str, Any]) -> dict[str, Any]:
    user = obj.get("user", ABSENT)
    scenario = obj.get("scenario", ABSENT)
    return {
        "id": obj.get("id", ABSENT),
        "user_id": user.get("id", ABSENT) if isinstance(user, dict) else ABSENT,
        "user_email": user.get("email") if isinstance(user, dict) else None,
        "scenario_id": scenario.get("id", ABSENT) if isinstance(scenario, dict) else ABSENT,
        "created_at": obj.get("created_at", ABSENT),
        "score": obj.get("score", ABSENT),
        "duration_seconds": obj.get("duration_seconds", ABSENT),
        "is_valid_attempt": obj.get("is_valid_attempt", ABSENT),
    }


def read_sessions(path: Path, rel: str) -> Iterator[SessionRow]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    yield SessionRow(rel, number, "malformed_record", {"id": None})
                    continue
                if not isinstance(obj, dict):
                    yield SessionRow(rel, number, "malformed_record", {"id": None})
                    continue
                record = _from_nested(obj)
                yield SessionRow(rel, number, classify(record, typed=True), record)
    elif path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows)
            for number, row in enumerate(rows, start=2):
                if len(row) != len(header):
                    yield SessionRow(rel, number, "malformed_record", {"id": None})
                    continue
                flat = {k: (v if v != "" else None) for k, v in zip(header, row, strict=True)}
                yield SessionRow(rel, number, classify(flat, typed=False), flat)
    else:
        for number, obj in enumerate(pq.read_table(path).to_pylist(), start=1):
            record = _from_nested(obj)
            yield SessionRow(rel, number, classify(record, typed=True), record)


def session_rows(report: GenerateReport) -> list[SessionRow]:
    rows: list[SessionRow] = []
    for f in report.files:
        if f["entity"] == "sessions":
            rows.extend(read_sessions(report.out / str(f["path"]), str(f["path"])))
    return rows


def entity_of(rel: str) -> str | None:
    """The contract's rule: a top-level folder named after the entity, or a prefix + -_."""
    parts = rel.split("/")
    if not rel.endswith(EXTENSIONS):
        return None
    if len(parts) > 1:
        return parts[0] if parts[0] in ENTITIES else None
    matches = [e for e in ENTITIES if re.match(re.escape(e) + r"[-_.]", parts[0])]
    return max(matches, key=len) if matches else None


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[Format, GenerateReport]:
    root = tmp_path_factory.mktemp("generated")
    return {
        fmt: generate_exports(root / fmt, SESSIONS, seed=SEED, fmt=fmt, bad_rows=BAD_ROWS)
        for fmt in FORMATS
    }


@pytest.fixture(scope="module")
def rows_by_format(generated: dict[Format, GenerateReport]) -> dict[Format, list[SessionRow]]:
    return {fmt: session_rows(report) for fmt, report in generated.items()}


# --- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_arguments_write_byte_identical_trees(
    fmt: Format, generated: dict[Format, GenerateReport], tmp_path: Path
) -> None:
    again = generate_exports(tmp_path / "again", SESSIONS, seed=SEED, fmt=fmt, bad_rows=BAD_ROWS)
    assert tree_digest(again.out) == tree_digest(generated[fmt].out)
    assert again.to_json() | {"out": ""} == generated[fmt].to_json() | {"out": ""}


@pytest.mark.parametrize("fmt", FORMATS)
def test_another_seed_writes_other_sessions(
    fmt: Format, generated: dict[Format, GenerateReport], tmp_path: Path
) -> None:
    other = generate_exports(tmp_path / "other", SESSIONS, seed=SEED + 1, fmt=fmt)
    before, after = tree_digest(generated[fmt].out), tree_digest(other.out)
    assert before.keys() == after.keys()
    assert all(before[p] != after[p] for p in before if p.startswith("sessions/"))


def test_other_window_arguments_change_the_output(tmp_path: Path) -> None:
    a = generate_exports(tmp_path / "a", 50, start_date="2026-01-01", days=10)
    b = generate_exports(tmp_path / "b", 50, start_date="2026-01-02", days=10)
    c = generate_exports(tmp_path / "c", 50, start_date="2026-01-01", days=11)
    assert len({json.dumps(tree_digest(r.out)) for r in (a, b, c)}) == 3


# --- the report matches the files ----------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_session_counts_match_the_files(
    fmt: Format,
    generated: dict[Format, GenerateReport],
    rows_by_format: dict[Format, list[SessionRow]],
) -> None:
    report, rows = generated[fmt], rows_by_format[fmt]
    per_file = Counter(r.path for r in rows)
    for f in report.files:
        if f["entity"] == "sessions":
            assert per_file[str(f["path"])] == f["rows"], f["path"]
    assert len(rows) == report.sessions_written

    good = [r for r in rows if r.reason is None]
    good_ids = Counter(r.id for r in good)
    assert len(good_ids) == report.sessions_unique_valid == SESSIONS
    assert len(good) - len(good_ids) == report.duplicates
    assert 0.005 * SESSIONS <= report.duplicates <= 0.02 * SESSIONS
    assert set(good_ids.values()) == {1, 2}

    bad = Counter(r.reason for r in rows if r.reason is not None)
    assert bad == Counter({k: v for k, v in report.bad_rows_by_reason.items() if v})
    assert set(report.bad_rows_by_reason) == set(REASONS_BY_FORMAT[fmt])
    assert sum(bad.values()) == round(BAD_ROWS * SESSIONS)
    assert min(bad.values()) >= sum(bad.values()) // len(REASONS_BY_FORMAT[fmt])

    bad_ids = {r.id for r in rows if r.reason is not None and not _blank(r.record["id"])}
    assert not bad_ids & good_ids.keys()


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicates_are_rewritten_later_and_some_are_regraded(
    fmt: Format, rows_by_format: dict[Format, list[SessionRow]]
) -> None:
    seen: dict[str, SessionRow] = {}
    regraded = 0
    for row in rows_by_format[fmt]:  # files in path order, lines in file order
        if row.reason is not None:
            continue
        first = seen.setdefault(row.id, row)
        if first is not row:
            assert (row.path, row.position) > (first.path, first.position)
            assert row.record["created_at"] == first.record["created_at"]
            regraded += row.record["score"] != first.record["score"]
    assert regraded > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_small_entity_counts_match_the_files(
    fmt: Format, generated: dict[Format, GenerateReport]
) -> None:
    report = generated[fmt]
    con = duckdb.connect()
    for f in report.files:
        if f["entity"] == "sessions":
            continue
        path = report.out / str(f["path"])
        if path.suffix == ".json":
            page = json.loads(path.read_text(encoding="utf-8"))
            assert len(page["data"]) == page["pagination"]["total_count"] == f["rows"]
            assert page["pagination"]["page_size"] <= 100
            continue
        reader = {
            ".jsonl": "read_json($p, format = 'newline_delimited')",
            ".csv": "read_csv($p, header = true)",
            ".parquet": "read_parquet($p)",
        }[path.suffix]
        count = con.execute(f"SELECT count(*) FROM {reader}", {"p": str(path)}).fetchone()
        assert count is not None and count[0] == f["rows"], f["path"]


# --- layout --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_layout_follows_the_contract(fmt: Format, generated: dict[Format, GenerateReport]) -> None:
    report = generated[fmt]
    on_disk = sorted(tree_digest(report.out))
    assert [f["path"] for f in report.files] == on_disk
    for f in report.files:
        assert entity_of(str(f["path"])) == f["entity"]
    assert {f["entity"] for f in report.files} == set(ENTITIES)
    parts = [str(f["path"]) for f in report.files if f["entity"] == "sessions"]
    assert parts == [f"sessions/part-{i:04d}.{fmt}" for i in range(1, len(parts) + 1)]
    assert len(parts) >= 2


def test_report_to_json_is_plain_json(generated: dict[Format, GenerateReport]) -> None:
    body = generated["csv"].to_json()
    assert json.loads(json.dumps(body)) == body
    assert list(body) == [
        "out",
        "files",
        "sessions_written",
        "sessions_unique_valid",
        "duplicates",
        "bad_rows_by_reason",
    ]


# --- sizes and arguments ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("sessions", [0, 1, 10, 100])
def test_tiny_sizes(fmt: Format, sessions: int, tmp_path: Path) -> None:
    report = generate_exports(tmp_path / "out", sessions, seed=5, fmt=fmt, bad_rows=0.1)
    rows = session_rows(report)
    assert len(rows) == report.sessions_written
    assert len({r.id for r in rows if r.reason is None}) == sessions
    bad = Counter(r.reason for r in rows if r.reason is not None)
    if sessions == 0:
        assert rows == [] and report.sessions_written == 0
    else:  # any bad_rows > 0 yields every reason the format can express
        reasons = REASONS_BY_FORMAT[fmt]
        assert set(bad) == set(reasons)
        assert sum(bad.values()) == max(round(0.1 * sessions), len(reasons))
        assert bad == Counter(report.bad_rows_by_reason)
    assert {f["entity"] for f in report.files} == set(ENTITIES)


def test_no_bad_rows_by_default(tmp_path: Path) -> None:
    report = generate_exports(tmp_path / "out", 500, fmt="jsonl")
    assert all(r.reason is None for r in session_rows(report))
    assert set(report.bad_rows_by_reason.values()) == {0}


def test_parquet_cannot_express_malformed_records() -> None:
    assert REASONS_BY_FORMAT["parquet"] == SESSION_REASONS[1:]
    assert REASONS_BY_FORMAT["jsonl"] == REASONS_BY_FORMAT["csv"] == SESSION_REASONS


def test_non_empty_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        generate_exports(tmp_path, 10)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_existing_empty_out_is_used(tmp_path: Path) -> None:
    report = generate_exports(tmp_path, 10, fmt="csv")
    assert report.out == tmp_path and report.sessions_unique_valid == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sessions": -1},
        {"fmt": "xml"},
        {"bad_rows": 1.5},
        {"bad_rows": -0.1},
        {"days": 0},
        {"start_date": "26/11/2026"},
        {"seed": 2**63},
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, Any], tmp_path: Path) -> None:
    arguments: dict[str, Any] = {"out": tmp_path / "out", "sessions": 10} | kwargs
    with pytest.raises(ValueError):
        generate_exports(**arguments)
    assert not (tmp_path / "out").exists()


# --- realism -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> GenerateReport:
    return generate_exports(tmp_path_factory.mktemp("realistic") / "out", 20_000, seed=3)


def test_sessions_fall_in_the_window_at_working_hours(realistic: GenerateReport) -> None:
    moments = [
        parse_created_at(str(r.record["created_at"]))
        for r in session_rows(realistic)
        if r.reason is None
    ]
    assert all(m is not None for m in moments)
    start, end = datetime(2026, 8, 29, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)
    assert all(m is not None and start <= m < end for m in moments)
    daytime = sum(m is not None and 7 <= m.hour < 19 for m in moments)
    assert daytime > 0.75 * len(moments)


def test_window_arguments(tmp_path: Path) -> None:
    report = generate_exports(tmp_path / "out", 300, start_date="2026-01-01", days=10)
    moments = [parse_created_at(str(r.record["created_at"])) for r in session_rows(report)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert all(m is not None and start <= m < start + timedelta(days=10) for m in moments)


def test_timestamps_come_in_every_accepted_shape(realistic: GenerateReport) -> None:
    texts = [str(r.record["created_at"]) for r in session_rows(realistic)]
    shapes = {
        "utc": r"T\d\d:\d\d:\d\dZ$",
        "offset": r"[+-]\d\d:\d\d$",
        "hour offset": r"\.\d{6}[+-]\d\d$",
        "naive space": r"^\S+ \d\d:\d\d:\d\d$",
        "naive T": r"T\d\d:\d\d:\d\d$",
        "micros": r"\.\d{6}Z$",
        "millis": r"\.\d{3}Z$",
        "nanos": r"\.\d{9}Z$",
        "no seconds": r"T\d\d:\d\dZ$",
    }
    for name, pattern in shapes.items():
        assert any(re.search(pattern, t) for t in texts), name


def test_users_scores_and_durations_look_real(realistic: GenerateReport) -> None:
    out = realistic.out
    con = duckdb.connect()
    sessions = str(out / "sessions" / "*.parquet")
    members = str(out / "members.parquet")
    scenarios = str(out / "scenarios.parquet")
    stats = con.execute(
        """
        SELECT count(DISTINCT "user".id), count(DISTINCT scenario.id),
               avg((NOT is_valid_attempt)::INT),
               count(*) FILTER (WHERE NOT is_valid_attempt AND score IS NOT NULL),
               count(*) FILTER (WHERE score IN (50, 75, 90)),
               bool_and(score IS NULL OR round(score, 2) = score),
               bool_and(duration_seconds IS NULL OR duration_seconds BETWEEN 60 AND 1200),
               count(*) FILTER (WHERE duration_seconds IS NULL),
               count(*) FILTER (WHERE "user".email <> lower(trim("user".email))),
               count(DISTINCT "user".id) FILTER (WHERE "user".email LIKE '%@exec.com'),
               count(DISTINCT "user".id) FILTER (WHERE "user".email LIKE '%@EXEC.com'),
               count(DISTINCT "user".id) FILTER (
                   WHERE "user".email LIKE '%@notexec.com'
                      OR "user".email LIKE '%@mail.exec.com'),
               count(DISTINCT "user".id) FILTER (
                   WHERE "user".id NOT IN (SELECT id FROM read_parquet($members))),
               count(DISTINCT scenario.id) FILTER (
                   WHERE scenario.id NOT IN (SELECT id FROM read_parquet($scenarios))),
               count(*) FILTER (WHERE transcript_url IS NOT NULL)
        FROM read_parquet($sessions)
        """,
        {"sessions": sessions, "members": members, "scenarios": scenarios},
    ).fetchone()
    assert stats is not None
    (users, n_scenarios, invalid_share, scored_invalid, thresholds, two_decimals, durations,
     no_duration, odd_emails, system, system_upper, lookalikes, former, unexported,
     extra) = stats  # fmt: skip
    assert 20_000 / 80 <= users <= 20_000 / 40
    assert n_scenarios == 3 and unexported == 1
    assert 0.07 <= invalid_share <= 0.13 and scored_invalid > 0
    assert thresholds > 0 and two_decimals and durations and no_duration > 0
    assert odd_emails > 0 and system > 0 and system_upper > 0 and lookalikes > 0
    assert 0.02 * users <= former <= 0.1 * users
    assert extra > 0

    empty_emails = con.execute(
        "SELECT count(*) FROM read_parquet($m) WHERE email = ''", {"m": members}
    ).fetchone()
    assert empty_emails is not None and empty_emails[0] > 0
    groups = con.execute(
        """
        SELECT (SELECT count(*) FROM read_parquet($g)),
               count(*) - count(DISTINCT (group_id, user_id)),
               count(*) FILTER (WHERE group_id NOT IN (SELECT id FROM read_parquet($g)))
        FROM read_parquet($gm)
        """,
        {"g": str(out / "groups.parquet"), "gm": str(out / "group_memberships.parquet")},
    ).fetchone()
    assert groups is not None
    assert groups[0] == 20 and groups[1] > 0 and groups[2] > 0
    ids = con.execute("SELECT id FROM read_parquet($s)", {"s": scenarios}).fetchall()
    assert all(re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", i) for (i,) in ids)


def test_scores_improve_with_practice(realistic: GenerateReport) -> None:
    by_pair: dict[tuple[str, str], list[tuple[datetime, float]]] = {}
    for row in session_rows(realistic):
        r = row.record
        moment = parse_created_at(str(r["created_at"]))
        if row.reason is None and r["is_valid_attempt"] and moment is not None:
            by_pair.setdefault((r["user_id"], r["scenario_id"]), []).append(
                (moment, float(r["score"]))
            )
    improving = total = 0
    for attempts in by_pair.values():
        if len(attempts) >= 6:
            scores = [s for _, s in sorted(attempts)]
            third = len(scores) // 3
            total += 1
            improving += sum(scores[-third:]) > sum(scores[:third])
    assert total > 50 and improving > 0.7 * total


def test_generated_exports_make_a_default_nightly_run_publish(tmp_path: Path) -> None:
    """`generate` ends its data yesterday (UTC) unless told otherwise, so `run` with its
    default as-of date publishes, every check run (issue #28: the data always ended on
    2026-11-26, and the default run exited 4, stale_exports); `--end-date` pins the window."""
    from helpers_ops import cli

    from scenario_analytics.filters import utc_yesterday

    exports, store = tmp_path / "exports", tmp_path / "store"
    done = cli("generate", "--out", str(exports), "--sessions", "3000", "--seed", "3")
    assert done.exit_code == 0, done.stderr
    done = cli("run", "--exports", str(exports), "--snapshots", str(store))
    assert done.exit_code == 0, done.stderr
    assert done.stdout.strip() == str(store / f"snapshot_date={utc_yesterday().isoformat()}")

    pinned = cli("generate", "--out", str(tmp_path / "pinned"), "--sessions", "300",
                 "--end-date", "2026-11-26")  # fmt: skip
    assert pinned.exit_code == 0, pinned.stderr
    library = generate_exports(tmp_path / "library", 300)  # the library's fixed window
    assert {**json.loads(pinned.stdout), "out": ""} == {**library.to_json(), "out": ""}
    for path in sorted(p for p in (tmp_path / "library").rglob("*") if p.is_file()):
        twin = tmp_path / "pinned" / path.relative_to(tmp_path / "library")
        assert twin.read_bytes() == path.read_bytes(), path
