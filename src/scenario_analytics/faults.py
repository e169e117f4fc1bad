"""A test-only fault hook: kill the process at a named stage boundary.

`run` and `backfill` call `checkpoint(stage)` at every stage boundary (the names are
listed in `STAGES` and in docs/OPERATIONS.md). When the environment variable
`SCENARIO_ANALYTICS_KILL_AT` names that stage, the process sends itself SIGKILL there,
the way a crash, an OOM kill or a lost machine would end it: no clean-up runs. Tests
use it to check that the store stays whole and the next run recovers. `NAME:N` kills at
the N-th time the stage is reached (`day-published:2`: after the second backfill day).

This is for tests only: never set the variable in production.
"""

from __future__ import annotations

import os
import signal

KILL_AT = "SCENARIO_ANALYTICS_KILL_AT"

# Stage boundaries, in the order a run reaches them (a backfill repeats the per-day ones).
STAGES: tuple[str, ...] = (
    "locked",  # the store lock is held; leftovers of killed runs are cleaned up
    "scanned",  # export files listed and hashed
    "loaded",  # new and changed files parsed into raw tables
    "staged",  # per-file validation done, ledger updated (committed)
    "validated",  # rejects and duplicates resolved over all files, reject gate passed
    "built",  # as-of tables (users, scenarios, graded sessions) for one date
    "summarized",  # every materialized summary of that date computed
    "written",  # that date's snapshot written in .staging (not yet visible)
    "published",  # that date's snapshot published (run)
    "day-published",  # that date's snapshot published (backfill, once per day)
    "pruned",  # snapshots beyond --keep unlinked
)

_seen: dict[str, int] = {}


def checkpoint(stage: str) -> None:
    """Kill this process with SIGKILL if `SCENARIO_ANALYTICS_KILL_AT` names `stage`."""
    wanted = os.environ.get(KILL_AT)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != stage:
        return
    _seen[stage] = _seen.get(stage, 0) + 1
    if _seen[stage] >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
