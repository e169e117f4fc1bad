"""`serve` under hostile clients (issue #24): huge or numerous headers, malformed requests,
idle and trickling connections, and the order of checks. Raw sockets against a real
`serve`; every refusal is a JSON error body and a closed connection, never a hang, and
the server stays responsive meanwhile."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
from helpers_serve import LATEST, build_store, create_key, run_cli, serving, summary_path

from scenario_analytics.api.protocol import MAX_HEAD_BYTES, MAX_HEADERS


def exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, object], str]:
    """Send raw bytes; the status, the JSON body and the headers' text of the answer (the
    connection must be closed by the server after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before all was sent: the answer is there to read
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    if not received:  # reset before the answer could be read (it was sent: see the log)
        return 0, {}, ""
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body), head.decode("latin-1").lower()


@pytest.fixture(scope="module")
def server_and_key(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("limits")
    store = build_store(root, days=(LATEST,))
    keys = root / "keys.json"
    key = create_key(keys, "dashboards")
    with serving(store, "--keys-file", str(keys), "--header-timeout", "1.5") as server:
        yield server, key


def test_a_huge_header_is_refused_and_the_server_stays_responsive(server_and_key) -> None:  # type: ignore[no-untyped-def]
    server, _key = server_and_key
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 * 2**20) + b"\r\n\r\n"
    results: list[tuple[int, dict[str, object], str]] = []
    sender = threading.Thread(target=lambda: results.append(exchange(server.port, huge)))
    sender.start()
    slowest = 0.0
    while sender.is_alive():  # /healthz meanwhile
        started = time.monotonic()
        assert httpx.get(server.url + "/healthz").status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.01)
    sender.join()
    status, body, head = results[0]
    if status:  # else the client's unsent megabytes made the closed socket reset first
        assert status == 431 and "connection: close" in head
        assert body["error"]["code"] == "request_header_fields_too_large"  # type: ignore[index]
    assert slowest < 0.25
    refused = [r for r in server.records() if r.get("event") == "request_refused"]
    assert any(r["status"] == 431 for r in refused)
    assert not any("aaaa" in line for line in server.lines)  # never the bytes sent


def test_too_many_header_lines_and_malformed_requests_get_json(server_and_key) -> None:  # type: ignore[no-untyped-def]
    server, _key = server_and_key
    many = b"".join(b"X-%d: y\r\n" % n for n in range(MAX_HEADERS + 1))
    status, body, _ = exchange(
        server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"
    )
    assert status == 431 and body["error"]["code"] == "request_header_fields_too_large"  # type: ignore[index]
    for raw in (
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /health\x00z HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /r\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    ):
        status, body, head = exchange(server.port, raw)
        assert status == 400, raw
        assert body["error"]["code"] == "invalid_request"  # type: ignore[index]
        assert "content-type: application/json" in head
    # Under the limit, a long head is the application's business.
    fine = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"b" * (MAX_HEAD_BYTES // 2) + b"\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(fine + b"Connection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")


def test_idle_and_trickling_connections_are_closed(server_and_key) -> None:  # type: ignore[no-untyped-def]
    server, _key = server_and_key
    # Nothing sent: closed without an answer once the header timeout (1.5 s) is over.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as idle:
        started = time.monotonic()
        assert idle.recv(100) == b""
        assert 1.0 < time.monotonic() - started < 5
    # A head sent a few bytes at a time, each before the last would time out: 408 at
    # 1.5 s from the start all the same.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        started = time.monotonic()
        answer = b""
        for piece in (b"GET /hea", b"lthz HT", b"TP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n"):
            try:
                slow.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.5)
        while chunk := slow.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408")
        assert b'"request_timeout"' in answer
        assert time.monotonic() - started < 5
    # A keep-alive client that asks in time is served as before.
    with httpx.Client() as client:
        for _ in range(3):
            assert client.get(server.url + "/healthz").status_code == 200
            time.sleep(0.3)


