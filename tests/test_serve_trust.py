"""`serve` and `query` trust a snapshot's file only when it has the sha256 its manifest
records (issue #24): a damaged file never answers, and a damaged or missing latest.json
never takes down a server that has a snapshot loaded. Against a real `serve`."""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from helpers_serve import LATEST, OLDER, build_store, run_cli, serving, summary_path

from scenario_analytics.publish.store import Store

DAMAGED = "sessions/created_date=2026-11-26/part-0.parquet"  # only LATEST has this day


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def damage(store: Path, rel: str) -> bytes:
    """Overwrite bytes inside one file of LATEST (2 kB, or a quarter of a small file),
    keeping its size (as `dd conv=notrunc` does); returns the bytes it had."""
    version = Store(store).version(LATEST)
    assert version is not None
    path = store / version.key(rel)
    original = path.read_bytes()
    with path.open("r+b") as handle:
        handle.seek(len(original) // 3)
        handle.write((bytes(range(256)) * 8)[: min(2048, len(original) // 4)])
    assert path.stat().st_size == len(original)
    return original


def metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics").text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def test_a_damaged_session_file_never_answers(tmp_path: Path) -> None:
    store = build_store(tmp_path)  # OLDER and LATEST published
    damage(store, DAMAGED)
    computed = {"start_date": "2026-11-20T00:00:00Z"}
    with serving(store, "--no-auth") as server:
        # The newest snapshot does not load: nothing answers from it, not even its
        # precomputed bodies (whole files, but of a snapshot that is not); 503, not 404.
        for params in ({}, computed):
            response = httpx.get(server.url + summary_path("sc1"), params=params)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "snapshot_unavailable"
            assert response.headers["retry-after"] == "1"
            assert str(store) not in response.text
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"] == f"the snapshot of 2026-11-26 has a damaged file: {DAMAGED}"
        assert metric(server.url, 'scenario_analytics_snapshot_loads_total{result="damaged"}') >= 1
        assert metric(server.url, "scenario_analytics_snapshot_problem") == 1
        errors = [r for r in server.records() if r.get("level") == "error"]
        assert any(DAMAGED in r.get("message", "") for r in errors)
        # A whole older snapshot still answers by as_of.
        older = httpx.get(server.url + summary_path("sc1"), params={"as_of": OLDER.isoformat()})
        assert older.status_code == 200 and older.headers["x-snapshot-date"] == "2026-11-25"
    # `query` refuses to compute from it (exit 1, naming the file); the summaries file
    # is whole, so a precomputed answer is still given.
    result = run_cli("query", "--snapshots", str(store), "sc1", "--start-date", "2026-11-20")
    assert result.returncode == 1 and result.stdout == ""
    assert DAMAGED in result.stderr and "is damaged" in result.stderr
    assert run_cli("query", "--snapshots", str(store), "sc1").returncode == 0


def test_a_missing_or_damaged_latest_json_never_takes_the_api_down(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    latest = store / "latest.json"
    original = latest.read_bytes()
    url_of: Callable[[str], str] = lambda server_url: server_url + summary_path("sc1")  # noqa: E731
    with serving(store, "--no-auth") as server:
        expected = httpx.get(url_of(server.url)).text
        for broken in (None, b"{not json", b'{"snapshot_date": "2026-12-31"}'):
            if broken is None:
                latest.unlink()
            else:
                latest.write_bytes(broken)
            wait_for(lambda: "problem" in httpx.get(server.url + "/readyz").json())
            for _ in range(6):  # over a poll (0.25 s): still the loaded snapshot, whole
                response = httpx.get(url_of(server.url))
                assert response.status_code == 200 and response.text == expected
                time.sleep(0.05)
            ready = httpx.get(server.url + "/readyz")
            assert ready.status_code == 200 and ready.json()["snapshot_date"] == "2026-11-26"
            assert "latest.json" in ready.json()["problem"]
            assert metric(server.url, "scenario_analytics_snapshot_problem") == 1
        latest.write_bytes(original)
        wait_for(lambda: "problem" not in httpx.get(server.url + "/readyz").json())
        assert metric(server.url, "scenario_analytics_snapshot_problem") == 0
        # Unpublishing is not damage: deleting every snapshot stops serving (404).
        for day in ("2026-11-25", "2026-11-26"):
            deleted = run_cli("snapshots", "delete", day, "--force", "--snapshots", str(store))
            assert deleted.returncode == 0, deleted.stderr
        wait_for(lambda: httpx.get(url_of(server.url)).status_code == 404)
        assert httpx.get(url_of(server.url)).json()["error"]["code"] == "snapshot_not_found"


def test_a_server_started_without_latest_json_says_why(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    (store / "latest.json").unlink()
    with serving(store, "--no-auth") as server:
        wait_for(lambda: httpx.get(server.url + "/readyz").json().get("reason", "") != "")
        response = httpx.get(server.url + summary_path("sc1"))
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "snapshot_unavailable"
        reason = httpx.get(server.url + "/readyz").json()["reason"]
        assert "latest.json" in reason and "snapshots are published" in reason


def test_store_files_are_not_readable_by_others(tmp_path: Path) -> None:
    """Tables hold emails and names: every file a run writes into the store is 0640
    under the usual umask 022 (group-readable for the job's readers), 0600 under 077."""
    for umask, wanted in ((0o022, 0o640), (0o077, 0o600)):
        root = tmp_path / f"umask-{umask:03o}"
        root.mkdir()
        previous = os.umask(umask)  # inherited by the runs build_store starts
        try:
            store = build_store(root, days=(LATEST,))
        finally:
            os.umask(previous)
        modes = {
            p.relative_to(store).as_posix(): stat.S_IMODE(p.stat().st_mode)
            for p in store.rglob("*")
            if p.is_file()
        }
        for name in ("users.parquet", "participants.parquet", "rejects.parquet"):
            assert modes[f"snapshot_date=2026-11-26/{name}"] == wanted, name
        assert any(k.startswith(".objects/sessions/") for k in modes)
        assert {k: m for k, m in modes.items() if m != wanted} == {}
