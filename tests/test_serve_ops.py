"""`serve` in operation: readiness, metrics, snapshots published, pinned and pruned while
it runs, SIGTERM, the keys commands, and what it refuses to start with.

Each test runs its own server (a subprocess on 127.0.0.1); request loops are bounded in
count and time.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
from helpers_serve import (
    LATEST,
    NEXT,
    OLDER,
    build_store,
    expected,
    participants_path,
    run_cli,
    serving,
    summary_path,
    with_query,
)

from scenario_analytics.publish.store import Store

EMPTY_STORE_ENV = {"SCENARIO_ANALYTICS_MAX_REJECT_RATIO": "0.5"}


def wait_for(condition: Callable[[], object], timeout: float = 10.0, step: float = 0.02) -> float:
    """Seconds until `condition()` is true (fails after `timeout`)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError("timed out")
        time.sleep(step)
    return time.monotonic() - started


def served_date(url: str) -> str | None:
    response = httpx.get(url + summary_path("sc1"), timeout=10)
    return response.headers.get("x-snapshot-date")


def test_readyz_is_503_until_a_run_publishes(tmp_path: Path) -> None:
    built = build_store(tmp_path / "source", days=())
    store = tmp_path / "store"
    with serving(store, "--no-auth") as server:
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert httpx.get(server.url + "/healthz").status_code == 200
        response = httpx.get(server.url + summary_path("sc1"))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "snapshot_not_found"
        metrics = httpx.get(server.url + "/metrics").text
        assert "scenario_analytics_snapshot_date_seconds 0.0" in metrics
        run = run_cli(
            "run",
            "--exports",
            str(built.parent / "exports"),
            "--snapshots",
            str(store),
            "--as-of",
            LATEST.isoformat(),
        )
        assert run.returncode == 0, run.stderr
        wait_for(lambda: httpx.get(server.url + "/readyz").status_code == 200, timeout=5)
        assert httpx.get(server.url + "/readyz").json()["snapshot_date"] == "2026-11-26"
        assert httpx.get(server.url + summary_path("sc1")).status_code == 200


