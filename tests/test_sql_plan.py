"""How the SQL files group for the ledger and backfills: per file, all files, as-of date."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scenario_analytics.engine.sql_files import load_sql_files, plan_sql_files
from scenario_analytics.errors import AnalyticsError


def test_the_real_folder() -> None:
    files = load_sql_files()
    plan = plan_sql_files(files)
    assert plan.all == files
    per_file = [f.name for f in plan.per_file]
    assert per_file == ["0010_validate_sessions.sql", "0020_validate_entities.sql"]
    assert [t for f in plan.per_file for t in f.creates] == [
        "staged_sessions",
        "staged_members",
        "staged_scenarios",
        "staged_groups",
        "staged_group_memberships",
    ]
    # Nothing before the as-of part binds the as-of date; the as-of part starts with a
    # file that does, and the summarize phase comes last.
    assert all("as_of_end" not in f.parameters for f in plan.per_file + plan.all_files)
    assert plan.as_of and "as_of_end" in plan.as_of[0].parameters
    assert {f.phase for f in plan.summarize} == {"summarize"}
    assert "sessions" in [t for f in plan.all_files for t in f.creates]
    # What does not depend on the date is computed once per backfill, before the as-of part.
    once = {t for f in plan.all_files for t in f.creates}
    assert {"user_directory", "scenario_directory", "graded_history", "sessions_per_day"} <= once
    assert plan.as_of[0].name == "0080_users.sql"
    # run and backfill drop `sessions` before the as-of part (pipeline.release_sessions).
    for sql_file in plan.as_of + plan.summarize:
        code = "\n".join(
            line for line in sql_file.text.splitlines() if not line.lstrip().startswith("--")
        )
        assert not re.search(r"\b(FROM|JOIN)\s+sessions\b", code, re.IGNORECASE), sql_file.name


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        phase = "summarize" if name >= "0040" else "build"
        (tmp_path / name).write_text(
            f"-- Purpose: test.\n-- Grain: one row.\n-- Phase: {phase}\n{body}", encoding="utf-8"
        )
    return tmp_path


def test_per_file_sql_must_come_first(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        {
            "0010_a.sql": "SELECT 1;\n",
            "0020_b.sql": "-- Scope: per-file\nSELECT 1;\n",
            "0030_c.sql": "SELECT 1;\n",
        },
    )
    with pytest.raises(AnalyticsError, match="must come first"):
        plan_sql_files(load_sql_files(folder))


def test_per_file_sql_takes_no_parameters(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"0010_a.sql": "-- Scope: per-file\nSELECT $as_of_end;\n"})
    with pytest.raises(AnalyticsError, match="must not use parameters"):
        plan_sql_files(load_sql_files(folder))


def test_groups_of_a_small_folder(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        {
            "0010_a.sql": "-- Scope: per-file\nCREATE OR REPLACE TABLE a AS SELECT 1;\n",
            "0020_b.sql": "CREATE TABLE b AS SELECT 1;\n",
            "0030_c.sql": "-- uses $as_of_end in a comment only\nSELECT $as_of_end;\n",
            "0040_d.sql": "SELECT 1;\n",
        },
    )
    plan = plan_sql_files(load_sql_files(folder))
    names = [[f.number for f in group] for group in (plan.per_file, plan.all_files, plan.as_of)]
    assert names == [[10], [20], [30]]
    assert [f.number for f in plan.summarize] == [40]
    assert plan.per_file[0].creates == ["a"] and plan.all_files[0].creates == ["b"]