def test_the_key_is_checked_before_the_length_of_the_request_line(server_and_key) -> None:  # type: ignore[no-untyped-def]
    server, key = server_and_key
    long_url = server.url + summary_path("sc1") + "?user_ids=" + "u" * 9000
    response = httpx.get(long_url)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"
    assert response.headers["x-content-type-options"] == "nosniff"
    response = httpx.get(long_url, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 414
    assert response.json()["error"]["code"] == "uri_too_long"
    ok = httpx.get(server.url + summary_path("sc1"), headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200 and ok.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(server.url + "/" + "x" * 9000).status_code == 414  # not an endpoint


def test_connections_beyond_the_limit_are_closed_and_the_rest_are_served(tmp_path: Path) -> None:
    """With a descriptor limit of 256 (max 192 connections), 300 half-open connections:
    the ones over the limit are closed at once, a keep-alive client connected before
    them keeps its answers, and the snapshot stays loaded."""
    store = build_store(tmp_path, days=(LATEST,))
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # inherited by the server
    try:
        context = serving(store, "--no-auth")
        server = context.__enter__()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    held: list[socket.socket] = []
    try:
        with httpx.Client() as client:
            url = server.url + summary_path("sc1")
            assert client.get(url).status_code == 200
            closed = 0
            for _ in range(300):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # half a request
                held.append(sock)
            time.sleep(0.3)
            for sock in held:
                sock.setblocking(False)
                try:
                    closed += sock.recv(10) == b""
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    closed += 1
            assert 300 - 192 <= closed < 300
            for _ in range(5):
                response = client.get(url)
                assert response.status_code == 200, response.text
        assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
    finally:
        for sock in held:
            sock.close()
        context.__exit__(None, None, None)


def test_keys_deleted_refuse_every_key_and_loose_keys_files_are_refused(tmp_path: Path) -> None:
    store = build_store(tmp_path, days=(LATEST,))
    keys = tmp_path / "keys.json"
    key = create_key(keys, "dashboards")
    # A keys file others can read is refused at start, naming the fix.
    keys.chmod(0o644)
    loose = run_cli("serve", "--snapshots", str(store), "--keys-file", str(keys), "--port", "0")
    assert loose.returncode == 2
    assert f"chmod 600 {keys}" in loose.stderr and "0644" in loose.stderr
    keys.chmod(0o600)
    # No environment variable turns keys off on an address others can reach.
    forced = run_cli(
        "serve", "--snapshots", str(store), "--host", "0.0.0.0", "--port", "0",
        env={"SCENARIO_ANALYTICS_FORCE_NO_AUTH": "1"},
    )  # fmt: skip
    assert forced.returncode == 2 and "--keys-file" in forced.stderr
    with serving(store, "--keys-file", str(keys)) as server:
        url = server.url + summary_path("sc1")
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(url, headers=headers).status_code == 200
        saved = keys.read_bytes()
        keys.unlink()  # deleting the file revokes every key
        deadline = time.monotonic() + 3
        while httpx.get(url, headers=headers).status_code != 401:
            assert time.monotonic() < deadline, "the key still works"
            time.sleep(0.05)
        assert any("is gone: every key is refused" in line for line in server.lines)
        keys.write_bytes(saved)
        keys.chmod(0o600)
        deadline = time.monotonic() + 3
        while httpx.get(url, headers=headers).status_code != 200:
            assert time.monotonic() < deadline, "the key did not come back"
            time.sleep(0.05)


def test_as_of_dates_are_limited_per_key_and_loaded_without_blocking_others(
    tmp_path: Path,
) -> None:
    """One key asking for more distinct dates a minute than the limit gets 429 with
    Retry-After; dates it has loaded, the current snapshot and other keys are served
    meanwhile; four dates cycled by two clients stay loaded (no reloads)."""
    days = [date(2026, 11, d) for d in (22, 23, 24, 25, 26)]
    store = build_store(tmp_path, days=days)
    keys = tmp_path / "keys.json"
    greedy, other = create_key(keys, "greedy"), create_key(keys, "other")
    with serving(store, "--keys-file", str(keys)) as server:
        url = server.url + summary_path("sc1")

        def ask(key: str, day: str | None = None) -> httpx.Response:
            params = {"as_of": day} if day else {}
            return httpx.get(url, params=params, headers={"Authorization": f"Bearer {key}"})

        past = [d.isoformat() for d in days[:4]]
        for _ in range(3):  # two clients cycling four dates: loaded once each
            for day in past:
                assert ask(greedy, day).status_code == 200
                assert ask(other, day).status_code == 200
        text = httpx.get(server.url + "/metrics").text
        assert 'scenario_analytics_snapshot_loads_total{result="ok"} 5.0' in text
        # Made-up dates (not published: 404, yet each a look at the store) count too.
        made_up = [date(2026, 10, d).isoformat() for d in range(1, 30)]
        statuses = [ask(greedy, day).status_code for day in made_up[:12]]
        assert statuses.count(404) == 12 - len(past)
        refused = ask(greedy, made_up[12])
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_dates"
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        assert ask(greedy, past[0]).status_code == 200  # loaded: no limit
        assert ask(greedy).status_code == 200
        assert ask(other, made_up[12]).status_code == 404  # another key: its own count


def test_a_port_in_use_or_an_address_not_here_is_exit_1_saying_what_to_do(
    tmp_path: Path,
) -> None:
    store = build_store(tmp_path, days=(LATEST,))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli("serve", "--snapshots", str(store), "--no-auth", "--port", str(port))
    assert busy.returncode == 1
    assert f"scenario-analytics: error: port {port} is in use on 127.0.0.1 — " in busy.stderr
    foreign = run_cli(
        "serve", "--snapshots", str(store), "--force-no-auth", "--host", "192.0.2.7",
        "--port", "0",
    )  # fmt: skip
    assert foreign.returncode == 1, foreign.stderr
    assert "192.0.2.7 is not an address of this machine" in foreign.stderr
    # A store folder that does not exist: served (a first run may come), with a warning.
    with serving(tmp_path / "nostore", "--no-auth") as server:
        assert httpx.get(server.url + "/readyz").status_code == 503
        time.sleep(0.2)
        assert any("does not exist (yet)" in line for line in server.lines)
