"""What `GET /metrics` shows, in the Prometheus text format (version 0.0.4).

Requests are labelled by route *template* (`/rest/v1/scenarios/{scenario_id}/...`, never
the raw path: a label per scenario id would grow without bound), method and status.
Each server has its own registry: two apps in one process (tests) do not share counts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Seconds; precomputed answers take well under a millisecond, computed ones 10-100 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


# The `_created` series (a timestamp per label set) double the output and say nothing a
# restart does not (process_start_time_seconds is not exported either: one registry).
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "scenario_analytics_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "scenario_analytics_http_request_duration_seconds",
            "Time from the request to the end of its response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.answers = Counter(
            "scenario_analytics_answers",
            "Successful analytics answers by endpoint and source: precomputed (a body "
            "of summaries.parquet, no SQL) or computed (SQL on a worker thread).",
            ["endpoint", "source"],
            registry=r,
        )
        self.in_flight = Gauge(
            "scenario_analytics_http_requests_in_flight",
            "Requests being answered now.",
            registry=r,
        )
        self.queued = Gauge(
            "scenario_analytics_worker_requests",
            "Computed requests waiting for or running on a worker thread.",
            registry=r,
        )
        self.snapshot_date = Gauge(
            "scenario_analytics_snapshot_date_seconds",
            "The as-of date of the snapshot served by default, as Unix time of its 00:00 "
            "UTC (0: none). Its age: time() - this.",
            registry=r,
        )
        self.snapshot_info = Gauge(
            "scenario_analytics_snapshot_info",
            "1 for the snapshot served by default (latest.json), labelled by its date.",
            ["snapshot_date"],
            registry=r,
        )
        self.snapshot_loads = Counter(
            "scenario_analytics_snapshot_loads",
            "Snapshot versions loaded (default and as_of), by result (ok; damaged: a file "
            "does not have its manifest's sha256; failed; unreachable: the store could not "
            "be read, the loaded snapshot is still served).",
            ["result"],
            registry=r,
        )
        self.snapshot_problem = Gauge(
            "scenario_analytics_snapshot_problem",
            "1 while the snapshot latest.json names cannot be served (a damaged file, "
            "latest.json missing or unreadable, the store unreachable): /readyz says why.",
            registry=r,
        )
        self.keys = Gauge(
            "scenario_analytics_api_keys",
            "API keys the keys file holds (-1: the server runs with --no-auth).",
            registry=r,
        )
        self._served: str | None = None

    def served(self, snapshot_date: date | None) -> None:
        """The snapshot served by default changed (None: there is none)."""
        if self._served is not None:
            self.snapshot_info.remove(self._served)
        if snapshot_date is None:
            self._served = None
            self.snapshot_date.set(0)
            return
        self._served = snapshot_date.isoformat()
        self.snapshot_info.labels(self._served).set(1)
        midnight = datetime(snapshot_date.year, snapshot_date.month, snapshot_date.day, tzinfo=UTC)
        self.snapshot_date.set(midnight.timestamp())

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
