"""The HTTP API: `GET /rest/v1/scenarios/{scenario_id}/analytics/summary` and
`.../participants` from the snapshot store, answering exactly as `query` does.

`create_app(settings)` gives the ASGI application uvicorn runs (`api/server.py`): an
outer layer (`Edge`) that limits the request line, times and logs every request and
turns any unexpected exception into a JSON 500, around a FastAPI app with the two
endpoints and `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

A request, in order: the key (401), the query string (repeated parameters, `as_of`:
400), the snapshot (`as_of`: 400 `invalid_date`, 404 `snapshot_not_found`), then the
answer of `SnapshotQuery` (400 / 404 / 200). Parameters are read from the raw query
string, not by FastAPI, so every error is an Exec error body (FastAPI's 422 is never
sent). A summary that the snapshot precomputed is answered on the event loop from a dict
(`served.py`); anything else runs on a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from scenario_analytics.api import logs
from scenario_analytics.api.keys import AuthFailure, KeyRing
from scenario_analytics.api.metrics import CONTENT_TYPE, Metrics
from scenario_analytics.api.openapi import (
    SECURITY_SCHEMES,
    Participants,
    Summary,
    participants_parameters,
    responses,
    summary_parameters,
)
from scenario_analytics.api.served import (
    Body,
    LoadedSnapshot,
    PoolClosed,
    Served,
    snapshot_not_found,
    snapshot_unavailable,
)
from scenario_analytics.errors import AnalyticsError, ExitCode
from scenario_analytics.locations import Location
from scenario_analytics.publish.store import Store
from scenario_analytics.serve.query import Answer, error_body
from scenario_analytics.settings import EngineSettings, StorageSettings
from scenario_analytics.version import __version__

log = logging.getLogger("scenario_analytics.serve")

SUMMARY_ROUTE = "/rest/v1/scenarios/{scenario_id}/analytics/summary"
PARTICIPANTS_ROUTE = "/rest/v1/scenarios/{scenario_id}/analytics/participants"
# A request line longer than this (path and query string) is refused with 414.
MAX_REQUEST_LINE = 8192
AS_OF_DATES_PER_MINUTE = 12  # distinct as_of dates not loaded yet, per key
NOSNIFF = (b"x-content-type-options", b"nosniff")
API_PREFIX = "/rest/v1/"  # the endpoints: the key is checked before anything else
MAX_PARAMETERS = 64
# FAILURE: a snapshot that is published but cannot be served now (`snapshot_unavailable`).
_STATUS = {ExitCode.OK: 200, ExitCode.USAGE: 400, ExitCode.NOT_FOUND: 404, ExitCode.FAILURE: 503}
# The scenario as sent: the path segment before /analytics/, percent-decoded here (an id
# may hold `/` as %2F, or bytes that are not UTF-8, which then match no scenario).
_SCENARIO = re.compile(rb"^/rest/v1/scenarios/(.*)/analytics/[a-z]+$", re.DOTALL)
_AS_OF = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", re.ASCII)
JSON = "application/json"
# What the access log line learns from the handler (a key of the ASGI scope).
LOG_INFO = "scenario_analytics.log"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ServerSettings:
    """What a server needs. `keys_file` None: no authentication (`--no-auth`)."""

    store: Location
    keys_file: Path | None
    workers: int = 2
    cache_max_age: int = 60
    engine: EngineSettings | None = None
    poll_seconds: float = 0.25
    storage: StorageSettings | None = None  # [storage]: how an s3:// store is reached


def _error(status: int, kind: str, code: str, message: str, **headers: str) -> Response:
    return Response(
        error_body(kind, code, message),
        status_code=status,
        media_type=JSON,
        headers={"Cache-Control": "no-store", **headers},
    )


class DateLimiter:
    """How many distinct `as_of` dates not loaded yet one client (its key's name; its
    address without keys) may ask for within a minute: each is a snapshot load, and a
    client cycling through dates would otherwise evict the ones others use."""

    def __init__(self, per_minute: int = AS_OF_DATES_PER_MINUTE) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, dict[date, float]] = {}

    def retry_after(self, client: str, day: date, now: float) -> int | None:
        """None if `day` may be loaded for `client` now; else the seconds to wait."""
        if len(self._seen) > 10_000:  # clients long gone
            self._seen = {c: d for c, d in self._seen.items() if max(d.values()) > now - 60}
        seen = self._seen.setdefault(client, {})
        for old in [d for d, t in seen.items() if now - t >= 60]:
            del seen[old]
        if day in seen:
            return None
        if len(seen) >= self.per_minute:
            return max(1, int(61 - (now - min(seen.values()))))
        seen[day] = now
        return None


class _BadQuery(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def read_query(raw: bytes) -> dict[str, str]:
    """The query string's parameters: `&`-separated `name=value` pairs, `+` and %XX
    decoded, as UTF-8 (bytes that are not UTF-8 kept as lone surrogates, which the parsers
    refuse); a pair without `=` has an empty value, empty pairs are skipped. A parameter
    given twice is a 400 invalid_parameter: which one would count is not knowable."""
    pairs = [pair for pair in raw.split(b"&") if pair]
    if len(pairs) > MAX_PARAMETERS:
        raise _BadQuery(
            _error(
                400,
                "invalid_request",
                "invalid_parameter",
                f"too many query parameters (at most {MAX_PARAMETERS})",
            )
        )
    params: dict[str, str] = {}
    for pair in pairs:
        raw_name, _, raw_value = pair.partition(b"=")
        name = _decode(raw_name)
        if name in params:
            raise _BadQuery(
                _error(
                    400,
                    "invalid_request",
                    "invalid_parameter",
                    f"{name} is given more than once: give it once (lists are comma-separated)",
                )
            )
        params[name] = _decode(raw_value)
    return params


def _decode(raw: bytes) -> str:
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "surrogateescape")


def parse_as_of(value: str | None) -> date | None:
    """`as_of=YYYY-MM-DD`; empty or absent is the snapshot latest.json names."""
    if value is None or value == "":
        return None
    if _AS_OF.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _BadQuery(
        _error(400, "invalid_request", "invalid_date", "as_of must be a date YYYY-MM-DD")
    )


def if_none_match(header: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names this entity tag (weak comparison, `*`)."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


class Api:
    """The state behind the endpoints: the snapshots served, the keys, the metrics."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.keys = KeyRing(settings.keys_file) if settings.keys_file is not None else None
        self.metrics.keys.set(self.keys.count if self.keys is not None else -1)
        self._keys_problem: str | None = None
        self.served = Served(
            Store(settings.store, settings.storage),
            self.metrics,
            workers=settings.workers,
            engine=settings.engine,
            poll_seconds=settings.poll_seconds,
            on_poll=self._refresh_keys,
        )
        self.cache_control = f"private, max-age={settings.cache_max_age}"
        self.dates = DateLimiter()

    def _refresh_keys(self) -> None:
        if self.keys is None:
            return
        try:
            if self.keys.refresh():
                log.info("reloaded the keys file: %d key(s)", self.keys.count)
                self.metrics.keys.set(self.keys.count)
            self._keys_problem = None
        except AnalyticsError as exc:
            if exc.message != self._keys_problem:  # once per problem, not every poll
                kept = "" if self.keys.count == 0 else "; the keys loaded before stay in force"
                log.error("keys file: %s%s", exc.message, kept)
                self.metrics.keys.set(self.keys.count)
                self._keys_problem = exc.message

    def authenticate(self, request: Request) -> str | Response:
        """The key's name ("" without authentication), or the 401 response."""
        if self.keys is None:
            return ""
        headers = request.headers.getlist("authorization")
        found = self.keys.check(headers[0] if len(headers) == 1 else None)
        if len(headers) > 1:
            found = AuthFailure("malformed_api_key", "Send one Authorization header")
        if isinstance(found, AuthFailure):
            challenge = (
                "Bearer" if found.code == "missing_api_key" else 'Bearer error="invalid_token"'
            )
            return _error(
                401,
                "authentication_error",
                found.code,
                found.message,
                **{"WWW-Authenticate": challenge},
            )
        return found

    async def answer(self, request: Request, endpoint: str) -> Response:
        info: dict[str, Any] = request.scope.setdefault(LOG_INFO, {})
        key_name = self.authenticate(request)
        if isinstance(key_name, Response):
            return key_name
        if key_name:
            info["key"] = key_name
        if _request_line(request.scope) > MAX_REQUEST_LINE:  # after the key, as documented
            return _uri_too_long()
        try:
            params = read_query(request.scope.get("query_string", b""))
            as_of = parse_as_of(params.pop("as_of", None))
        except _BadQuery as bad:
            return bad.response
        snapshot: LoadedSnapshot | Answer | None
        if as_of is None:
            snapshot = self.served.current
        else:
            if not self.served.is_loaded(as_of):
                client = key_name or (request.client.host if request.client else "")
                wait = self.dates.retry_after(client, as_of, time.monotonic())
                if wait is not None:
                    return _error(
                        429,
                        "invalid_request",
                        "too_many_dates",
                        f"More than {self.dates.per_minute} as_of dates within a minute: "
                        f"retry in {wait} s",
                        **{"Retry-After": str(wait)},
                    )
            snapshot = await self.served.dated(as_of)
        if snapshot is None:
            if self.served.problem is not None:  # published, but cannot be served now
                return self._from_answer(snapshot_unavailable(None), None)
            return self._from_answer(snapshot_not_found(None), None)
        if isinstance(snapshot, Answer):
            return self._from_answer(snapshot, None)
        info["snapshot_date"] = snapshot.label
        scenario = _scenario(request)
        snapshot.enter()
        try:
            if endpoint == "summary":
                found = snapshot.precomputed(scenario, params)
                if isinstance(found, Body):
                    info["source"] = "precomputed"
                    self.metrics.answers.labels(endpoint, "precomputed").inc()
                    return self._ok(request, found, snapshot)
                if isinstance(found, Answer):
                    return self._from_answer(found, snapshot)
            else:
                error = snapshot.participants_error(scenario, params)
                if error is not None:
                    return self._from_answer(error, snapshot)
            if self.served.saturated:
                return _error(
                    503,
                    "api_error",
                    "overloaded",
                    "Too many requests are being computed: retry shortly",
                    **{"Retry-After": "1"},
                )
            info["source"] = "computed"
            try:
                answer = await self.served.compute(snapshot, endpoint, scenario, params)
            except PoolClosed:
                return _error(503, "api_error", "shutting_down", "The server is stopping")
            except (duckdb.IOException, OSError) as exc:
                # The snapshot's files cannot be read (removed by hand, a full or failing
                # disk): no bug of this request, and maybe gone on the next poll.
                log.error(
                    "cannot read the snapshot %s: %s",
                    snapshot.label,
                    type(exc).__name__,
                    extra={"frames": logs.sanitized_traceback(exc)},
                )
                return _error(
                    503,
                    "api_error",
                    "snapshot_unavailable",
                    "The snapshot cannot be read now: retry shortly",
                    **{"Retry-After": "1"},
                )
            if answer.exit_code == ExitCode.OK:
                self.metrics.answers.labels(endpoint, "computed").inc()
                return self._ok(request, Body.of(answer.body), snapshot)
            return self._from_answer(answer, snapshot)
        finally:
            snapshot.leave()

    def _ok(self, request: Request, body: Body, snapshot: LoadedSnapshot) -> Response:
        headers = {
            "ETag": body.etag,
            "Cache-Control": self.cache_control,
            "X-Snapshot-Date": snapshot.label,
        }
        if if_none_match(request.headers.get("if-none-match"), body.etag):
            return Response(status_code=304, headers=headers)
        return Response(body.data, status_code=200, media_type=JSON, headers=headers)

    def _from_answer(self, answer: Answer, snapshot: LoadedSnapshot | None) -> Response:
        headers = {"Cache-Control": "no-store"}
        if snapshot is not None:
            headers["X-Snapshot-Date"] = snapshot.label
        status = _STATUS.get(answer.exit_code, 500)
        if status == 503:  # snapshot_unavailable: try again soon
            headers["Retry-After"] = "1"
        return Response(answer.body, status_code=status, media_type=JSON, headers=headers)


