"""`validate`: load and check an exports folder without writing anything."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from scenario_analytics import filters
from scenario_analytics.errors import InvalidUsageError
from scenario_analytics.events import Report, ignore
from scenario_analytics.locations import Location
from scenario_analytics.pipeline.checks import evaluate_checks, require_passed
from scenario_analytics.pipeline.runner import Job
from scenario_analytics.pipeline.stages import accepted_rows, check_as_of, summarized_failure
from scenario_analytics.pipeline.staging import (
    LoadResult,
    check_reject_ratio,
)
from scenario_analytics.publish.quarantine import write_rejects
from scenario_analytics.publish.store import require_store
from scenario_analytics.settings import ChecksSettings, EngineSettings, StorageSettings

__all__ = ["check_reject_ratio", "require_passed", "validate"]


def validate(
    exports: Path | Location,
    report: Report = ignore,
    engine: EngineSettings | None = None,
    *,
    ignore_globs: Sequence[str] = (),
    as_of: date | None = None,
    snapshots: Path | Location | None = None,
    checks: ChecksSettings | None = None,
    skip_checks: Collection[str] = (),
    rejects_out: Path | None = None,
    storage: StorageSettings | None = None,
) -> LoadResult:
    """Load and check an exports folder without publishing anything: rows read, accepted
    and rejected per file, rejects by reason, and the completeness checks for `as_of`
    (default: yesterday, UTC) in `checks` (those comparing with an earlier snapshot need
    `snapshots`, a store that is only read). `rejects_out`: every rejected row written to
    this file, Parquet or CSV by its suffix. Apply the gates with
    `check_reject_ratio(result, ratio)` and `require_passed(result.checks, as_of)` (each
    raises `DataQualityError`, exit 4). Example:

        from scenario_analytics import check_reject_ratio, validate

        result = validate(Path("data/sample"))
        print(result.entity_totals("sessions"))  # (read, accepted, rejected)
        check_reject_ratio(result, 0.01)
    """
    day = as_of or filters.utc_yesterday()
    # The date rule of run, backfill and query: after today is a usage error (exit 2).
    # Today itself is allowed: validate publishes nothing, and its checks say how
    # complete the day so far is.
    check_as_of(day, allow_partial_day=True)
    if rejects_out is not None and rejects_out.suffix.lower() not in (".parquet", ".csv"):
        raise InvalidUsageError(
            f"--rejects-out {rejects_out}: the file name must end in .parquet or .csv",
            "name the file for the format you want",
        )
    if rejects_out is not None and not rejects_out.absolute().parent.is_dir():
        # Said before the work, not after it as a failed write.
        raise InvalidUsageError(
            f"--rejects-out {rejects_out}: the folder {rejects_out.absolute().parent} does "
            "not exist",
            "create it, or name a file in a folder that exists",
        )
    store = require_store(snapshots, storage) if snapshots is not None else None
    # No summary of its own, but an interrupt's, saying where it stopped.
    with (
        summarized_failure(report, "validate", time.monotonic(), publishes=False) as tracked,
        Job.unleased(
            exports,
            tracked,
            engine or EngineSettings(),
            tuple(ignore_globs),
            storage or StorageSettings(),
            store,
        ) as job,
    ):
        loaded = job.stage()
        con = job.connection()
        if rejects_out is not None:
            write_rejects(con, rejects_out)
        earlier = [d for d in store.dates() if d < day] if store is not None else []
        previous = store.manifest(earlier[-1]) if store is not None and earlier else None
        results = evaluate_checks(
            con,
            accepted_rows(loaded),
            day,
            previous,
            checks or ChecksSettings(),
            skip_checks,
            history=store is not None,
        )
        return replace(loaded, checks=results, as_of=day)
