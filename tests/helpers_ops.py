"""Helpers for the operations tests: small exports, CLI calls, snapshot contents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from click.testing import CliRunner, Result
from conftest import (
    CSV_SESSION_HEADER,
    FIXTURE_SKIPS,
    csv_session,
    flat_session,
    session,
    write_exports,
)

from scenario_analytics.cli import main
from scenario_analytics.engine.database import connect
from scenario_analytics.engine.sql_files import load_sql_files
from scenario_analytics.events import Report, ignore
from scenario_analytics.pipeline.run import RunOptions, RunResult, run
from scenario_analytics.pipeline.staging import load_exports
from scenario_analytics.publish.fingerprint import DayDigests
from scenario_analytics.publish.store import Store

# Manifest keys that may differ between two builds of the same snapshot.
# What a manifest says of the run that built it rather than of the snapshot: when, how
# long, and the checks (they compare with what the store held then).
VOLATILE = ("created_at", "duration_seconds", "checks")


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def cli_subprocess(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command in its own process (for the fault hook, which kills the process)."""
    return subprocess.run(
        [sys.executable, "-m", "scenario_analytics", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def run_base(
    exports: Path,
    store: Path,
    *,
    as_of: date = date(2026, 11, 26),
    full_refresh: bool = False,
    report: Report = ignore,
) -> RunResult:
    """`run` over a folder like `base_exports` (which has rejects: a reject ratio up to
    0.5; its sessions are old: the fixtures' skipped checks)."""
    return run(
        RunOptions(
            exports=exports,
            snapshots=store,
            as_of=as_of,
            max_reject_ratio=0.5,
            full_refresh=full_refresh,
            skip_checks=FIXTURE_SKIPS,
        ),
        report,
    )


def base_exports(root: Path) -> Path:
    """Every format, rejects (also in Parquet), duplicates across files, groups, members."""
    return write_exports(
        root,
        {
            "sessions/a.jsonl": [
                session("s1", created_at="2026-11-20T10:00:00Z", score=55),
                session(
                    "s2",
                    user={"id": "u2", "email": "u2@exec.com"},
                    score=91,
                    created_at="2026-11-21T09:00:00Z",
                ),
                "{not json",
                session("dup", score=60, created_at="2026-11-21T12:00:00Z"),
            ],
            "sessions/b.csv": [
                CSV_SESSION_HEADER,
                csv_session("c1", user_id="u3", created_at="2026-11-22T08:00:00Z", score="77"),
                csv_session("dup", score="88", created_at="2026-11-21T12:00:00Z"),
                csv_session("", score="10"),
            ],
            "sessions/c.parquet": [
                flat_session(
                    "p1",
                    user_id="u4",
                    scenario_id="sc2",
                    scenario_slug="two",
                    created_at="2026-11-23T08:00:00Z",
                    score=42.5,
                ),
                flat_session("p2", score=150, created_at="2026-11-23T09:00:00Z"),
            ],
            "members.csv": [["id", "email"], ["u1", "one@acme.com"], ["u3", ""]],
            "groups.json": {"data": [{"id": "g1", "name": "G one"}], "pagination": {}},
            "group_memberships.csv": [["group_id", "user_id"], ["g1", "u1"], ["g1", "u4"]],
            "scenarios.parquet": [{"id": "sc1", "slug": "scenario-one", "name": "One"}],
            "NOTES.txt": "not an export",
        },
    )


def snapshot_files(snapshot: str | Path) -> dict[str, Path]:
    """Every file of a published snapshot, named by its folder (`DIR/snapshot_date=D`, a
    path or an s3:// URI), by path in the snapshot: local files with its bytes (fetched
    through its store, so shared session partitions are in it too)."""
    text = str(snapshot).rstrip("/")
    root, _, name = text.rpartition("/")
    store = Store(root or ".")
    version = store.version(date.fromisoformat(name.split("=", 1)[1]))
    assert version is not None, f"{snapshot} is not published"
    return {rel: store.fetch(version, rel) for rel in sorted(version.files())}


def snapshot_bytes(snapshot: str | Path) -> dict[str, Any]:
    """Every file's bytes (a snapshot on S3 is the local one byte for byte), the manifest
    without what says when and how long (`VOLATILE`)."""
    found: dict[str, Any] = {}
    for rel, path in snapshot_files(snapshot).items():
        found[rel] = _lasting_manifest(path) if rel == "manifest.json" else path.read_bytes()
    return found


def _lasting_manifest(path: Path) -> dict[str, Any]:
    """A manifest without what says when and how long (`VOLATILE`)."""
    manifest: dict[str, Any] = json.loads(path.read_bytes())
    for key in VOLATILE:
        manifest.pop(key, None)
    return manifest


def snapshot_content(snapshot: str | Path) -> dict[str, Any]:
    """Everything a snapshot holds, comparable across builds: Parquet rows as read,
    other files as bytes, the manifest without its timestamps and durations."""
    content: dict[str, Any] = {}
    for rel, path in snapshot_files(snapshot).items():
        if rel == "manifest.json":
            content[rel] = _lasting_manifest(path)
        elif rel.endswith(".parquet"):
            content[rel] = duckdb.sql(
                f"SELECT * FROM read_parquet('{path}', hive_partitioning = false)"
            ).fetchall()
        else:
            content[rel] = path.read_bytes()
    return content


def created_at(store: Path, day: str) -> str:
    manifest = json.loads((store / f"snapshot_date={day}" / "manifest.json").read_text())
    return str(manifest["created_at"])


def day_digests(exports: Path) -> DayDigests:
    """The per-day digests (`sql/0070`'s `day_digests`) of an exports folder."""
    con = connect()
    try:
        return load_exports(con, exports, date(2026, 11, 26), load_sql_files()).digests
    finally:
        con.close()


def manifest_bytes(store: Path, day: str) -> bytes:
    return (store / f"snapshot_date={day}" / "manifest.json").read_bytes()
