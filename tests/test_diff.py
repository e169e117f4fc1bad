"""`diff`: what changed between two snapshots, checked against their summaries.parquet."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import FIXTURE_SKIPS, session, write_exports
from helpers_ops import base_exports, cli

from scenario_analytics import SnapshotDiff, diff_snapshots
from scenario_analytics.errors import ExitCode

DAY = "2026-11-26"
EARLIER = "2026-11-25"
# A module-scoped fixture runs before conftest's autouse one: pass its skip explicitly.
ENV = {"SCENARIO_ANALYTICS_SKIP_CHECK": " ".join(sorted(FIXTURE_SKIPS))}
# Sessions that arrived late, for earlier days: a new participant of sc1 and a new scenario.
LATE = [
    session(
        "late1",
        user={"id": "u5", "email": "u5@acme.com"},
        score=95,
        duration_seconds=600,
        created_at="2026-11-21T10:00:00Z",
    ),
    session(
        "late2",
        scenario={"id": "sc3", "slug": "three", "name": "Three"},
        score=64.25,
        created_at="2026-11-22T10:00:00Z",
    ),
]
RANKS = ("gold", "silver", "bronze", "unranked")


def _run(exports: Path, store: Path, day: str) -> Path:
    result = cli(
        "run", "--exports", str(exports), "--snapshots", str(store), "--as-of", day,
        "--max-reject-ratio", "0.5", env=ENV,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return store / f"snapshot_date={day}"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`base`: EARLIER and DAY from the base exports; `same`: DAY again from a copy of
    them in another store; `late`: DAY from the base exports plus the late file."""
    root = tmp_path_factory.mktemp("diff")
    base = base_exports(root / "exports-base")
    same = base_exports(root / "exports-same")
    late = write_exports(base_exports(root / "exports-late"), {"sessions/late.jsonl": LATE})
    _run(base, root / "base", EARLIER)
    _run(base, root / "base", DAY)
    _run(same, root / "same", DAY)
    _run(late, root / "late", DAY)
    return {"base": root / "base", "same": root / "same", "late": root / "late"}


def _folder(store: Path, day: str = DAY) -> str:
    return str(store / f"snapshot_date={day}")


def _diff_json(*args: str) -> dict[str, Any]:
    result = cli("diff", *args, "--json")
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout, parse_float=Decimal)
    return document


def _exact(value: object) -> object:
    """Decimals by their digits: Decimal('72.4') == Decimal('72.40'), their texts differ."""
    return str(value) if isinstance(value, Decimal) else value


def _figures(folder: str) -> dict[tuple[str, str], dict[str, object]]:
    """Each summary's figures, read from its body as the API client sees them."""
    rows = duckdb.sql(
        "SELECT scenario_id, request_key, body FROM read_parquet($p, hive_partitioning = false)",
        params={"p": f"{folder}/summaries.parquet"},
    ).fetchall()
    figures = {}
    for scenario_id, key, body in rows:
        data = json.loads(body, parse_float=Decimal)
        flat = {k: _exact(v) for k, v in data.items() if k != "score_distribution"}
        for entry in data["score_distribution"]:
            flat[f"{entry['rank']}_count"] = entry["count"]
            flat[f"{entry['rank']}_percentage"] = _exact(entry["percentage"])
        figures[(scenario_id, key)] = flat
    return figures


def _expected_changes(a: str, b: str) -> set[tuple[str, str, str, object, object]]:
    before, after = _figures(a), _figures(b)
    return {
        (scenario_id, key, name, value, after[(scenario_id, key)][name])
        for (scenario_id, key), figures in before.items()
        if (scenario_id, key) in after
        for name, value in figures.items()
        if after[(scenario_id, key)][name] != value
    }


# -- identical snapshots ----------------------------------------------------------------------


def test_two_stores_built_from_the_same_exports_are_identical(stores: dict[str, Path]) -> None:
    a, b = _folder(stores["base"]), _folder(stores["same"])
    result = cli("diff", a, b, "--exit-code")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"A  {DAY}  {a}",
        f"B  {DAY}  {b}",
        f"no differences: 2 scenarios and {len(_figures(a))} summaries, every figure the same",
    ]
    document = _diff_json(a, b)
    assert document["identical"] is True
    assert document["changed_figures"] == 0 and document["changes"] == []
    assert document["summaries"] == {
        "added": 0,
        "removed": 0,
        "changed": 0,
        "unchanged": len(_figures(a)),
    }


def test_a_date_against_itself(stores: dict[str, Path]) -> None:
    result = cli("diff", "--snapshots", str(stores["base"]), DAY, DAY, "--exit-code")
    assert result.exit_code == 0, result.stderr
    assert "no differences" in result.stdout


# -- a late file ------------------------------------------------------------------------------


