"""Test-only fault hooks: kill, or pause, the process at a named stage boundary.

`run` and `backfill` call `checkpoint(stage)` at every stage boundary (the names are
listed in `STAGES` and in docs/OPERATIONS.md). When the environment variable
`SCENARIO_ANALYTICS_KILL_AT` names that stage, the process sends itself SIGKILL there,
the way a crash, an OOM kill or a lost machine would end it: no clean-up runs. Tests
use it to check that the store stays whole and the next run recovers. `NAME:N` kills at
the N-th time the stage is reached (`day-published:2`: after the second backfill day).

`SCENARIO_ANALYTICS_PAUSE_AT=NAME[:N]` pauses there instead: the process writes
`paused at NAME` to stderr and sleeps (`PAUSE_SECONDS`, then goes on), so that a test
can wait for the line and send a signal at a known stage (`tests/test_interrupts.py`).

This is for tests only: never set the variables in production.
"""

from __future__ import annotations

import os
import signal
import sys
import time

KILL_AT = "SCENARIO_ANALYTICS_KILL_AT"
PAUSE_AT = "SCENARIO_ANALYTICS_PAUSE_AT"
PAUSE_SECONDS = 30.0

# Stage boundaries, in the order a run reaches them (a backfill repeats the per-day ones).
STAGES: tuple[str, ...] = (
    "locked",  # the store lock is held; leftovers of killed runs are cleaned up
    "scanned",  # export files listed and hashed
    "loaded",  # new and changed files parsed into raw tables
    "staged",  # per-file validation done, ledger written (its catalog replaced)
    "validated",  # rejects and duplicates resolved over all files, reject gate passed
    "built",  # as-of tables (users, scenarios, graded sessions) for one date
    "summarized",  # every materialized summary of that date computed
    "written",  # that date's snapshot written in a local folder (not yet visible)
    "uploaded",  # its files uploaded to the store and verified (not yet visible)
    "committed",  # its commit record written: visible (its files still in .staging)
    "moved",  # its files copied into snapshot_date=D/ and the record re-committed
    "published",  # that date's snapshot published, latest.json pointed at it (run)
    "day-published",  # that date's snapshot published (backfill, and run's restated days)
    "pruned",  # snapshots beyond --keep unlinked
)

_seen: dict[tuple[str, str], int] = {}


def checkpoint(stage: str) -> None:
    """Kill this process with SIGKILL if `SCENARIO_ANALYTICS_KILL_AT` names `stage`; pause
    here if `SCENARIO_ANALYTICS_PAUSE_AT` does."""
    if _reached(KILL_AT, stage):
        os.kill(os.getpid(), signal.SIGKILL)
    if _reached(PAUSE_AT, stage):
        sys.stderr.write(f"paused at {stage}\n")
        sys.stderr.flush()
        # In short sleeps: a signal that the kernel hands to another thread (DuckDB's,
        # pyarrow's) does not wake one long sleep; its handler runs when this thread
        # next runs Python, so at most one short sleep later. The handler raising ends
        # the pause.
        deadline = time.monotonic() + PAUSE_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.05)


def _reached(variable: str, stage: str) -> bool:
    """Whether `variable` names `stage` (`NAME` or `NAME:N`) and this is the N-th time."""
    wanted = os.environ.get(variable)
    if not wanted:
        return False
    name, _, nth = wanted.partition(":")
    if name != stage:
        return False
    _seen[variable, stage] = _seen.get((variable, stage), 0) + 1
    return _seen[variable, stage] == (int(nth) if nth.isdigit() else 1)
