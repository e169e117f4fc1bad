"""Discovering export files: which entity, which format, which files are ignored."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import write_exports

from scenario_analytics.errors import AnalyticsError, DataQualityError
from scenario_analytics.ingest.discover import check_accounted, discover
from scenario_analytics.pipeline.staging import fetch_export


def _touch(root: Path, *paths: str) -> Path:
    return write_exports(root, {path: b"" for path in paths})


def test_entity_folders_at_any_depth(tmp_path: Path) -> None:
    root = _touch(
        tmp_path,
        "sessions/part-0001.jsonl",
        "sessions/2026/11/26/part-0002.csv",
        "members/x/y/z.parquet",
        "scenarios/all.json",
        "groups/g.ndjson",
        "group_memberships/deep/m.csv.gz",
    )
    found = {f.rel_path: f.entity for f in discover(root).files}
    assert found == {
        "sessions/part-0001.jsonl": "sessions",
        "sessions/2026/11/26/part-0002.csv": "sessions",
        "members/x/y/z.parquet": "members",
        "scenarios/all.json": "scenarios",
        "groups/g.ndjson": "groups",
        "group_memberships/deep/m.csv.gz": "group_memberships",
    }


def test_top_level_files_named_by_entity_and_separator(tmp_path: Path) -> None:
    root = _touch(
        tmp_path,
        "sessions-2026-11-26.csv",
        "sessions_part2.jsonl",
        "sessions.json",
        "members.csv",
        "scenarios.parquet",
        "groups-all.jsonl",
        "group_memberships.jsonl",
        "group_memberships-2.csv",
    )
    found = {f.rel_path: f.entity for f in discover(root).files}
    assert found == {
        "sessions-2026-11-26.csv": "sessions",
        "sessions_part2.jsonl": "sessions",
        "sessions.json": "sessions",
        "members.csv": "members",
        "scenarios.parquet": "scenarios",
        "groups-all.jsonl": "groups",
        # Not `groups`: the longer entity name is the one the file is named after.
        "group_memberships.jsonl": "group_memberships",
        "group_memberships-2.csv": "group_memberships",
    }


@pytest.mark.parametrize(
    ("name", "fmt", "gzip"),
    [
        ("sessions/a.jsonl", "jsonl", False),
        ("sessions/a.ndjson", "jsonl", False),
        ("sessions/a.json", "json", False),
        ("sessions/a.csv", "csv", False),
        ("sessions/a.parquet", "parquet", False),
        ("sessions/a.jsonl.gz", "jsonl", True),
        ("sessions/a.ndjson.gz", "jsonl", True),
        ("sessions/a.json.gz", "json", True),
        ("sessions/a.csv.gz", "csv", True),
        ("sessions/a.2026.csv", "csv", False),
    ],
)
def test_format_from_extension(tmp_path: Path, name: str, fmt: str, gzip: bool) -> None:
    (found,) = discover(_touch(tmp_path, name)).files
    assert (found.rel_path, found.entity, found.fmt, found.gzip) == (name, "sessions", fmt, gzip)


def test_every_file_is_accounted_for(tmp_path: Path) -> None:
    """CONTRACT.md section 5: skipped (`.`/`_` names), ignored (not an export), or an
    export that would be left out (named like one, but no entity or no format)."""
    skipped = [".hidden.jsonl", "_SUCCESS", "sessions/.DS_Store", "sessions/_tmp/a.jsonl"]
    ignored = ["README.md", "archive/notes.txt"]
    unaccounted = {
        "archive/sessions.jsonl": "folder archive/ matches no entity",
        "group/a.jsonl": "folder group/ matches no entity; did you mean groups?",
        "session.csv": "no entity matches; did you mean sessions?",
        "sessions-old/a.jsonl": "folder sessions-old/ matches no entity; did you mean sessions?",
        "sessions.txt": "not an export format (named after sessions)",
        "sessionsX.csv": "no entity matches; did you mean sessions?",
        "sessions/a.gz": "not an export format (inside sessions/)",
        "sessions/a.parquet.gz": "not an export format (inside sessions/)",  # gzip: text only
        "sessions/a.tsv": "not an export format (inside sessions/)",
        "sessions/notes.txt": "not an export format (inside sessions/)",
        "users.csv": "no entity matches",
    }
    root = _touch(tmp_path, "sessions/a.jsonl", *skipped, *ignored, *unaccounted)
    folder = discover(root)
    assert [f.rel_path for f in folder.files] == ["sessions/a.jsonl"]
    assert folder.ignored == sorted(ignored, key=str.encode)
    assert folder.skipped == sorted(
        [".hidden.jsonl", "_SUCCESS", "sessions/.DS_Store", "sessions/_tmp/"], key=str.encode
    )
    reasons = {u.rel_path: u.reason for u in folder.unaccounted}
    assert list(reasons) == sorted(unaccounted, key=str.encode)
    for rel, reason in unaccounted.items():
        assert reasons[rel].startswith(reason), (rel, reasons[rel])
    assert "did you mean" not in reasons["users.csv"]
    with pytest.raises(DataQualityError) as raised:
        check_accounted(folder)
    assert raised.value.exit_code == 4
    assert "group/a.jsonl: folder group/ matches no entity; did you mean groups?" in str(
        raised.value
    )


def test_ignore_globs_skip_files_and_folders_on_purpose(tmp_path: Path) -> None:
    root = _touch(
        tmp_path,
        "sessions/a.jsonl",
        "sessions/a.jsonl.tmp",
        "archive/2025/sessions.jsonl",
        "scenario.csv",
    )
    folder = discover(root, ["*.tmp", "archive", "scenario.csv"])
    assert [f.rel_path for f in folder.files] == ["sessions/a.jsonl"]
    assert folder.skipped == ["archive/", "scenario.csv", "sessions/a.jsonl.tmp"]
    assert folder.unaccounted == []
    check_accounted(folder)  # nothing left out


def test_files_sorted_by_relative_path_in_byte_order(tmp_path: Path) -> None:
    names = [
        "sessions/a.jsonl",
        "sessions/B.jsonl",
        "sessions/a/z.jsonl",
        "sessions.jsonl",
        "sessions-2.csv",
        "members.csv",
        "sessions/\u00e9.jsonl",
    ]
    root = _touch(tmp_path, *names)
    assert [f.rel_path for f in discover(root).files] == [
        "members.csv",
        "sessions-2.csv",
        "sessions.jsonl",
        "sessions/B.jsonl",  # uppercase before lowercase
        "sessions/a.jsonl",  # "." (0x2E) before "/" (0x2F)
        "sessions/a/z.jsonl",
        "sessions/\u00e9.jsonl",  # non-ASCII after ASCII (UTF-8 bytes)
    ]


def test_size_and_sha256(tmp_path: Path) -> None:
    root = write_exports(tmp_path, {"sessions/a.jsonl": b'{"id": "s1"}\n'})
    folder = discover(root)
    (listed,) = folder.files
    assert listed.size == 13
    assert listed.etag  # the storage's tag of the file as listed
    # Listed, not fetched: no local file to read yet.
    assert listed.path is None
    with pytest.raises(ValueError, match="not fetched"):
        listed.local  # noqa: B018
    found = fetch_export(folder.storage, listed)
    assert found.path == root / "sessions" / "a.jsonl"  # local disk: read in place
    assert found.sha256() == hashlib.sha256(b'{"id": "s1"}\n').hexdigest()


def test_missing_exports_folder(tmp_path: Path) -> None:
    with pytest.raises(AnalyticsError, match="does not exist"):
        discover(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(AnalyticsError, match="not a folder"):
        discover(tmp_path / "file")
