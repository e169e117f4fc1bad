"""The README shows every command with its current help, and the make targets it promises."""

from __future__ import annotations

import os
import re
import shlex
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


# -- docs/DATA_DICTIONARY.md and the names the docs give ------------------------------------

DOCS = Path(__file__).parents[1] / "docs"
RANKS = ("gold", "silver", "bronze", "unranked")


def _dictionary_columns(table: str) -> dict[str, str]:
    """A table's `| column | type | meaning |` rows in the data dictionary, by column."""
    text = (DOCS / "DATA_DICTIONARY.md").read_text(encoding="utf-8")
    section = text.split(f"## `{table}.parquet`", 1)[1].split("\n## ", 1)[0]
    found: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`(\w+)`", cells[0])
        if "…" in cells[0]:  # `gold_count` … `unranked_count`: one per rank
            suffix = names[0].removeprefix("gold")
            names = [rank + suffix for rank in RANKS]
        kinds = [k.strip() for k in re.split(r",\s*(?![^()]*\))", cells[1])]
        for n, name in enumerate(names):
            found[name] = kinds[n] if len(kinds) == len(names) else kinds[0]
    return found


@pytest.fixture(scope="module")
def sample_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datetime import date

    from scenario_analytics.pipeline.run import RunOptions, run

    store = tmp_path_factory.mktemp("dictionary") / "store"
    sample = Path(__file__).parents[1] / "data" / "sample"
    skips = frozenset({"stale_exports"})
    options = RunOptions(exports=sample, snapshots=store, as_of=date(2026, 11, 26),
                         max_reject_ratio=0.05, skip_checks=skips)  # fmt: skip
    return Path(run(options).path)


@pytest.mark.parametrize("table", ["summaries", "participants"])
def test_the_data_dictionary_gives_each_column_its_type(sample_snapshot: Path, table: str) -> None:
    """Every column of the table is in the dictionary with its exact DuckDB type (issue
    #28: `participants.lift` was documented as DECIMAL)."""
    import duckdb

    path = sample_snapshot / f"{table}.parquet"
    actual = {
        str(name): str(kind)
        for name, kind, *_ in duckdb.sql(
            f"DESCRIBE SELECT * FROM read_parquet('{path}', hive_partitioning = false)"
        ).fetchall()
    }
    assert _dictionary_columns(table) == actual


def test_every_python_name_the_docs_give_exists() -> None:
    """`scenario_analytics.x.y` in README and docs/ names a module or an attribute that is
    there (issue #28: `scenario_analytics.requests.parse_request` was not)."""
    import importlib

    texts = [README, *(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))]
    names = sorted(
        {m for text in texts for m in re.findall(r"\bscenario_analytics(?:\.\w+)+", text)}
    )
    assert names
    missing = []
    for name in names:
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                found: object = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attribute in parts[cut:]:
                    found = getattr(found, attribute)
            except AttributeError:
                missing.append(name)
            break
        else:
            missing.append(name)
    assert missing == []


def _dictionary_blocks(lang: str) -> list[str]:
    """The data dictionary's history recipes of one language, in order."""
    text = (DOCS / "DATA_DICTIONARY.md").read_text(encoding="utf-8")
    section = text.split("The history of a table across all snapshots", 1)[1].split(
        "\nTimestamps", 1
    )[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.DOTALL)


@pytest.mark.slow
def test_the_warehouse_recipes_read_the_same_history(tmp_path: Path) -> None:
    """docs/DATA_DICTIONARY.md's DuckDB, pyarrow and Polars reads of a table across
    snapshots, run as written on a store of two snapshots, give the same rows, with the
    snapshot's date as a date (issue #28: pyarrow pointed at the root tripped on
    latest.json)."""
    from datetime import date

    import duckdb

    from scenario_analytics.pipeline.backfill import BackfillOptions, backfill

    store = tmp_path / "store"
    sample = Path(__file__).parents[1] / "data" / "sample"
    backfill(BackfillOptions(exports=sample, snapshots=store, start=date(2026, 11, 25),
                             end=date(2026, 11, 26), max_reject_ratio=0.05,
                             skip_checks=frozenset({"stale_exports"})))  # fmt: skip
    (sql,) = _dictionary_blocks("sql")
    rows = duckdb.sql(sql.replace("DIR", str(store))).fetchall()
    expected = sorted((str(d), s, int(n)) for d, s, n in rows)
    assert {d for d, _, _ in expected} == {"2026-11-25", "2026-11-26"}
    arrow_block, polars_block = _dictionary_blocks("python")
    namespace: dict[str, object] = {}
    exec(arrow_block.replace("DIR", str(store)), namespace)  # noqa: S102 (the documented code)
    table = namespace["table"].to_pylist()  # type: ignore[attr-defined]
    assert sorted((str(r["snapshot_date"]), r["scenario_id"], r["participant_count"])
                  for r in table) == expected  # fmt: skip
    exec(polars_block.replace("DIR", str(store)), namespace)  # noqa: S102
    frame = namespace["frame"].rows()  # type: ignore[attr-defined]
    assert sorted((str(d), s, int(n)) for d, s, n in frame) == expected
    assert str(namespace["frame"].schema["snapshot_date"]) == "Date"  # type: ignore[attr-defined]


