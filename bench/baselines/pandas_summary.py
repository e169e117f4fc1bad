"""Baseline: the unfiltered summary of every scenario, computed with pandas.

Same semantics as polars_summary.py (and the job's request key ''): duplicates resolved
(last file by path, then last row, wins), graded sessions up to the end of the as-of day,
per participant first/best score, lift, durations, then per scenario the figures of
CONTRACT.md section 2. Files are read with pyarrow (pandas' own Parquet engine) and the
nested `user`/`scenario` columns flattened before `to_pandas()`; timestamps are parsed by
`pd.to_datetime(format="ISO8601", utc=True)`. Scores and means are float64, rounded half
away from zero on the float value (a decimal tie can land one tenth off).

    .venv/bin/python -m bench.baselines.pandas_summary \\
        --exports bench/data/1m --as-of 2026-11-26 --out /tmp/pandas.parquet
"""

from __future__ import annotations

import json
import time
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from bench.baselines.inputs import InputFile, Inputs, arguments, as_of_end, find_inputs

COLUMNS = ["id", "user.id", "scenario.id", "score", "duration_seconds"]
COLUMNS += ["is_valid_attempt", "created_at"]
NAMES = ["id", "user_id", "scenario_id", "score", "duration_seconds"]
NAMES += ["is_valid_attempt", "created_at"]

JSON_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("user", pa.struct([("id", pa.string())])),
        ("scenario", pa.struct([("id", pa.string())])),
        ("score", pa.float64()),
        ("duration_seconds", pa.float64()),
        ("is_valid_attempt", pa.bool_()),
        ("created_at", pa.string()),
    ]
)


def read_sessions_file(source: InputFile) -> pd.DataFrame:
    if source.fmt == "parquet":
        # nested columns come back in the order asked, named by their leaf (`id`)
        table = pq.read_table(source.path, columns=COLUMNS)
    elif source.fmt == "jsonl":
        options = pajson.ParseOptions(
            explicit_schema=JSON_SCHEMA, unexpected_field_behavior="ignore"
        )
        table = pajson.read_json(source.path, parse_options=options).flatten().select(COLUMNS)
    else:
        raise SystemExit(f"sessions format {source.fmt} is not supported here")
    return table.rename_columns(NAMES).to_pandas()


def read_scenario_ids(inputs: Inputs) -> pd.Series:
    source = inputs.scenarios
    if source is None:
        return pd.Series([], dtype="str", name="scenario_id")
    if source.fmt == "parquet":
        frame = pd.read_parquet(source.path, columns=["id"])
    elif source.fmt == "jsonl":
        frame = pd.read_json(source.path, lines=True, dtype={"id": "str"})
    else:
        frame = pd.read_csv(source.path, dtype="str")
    return frame["id"].astype("str").rename("scenario_id")


def half_up(values: pd.Series | np.ndarray, digits: int) -> pd.Series:
    scale = 10**digits
    return np.floor(np.asarray(values, dtype="float64") * scale + 0.5) / scale


def summary(inputs: Inputs, as_of: date) -> pd.DataFrame:
    # Files in relative-path order, rows in file order: the last occurrence of an id wins.
    sessions = pd.concat([read_sessions_file(f) for f in inputs.sessions], ignore_index=True)
    sessions = sessions.drop_duplicates("id", keep="last")
    created = pd.to_datetime(sessions["created_at"], format="ISO8601", utc=True)
    sessions["created_at"] = created.dt.tz_localize(None).dt.floor("us")
    end = pd.Timestamp(as_of_end(as_of))
    in_snapshot = sessions[sessions["created_at"] <= end]
    graded = in_snapshot[in_snapshot["is_valid_attempt"].fillna(False).astype(bool)]
    graded = graded.sort_values(["scenario_id", "user_id", "created_at", "id"])
    participants = graded.groupby(["scenario_id", "user_id"], sort=False).agg(
        session_count=("id", "size"),
        first_score=("score", "first"),
        best_score=("score", "max"),
        duration=("duration_seconds", "sum"),
        with_duration=("duration_seconds", "count"),
    )
    best = participants["best_score"]
    participants["lift"] = best - participants["first_score"]
    participants["gold"] = best >= 90
    participants["silver"] = (best >= 75) & (best < 90)
    participants["bronze"] = (best >= 50) & (best < 75)
    participants["unranked"] = best < 50
    per_scenario = participants.groupby(level="scenario_id").agg(
        participant_count=("session_count", "size"),
        total_sessions=("session_count", "sum"),
        mean_best=("best_score", "mean"),
        mean_lift=("lift", "mean"),
        duration=("duration", "sum"),
        with_duration=("with_duration", "sum"),
        gold_count=("gold", "sum"),
        silver_count=("silver", "sum"),
        bronze_count=("bronze", "sum"),
        unranked_count=("unranked", "sum"),
    )
    ids = pd.concat([read_scenario_ids(inputs), in_snapshot["scenario_id"]]).drop_duplicates()
    frame = per_scenario.reindex(pd.Index(sorted(ids), name="scenario_id"))
    counts = ["participant_count", "total_sessions", "with_duration"]
    counts += [f"{rank}_count" for rank in ("gold", "silver", "bronze", "unranked")]
    frame[counts] = frame[counts].fillna(0).astype("int64")
    frame["duration"] = frame["duration"].fillna(0.0)
    n = frame["participant_count"]
    result = pd.DataFrame(index=frame.index)
    result["participant_count"] = n
    result["total_sessions"] = frame["total_sessions"]
    average_best = half_up(frame["mean_best"].fillna(0.0), 1)
    result["average_best_score"] = average_best
    result["average_best_rank"] = np.select(
        [average_best >= 90, average_best >= 75, average_best >= 50],
        ["gold", "silver", "bronze"],
        "unranked",
    )
    result["average_lift_percentage"] = half_up(frame["mean_lift"].fillna(0.0), 1)
    result["total_practice_minutes"] = half_up(frame["duration"] / 60, 0).astype("int64")
    with_duration = frame["with_duration"]
    per_session = frame["duration"] / with_duration.where(with_duration > 0)
    result["average_session_duration_seconds"] = half_up(per_session.fillna(0.0), 1)
    for rank in ("gold", "silver", "bronze", "unranked"):
        ranked = frame[f"{rank}_count"]
        result[f"{rank}_count"] = ranked
        result[f"{rank}_percentage"] = half_up((ranked * 100 / n.where(n > 0)).fillna(0.0), 1)
    return result.reset_index()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    started = time.perf_counter()
    result = summary(find_inputs(args.exports), args.as_of)
    if args.out is not None:
        result.to_parquet(args.out, index=False)
    print(json.dumps({"rows": len(result), "seconds": round(time.perf_counter() - started, 3)}))


if __name__ == "__main__":
    main()
