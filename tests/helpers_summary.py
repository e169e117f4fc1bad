"""Helpers shared by the summary and query tests: tiny exports, pipeline runs, golden files.

Export files are written byte for byte the way a test means them: scores and durations
given as ``Decimal`` are written as JSON numbers with exactly their digits (``json``
cannot do that by itself), so a test of ``70.15`` is not a test of a float near it.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from conftest import FIXTURE_SKIPS

from scenario_analytics.pipeline.run import RunOptions, run
from scenario_analytics.serve.query import Answer, SnapshotQuery
from scenario_analytics.settings import EngineSettings, MaterializeSettings, SparkSettings

GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "golden"

# Golden files are the exact bytes of JSON bodies. They change only on purpose:
#     UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py
# rewrites them from the current output; review `git diff tests/data/golden` before
# committing. Without the variable a missing or different golden file fails the test.
UPDATE_GOLDEN_ENV = "UPDATE_GOLDEN"

# Field order of the response body (contract section 2).
BODY_FIELDS = [
    "participant_count",
    "total_sessions",
    "average_best_score",
    "average_best_rank",
    "average_lift_percentage",
    "total_practice_minutes",
    "average_session_duration_seconds",
    "score_distribution",
]

_DECIMAL_MARK = "\u0000decimal:"
_DECIMAL_STRING = re.compile(r'"\\u0000decimal:([-0-9.]+)"')


def updating_golden() -> bool:
    return os.environ.get(UPDATE_GOLDEN_ENV) == "1"


def assert_golden(name: str, text: str) -> None:
    """`text` must equal `tests/data/golden/<name>` byte for byte (see UPDATE_GOLDEN_ENV)."""
    path = GOLDEN_DIR / name
    data = text.encode("utf-8")
    if updating_golden():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.is_file(), f"golden file {path} is missing: run with {UPDATE_GOLDEN_ENV}=1"
    expected = path.read_bytes()
    assert data == expected, (
        f"output differs from golden file {path.name}\n"
        f"  got:      {data.decode('utf-8')}\n  expected: {expected.decode('utf-8')}\n"
        f"(if the change is intended, rerun with {UPDATE_GOLDEN_ENV}=1 and review the diff)"
    )


def loads(text: str) -> Any:
    """JSON with exact decimals, so that 74.2 is Decimal('74.2') and 40 == 40.0."""
    return json.loads(text, parse_float=Decimal)


# --- writing exports -------------------------------------------------------------------


def _mark_decimals(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{_DECIMAL_MARK}{value:f}"
    if isinstance(value, Mapping):
        return {k: _mark_decimals(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mark_decimals(v) for v in value]
    return value


def json_text(record: Any) -> str:
    """JSON text in which every Decimal is a number written with exactly its digits."""
    text = json.dumps(_mark_decimals(record), ensure_ascii=False)
    return _DECIMAL_STRING.sub(lambda m: m.group(1), text)


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json_text(r) + "\n" for r in records]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Flat CSV; None is an empty field, booleans are `true`/`false`, Decimals exact."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, Decimal):
            return f"{value:f}"
        return str(value)

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([text(row.get(c)) for c in columns])
    return path


SESSION_CSV_COLUMNS = (
    "id",
    "user_id",
    "user_email",
    "user_first_name",
    "user_last_name",
    "scenario_id",
    "scenario_slug",
    "scenario_name",
    "score",
    "duration_seconds",
    "is_valid_attempt",
    "created_at",
)


def session_record(
    id: str,
    user: str,
    score: Decimal | str | int | None,
    created_at: str,
    *,
    scenario: str = "sc1",
    slug: str | None = None,
    name: str | None = None,
    duration: Decimal | str | int | None = None,
    valid: bool = True,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> dict[str, Any]:
    """A session as the API returns it (nested `user` and `scenario`)."""
    user_part: dict[str, Any] = {"id": user}
    for key, value in (("email", email), ("first_name", first_name), ("last_name", last_name)):
        if value is not None:
            user_part[key] = value
    scenario_part: dict[str, Any] = {"id": scenario}
    if slug is not None:
        scenario_part["slug"] = slug
    if name is not None:
        scenario_part["name"] = name
    record: dict[str, Any] = {"id": id, "user": user_part, "scenario": scenario_part}
    record["score"] = _number(score)
    record["duration_seconds"] = _number(duration)
    record["is_valid_attempt"] = valid
    record["created_at"] = created_at
    return record


def _number(value: Decimal | str | int | None) -> Decimal | int | None:
    if value is None or isinstance(value, int | Decimal):
        return value
    return Decimal(value)


def flat_session(record: Mapping[str, Any]) -> dict[str, Any]:
    """The CSV (flat) form of a nested session record."""
    user = record.get("user", {})
    scenario = record.get("scenario", {})
    return {
        "id": record.get("id"),
        "user_id": user.get("id"),
        "user_email": user.get("email"),
        "user_first_name": user.get("first_name"),
        "user_last_name": user.get("last_name"),
        "scenario_id": scenario.get("id"),
        "scenario_slug": scenario.get("slug"),
        "scenario_name": scenario.get("name"),
        "score": record.get("score"),
        "duration_seconds": record.get("duration_seconds"),
        "is_valid_attempt": record.get("is_valid_attempt"),
        "created_at": record.get("created_at"),
    }


def write_exports(
    root: Path,
    sessions: Sequence[Mapping[str, Any]],
    *,
    scenarios: Sequence[Mapping[str, Any]] = (),
    members: Sequence[Mapping[str, Any]] = (),
    groups: Sequence[Mapping[str, Any]] = (),
    memberships: Sequence[tuple[str, str]] = (),
) -> Path:
    """An exports folder with JSON Lines files for each entity that has records."""
    write_jsonl(root / "sessions" / "part-0001.jsonl", sessions)
    if scenarios:
        write_jsonl(root / "scenarios.jsonl", scenarios)
    if members:
        write_jsonl(root / "members.jsonl", members)
    if groups:
        write_jsonl(root / "groups.jsonl", groups)
    if memberships:
        write_jsonl(
            root / "group_memberships.jsonl",
            [{"group_id": g, "user_id": u} for g, u in memberships],
        )
    return root


# --- running and querying --------------------------------------------------------------


def run_snapshot(
    exports: Path,
    snapshots: Path,
    as_of: date,
    materialize: MaterializeSettings | None = None,
    max_reject_ratio: float = 0.01,
    engine: str = "duckdb",
) -> Path:
    """Run the job into `snapshots` on `engine` (ENGINES); returns the snapshot folder
    (`snapshot_date=D`: its tables, manifest and summary.json files; the session
    partitions are the store's, `helpers_ops.snapshot_files` has them too)."""
    options = RunOptions(
        exports=exports,
        snapshots=snapshots,
        as_of=as_of,
        max_reject_ratio=max_reject_ratio,
        materialize=materialize or MaterializeSettings(),
        skip_checks=FIXTURE_SKIPS,
        engine=ENGINES[engine],
    )
    return Path(run(options).path)  # a local store: the path as printed


# The engines the job runs on. Spark runs locally on two cores; every test of the run
# shares one Spark session (the first run starts it, later ones find it).
ENGINES = {
    "duckdb": EngineSettings(),
    "spark": EngineSettings(
        name="spark",
        spark=SparkSettings(
            master="local[2]",
            # Tiny data: one shuffle partition, and no code generation or adaptive
            # re-planning, which cost more than they save on a few thousand rows (a run of
            # the sample: ~11 s with them, ~9 s without).
            conf={
                "spark.sql.shuffle.partitions": "1",
                "spark.default.parallelism": "2",
                "spark.sql.codegen.wholeStage": "false",
                "spark.sql.adaptive.enabled": "false",
                # Short runs: the JIT's optimizing compiler costs more than it saves.
                "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
            },
        ),
    ),
}


def ask(snapshots: Path, scenario: str, params: Mapping[str, object] | None = None) -> Answer:
    reader = SnapshotQuery(snapshots)
    try:
        return reader.answer(scenario, params or {})
    finally:
        reader.close()


def summary_json_path(snapshot: Path, encoded_scenario_id: str) -> Path:
    return snapshot / "api" / "scenarios" / encoded_scenario_id / "analytics" / "summary.json"


def empty_body() -> dict[str, Any]:
    """The body of a summary with no participants (contract section 2)."""
    return {
        "participant_count": 0,
        "total_sessions": 0,
        "average_best_score": 0,
        "average_best_rank": "unranked",
        "average_lift_percentage": 0,
        "total_practice_minutes": 0,
        "average_session_duration_seconds": 0,
        "score_distribution": [
            {"rank": r, "count": 0, "percentage": 0}
            for r in ("gold", "silver", "bronze", "unranked")
        ],
    }
