"""The job, in the order data flows: exports -> raw tables -> SQL steps -> snapshot -> publish."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from scenario_analytics import __version__
from scenario_analytics.config import MaterializeConfig
from scenario_analytics.database import EngineSettings, connect, quote_ident
from scenario_analytics.errors import AnalyticsError, DataQualityError
from scenario_analytics.exports import ExportsFolder, discover
from scenario_analytics.loading import Loader
from scenario_analytics.materialize import create_filters_table, materialized_requests
from scenario_analytics.requests import as_of_end
from scenario_analytics.snapshot import write_manifest, write_summary_bodies, write_tables
from scenario_analytics.sql_files import SqlFile, load_sql_files, run_sql_files
from scenario_analytics.store import Store

Log = Callable[[str], None]

SESSION_REASONS = (
    "malformed_record",
    "missing_id",
    "missing_user_id",
    "missing_scenario_id",
    "bad_created_at",
    "bad_score",
    "bad_duration",
    "bad_is_valid_attempt",
    "valid_attempt_without_score",
)


def _quiet(_message: str) -> None:
    return None


@dataclass
class FileStats:
    path: str
    entity: str
    format: str
    sha256: str
    bytes: int
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    rejects_by_reason: dict[str, int]

    def manifest_entry(self) -> dict[str, object]:
        return {
            "path": self.path,
            "entity": self.entity,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
        }


@dataclass
class LoadResult:
    folder: ExportsFolder
    files: list[FileStats]
    sql: list[SqlFile]
    rejects_by_reason: dict[str, int] = field(default_factory=dict)

    def entity_totals(self, entity: str) -> tuple[int, int, int]:
        stats = [f for f in self.files if f.entity == entity]
        return (
            sum(f.rows_read for f in stats),
            sum(f.rows_accepted for f in stats),
            sum(f.rows_rejected for f in stats),
        )

    def session_rejects_by_reason(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for f in self.files:
            if f.entity == "sessions":
                for reason, count in f.rejects_by_reason.items():
                    totals[reason] = totals.get(reason, 0) + count
        return dict(sorted(totals.items()))


def load_exports(
    con: duckdb.DuckDBPyConnection,
    exports: Path,
    as_of: date,
    sql_files: list[SqlFile],
    log: Log = _quiet,
) -> LoadResult:
    """Read every export file and run the build-phase SQL (validation, de-duplication)."""
    folder = discover(exports)
    for rel in folder.ignored:
        log(f"ignored (matches no entity or format): {rel}")
    if not folder.of("sessions"):
        raise AnalyticsError(
            f"no sessions export found in {exports}",
            "put session files in a sessions/ folder or name them sessions-*.jsonl etc.",
        )
    con.execute(
        "CREATE OR REPLACE TABLE export_files (file_id INTEGER, rel_path VARCHAR, "
        "entity VARCHAR, format VARCHAR)"
    )
    con.executemany(
        "INSERT INTO export_files VALUES (?, ?, ?, ?)",
        [(i, f.rel_path, f.entity, f.fmt) for i, f in enumerate(folder.files)],
    )
    loader = Loader(con)
    started = time.monotonic()
    for i, export in enumerate(folder.files):
        log(f"loading {i + 1}/{len(folder.files)}: {export.rel_path} ({export.size:,} bytes)")
        loader.load(i, export)
    log(f"loaded {len(folder.files)} files in {time.monotonic() - started:.1f}s")
    build = [f for f in sql_files if f.phase == "build"]
    run_sql_files(con, build, {"as_of_end": as_of_end(as_of)}, log)
    _fill_parquet_raw(con, folder)
    loader.drop_raw_tables()
    stats = _file_stats(con, folder)
    rejects = con.execute(
        "SELECT reason, count(*) FROM rejects GROUP BY reason ORDER BY reason"
    ).fetchall()
    return LoadResult(folder, stats, build, {str(r): int(n) for r, n in rejects})


def _fill_parquet_raw(con: duckdb.DuckDBPyConnection, folder: ExportsFolder) -> None:
    """Rejected Parquet rows get their raw record (as JSON) only now: they are few."""
    rows = con.execute("SELECT DISTINCT source_file FROM rejects WHERE raw IS NULL").fetchall()
    by_path = {f.rel_path: f for f in folder.files}
    for (rel,) in rows:
        export = by_path[str(rel)]
        columns = [
            str(name)
            for (name,) in con.execute(
                "SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet(?))",
                [str(export.path)],
            ).fetchall()
        ]
        pairs = ", ".join(f"$k{i}, {quote_ident(c)}" for i, c in enumerate(columns))
        params: dict[str, object] = {f"k{i}": c for i, c in enumerate(columns)}
        params.update({"path": str(export.path), "rel": export.rel_path})
        con.execute(
            f"""UPDATE rejects SET raw = src.raw
                FROM (SELECT file_row_number + 1 AS position,
                             CAST(json_object({pairs}) AS VARCHAR) AS raw
                      FROM read_parquet($path, file_row_number = true)) AS src
                WHERE rejects.source_file = $rel AND rejects.position = src.position""",
            params,
        )


def _file_stats(con: duckdb.DuckDBPyConnection, folder: ExportsFolder) -> list[FileStats]:
    counts = con.execute(
        """
        WITH staged AS (
            SELECT file_id, reject_reason FROM staged_sessions
            UNION ALL SELECT file_id, reject_reason FROM staged_members
            UNION ALL SELECT file_id, reject_reason FROM staged_scenarios
            UNION ALL SELECT file_id, reject_reason FROM staged_groups
            UNION ALL SELECT file_id, reject_reason FROM staged_group_memberships
        )
        SELECT file_id, reject_reason, count(*) FROM staged GROUP BY ALL
        """
    ).fetchall()
    per_file: dict[int, dict[str | None, int]] = {}
    for file_id, reason, n in counts:
        per_file.setdefault(int(file_id), {})[reason] = int(n)
    stats = []
    for i, export in enumerate(folder.files):
        found = per_file.get(i, {})
        rejected = {str(r): n for r, n in sorted(found.items(), key=str) if r is not None}
        accepted = found.get(None, 0)
        stats.append(
            FileStats(
                path=export.rel_path,
                entity=export.entity,
                format=export.fmt + (".gz" if export.gzip else ""),
                sha256=export.sha256(),
                bytes=export.size,
                rows_read=accepted + sum(rejected.values()),
                rows_accepted=accepted,
                rows_rejected=sum(rejected.values()),
                rejects_by_reason=rejected,
            )
        )
    return stats


def check_reject_ratio(result: LoadResult, max_reject_ratio: float) -> None:
    read, _accepted, rejected = result.entity_totals("sessions")
    if read and rejected / read > max_reject_ratio:
        reasons = ", ".join(f"{r} {n:,}" for r, n in result.session_rejects_by_reason().items())
        raise DataQualityError(
            f"{rejected:,} of {read:,} session rows rejected ({rejected / read:.2%}), more "
            f"than the allowed {max_reject_ratio:.2%} ({reasons})",
            "inspect the rejects with `scenario-analytics validate --exports DIR`, fix the "
            "exports, or raise --max-reject-ratio; nothing was published",
        )


def summarize(
    con: duckdb.DuckDBPyConnection,
    sql_files: list[SqlFile],
    spec: MaterializeConfig,
    as_of: date,
    log: Log = _quiet,
) -> int:
    """Run the summarize-phase SQL over the materialized filter set; returns its size."""
    group_ids = [
        str(g)
        for (g,) in con.execute(
            "SELECT group_id FROM groups UNION SELECT group_id FROM group_memberships"
        ).fetchall()
    ]
    requests = materialized_requests(spec, as_of, group_ids)
    create_filters_table(con, requests)
    run_sql_files(con, [f for f in sql_files if f.phase == "summarize"], {}, log)
    return len(requests)


@dataclass(frozen=True)
class RunOptions:
    exports: Path
    snapshots: Path
    as_of: date
    max_reject_ratio: float = 0.01
    materialize: MaterializeConfig = field(default_factory=MaterializeConfig)
    engine: EngineSettings = field(default_factory=EngineSettings)


@dataclass(frozen=True)
class RunResult:
    snapshot_date: date
    path: Path
    manifest: dict[str, object]
    seconds: float


def _counts(con: duckdb.DuckDBPyConnection, result: LoadResult, as_of: date) -> dict[str, int]:
    read, accepted, rejected = result.entity_totals("sessions")
    row = con.execute(
        """SELECT (SELECT count(*) FROM sessions),
                  (SELECT count(*) FROM sessions WHERE created_at <= $end),
                  (SELECT count(*) FROM snapshot_scenarios),
                  (SELECT count(*) FROM users)""",
        {"end": as_of_end(as_of)},
    ).fetchone()
    assert row is not None
    unique, in_snapshot, scenarios, users = (int(v) for v in row)
    return {
        "sessions_read": read,
        "sessions_accepted": accepted,
        "sessions_rejected": rejected,
        "sessions_duplicate": accepted - unique,
        "sessions_in_snapshot": in_snapshot,
        "scenarios": scenarios,
        "users": users,
    }


def run(options: RunOptions, log: Log = _quiet) -> RunResult:
    """Build and publish the snapshot of one as-of date."""
    started = time.monotonic()
    store = Store(options.snapshots)
    with store.lock():
        for leftover in store.clean_up():
            log(f"removed leftover {leftover}")
        sql_files = load_sql_files()
        con = connect(options.engine)
        try:
            loaded = load_exports(con, options.exports, options.as_of, sql_files, log)
            check_reject_ratio(loaded, options.max_reject_ratio)
            log("computing summaries")
            filters = summarize(con, sql_files, options.materialize, options.as_of, log)
            staging = store.new_staging()
            log(f"writing snapshot files ({filters} materialized filters per scenario)")
            outputs = write_tables(con, staging)
            outputs.append(write_summary_bodies(con, staging))
            manifest: dict[str, object] = {
                "snapshot_date": options.as_of.isoformat(),
                "tool_version": __version__,
                "sql": [{"file": f.name, "sha256": f.sha256} for f in sql_files],
                "inputs": [f.manifest_entry() for f in loaded.files],
                "counts": _counts(con, loaded, options.as_of),
                "rejects_by_reason": loaded.rejects_by_reason,
                "outputs": outputs,
                "ignored_files": loaded.folder.ignored,
                "materialized_filters_per_scenario": filters,
                "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "duration_seconds": round(time.monotonic() - started, 3),
            }
            write_manifest(staging, manifest)
        finally:
            con.close()
        public = store.publish(staging, options.as_of)
    return RunResult(options.as_of, public, manifest, time.monotonic() - started)


def validate(exports: Path, log: Log = _quiet, engine: EngineSettings | None = None) -> LoadResult:
    """Load and check an exports folder without writing anything."""
    con = connect(engine)
    try:
        return load_exports(con, exports, datetime.now(UTC).date(), load_sql_files(), log)
    finally:
        con.close()
