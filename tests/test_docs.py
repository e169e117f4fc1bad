"""The README shows every command with its current help, and the make targets it promises."""

from __future__ import annotations

from pathlib import Path

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


def test_readme_first_screen_has_the_two_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:20])
    assert "make run" in first_screen and "make test" in first_screen
