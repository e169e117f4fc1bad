"""`snapshots pin | unpin | delete | verify | usage`: managing a store from the command line.

One store of four days (2026-11-20 … 2026-11-23) is built once; each test works on a copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import Result
from helpers_ops import base_exports, cli, snapshot_files
from test_store import publish_version

from scenario_analytics.errors import ExitCode
from scenario_analytics.publish.records import Record, Retired
from scenario_analytics.publish.store import Store

DAYS = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]
GATES = ["--max-reject-ratio", "0.5", "--skip-check", "stale_exports"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("store-commands")
    exports = base_exports(root / "exports")
    store = root / "store"
    result = cli(
        "backfill", "--exports", str(exports), "--snapshots", str(store),
        "--from", DAYS[0], "--to", DAYS[-1], *GATES,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    yield exports, store


@pytest.fixture
def store(built: tuple[Path, Path], tmp_path: Path) -> Path:
    """A copy of the built store, for one test to change."""
    copy = tmp_path / "store"
    shutil.copytree(built[1], copy, symlinks=True)
    return copy


def snapshots(store: Path, *args: str) -> Result:
    return cli("snapshots", *args, "--snapshots", str(store))


def latest_json(store: Path) -> dict[str, object]:
    data = json.loads((store / "latest.json").read_text())
    assert isinstance(data, dict)
    return data


def folder(store: Path, day: str) -> Path:
    """A published date's folder: its files, but for its session partitions (.objects/)."""
    return store / f"snapshot_date={day}"


def retired(store: Path) -> list[Retired]:
    found = [Retired.from_bytes(p.read_bytes()) for p in sorted(store.glob(".retired/*.json"))]
    return [r for r in found if r is not None]


def problems(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if ": problem: " in line]


def error_line(result: Result) -> str:
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("scenario-analytics: error:")]
    return line


# -- pin and unpin ------------------------------------------------------------------------