def _normalized(lines: list[str]) -> list[str]:
    """Lines without what changes from run to run: seconds, and the order of the slowest
    tables (by their time)."""
    out = []
    for line in lines:
        line = re.sub(r"\d+\.\d+s\b", "N.Ns", line)
        out.append(re.sub(r"\(slowest: [^)]*\)", "(slowest: …)", line))
    return out


@pytest.mark.slow
def test_the_make_run_transcript_is_a_fresh_clone_s(tmp_path: Path) -> None:
    """README's `make run` transcript is what its two commands print on a fresh clone (the
    first run: every file parsed), timings aside (issue #28: it was a second run's)."""
    start = README.index("$ make run\n")
    block = README[start : README.index("\nServe both endpoints over HTTP", start)]
    shown = block.splitlines()[1:]
    commands = [line for line in shown if line.startswith(".venv/bin/scenario-analytics ")]
    assert len(commands) == 2
    root = Path(__file__).parents[1]
    shutil.copytree(root / "data" / "sample", tmp_path / "data" / "sample")
    shutil.copytree(root / "jobs", tmp_path / "jobs")
    # As a user's shell has it: none of the tests' SCENARIO_ANALYTICS_* settings.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIO_ANALYTICS_")}
    printed: list[str] = []
    for command in commands:
        words = command.split()[1:]
        done = subprocess.run([sys.executable, "-m", "scenario_analytics", *words],
                              cwd=tmp_path, capture_output=True, text=True, env=clean)  # fmt: skip
        assert done.returncode == 0, done.stderr
        printed += [command, *done.stderr.splitlines(), *done.stdout.splitlines()]
    assert _normalized(printed) == _normalized(shown)


@pytest.mark.slow
def test_every_command_the_readme_shows_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's `$ .venv/bin/scenario-analytics …` commands, in the README's order, on a
    fresh layout of the repository after `make run`'s commands: each exits as its
    transcript shows (non-zero where an `error:` line follows it), and the answers it
    prints as JSON (`query`) or as a report (`diff`) are the README's, byte for byte.
    (`serve … &` and `curl` are `tests/test_serve_api.py`'s.)"""
    root = Path(__file__).parents[1]
    shutil.copytree(root / "data" / "sample", tmp_path / "data" / "sample")
    shutil.copytree(root / "jobs", tmp_path / "jobs")
    monkeypatch.chdir(tmp_path)
    clean: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith("SCENARIO_ANALYTICS_")
    }
    runner = CliRunner()
    start = README.index("$ make run\n")
    setup = README[start : README.index("\nServe both endpoints over HTTP", start)]
    for line in setup.splitlines():
        if line.startswith(".venv/bin/scenario-analytics "):
            assert runner.invoke(main, shlex.split(line)[1:], env=clean).exit_code == 0
    lines = README[start:].splitlines()
    ran = 0
    for n, line in enumerate(lines):
        if not line.startswith("$ .venv/bin/scenario-analytics ") or line.endswith("&"):
            continue
        shown: list[str] = []
        for following in lines[n + 1 :]:
            if following.startswith(("$ ", "```")):
                break
            shown.append(following)
        result = runner.invoke(main, shlex.split(line)[2:], env=clean)
        failed = any(s.startswith("scenario-analytics: error:") for s in shown)
        assert (result.exit_code != 0) == failed, (line, result.stderr)
        words = shlex.split(line)[2:]
        if words[0] in ("query", "diff"):
            printed = result.stdout.splitlines()
            assert printed == [s for s in shown if not s.startswith("scenario-analytics: ")], line
        ran += 1
    assert ran >= 9
