"""Exports, the store, the ledger and the store commands on S3-compatible object storage,
against real servers the tests start on 127.0.0.1 (moto's, and SeaweedFS for the
end-to-end runs): a snapshot on S3 is the local-disk snapshot byte for byte, a new
container reads the ledger from the bucket, two runs never both publish, faults are
retried or reported with the object named."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
from conftest import FIXTURE_SKIPS, S3Place, session, write_exports
from helpers_ops import base_exports, cli, snapshot_bytes
from helpers_s3 import FaultProxy, read_whole
from helpers_serve import serving

from scenario_analytics.errors import ExitCode
from scenario_analytics.locations import Location
from scenario_analytics.pipeline.run import RunOptions, run
from scenario_analytics.publish.lease import LEASE_KEY
from scenario_analytics.publish.store import Store

AS_OF = "2026-11-26"


def _run_args(exports: str | Path, store: str | Path, *extra: str) -> list[str]:
    return ["run", "--exports", str(exports), "--snapshots", str(store), "--as-of", AS_OF,
            "--max-reject-ratio", "0.5", *extra]  # fmt: skip


def test_a_run_on_s3_publishes_the_local_snapshot_byte_for_byte(
    any_s3: S3Place, tmp_path: Path
) -> None:
    exports = base_exports(tmp_path / "exports")
    local = cli(*_run_args(exports, tmp_path / "store"))
    assert local.exit_code == 0, local.stderr
    remote_exports = any_s3.upload_folder(exports)
    remote = cli(*_run_args(remote_exports, any_s3.uri))
    assert remote.exit_code == 0, remote.stderr
    assert remote.stdout.strip() == f"{any_s3.uri}/snapshot_date={AS_OF}"
    assert snapshot_bytes(remote.stdout.strip()) == snapshot_bytes(local.stdout.strip())
    # The contract's paths are there for warehouses, and latest.json names the date.
    keys = any_s3.keys()
    assert json.loads(keys["latest.json"]) == {
        "snapshot_date": AS_OF,
        "path": f"snapshot_date={AS_OF}",
    }
    for table in ("summaries", "participants", "users", "rejects", "scenarios"):
        assert f"snapshot_date={AS_OF}/{table}.parquet" in keys
    # The query reads it from the bucket, as from the folder.
    for store in (tmp_path / "store", any_s3.uri):
        answer = cli("query", "--snapshots", str(store), "sc1", "--start-date", "2026-11-01")
        assert answer.exit_code == 0, answer.stderr
    assert (
        cli("query", "--snapshots", any_s3.uri, "sc1").stdout
        == cli("query", "--snapshots", str(tmp_path / "store"), "sc1").stdout
    )


def test_a_new_container_reads_the_ledger_from_the_bucket(s3: S3Place, tmp_path: Path) -> None:
    """Each night in a fresh HOME and working folder with nothing local: the second night
    downloads only the new export and parses only it."""
    exports = base_exports(tmp_path / "exports")
    uri = s3.upload_folder(exports)
    proxy = FaultProxy(s3.server.endpoint).start()
    try:
        env = {**os.environ, **s3.server.env(proxy.endpoint)}
        env["SCENARIO_ANALYTICS_SKIP_CHECK"] = " ".join(sorted(FIXTURE_SKIPS))

        def night(n: int) -> subprocess.CompletedProcess[str]:
            home = tmp_path / f"container-{n}"
            (home / "work").mkdir(parents=True)
            return subprocess.run(
                [sys.executable, "-m", "scenario_analytics", *_run_args(uri, s3.uri)],
                cwd=home / "work",
                env={**env, "HOME": str(home), "TMPDIR": str(home / "work")},
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )

        first = night(1)
        assert first.returncode == 0, first.stderr
        write_exports(tmp_path / "new", {"sessions/d.jsonl": [session("n1", score=70)]})
        s3.upload_folder(tmp_path / "new")
        proxy.seen.clear()
        second = night(2)
        assert second.returncode == 0, second.stderr
        assert "parsing 1 of 8 export files (7 unchanged, from the ledger)" in second.stderr
        downloaded = {p for m, p, _ in proxy.seen if m == "GET" and "/exports/" in p}
        assert downloaded == {f"/{s3.bucket}/exports/sessions/d.jsonl"}
        assert not list((tmp_path / "container-2" / "work").iterdir())  # nothing left behind
    finally:
        proxy.stop()


def test_two_runs_at_once_exactly_one_publishes(s3: S3Place, tmp_path: Path) -> None:
    uri = s3.upload_folder(base_exports(tmp_path / "exports"))
    env = {**os.environ, "SCENARIO_ANALYTICS_SKIP_CHECK": " ".join(sorted(FIXTURE_SKIPS))}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "scenario_analytics", *_run_args(uri, s3.uri)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, ExitCode.LOCKED], results
    loser = next(err for code, err in results if code == ExitCode.LOCKED)
    assert "is in use by pid" in loser or "taken by another run" in loser
    keys = s3.keys()
    assert [k for k in keys if k.startswith(".commits/")] == [f".commits/{AS_OF}.json"]


def test_a_commit_that_lost_the_race_exits_5_and_publishes_nothing(
    s3: S3Place, tmp_path: Path
) -> None:
    """Two writers that both hold the store (a lease taken over from a run that was only
    paused): both build the same date; the second commit finds the record changed."""
    exports = base_exports(tmp_path / "exports")
    options = RunOptions(
        exports=Location.parse(s3.upload_folder(exports)),
        snapshots=Location.parse(s3.uri),
        as_of=date.fromisoformat(AS_OF),
        max_reject_ratio=0.5,
        skip_checks=FIXTURE_SKIPS,
    )
    run(options)
    slow, fast = Store(s3.uri), Store(s3.uri)
    day = options.as_of
    with slow.lock("slow"):
        build = slow.begin(day)
        version = slow.version(day)
        assert version is not None
        # The slow writer's files: the published version's, as a rebuild would write them.
        for rel in version.files():
            target = build.folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(slow.fetch(version, rel).read_bytes())
        slow.storage.delete([LEASE_KEY])  # it lost its lease (to `unlock --force`)...
        with fast.lock("fast"):  # ...and another run published the date meanwhile
            fast_build = fast.begin(day)
            for rel in version.files():
                target = fast_build.folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(fast.fetch(version, rel).read_bytes())
            fast.publish(fast_build, version.manifest)
        before = Store(s3.uri).record(day)
        assert before is not None and before[0].build == fast_build.name
        with pytest.raises(Exception) as caught:
            slow.publish(build, version.manifest)
        assert getattr(caught.value, "exit_code", None) == ExitCode.LOCKED
        assert "another run published" in str(caught.value)
    after = Store(s3.uri).record(day)
    assert after is not None and after[0].build == fast_build.name


def test_a_bucket_that_does_not_exist_is_exit_2_before_any_work(
    s3: S3Place, tmp_path: Path
) -> None:
    exports = base_exports(tmp_path / "exports")
    result = cli(*_run_args(exports, "s3://no-such-bucket-here/store"))
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert "the bucket no-such-bucket-here does not exist" in result.stderr
    assert "test-secret-key-do-not-log" not in result.stderr + result.stdout
    missing = cli(*_run_args("s3://no-such-bucket-here/exports", s3.uri))
    assert missing.exit_code != 0
    assert "no-such-bucket-here" in missing.stderr


def test_store_commands_on_s3(s3: S3Place, tmp_path: Path) -> None:
    uri = s3.upload_folder(base_exports(tmp_path / "exports"))
    for day in ("2026-11-24", "2026-11-25", "2026-11-26"):
        done = cli(*_run_args(uri, s3.uri)[:-4], "--as-of", day, "--max-reject-ratio", "0.5")
        assert done.exit_code == 0, done.stderr
    listed = cli("snapshots", "--snapshots", s3.uri, "--json")
    assert listed.exit_code == 0, listed.stderr
    dates = [s["snapshot_date"] for s in json.loads(listed.stdout)]
    assert dates == ["2026-11-24", "2026-11-25", "2026-11-26"]
    assert cli("snapshots", "pin", "2026-11-25", "--snapshots", s3.uri).exit_code == 0
    assert json.loads(s3.keys()["latest.json"])["pinned"] is True
    assert cli("snapshots", "unpin", "--snapshots", s3.uri).exit_code == 0
    assert cli("snapshots", "delete", "2026-11-24", "--snapshots", s3.uri).exit_code == 0
    verified = cli("snapshots", "verify", "--snapshots", s3.uri)
    assert verified.exit_code == 0, verified.stderr
    assert "is whole (2 snapshots" in verified.stderr
    usage = cli("snapshots", "usage", "--snapshots", s3.uri, "--json")
    assert json.loads(usage.stdout)["snapshots"]["count"] == 2
    diff = cli("diff", "--snapshots", s3.uri, "2026-11-25", "2026-11-26")
    assert diff.exit_code == 0, diff.stderr
    stale = cli("snapshots", "stale", "--exports", uri, "--snapshots", s3.uri)
    assert stale.exit_code == 0, stale.stderr
    backfill = cli("backfill", "--exports", uri, "--snapshots", s3.uri, "--from", "2026-11-24",
                   "--to", "2026-11-26", "--max-reject-ratio", "0.5")  # fmt: skip
    assert backfill.exit_code == 0, backfill.stderr
    assert [line.split("\t")[1] for line in backfill.stdout.splitlines()] == [
        "published",
        "skipped",
        "skipped",
    ]
    validated = cli("validate", "--exports", uri, "--snapshots", s3.uri, "--json",
                    "--max-reject-ratio", "0.5")  # fmt: skip
    assert validated.exit_code == 0, validated.stderr
    # A damaged object is found by verify, with the date to rebuild.
    client = s3.server.client()
    client.put_object(Bucket=s3.bucket, Key="store/snapshot_date=2026-11-26/users.parquet",
                      Body=b"not parquet")  # fmt: skip
    damaged = cli("snapshots", "verify", "--snapshots", s3.uri)
    assert damaged.exit_code == 1
    assert "users.parquet is damaged" in damaged.stderr


def test_a_lease_of_a_crashed_run_elsewhere_holds_until_it_expires(
    s3: S3Place, tmp_path: Path
) -> None:
    uri = s3.upload_folder(base_exports(tmp_path / "exports"))
    client = s3.server.client()

    def lease(expires: float) -> None:
        body = {"token": "x", "host": "another-machine", "pid": 1, "pid_start": None,
                "command": "run", "acquired": time.time() - 60, "expires": expires}  # fmt: skip
        client.put_object(Bucket=s3.bucket, Key=f"store/{LEASE_KEY}", Body=json.dumps(body))

    lease(time.time() + 300)
    held = cli(*_run_args(uri, s3.uri))
    assert held.exit_code == ExitCode.LOCKED
    assert "in use by pid 1 on another-machine (run)" in held.stderr
    shown = cli("snapshots", "unlock", "--snapshots", s3.uri)
    assert shown.exit_code == 0 and "held by pid 1 on another-machine" in shown.stderr
    assert f"store/{LEASE_KEY}" in {f"store/{k}" for k in s3.keys()}
    assert cli("snapshots", "unlock", "--force", "--snapshots", s3.uri).exit_code == 0
    assert LEASE_KEY not in s3.keys()
    lease(time.time() - 1)  # expired: the next run takes it over
    taken = cli(*_run_args(uri, s3.uri))
    assert taken.exit_code == 0, taken.stderr
    assert LEASE_KEY not in s3.keys()  # released at the end
    assert cli("snapshots", "unlock", "--snapshots", s3.uri).exit_code == ExitCode.NOT_FOUND


@pytest.mark.parametrize(
    ("fault", "retried"),
    [("slowdown", True), ("drop", True), ("denied", False), ("quota", False)],
)
def test_faults_are_retried_or_name_the_object(
    s3: S3Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str, retried: bool
) -> None:
    uri = s3.upload_folder(base_exports(tmp_path / "exports"))
    proxy = FaultProxy(s3.server.endpoint).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.endpoint)
        times = 2 if retried else 100
        proxy.add("PUT", r"/store/\.staging/[0-9a-f]+/summaries\.parquet", fault, times)
        result = cli(*_run_args(uri, s3.uri))
        hits = [s for m, p, s in proxy.seen if "summaries.parquet" in p and "staging" in p]
    finally:
        proxy.stop()
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.server.endpoint)
    if retried:
        assert result.exit_code == 0, result.stderr
        assert len(hits) >= 3  # two faults, then the upload that went through
        return
    assert result.exit_code == ExitCode.FAILURE, result.stderr
    assert "summaries.parquet" in result.stderr
    assert ("permission denied" if fault == "denied" else "full or over its quota") in (
        result.stderr
    )
    assert "nothing" in result.stderr.lower()
    assert Store(s3.uri).dates() == []  # nothing published
    assert "latest.json" not in s3.keys()


def test_serve_replicas_follow_the_bucket_and_outlive_an_outage(
    s3: S3Place, tmp_path: Path
) -> None:
    """Two `serve` processes on one S3 store: both answer from latest.json's snapshot,
    both switch to a new night within a poll interval, and while the bucket cannot be
    reached they go on serving what they loaded."""
    uri = s3.upload_folder(base_exports(tmp_path / "exports"))
    assert cli(*_run_args(uri, s3.uri)[:-4], "--as-of", "2026-11-25",
               "--max-reject-ratio", "0.5").exit_code == 0  # fmt: skip
    proxy = FaultProxy(s3.server.endpoint).start()
    env = s3.server.env(proxy.endpoint)
    path = "/rest/v1/scenarios/sc1/analytics/summary"
    try:
        with (
            serving(s3.uri, "--no-auth", env=env) as one,
            serving(s3.uri, "--no-auth", env=env) as two,
        ):
            for server in (one, two):
                first = httpx.get(server.url + path, timeout=10)
                assert first.status_code == 200, "".join(server.lines)
                assert first.headers["x-snapshot-date"] == "2026-11-25"
            assert cli(*_run_args(uri, s3.uri)).exit_code == 0  # the next night
            deadline = time.monotonic() + 10
            dates = set()
            while time.monotonic() < deadline:
                dates = {httpx.get(s.url + path, timeout=10).headers["x-snapshot-date"]
                         for s in (one, two)}  # fmt: skip
                if dates == {AS_OF}:
                    break
                time.sleep(0.1)
            assert dates == {AS_OF}
            proxy.add("*", ".*", "drop", times=10**6)  # the bucket is unreachable now
            for _ in range(3):
                time.sleep(0.5)
                for server in (one, two):
                    during = httpx.get(server.url + path, timeout=10)
                    assert during.status_code == 200
                    assert during.headers["x-snapshot-date"] == AS_OF
                    computed = httpx.get(server.url + path + "?start_date=2026-11-01", timeout=10)
                    assert computed.status_code == 200
            logged = "".join(one.lines)
            assert "cannot read the store (serving what is loaded)" in logged
            assert "test-secret-key-do-not-log" not in logged
    finally:
        proxy.stop()


def test_a_reader_polling_during_killed_runs_never_sees_a_partial_snapshot(
    s3: S3Place, tmp_path: Path
) -> None:
    """Runs of new dates and rebuilds, each killed (SIGKILL) at a random moment, while a
    reader polls: it always reads a whole snapshot; the next run cleans up and
    publishes. (bench/s3_kills.py does the same 100 times, over five dates.)"""
    uri = s3.upload_folder(base_exports(tmp_path / "exports"))
    assert cli(*_run_args(uri, s3.uri)[:-4], "--as-of", "2026-11-20",
               "--max-reject-ratio", "0.5").exit_code == 0  # fmt: skip
    env = {**os.environ, "SCENARIO_ANALYTICS_SKIP_CHECK": " ".join(sorted(FIXTURE_SKIPS))}
    seen: list[str] = []
    problems: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            problem = read_whole(s3.uri)
            seen.append("ok" if problem is None else "bad")
            if problem is not None:
                problems.append(problem)

    reader = threading.Thread(target=poll)
    reader.start()
    rng = random.Random(7)
    try:
        for n, day in enumerate(["2026-11-21", "2026-11-20"]):  # a new date, a rebuild
            args = [sys.executable, "-m", "scenario_analytics",
                    *_run_args(uri, s3.uri)[:-4], "--as-of", day,
                    "--max-reject-ratio", "0.5"]  # fmt: skip
            proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(rng.uniform(1.0, 3.5))
            proc.kill()
            proc.wait()
            again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
            assert again.returncode == 0, (n, again.stderr[-2000:])
    finally:
        stop.set()
        reader.join()
    assert problems == []
    assert seen.count("ok") >= 5
    assert Store(s3.uri).dates() == [date(2026, 11, d) for d in (20, 21)]
    verified = cli("snapshots", "verify", "--snapshots", s3.uri)
    assert verified.exit_code == 0, verified.stderr


def test_the_golden_bodies_from_a_store_on_s3(s3: S3Place) -> None:
    """The API reference example's and the summary example's golden bodies, from exports
    and a store in the bucket: the published summary.json and `query`'s answers."""
    from test_golden import (
        EXAMPLE_AS_OF,
        EXAMPLE_CASES,
        EXAMPLE_EXPORTS,
        REFERENCE_EXAMPLE_DIR,
        REFERENCE_SCENARIO,
    )

    golden = Path(__file__).parent / "data" / "golden"
    reference = s3.upload_folder(REFERENCE_EXAMPLE_DIR / "exports", "reference")
    ran = cli("run", "--exports", reference, "--snapshots", s3.uri, "--as-of", "2026-03-31")
    assert ran.exit_code == 0, ran.stderr
    key = f"snapshot_date=2026-03-31/api/scenarios/{REFERENCE_SCENARIO}/analytics/summary.json"
    body = (golden / "reference-example.summary.json").read_bytes()
    assert s3.keys()[key] == body
    asked = cli("query", "--snapshots", s3.uri, "procurement-discovery")
    assert asked.stdout.encode() == body + b"\n" or asked.stdout.encode() == body
    examples = s3.upload_folder(EXAMPLE_EXPORTS, "example")
    store = f"s3://{s3.bucket}/example-store"
    ran = cli("run", "--exports", examples, "--snapshots", store, "--as-of",
              EXAMPLE_AS_OF.isoformat())  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    for name in ("unfiltered", "group-g1", "dates-nov-15-to-25"):
        scenario, params, _expected = EXAMPLE_CASES[name]
        args = [f"--{k.replace('_', '-')}={v}" for k, v in params.items() if v is not True]
        args += [f"--{k.replace('_', '-')}" for k, v in params.items() if v is True]
        answer = cli("query", "--snapshots", store, scenario, *args)
        assert answer.exit_code == 0, answer.stderr
        expected = (golden / f"summary-example.{name}.json").read_text().strip()
        assert answer.stdout.strip() == expected, name


def test_a_failed_first_run_leaves_nothing_in_the_bucket(s3: S3Place, tmp_path: Path) -> None:
    """As on local disk (tests/test_refusals.py): the prefix a failed first run wrote its
    ledger parts and lease under is empty again."""
    exports = base_exports(tmp_path / "exports")
    (exports / "sessions" / "broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00truncated")
    result = cli(
        *_run_args(exports, s3.uri, *[a for c in FIXTURE_SKIPS for a in ("--skip-check", c)])
    )
    assert result.exit_code == ExitCode.FAILURE, result.stderr
    assert "removed s3://" in result.stderr
    assert s3.keys() == {}  # nothing under the store's prefix
