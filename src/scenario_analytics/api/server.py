"""Running the HTTP API under uvicorn: the socket, the logs, and a clean exit on SIGTERM.

SIGTERM (what systemd, Kubernetes and `kill` send) and SIGINT start uvicorn's graceful
shutdown: no new connections, requests in flight finish (up to
`GRACEFUL_SHUTDOWN_SECONDS`), the snapshots' readers close. The process then exits 0
after SIGTERM (a requested stop is a success for a service manager) and 130 after
SIGINT, as the other commands do. uvicorn re-raises the signal it caught once it has shut
down; the handlers installed here take that second delivery, so the exit code is ours.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import signal
import socket
import stat
from pathlib import Path
from types import FrameType

import uvicorn

from scenario_analytics.api.http import ServerSettings, create_app
from scenario_analytics.api.logs import log_config
from scenario_analytics.api.protocol import (
    HEAD_TIMEOUT_SECONDS,
    GuardedProtocol,
    default_max_connections,
)
from scenario_analytics.errors import AnalyticsError, InvalidUsageError

log = logging.getLogger("scenario_analytics.serve")

GRACEFUL_SHUTDOWN_SECONDS = 30
KEEP_ALIVE_SECONDS = 5


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`: reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_auth_choice(host: str, keys_given: bool, no_auth: bool, force_no_auth: bool) -> None:
    """Keys are required, unless `--no-auth` says otherwise on purpose; without keys the
    server binds to loopback only, unless `--force-no-auth` (behind a proxy that
    authenticates, say)."""
    if keys_given and (no_auth or force_no_auth):
        raise InvalidUsageError(
            "--keys-file and --no-auth contradict each other", "give one of them"
        )
    if not keys_given and not (no_auth or force_no_auth):
        raise InvalidUsageError(
            "serve needs --keys-file FILE (API keys), or --no-auth to serve without keys",
            "create a key with `scenario-analytics keys create --keys-file FILE --name NAME`",
        )
    if not keys_given and not force_no_auth and not is_loopback(host):
        raise InvalidUsageError(
            f"--no-auth serves anyone who can connect; --host {host} is not a loopback address",
            "use --keys-file, bind to 127.0.0.1, or pass --force-no-auth if a proxy in "
            "front authenticates",
        )


def check_keys_file(path: Path) -> None:
    """Refuse a keys file others may read (exit 2): the hashes would let them try keys
    offline. A missing file is left to the server's own message (exit 3)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if mode & 0o077:
        raise InvalidUsageError(
            f"the keys file {path} can be read or written by its group or others "
            f"(mode {stat.S_IMODE(mode):04o})",
            f"run `chmod 600 {path}` (keys create makes it 0600)",
        )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or an error that says what to do (exit 1): uvicorn's own
    bind exits 3, the code for "not found", with only the OS's message."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AnalyticsError(
                f"port {port} is in use on {host}",
                "stop what listens there, or choose another --port (0: any free port)",
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise AnalyticsError(
                f"{host} is not an address of this machine",
                "use 127.0.0.1 (this machine only), 0.0.0.0 (every address) or one of its "
                "addresses",
            ) from None
        raise AnalyticsError(
            f"cannot listen on {host} port {port}: {exc.strerror or exc}"
        ) from None
    sock.set_inheritable(True)
    return sock


def run_server(
    settings: ServerSettings,
    host: str,
    port: int,
    log_level: str = "info",
    *,
    header_timeout: float = HEAD_TIMEOUT_SECONDS,
) -> int:
    """Serve until SIGTERM or SIGINT; returns the exit code (0, or 130 after SIGINT).
    The connections are guarded (`api/protocol.py`): head size, header lines, time."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config(log_level),
        access_log=False,  # the app writes its own access lines (api/logs.py)
        server_header=False,
        http=GuardedProtocol.configure(header_timeout, default_max_connections()),
        loop="uvloop",
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    if settings.store.is_local and not settings.store.local_path.exists():
        log.warning(
            "the store %s does not exist (yet): /readyz answers 503 until a run publishes "
            "there; check --snapshots",
            settings.store,
        )
    log.info(
        "listening on %s port %d",
        bound_host,
        bound_port,
        extra={"event": "listening", "host": bound_host, "port": bound_port},
    )
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    # Installed for the rest of the process: a second SIGTERM while it exits (a service
    # manager that repeats itself) must not turn a clean stop into death by signal.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    log.info("stopped", extra={"event": "stopped"})
    return 130 if signal.SIGINT in received else 0
