"""The HTTP/1.1 connection, guarded: limits on what a client may send before the
application sees a request, and on how long it may take.

uvicorn's httptools protocol has no limit on the size or number of header lines (a 64 MB
header took 8 s of the server's CPU), answers a malformed request with a text/plain 400,
and never closes a connection that sends nothing, or a request head a byte at a time.
`GuardedProtocol` is that protocol with, per connection:

- **head size**: a request line and headers of more than `MAX_HEAD_BYTES` (64 KiB) →
  431 `request_header_fields_too_large`, counted before the bytes are parsed; more than
  `MAX_HEADERS` (100) header lines → 431 as well. The request line itself is judged by
  the application after the key (414 `uri_too_long` over 8 KB, `api/http.py`).
- **malformed requests** (not HTTP, bytes not allowed in a path, NUL): 400
  `invalid_request` as a JSON error body, as every other error.
- **time**: a request head must be complete within `head_timeout` seconds (10 by default,
  `serve --header-timeout`) of the connection opening or the last answer; else 408
  `request_timeout` if part of it came, or the connection is just closed if nothing did.
  Data trickling in does not extend it (a slow-loris client is cut off).
- **connections**: at most `max_connections` open at once (by default three quarters of
  the process's descriptor limit, `RLIMIT_NOFILE`, leaving the rest to the snapshots'
  files); one more is closed at once, so that running out of descriptors never makes
  the server fail to open a snapshot file.

Every refusal closes the connection (`Connection: close`) after its answer, and is
logged as one JSON line (`request_refused`, with the status, never the bytes sent).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from scenario_analytics.serve.query import error_body

log = logging.getLogger("scenario_analytics.serve")

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
HEAD_TIMEOUT_SECONDS = 10.0
_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
}


def default_max_connections() -> int:
    """Three quarters of the soft descriptor limit (at least 16)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(16, soft * 3 // 4)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above (set on the class by
    `configure`, before the server starts)."""

    head_timeout = HEAD_TIMEOUT_SECONDS
    max_connections = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0  # of the request head being received
        self._in_head = True  # between an answer (or the connection) and headers complete
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._refused_later = False  # too many header lines: answered at the head's end

    @classmethod
    def configure(cls, head_timeout: float, max_connections: int) -> type[GuardedProtocol]:
        return type(
            "GuardedProtocol",
            (cls,),
            {"head_timeout": head_timeout, "max_connections": max_connections},
        )

    # -- the connection -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            log.warning(
                "too many connections: closing a new one",
                extra={"event": "request_refused", "reason": "connections", "status": 0},
            )
            transport.abort()
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.transport is None:  # refused in connection_made
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(
                    431,
                    "request_header_fields_too_large",
                    f"The request line and headers are longer than {MAX_HEAD_BYTES} bytes",
                )
                return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        del msg  # uvicorn's text; the answer is a JSON error body
        self._refuse(400, "invalid_request", "The request is not valid HTTP/1.1")

    # -- parser callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._header_count = 0
        self._in_head = True
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            # Parsing goes on to the end of this chunk; the answer is sent after it.
            self._refused_later = True
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused_later:
            self._refuse(
                431,
                "request_header_fields_too_large",
                f"The request has more than {MAX_HEADERS} header lines",
            )
            return
        self._in_head = False
        self._head_bytes = 0
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._in_head = True
            self._arm()

    # -- refusing ---------------------------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport is None or self.transport.is_closing() or not self._in_head:
            return
        if self._head_bytes == 0:  # nothing of a request came: just close
            self.transport.close()
            return
        self._refuse(
            408,
            "request_timeout",
            f"The request line and headers did not come within {self.head_timeout:g} s",
        )

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer with a JSON error body and close the connection."""
        if self._refused or self.transport is None or self.transport.is_closing():
            return
        self._refused = True
        self._disarm()
        body = error_body("invalid_request", code, message).encode()
        head = [
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"cache-control: no-store\r\n",
            b"x-content-type-options: nosniff\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
        log.warning(
            "refused a request: %s",
            code,
            extra={"event": "request_refused", "reason": code, "status": status},
        )
