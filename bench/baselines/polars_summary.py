"""Baseline: the unfiltered summary of every scenario, computed with Polars (lazy API).

Same semantics as the job's unfiltered summary (request key ''): duplicates resolved
(last file by path, then last row, wins), graded sessions (valid attempts created up to
the end of the as-of day), per participant first/best score, lift, durations, then per
scenario the figures of CONTRACT.md section 2. Scores and means are floats (Float64);
rounding is half away from zero on the float value, so a mean that is exactly a tie in
decimal (x.x5) can land one tenth off the job's exact figure.

    .venv/bin/python -m bench.baselines.polars_summary \\
        --exports bench/data/1m --as-of 2026-11-26 --out /tmp/polars.parquet
"""

from __future__ import annotations

import json
import time

import polars as pl

from bench.baselines.inputs import Inputs, arguments, as_of_end, find_inputs

# YYYY-MM-DD, T or space, HH:MM, optional :SS and fraction, optional Z or +-HH[:MM]
TIMESTAMP = (
    r"^(?<day>\d{4}-\d{2}-\d{2})[T ](?<hm>\d{2}:\d{2})(?::(?<sec>\d{2}))?(?:\.(?<frac>\d+))?"
    r"(?<zone>Z|(?<sign>[+-])(?<oh>\d{2})(?::?(?<om>\d{2}))?)?$"
)

SESSION_SCHEMA = {
    "id": pl.String,
    "user": pl.Struct({"id": pl.String}),
    "scenario": pl.Struct({"id": pl.String}),
    "score": pl.Float64,
    "duration_seconds": pl.Float64,
    "is_valid_attempt": pl.Boolean,
    "created_at": pl.String,
}


def utc_timestamp(column: str) -> pl.Expr:
    """ISO 8601 text with or without an offset -> naive UTC datetime (microseconds)."""
    parts = pl.col(column).str.extract_groups(TIMESTAMP)
    fraction = (parts.struct["frac"].fill_null("") + "000000").str.slice(0, 6)
    local = (
        parts.struct["day"]
        + " "
        + parts.struct["hm"]
        + ":"
        + parts.struct["sec"].fill_null("00")
        + "."
        + fraction
    ).str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us")
    offset_minutes = (
        parts.struct["oh"].cast(pl.Int64).fill_null(0) * 60
        + parts.struct["om"].cast(pl.Int64).fill_null(0)
    ) * pl.when(parts.struct["sign"] == "-").then(-1).otherwise(1)
    return local - pl.duration(minutes=offset_minutes)


def scan_sessions(inputs: Inputs) -> pl.LazyFrame:
    files = [str(f.path) for f in inputs.sessions]  # sorted by relative path
    if inputs.sessions_format == "parquet":
        frame = pl.scan_parquet(files)
    elif inputs.sessions_format == "jsonl":
        frame = pl.scan_ndjson(files, schema=SESSION_SCHEMA)
    else:
        raise SystemExit(f"sessions format {inputs.sessions_format} is not supported here")
    # Rows come in the order of the files given, then of the rows in each file.
    return frame.select(
        "id",
        pl.col("user").struct.field("id").alias("user_id"),
        pl.col("scenario").struct.field("id").alias("scenario_id"),
        "score",
        "duration_seconds",
        "is_valid_attempt",
        "created_at",
    )


def scenario_ids(inputs: Inputs) -> pl.LazyFrame:
    source = inputs.scenarios
    if source is None:
        return pl.LazyFrame({"scenario_id": []}, schema={"scenario_id": pl.String})
    if source.fmt == "parquet":
        frame = pl.scan_parquet(source.path)
    elif source.fmt == "jsonl":
        frame = pl.scan_ndjson(source.path, schema={"id": pl.String})
    else:
        frame = pl.scan_csv(source.path, infer_schema=False)
    return frame.select(pl.col("id").cast(pl.String).alias("scenario_id"))