def test_metrics(tmp_path: Path) -> None:
    store = build_store(tmp_path, days=(LATEST,))
    with serving(store, "--no-auth") as server:
        for _ in range(3):
            httpx.get(server.url + summary_path("sc1"))
        httpx.get(server.url + summary_path("nope"))
        httpx.get(server.url + participants_path("sc1"))
        httpx.get(server.url + "/nowhere")
        response = httpx.get(server.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    summary = "/rest/v1/scenarios/{scenario_id}/analytics/summary"
    participants = "/rest/v1/scenarios/{scenario_id}/analytics/participants"
    assert (
        f'scenario_analytics_http_requests_total{{method="GET",route="{summary}",status="200"}}'
        " 3.0" in text
    )
    assert f'route="{summary}",status="404"}} 1.0' in text
    assert f'route="{participants}",status="200"}} 1.0' in text
    assert 'route="(unmatched)",status="404"} 1.0' in text
    assert (
        f'scenario_analytics_http_request_duration_seconds_bucket{{le="0.01",route="{summary}"}}'
        in text
    )
    assert (
        f'scenario_analytics_http_request_duration_seconds_count{{route="{summary}"}} 4.0' in text
    )
    # The served snapshot: its date as a label, and as a time (2026-11-26T00:00:00Z).
    assert 'scenario_analytics_snapshot_info{snapshot_date="2026-11-26"} 1.0' in text
    assert "scenario_analytics_snapshot_date_seconds 1.7956512e+09" in text
    assert "scenario_analytics_api_keys -1.0" in text  # --no-auth
    assert "sc1" not in text  # no label per scenario


def test_pin_and_unpin_are_served_within_a_second(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    with serving(store, "--no-auth") as server:
        assert served_date(server.url) == "2026-11-26"
        for command, day in (("pin", "2026-11-25"), ("unpin", "2026-11-26")):
            started = time.monotonic()
            result = run_cli(
                "snapshots",
                command,
                *([day] if command == "pin" else []),
                "--snapshots",
                str(store),
            )
            assert result.returncode == 0, result.stderr
            waited = wait_for(lambda d=day: served_date(server.url) == d, timeout=5)
            assert time.monotonic() - started < 1.5 + 1.0  # the command's own start-up
            assert waited < 1.0, f"{command} took {waited:.2f}s to be served"
        assert httpx.get(server.url + "/readyz").json()["snapshot_date"] == "2026-11-26"


def test_a_run_publishing_while_requests_run(tmp_path: Path) -> None:
    """A bounded loop of requests while `run` publishes the next day: none fails, each
    body is one of the two snapshots' answers, the one its X-Snapshot-Date names."""
    store = build_store(tmp_path, days=(LATEST,))
    requests = [
        ("summary", "sc1", {}),
        ("summary", "sc2", {"group_ids": "g1"}),
        ("summary", "sc1", {"user_ids": "u1,u2"}),  # computed
        ("participants", "sc1", {"sorting": "-lift_percentage", "page_size": "3"}),
    ]
    results: list[tuple[int, int, str | None, bytes]] = []
    stop = threading.Event()

    def loop(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for number in range(5000):  # until the new snapshot has been served a while
                if stop.is_set():
                    return
                kind = (worker + number) % len(requests)
                endpoint, scenario, params = requests[kind]
                path = (summary_path if endpoint == "summary" else participants_path)(scenario)
                response = client.get(with_query(path, params))
                results.append(
                    (
                        kind,
                        response.status_code,
                        response.headers.get("x-snapshot-date"),
                        response.content,
                    )
                )

    exports = store.parent / "exports"
    with serving(store, "--no-auth") as server:
        with ThreadPoolExecutor(3) as pool:
            loops = [pool.submit(loop, worker) for worker in range(3)]
            time.sleep(0.3)
            run = run_cli(
                "run",
                "--exports",
                str(exports),
                "--snapshots",
                str(store),
                "--as-of",
                NEXT.isoformat(),
            )
            assert run.returncode == 0, run.stderr
            wait_for(lambda: served_date(server.url) == NEXT.isoformat(), timeout=5)
            time.sleep(0.3)
            stop.set()
            for future in loops:
                future.result(timeout=60)
        assert not [r for r in server.records() if r.get("status") == 500]
    want = {
        (kind, day.isoformat()): expected(
            store, endpoint, scenario, params, as_of=day
        ).body.encode()
        for kind, (endpoint, scenario, params) in enumerate(requests)
        for day in (LATEST, NEXT)
    }
    assert results and all(status == 200 for _kind, status, _day, _body in results)
    seen = {day for _kind, _status, day, _body in results}
    assert seen == {LATEST.isoformat(), NEXT.isoformat()}
    for kind, _status, day, body in results:
        assert body == want[(kind, str(day))]


def _clean_up(store: Path, grace_seconds: float) -> list[str]:
    """What the next run's clean-up does once `grace_seconds` of each retired version's
    grace period (an hour) have passed."""
    lib = Store(store)
    with lib.lock():
        return lib.clean_up(grace_seconds=grace_seconds)


def _build(store: Path, day: date) -> str:
    found = Store(store).record(day)
    assert found is not None
    return found[0].build


def test_a_pruned_or_rebuilt_snapshot_in_use_causes_no_error(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    with serving(store, "--no-auth") as server:
        older = {"as_of": OLDER.isoformat(), "user_ids": "u1"}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            first = client.get(summary_path("sc1"), params=older)
            assert first.status_code == 200
            # Retention unpublishes it (its files stay an hour for readers), then its files
            # go too, as a clean-up after the grace period removes them.
            result = run_cli("snapshots", "delete", OLDER.isoformat(), "--snapshots", str(store))
            assert result.returncode == 0, result.stderr
            assert f"snapshot_date={OLDER.isoformat()}" in _clean_up(store, 0)
            wait_for(lambda: client.get(summary_path("sc1"), params=older).status_code == 404)
            gone = client.get(summary_path("sc1"), params=older).json()["error"]
            assert gone["code"] == "snapshot_not_found"
            # The current date rebuilt (backfill --force): the new version is served (from
            # .staging, while the replaced one keeps its folder for its readers).
            current = _build(store, LATEST)

            def switches() -> int:
                return sum("serving snapshot 2026-11-26" in line for line in server.lines)

            assert switches() == 1
            result = run_cli(
                "backfill",
                "--exports",
                str(store.parent / "exports"),
                "--snapshots",
                str(store),
                "--from",
                LATEST.isoformat(),
                "--to",
                LATEST.isoformat(),
                "--force",
            )
            assert result.returncode == 0, result.stderr
            rebuilt = _build(store, LATEST)
            assert rebuilt != current
            wait_for(lambda: switches() == 2)

            def answers_right() -> None:
                for params in ({}, {"user_ids": "u2"}, {"start_date": "2026-11-22"}):
                    response = client.get(summary_path("sc2"), params=params)
                    assert response.status_code == 200
                    assert (
                        response.content == expected(store, "summary", "sc2", params).body.encode()
                    )

            answers_right()
            # An hour on, the next run moves the rebuild's files into the date's folder and
            # removes what only the replaced version used, while the server has them open;
            # an hour after that, the rebuild's copies in .staging go too.
            time.sleep(1.1)
            moved = _clean_up(store, 1)
            assert f"snapshot_date={LATEST.isoformat()}: moved its files in place" in moved
            wait_for(lambda: switches() == 3)  # the same build, from its folder now
            answers_right()
            assert any(r.startswith(".staging/") for r in _clean_up(store, 0))
            answers_right()
            assert client.get(participants_path("sc2")).status_code == 200
            assert _build(store, LATEST) == rebuilt
        assert not [r for r in server.records() if r.get("status") == 500]


def test_an_as_of_snapshot_whose_files_move_in_place_causes_no_error(tmp_path: Path) -> None:
    """A rebuilt date asked for with as_of is loaded from .staging (read on demand, no
    warm-up); once its files are moved into its folder and the .staging copies are gone,
    the server reads it from the folder: no request fails."""
    store = build_store(tmp_path)
    with serving(store, "--no-auth") as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            result = run_cli(
                "backfill", "--exports", str(store.parent / "exports"), "--snapshots",
                str(store), "--from", OLDER.isoformat(), "--to", OLDER.isoformat(), "--force",
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            as_of = {"as_of": OLDER.isoformat()}
            assert client.get(summary_path("sc1"), params=as_of).status_code == 200
            time.sleep(1.1)
            moved = _clean_up(store, 1)  # an hour on: moved in place
            assert f"snapshot_date={OLDER.isoformat()}: moved its files in place" in moved
            assert any(r.startswith(".staging/") for r in _clean_up(store, 0))  # and later
            time.sleep(1.5)  # past the server's recheck of as_of snapshots
            for extra in ({}, {"user_ids": "u2"}):
                params = {**as_of, **extra}
                assert client.get(participants_path("sc1"), params=params).status_code == 200
                response = client.get(summary_path("sc2"), params=params)
                assert response.status_code == 200
                want = expected(store, "summary", "sc2", extra, as_of=OLDER)
                assert response.content == want.body.encode()
        assert not [r for r in server.records() if r.get("status") == 500]


def test_sigterm_ends_gracefully_with_exit_0(tmp_path: Path) -> None:
    """Requests the server took in finish (their response arrives); connections it had
    not accepted yet when it stopped listening are refused or reset, never answered."""
    store = build_store(tmp_path, days=(LATEST,))
    outcomes: list[str] = []
    with serving(store, "--no-auth") as server:
        url = server.url

        def ask(number: int) -> None:
            params = {"start_date": f"2026-11-2{number % 6}T0{number % 9}:00:00Z"}
            try:
                response = httpx.get(url + participants_path("sc1"), params=params, timeout=30)
                outcomes.append(
                    "ok" if response.status_code == 200 else f"status {response.status_code}"
                )
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                outcomes.append("not accepted")

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(ask, n) for n in range(40)]
            wait_for(lambda: len(outcomes) >= 2)
            server.process.send_signal(signal.SIGTERM)
            for future in futures:
                future.result(timeout=60)
        code = server.wait()  # no second signal: one SIGTERM is enough
        records = server.records()
    assert code == 0
    assert set(outcomes) <= {"ok", "not accepted"} and "ok" in outcomes
    answered = [r for r in records if r.get("event") == "request" and "analytics" in r["route"]]
    assert all(r["status"] == 200 for r in answered)
    assert outcomes.count("ok") == len(answered)  # every answer the server gave arrived
    assert records[-1]["event"] == "stopped"
    assert any(r.get("message") == "Application shutdown complete." for r in records)


def test_startup_refusals(tmp_path: Path) -> None:
    store = build_store(tmp_path, days=(LATEST,))
    no_keys = run_cli("serve", "--snapshots", str(store))
    assert no_keys.returncode == 2
    assert "--keys-file" in no_keys.stderr and "--no-auth" in no_keys.stderr
    public = run_cli("serve", "--snapshots", str(store), "--no-auth", "--host", "0.0.0.0")
    assert public.returncode == 2
    assert "not a loopback address" in public.stderr
    missing = run_cli("serve", "--snapshots", str(store), "--keys-file", str(tmp_path / "none"))
    assert missing.returncode == 3
    assert "keys create" in missing.stderr
    both = run_cli(
        "serve", "--snapshots", str(store), "--keys-file", str(tmp_path / "k"), "--no-auth"
    )
    assert both.returncode == 2
    (tmp_path / "broken.json").write_text('{"keys": [{"name": "x", "sha256": "exec_live_"}]}')
    (tmp_path / "broken.json").chmod(0o600)  # as keys create leaves it: broken inside
    broken = run_cli(
        "serve", "--snapshots", str(store), "--keys-file", str(tmp_path / "broken.json")
    )
    assert broken.returncode == 1
    assert "no SHA-256 hash" in broken.stderr


def test_keys_commands_and_revocation_while_serving(tmp_path: Path) -> None:
    store = build_store(tmp_path, days=(LATEST,))
    keys = tmp_path / "etc" / "keys.json"
    # A folder that does not exist (a typo, say) is refused, and not created.
    missing = run_cli("keys", "create", "--keys-file", str(keys), "--name", "dashboards")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not (tmp_path / "etc").exists()
    (tmp_path / "etc").mkdir(mode=0o700)
    created = run_cli("keys", "create", "--keys-file", str(keys), "--name", "dashboards")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert re.fullmatch(r"exec_live_[A-Za-z0-9]{40}", key)
    assert key not in created.stderr and "not shown again" in created.stderr
    again = run_cli("keys", "create", "--keys-file", str(keys), "--name", "dashboards")
    assert again.returncode == 2
    other = run_cli("keys", "create", "--keys-file", str(keys), "--name", "etl").stdout.strip()
    assert other != key
    listed = run_cli("keys", "list", "--keys-file", str(keys), "--json")
    names = [k["name"] for k in json.loads(listed.stdout)["keys"]]
    assert names == ["dashboards", "etl"]
    assert key not in listed.stdout and "sha256" not in listed.stdout
    assert (
        run_cli("keys", "create", "--keys-file", str(keys), "--name", "bad\nname").returncode == 2
    )

    with serving(store, "--keys-file", str(keys)) as server:
        url = server.url + summary_path("sc1")

        def status(k: str) -> int:
            return httpx.get(url, headers={"Authorization": f"Bearer {k}"}).status_code

        assert status(key) == 200 and status(other) == 200
        revoked = run_cli("keys", "revoke", "--keys-file", str(keys), "--name", "dashboards")
        assert revoked.returncode == 0, revoked.stderr
        assert wait_for(lambda: status(key) == 401, timeout=3) < 1.5
        assert status(other) == 200
        unknown = run_cli("keys", "revoke", "--keys-file", str(keys), "--name", "nobody")
        assert unknown.returncode == 3
        # A keys file broken by hand keeps the keys loaded before in force.
        keys.write_text("not json")
        time.sleep(0.6)
        assert status(other) == 200
        assert any("keys file" in r.get("message", "") for r in server.records())


def test_a_damaged_snapshot_is_not_served_and_the_previous_one_stays(tmp_path: Path) -> None:
    store = build_store(tmp_path, days=(LATEST,))
    exports = str(store.parent / "exports")
    pinned = run_cli("snapshots", "pin", LATEST.isoformat(), "--snapshots", str(store))
    assert pinned.returncode == 0, pinned.stderr
    published = run_cli(
        "run", "--exports", exports, "--snapshots", str(store), "--as-of", NEXT.isoformat()
    )
    assert published.returncode == 0, published.stderr
    version = (store / f"snapshot_date={NEXT.isoformat()}").resolve()
    (version / "summaries.parquet").write_bytes(b"not parquet")
    with serving(store, "--no-auth") as server:
        assert served_date(server.url) == LATEST.isoformat()
        unpinned = run_cli("snapshots", "unpin", "--snapshots", str(store))
        assert unpinned.returncode == 0, unpinned.stderr
        wait_for(lambda: "cannot load the snapshot of 2026-11-27" in "".join(server.lines))
        for _ in range(5):
            response = httpx.get(server.url + summary_path("sc1"))
            assert response.status_code == 200
            assert response.headers["x-snapshot-date"] == LATEST.isoformat()
        metrics = httpx.get(server.url + "/metrics").text
        failed = re.search(r'snapshot_loads_total\{result="damaged"\} (\S+)', metrics)
        assert failed is not None and float(failed.group(1)) >= 1  # retried, with a delay
        assert "scenario_analytics_snapshot_problem 1.0" in metrics
        ready = httpx.get(server.url + "/readyz").json()
        assert ready["status"] == "ready" and ready["snapshot_date"] == LATEST.isoformat()
        assert (
            ready["problem"] == "the snapshot of 2026-11-27 has a damaged file: summaries.parquet"
        )
