"""What the command line shows: errors as `error: what — what next` with their exit code,
the job's events on stderr (stdout is data), one prefix for every line; and SIGINT and
SIGTERM turned into `Interrupted` around the commands that read exports."""

from __future__ import annotations

import functools
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

import click
import duckdb

from scenario_analytics import interrupts
from scenario_analytics.cli import hints
from scenario_analytics.cli.options import DEBUG
from scenario_analytics.cli.progress import PREFIX, JsonLog, PlainLog, TerminalProgress
from scenario_analytics.engine.spark.session import log_file as spark_log_file
from scenario_analytics.errors import AnalyticsError, ExitCode, Interrupted, first_line
from scenario_analytics.events import Event, Report

F = TypeVar("F", bound=Callable[..., Any])
JSON_LOG = "scenario_analytics.json_log"  # key in click's shared context meta


def log(message: str) -> None:
    click.echo(PREFIX + message, err=True)


def fail(message: str, exit_code: int, as_json: bool = False) -> None:
    """`error: what — what next` on stderr, then exit. With `--log-format json` every line
    stays JSON: the error is the `error` of the summary a run or backfill ended with, or
    else an `error` event."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        # A command the message names for the user to run repeats the options in force.
        message = hints.with_options(message, ctx)
    if not as_json:
        click.echo(f"{PREFIX}error: {message}", err=True)
        sys.exit(exit_code)
    used = ctx.meta.get(JSON_LOG) if ctx is not None else None
    told = isinstance(used, JsonLog) and used.last is not None and "error" in used.last.data
    if not told:
        command = ctx.info_name if ctx is not None and ctx.info_name else "scenario-analytics"
        JsonLog(sys.stderr)(Event(command, "error", message, data={"exit_code": exit_code}))
    sys.exit(exit_code)


def handle_errors(func: F) -> F:
    """One place that turns exceptions into `error: what — what next` and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().meta.get(DEBUG, False)
        as_json = kwargs.get("log_format") == "json"
        try:
            result = func(*args, **kwargs)
            # Done: the Spark JVM's own log (named when it started) is not needed. After
            # a failure it stays where the job said it is.
            spark_log_file().unlink(missing_ok=True)
            return result
        except Interrupted as exc:
            if debug:
                traceback.print_exc()
            fail(str(exc), exc.exit_code, as_json)
        except AnalyticsError as exc:
            if debug:
                traceback.print_exc()
            fail(str(exc), int(exc.exit_code), as_json)
        except OSError as exc:
            if debug:
                traceback.print_exc()
            where = f" ({exc.filename})" if exc.filename else ""
            fail(
                f"{exc.strerror or exc}{where} — check the path, its permissions and free "
                "space, then run again",
                int(ExitCode.FAILURE),
                as_json,
            )
        except duckdb.Error as exc:
            # DuckDB's own I/O errors (a full disk under the store's ledger or spill files).
            if debug:
                traceback.print_exc()
            fail(
                f"{first_line(exc)} — check free space and permissions, then run again "
                "(--debug shows the traceback)",
                int(ExitCode.FAILURE),
                as_json,
            )
        except Exception as exc:
            # Spark's errors (pyspark's and Py4J's share no base class the engine could
            # name) wherever the engine did not turn them into the job's own already.
            if not type(exc).__module__.startswith(("pyspark", "py4j")):
                raise
            if debug:
                traceback.print_exc()
            fail(
                f"Spark failed: {first_line(exc)} — Spark's own log has the rest (the run's "
                '"engine spark: started" line names it); --debug shows the traceback',
                int(ExitCode.FAILURE),
                as_json,
            )

    return wrapper  # type: ignore[return-value]


def interruptible(func: F) -> F:
    """SIGINT and SIGTERM during the command raise `Interrupted` (exit 130, 143), which
    wins over any error it surfaced as in DuckDB or pyarrow (`interrupts.py`). Python
    runs signal handlers in the main thread only; elsewhere the command runs as it is."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        interrupt = interrupts.received(signum)
        if interrupt is not None:
            raise interrupt

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return func(*args, **kwargs)
        interrupts.reset()
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            interrupts.raise_pending(exc)
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            interrupts.reset()

    return wrapper  # type: ignore[return-value]


@contextmanager
def reporter(log_format: str) -> Iterator[Report]:
    """The renderer of the job's events, on stderr (stdout is data)."""
    stream = sys.stderr  # looked up now: test runners swap it
    if log_format == "json":
        json_log = JsonLog(stream)
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.meta[JSON_LOG] = json_log  # `fail` looks at what it wrote last
        yield json_log
    elif log_format == "auto" and stream.isatty():
        terminal = TerminalProgress(stream)
        try:
            yield terminal
        finally:
            terminal.close()
    else:
        yield PlainLog(stream)
