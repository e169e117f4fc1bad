"""Checks: the baselines compute the job's figures. Each baseline's output (its last round)
is compared with the reference run's summaries.parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from bench.harness.datasets import Dataset
from bench.harness.util import log, sql_literal
from scenario_analytics.publish.snapshot import SUMMARY_FIGURES

FIGURES = SUMMARY_FIGURES  # the columns of summaries.parquet a body shows
DECIMALS = {
    "average_best_score",
    "average_lift_percentage",
    "average_session_duration_seconds",
    "gold_percentage",
    "silver_percentage",
    "bronze_percentage",
    "unranked_percentage",
}
# Whole minutes rounded from a sum of durations: an exact half minute (a tie, e.g. 17,903,130
# seconds = 298,385.5 minutes) can come out one minute off in a float sum.
WHOLE_ROUNDED = {"total_practice_minutes"}


def check_baselines(ds: Dataset, outputs: dict[str, Path]) -> dict[str, Any]:
    """Compare each baseline's figures with the job's summaries.parquet (reference run).

    duckdb_handwritten: every default materialized row, exactly. polars/pandas: the
    unfiltered rows (request_key ''); counts exactly, decimal figures after rounding the
    float to one decimal; a figure rounded from a float that is one last digit off (one
    tenth, or one minute for the practice minutes: an exact tie the float missed) is
    counted apart from real differences.
    """
    summaries = (
        ds.scratch / "reference" / f"snapshot_date={ds.as_of.isoformat()}" / "summaries.parquet"
    )
    checks: dict[str, Any] = {}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""CREATE TABLE job AS SELECT
                scenario_id,
                CASE WHEN len(group_ids) = 0 THEN NULL ELSE group_ids[1] END AS group_id,
                exclude_system_users,
                CASE WHEN start_date IS NULL THEN 0
                     ELSE date_diff('day', CAST(start_date AS DATE), $as_of) + 1 END
                    AS window_days,
                request_key, {", ".join(FIGURES)}
            FROM read_parquet({sql_literal(str(summaries))}, hive_partitioning = false)
            WHERE len(user_ids) = 0 AND len(user_emails) = 0 AND len(group_ids) <= 1""",
        {"as_of": ds.as_of},
    )
    for name, path in sorted(outputs.items()):
        con.execute(
            f"CREATE OR REPLACE TABLE base AS SELECT * FROM read_parquet({sql_literal(str(path))})"
        )
        columns = {c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE base)").fetchall()}
        if "window_days" in columns:
            keys = ["scenario_id", "group_id", "exclude_system_users", "window_days"]
            job_rows = "SELECT * FROM job"
        else:
            keys = ["scenario_id"]
            job_rows = "SELECT * FROM job WHERE request_key = ''"
        on = " AND ".join(f"j.{k} IS NOT DISTINCT FROM b.{k}" for k in keys)
        differences = []
        for f in FIGURES:
            if f in DECIMALS:
                differences.append(
                    f"CASE WHEN round(CAST(b.{f} AS DOUBLE), 1) = CAST(j.{f} AS DOUBLE) THEN 0 "
                    f"WHEN abs(round(CAST(b.{f} AS DOUBLE), 1) - CAST(j.{f} AS DOUBLE)) < 0.1001 "
                    f"THEN 1 ELSE 2 END"
                )
            elif f in WHOLE_ROUNDED:
                differences.append(
                    f"CASE WHEN b.{f} = j.{f} THEN 0 WHEN abs(b.{f} - j.{f}) = 1 THEN 1 ELSE 2 END"
                )
            else:
                differences.append(f"CASE WHEN b.{f} = j.{f} THEN 0 ELSE 2 END")
        worst = f"greatest({', '.join(differences)})"
        row = con.execute(
            f"""WITH j AS ({job_rows}), b AS (SELECT * FROM base),
                    joined AS (
                        SELECT j.scenario_id IS NULL AS extra, b.scenario_id IS NULL AS missing,
                               CASE WHEN j.scenario_id IS NOT NULL AND b.scenario_id IS NOT NULL
                                    THEN {worst} END AS worst
                        FROM j FULL JOIN b ON {on})
                SELECT (SELECT count(*) FROM j), (SELECT count(*) FROM b),
                       count(*) FILTER (WHERE worst = 0), count(*) FILTER (WHERE worst = 1),
                       count(*) FILTER (WHERE worst = 2), count(*) FILTER (WHERE missing),
                       count(*) FILTER (WHERE extra)
                FROM joined"""
        ).fetchone()
        assert row is not None
        job_count, base_count, exact, last_digit, wrong, missing, extra = (int(v) for v in row)
        examples = con.execute(
            f"""WITH j AS ({job_rows}), b AS (SELECT * FROM base)
                SELECT {", ".join(f"j.{k}" for k in keys)},
                       {", ".join(f"j.{f} AS job_{f}, b.{f} AS base_{f}" for f in FIGURES)}
                FROM j JOIN b ON {on} WHERE {worst} > 0 LIMIT 3"""
        ).fetchall()
        checks[name] = {
            "compared": "every default materialized summary"
            if len(keys) > 1
            else "unfiltered summaries (request_key '')",
            "job_rows": job_count,
            "baseline_rows": base_count,
            "equal": exact,
            "last_digit_off": last_digit,
            "different": wrong,
            "missing_in_baseline": missing,
            "extra_in_baseline": extra,
            "ok": wrong == 0 and missing == 0 and extra == 0,
            **({"examples": [[str(v) for v in e] for e in examples]} if examples else {}),
        }
        status = "ok" if checks[name]["ok"] else "MISMATCH"
        log(
            f"{ds.name}: check {name}: {status}: {exact}/{job_count} rows equal, "
            f"{last_digit} last digit off, {wrong} different, {missing} missing, {extra} extra"
        )
    con.close()
    return checks
