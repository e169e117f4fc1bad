"""The participants endpoint's page: `GET /scenarios/{id}/analytics/participants`.

One scenario's participants under one filter set (the rows of `filter_participants`,
sql/0130, or for the unfiltered request of `participants.parquet`) are put in
`page_participants`; `page_body` sorts them, takes the page, joins the user directory
(`users`: email and names) and renders the body:

    {"data": [{"user": {"id", "email", "first_name", "last_name"}, "session_count",
               "first_score", "first_rank", "best_score", "best_rank", "lift_percentage",
               "total_duration_seconds"}, ...],
     "pagination": {"page", "page_size", "total_count", "total_pages"}}

Scores, lift and the duration sum are rounded to 1 decimal half away from zero (DuckDB
rounds DECIMALs so); ranks come from the exact scores, so that counting the participants'
`best_rank` gives the summary's `score_distribution`. Sorting is on the exact values,
ties by user id ascending (byte order) in either direction. The statement texts are
fixed (one per sorting); values are bound.
"""

from __future__ import annotations

import json

import duckdb

from scenario_analytics.filters import SORT_FIELDS, ParticipantsRequest

# The column of page_participants each sorting field orders by (exact values).
_SORT_COLUMNS: dict[str, str] = {
    "best_score": "best_score",
    "first_score": "first_score",
    "lift_percentage": "lift",
    "total_duration_seconds": "total_duration_seconds",
    "session_count": "session_count",
}
assert tuple(_SORT_COLUMNS) == SORT_FIELDS

# What page_participants holds: one row per participant of the scenario under the
# request's filters. Filled from participants.parquet or from filter_participants.
PAGE_COLUMNS = (
    "user_id, session_count, first_score, first_rank, best_score, best_rank, lift, "
    "total_duration_seconds"
)

_PAGE = """
WITH page AS (
    SELECT *
    FROM page_participants
    ORDER BY {column} {direction}, user_id
    LIMIT $limit OFFSET $offset
)
SELECT CAST(json_object(
    'user', json_object('id', p.user_id, 'email', u.email, 'first_name', u.first_name,
                        'last_name', u.last_name),
    'session_count', p.session_count,
    'first_score', CAST(round(p.first_score, 1) AS DECIMAL(4, 1)),
    'first_rank', p.first_rank,
    'best_score', CAST(round(p.best_score, 1) AS DECIMAL(4, 1)),
    'best_rank', p.best_rank,
    'lift_percentage', CAST(round(p.lift, 1) AS DECIMAL(4, 1)),
    'total_duration_seconds', CAST(round(p.total_duration_seconds, 1) AS DECIMAL(38, 1))
) AS VARCHAR) AS entry
FROM page AS p
LEFT JOIN page_users AS u ON u.user_id = p.user_id
ORDER BY {order}, p.user_id
"""

PAGE_SQL: dict[str, str] = {
    sorting: _PAGE.format(
        column=_SORT_COLUMNS[field],
        direction=direction,
        order=f"p.{_SORT_COLUMNS[field]} {direction}",
    )
    for field in SORT_FIELDS
    for sorting, direction in ((field, "ASC"), ("-" + field, "DESC"))
}


def page_body(con: duckdb.DuckDBPyConnection, request: ParticipantsRequest) -> str:
    """The response body of the request's page of `page_participants`, with the emails
    and names of `page_users` (user_id, email, first_name, last_name; one row a user)."""
    row = con.execute("SELECT count(*) FROM page_participants").fetchone()
    total = int(row[0]) if row is not None else 0
    offset = (request.page - 1) * request.page_size
    entries: list[str] = []
    if offset < total:
        found = con.execute(
            PAGE_SQL[request.sorting], {"limit": request.page_size, "offset": offset}
        ).fetchall()
        entries = [str(entry) for (entry,) in found]
    pagination = {
        "page": request.page,
        "page_size": request.page_size,
        "total_count": total,
        "total_pages": -(-total // request.page_size),
    }
    return (
        '{"data":['
        + ",".join(entries)
        + '],"pagination":'
        + json.dumps(pagination, separators=(",", ":"))
        + "}"
    )
