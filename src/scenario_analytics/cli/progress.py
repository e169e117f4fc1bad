"""Showing the job's events (`events.py`) to people and to machines, on stderr.

- `PlainLog`: one line per event, `scenario-analytics: <message>`, for log files and
  schedulers that capture stderr (the default off a terminal).
- `JsonLog`: one JSON object per event (`--log-format json`), for log pipelines.
- `TerminalProgress`: on a terminal, the same lines (but one per SQL file) plus a status
  line at the bottom: a bar for the stages that count their work (files, days) with
  rows, elapsed time and an ETA, and the step running now with its elapsed time.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass
from typing import TextIO

from scenario_analytics.events import Event

PREFIX = "scenario-analytics: "


def clock(seconds: float) -> str:
    """`42s`, `3m05s`, `1h02m`."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class _Counted:
    """A stage that counts its work, as the last progress event left it."""

    stage: str
    started: float
    done: int
    total: int
    unit: str
    rows: int | None = None
    fraction: float = 0.0

    def update(self, event: Event) -> None:
        if event.done is not None:
            self.done = event.done
        if event.total is not None:
            self.total = event.total
        if event.rows is not None:
            self.rows = event.rows
        self.fraction = _fraction(event, self.done, self.total)

    def eta(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.fraction <= 0:
            return "?"
        return clock(elapsed * (1 - self.fraction) / self.fraction)


def _fraction(event: Event, done: int, total: int) -> float:
    """How far a stage is: by bytes when the event says, else by units."""
    done_bytes, total_bytes = event.data.get("bytes_done"), event.data.get("bytes_total")
    if isinstance(done_bytes, int) and isinstance(total_bytes, int) and total_bytes > 0:
        return done_bytes / total_bytes
    return done / total if total else 0.0


class PlainLog:
    """Plain lines: what a log file or a scheduler's captured stderr should hold."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.counted: dict[str, _Counted] = {}

    def __call__(self, event: Event) -> None:
        line = self.line(event)
        if line is not None:
            self.stream.write(PREFIX + line + "\n")
            self.stream.flush()

    def line(self, event: Event) -> str | None:
        if event.kind == "start" and event.total is not None:
            self.counted[event.stage] = _Counted(
                event.stage, time.monotonic(), event.done or 0, event.total, event.unit or ""
            )
            return event.message or None
        if event.kind == "start":
            return None  # the step's own line comes when it is done
        if event.kind == "progress":
            counted = self.counted.get(event.stage)
            if counted is None:
                return event.message or None
            counted.update(event)
            text = event.message or _progress_text(event, counted)
            elapsed = time.monotonic() - counted.started
            if counted.done and elapsed >= 1:  # an ETA of the first instants is noise
                text += f" [{clock(elapsed)} elapsed, ETA {counted.eta()}]"
            return text
        if event.kind == "done":
            self.counted.pop(event.stage, None)
        if not event.message:
            return None
        if event.kind in ("warning", "error"):
            return f"{event.kind}: {event.message}"
        return event.message


def _progress_text(event: Event, counted: _Counted) -> str:
    text = f"{event.stage} {counted.done}/{counted.total} {counted.unit}"
    if event.snapshot_date is not None:
        text += f": {event.snapshot_date.isoformat()}"
    if counted.rows is not None:
        text += f", {counted.rows:,} rows"
    return text


class JsonLog:
    """One JSON object per line and event: `time`, `event`, `stage`, then the figures."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last: Event | None = None

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(event.as_json(), ensure_ascii=False) + "\n")
        self.stream.flush()
        self.last = event


class TerminalProgress:
    """Lines as `PlainLog` writes them, under a status line redrawn in place."""

    def __init__(self, stream: TextIO, tick: float | None = 0.5, width: int | None = None) -> None:
        self.stream = stream
        self.width = width
        self.plain = PlainLog(stream)
        self.counted: dict[str, _Counted] = {}
        self.step: tuple[str, float] | None = None
        self.shown = False
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        if tick:
            self.thread = threading.Thread(target=self._tick, args=(tick,), daemon=True)
            self.thread.start()

    def _tick(self, every: float) -> None:
        while not self.stopped.wait(every):
            with self.lock:
                self._draw()

    def close(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
        with self.lock:
            self._clear()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self._clear()
            if event.kind == "start" and event.total is not None:
                self.counted[event.stage] = _Counted(
                    event.stage, time.monotonic(), event.done or 0, event.total, event.unit or ""
                )
                self._print(event.message)
            elif event.kind == "start":
                self.step = (event.message or event.stage, time.monotonic())
            elif event.kind == "progress":
                counted = self.counted.get(event.stage)
                if counted is not None:
                    counted.update(event)
                if event.message:  # the item now worked on
                    self.step = (event.message, time.monotonic())
            elif event.kind == "step":
                self.step = None  # shown while it ran; no line of its own on a terminal
            else:
                if event.kind == "done":
                    self.step = None
                    self.counted.pop(event.stage, None)
                line = self.plain.line(event)
                if line is not None:
                    self._print(line)
            self._draw()

    def _print(self, text: str) -> None:
        if text:
            self.stream.write(PREFIX + text + "\n")

    def status(self) -> str:
        parts = []
        for counted in self.counted.values():
            filled = int(20 * min(1.0, counted.fraction))
            bar = "#" * filled + "-" * (20 - filled)
            text = f"{counted.stage} [{bar}] {counted.done}/{counted.total} {counted.unit}"
            if counted.rows is not None:
                text += f" · {counted.rows:,} rows"
            text += f" · {clock(time.monotonic() - counted.started)}"
            if counted.done:
                text += f" · ETA {counted.eta()}"
            parts.append(text)
        if self.step is not None:
            name, since = self.step
            parts.append(f"{name} {clock(time.monotonic() - since)}")
        return " | ".join(parts)

    def _draw(self) -> None:
        text = self.status()
        if not text:
            return
        width = self.width or shutil.get_terminal_size((100, 20)).columns
        self.stream.write("\r" + text[: max(10, width - 1)] + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def _clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False