def half_up(expr: pl.Expr, digits: int) -> pl.Expr:
    scale = 10**digits
    return ((expr * scale + 0.5).floor() / scale).round(digits)


def summary(inputs: Inputs, as_of: object) -> pl.LazyFrame:
    sessions = (
        scan_sessions(inputs)
        # keep="last" follows row order, which is file order then row order
        .unique(subset="id", keep="last", maintain_order=False)
        .with_columns(utc_timestamp("created_at").alias("created_at"))
    )
    end = as_of_end(as_of)  # type: ignore[arg-type]
    graded = sessions.filter(pl.col("is_valid_attempt") & (pl.col("created_at") <= end))
    participants = graded.group_by("scenario_id", "user_id").agg(
        pl.len().alias("session_count"),
        pl.col("score").sort_by("created_at", "id").first().alias("first_score"),
        pl.col("score").max().alias("best_score"),
        pl.col("duration_seconds").sum().alias("duration"),
        pl.col("duration_seconds").count().alias("with_duration"),
    )
    best = pl.col("best_score")
    n = pl.len()
    per_scenario = participants.group_by("scenario_id").agg(
        n.alias("participant_count"),
        pl.col("session_count").sum().alias("total_sessions"),
        best.mean().alias("mean_best"),
        (best - pl.col("first_score")).mean().alias("mean_lift"),
        pl.col("duration").sum().alias("duration"),
        pl.col("with_duration").sum().alias("with_duration"),
        (best >= 90).sum().alias("gold_count"),
        ((best >= 75) & (best < 90)).sum().alias("silver_count"),
        ((best >= 50) & (best < 75)).sum().alias("bronze_count"),
        (best < 50).sum().alias("unranked_count"),
    )
    snapshot_scenarios = pl.concat(
        [
            scenario_ids(inputs),
            sessions.filter(pl.col("created_at") <= end).select("scenario_id"),
        ]
    ).unique()
    average_best = half_up(pl.col("mean_best").fill_null(0.0), 1)
    count = pl.col("participant_count")
    figures = [
        count.cast(pl.Int64).alias("participant_count"),
        pl.col("total_sessions").cast(pl.Int64),
        average_best.alias("average_best_score"),
        pl.when(average_best >= 90)
        .then(pl.lit("gold"))
        .when(average_best >= 75)
        .then(pl.lit("silver"))
        .when(average_best >= 50)
        .then(pl.lit("bronze"))
        .otherwise(pl.lit("unranked"))
        .alias("average_best_rank"),
        half_up(pl.col("mean_lift").fill_null(0.0), 1).alias("average_lift_percentage"),
        half_up(pl.col("duration") / 60, 0).cast(pl.Int64).alias("total_practice_minutes"),
        pl.when(pl.col("with_duration") > 0)
        .then(half_up(pl.col("duration") / pl.col("with_duration"), 1))
        .otherwise(0.0)
        .alias("average_session_duration_seconds"),
    ]
    for rank in ("gold", "silver", "bronze", "unranked"):
        ranked = pl.col(f"{rank}_count")
        figures.append(ranked.cast(pl.Int64))
        figures.append(
            pl.when(count > 0)
            .then(half_up(ranked * 100 / count, 1))
            .otherwise(0.0)
            .alias(f"{rank}_percentage")
        )
    return (
        snapshot_scenarios.join(per_scenario, on="scenario_id", how="left")
        .with_columns(
            pl.col(
                "participant_count",
                "total_sessions",
                "duration",
                "with_duration",
                "gold_count",
                "silver_count",
                "bronze_count",
                "unranked_count",
            ).fill_null(0)
        )
        .select("scenario_id", *figures)
        .sort("scenario_id")
    )


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    started = time.perf_counter()
    result = summary(find_inputs(args.exports), args.as_of).collect()
    if args.out is not None:
        result.write_parquet(args.out)
    print(json.dumps({"rows": result.height, "seconds": round(time.perf_counter() - started, 3)}))


if __name__ == "__main__":
    main()
