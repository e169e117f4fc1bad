"""What the command line shows: errors as `error: what — what next` with their exit code,
the job's events on stderr (stdout is data), one prefix for every line."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import duckdb

from scenario_analytics.cli.options import DEBUG
from scenario_analytics.cli.progress import PREFIX, JsonLog, PlainLog, TerminalProgress
from scenario_analytics.errors import AnalyticsError, ExitCode
from scenario_analytics.events import Report

F = TypeVar("F", bound=Callable[..., Any])


def log(message: str) -> None:
    click.echo(PREFIX + message, err=True)


def fail(message: str, exit_code: int) -> None:
    click.echo(f"{PREFIX}error: {message}", err=True)
    sys.exit(exit_code)


def handle_errors(func: F) -> F:
    """One place that turns exceptions into `error: what — what next` and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().meta.get(DEBUG, False)
        try:
            return func(*args, **kwargs)
        except AnalyticsError as exc:
            if debug:
                traceback.print_exc()
            fail(str(exc), int(exc.exit_code))
        except OSError as exc:
            if debug:
                traceback.print_exc()
            where = f" ({exc.filename})" if exc.filename else ""
            fail(
                f"{exc.strerror or exc}{where} — check the path, its permissions and free "
                "space, then run again",
                int(ExitCode.FAILURE),
            )
        except duckdb.Error as exc:
            # DuckDB's own I/O errors (a full disk under the store's ledger or spill files).
            if debug:
                traceback.print_exc()
            what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            fail(
                f"{what} — check free space and permissions, then run again (--debug shows "
                "the traceback)",
                int(ExitCode.FAILURE),
            )

    return wrapper  # type: ignore[return-value]


@contextmanager
def reporter(log_format: str) -> Iterator[Report]:
    """The renderer of the job's events, on stderr (stdout is data)."""
    stream = sys.stderr  # looked up now: test runners swap it
    if log_format == "json":
        yield JsonLog(stream)
    elif log_format == "auto" and stream.isatty():
        terminal = TerminalProgress(stream)
        try:
            yield terminal
        finally:
            terminal.close()
    else:
        yield PlainLog(stream)
