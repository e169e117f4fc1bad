"""Quarantine: what an operator needs to investigate a run that a gate refused.

    DIR/.quarantine/<as-of>_<UTC timestamp>/
        rejects.parquet   every rejected row of every entity: entity, source_file,
                          position, reason, raw (the record as text)
        report.json       why the run was refused, the checks, counts per entity

Written under the store's lease by a run or backfill that fails the reject gate or a
completeness check (on S3 like on local disk: written locally, then uploaded); nothing
is published then. The newest `KEEP` are kept.
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from scenario_analytics.engine.database import insertion_order_kept, quote_literal
from scenario_analytics.publish.store import QUARANTINE_FOLDER, Store
from scenario_analytics.storage import sha256_file

KEEP = 10
FOLDER = QUARANTINE_FOLDER


def write_rejects(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Every row of the `rejects` table (sql/0030) to Parquet or CSV, by `path`'s suffix;
    returns the number of rows."""
    fmt = "PARQUET" if path.suffix.lower() == ".parquet" else "CSV, HEADER true"
    with insertion_order_kept(con):
        ((rows,),) = con.execute(
            "COPY (SELECT entity, source_file, position, reason, raw FROM rejects "
            f"ORDER BY source_file, position) TO {quote_literal(str(path))} (FORMAT {fmt})"
        ).fetchall()
    return int(rows)


def quarantine(
    con: duckdb.DuckDBPyConnection, store: Store, as_of: date, report: dict[str, object]
) -> str:
    """Write a quarantine folder for a refused run; returns it as people see it. Keeps
    the newest KEEP."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{FOLDER}/{as_of.isoformat()}_{stamp}"
    local = store.storage.scratch(f"quarantine-{uuid.uuid4().hex}")
    try:
        rows = write_rejects(con, local / "rejects.parquet")
        body = {"snapshot_date": as_of.isoformat(), "created_at": stamp, "rejects": rows, **report}
        (local / "report.json").write_bytes((json.dumps(body, indent=2) + "\n").encode())
        for file in ("rejects.parquet", "report.json"):
            path = local / file
            store.storage.upload(f"{name}/{file}", path, sha256_file(path), move=True)
    finally:
        shutil.rmtree(local, ignore_errors=True)
    # Oldest first by creation time (the name's timestamp), whatever the as-of dates.
    folders = store.storage.list_folders(FOLDER + "/")
    kept: list[str] = sorted(folders, key=lambda n: n.split("_", 1)[-1])
    for old in kept[:-KEEP]:
        store.storage.delete([o.key for o in store.storage.objects(f"{FOLDER}/{old}/")])
    return store.describe(name)
