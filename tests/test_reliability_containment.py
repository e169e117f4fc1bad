"""Containment: what the job writes stays in the store it was given, in its snapshot.

- Scenario ids with `/`, `..`, `%`, spaces, control characters and non-ASCII are written
  only inside their snapshot, at the percent-encoded path, and `query` finds them. An id
  too long for a file name fails the run with a message that says so.
- Paths: command-line options override the job file; relative paths in a job file are
  relative to the job file's folder (never the current directory); `~`, `$VAR` and empty
  paths are refused, not expanded; the store and the exports folder must not overlap;
  a symbolic link in the exports folder that leads out of it is not read.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result
from helpers_ops import snapshot_files

from scenario_analytics.cli import main
from scenario_analytics.errors import InvalidUsageError
from scenario_analytics.publish.snapshot import TABLES, encode_path_segment
from scenario_analytics.serve.query import SnapshotQuery
from scenario_analytics.settings import load_job

AS_OF = "2026-11-26"
ODD_IDS = [
    "a/b",
    "a%2Fb",
    "%2E%2E",
    "..",
    ".",
    "...",
    ".hidden",
    "../../outside",
    "/absolute",
    "50% off",
    "%",
    " lead and trail ",
    "naïve café",
    "日本語",
    "emoji 🎉",
    "back\\slash",
    "x?y#z&w=1",
    "~user",
    "-rf",
    "CON",
    "tab\tid",
    "new\nline",
    "nul\x00id",
    "'; DROP TABLE summaries; --",
]


def _session(sid: str, scenario: str, score: int = 80) -> str:
    return json.dumps(
        {
            "id": sid,
            "user": {"id": "u1", "email": "u1@acme.com"},
            "scenario": {"id": scenario},
            "score": score,
            "duration_seconds": 60,
            "is_valid_attempt": True,
            "created_at": "2026-11-01T10:00:00Z",
        }
    )


def _exports(root: Path, scenarios: list[str]) -> Path:
    exports = root / "exports"
    (exports / "sessions").mkdir(parents=True)
    lines = [_session(f"s{i}", sid, 50 + i) for i, sid in enumerate(scenarios)]
    (exports / "sessions" / "a.jsonl").write_text("\n".join(lines) + "\n")
    return exports


def _invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    return result


def _run(exports: Path, store: Path, *extra: str | Path) -> Result:
    return _invoke("run", "--exports", exports, "--snapshots", store, "--as-of", AS_OF, *extra)


def _all_paths(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_odd_scenario_ids_are_written_only_inside_their_snapshot(tmp_path: Path) -> None:
    exports = _exports(tmp_path, ODD_IDS)
    store = tmp_path / "store"
    before = _all_paths(tmp_path) - _all_paths(store)
    result = _run(exports, store)
    assert result.exit_code == 0, result.stderr
    # Nothing was written outside the store.
    assert _all_paths(tmp_path) - {p for p in _all_paths(tmp_path) if p.startswith("store")} == (
        before
    )
    # The snapshot's folder is a real folder of the store (not a link elsewhere).
    folder = store / f"snapshot_date={AS_OF}"
    assert folder.is_dir() and not folder.is_symlink()
    folder = folder.resolve()
    assert folder.parent == store.resolve()
    # Outside its snapshot, the store holds only its own bookkeeping (publish/store.py).
    top = {p.name for p in store.iterdir()}
    assert top <= {
        "latest.json",
        ".store.json",
        ".lease.json",
        ".cas.lock",
        ".commits",
        ".retired",
        ".staging",
        ".scratch",
        ".objects",
        ".ledger",
        f"snapshot_date={AS_OF}",
    }, top
    # In the snapshot: the tables, the sessions' day file (all on 2026-11-01), the
    # manifest, and one summary.json per id at its percent-encoded path, each id in a
    # folder of its own (the encoding is one-to-one). The day file is shared by content
    # in the store's `.objects/`; everything else is in the snapshot's folder.
    sessions = "sessions/created_date=2026-11-01/part-0.parquet"
    expected = {f"{name}.parquet" for name in TABLES} | {"manifest.json", sessions}
    expected |= {f"api/scenarios/{encode_path_segment(i)}/analytics/summary.json" for i in ODD_IDS}
    snapshot = snapshot_files(store / f"snapshot_date={AS_OF}")
    assert set(snapshot) == expected
    assert snapshot[sessions].resolve().is_relative_to((store / ".objects").resolve())
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert files == expected - {sessions}
    folders = {p.name for p in (folder / "api" / "scenarios").iterdir()}
    assert len(folders) == len(ODD_IDS)
    for segment in folders:
        assert segment not in {".", ".."} and "/" not in segment
        assert all(c.isascii() and (c.isalnum() or c in "-._~%") for c in segment), segment
    for path in folder.rglob("*"):
        assert not path.is_symlink()
        assert path.resolve().is_relative_to(folder)
    # query finds every id, and its body is the file's.
    reader = SnapshotQuery(store)
    try:
        for i, scenario_id in enumerate(ODD_IDS):
            answer = reader.answer(scenario_id, {})
            assert answer.exit_code == 0, scenario_id
            path = folder / "api" / "scenarios" / encode_path_segment(scenario_id)
            assert (path / "analytics" / "summary.json").read_text() == answer.body
            assert json.loads(answer.body)["average_best_score"] == 50 + i
    finally:
        reader.close()
    for scenario_id in ODD_IDS:
        if "\x00" in scenario_id:
            continue  # an argument cannot hold NUL; --requests can (below)
        found = _invoke("query", "--snapshots", store, "--", scenario_id)
        assert found.exit_code == 0, (scenario_id, found.stdout)
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(json.dumps({"scenario_id": i}) for i in ODD_IDS) + "\n")
    answered = _invoke("query", "--snapshots", store, "--requests", requests)
    assert answered.exit_code == 0
    assert ["error" not in json.loads(line) for line in answered.stdout.splitlines()] == [
        True
    ] * len(ODD_IDS)


@pytest.mark.parametrize("scenario_id", ["x" * 256, "é" * 100, "y" * 300])
def test_id_too_long_for_a_file_name_gets_a_hashed_folder(tmp_path: Path, scenario_id: str) -> None:
    """CONTRACT.md section 5: over 200 bytes once percent-encoded, the id's API folder is
    `%-<sha256 of the id>`; the run publishes and `query` finds the scenario."""
    exports = _exports(tmp_path, ["ok", scenario_id])
    store = tmp_path / "store"
    result = _run(exports, store)
    assert result.exit_code == 0, result.stderr
    folder = "%-" + hashlib.sha256(scenario_id.encode()).hexdigest()
    body = store / "snapshot_date=2026-11-26" / "api" / "scenarios" / folder / "analytics"
    assert (body / "summary.json").is_file()
    found = _invoke("query", "--snapshots", store, scenario_id)
    assert found.exit_code == 0, found.stdout
    assert (body / "summary.json").read_text() == found.stdout.strip()


def test_one_bad_value_never_fails_a_night(tmp_path: Path) -> None:
    """A 300-byte scenario id and a 10^18-second duration in the same night: the run
    publishes, the id is queryable, the duration is a reject (it used to overflow 0140)."""
    long_id = "z" * 300
    exports = _exports(tmp_path, ["ok", long_id])
    huge = json.loads(_session("huge", "ok", 70))
    huge["duration_seconds"] = 10**18
    with (exports / "sessions" / "a.jsonl").open("a") as handle:
        handle.write(json.dumps(huge) + "\n")
    store = tmp_path / "store"
    result = _run(exports, store, "--max-reject-ratio", "0.5")
    assert result.exit_code == 0, result.stderr
    assert _invoke("query", "--snapshots", store, long_id).exit_code == 0
    path = store / "snapshot_date=2026-11-26" / "rejects.parquet"
    rejects = duckdb.execute("SELECT reason FROM read_parquet(?)", [str(path)]).fetchall()
    assert rejects == [("bad_duration",)]


# --- paths: the job file, the command line, the store and the exports ---------------------


def _job(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "job.toml"
    path.write_text(text)
    return path


def test_job_file_paths_are_relative_to_its_folder_not_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports = _exports(tmp_path / "data", ["sc1"])
    job = _job(
        tmp_path / "jobs",
        'exports = "../data/exports"\nsnapshots = "../store"\n[engine]\ntemp_directory = "tmp"\n',
    )
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    config = load_job(Path(os.path.relpath(job, elsewhere)))
    assert config.exports is not None and config.exports.local_path.resolve() == exports
    assert config.engine.temp_directory is not None
    assert config.engine.temp_directory.resolve() == tmp_path / "jobs" / "tmp"
    result = _invoke("run", "--job", os.path.relpath(job, elsewhere), "--as-of", AS_OF)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "store" / "latest.json").is_file()
    assert _all_paths(elsewhere) == {"data"}


def test_command_line_paths_override_the_job_file(tmp_path: Path) -> None:
    exports = _exports(tmp_path, ["sc1"])
    job = _job(tmp_path / "jobs", 'exports = "/nonexistent/exports"\nsnapshots = "job-store"\n')
    store = tmp_path / "given-store"
    result = _invoke(
        "run", "--job", job, "--exports", exports, "--snapshots", store, "--as-of", AS_OF
    )
    assert result.exit_code == 0, result.stderr
    assert (store / "latest.json").is_file()
    assert not (tmp_path / "jobs" / "job-store").exists()


@pytest.mark.parametrize(
    "text",
    [
        'snapshots = ""',
        'snapshots = "  "',
        'snapshots = "~/snapshots"',
        'snapshots = "~"',
        'snapshots = "$HOME/snapshots"',
        'exports = "${EXPORTS}"',
        '[engine]\ntemp_directory = "~/tmp"',
        'store = "/tmp/elsewhere"',
    ],
)
def test_job_file_paths_that_would_not_mean_what_they_say_are_refused(
    tmp_path: Path, text: str
) -> None:
    exports = _exports(tmp_path, ["sc1"])
    job = _job(tmp_path / "jobs", text + "\n")
    result = _invoke("run", "--job", job, "--exports", exports, "--as-of", AS_OF)
    assert result.exit_code == 2, result.stderr
    assert f"job file {job} is invalid" in result.stderr
    assert _all_paths(tmp_path / "jobs") == {"job.toml"}
    assert not (tmp_path / "~").exists()


def test_store_and_exports_must_not_overlap(tmp_path: Path) -> None:
    exports = _exports(tmp_path, ["sc1"])
    (tmp_path / "link-into-exports").symlink_to(exports / "sessions")
    cases: list[list[str | Path]] = [
        ["--exports", exports, "--snapshots", exports],
        ["--exports", exports, "--snapshots", exports / "store"],
        ["--exports", exports / "sessions", "--snapshots", exports],
        ["--exports", exports, "--snapshots", tmp_path / "link-into-exports" / "store"],
        ["--exports", exports, "--snapshots", exports / ".." / "exports" / "x"],
    ]
    for paths in cases:
        for command in (["run", "--as-of", AS_OF], ["backfill", "--from", AS_OF, "--to", AS_OF]):
            result = _invoke(*command, *paths)
            assert result.exit_code == 2, (command, paths, result.stderr)
            assert "overlap" in result.stderr
    job = _job(tmp_path / "jobs", 'exports = "../exports"\nsnapshots = "../exports/snapshots"\n')
    result = _invoke("run", "--job", job, "--as-of", AS_OF)
    assert result.exit_code == 2 and "overlap" in result.stderr
    with pytest.raises(InvalidUsageError, match="overlap"):
        load_job(job)
    assert _all_paths(exports) == {"sessions", "sessions/a.jsonl"}


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_links_out_of_the_exports_folder_are_not_read(tmp_path: Path, kind: str) -> None:
    """Else a file anywhere the job may read would be copied into `rejects.parquet`."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "part.jsonl").write_text('{"not": "yours"}\n')
    exports = _exports(tmp_path, ["sc1"])
    if kind == "file":
        (exports / "sessions" / "b.jsonl").symlink_to(secret / "part.jsonl")
        rel = "sessions/b.jsonl"
    else:
        (exports / "sessions" / "more").symlink_to(secret)
        rel = "sessions/more"
    store = tmp_path / "store"
    result = _run(exports, store)
    assert result.exit_code == 1
    assert f"cannot read export file {rel}: a symbolic link to a {kind} outside" in result.stderr
    assert not (store / "latest.json").exists()


def test_links_inside_the_exports_folder_are_fine(tmp_path: Path) -> None:
    exports = _exports(tmp_path, ["sc1"])
    (exports / "sessions" / "again").symlink_to(exports / "sessions")  # not followed
    (exports / "sessions-latest.jsonl").symlink_to(exports / "sessions" / "a.jsonl")
    store = tmp_path / "store"
    result = _run(exports, store)
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((store / f"snapshot_date={AS_OF}" / "manifest.json").read_text())
    assert [i["path"] for i in manifest["inputs"]] == ["sessions-latest.jsonl", "sessions/a.jsonl"]
    assert manifest["counts"]["sessions_duplicate"] == 1
