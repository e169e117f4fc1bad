"""Stopping the job on SIGINT or SIGTERM: promptly, cleanly, and never as another error.

The command line installs the signal handler (`cli/output.py`, `interruptible`); it
calls `received`, which remembers the interrupt, stops the DuckDB queries running now
(`watch`: `engine.connect` registers every connection; without `interrupt()` a query
runs to its end before Python sees the signal), and returns the `Interrupted` to raise.
The jobs' own `try`/`finally` blocks then release the store's lock and remove the
staging folder, and `pipeline/stages.summarized_failure` says where the job was.

DuckDB and pyarrow do not pass on the exception a handler raised inside them: they
report their own ("Query interrupted", "cannot read ..."). So an error path that would
blame a file or a SQL statement first calls `raise_pending`: once an interrupt is
pending, every error is its echo, and the interrupt wins.

`deferred()` holds an interrupt back for a few statements that must happen together
(publishing a day and saying so): the handler records it, and it is raised when the
block ends.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Protocol

from scenario_analytics.errors import Interrupted


class _Interruptible(Protocol):
    def interrupt(self) -> None: ...


_pending: Interrupted | None = None
_deferred = 0
_watched: weakref.WeakSet[_Interruptible] = weakref.WeakSet()


def watch(connection: _Interruptible) -> None:
    """Stop this connection's running query when an interrupt arrives."""
    _watched.add(connection)


def received(signum: int) -> Interrupted | None:
    """A signal arrived: remember it (the first one names the interrupt), stop running
    queries; returns the `Interrupted` to raise now, or None inside `deferred()`."""
    global _pending
    if _pending is None:
        _pending = Interrupted(signum)
    if _deferred:
        return None
    for connection in list(_watched):
        with suppress(Exception):  # a closed connection has nothing to stop
            connection.interrupt()
    return _pending


def pending() -> Interrupted | None:
    """The interrupt on its way, if a signal arrived."""
    return _pending


def raise_pending(cause: BaseException | None = None) -> None:
    """Raise the pending interrupt (from `cause`, the error it surfaced as), if any."""
    if _pending is not None:
        raise _pending from cause


def reset() -> None:
    """Forget a past interrupt (the command line, before and after each command)."""
    global _pending, _deferred
    _pending, _deferred = None, 0


@contextmanager
def deferred() -> Iterator[None]:
    """Statements that must not be cut apart: an interrupt during them is raised after."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
    if not _deferred:
        raise_pending()
