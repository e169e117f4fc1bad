"""Stale snapshots: published days the exports, as they are now, disagree with.

A published day is up to date while its manifest's fingerprint matches (nothing loaded),
or else while its `data_digest` equals the one the loaded exports give for that day
(`publish/fingerprint.py`). The rest are stale, typically after exports of past days
arrived late. Here:

- `stale_days`: which of some published days are stale, from the loaded exports;
- `session_changes`: for one of them, the graded sessions added, changed and removed
  since it was built (its session files against the loaded history, in SQL);
- `report_stale`: the warning `run` gives for the stale days it does not rebuild;
- `find_stale`: `snapshots stale`, loading the exports (through the ledger) to tell.

`backfill --stale` rebuilds the stale days of a range; `run` rebuilds those of its last
`restate_days` days (`run.py`).
"""

from __future__ import annotations

import shlex
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import duckdb

from scenario_analytics.events import Event, Report, ignore
from scenario_analytics.filters import as_of_end
from scenario_analytics.pipeline.runner import Job
from scenario_analytics.pipeline.stages import JobOptions
from scenario_analytics.pipeline.staging import LoadResult
from scenario_analytics.publish.fingerprint import data_digest
from scenario_analytics.publish.snapshot import sessions_relation
from scenario_analytics.publish.store import Store
from scenario_analytics.settings import JobSettings, check_store_and_exports
from scenario_analytics.storage import StorageError

# The kinds of session change, in the order they are shown.
CHANGE_KINDS = ("added", "changed", "removed")


