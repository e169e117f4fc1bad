"""`snapshots`: the listing matches the store (manifests and files on disk)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers_ops import base_exports, cli, snapshot_files

from scenario_analytics.publish.fingerprint import sql_version
from scenario_analytics.publish.store import Store

DAYS = ["2026-11-21", "2026-11-23"]


def _store(tmp_path: Path) -> Path:
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    for day in reversed(DAYS):  # the older one last: latest stays the newest
        result = cli(
            "run", "--exports", str(exports), "--snapshots", str(store), "--as-of", day,
            "--max-reject-ratio", "0.5",
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
    return store


def _size(folder: Path) -> int:
    return sum(
        os.path.getsize(os.path.join(d, f)) for d, _s, files in os.walk(folder) for f in files
    )


def test_json_listing_matches_the_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    result = cli("snapshots", "--snapshots", str(store), "--json")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [s["snapshot_date"] for s in listed] == DAYS
    for entry in listed:
        folder = store / f"snapshot_date={entry['snapshot_date']}"
        manifest = json.loads((folder / "manifest.json").read_text())
        assert entry["created_at"] == manifest["created_at"]
        assert entry["sessions"] == manifest["counts"]["sessions_in_snapshot"]
        assert entry["scenarios"] == manifest["counts"]["scenarios"]
        assert entry["rejects"] == sum(manifest["rejects_by_reason"].values()) == 3
        assert entry["sql_version"] == manifest["sql_version"]
        pairs = [(s["file"], s["sha256"]) for s in manifest["sql"]]
        assert entry["sql_version"] == sql_version(pairs)
        # Its size: the files of its folder and the session partitions it uses, stored
        # once in .objects/ (shared with the other snapshot where their content is equal).
        files = snapshot_files(folder)
        partitions = [p for rel, p in files.items() if rel.startswith("sessions/")]
        assert partitions and all(".objects" in p.parts for p in partitions)
        assert entry["bytes"] == _size(folder) + sum(p.stat().st_size for p in partitions)
        assert entry["bytes"] == sum(p.stat().st_size for p in files.values()) > 0
        assert entry["path"] == str(folder)
        assert entry["latest"] == (entry["snapshot_date"] == DAYS[-1])
    assert [s["sessions"] for s in listed] == [3, 5]


def test_table_listing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    result = cli("snapshots", "--snapshots", str(store))
    assert result.exit_code == 0, result.stderr
    table, usage = result.stdout.split("\n\n")  # the snapshots, then the disk use
    header, *rows = table.splitlines()
    assert [line[:81].rstrip() for line in usage.splitlines()] == [
        "total: 2 snapshots",
        "replaced versions kept for readers: 0",
        "quarantines: 0",
        "ledger",
        "store, all of it",  # a folder or an S3 prefix
    ]
    assert header.split() == [
        "date",
        "created_at",
        "sessions",
        "scenarios",
        "rejects",
        "sql",
        "size",
    ]
    assert [r.split()[0] for r in rows] == DAYS
    assert rows[-1].endswith("latest") and not rows[0].endswith("latest")
    version = Store(store).snapshots()[0].sql_version
    assert all(version in r for r in rows)


def test_empty_and_missing_stores(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = cli("snapshots", "--snapshots", str(tmp_path / "empty"), "--json")
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])
    result = cli("snapshots", "--snapshots", str(tmp_path / "missing"))
    assert result.exit_code == 3 and result.stdout == ""
    assert "error: no snapshot store at" in result.stderr
    result = cli("snapshots")
    assert result.exit_code == 2 and "--snapshots is required" in result.stderr


def test_the_job_file_names_the_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    job = tmp_path / "job.toml"
    job.write_text('snapshots = "store"\n')
    result = cli("snapshots", "--job", str(job), "--json")
    assert [s["snapshot_date"] for s in json.loads(result.stdout)] == DAYS
    assert store.is_dir()