def _scenario(request: Request) -> str:
    raw = request.scope.get("raw_path")
    match = _SCENARIO.match(raw) if isinstance(raw, bytes) else None
    if match is None:  # a server that gives no raw_path: the decoded path parameter
        return str(request.path_params.get("scenario_id", ""))
    return unquote_to_bytes(match.group(1)).decode("utf-8", "surrogateescape")


# -- the application ----------------------------------------------------------------------------

DESCRIPTION = """\
Scenario analytics from published snapshots (`scenario-analytics serve`): the bodies are
those of `scenario-analytics query` for the same request. Authenticate with
`Authorization: Bearer exec_live_...`. Successful answers carry `ETag`, `Cache-Control`
and `X-Snapshot-Date`; errors are `{"error": {"type", "code", "message"}}`. Parameters
not listed are `invalid_parameter`; a parameter given twice too.
"""


def build_api(settings: ServerSettings | None) -> FastAPI:
    """The FastAPI app. Without settings: the routes only (for the OpenAPI document)."""
    api = Api(settings) if settings is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if api is not None:
            await api.served.start()
        try:
            yield
        finally:
            if api is not None:
                await api.served.stop()

    app = FastAPI(
        title="Scenario analytics",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.api = api

    def _api() -> Api:
        assert api is not None, "an app built without settings serves nothing"
        return api

    @app.get(
        SUMMARY_ROUTE.replace("{scenario_id}", "{scenario_id:path}"),
        operation_id="getScenarioAnalyticsSummary",
        summary="A scenario's analytics summary",
        description="The summary of a scenario's graded sessions under the filters: "
        "participants, sessions, average best score and rank, lift, practice time, the "
        "score distribution.",
        tags=["analytics"],
        responses=responses(Summary),
        openapi_extra={"parameters": summary_parameters(), "security": [{"bearerAuth": []}]},
    )
    async def summary(request: Request) -> Response:
        return await _api().answer(request, "summary")

    @app.get(
        PARTICIPANTS_ROUTE.replace("{scenario_id}", "{scenario_id:path}"),
        operation_id="getScenarioAnalyticsParticipants",
        summary="A page of a scenario's participants",
        description="One entry per participant under the filters, sorted and paged.",
        tags=["analytics"],
        responses=responses(Participants),
        openapi_extra={
            "parameters": participants_parameters(),
            "security": [{"bearerAuth": []}],
        },
    )
    async def participants(request: Request) -> Response:
        return await _api().answer(request, "participants")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        served = _api().served
        current, problem = served.current, served.problem
        if current is None:
            return JSONResponse(
                {"status": "unavailable", "reason": problem or "no snapshot is published yet"},
                status_code=503,
                headers={"Cache-Control": "no-store", "Retry-After": "1"},
            )
        ready: dict[str, str] = {"status": "ready", "snapshot_date": current.label}
        if problem is not None:  # serving an older snapshot than latest.json names
            ready["problem"] = problem
        return JSONResponse(ready, headers={"Cache-Control": "no-store"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(_api().metrics.render(), media_type=CONTENT_TYPE)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, _exc: RequestValidationError) -> Response:
        return _error(400, "invalid_request", "invalid_parameter", "Invalid request parameters")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _error(404, "not_found", "route_not_found", "No such endpoint")
        if exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "GET")
            return _error(
                405, "invalid_request", "method_not_allowed", "Method not allowed", Allow=allow
            )
        return _error(exc.status_code, "invalid_request", "bad_request", "Bad request")

    @app.exception_handler(Exception)
    async def bug(_request: Request, _exc: Exception) -> Response:
        # The traceback is logged by Edge, which sees the exception after this response.
        return _internal_error()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version="3.1.0",
                description=app.description,
                routes=app.routes,
            )
            document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _request_line(scope: Mapping[str, Any]) -> int:
    """The length of the path and query string as sent."""
    return len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")


