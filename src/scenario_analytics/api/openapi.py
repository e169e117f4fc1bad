"""The OpenAPI 3.1 description of the two endpoints: parameter schemas as strict as the
parsers (`filters.parse_request`, `filters.parse_participants_request`), response bodies,
the bearer security scheme.

Parameters are declared for the description only: the server reads them from the raw
query string itself, so that every error is an Exec error body (`api/http.py`). A
schema that admits a value the server rejects is a bug; `tests/test_serve_openapi.py`
compares each pattern with its parser on generated strings. `docs/openapi.json` is the
committed copy (`scenario-analytics serve --print-openapi > docs/openapi.json`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from scenario_analytics.filters import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SORTING,
    FILTERS,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    SORTINGS,
    WHITESPACE,
)

# -- patterns -------------------------------------------------------------------------------
# JSON Schema patterns are ECMA-262 regular expressions; these use only what ECMA-262 and
# Python's `re` read alike (classes, \uXXXX escapes, groups, lookahead).


def _char_class(chars: str) -> str:
    return "[" + "".join(f"\\u{ord(c):04x}" for c in sorted(set(chars))) + "]"


# What `filters.parse_timestamp` strips: ASCII white space.
_WS = _char_class(WHITESPACE)
# What `str.strip()` strips (`filters._parse_bool`): every character Python calls space.
_UNICODE_WS = _char_class("".join(chr(c) for c in range(0x3001) if chr(c).isspace()))

_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_LEAP_DAY = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29"
# A calendar date of years 0001..9999, as `datetime.date` accepts it.
DATE = f"(?!0000)(?:[0-9]{{4}}-{_MONTH_DAY}|{_LEAP_DAY})"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]+)?)?"
_OFFSET = "(?:Z|[+-](?:[01][0-9]|2[0-3])(?::[0-5][0-9])?)"
# The parser converts to UTC; past 9999-12-31 or before 0001-01-01 it cannot (an
# overflow: invalid_date). The pattern leaves out those two days with a non-zero offset
# of the sign that could overflow: a little stricter than the parser there, never looser.
_NO_OVERFLOW = (
    f"(?!9999-12-31[T ][0-9:.]*-(?!00(?::00)?{_WS}*$))"
    f"(?!0001-01-01[T ][0-9:.]*\\+(?!00(?::00)?{_WS}*$))"
)
# `start_date` / `end_date`: empty (or white space: no filter), a date, or a date-time.
TIMESTAMP_PATTERN = f"^{_WS}*(?:{_NO_OVERFLOW}{DATE}(?:[T ]{_TIME}{_OFFSET}?)?)?{_WS}*$"
# `exclude_system_users`: true or false, any case, white space around.
FLAG_PATTERN = f"^{_UNICODE_WS}*(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]){_UNICODE_WS}*$"
# `as_of`: a published snapshot's date; empty is the one latest.json names.
AS_OF_PATTERN = f"^(?:{DATE})?$"


# -- parameters -----------------------------------------------------------------------------

_LIST_EXAMPLES = {"user_ids": "u1,u2", "user_emails": "jane@acme.com", "group_ids": "g1"}


def _filter_parameter(name: str) -> dict[str, Any]:
    f = next(f for f in FILTERS if f.name == name)
    schema: dict[str, Any]
    if f.kind == "list":
        schema = {"type": "string"}
        example: str = _LIST_EXAMPLES.get(name, "a,b")
    elif f.kind in ("start", "end"):
        schema = {"type": "string", "pattern": TIMESTAMP_PATTERN}
        example = "2026-11-01" if f.kind == "start" else "2026-11-30T23:59:59Z"
    else:
        schema = {"type": "string", "pattern": FLAG_PATTERN, "default": "false"}
        example = "true"
    description = {
        "list": "Comma-separated; items are trimmed, empty items ignored. ",
        "start": "ISO 8601 date or date-time (no offset: UTC; a date alone: 00:00:00); "
        "empty: no filter. ",
        "end": "ISO 8601 date or date-time (no offset: UTC; a date alone: the whole day); "
        "empty: no filter. ",
        "flag": "",
    }[f.kind] + f.help.replace("--user-ids", "user_ids").replace("--user-emails", "user_emails")
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        "example": example,
    }


SCENARIO_PARAMETER: dict[str, Any] = {
    "name": "scenario_id",
    "in": "path",
    "required": True,
    "description": "A scenario id, else a slug (two scenarios sharing a slug: the smaller id).",
    "schema": {"type": "string"},
    "example": "procurement-discovery",
}

AS_OF_PARAMETER: dict[str, Any] = {
    "name": "as_of",
    "in": "query",
    "required": False,
    "description": "Answer from the snapshot of this date (YYYY-MM-DD), not the latest "
    "(404 snapshot_not_found if none was published; 400 invalid_date after today, UTC).",
    "schema": {"type": "string", "pattern": AS_OF_PATTERN},
    "example": "2026-11-25",
}

PAGING_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "sorting",
        "in": "query",
        "required": False,
        "description": "Sort by this field, ascending; `-` first for descending. Ties: user id.",
        "schema": {"type": "string", "enum": list(SORTINGS), "default": DEFAULT_SORTING},
    },
    {
        "name": "page",
        "in": "query",
        "required": False,
        "description": "The page, from 1; past the last page `data` is empty.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
    },
    {
        "name": "page_size",
        "in": "query",
        "required": False,
        "description": "Entries per page.",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_PAGE_SIZE,
            "default": DEFAULT_PAGE_SIZE,
        },
    },
]


def summary_parameters() -> list[dict[str, Any]]:
    return [
        SCENARIO_PARAMETER,
        *(_filter_parameter(f.name) for f in FILTERS),
        AS_OF_PARAMETER,
    ]


def participants_parameters() -> list[dict[str, Any]]:
    return [*summary_parameters(), *PAGING_PARAMETERS]


# -- bodies ---------------------------------------------------------------------------------

Rank = Literal["gold", "silver", "bronze", "unranked"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreBucket(_Strict):
    rank: Rank
    count: int = Field(ge=0)
    percentage: float = Field(ge=0, le=100)


class Summary(_Strict):
    """The summary of a scenario's graded sessions under the filters."""

    participant_count: int = Field(ge=0)
    total_sessions: int = Field(ge=0)
    average_best_score: float = Field(ge=0, le=100)
    average_best_rank: Rank
    average_lift_percentage: float = Field(ge=-100, le=100)
    total_practice_minutes: int = Field(ge=0)
    average_session_duration_seconds: float = Field(ge=0)
    score_distribution: list[ScoreBucket] = Field(min_length=4, max_length=4)


