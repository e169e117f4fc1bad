"""Summary requests: parsing the API's filter parameters and their canonical request key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import quote

PARAMETERS = (
    "user_ids",
    "user_emails",
    "group_ids",
    "start_date",
    "end_date",
    "exclude_system_users",
)
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


@dataclass(frozen=True)
class SummaryRequest:
    """Parsed filters: lists trimmed, de-duplicated and sorted; dates as naive UTC."""

    user_ids: tuple[str, ...] = ()
    user_emails: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    start_date: datetime | None = None
    end_date: datetime | None = None
    exclude_system_users: bool = False

    @property
    def key(self) -> str:
        """The canonical request key (contract section 3)."""
        parts: list[str] = []
        if self.end_date is not None:
            parts.append(f"end_date={format_timestamp(self.end_date)}")
        if self.exclude_system_users:
            parts.append("exclude_system_users=true")
        if self.group_ids:
            parts.append(f"group_ids={_encode_list(self.group_ids)}")
        if self.start_date is not None:
            parts.append(f"start_date={format_timestamp(self.start_date)}")
        if self.user_emails:
            parts.append(f"user_emails={_encode_list(self.user_emails)}")
        if self.user_ids:
            parts.append(f"user_ids={_encode_list(self.user_ids)}")
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


def _split_list(name: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, str):
        raise RequestError("invalid_parameter", f"{name} must be a comma-separated string")
    if not is_text(value):
        raise RequestError("invalid_parameter", f"{name} is not valid Unicode text")
    items = {item.strip(WHITESPACE) for item in value.split(",")}
    items.discard("")
    if name == "user_emails":
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
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise RequestError("invalid_parameter", f"unknown parameter(s): {', '.join(unknown)}")
    start = _parse_date("start_date", params.get("start_date"), end_of_day=False)
    end = _parse_date("end_date", params.get("end_date"), end_of_day=True)
    if start is not None and end is not None and start > end:
        raise RequestError("invalid_date_range", "start_date is after end_date")
    return SummaryRequest(
        user_ids=_split_list("user_ids", params.get("user_ids")),
        user_emails=_split_list("user_emails", params.get("user_emails")),
        group_ids=_split_list("group_ids", params.get("group_ids")),
        start_date=start,
        end_date=end,
        exclude_system_users=_parse_bool(
            "exclude_system_users", params.get("exclude_system_users")
        ),
    )


def as_of_end(as_of: date) -> datetime:
    """The last microsecond of the as-of day, naive UTC."""
    return datetime.combine(as_of, time.max)


def utc_today() -> date:
    return datetime.now(UTC).date()
