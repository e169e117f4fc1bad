"""Deterministic synthetic exports folders, computed set-based inside DuckDB.

Every pseudo-random value is a stable hash of (seed, row number, salt): no Python loop runs
over sessions or users, and two runs with the same arguments write byte-identical files.
The folder follows CONTRACT.md section 1 and carries the oddities a real export has
(offsets and naive timestamps, odd-cased emails, former members, re-graded duplicates,
system users), plus, on request, rows the loader must reject, one reason per row.
"""

from __future__ import annotations

import importlib.resources
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

from scenario_analytics.ingest.entities import SESSION_REASONS

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")

# The default window ends on this fixed date, so that output does not depend on the clock.
DEFAULT_END_DATE = date(2026, 11, 26)


# Parquet is typed: a row cannot fail to parse, so it cannot carry `malformed_record`.
REASONS_BY_FORMAT: dict[Format, tuple[str, ...]] = {
    "jsonl": SESSION_REASONS,
    "csv": SESSION_REASONS,
    "parquet": SESSION_REASONS[1:],
}

DUPLICATE_RATE = 0.01

# DuckDB spills to a temporary folder past this; a part file is sorted within it.
MEMORY_LIMIT = "1GB"

CSV_SESSION_HEADER = (
    "id,user_id,user_email,user_first_name,user_last_name,scenario_id,scenario_slug,"
    "scenario_name,score,rank,duration_seconds,is_valid_attempt,created_at"
)

_MAX_SEED = 2**63


@dataclass(frozen=True)
class GenerateReport:
    """What `generate_exports` wrote, with the counts a loader should reproduce."""

    out: Path
    files: list[dict[str, object]]
    sessions_written: int
    sessions_unique_valid: int
    duplicates: int
    bad_rows_by_reason: dict[str, int]

    def to_json(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "files": [dict(f) for f in self.files],
            "sessions_written": self.sessions_written,
            "sessions_unique_valid": self.sessions_unique_valid,
            "duplicates": self.duplicates,
            "bad_rows_by_reason": dict(self.bad_rows_by_reason),
        }


@dataclass(frozen=True)
class _Plan:
    """Sizes derived from the arguments; everything else is a hash of the seed."""

    seed: int
    sessions: int
    users: int  # users that can have sessions
    extra_members: int  # members that never practised
    scenarios: int
    groups: int
    orphan_group: bool  # a group id that only memberships know
    parts: int
    bad: int
    reasons: tuple[str, ...]
    start_us: int
    days: int

    def part_bounds(self, part: int) -> tuple[int, int]:
        return part * self.sessions // self.parts, (part + 1) * self.sessions // self.parts

    def duplicate_source(self, part: int) -> tuple[int, int]:
        """Session range whose duplicates are re-written in `part`.

        A duplicate goes to the next part file (an overlapping re-export); the last part's
        own duplicates are repeated at its end, where the later line wins.
        """
        last = part == self.parts - 1
        if part == 0 and not last:
            return 0, 0
        return (
            self.part_bounds(max(part - 1, 0))[0],
            self.part_bounds(part if last else part - 1)[1],
        )

    def bad_by_reason(self) -> dict[str, int]:
        count = len(self.reasons)
        return {
            reason: self.bad // count + (1 if index < self.bad % count else 0)
            for index, reason in enumerate(self.reasons)
        }


