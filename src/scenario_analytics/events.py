"""What the job tells its operators while it works: one `Event` per step.

The library emits events and never prints; the command line chooses how they are shown
(`progress.py`: plain log lines, a terminal progress bar, or JSON lines). Stage names
are stable, since schedulers and log pipelines match on them:

    lock  scan  load  stage  validate  check  build  summarize  write  publish  skip
    prune  stale (what `snapshots stale` compares)  restate (`run`'s restate_days)
    run  backfill  (the whole: its summary)

`kind` says where in a stage the event falls: `start` (with `total` and `unit` when the
stage can count its work), `progress` (`done` of `total`), `step` (one SQL file of the
stage finished, with `seconds`), `done` (with `seconds`, and `rows` where rows were
produced), `info`, `warning`, `error`, and `summary` (the last event of a run or
backfill, with its figures in `data`).

A summary's `status` is `published` (run), `done` (backfill), `failed` (with
`exit_code` and the `error` message), or `interrupted`: SIGINT or SIGTERM stopped the
job (`interrupts.py`), with `signal`, `exit_code` (130, 143), `interrupted_stage` (the
stage of the last event before it), `published` (the days published before it) and
`error`. `validate`, which has no summary otherwise, ends with one when interrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

Kind = Literal["start", "progress", "step", "done", "info", "warning", "summary", "error"]


@dataclass(frozen=True)
class Event:
    """One thing the job reports: a stage, what kind of moment of it, a message for
    people, and figures for machines (`as_json`)."""

    stage: str
    kind: Kind
    message: str = ""
    rows: int | None = None
    seconds: float | None = None
    snapshot_date: date | None = None
    done: int | None = None
    total: int | None = None
    unit: str | None = None  # what `done` and `total` count: files, bytes, days
    data: Mapping[str, object] = field(default_factory=dict)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, object]:
        """The event as one JSON object: fixed keys first, absent values left out."""
        body: dict[str, object] = {
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "event": self.kind,
            "stage": self.stage,
        }
        if self.message:
            body["message"] = self.message
        if self.snapshot_date is not None:
            body["snapshot_date"] = self.snapshot_date.isoformat()
        for key in ("rows", "seconds", "done", "total", "unit"):
            value = getattr(self, key)
            if value is not None:
                body[key] = round(value, 3) if isinstance(value, float) else value
        body.update(self.data)
        return body


Report = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The default report: the library stays silent unless a caller listens."""
    return None


def log_lines(log: Callable[[str], None]) -> Report:
    """A report that passes each event's message to a `log(str)` function."""

    def report(event: Event) -> None:
        if event.message and event.kind != "progress":
            log(event.message)

    return report
