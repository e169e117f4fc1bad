"""The server's stderr: one JSON object per line, for its own messages, uvicorn's, and one
access line per request.

What a line never holds: an API key, an email, a request's path or query string, or
any parameter value. The access line names the route *template*; a failed request's
traceback is logged as frames only (file, line, function), without the exception's
message, which could quote a value (`sanitized_traceback`).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write(record: dict[str, Any]) -> None:
    """One JSON line on stderr (looked up now: tests swap it)."""
    sys.stderr.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def access(**fields: Any) -> None:
    write({"time": _now(), "level": "info", "event": "request", **fields})


def sanitized_traceback(exc: BaseException) -> list[str]:
    """Where an exception came from, without what it says: "file:line in function"."""
    frames = traceback.extract_tb(exc.__traceback__)
    return [f"{f.filename}:{f.lineno} in {f.name}" for f in frames]


class JsonFormatter(logging.Formatter):
    """logging records as JSON lines (the server's and uvicorn's messages)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("event", "error_type", "frames", "host", "port", "url", "reason", "status"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line["error_type"] = type(exc).__name__
            line["frames"] = sanitized_traceback(exc)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's `log_config`: everything as JSON lines on stderr; uvicorn's access log is
    off (the app writes its own, `access`)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "scenario_analytics": {
                "handlers": ["stderr"],
                "level": level.upper(),
                "propagate": False,
            },
        },
    }