def _plan(
    sessions: int,
    seed: int,
    fmt: str,
    bad_rows: float,
    start_date: str | None,
    days: int,
    end_date: date | None = None,
) -> _Plan:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 0:
        raise ValueError(f"sessions must be a non-negative integer, got {sessions!r}")
    if not -_MAX_SEED <= seed < _MAX_SEED:
        raise ValueError(f"seed must fit in 64 bits, got {seed}")
    if not 0.0 <= bad_rows <= 1.0:
        raise ValueError(f"bad_rows must be a share between 0 and 1, got {bad_rows}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if start_date is not None and end_date is not None:
        raise ValueError("give start_date or end_date, not both")
    if start_date is None:
        end = end_date or DEFAULT_END_DATE
        start = date.fromordinal(end.toordinal() - (days - 1))
    else:
        try:
            start = date.fromisoformat(start_date)
        except ValueError as exc:
            raise ValueError(f"start_date must be YYYY-MM-DD, got {start_date!r}") from exc
    reasons = REASONS_BY_FORMAT[fmt]
    bad = int(bad_rows * sessions + 0.5)
    if bad_rows > 0 and sessions > 0:
        bad = max(bad, len(reasons))  # every reason the format can express, at least once
    users = max(5, sessions // 40)
    extra_members = max(1, users // 20)
    if sessions < 10:
        parts = 1
    elif sessions < 1000:
        parts = 2
    else:
        parts = min(8, 3 + sessions // 2_000_000)
    return _Plan(
        seed=seed,
        sessions=sessions,
        users=users,
        extra_members=extra_members,
        scenarios=min(500, max(3, sessions // 50_000)),
        groups=max(1, min(20, (users + extra_members) // 4)),
        orphan_group=users + extra_members >= 40,
        parts=parts,
        bad=bad,
        reasons=reasons,
        start_us=(start - date(1970, 1, 1)).days * 86_400_000_000,
        days=days,
    )


# --- SQL ---------------------------------------------------------------------------------
# The SQL lives in the `.sql` files beside this module (package data, one file per table or
# query, each opening with a `-- Purpose:` line); a statement ends with `;` at a line end.
# Values reach SQL as bound parameters or through the one-row `cfg` table; the seed is a
# session variable so that macros can read it.

_SQL_PACKAGE = "scenario_analytics.generate"
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)


def _is_code(text: str) -> bool:
    """Whether `text` holds more than blank lines and `--` comments."""
    return any(line.strip() and not line.lstrip().startswith("--") for line in text.splitlines())


def _sql_statements(name: str) -> tuple[str, ...]:
    """The statements of the SQL file `name`, in order, without their closing `;`."""
    text = importlib.resources.files(_SQL_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    parts = (part.strip() for part in _STATEMENT_END.split(text))
    return tuple(part for part in parts if _is_code(part))


def _sql(name: str) -> str:
    """The one statement of the SQL file `name` (a query may be wrapped in a COPY)."""
    statements = _sql_statements(name)
    if len(statements) != 1:
        raise RuntimeError(f"{name} must hold one statement, found {len(statements)}")
    return statements[0]


_SQL_SEED = _sql("seed.sql")
_SQL_MACROS = _sql_statements("macros.sql")
_SQL_CFG = _sql("cfg.sql")
_SQL_SCENARIOS = _sql("scenarios.sql")
_SQL_USERS = _sql("users.sql")
_SQL_GROUPS = _sql("groups.sql")
_SQL_MEMBERSHIPS = _sql("memberships.sql")
_SQL_DUPLICATES = _sql("duplicates.sql")
_SQL_SLOTS = _sql("slots.sql")
_SQL_SESSION_ROWS = _sql("session_rows.sql")

_SQL_SESSIONS: dict[Format, str] = {
    "jsonl": _sql("sessions_jsonl.sql"),
    "csv": _sql("sessions_csv.sql"),
    "parquet": _sql("sessions_parquet.sql"),
}

_SQL_SCENARIO_RECORDS = _sql("scenario_records.sql")
_SQL_MEMBER_RECORDS = _sql("member_records.sql")
_SQL_MEMBER_RECORDS_BOM = _sql("member_records_bom.sql")
_SQL_GROUP_RECORDS = _sql("group_records.sql")
_SQL_GROUP_PAGE = _sql("group_page.sql")
_SQL_GROUP_COUNT = _sql("group_count.sql")
_SQL_MEMBERSHIP_RECORDS = _sql("membership_records.sql")
_SQL_DUPLICATE_COUNT = _sql("duplicate_count.sql")

# The CSV members header starts with a byte order mark, an invisible character in the file:
# refuse to run without it rather than write different bytes.
if '"\ufeffid"' not in _SQL_MEMBER_RECORDS_BOM:
    raise RuntimeError("member_records_bom.sql lost the byte order mark of its first column")

_COPY_OPTIONS = {
    "parquet": "(FORMAT PARQUET, COMPRESSION ZSTD)",
    "csv": "(FORMAT CSV, HEADER true)",
    "jsonl": "(FORMAT JSON)",
    # one text line per row, written as is
    "lines": "(FORMAT CSV, HEADER false, QUOTE '', ESCAPE '', DELIMITER E'\\x1f')",
    # an API list page: one line that holds every record
    "page": "(FORMAT CSV, HEADER false, QUOTE '', ESCAPE '', DELIMITER E'\\x1f')",
}

# entity -> (relative path, query, writer) by format; the page and the BOM show the loader
# more of the accepted shapes.
_SMALL_ENTITIES: tuple[tuple[str, dict[Format, tuple[str, str, str]]], ...] = (
    (
        "scenarios",
        {
            "jsonl": ("scenarios.jsonl", _SQL_SCENARIO_RECORDS, "jsonl"),
            "csv": ("scenarios.csv", _SQL_SCENARIO_RECORDS, "csv"),
            "parquet": ("scenarios.parquet", _SQL_SCENARIO_RECORDS, "parquet"),
        },
    ),
    (
        "members",
        {
            "jsonl": ("members.jsonl", _SQL_MEMBER_RECORDS, "jsonl"),
            "csv": ("members.csv", _SQL_MEMBER_RECORDS_BOM, "csv"),
            "parquet": ("members.parquet", _SQL_MEMBER_RECORDS, "parquet"),
        },
    ),
    (
        "groups",
        {
            "jsonl": ("groups.json", _SQL_GROUP_PAGE, "page"),
            "csv": ("groups.csv", _SQL_GROUP_RECORDS, "csv"),
            "parquet": ("groups.parquet", _SQL_GROUP_RECORDS, "parquet"),
        },
    ),
    (
        "group_memberships",
        {
            "jsonl": ("group_memberships.csv", _SQL_MEMBERSHIP_RECORDS, "csv"),
            "csv": ("group_memberships.csv", _SQL_MEMBERSHIP_RECORDS, "csv"),
            "parquet": ("group_memberships.parquet", _SQL_MEMBERSHIP_RECORDS, "parquet"),
        },
    ),
)


def _copy(
    con: duckdb.DuckDBPyConnection,
    query: str,
    target: Path,
    writer: str,
    params: dict[str, object] | None = None,
) -> int:
    """Write `query`'s rows to `target`; return the number of rows written."""
    statement = f"COPY ({query}) TO $path {_COPY_OPTIONS[writer]}"
    row = con.execute(statement, {**(params or {}), "path": str(target)}).fetchone()
    return int(row[0]) if row else 0


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    row = con.execute(query).fetchone()
    return int(row[0]) if row else 0


def generate_exports(
    out: Path,
    sessions: int,
    seed: int = 0,
    fmt: Format = "parquet",
    bad_rows: float = 0.0,
    *,
    start_date: str | None = None,
    days: int = 90,
    end_date: date | None = None,
) -> GenerateReport:
    """Write a synthetic exports folder to `out` and report what it holds.

    `sessions` good sessions with distinct ids are spread over `days` days starting on
    `start_date`, or ending on `end_date` (default: the window ending on 2026-11-26, so
    that the output does not depend on the clock); about 1% of them are written a
    second time in a later part file, and `round(bad_rows * sessions)` extra rows (at least
    one per reason the format can express when `bad_rows > 0`) must be rejected by the
    loader, spread evenly over the reasons.
    """
    plan = _plan(sessions, seed, fmt, bad_rows, start_date, days, end_date)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"output folder is not empty: {out}")
    (out / "sessions").mkdir()

    files: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="generate-spill-") as spill:
        con = duckdb.connect(config={"temp_directory": spill, "memory_limit": MEMORY_LIMIT})
        try:
            _prepare(con, plan)
            for entity, layouts in _SMALL_ENTITIES:
                relative, query, writer = layouts[fmt]
                rows = _copy(con, query, out / relative, writer)
                if writer == "page":
                    rows = _count(con, _SQL_GROUP_COUNT)
                files.append({"path": relative, "entity": entity, "rows": rows})
            for part in range(plan.parts):
                relative = f"sessions/part-{part + 1:04d}.{fmt}"
                lo, hi = plan.part_bounds(part)
                dlo, dhi = plan.duplicate_source(part)
                con.execute(_SQL_SLOTS, {"lo": lo, "hi": hi, "dlo": dlo, "dhi": dhi})
                params: dict[str, object] | None = (
                    {"header": CSV_SESSION_HEADER} if fmt == "csv" else None
                )
                writer = "parquet" if fmt == "parquet" else "lines"
                rows = _copy(con, _SQL_SESSIONS[fmt], out / relative, writer, params)
                if fmt == "csv":
                    rows -= 1  # the header line
                files.append({"path": relative, "entity": "sessions", "rows": rows})
            duplicates = _count(con, _SQL_DUPLICATE_COUNT)
        finally:
            con.close()

    files.sort(key=lambda f: str(f["path"]))
    return GenerateReport(
        out=out,
        files=files,
        sessions_written=plan.sessions + duplicates + plan.bad,
        sessions_unique_valid=plan.sessions,
        duplicates=duplicates,
        bad_rows_by_reason=plan.bad_by_reason(),
    )


def _prepare(con: duckdb.DuckDBPyConnection, plan: _Plan) -> None:
    """Create the macros and the small tables every session row draws from."""
    con.execute(_SQL_SEED, {"seed": plan.seed})
    for statement in _SQL_MACROS:
        con.execute(statement)
    con.execute(
        _SQL_CFG,
        {
            "sessions": plan.sessions,
            "users": plan.users,
            "extra_members": plan.extra_members,
            "scenarios": plan.scenarios,
            "groups": plan.groups,
            "orphan_group": plan.orphan_group,
            "days": plan.days,
            "start_us": plan.start_us,
            "bad": plan.bad,
            "reasons": list(plan.reasons),
            "dup_rate": DUPLICATE_RATE,
        },
    )
    for statement in (
        _SQL_SCENARIOS,
        _SQL_USERS,
        _SQL_GROUPS,
        _SQL_MEMBERSHIPS,
        _SQL_DUPLICATES,
    ):
        con.execute(statement)
    con.execute(_SQL_SLOTS, {"lo": 0, "hi": 0, "dlo": 0, "dhi": 0})  # the macro binds to it
    con.execute(_SQL_SESSION_ROWS)
