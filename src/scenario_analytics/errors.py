"""Exit codes of the contract and the exceptions that carry them."""

from __future__ import annotations

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
