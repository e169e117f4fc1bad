#!/usr/bin/env bash
# Rebuilds data/sample: generated exports with every accepted format represented.
#   bash data/make_sample.sh      (from the project root, after `make run` installed .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/sample
rm -rf "$out"
.venv/bin/scenario-analytics generate --out "$out" --sessions 3000 --seed 7 --format jsonl \
    --bad-rows 0.01 > /dev/null
# Mix formats: one sessions part gzip-compressed, members as Parquet, scenarios as CSV.
gzip -n "$out/sessions/part-0003.jsonl"
.venv/bin/python - "$out" <<'PY'
import sys
import duckdb
out = sys.argv[1]
con = duckdb.connect()
con.execute(f"COPY (SELECT * FROM read_json('{out}/members.jsonl')) TO '{out}/members.parquet'")
con.execute(
    f"COPY (SELECT id, slug, name FROM read_json('{out}/scenarios.jsonl')) "
    f"TO '{out}/scenarios.csv' (HEADER)"
)
PY
rm "$out/members.jsonl" "$out/scenarios.jsonl"
echo "This file is not an export: run and validate list it as ignored." > "$out/NOTES.txt"
