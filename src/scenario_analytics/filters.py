"""The summary's filter parameters, declared once.

Everything else is derived from `FILTERS`: the request parser and the canonical request
key (`serve/requests.py`), the columns of the `filters` table the summarize SQL reads and
of `summaries.parquet` (`serve/materialize.py`, `publish/snapshot.py`), the keys a job
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

from dataclasses import dataclass
from typing import Literal

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