@dataclass(frozen=True)
class SessionChanges:
    """How a snapshot's graded sessions (its session files: accepted, de-duplicated,
    valid attempts up to the end of its day) differ from the same sessions now: how many
    were added, changed (any column of the file) and removed, and the first few ids of
    each kind in byte order (`examples`)."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            **{kind: getattr(self, kind) for kind in CHANGE_KINDS},
            "examples": {kind: self.examples.get(kind, []) for kind in CHANGE_KINDS},
        }


@dataclass(frozen=True)
class StaleDay:
    """A published snapshot out of date with the current exports: its sessions up to its
    day then (its manifest's count) and now (the digests'), why, and which graded sessions
    changed (`sessions`: None when not asked for or its session files are unreadable).

    `reason` is "data_changed" (the data digest differs: sessions, or the directory rows
    the day uses) or "no_data_digest" (built by a version without digests)."""

    snapshot_date: date
    path: str  # the snapshot's folder as people see it
    sessions_then: int
    sessions_now: int
    reason: str
    sessions: SessionChanges | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "snapshot_date": self.snapshot_date.isoformat(),
            "path": self.path,
            "sessions_then": self.sessions_then,
            "sessions_now": self.sessions_now,
            "reason": self.reason,
            "sessions": self.sessions.as_json() if self.sessions else None,
        }


def stale_days(
    store: Store,
    days: Collection[date],
    fingerprint: dict[str, str],
    loaded: LoadResult,
    *,
    undigested: bool = True,
) -> list[StaleDay]:
    """The days of `days` whose published snapshot is out of date with the loaded exports:
    not the same fingerprint and not the same data digest. A manifest without a
    `data_digest` (an earlier version's) counts as stale if `undigested`."""
    found = []
    for day in sorted(days):
        manifest = store.manifest(day)
        if manifest is None or manifest.fingerprint == fingerprint:
            continue
        now = loaded.digests.at(day)
        if manifest.data_digest is None:
            if not undigested:
                continue
            reason = "no_data_digest"
        elif manifest.data_digest != data_digest(now, fingerprint):
            reason = "data_changed"
        else:
            continue
        sessions = manifest.counts.sessions_in_snapshot
        found.append(StaleDay(day, store.public(day), sessions, now.sessions, reason))
    return found


# The snapshot's graded sessions against the loaded ones up to the end of its day, joined
# on the session id: one pass over each side, whatever the number of changes. Every
# column of its session files is compared; `min(id, n)` keeps the n smallest ids per kind.
_SESSION_CHANGES = """
WITH then_sessions AS (
    SELECT session_id, scenario_id, user_id, created_at, score, duration_seconds
    FROM {sessions}
),
now_sessions AS (
    SELECT session_id, scenario_id, user_id, created_at, score, duration_seconds
    FROM graded_history
    WHERE created_at <= $as_of_end
),
changes AS (
    SELECT CASE WHEN t.session_id IS NULL THEN 'added'
                WHEN n.session_id IS NULL THEN 'removed'
                ELSE 'changed' END AS kind,
           coalesce(n.session_id, t.session_id) AS session_id
    FROM then_sessions AS t
    FULL OUTER JOIN now_sessions AS n ON n.session_id = t.session_id
    WHERE t.session_id IS NULL OR n.session_id IS NULL
       OR t.scenario_id IS DISTINCT FROM n.scenario_id
       OR t.user_id IS DISTINCT FROM n.user_id
       OR t.created_at IS DISTINCT FROM n.created_at
       OR t.score IS DISTINCT FROM n.score
       OR t.duration_seconds IS DISTINCT FROM n.duration_seconds
)
SELECT kind, count(*) AS sessions, min(session_id, $examples) AS examples
FROM changes
GROUP BY kind
"""


def session_changes(
    con: duckdb.DuckDBPyConnection, files: list[Path], day: date, examples: int = 5
) -> SessionChanges:
    """The graded sessions of a snapshot of `day` (its session `files`) that the loaded
    exports (`graded_history`, sql/0070) add, change or remove. Raises `duckdb.Error`
    when its session files cannot be read."""
    found = con.execute(
        _SESSION_CHANGES.format(sessions=sessions_relation(files)),
        {
            "as_of_end": as_of_end(day),
            "examples": max(examples, 1),
        },
    ).fetchall()
    counts = {kind: int(n) for kind, n, _ in found}
    shown = {kind: list(ids)[:examples] for kind, _, ids in found}
    return SessionChanges(**counts, examples=shown)


def report_stale(report: Report, stale: list[StaleDay], rerun: list[str]) -> None:
    """The warning of a run whose exports make earlier snapshots out of date, with the
    backfill that rebuilds them (repeating `rerun`, the options in force)."""
    if not stale:
        return
    dates = [d.snapshot_date.isoformat() for d in stale]
    shown = ", ".join(dates[:10]) + (f", ... ({len(dates)} days)" if len(dates) > 10 else "")
    command = shlex.join(["scenario-analytics", "backfill", "--from", dates[0], "--to",
                          dates[-1], "--stale", *rerun])  # fmt: skip
    report(
        Event(
            "check",
            "warning",
            f"the exports make {len(dates)} earlier snapshot{'s' if len(dates) > 1 else ''} "
            f"out of date (late or changed sessions, or directory rows they use): {shown}; "
            f"rebuild with: {command}, or set restate_days in the job file",
            data={"stale": dates, "command": command},
        )
    )


@dataclass(frozen=True, kw_only=True)
class StaleOptions(JobOptions):
    """Which published snapshots `find_stale` looks at: those from `start` to `end`
    (inclusive; None: no bound); `examples`: how many session ids of each kind of change
    to name per day (0: count the changes, name none; None: do not compare sessions)."""

    start: date | None = None
    end: date | None = None
    examples: int | None = 5

    @classmethod
    def from_settings(
        cls,
        settings: JobSettings,
        *,
        start: date | None = None,
        end: date | None = None,
        examples: int | None = 5,
    ) -> StaleOptions:
        """The options from resolved job settings (`JobSettings.resolve`)."""
        fields = JobOptions.fields_of(settings, full_refresh=False)
        return cls(**fields, start=start, end=end, examples=examples)


def find_stale(options: StaleOptions, report: Report = ignore) -> list[StaleDay]:
    """The published snapshots (of the range) out of date with the exports as they are now.

    A snapshot whose fingerprint still matches is up to date without loading anything;
    for the others the exports are loaded (through the ledger: cheap for unchanged files)
    and the day's data digest compared with its manifest's. For each stale day, the
    sessions added, changed and removed (`session_changes`). Publishes nothing. Example:

        from scenario_analytics import JobSettings, StaleOptions, find_stale

        settings = JobSettings.resolve(Path("jobs/nightly.toml"))
        for day in find_stale(StaleOptions.from_settings(settings, start=date(2026, 11, 1))):
            print(day.snapshot_date, day.reason, day.sessions)
    """
    check_store_and_exports(options.exports, options.snapshots)
    with Job.leased_by(options, report, "snapshots stale", builds=False) as job:
        store = job.store
        fingerprint = job.fingerprint()
        days = [
            d
            for d in store.dates()
            if (options.start is None or d >= options.start)
            and (options.end is None or d <= options.end)
        ]
        maybe = [
            d for d in days if (m := store.manifest(d)) is not None and m.fingerprint != fingerprint
        ]
        if not maybe:
            return []
        loaded = job.stage()
        found = stale_days(store, maybe, fingerprint, loaded)
        if options.examples is None:
            return found
        con = job.connection()
        return [_with_changes(con, store, day, options.examples, report) for day in found]


def _with_changes(
    con: duckdb.DuckDBPyConnection, store: Store, day: StaleDay, examples: int, report: Report
) -> StaleDay:
    try:
        version = store.version(day.snapshot_date)
        if version is None:
            raise duckdb.IOException("its manifest cannot be read")
        changes = session_changes(con, store.session_paths(version), day.snapshot_date, examples)
    except (duckdb.Error, StorageError) as exc:
        report(
            Event(
                "stale",
                "warning",
                f"{day.snapshot_date.isoformat()}: cannot compare its sessions with "
                f"the exports ({str(exc).splitlines()[0]}); scenario-analytics snapshots "
                "verify checks the snapshot",
                snapshot_date=day.snapshot_date,
            )
        )
        return day
    report(
        Event(
            "stale",
            "info",
            f"{day.snapshot_date.isoformat()}: {changes.added:,} sessions added, "
            f"{changes.changed:,} changed, {changes.removed:,} removed",
            snapshot_date=day.snapshot_date,
        )
    )
    return replace(day, sessions=changes)
