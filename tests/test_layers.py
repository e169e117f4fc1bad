"""The layering contracts of pyproject.toml (`lint-imports`, run by `make test`) hold, and
they fail when a module breaks a rule: shown on a copy of the package with one bad import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
OBJECT_STORAGE = "Only storage/ talks to object storage (local disk and S3 behind one interface)"
BUILD_NO_READ = "Building a snapshot never imports the read side"
STORE_NO_INGEST = "The store never imports ingest/ (names both need are in layout.py)"


def _lint(tmp_path: Path, bad: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on a copy of src/ (with `bad`: a line added to one module)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "scenario_analytics", src / "scenario_analytics")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if bad is not None:
        module, line = bad
        path = src / "scenario_analytics" / module
        path.write_text(path.read_text() + f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_its_contracts(tmp_path: Path) -> None:
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 6 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("ingest/discover.py", "import click", "Only the command line imports Click"),
        ("settings.py", "import click", "Only the command line imports Click"),
        (
            "ingest/discover.py",
            "from scenario_analytics.publish import store",
            "Stages in data-flow order",
        ),
        ("ingest/ledger.py", "import scenario_analytics.pipeline.run", "Stages in data-flow order"),
        ("serve/query.py", "from scenario_analytics.cli import main", "Stages in data-flow order"),
        ("generate/exports.py", "import scenario_analytics.pipeline", "Stages in data-flow order"),
        ("api/served.py", "import scenario_analytics.pipeline.run", "Stages in data-flow order"),
        ("serve/query.py", "from scenario_analytics.api import http", "Stages in data-flow order"),
        ("api/http.py", "import click", "Only the command line imports Click"),
        # storage/ is below ingest and above engine; locations.py is in the bottom layer.
        (
            "storage/base.py",
            "import scenario_analytics.ingest.ledger",
            "Stages in data-flow order",
        ),
        # Building a snapshot never imports the read side; the store never imports ingest/.
        ("pipeline/stages.py", "import scenario_analytics.serve.query", BUILD_NO_READ),
        ("pipeline/runner.py", "from scenario_analytics.serve import diff", BUILD_NO_READ),
        ("publish/store.py", "from scenario_analytics.ingest import ledger", STORE_NO_INGEST),
        (
            "engine/database.py",
            "from scenario_analytics import storage",
            "Stages in data-flow order",
        ),
        ("locations.py", "import scenario_analytics.settings", "Stages in data-flow order"),
        # Only storage/ imports boto3 and botocore.
        ("publish/store.py", "import boto3", OBJECT_STORAGE),
        ("ingest/discover.py", "import botocore.exceptions", OBJECT_STORAGE),
        ("api/server.py", "import boto3", OBJECT_STORAGE),
    ],
)
def test_a_module_that_breaks_a_rule_fails(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    result = _lint(tmp_path, (module, line))
    assert result.returncode == 1, result.stdout
    assert f"{broken} BROKEN" in result.stdout
    assert "1 broken" in result.stdout


def test_the_code_digest_covers_what_can_change_results() -> None:
    """Every module that can change what a run writes counts in the code digest; the
    command line and the HTTP server do not (editing them must not make the next night
    parse every export file again)."""
    from scenario_analytics.publish.fingerprint import data_code_files

    package = Path(__file__).resolve().parents[1] / "src" / "scenario_analytics"
    counted = {p.relative_to(package).as_posix() for p in data_code_files(package)}
    for module in ("serve/query.py", "publish/materialize.py", "pipeline/run.py", "filters.py",
                   "ingest/loader.py", "publish/snapshot.py", "engine/database.py"):  # fmt: skip
        assert module in counted
    assert not {m for m in counted if m.split("/")[0] in ("cli", "api", "generate")}
    assert {"events.py", "faults.py", "interrupts.py"}.isdisjoint(counted)
