"""S3-compatible servers started on 127.0.0.1, for the tests (tests/helpers_s3.py) and
the benchmarks (bench/s3_kills.py, the S3 runs of bench/run.py, bench/store_growth.py):
moto's standalone server (an emulator of S3's API) and SeaweedFS (`weed mini`, a real
object store), both installed by `make test` from the package registry, plus a small
HTTP proxy in front of either that injects faults (503 SlowDown, dropped connections,
denied or over-quota writes) into chosen requests and records what it forwarded.

Nothing here talks to the internet: the AWS variables (`S3Server.env`) point every
client at these servers.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-do-not-log"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url_port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=1)
            conn.request("GET", "/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within 30 s: {log.read_text()[-2000:]}")


@dataclass
class S3Server:
    """A running server: its endpoint, and clients and buckets on it."""

    name: str
    endpoint: str
    proc: subprocess.Popen[bytes]
    folder: Path
    buckets: list[str] = field(default_factory=list)

    def client(self, endpoint: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def new_bucket(self) -> str:
        name = f"t{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        """The AWS variables that point the job at this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": endpoint or self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SCENARIO_ANALYTICS_STORAGE_ADDRESSING_STYLE": "path",
            "SCENARIO_ANALYTICS_STORAGE_MAX_ATTEMPTS": "4",
        }

    def keys(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under a prefix, by key relative to it."""
        client = self.client()
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
                found[key[len(prefix) :].lstrip("/")] = body
        return found

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 9)
        self.proc.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_moto() -> S3Server:
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="moto-"))
    log = folder / "server.log"
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait(port, proc, "moto_server", log)
    return S3Server("moto", f"http://127.0.0.1:{port}", proc, folder)


def start_seaweedfs() -> S3Server:
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="seaweedfs-"))
    log = folder / "server.log"
    ports = {name: free_port() for name in ("master", "volume", "filer")}
    proc = subprocess.Popen(
        [
            str(BIN / "weed"),
            "mini",
            f"-dir={folder}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={port}",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={free_port()}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            "-admin.ui=false",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
    )
    _wait(port, proc, "weed mini", log)
    server = S3Server("seaweedfs", f"http://127.0.0.1:{port}", proc, folder)
    # The S3 gateway answers before the filer is ready: wait until a bucket can be made.
    deadline = time.monotonic() + 30
    while True:
        try:
            server.new_bucket()
            return server
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# -- faults ------------------------------------------------------------------------------------


@dataclass
class Rule:
    """Requests matching `method` and the `path` pattern get `fault` `times` times."""

    method: str
    path: str
    fault: str  # "slowdown" (503), "drop" (close the connection), "denied" (403), "quota"
    times: int = 1


@dataclass
class FaultProxy:
    """An HTTP proxy in front of a server; `rules` decide which requests fail and how.
    `seen` lists (method, path, status) of every request it answered."""

    target: str
    rules: list[Rule] = field(default_factory=list)
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, method: str, path: str, fault: str, times: int = 1) -> None:
        with self.lock:
            self.rules.append(Rule(method, path, fault, times))

    def _fault_for(self, method: str, path: str) -> str | None:
        with self.lock:
            for rule in self.rules:
                if rule.times > 0 and rule.method in (method, "*") and re.search(rule.path, path):
                    rule.times -= 1
                    return rule.fault
        return None

    def start(self) -> FaultProxy:
        proxy = self
        host, port = self.target.removeprefix("http://").split(":")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._fault_for(self.command, self.path)
                if fault == "drop":
                    proxy.seen.append((self.command, self.path, 0))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None:
                    status, code = {
                        "slowdown": (503, "SlowDown"),
                        "denied": (403, "AccessDenied"),
                        "quota": (403, "QuotaExceeded"),
                    }[fault]
                    data = (
                        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                        f"<Message>{code} (injected)</Message></Error>"
                    ).encode()
                    proxy.seen.append((self.command, self.path, status))
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = f"{host}:{port}"
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                proxy.seen.append((self.command, self.path, response.status))
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        # Neither server checks request signatures, so the Host header can be rewritten.
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()


@contextlib.contextmanager
def env_set(values: dict[str, str]) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def read_whole(uri: str) -> str | None:
    """What a reader of the store sees: the snapshot latest.json names, every file of it
    read and checked against its manifest's sha256. None if whole (or nothing is
    published yet), else what was wrong (`bench/s3_kills.py`, tests/test_object_storage)."""
    from scenario_analytics.publish.store import Store

    store = Store(uri)
    try:
        day = store.latest()
        if day is None:
            return None
        version = store.version(day)
        if version is None:
            return f"latest.json names {day}, whose version cannot be read"
        for rel in version.files():
            store.fetch(version, rel)
        return None
    except Exception as exc:  # anything a reader would trip on
        return f"{type(exc).__name__}: {exc}"
    finally:
        store.close()