def _uri_too_long() -> Response:
    return _error(
        414,
        "invalid_request",
        "uri_too_long",
        f"The request line is longer than {MAX_REQUEST_LINE} bytes",
    )


def _internal_error() -> Response:
    return _error(500, "api_error", "internal_error", "Internal error: it is logged")


class Edge:
    """The outermost layer: 414 for a request line over MAX_REQUEST_LINE, the access log
    line and metrics of every request, and a JSON 500 (traceback logged without values)
    for an exception nothing else handled."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        info: dict[str, Any] = {}
        scope[LOG_INFO] = info

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                # Every answer is JSON (or the metrics' text): never sniffed as another type.
                message["headers"] = [*message.get("headers", []), NOSNIFF]
            await send(message)

        if self.metrics is not None:
            self.metrics.in_flight.inc()
        try:
            # The endpoints check the key first, then the length (`Api.answer`).
            api = str(scope.get("path", "")).startswith(API_PREFIX)
            if _request_line(scope) > MAX_REQUEST_LINE and not api:
                await _uri_too_long()(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        except Exception as exc:
            logs.write(
                {
                    "level": "error",
                    "event": "internal_error",
                    "error_type": type(exc).__name__,
                    "frames": logs.sanitized_traceback(exc),
                }
            )
            if status == 0:
                await _internal_error()(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path_format", None) or (
                "(too long)" if status == 414 else "(unmatched)"
            )
            method = str(scope.get("method", ""))
            if self.metrics is not None:
                self.metrics.in_flight.dec()
                self.metrics.observe(template, method, status, seconds)
            logs.access(
                method=method,
                route=template,
                status=status,
                duration_ms=round(seconds * 1000, 3),
                **info,
            )


def create_app(settings: ServerSettings) -> Edge:
    """The ASGI application `serve` runs."""
    app = build_api(settings)
    api: Api = app.state.api
    return Edge(app, api.metrics)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI description of the endpoints (what /openapi.json serves)."""
    return build_api(None).openapi()
