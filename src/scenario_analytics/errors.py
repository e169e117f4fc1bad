"""Exit codes of the contract and the exceptions that carry them."""

from __future__ import annotations

import signal
from datetime import date
from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of the contract, for every command and every library error."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    NOT_FOUND = 3
    DATA_QUALITY = 4
    LOCKED = 5


class AnalyticsError(Exception):
    """An error with a message for people and an exit code for schedulers."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class UnreadableFileError(AnalyticsError):
    """An export file that cannot be read at all: the run fails and publishes nothing."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"cannot read export file {path}: {reason}",
            "fix or remove the file and run again",
        )
        self.path = path
        self.reason = reason


class DataQualityError(AnalyticsError):
    exit_code = ExitCode.DATA_QUALITY


class StoreLockedError(AnalyticsError):
    exit_code = ExitCode.LOCKED


class NotFoundError(AnalyticsError):
    exit_code = ExitCode.NOT_FOUND


class InvalidUsageError(AnalyticsError):
    exit_code = ExitCode.USAGE


class Interrupted(BaseException):
    """SIGINT or SIGTERM stopped the job (the command line's signal handler raises it;
    `interrupts.py`). A `BaseException`, like `KeyboardInterrupt`: code that handles the
    job's errors (`except Exception`) must not take it for one.

    `exit_code` is 128 + the signal's number (130, 143), what a shell reports for a
    process a signal ended: not one of the contract's `ExitCode`s, which say how the job
    ended on its own. The job that was stopped fills in where it was (`during`) and the
    days it had published (`published`; None for a command that publishes nothing).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        self.during = ""  # "while load", "after write (2026-11-26)"
        self.published: list[date] | None = None
        self.hint = "run again"

    def locate(self, during: str, published: list[date] | None, hint: str) -> None:
        """Say where the job was; the innermost job to see the interrupt says it."""
        if not self.during:
            self.during, self.published, self.hint = during, published, hint

    @property
    def message(self) -> str:
        text = f"interrupted ({self.signal_name})" + (f" {self.during}" if self.during else "")
        if self.published is not None:
            days = ", ".join(d.isoformat() for d in self.published)
            text += f"; published {days} before it" if days else "; nothing was published"
        return text

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (a library's message can run to a stack
    trace), or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
