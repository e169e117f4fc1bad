"""The summary's filter parameters, declared once, and requests made of them; and the
participants endpoint's own parameters (sorting and paging, `parse_participants_request`).

Everything else is derived from `FILTERS`: the request parser and the canonical request
key (below), the columns of the `filters` table the summarize SQL reads and
of `summaries.parquet` (`publish/materialize.py`, `publish/snapshot.py`), the keys a job
file's `materialize.requests` accepts (`settings.py`), and the options of `query`
(`cli/options.py`). A new parameter is one entry here, plus the SQL that applies it
(`sql/0130_filter_participants.sql`) and the reference model of the tests.

Kinds:
- `list`: a comma-separated string; items trimmed, empty ones dropped, de-duplicated and
  sorted by bytes; percent-encoded in the key. `lowercase` items are lower-cased first.
- `start` / `end`: an ISO 8601 date or date-time, naive UTC in the key; a date alone is
  the start or the end of its day.
- `flag`: true or false; only `true` appears in the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from urllib.parse import quote

Kind = Literal["list", "start", "end", "flag"]

# The DuckDB type of each kind's column in the `filters` table and summaries.parquet.
SQL_TYPES: dict[Kind, str] = {
    "list": "VARCHAR[]",
    "start": "TIMESTAMP",
    "end": "TIMESTAMP",
    "flag": "BOOLEAN",
}


@dataclass(frozen=True)
class FilterParameter:
    """One query parameter of `GET /scenarios/{id}/analytics/summary`.

    `name` is at once the API's query parameter, the job file's key in
    `materialize.requests`, the column of the `filters` table and of summaries.parquet,
    and (with dashes) the option of `scenario-analytics query`.
    """

    name: str
    kind: Kind
    help: str
    lowercase: bool = False  # list items compared case-insensitively (emails)

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.kind]


FILTERS: tuple[FilterParameter, ...] = (
    FilterParameter("user_ids", "list", "Comma-separated user ids (unioned with --user-emails)."),
    FilterParameter(
        "user_emails",
        "list",
        "Comma-separated emails (unioned with --user-ids).",
        lowercase=True,
    ),
    FilterParameter("group_ids", "list", "Comma-separated workspace group ids."),
    FilterParameter("start_date", "start", "ISO 8601 date or date-time; sessions on or after it."),
    FilterParameter("end_date", "end", "ISO 8601 date or date-time; sessions on or before it."),
    FilterParameter("exclude_system_users", "flag", "Drop sessions of @exec.com users."),
)

FILTER_NAMES: tuple[str, ...] = tuple(f.name for f in FILTERS)


# -- requests: parsing and the canonical key ------------------------------------------------

WHITESPACE = " \t\n\r\x0b\x0c"

# ASCII digits only (re.ASCII): `\d` alone would also accept other scripts' digits.
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$", re.ASCII)
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ]([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.(\d+))?)?"
    r"(Z|([+-])([01]\d|2[0-3])(?::([0-5]\d))?)?$",
    re.ASCII,
)


class RequestError(Exception):
    """A request the API would answer with 400 invalid_request."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict[str, object]:
        return {"error": {"type": "invalid_request", "code": self.code, "message": self.message}}


FilterValue = tuple[str, ...] | datetime | bool | None

_DEFAULTS: dict[Kind, FilterValue] = {"list": (), "start": None, "end": None, "flag": False}


