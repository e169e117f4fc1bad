"""Query requests: drawn at random from the reference snapshot, some naming a materialized
filter; and how many of those hit a materialized summary by the job's own key."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from bench.harness.util import sql_literal

PRECOMPUTED_SHARE = 0.3


def make_requests(
    snapshot: Path, as_of: date, count: int, seed: int
) -> tuple[list[dict], list[str]]:
    """Random requests against one snapshot; about PRECOMPUTED_SHARE of them name a
    materialized filter (given in varied but equivalent forms), the rest mix users,
    emails, groups, dates and the system-user flag at random."""
    rng = random.Random(seed)
    con = duckdb.connect()

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return con.execute(sql.replace("{S}", sql_literal(str(snapshot)))).fetchall()

    scenarios = rows(
        "SELECT scenario_id, slug FROM read_parquet({S} || '/scenarios.parquet') ORDER BY 1"
    )
    users = rows("SELECT user_id, email FROM read_parquet({S} || '/users.parquet') ORDER BY 1")
    groups = [
        g
        for (g,) in rows(
            """SELECT group_id FROM read_parquet({S} || '/groups.parquet')
               UNION SELECT group_id FROM read_parquet({S} || '/group_memberships.parquet')
               ORDER BY 1"""
        )
    ]
    participants: dict[str, list[str]] = {}
    for scenario_id, user_id in rows(
        """SELECT scenario_id, user_id FROM read_parquet({S} || '/participants.parquet')
           ORDER BY 1, 2"""
    ):
        participants.setdefault(scenario_id, []).append(user_id)
    emails = {u: e for u, e in users if e}
    materialized = rows(
        """SELECT scenario_id, group_ids, start_date, end_date, exclude_system_users
           FROM read_parquet({S} || '/summaries.parquet')
           WHERE len(user_ids) = 0 AND len(user_emails) = 0 ORDER BY scenario_id, request_key"""
    )
    con.close()

    def scenario_ref(scenario_id: str) -> str:
        slug = dict(scenarios).get(scenario_id)
        return slug if slug and rng.random() < 0.4 else scenario_id

    def iso(moment: datetime, end: bool) -> str:
        style = rng.random()
        if style < 0.4 and (moment.time() == datetime.min.time() or end):
            return moment.date().isoformat()
        if style < 0.7:
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return (moment + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f+02:00")

    requests: list[dict[str, Any]] = []
    kinds: list[str] = []
    day0 = datetime.combine(as_of, datetime.min.time())
    for _ in range(count):
        if materialized and rng.random() < PRECOMPUTED_SHARE:
            scenario_id, group_ids, start, end, exclude = rng.choice(materialized)
            request: dict[str, Any] = {"scenario_id": scenario_ref(scenario_id)}
            if group_ids:
                request["group_ids"] = ",".join(group_ids)
            if start is not None:
                request["start_date"] = iso(start, end=False)
            if end is not None:
                request["end_date"] = iso(end, end=True)
            if exclude:
                request["exclude_system_users"] = True
            requests.append(request)
            kinds.append("precomputed")
            continue
        if rng.random() < 0.02 or not scenarios:
            requests.append({"scenario_id": f"no-such-scenario-{rng.randrange(10**6)}"})
            kinds.append("not_found")
            continue
        scenario_id = rng.choice(scenarios)[0]
        request = {"scenario_id": scenario_ref(scenario_id)}
        known = participants.get(scenario_id) or [u for u, _ in users]
        if rng.random() < 0.35 and known:
            request["user_ids"] = ",".join(rng.sample(known, min(len(known), rng.randint(1, 5))))
        if rng.random() < 0.25 and known:
            picked = [emails[u] for u in rng.sample(known, min(len(known), 3)) if u in emails]
            if picked:
                request["user_emails"] = ",".join(
                    e.upper() if rng.random() < 0.2 else e for e in picked
                )
        if rng.random() < 0.4 and groups:
            request["group_ids"] = ",".join(rng.sample(groups, min(len(groups), rng.randint(1, 3))))
        if rng.random() < 0.6:
            start = day0 - timedelta(days=rng.randint(0, 120), hours=rng.randint(0, 23))
            request["start_date"] = iso(start, end=False)
            if rng.random() < 0.5:
                end = start + timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23))
                request["end_date"] = iso(end, end=True)
        if rng.random() < 0.5:
            request["exclude_system_users"] = rng.random() < 0.5
        requests.append(request)
        kinds.append("computed")
    return requests, kinds


def verify_precomputed(snapshot: Path, requests: list[dict], kinds: list[str]) -> str:
    """How many requests meant to hit a materialized summary do, by the job's own
    canonical key (scenario_analytics.parse_request)."""
    from scenario_analytics import parse_request

    con = duckdb.connect()
    path = sql_literal(str(snapshot))
    keys = set(
        con.execute(
            f"SELECT scenario_id, request_key FROM read_parquet({path} || '/summaries.parquet')"
        ).fetchall()
    )
    by_slug: dict[str, str] = {}
    ids = set()
    for scenario_id, slug in con.execute(
        f"SELECT scenario_id, slug FROM read_parquet({path} || '/scenarios.parquet') ORDER BY 1"
    ).fetchall():
        ids.add(scenario_id)
        if slug is not None:
            by_slug.setdefault(slug, scenario_id)
    con.close()
    meant = hits = 0
    for request, kind in zip(requests, kinds, strict=True):
        if kind != "precomputed":
            continue
        meant += 1
        params = {k: v for k, v in request.items() if k != "scenario_id"}
        ref = request["scenario_id"]
        scenario_id = ref if ref in ids else by_slug.get(ref)
        hits += (scenario_id, parse_request(params).key) in keys
    return f"{hits}/{meant}"