def test_pin_holds_latest_through_later_runs_until_unpin(
    built: tuple[Path, Path], store: Path
) -> None:
    exports = built[0]
    result = snapshots(store, "pin", "2026-11-21")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{store / 'snapshot_date=2026-11-21'}\n"
    assert "latest.json pinned to 2026-11-21 (it named 2026-11-23)" in result.stderr
    assert latest_json(store) == {
        "snapshot_date": "2026-11-21",
        "path": "snapshot_date=2026-11-21",
        "pinned": True,
    }

    # Readers get the pinned snapshot: the rollback.
    def query(*args: str) -> str:
        return cli("query", "--snapshots", str(store), *args, "sc1").stdout

    assert query() == query("--as-of", DAYS[1]) != query("--as-of", DAYS[3])
    listing = snapshots(store).stdout.splitlines()
    assert [line for line in listing if "latest" in line][0].startswith("2026-11-21")
    assert listing[2].endswith("  latest (pinned)")
    assert json.loads(snapshots(store, "--json").stdout)[1]["pinned"] is True

    # A later run publishes its date, leaves latest.json alone and says so.
    before = (store / "latest.json").read_bytes()
    run = cli(
        "run", "--exports", str(exports), "--snapshots", str(store), "--as-of", "2026-11-24",
        "--log-format", "plain", *GATES,
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert run.stdout == f"{store / 'snapshot_date=2026-11-24'}\n"
    assert (
        "scenario-analytics: warning: latest.json is pinned to 2026-11-21; not moved to "
        "2026-11-24 — scenario-analytics snapshots unpin moves it"
    ) in run.stderr.splitlines()
    assert (store / "latest.json").read_bytes() == before
    assert date(2026, 11, 24) in Store(store).dates()

    # So does a backfill, as an event of its own in the JSON log.
    backfill = cli(
        "backfill", "--exports", str(exports), "--snapshots", str(store),
        "--from", "2026-11-23", "--to", "2026-11-23", "--force", "--log-format", "json", *GATES,
    )  # fmt: skip
    assert backfill.exit_code == 0, backfill.stderr
    events = [json.loads(line) for line in backfill.stderr.splitlines()]
    (held,) = [e for e in events if e.get("pinned")]
    assert (held["stage"], held["event"], held["snapshot_date"]) == (
        "publish",
        "warning",
        "2026-11-23",
    )
    assert (store / "latest.json").read_bytes() == before

    result = snapshots(store, "unpin")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{store / 'snapshot_date=2026-11-24'}\n"
    assert "latest.json unpinned from 2026-11-21; it names 2026-11-24" in result.stderr
    assert latest_json(store) == {
        "snapshot_date": "2026-11-24",
        "path": "snapshot_date=2026-11-24",
    }


def test_pin_a_date_not_published(store: Path) -> None:
    before = (store / "latest.json").read_bytes()
    result = snapshots(store, "pin", "2026-11-01")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stdout == ""
    assert "error: no published snapshot for 2026-11-01 in" in error_line(result)
    result = snapshots(store, "pin", "2026-13-01")
    assert result.exit_code == ExitCode.USAGE
    assert "is not a date in YYYY-MM-DD form" in result.stderr
    assert (store / "latest.json").read_bytes() == before


def test_unpin_when_not_pinned_names_the_newest(store: Path) -> None:
    (store / "latest.json").write_text('{"snapshot_date": "2026-11-21"}\n')
    result = snapshots(store, "unpin")
    assert result.exit_code == 0, result.stderr
    assert "latest.json was not pinned; it names 2026-11-23" in result.stderr
    assert latest_json(store)["snapshot_date"] == "2026-11-23"


def test_a_run_holding_the_store_makes_pin_exit_5(store: Path) -> None:
    with Store(store).lock():
        result = snapshots(store, "pin", "2026-11-21")
    assert result.exit_code == ExitCode.LOCKED
    assert "is in use by" in error_line(result)
    assert "pinned" not in latest_json(store)


def test_the_store_keeps_a_pin_until_its_date_is_gone(store: Path) -> None:
    """The library: publish and clean_up leave a pin alone while its date is published."""
    lib = Store(store)
    lib.pin(date(2026, 11, 21))
    assert lib.pinned() == date(2026, 11, 21)
    assert lib.pin_holds(date(2026, 11, 23)) == date(2026, 11, 21)
    assert lib.pin_holds(date(2026, 11, 20)) is None  # would not have moved it anyway
    with lib.lock():
        assert lib.clean_up() == []
    assert lib.latest() == date(2026, 11, 21)
    pinned = (store / "latest.json").read_bytes()
    for day in (date(2026, 11, 21), date(2026, 11, 25)):  # the pinned date rebuilt, a new one
        publish_version(lib, day, f"rebuilt {day}")
        assert (store / "latest.json").read_bytes() == pinned
    assert lib.pin_holds(date(2026, 11, 25)) == date(2026, 11, 21)
    (store / ".commits" / "2026-11-21.json").unlink()  # unpublished by hand
    assert lib.pinned() is None
    with lib.lock():
        lib.clean_up()
    assert latest_json(store) == {"snapshot_date": "2026-11-25", "path": "snapshot_date=2026-11-25"}


# -- delete -------------------------------------------------------------------------------


def test_delete_an_older_date(store: Path) -> None:
    held = Store(store).version(date(2026, 11, 20))  # a reader read it before
    assert held is not None
    before = (store / "latest.json").read_bytes()
    result = snapshots(store, "delete", "2026-11-20")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "deleted snapshot 2026-11-20" in result.stderr
    # Unpublished at once: its commit record is gone.
    assert not (store / ".commits" / "2026-11-20.json").exists()
    assert date(2026, 11, 20) not in Store(store).dates()
    assert Store(store).version(date(2026, 11, 20)) is None
    assert (store / "latest.json").read_bytes() == before
    # The reader keeps whole files until the grace period is over: a retired entry lists
    # the version's keys.
    lib = Store(store)
    for rel in held.files():
        assert lib.fetch(held, rel, verify=True).is_file(), rel
    (entry,) = [r for r in retired(store) if r.reason == "deleted"]
    assert entry.snapshot_date == date(2026, 11, 20)
    assert set(entry.keys) | set(entry.objects) == set(held.keys().values())
    assert [s["snapshot_date"] for s in json.loads(snapshots(store, "--json").stdout)] == DAYS[1:]
    assert cli("query", "--snapshots", str(store), "--as-of", DAYS[1], "sc1").exit_code == 0
    assert snapshots(store, "verify").exit_code == 0
    with lib.lock():
        removed = lib.clean_up(grace_seconds=0)
    # Its folder goes (and the other builds' uploads, kept after their moves in place).
    assert "snapshot_date=2026-11-20" in removed
    assert all(r.startswith(".staging/") for r in removed if r != "snapshot_date=2026-11-20")
    assert not (store / "snapshot_date=2026-11-20").exists()
    assert snapshots(store, "verify").exit_code == 0  # what the others share stays
    again = snapshots(store, "delete", "2026-11-20")
    assert again.exit_code == ExitCode.NOT_FOUND
    assert "no published snapshot for 2026-11-20" in error_line(again)


def test_delete_refuses_latest_without_force(store: Path) -> None:
    before = sorted(os.listdir(store)), (store / "latest.json").read_bytes()
    result = snapshots(store, "delete", "2026-11-23")
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    line = error_line(result)
    assert "2026-11-23 is the snapshot latest.json names" in line and "--force" in line
    assert (sorted(os.listdir(store)), (store / "latest.json").read_bytes()) == before

    result = snapshots(store, "delete", "2026-11-23", "--force")
    assert result.exit_code == 0, result.stderr
    assert "latest.json now names 2026-11-22, the newest remaining date" in result.stderr
    assert latest_json(store) == {"snapshot_date": "2026-11-22", "path": "snapshot_date=2026-11-22"}
    assert not (store / ".commits" / "2026-11-23.json").exists()
    assert Store(store).dates() == [date.fromisoformat(d) for d in DAYS[:3]]
    for day in DAYS[:3]:
        assert cli("query", "--snapshots", str(store), "--as-of", day, "sc1").exit_code == 0
    assert cli("query", "--snapshots", str(store), "sc1").exit_code == 0
    assert snapshots(store, "verify").exit_code == 0


def test_delete_a_pinned_latest_with_force_unpins(store: Path) -> None:
    assert snapshots(store, "pin", "2026-11-21").exit_code == 0
    refused = snapshots(store, "delete", "2026-11-21")
    assert refused.exit_code == ExitCode.USAGE
    assert "latest.json names (pinned)" in error_line(refused)
    assert snapshots(store, "delete", "2026-11-21", "--force").exit_code == 0
    assert latest_json(store) == {"snapshot_date": "2026-11-23", "path": "snapshot_date=2026-11-23"}


# -- verify and repair --------------------------------------------------------------------


def test_verify_a_whole_store(store: Path) -> None:
    result = snapshots(store, "verify")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    whole = r"the store \S+ is whole \(4 snapshots, (\d+) files re-hashed\)"
    match = re.search(whole, result.stderr)
    assert match is not None, result.stderr
    manifests = [json.loads((folder(store, d) / "manifest.json").read_text()) for d in DAYS]
    outputs = [o for m in manifests for o in m["outputs"]]
    assert all(re.fullmatch(r"[0-9a-f]{64}", o["sha256"]) for o in outputs)
    files = sum(len(o.get("files", {None: 0})) for o in outputs)
    assert int(match.group(1)) == files > 4 * 8


def test_verify_names_a_damaged_file_and_repair_keeps_it(
    built: tuple[Path, Path], store: Path
) -> None:
    # Each day's summaries are its own (a session partition may be shared: test_sharing.py).
    parquet = folder(store, "2026-11-21") / "summaries.parquet"
    data = bytearray(parquet.read_bytes())
    data[100:104] = b"\x00\x01\x02\x03"  # a few bytes, same size
    parquet.write_bytes(bytes(data))
    (body,) = folder(store, "2026-11-22").glob("api/scenarios/*/analytics/summary.json")
    body.write_text(body.read_text().replace('"participant_count":', '"participant_count": '))

    result = snapshots(store, "verify")
    assert result.exit_code == ExitCode.FAILURE
    assert result.stdout == ""
    assert problems(result) == [
        "scenario-analytics: problem: 2026-11-21: summaries.parquet is damaged: its sha256 is "
        "not the manifest's — rebuild it with `scenario-analytics backfill --from 2026-11-21 "
        f"--to 2026-11-21 --force --exports EXPORTS --snapshots {store}`",
        f"scenario-analytics: problem: 2026-11-22: {body.relative_to(folder(store, DAYS[2]))} "
        "is damaged: its sha256 is not the manifest's — rebuild it with `scenario-analytics "
        "backfill --from 2026-11-22 --to 2026-11-22 --force --exports EXPORTS --snapshots "
        f"{store}`",
    ]
    assert error_line(result).startswith("scenario-analytics: error: 2 problems in the store")
    assert "rebuild 2026-11-21, 2026-11-22 with" in error_line(result)

    # --repair cannot fix damaged files, and deletes nothing.
    repaired = snapshots(store, "verify", "--repair")
    assert repaired.exit_code == ExitCode.FAILURE
    assert len(problems(repaired)) == 2
    assert [s.isoformat() for s in Store(store).dates()] == DAYS

    # What the message says to do makes the store whole again.
    for day in ("2026-11-21", "2026-11-22"):
        rebuilt = cli(
            "backfill", "--exports", str(built[0]), "--snapshots", str(store),
            "--from", day, "--to", day, "--force", *GATES,
        )  # fmt: skip
        assert rebuilt.exit_code == 0, rebuilt.stderr
    assert snapshots(store, "verify").exit_code == 0
    # The rebuilds are read from .staging while the versions they replaced have readers;
    # once those are past their grace period, their files move into the folders, where
    # the damaged files are replaced too (their manifests' sha256 did not change).
    lib = Store(store)
    with lib.lock():
        moved = lib.clean_up(grace_seconds=0)
    for day in ("2026-11-21", "2026-11-22"):
        assert f"snapshot_date={day}: moved its files in place" in moved
    assert hashlib.sha256(parquet.read_bytes()).hexdigest() == _listed_sha256(store, parquet)
    assert hashlib.sha256(body.read_bytes()).hexdigest() == _listed_sha256(store, body)
    assert snapshots(store, "verify").exit_code == 0


def _listed_sha256(store: Path, path: Path) -> str:
    """The sha256 a published snapshot's manifest lists for one file of its folder."""
    day, rel = path.relative_to(store).as_posix().split("/", 1)
    version = Store(store).version(date.fromisoformat(day.split("=")[1]))
    assert version is not None and version.record.in_place
    sha256 = version.files()[rel]
    assert sha256 is not None
    return sha256


def test_a_dangling_latest_json_and_repair(store: Path) -> None:
    (store / "latest.json").write_text(
        '{"snapshot_date": "2026-11-30", "path": "snapshot_date=2026-11-30"}\n'
    )
    result = snapshots(store, "verify")
    assert result.exit_code == ExitCode.FAILURE
    assert problems(result) == [
        "scenario-analytics: problem: latest.json names 2026-11-30, which has no published "
        f"snapshot — `scenario-analytics snapshots verify --repair --snapshots {store}` fixes it"
    ]
    assert f"verify --repair --snapshots {store}` fixes 1 of them" in error_line(result)

    repaired = snapshots(store, "verify", "--repair")
    assert repaired.exit_code == 0, repaired.stderr
    assert (
        "scenario-analytics: repaired: latest.json now names 2026-11-23, the newest published date"
        in repaired.stderr.splitlines()
    )
    assert latest_json(store) == {"snapshot_date": "2026-11-23", "path": "snapshot_date=2026-11-23"}
    assert snapshots(store, "verify").exit_code == 0


def test_a_missing_latest_json(store: Path) -> None:
    (store / "latest.json").unlink()
    result = snapshots(store, "verify")
    assert result.exit_code == ExitCode.FAILURE
    assert "latest.json is missing, while 2026-11-23 is published" in problems(result)[0]
    assert snapshots(store, "verify", "--repair").exit_code == 0
    assert latest_json(store)["snapshot_date"] == "2026-11-23"


def test_a_removed_folder_and_a_removed_commit_record(
    built: tuple[Path, Path], store: Path
) -> None:
    """A published date's folder removed by hand (its record names files that are gone),
    and a date's commit record removed by hand (its folder is left, published no more)."""
    newest = Store(store).version(date(2026, 11, 23))
    assert newest is not None
    own = [  # 2026-11-23's own partition: no other snapshot has its day
        key
        for rel, key in newest.keys().items()
        if rel.startswith("sessions/created_date=2026-11-23/")
    ]
    assert len(own) == 1 and own[0].startswith(".objects/")
    shutil.rmtree(folder(store, "2026-11-21"))
    (store / ".commits" / "2026-11-23.json").unlink()
    result = snapshots(store, "verify")
    assert result.exit_code == ExitCode.FAILURE
    found = problems(result)
    assert len(found) == 4, found
    assert found[0] == (
        "scenario-analytics: problem: 2026-11-21: manifest.json is missing, unreadable or not "
        "the one its commit record names — rebuild it with `scenario-analytics backfill "
        f"--from 2026-11-21 --to 2026-11-21 --force --exports EXPORTS --snapshots {store}`"
    )
    assert "latest.json names 2026-11-23, which has no published snapshot" in found[1]
    assert f"{own[0]} is left over from a killed run" in found[2]
    assert "snapshot_date=2026-11-23 is left over from a killed run" in found[3]

    # --repair: latest.json names the newest readable date, the unpublished folder goes; the
    # damaged date stays published (repair never deletes a snapshot) for a rebuild.
    repaired = snapshots(store, "verify", "--repair")
    assert repaired.exit_code == ExitCode.FAILURE
    lines = repaired.stderr.splitlines()
    assert (
        "scenario-analytics: repaired: latest.json now names 2026-11-22, the newest published "
        "date" in lines
    )
    assert "scenario-analytics: repaired: removed snapshot_date=2026-11-23" in lines
    assert f"scenario-analytics: repaired: removed {own[0]}" in lines
    assert problems(repaired) == found[:1]
    assert latest_json(store)["snapshot_date"] == "2026-11-22"
    assert not (store / "snapshot_date=2026-11-23").exists()
    assert [s["snapshot_date"] for s in json.loads(snapshots(store, "--json").stdout)] == [
        "2026-11-20",
        "2026-11-22",
    ]
    # What the message says to do makes the store whole again.
    rebuilt = cli(
        "backfill", "--exports", str(built[0]), "--snapshots", str(store),
        "--from", "2026-11-21", "--to", "2026-11-21", "--force", *GATES,
    )  # fmt: skip
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert snapshots(store, "verify").exit_code == 0


def test_repair_removes_leftovers_and_keeps_a_pin(store: Path) -> None:
    assert snapshots(store, "pin", "2026-11-21").exit_code == 0
    published = {p: p.read_bytes() for p in store.glob("snapshot_date=*/**/*") if p.is_file()}
    # What killed runs leave: uploads never committed (to .staging, to .objects), and
    # the temporary files of writes killed before their rename (a commit record, latest.json,
    # a file being copied into a published date's folder).
    (store / ".staging" / "dead").mkdir(parents=True)
    (store / ".staging" / "dead" / "summaries.parquet").write_bytes(b"half")
    orphan = (
        f".objects/sessions/created_date=2026-11-24/{hashlib.sha256(b'half').hexdigest()}.parquet"
    )
    (store / orphan).parent.mkdir(parents=True)
    (store / orphan).write_bytes(b"half")
    (store / ".commits" / ".2026-11-24.json.dead.tmp").write_text("{")
    (store / ".latest.json.dead.tmp").write_text("{")
    (folder(store, "2026-11-22") / ".summaries.parquet.dead.tmp").write_bytes(b"half")
    leftovers = [
        ".commits/.2026-11-24.json.dead.tmp",
        ".latest.json.dead.tmp",
        orphan,
        ".staging/dead",
        "snapshot_date=2026-11-22/.summaries.parquet.dead.tmp",
    ]
    result = snapshots(store, "verify")
    assert result.exit_code == ExitCode.FAILURE
    # Each named once, as a leftover to repair (none makes a snapshot damaged).
    assert [p.split(": problem: ")[1] for p in problems(result)] == [
        f"{what} is left over from a killed run — `scenario-analytics snapshots verify "
        f"--repair --snapshots {store}` fixes it (so does the next run)"
        for what in leftovers
    ]
    repaired = snapshots(store, "verify", "--repair")
    assert repaired.exit_code == 0, repaired.stderr
    assert [x for x in repaired.stderr.splitlines() if ": repaired: " in x] == [
        f"scenario-analytics: repaired: removed {what}" for what in sorted(leftovers)
    ]
    assert not (store / ".staging" / "dead").exists() and not (store / orphan).exists()
    assert not list(store.rglob(".*.tmp"))
    assert {p: p.read_bytes() for p in store.glob("snapshot_date=*/**/*") if p.is_file()} == (
        published
    )
    assert latest_json(store)["pinned"] is True
    assert latest_json(store)["snapshot_date"] == "2026-11-21"


def test_manifests_without_sha256_are_not_verifiable(store: Path) -> None:
    """A snapshot of an early version (its manifest lists no sha256s): its commit record,
    as the conversion of a store of the first layout writes it, names that manifest."""
    path = folder(store, "2026-11-20") / "manifest.json"
    manifest = json.loads(path.read_text())
    for output in manifest["outputs"]:
        output.pop("sha256")
        output.pop("files", None)
        output.pop("partitions", None)
    path.write_text(json.dumps(manifest, indent=2))
    key = store / ".commits" / "2026-11-20.json"
    record = Record.from_bytes(key.read_bytes())
    assert record is not None
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    key.write_bytes(dataclasses.replace(record, manifest_sha256=sha256).to_bytes())
    result = snapshots(store, "verify")
    assert result.exit_code == 0, result.stderr
    (note,) = [x for x in result.stderr.splitlines() if ": note: " in x]
    assert note == (
        "scenario-analytics: note: 2026-11-20: not verifiable (manifest without sha256): "
        "sessions/created_date=*/part-0.parquet, api/scenarios/*/analytics/summary.json, "
        "group_memberships.parquet, groups.parquet, participants.parquet, rejects.parquet, "
        "scenarios.parquet, summaries.parquet, users.parquet"
    )
    (folder(store, "2026-11-20") / "users.parquet").unlink()  # still checked: it must exist
    result = snapshots(store, "verify")
    assert result.exit_code == ExitCode.FAILURE
    assert "2026-11-20: users.parquet is missing" in problems(result)[0]


# -- disk use -----------------------------------------------------------------------------


def _bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(
        os.lstat(os.path.join(d, f)).st_size for d, _s, files in os.walk(path) for f in files
    )


def test_listing_totals_and_usage(store: Path) -> None:
    replaced = Store(store).version(date(2026, 11, 20))
    assert replaced is not None
    assert snapshots(store, "delete", "2026-11-20").exit_code == 0
    (store / ".quarantine" / "2026-11-24_x").mkdir(parents=True)
    (store / ".quarantine" / "2026-11-24_x" / "report.json").write_bytes(b"{}" * 500)

    listed = json.loads(snapshots(store, "--json").stdout)
    assert isinstance(listed, list) and all(s["bytes"] > 0 for s in listed)
    for entry in listed:  # each snapshot's size: every file it has, its partitions included
        files = snapshot_files(entry["path"])
        assert entry["bytes"] == sum(p.stat().st_size for p in files.values())
    result = snapshots(store, "usage", "--json")
    assert result.exit_code == 0, result.stderr
    usage = json.loads(result.stdout)
    ledger = _bytes(store / ".ledger")  # the Parquet parts and their catalog
    # The published snapshots' files, a session partition they share counted once; the
    # deleted version's files that no published snapshot uses, kept for its readers.
    lib = Store(store)
    versions = [lib.version(d) for d in lib.dates()]
    live = {k for v in versions if v is not None for k in v.keys().values()}
    assert len(versions) == 3 and None not in versions
    only_replaced = set(replaced.keys().values()) - live
    assert only_replaced and len(only_replaced) < len(replaced.keys())  # it shared some
    assert usage == {
        "snapshots": {"count": 3, "bytes": sum((store / k).stat().st_size for k in live)},
        "replaced_versions": {
            "count": 1,
            "bytes": sum((store / k).stat().st_size for k in only_replaced),
        },
        "quarantines": {"count": 1, "bytes": 1000},
        "ledger": {"bytes": ledger},
        "store": {"bytes": _bytes(store)},
    }
    assert usage["snapshots"]["bytes"] < sum(s["bytes"] for s in listed)  # shared once
    assert ledger > 0 and usage["store"]["bytes"] > sum(
        v["bytes"] for k, v in usage.items() if k != "store"
    )

    table = snapshots(store)
    assert table.exit_code == 0, table.stderr
    rows, totals = table.stdout.split("\n\n")
    assert len(rows.splitlines()) == 1 + 3
    assert totals == snapshots(store, "usage").stdout
    lines = totals.splitlines()
    assert re.fullmatch(r"total: 3 snapshots +\d+\.\d kB", lines[0])
    assert re.fullmatch(r"replaced versions kept for readers: 1 +\d+\.\d kB", lines[1])
    assert re.fullmatch(r"quarantines: 1 +1\.0 kB", lines[2])
    assert lines[3].startswith("ledger ") and lines[4].startswith("store, all of it ")
    assert {len(line) for line in lines} == {len(rows.splitlines()[0])}  # the size column


def test_options_before_the_subcommand_and_from_the_environment(store: Path) -> None:
    result = cli("snapshots", "--snapshots", str(store), "verify")
    assert result.exit_code == 0, result.stderr
    env = {"SCENARIO_ANALYTICS_SNAPSHOTS": str(store)}
    assert cli("snapshots", "usage", "--json", env=env).exit_code == 0
    missing = cli("snapshots", "verify", "--snapshots", str(store / "missing"))
    assert missing.exit_code == ExitCode.NOT_FOUND
    assert "no snapshot store at" in error_line(missing)
    assert cli("snapshots", "verify").exit_code == ExitCode.USAGE
