"""The SQL files of `sql/`: numbered without gaps, documented, and free of string formatting."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from scenario_analytics.engine.database import connect
from scenario_analytics.engine.sql_files import (
    SqlFile,
    default_sql_dir,
    load_sql_files,
    run_sql_files,
)
from scenario_analytics.errors import AnalyticsError

SQL_DIR = default_sql_dir()
SQL_PATHS = sorted(SQL_DIR.glob("*.sql"))
# Parameters the job binds (sql_files.run_sql_files refuses any other).
KNOWN_PARAMETERS = {"as_of_end"}

_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_COMMENT = re.compile(r"--[^\n]*")
# A regular-expression quantifier such as {4} or {2,3}: allowed inside string literals.
_QUANTIFIER = re.compile(r"\{\d+(?:,\d*)?\}")


def header(text: str) -> list[str]:
    """The comment lines the file opens with."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line)
    return lines


def test_real_folder_loads_in_order() -> None:
    files = load_sql_files()
    assert [f.number for f in files] == [10 * (i + 1) for i in range(len(files))]
    assert [f.path for f in files] == SQL_PATHS
    phases = [f.phase for f in files]
    assert phases == sorted(phases)
    assert {"build", "summarize"} == set(phases)
    for f in files:
        assert f.statements(), f.name


def make_folder(tmp_path: Path, names: list[str]) -> Path:
    for name in names:
        phase = "summarize" if name >= "0110" else "build"
        (tmp_path / name).write_text(
            f"-- Purpose: test.\n-- Grain: one row.\n-- Phase: {phase}\nSELECT 1;\n",
            encoding="utf-8",
        )
    return tmp_path


def test_a_tidy_folder_loads(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, ["0010_a.sql", "0020_b.sql", "0030_c.sql"])
    assert [f.number for f in load_sql_files(folder)] == [10, 20, 30]


@pytest.mark.parametrize(
    ("names", "why"),
    [
        (["0010_a.sql", "0030_c.sql"], "gap"),
        (["0010_a.sql", "0020_b.sql", "0020_c.sql", "0030_d.sql"], "duplicate"),
        (["0010_a.sql", "0010_b.sql"], "duplicate"),
        (["0020_b.sql", "0030_c.sql"], "does not start at 0010"),
        (["0010_a.sql", "0015_b.sql", "0020_c.sql"], "not a multiple of ten"),
        (["0010_a.sql", "20_b.sql"], "badly named"),
    ],
)
def test_gaps_and_duplicates_are_refused(tmp_path: Path, names: list[str], why: str) -> None:
    folder = make_folder(tmp_path, names)
    with pytest.raises(AnalyticsError):
        load_sql_files(folder)


def test_a_copy_of_the_real_folder_with_a_gap_is_refused(tmp_path: Path) -> None:
    for path in SQL_PATHS:
        if not path.name.startswith("0030_"):
            (tmp_path / path.name).write_bytes(path.read_bytes())
    with pytest.raises(AnalyticsError, match="0020, 0040"):
        load_sql_files(tmp_path)


def test_a_file_without_phase_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0010_a.sql").write_text("-- Purpose: x\n-- Grain: y\nSELECT 1;\n")
    with pytest.raises(AnalyticsError, match="Phase"):
        load_sql_files(tmp_path)


@pytest.mark.parametrize("path", SQL_PATHS, ids=lambda p: p.name)
def test_file_opens_with_purpose_and_grain(path: Path) -> None:
    lines = header(path.read_text(encoding="utf-8"))
    assert lines and lines[0].startswith("-- Purpose: "), "the first line states the purpose"
    grain = [line for line in lines if line.startswith("-- Grain: ")]
    assert len(grain) == 1, "the opening comment states the grain (one row per what)"
    assert len(grain[0]) > len("-- Grain: ") + 5
    assert any(re.match(r"^-- Phase: (build|summarize)$", line) for line in lines)


@pytest.mark.parametrize("path", SQL_PATHS, ids=lambda p: p.name)
def test_no_format_placeholders(path: Path) -> None:
    """Values come as bound `$name` parameters, never through str.format or f-strings."""
    text = path.read_text(encoding="utf-8")
    literals = _STRING_LITERAL.findall(_COMMENT.sub("", text))
    code = _STRING_LITERAL.sub("''", _COMMENT.sub("", text))
    assert "{" not in code and "}" not in code, "braces outside string literals"
    for literal in literals:
        # Inside literals only regular-expression quantifiers like {4} are allowed.
        rest = _QUANTIFIER.sub("", literal)
        assert "{" not in rest and "}" not in rest, f"brace in literal {literal}"
    # Belt and braces: str.format would find no named or positional field either.
    fields = [f for _text, f, _spec, _conv in string.Formatter().parse(code) if f is not None]
    assert fields == []


@pytest.mark.parametrize("path", SQL_PATHS, ids=lambda p: p.name)
def test_parameters_are_bound_and_known(path: Path) -> None:
    text = _STRING_LITERAL.sub("''", _COMMENT.sub("", path.read_text(encoding="utf-8")))
    assert "?" not in text, "use named $parameters, not positional ones"
    names = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", text))
    assert names <= KNOWN_PARAMETERS
    assert not re.search(r"%\(?\w*\)?s", text), "no %-formatting"


def test_summarize_phase_needs_no_parameters() -> None:
    """The query command reruns the summarize phase on a snapshot with no parameters."""
    summarize: list[SqlFile] = [f for f in load_sql_files() if f.phase == "summarize"]
    assert summarize
    for sql_file in summarize:
        assert "$" not in _STRING_LITERAL.sub("''", _COMMENT.sub("", sql_file.text)), sql_file.name


def test_order_kept_files_run_with_insertion_order_preserved(tmp_path: Path) -> None:
    """`-- Order: kept` turns DuckDB's insertion order on for that file only."""
    body = "CREATE TABLE {} AS SELECT current_setting('preserve_insertion_order') AS kept;\n"
    (tmp_path / "0010_a.sql").write_text(
        "-- Purpose: test.\n-- Grain: one row.\n-- Phase: build\n-- Order: kept (why)\n"
        + body.format("a")
    )
    (tmp_path / "0020_b.sql").write_text(
        "-- Purpose: test.\n-- Grain: one row.\n-- Phase: build\n" + body.format("b")
    )
    files = load_sql_files(tmp_path)
    assert [f.keeps_order for f in files] == [True, False]
    con = connect()
    run_sql_files(con, files, {})
    assert con.execute("SELECT (SELECT kept FROM a), (SELECT kept FROM b)").fetchall() == [
        (True, False)
    ]
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchall() == [
        (False,)
    ]
