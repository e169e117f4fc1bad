"""The product as it is deployed: a wheel built from this tree, installed into a fresh
virtual environment outside the repository, run from another folder with no environment
variable set. Its snapshot must equal the editable install's, byte for byte, and its
`query` and `serve` must answer the same bytes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers_serve import Server

ROOT = Path(__file__).resolve().parents[1]
EDITABLE = Path(sys.executable).parent / "scenario-analytics"
AS_OF = "2026-11-26"

# One worker builds and installs once (two building in the same tree at once collide in
# its build/ folder).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("install")]


def _clean_env() -> dict[str, str]:
    """The environment without any SCENARIO_ANALYTICS_* setting or virtualenv of ours."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SCENARIO_ANALYTICS_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }


def _run(
    command: list[str | Path], cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> str:
    result = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env={**_clean_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and sdist, built as a user would (`python -m build`)."""
    out = tmp_path_factory.mktemp("dist")
    # From a copy of the tree: the build writes build/ and *.egg-info into its source.
    source = tmp_path_factory.mktemp("source") / "tree"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "data", "snapshots"
        ),
    )
    shutil.copytree(ROOT / "data" / "sample", source / "data" / "sample")
    _run([sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", out, source], cwd=out)
    return out


@pytest.fixture(scope="session")
def installed(dists: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `scenario-analytics` command of a fresh virtual environment holding the wheel."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", venv], cwd=venv)
    (wheel,) = dists.glob("*.whl")
    # Without byte-compiling its dependencies (pyarrow, duckdb, boto3: seconds of the
    # suite); Python compiles what the command imports when it first imports it.
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-compile"]
    _run([*pip, wheel], cwd=venv)
    return venv / "bin" / "scenario-analytics"


def _sql_files() -> list[str]:
    return sorted(p.name for p in (ROOT / "sql").iterdir() if p.suffix == ".sql")


def test_the_wheel_carries_every_sql_file(dists: Path) -> None:
    (wheel,) = dists.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in _sql_files():
        assert f"scenario_analytics/sql/{name}" in names, name
    generate_sql = sorted((ROOT / "src/scenario_analytics/generate").glob("*.sql"))
    assert generate_sql
    for path in generate_sql:
        assert f"scenario_analytics/generate/{path.name}" in names, path.name
    # Every module of the source tree is in the wheel (a sub-package is not forgotten).
    package = ROOT / "src" / "scenario_analytics"
    for path in package.rglob("*.py"):
        assert f"scenario_analytics/{path.relative_to(package).as_posix()}" in names, path


def test_the_sdist_carries_every_sql_file(dists: Path) -> None:
    (sdist,) = dists.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for name in _sql_files():
        assert f"sql/{name}" in names, name


def test_the_installed_command_runs_and_answers_from_any_folder(
    installed: Path, tmp_path: Path, s3: Any
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    version = _run([installed, "--version"], cwd=elsewhere)
    assert "site-packages/scenario_analytics/sql" in version, version
    editable_version = _run([EDITABLE, "--version"], cwd=elsewhere)
    # The same SQL digest, whether the SQL is read from the wheel or from sql/.
    assert version.split(" (")[0] == editable_version.split(" (")[0]

    exports = ROOT / "data" / "sample"
    stores = {"wheel": tmp_path / "wheel-store", "editable": tmp_path / "editable-store"}
    for command, store in ((installed, stores["wheel"]), (EDITABLE, stores["editable"])):
        path = _run(
            [command, "run", "--exports", exports, "--snapshots", store, "--as-of", AS_OF],
            cwd=elsewhere,
        )
        assert path.strip() == str(store / f"snapshot_date={AS_OF}")

    bodies = {
        name: {
            p.relative_to(store).as_posix(): p.read_bytes()
            for p in sorted((store / f"snapshot_date={AS_OF}").rglob("*.json"))
            if p.name != "manifest.json"  # it says when and how long: not comparable
        }
        for name, store in stores.items()
    }
    assert len(bodies["wheel"]) == 3
    assert bodies["wheel"] == bodies["editable"]

    # The installed wheel (boto3 with it) against the test S3 server: exports and store in
    # the bucket, the same bodies as on local disk.
    env = s3.server.env()
    remote = s3.upload_folder(exports)
    printed = _run([installed, "run", "--exports", remote, "--snapshots", s3.uri, "--as-of",
                    AS_OF], cwd=elsewhere, env=env)  # fmt: skip
    assert printed.strip() == f"{s3.uri}/snapshot_date={AS_OF}"
    keys = s3.keys()
    assert {rel: keys[rel] for rel in bodies["wheel"]} == bodies["wheel"]
    on_s3 = _run([installed, "query", "--snapshots", s3.uri, "procurement-discovery",
                  "--group-ids", "g1"], cwd=elsewhere, env=env)  # fmt: skip
    on_disk = _run([installed, "query", "--snapshots", stores["wheel"], "procurement-discovery",
                    "--group-ids", "g1"], cwd=elsewhere)  # fmt: skip
    assert on_s3 == on_disk
    assert not list(elsewhere.iterdir())  # nothing written where it ran

    for args in (["procurement-discovery"], ["procurement-discovery", "--group-ids", "g1"]):
        answers = [
            _run([command, "query", "--snapshots", store, *args], cwd=elsewhere)
            for command, store in ((installed, stores["wheel"]), (EDITABLE, stores["editable"]))
        ]
        assert answers[0] == answers[1]
        assert answers[0].startswith('{"participant_count":')

    # The installed server answers the same bytes over HTTP, from another folder too.
    server = Server(
        subprocess.Popen(
            [
                str(installed),
                "serve",
                "--snapshots",
                str(stores["wheel"]),
                "--no-auth",
                "--port",
                "0",
            ],  # fmt: skip
            cwd=elsewhere,
            env={**_clean_env(), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    try:
        server.wait_ready()
        scenario = "procurement-discovery"
        summary = httpx.get(f"{server.url}/rest/v1/scenarios/{scenario}/analytics/summary")
        assert summary.status_code == 200
        query = [installed, "query", "--snapshots", stores["wheel"], scenario]
        assert summary.text == _run(query, cwd=elsewhere).strip()
        people = httpx.get(
            f"{server.url}/rest/v1/scenarios/{scenario}/analytics/participants?page_size=3"
        )
        assert people.status_code == 200
        expected = _run([*query, "--participants", "--page-size", "3"], cwd=elsewhere)
        assert people.text == expected.strip()
    finally:
        assert server.stop() == 0