def test_a_late_file_lists_exactly_the_figures_that_changed(stores: dict[str, Path]) -> None:
    a, b = _folder(stores["base"]), _folder(stores["late"])
    expected = _expected_changes(a, b)
    # The late participant of sc1 shows in its unfiltered summary, among others.
    assert ("sc1", "", "participant_count", 3, 4) in expected
    assert any(c[2] == "average_best_score" for c in expected)
    document = _diff_json(a, b)
    got = {
        (c["scenario_id"], c["request_key"], c["figure"], _exact(c["before"]), _exact(c["after"]))
        for c in document["changes"]
    }
    assert got == expected
    assert document["changed_figures"] == len(document["changes"]) == len(expected)
    changed_summaries = {(c[0], c[1]) for c in expected}
    assert document["summaries"]["changed"] == len(changed_summaries)
    # The summary lists them in the body's order, the decimals as the bodies print them.
    result = cli("diff", a, b, "--limit", "100000")
    assert result.exit_code == 0, result.stderr
    labels = {"sc1": "scenario-one", "sc2": "two", "sc3": "three"}
    lines = {
        f"{labels[s]}  {k or '(unfiltered)'}  {name}  {old} -> {new}"
        for s, k, name, old, new in expected
    }
    listed = [line for line in result.stdout.splitlines() if " -> " in line]
    assert set(listed) == lines and len(listed) == len(lines)
    assert "scenario-one  (unfiltered)  participant_count  3 -> 4" in listed
    assert "more changed figures" not in result.stdout


def test_the_summary_lists_the_first_changes_and_counts_the_rest(stores: dict[str, Path]) -> None:
    a, b = _folder(stores["base"]), _folder(stores["late"])
    total = len(_expected_changes(a, b))
    result = cli("diff", a, b, "--limit", "2")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2:5] == [
        "scenarios  1 added, 0 removed, 1 changed, 1 unchanged",
        f"summaries  {len(_figures(b)) - len(_figures(a))} added, 0 removed, "
        f"{len({c[:2] for c in _expected_changes(a, b)})} changed, "
        f"{len(_figures(a)) - len({c[:2] for c in _expected_changes(a, b)})} unchanged",
        f"figures    {total} changed",
    ]
    assert sum(" -> " in line for line in lines) == 2
    assert lines[-1] == f"... {total - 2} more changed figures (--limit N shows more, --json all)"


def test_differences_exit_1_only_with_exit_code(stores: dict[str, Path]) -> None:
    a, b = _folder(stores["base"]), _folder(stores["late"])
    assert cli("diff", a, b).exit_code == 0
    assert cli("diff", a, b, "--exit-code").exit_code == 1
    assert cli("diff", a, b, "--exit-code", "--json").exit_code == 1


# -- scenarios and summaries added or removed -------------------------------------------------


def test_scenarios_added_and_removed(stores: dict[str, Path]) -> None:
    a, b = _folder(stores["base"]), _folder(stores["late"])
    sc3_keys = sorted(key for scenario_id, key in _figures(b) if scenario_id == "sc3")
    forward = _diff_json(a, b)
    assert forward["scenarios_added"] == [{"scenario_id": "sc3", "slug": "three", "name": "Three"}]
    assert forward["scenarios_removed"] == []
    assert [s["request_key"] for s in forward["summaries_added"]] == sc3_keys
    assert {s["scenario_id"] for s in forward["summaries_added"]} == {"sc3"}
    backward = _diff_json(b, a)
    assert backward["scenarios_removed"] == forward["scenarios_added"]
    assert backward["summaries_removed"] == forward["summaries_added"]
    assert backward["scenarios"] == {"added": 0, "removed": 1, "changed": 1, "unchanged": 1}
    text = cli("diff", b, a).stdout
    assert "scenario removed  three  (sc3)" in text.splitlines()
    assert "(--json lists the summaries added and removed)" in text


def test_summaries_of_other_dates_are_added_and_removed(stores: dict[str, Path]) -> None:
    """The last-N-days summaries' keys name their dates: a day later, they are new ones."""
    document = _diff_json("--snapshots", str(stores["base"]), EARLIER, DAY)
    windowed = [s for s in document["summaries_added"] if "end_date=" in s["request_key"]]
    assert windowed and len(windowed) == len(document["summaries_added"])
    assert all(f"end_date={DAY}T23:59:59.999999Z" in s["request_key"] for s in windowed)
    assert len(document["summaries_removed"]) == len(windowed)


# -- the JSON document ------------------------------------------------------------------------


