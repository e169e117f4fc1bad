"""Baseline: DuckDB's bare `read_json` of the sessions files into a table.

What loading JSON Lines costs this engine with nothing else: every session line parsed
(schema detected by DuckDB, nested `user`/`scenario` objects as structs) and materialized
into an in-memory table. No validation, no types checked, no rejects kept. The job's
`validate` (loading and validating) is compared with this.

    .venv/bin/python -m bench.baselines.duckdb_read_json --exports bench/data/2m-jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb

from bench.baselines.inputs import find_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=Path, required=True)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--memory-limit")
    args = parser.parse_args()
    started = time.perf_counter()
    inputs = find_inputs(args.exports)
    files = [str(f.path) for f in inputs.sessions]
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    if args.threads:
        con.execute("SET threads = ?", [args.threads])
    if args.memory_limit:
        con.execute("SET memory_limit = ?", [args.memory_limit])
    con.execute(
        "CREATE TABLE sessions AS SELECT * FROM read_json($files, format = 'newline_delimited')",
        {"files": files},
    )
    row = con.execute("SELECT count(*) FROM sessions").fetchone()
    con.close()
    rows = int(row[0]) if row else 0
    print(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - started, 3)}))


if __name__ == "__main__":
    main()