class User(_Strict):
    id: str
    email: str | None
    first_name: str | None
    last_name: str | None


class Participant(_Strict):
    user: User
    session_count: int = Field(ge=1)
    first_score: float = Field(ge=0, le=100)
    first_rank: Rank
    best_score: float = Field(ge=0, le=100)
    best_rank: Rank
    lift_percentage: float = Field(ge=0, le=100)
    total_duration_seconds: float = Field(ge=0)


class Pagination(_Strict):
    page: int = Field(ge=1)
    page_size: int = Field(ge=1, le=MAX_PAGE_SIZE)
    total_count: int = Field(ge=0)
    total_pages: int = Field(ge=0)


class Participants(_Strict):
    """A page of a scenario's participants under the filters."""

    data: list[Participant]
    pagination: Pagination


class ErrorDetail(_Strict):
    type: str
    code: str
    message: str


class Error(_Strict):
    """The Exec API's error body."""

    error: ErrorDetail


_CACHING_HEADERS: dict[str, Any] = {
    "ETag": {
        "description": "A hash of the body; send it back in If-None-Match to get a 304.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "How long the body may be reused.",
        "schema": {"type": "string"},
    },
    "X-Snapshot-Date": {
        "description": "The as-of date of the snapshot that answered (YYYY-MM-DD).",
        "schema": {"type": "string", "pattern": AS_OF_PATTERN},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "model": Error}


def responses(body: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The `responses` of one endpoint (FastAPI's form: a model per status)."""
    return {
        200: {"description": "The answer.", "model": body, "headers": _CACHING_HEADERS},
        304: {
            "description": "Not modified: the body whose ETag was sent in If-None-Match.",
            "headers": _CACHING_HEADERS,
        },
        400: _error(
            "Invalid request: `invalid_parameter`, `invalid_date` or `invalid_date_range`."
        ),
        401: _error("Missing, malformed or unknown API key (`authentication_error`)."),
        404: _error("`scenario_not_found`, or `snapshot_not_found` for `as_of`."),
        414: _error("The request line is longer than 8 KB (`uri_too_long`)."),
        429: _error(
            "Too many distinct `as_of` dates from one key within a minute (`too_many_dates`); "
            "retry after the Retry-After seconds."
        ),
        503: _error(
            "No capacity now (`overloaded`), or the snapshot cannot be served now "
            "(`snapshot_unavailable`: a damaged file); retry after the Retry-After seconds."
        ),
    }


SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `exec_live_` followed by 40 letters or digits "
        "(`scenario-analytics keys create`).",
    }
}
