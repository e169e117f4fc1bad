"""The README shows every command with its current help, and the make targets it promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from scenario_analytics.cli import main

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", sorted(main.commands))  # type: ignore[attr-defined]
def test_readme_shows_each_command_with_its_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"], prog_name="scenario-analytics")
    assert result.exit_code == 0
    assert f"### `scenario-analytics {command}`" in README
    assert result.stdout.rstrip() in README, (
        f"README's help for `{command}` is out of date: paste `scenario-analytics "
        f"{command} --help` into it"
    )


def _subcommands() -> list[tuple[str, str]]:
    return sorted(
        (name, sub)
        for name, command in main.commands.items()  # type: ignore[attr-defined]
        if isinstance(command, click.Group)
        for sub in command.commands
    )


@pytest.mark.parametrize(("command", "subcommand"), _subcommands())
def test_readme_shows_each_subcommand_with_its_help(command: str, subcommand: str) -> None:
    result = CliRunner().invoke(
        main, [command, subcommand, "--help"], prog_name="scenario-analytics"
    )
    assert result.exit_code == 0
    assert f"#### `scenario-analytics {command} {subcommand}`" in README
    assert result.stdout.rstrip() in README, (
        f"README's help for `{command} {subcommand}` is out of date: paste "
        f"`scenario-analytics {command} {subcommand} --help` into it"
    )


def test_readme_first_screen_has_the_two_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:20])
    assert "make run" in first_screen and "make test" in first_screen


def test_the_readme_library_example_runs(tmp_path: Path) -> None:
    """The README's Python example, run as written from a folder laid out like the repo."""
    root = Path(__file__).parents[1]
    (block,) = [b.split("\n", 1)[1] for b in README.split("```python")[1:]]
    code = block.split("```", 1)[0]
    shutil.copytree(root / "jobs", tmp_path / "jobs")
    shutil.copytree(root / "data" / "sample", tmp_path / "data" / "sample")
    (tmp_path / "requests.jsonl").write_text(
        '{"scenario_id": "procurement-discovery", "exclude_system_users": true}\n'
        '{"scenario_id": "no-such-scenario"}\n'
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("published ") for line in lines)
    assert str(Path("snapshots") / "snapshot_date=2026-11-26") in result.stdout
    assert lines[-1] == "user_emails=a%40x.com,b%40x.com"
    assert '"scenario_not_found"' in lines[-2]