class SummaryRequest:
    """Parsed filters, one value per parameter of `filters.FILTERS` (read as attributes:
    `request.group_ids`): lists trimmed, de-duplicated and sorted; dates as naive UTC;
    flags as bool. Parameters not given take their kind's empty value."""

    __slots__ = ("_values",)

    def __init__(self, **values: FilterValue) -> None:
        unknown = sorted(set(values) - set(FILTER_NAMES))
        if unknown:
            raise TypeError(f"not a filter parameter: {', '.join(unknown)}")
        self._values: dict[str, FilterValue] = {
            f.name: values.get(f.name, _DEFAULTS[f.kind]) for f in FILTERS
        }

    def __getattr__(self, name: str) -> FilterValue:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SummaryRequest) and self._values == other._values

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        given = ", ".join(
            f"{k}={v!r}" for k, v in self._values.items() if v not in ((), None, False)
        )
        return f"SummaryRequest({given})"

    def value(self, name: str) -> FilterValue:
        return self._values[name]

    def items(self) -> list[tuple[FilterParameter, FilterValue]]:
        """Each parameter with its value, in the order of `FILTERS`."""
        return [(f, self._values[f.name]) for f in FILTERS]

    @property
    def key(self) -> str:
        """The canonical request key (contract section 3): parameters in name order,
        empty ones left out."""
        parts: list[str] = []
        for f, value in sorted(self.items(), key=lambda item: item[0].name):
            if f.kind == "list" and value:
                assert isinstance(value, tuple)
                parts.append(f"{f.name}={_encode_list(value)}")
            elif f.kind in ("start", "end") and value is not None:
                assert isinstance(value, datetime)
                parts.append(f"{f.name}={format_timestamp(value)}")
            elif f.kind == "flag" and value:
                parts.append(f"{f.name}=true")
        return "&".join(parts)


def format_timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _encode_list(items: tuple[str, ...]) -> str:
    return ",".join(quote(item, safe="-._~:") for item in items)


def lower_email(text: str) -> str:
    """Lower-case an email exactly as the SQL side's `lower()` does (0050_user_directory.sql).

    DuckDB maps each code point on its own (Unicode simple case mapping); `str.lower`
    applies the full mapping, which differs in two places: `İ` becomes `i` plus a
    combining dot, and a final `Σ` becomes `ς`. Either would make an email stored as
    `ΣΑΣ@X.COM` not match the same text in a request.
    """
    return "".join("i" if ch == "\u0130" else ch.lower() for ch in text)


def is_text(value: str) -> bool:
    """False for strings that hold lone surrogates: a JSON `\\udc80` escape, or bytes of
    a command-line argument that were not UTF-8. They can match no id and cannot be
    bound as SQL values, so they must not get that far."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _split_list(name: str, value: object, lowercase: bool = False) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, str):
        raise RequestError("invalid_parameter", f"{name} must be a comma-separated string")
    if not is_text(value):
        raise RequestError("invalid_parameter", f"{name} is not valid Unicode text")
    items = {item.strip(WHITESPACE) for item in value.split(",")}
    items.discard("")
    if lowercase:
        items = {lower_email(item) for item in items}
    return tuple(sorted(items, key=str.encode))


def parse_timestamp(text: str, *, end_of_day: bool) -> datetime:
    """ISO 8601 date or date-time as naive UTC; a date alone covers its whole day."""
    text = text.strip(WHITESPACE)
    match = _DATE.match(text)
    if match:
        day = date(*(int(g) for g in match.groups()))
        return datetime.combine(day, time.max if end_of_day else time.min)
    match = _DATETIME.match(text)
    if not match:
        raise ValueError(text)
    year, month, day_, hour, minute, second, fraction, zone, sign, off_h, off_m = match.groups()
    micro = int((fraction or "")[:6].ljust(6, "0"))
    value = datetime(
        int(year), int(month), int(day_), int(hour), int(minute), int(second or 0), micro
    )
    if zone and zone != "Z":
        offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
        value = value - offset if sign == "+" else value + offset
    return value


def _parse_date(name: str, value: object, *, end_of_day: bool) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError("invalid_date", f"{name} must be an ISO 8601 date or date-time")
    if not value.strip(WHITESPACE):
        return None
    try:
        return parse_timestamp(value, end_of_day=end_of_day)
    except (ValueError, OverflowError):
        raise RequestError(
            "invalid_date", f"{name} is not an ISO 8601 date or date-time: {value!r}"
        ) from None


def _parse_bool(name: str, value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise RequestError("invalid_parameter", f"{name} must be true or false")


def parse_request(params: Mapping[str, object]) -> SummaryRequest:
    """Check and normalize the API's query parameters; raises RequestError."""
    unknown = sorted(set(params) - set(FILTER_NAMES))
    if unknown:
        raise RequestError("invalid_parameter", f"unknown parameter(s): {', '.join(unknown)}")
    values: dict[str, FilterValue] = {}
    # Dates and their range first, then the rest: the order the API reports errors in.
    dates = [f for f in FILTERS if f.kind in ("start", "end")]
    for f in dates:
        values[f.name] = _parse_date(f.name, params.get(f.name), end_of_day=f.kind == "end")
    for start in (f for f in dates if f.kind == "start"):
        for end in (f for f in dates if f.kind == "end"):
            low, high = values[start.name], values[end.name]
            if isinstance(low, datetime) and isinstance(high, datetime) and low > high:
                raise RequestError("invalid_date_range", f"{start.name} is after {end.name}")
    for f in FILTERS:
        if f.kind == "list":
            values[f.name] = _split_list(f.name, params.get(f.name), f.lowercase)
        elif f.kind == "flag":
            values[f.name] = _parse_bool(f.name, params.get(f.name))
    return SummaryRequest(**values)