def test_json_document(stores: dict[str, Path]) -> None:
    a, b = _folder(stores["base"]), _folder(stores["late"])
    document = _diff_json(a, b)
    assert list(document) == [
        "before",
        "after",
        "identical",
        "scenarios",
        "summaries",
        "changed_figures",
        "scenarios_added",
        "scenarios_removed",
        "summaries_added",
        "summaries_removed",
        "changes",
    ]
    assert document["before"] == {"snapshot_date": DAY, "path": a}
    assert document["after"] == {"snapshot_date": DAY, "path": b}
    assert document["identical"] is False
    summaries = document["summaries"]
    assert summaries["removed"] + summaries["changed"] + summaries["unchanged"] == len(_figures(a))
    assert summaries["added"] + summaries["changed"] + summaries["unchanged"] == len(_figures(b))
    change = next(c for c in document["changes"] if c["figure"] == "average_best_score")
    assert set(change) == {"scenario_id", "slug", "request_key", "figure", "before", "after"}
    assert isinstance(change["before"], Decimal)  # a JSON number, not a string
    ranks = [c for c in document["changes"] if c["figure"] == "average_best_rank"]
    assert all(isinstance(c["after"], str) for c in ranks)
    # Every decimal is written as the bodies write it: one decimal place, no float noise.
    result = cli("diff", a, b, "--json")
    assert "000000" not in result.stdout.replace("000000Z", "")


def test_a_body_that_differs_with_the_same_figures(stores: dict[str, Path], tmp_path: Path) -> None:
    """A change of how the body is written, not of a figure, is still a difference."""
    a = _folder(stores["base"])
    copy = tmp_path / "reformatted"
    shutil.copytree(Path(a).resolve(), copy)
    duckdb.sql(
        f"""COPY (SELECT * REPLACE (replace(body, ':', ': ') AS body)
                  FROM read_parquet('{a}/summaries.parquet', hive_partitioning = false))
            TO '{copy}/summaries.parquet' (FORMAT parquet)"""
    )
    document = _diff_json(a, str(copy))
    assert document["changed_figures"] == len(_figures(a))
    assert {c["figure"] for c in document["changes"]} == {"body"}
    assert cli("diff", a, str(copy), "--exit-code").exit_code == 1


# -- naming the snapshots ---------------------------------------------------------------------


def test_b_defaults_to_the_date_latest_json_names(stores: dict[str, Path]) -> None:
    store = str(stores["base"])
    defaulted = _diff_json("--snapshots", store, EARLIER)
    explicit = _diff_json("--snapshots", store, EARLIER, DAY)
    assert defaulted["after"] == {"snapshot_date": DAY, "path": _folder(stores["base"])}
    assert defaulted == explicit
    assert defaulted["identical"] is False


def test_two_folders_or_a_date_and_a_folder(stores: dict[str, Path]) -> None:
    store = stores["base"]
    by_folders = _diff_json(_folder(store, EARLIER), _folder(stores["late"]))
    mixed = _diff_json("--snapshots", str(store), EARLIER, _folder(stores["late"]))
    assert by_folders == mixed
    assert by_folders["before"]["snapshot_date"] == EARLIER
    # The library, as a scheduler would call it.
    diff = diff_snapshots(Path(_folder(store, EARLIER)), Path(_folder(stores["late"])), limit=3)
    assert isinstance(diff, SnapshotDiff)
    assert diff.changed_figures == by_folders["changed_figures"]
    assert [c.as_json() for c in diff.changes] == by_folders["changes"][:3]
    assert len(diff.summaries_added) == 3 < diff.summaries.added


def test_a_missing_snapshot_exits_3(stores: dict[str, Path], tmp_path: Path) -> None:
    store = str(stores["base"])
    result = cli("diff", "--snapshots", store, "2026-11-01")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stdout == ""
    assert f"error: no snapshot for 2026-11-01 in {store} — " in result.stderr
    missing = tmp_path / "nowhere" / "snapshot_date=2026-11-26"
    result = cli("diff", _folder(stores["base"]), str(missing))
    assert result.exit_code == ExitCode.NOT_FOUND
    assert f"error: no snapshot folder at {missing} — " in result.stderr
    result = cli("diff", store, _folder(stores["base"]))  # a store is not a snapshot folder
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "is not a snapshot folder" in result.stderr
    result = cli("diff", "--snapshots", str(tmp_path / "no-store"), DAY)
    assert result.exit_code == ExitCode.NOT_FOUND
    empty = tmp_path / "empty-store"
    empty.mkdir()
    result = cli("diff", "--snapshots", str(empty), DAY)
    assert result.exit_code == ExitCode.NOT_FOUND


def test_bad_usage_exits_2(stores: dict[str, Path]) -> None:
    assert cli("diff").exit_code == ExitCode.USAGE
    result = cli("diff", "--snapshots", str(stores["base"]), "2026-02-30")
    assert result.exit_code == ExitCode.USAGE
    assert "'2026-02-30' is not a date" in result.stderr
    result = cli("diff", DAY)  # a date, but no store to find it in
    assert result.exit_code == ExitCode.USAGE
    assert "needs a store" in result.stderr
    result = cli("diff", _folder(stores["base"]))  # no B, and no store for latest.json
    assert result.exit_code == ExitCode.USAGE
    assert cli("diff", "--snapshots", str(stores["base"]), DAY, "--limit", "-1").exit_code == 2
