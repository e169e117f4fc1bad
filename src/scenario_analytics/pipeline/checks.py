"""Completeness checks against history: refuse to publish what is evidently incomplete.

Each check compares what this run loaded with what an earlier snapshot or earlier days
had (CONTRACT.md section 5; docs/OPERATIONS.md, "When the job refuses to publish", says
why each exists and how to tune it). They read small tables only: `sessions_per_day`
(sql/0070) and the manifest of the newest snapshot published before the as-of date.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping
from datetime import date, timedelta

import duckdb

from scenario_analytics.errors import DataQualityError
from scenario_analytics.filters import as_of_end
from scenario_analytics.ingest.entities import ENTITIES
from scenario_analytics.publish.manifest import CheckResult, Manifest
from scenario_analytics.settings import CHECKS, ChecksSettings


def evaluate_checks(
    con: duckdb.DuckDBPyConnection,
    accepted: Mapping[str, int],
    as_of: date,
    previous: Manifest | None,
    settings: ChecksSettings,
    skip: Collection[str] = (),
    history: bool = True,
) -> list[CheckResult]:
    """Every check, in the order of `CHECKS`, for the snapshot of `as_of`.

    `accepted`: accepted rows per entity in this run's exports; `previous`: the manifest
    of the newest snapshot published before `as_of` (None: nothing to compare with);
    `history`: False when no store was given at all (`validate` without `--snapshots`).
    """
    results = []
    for name in CHECKS:
        if name in skip:
            results.append(CheckResult(name=name, status="skipped", detail="--skip-check"))
            continue
        if not getattr(settings, name).enabled:
            detail = f"turned off in the job file ([checks.{name}] enabled = false)"
            results.append(CheckResult(name=name, status="skipped", detail=detail))
            continue
        if not history and name in ("entity_missing", "entity_drop"):
            detail = "no snapshot store given (--snapshots) to compare with"
            results.append(CheckResult(name=name, status="skipped", detail=detail))
        elif name == "entity_missing":
            results.append(_entity_missing(accepted, previous))
        elif name == "entity_drop":
            results.append(_entity_drop(con, accepted, as_of, previous, settings))
        elif name == "day_volume":
            results.append(_day_volume(con, as_of, settings))
        else:
            results.append(_stale_exports(con, as_of, settings))
    return results


def require_passed(results: list[CheckResult], as_of: date) -> None:
    """Exit 4 naming each failed check, its figures and the next step."""
    failed = [r for r in results if r.status == "failed"]
    if not failed:
        return
    skips = " ".join(f"--skip-check {r.name}" for r in failed)
    raise DataQualityError(
        f"the exports look incomplete for {as_of.isoformat()}: "
        + "; ".join(f"check {r.name} failed: {r.detail}" for r in failed),
        "if exports are missing, wait for them and run again; if they are complete, run "
        f"again with {skips} (or tune [checks] in the job file: docs/OPERATIONS.md); "
        "nothing was published",
    )


def _accepted(previous: Manifest) -> dict[str, int]:
    rows = dict.fromkeys(ENTITIES, 0)
    for item in previous.inputs:
        rows[item.entity] = rows.get(item.entity, 0) + item.rows_accepted
    return rows


def _no_history(name: str) -> CheckResult:
    return CheckResult(name=name, status="skipped", detail="no snapshot published before this date")


def _entity_missing(accepted: Mapping[str, int], previous: Manifest | None) -> CheckResult:
    if previous is None:
        return _no_history("entity_missing")
    before = _accepted(previous)
    missing = [e for e in ENTITIES if before.get(e, 0) > 0 and accepted.get(e, 0) == 0]
    since = previous.snapshot_date.isoformat()
    if missing:
        detail = ", ".join(
            f"{e} has no rows now ({before[e]:,} in the snapshot of {since})" for e in missing
        )
        return CheckResult(name="entity_missing", status="failed", detail=detail)
    detail = f"every entity with rows in the snapshot of {since} has rows"
    return CheckResult(name="entity_missing", status="passed", detail=detail)


def sessions_up_to(con: duckdb.DuckDBPyConnection, day: date) -> int:
    """Accepted, de-duplicated sessions created up to the end of `day`."""
    ((count,),) = con.execute(
        "SELECT coalesce(sum(sessions), 0) FROM sessions_per_day WHERE day <= $day",
        {"day": day},
    ).fetchall()
    return int(count)


def _entity_drop(
    con: duckdb.DuckDBPyConnection,
    accepted: Mapping[str, int],
    as_of: date,
    previous: Manifest | None,
    settings: ChecksSettings,
) -> CheckResult:
    if previous is None:
        return _no_history("entity_drop")
    ratio = settings.entity_drop.min_ratio
    before = _accepted(previous)
    since = previous.snapshot_date.isoformat()
    problems = []
    for entity in ENTITIES:
        now = accepted.get(entity, 0)
        if before.get(entity, 0) > 0 and now < ratio * before[entity]:
            problems.append(
                f"{entity}: {now:,} accepted rows, under {ratio:.0%} of the {before[entity]:,} "
                f"in the snapshot of {since}"
            )
    sessions_now = sessions_up_to(con, as_of)
    sessions_before = previous.counts.sessions_in_snapshot
    if sessions_now < sessions_before:
        problems.append(
            f"{sessions_now:,} sessions up to {as_of.isoformat()}, fewer than the "
            f"{sessions_before:,} up to {since} (sessions only accumulate)"
        )
    if problems:
        return CheckResult(name="entity_drop", status="failed", detail="; ".join(problems))
    detail = (
        f"every entity has at least {ratio:.0%} of its rows in the snapshot of {since}, "
        f"and {sessions_now:,} sessions up to {as_of.isoformat()} (then {sessions_before:,})"
    )
    return CheckResult(name="entity_drop", status="passed", detail=detail)


def _day_volume(
    con: duckdb.DuckDBPyConnection, as_of: date, settings: ChecksSettings
) -> CheckResult:
    check = settings.day_volume
    days = [as_of - timedelta(weeks=n) for n in range(check.weeks + 1)]
    counts = dict.fromkeys(days, 0)
    rows = con.execute(
        "SELECT day, sessions FROM sessions_per_day WHERE list_contains($days, day)",
        {"days": days},
    ).fetchall()
    counts.update({day: int(n) for day, n in rows})
    today = counts[as_of]
    median = statistics.median(counts[d] for d in days[1:])
    weekday = as_of.strftime("%A")
    shown = f"{median:,.0f}" if median == int(median) else f"{median:,.1f}"
    sessions = "session" if today == 1 else "sessions"
    weekdays = f"the {weekday}" if check.weeks == 1 else f"the {check.weeks} {weekday}s"
    figures = (
        f"{today:,} {sessions} created on {as_of.isoformat()}; the median of {weekdays} "
        f"before is {shown}"
    )
    if median < check.min_median:
        detail = f"{figures}, under {check.min_median:,}: too few to judge"
        return CheckResult(name="day_volume", status="skipped", detail=detail)
    if today < check.min_ratio * median:
        detail = f"{figures}: under {check.min_ratio:.0%} of it"
        return CheckResult(name="day_volume", status="failed", detail=detail)
    return CheckResult(name="day_volume", status="passed", detail=figures)


def _stale_exports(
    con: duckdb.DuckDBPyConnection, as_of: date, settings: ChecksSettings
) -> CheckResult:
    limit = settings.stale_exports.max_hours
    ((newest,),) = con.execute("SELECT max(newest) FROM sessions_per_day").fetchall()
    end = as_of_end(as_of)
    if newest is None:
        detail = "no accepted session at all"
        return CheckResult(name="stale_exports", status="failed", detail=detail)
    hours = (end - newest).total_seconds() / 3600
    figures = f"the newest accepted session was created at {newest.isoformat()}Z"
    if hours > limit:
        detail = (
            f"{figures}, {hours:,.1f} hours before the end of {as_of.isoformat()} "
            f"(more than {limit:g})"
        )
        return CheckResult(name="stale_exports", status="failed", detail=detail)
    return CheckResult(name="stale_exports", status="passed", detail=figures)