# -- the participants endpoint: the summary's filters plus sorting and paging ------------------

# What `sorting` may name (each optionally prefixed with `-` for descending), in the API's
# order; the participants body's field of each.
SORT_FIELDS: tuple[str, ...] = (
    "best_score",
    "first_score",
    "lift_percentage",
    "total_duration_seconds",
    "session_count",
)
SORTINGS: tuple[str, ...] = tuple(v for f in SORT_FIELDS for v in (f, "-" + f))
DEFAULT_SORTING = "-best_score"
MAX_PAGE = 2**31 - 1
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
PAGING_NAMES: tuple[str, ...] = ("sorting", "page", "page_size")


@dataclass(frozen=True)
class ParticipantsRequest:
    """A parsed `GET /scenarios/{id}/analytics/participants` request: the summary's
    filters, a sorting (`best_score`, ... or `-best_score`, ...), and a page."""

    filters: SummaryRequest
    sorting: str = DEFAULT_SORTING
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def descending(self) -> bool:
        return self.sorting.startswith("-")

    @property
    def sort_field(self) -> str:
        return self.sorting.lstrip("-")


def _parse_int(name: str, value: object, low: int, high: int, default: int) -> int:
    """A whole number from low to high: a JSON integer, or decimal digits (ASCII, white
    space around them allowed); empty or absent is the default."""
    if value is None:
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value.strip(WHITESPACE)
        if not text:
            return default
        if text.isascii() and text.isdigit() and len(text) <= 12:
            number = int(text)
    if number is None or not low <= number <= high:
        raise RequestError(
            "invalid_parameter", f"{name} must be a whole number from {low} to {high}"
        )
    return number


def parse_participants_request(params: Mapping[str, object]) -> ParticipantsRequest:
    """Check and normalize the participants endpoint's parameters (the summary's filters,
    checked first and as `parse_request` does, then `sorting`, `page`, `page_size`);
    raises RequestError. An empty value is the default, as for the dates."""
    filters = parse_request({k: v for k, v in params.items() if k not in PAGING_NAMES})
    sorting = params.get("sorting")
    if sorting is None or (isinstance(sorting, str) and not sorting.strip(WHITESPACE)):
        sorting = DEFAULT_SORTING
    if not isinstance(sorting, str) or sorting.strip(WHITESPACE) not in SORTINGS:
        raise RequestError(
            "invalid_parameter",
            f"sorting must be one of {', '.join(SORT_FIELDS)}, optionally prefixed with -",
        )
    return ParticipantsRequest(
        filters,
        sorting.strip(WHITESPACE),
        _parse_int("page", params.get("page"), 1, MAX_PAGE, 1),
        _parse_int("page_size", params.get("page_size"), 1, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE),
    )


def as_of_end(as_of: date) -> datetime:
    """The last microsecond of the as-of day, naive UTC."""
    return datetime.combine(as_of, time.max)


def utc_today() -> date:
    """Today in UTC. Callers look it up as `filters.utc_today()`, so that a test can set
    the clock in one place (`monkeypatch.setattr(filters, "utc_today", ...)`)."""
    return datetime.now(UTC).date()


def utc_yesterday() -> date:
    """The default as-of date: the last whole day, UTC."""
    return utc_today() - timedelta(days=1)
