"""Datasets: exports generated once with `scenario-analytics generate` and described, and
one more day of exports for the next night's (incremental) run."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from bench.harness.measure import run_checked
from bench.harness.util import CLI, ROOT, DatasetSpec, log, remove, sql_literal

SEED = 1  # the datasets' generate seed


@dataclass
class Dataset:
    spec: DatasetSpec
    path: Path
    scratch: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def as_of(self) -> date:
        return date.fromisoformat(self.info["as_of"])

    def session_files(self) -> list[Path]:
        return sorted(
            (p for p in (self.path / "sessions").rglob("*") if p.is_file()),
            key=lambda p: p.relative_to(self.path).as_posix().encode(),
        )


def session_source(files: list[Path], fmt: str) -> str:
    names = "[" + ", ".join(sql_literal(str(p)) for p in files) + "]"
    if fmt == "parquet":
        return f"read_parquet({names}, filename = true, file_row_number = true)"
    if fmt == "jsonl":
        return f"read_json({names}, format = 'newline_delimited', filename = true)"
    return f"read_csv({names}, header = true, all_varchar = true, filename = true)"


def ensure_dataset(spec: DatasetSpec, data_dir: Path) -> Dataset:
    """Generate the dataset once (into a temporary name, then renamed) and describe it."""
    path = data_dir / spec.name
    meta = data_dir / f"{spec.name}.json"
    if not (path.is_dir() and meta.is_file()):
        remove(path)
        tmp = data_dir / f".tmp-{spec.name}"
        remove(tmp)
        log(f"generating {spec.name}: {spec.sessions:,} sessions as {spec.fmt} (once)")
        started = time.perf_counter()
        report = run_checked(
            [
                str(CLI),
                "generate",
                "--out",
                str(tmp),
                "--sessions",
                str(spec.sessions),
                "--seed",
                str(SEED),
                "--format",
                spec.fmt,
                # The as-of date every bench command uses: the data ends on it.
                "--end-date",
                "2026-11-26",
            ],
            ROOT,
            f"generate {spec.name}",
        )
        generated = json.loads(report)
        dataset = Dataset(spec, tmp, data_dir / ".scratch" / spec.name)
        files = dataset.session_files()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        row = con.execute(
            f"""SELECT max(CAST(TRY_CAST(created_at AS TIMESTAMPTZ) AS DATE))
                FROM {session_source(files, spec.fmt)}"""
        ).fetchone()
        con.close()
        info = {
            "name": spec.name,
            "format": spec.fmt,
            "sessions": spec.sessions,
            "seed": SEED,
            "session_rows_written": generated.get("sessions_written"),
            "duplicates": generated.get("duplicates"),
            "files": len(generated.get("files", [])),
            "as_of": row[0].isoformat() if row and row[0] else None,
            "generate_seconds": round(time.perf_counter() - started, 1),
        }
        tmp.rename(path)
        meta.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    info = json.loads(meta.read_text(encoding="utf-8"))
    info["bytes"] = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    info["path"] = os.path.relpath(path, ROOT)
    dataset = Dataset(spec, path, data_dir / ".scratch" / spec.name, info)
    if dataset.info.get("as_of") is None:
        raise SystemExit(f"bench: cannot tell the last day of {path}; delete it and run again")
    return dataset


def make_new_day(dataset: Dataset, target: Path) -> dict[str, Any]:
    """One more day of exports: the sessions of the dataset's last day, moved one day later
    with new ids, as one extra sessions part file.

    Taken from the dataset itself rather than from `generate --seed <other>`: another seed
    has other users and other scenario ids, so its "new day" would be a different
    workspace. Here the new day's sessions belong to the same users and scenarios, and
    the number of them is that of one ordinary day (about N/90).
    """
    files = dataset.session_files()
    fmt = dataset.spec.fmt
    day = dataset.as_of
    target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # Parquet has row numbers; for text formats the last file is enough to pick one row
    # per id (the new day only needs distinct ids, not the contract's exact winner).
    order = "filename DESC, file_row_number DESC" if fmt == "parquet" else "filename DESC"
    drop = "filename, file_row_number, ts" if fmt == "parquet" else "filename, ts"
    con.execute(
        f"""CREATE TABLE new_day AS
            SELECT * EXCLUDE ({drop}) REPLACE (
                substr(md5(CAST(id AS VARCHAR) || '/next-day'), 1, 12) AS id,
                strftime(ts + INTERVAL 1 DAY, '%Y-%m-%dT%H:%M:%S.%fZ') AS created_at)
            FROM (SELECT *, CAST(TRY_CAST(created_at AS TIMESTAMPTZ) AS TIMESTAMP) AS ts
                  FROM {session_source(files, fmt)})
            WHERE CAST(ts AS DATE) = $day
            QUALIFY row_number() OVER (PARTITION BY id ORDER BY {order}) = 1""",
        {"day": day},
    )
    row = con.execute(
        f"""SELECT (SELECT count(*) FROM new_day),
                   (SELECT count(*) FROM new_day
                    WHERE id IN (SELECT CAST(id AS VARCHAR) FROM {session_source(files, fmt)})),
                   (SELECT count(*) - count(DISTINCT id) FROM new_day)"""
    ).fetchone()
    assert row is not None
    rows, collisions, repeated = (int(v) for v in row)
    if collisions or repeated:
        raise SystemExit(
            f"bench: the new day's session ids collide ({collisions} with the dataset, "
            f"{repeated} among themselves); change the salt in make_new_day()"
        )
    options = "(FORMAT PARQUET, COMPRESSION ZSTD)" if fmt == "parquet" else "(FORMAT JSON)"
    if fmt == "csv":
        options = "(FORMAT CSV, HEADER true)"
    con.execute(f"COPY new_day TO {sql_literal(str(target))} {options}")
    con.close()
    return {"date": (day + timedelta(days=1)).isoformat(), "sessions": rows, "id_collisions": 0}
