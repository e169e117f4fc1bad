"""Scenario analytics: Exec session exports in, API-ready summary snapshots out.

The library behind the `scenario-analytics` command, for schedulers and the API service
to call without it (each name has a docstring with an example; the README shows them
together):

    run, RunOptions, RunResult                 build and publish one day's snapshot
    backfill, BackfillOptions, BackfillResult  one snapshot per day of a range
    validate, check_reject_ratio, LoadResult   check exports without publishing
    find_stale, StaleOptions, StaleDay         published days the exports make out of date
    SnapshotQuery, Answer, answer_lines        answer requests from a snapshot
    diff_snapshots, SnapshotDiff               what changed between two snapshots
    parse_request, SummaryRequest, RequestError   the API's filter parameters
    JobSettings, load_job                      settings: job file, overrides, defaults
    Manifest                                   a snapshot's manifest.json
    AnalyticsError, ExitCode                   errors and the exit codes they carry
    Event, log_lines                           what the job reports while it works
"""

from scenario_analytics.errors import AnalyticsError, ExitCode
from scenario_analytics.events import Event, log_lines
from scenario_analytics.filters import RequestError, SummaryRequest, parse_request
from scenario_analytics.pipeline.backfill import (
    BackfillOptions,
    BackfillResult,
    DayResult,
    backfill,
)
from scenario_analytics.pipeline.run import RunOptions, RunResult, run
from scenario_analytics.pipeline.staging import LoadResult
from scenario_analytics.pipeline.stale import StaleDay, StaleOptions, find_stale
from scenario_analytics.pipeline.validate import check_reject_ratio, validate
from scenario_analytics.publish.manifest import Manifest
from scenario_analytics.serve.diff import SnapshotDiff, diff_snapshots
from scenario_analytics.serve.protocol import answer_lines
from scenario_analytics.serve.query import Answer, SnapshotNotFound, SnapshotQuery
from scenario_analytics.settings import JobSettings, load_job
from scenario_analytics.version import __version__

__all__ = [
    "AnalyticsError",
    "Answer",
    "BackfillOptions",
    "BackfillResult",
    "DayResult",
    "Event",
    "ExitCode",
    "JobSettings",
    "LoadResult",
    "Manifest",
    "RequestError",
    "RunOptions",
    "RunResult",
    "SnapshotDiff",
    "SnapshotNotFound",
    "SnapshotQuery",
    "StaleDay",
    "StaleOptions",
    "SummaryRequest",
    "__version__",
    "answer_lines",
    "backfill",
    "check_reject_ratio",
    "diff_snapshots",
    "find_stale",
    "load_job",
    "log_lines",
    "parse_request",
    "run",
    "validate",
]
