"""Baseline: the default materialized summaries in one hand-written DuckDB statement.

The floor for this engine: the same figures as the job's default materialized filters,
read straight from the raw exports (nested `user`/`scenario` structs, `created_at` text
with offsets cast to TIMESTAMPTZ), with no validation, no rejects, no snapshot files.

    .venv/bin/python -m bench.baselines.duckdb_handwritten \\
        --exports bench/data/1m --as-of 2026-11-26 --out /tmp/duckdb.parquet

Prints one JSON line (rows, seconds) on stdout; `--out` writes the figures as Parquet
(one row per scenario x audience x system users x window) for the harness's check.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb

from bench.baselines.inputs import (
    InputFile,
    Inputs,
    arguments,
    as_of_end,
    find_inputs,
    window_start,
)

SQL = Path(__file__).with_name("duckdb_handwritten.sql")


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def file_list(files: list[InputFile]) -> str:
    return "[" + ", ".join(literal(str(f.path)) for f in files) + "]"


def read_entity(source: InputFile | None, columns: dict[str, str]) -> str:
    """A SELECT of `columns` (name -> type) from one small entity file, any format."""
    if source is None:
        names = ", ".join(f"NULL::{kind} AS {name}" for name, kind in columns.items())
        return f"SELECT {names} WHERE false"
    names = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in columns.items())
    path = literal(str(source.path))
    if source.fmt == "parquet":
        return f"SELECT {names} FROM read_parquet({path})"
    if source.fmt == "csv":
        return f"SELECT {names} FROM read_csv({path}, header = true, all_varchar = true)"
    if source.fmt == "jsonl":
        return f"SELECT {names} FROM read_json({path}, format = 'newline_delimited')"
    # an API list page {"data": [...], "pagination": {...}}
    return (
        f"SELECT {names} FROM (SELECT unnest(data, recursive := true) "
        f"FROM read_json({path}, format = 'unstructured'))"
    )


def create_inputs(con: duckdb.DuckDBPyConnection, inputs: Inputs) -> None:
    files = file_list(inputs.sessions)
    if inputs.sessions_format == "parquet":
        # A view: the statement reads the Parquet files directly, nothing is staged.
        con.execute(
            f"""CREATE VIEW session_rows AS
                SELECT id, "user".id AS user_id, "user".email AS email,
                       scenario.id AS scenario_id, score, duration_seconds,
                       is_valid_attempt, created_at, filename AS file, file_row_number AS pos
                FROM read_parquet({files}, filename = true, file_row_number = true)"""
        )
    elif inputs.sessions_format == "jsonl":
        # read_json has no row numbers: a table keeps insertion (file) order in its rowid.
        con.execute("SET preserve_insertion_order = true")
        con.execute(
            f"""CREATE TABLE session_table AS
                SELECT id, "user".id AS user_id, "user".email AS email,
                       scenario.id AS scenario_id, score, duration_seconds,
                       is_valid_attempt, created_at, filename AS file
                FROM read_json({files}, format = 'newline_delimited', filename = true,
                    columns = {{id: 'VARCHAR',
                               "user": 'STRUCT(id VARCHAR, email VARCHAR)',
                               scenario: 'STRUCT(id VARCHAR)',
                               score: 'DOUBLE', duration_seconds: 'DOUBLE',
                               is_valid_attempt: 'BOOLEAN', created_at: 'VARCHAR'}})"""
        )
        con.execute("SET preserve_insertion_order = false")
        con.execute("CREATE VIEW session_rows AS SELECT *, rowid AS pos FROM session_table")
    else:
        raise SystemExit(f"sessions format {inputs.sessions_format} is not supported here")
    text = {"id": "VARCHAR"}
    con.execute(
        "CREATE VIEW member_rows AS "
        + read_entity(inputs.members, {"id": "VARCHAR", "email": "VARCHAR"})
    )
    con.execute("CREATE VIEW scenario_rows AS " + read_entity(inputs.scenarios, text))
    con.execute("CREATE VIEW group_rows AS " + read_entity(inputs.groups, text))
    con.execute(
        "CREATE VIEW membership_rows AS "
        + read_entity(inputs.group_memberships, {"group_id": "VARCHAR", "user_id": "VARCHAR"})
    )


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    started = time.perf_counter()
    inputs = find_inputs(args.exports)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    if args.threads:
        con.execute("SET threads = ?", [args.threads])
    if args.memory_limit:
        con.execute("SET memory_limit = ?", [args.memory_limit])
    create_inputs(con, inputs)
    con.execute(
        SQL.read_text(encoding="utf-8"),
        {
            "as_of_end": as_of_end(args.as_of),
            "start_7": window_start(args.as_of, 7),
            "start_30": window_start(args.as_of, 30),
            "start_90": window_start(args.as_of, 90),
        },
    )
    row = con.execute("SELECT count(*) FROM result").fetchone()
    rows = int(row[0]) if row else 0
    if args.out is not None:
        con.execute(f"COPY result TO {literal(str(args.out))} (FORMAT PARQUET)")
    con.close()
    print(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - started, 3)}))


if __name__ == "__main__":
    main()
