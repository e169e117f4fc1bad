"""Export files into staged tables: scan, load, stage (per file, and into the ledger),
validate (the SQL that does not depend on the as-of date).

    scan -> load -> stage -> validate

`scan` lists and hashes the export files; `load` parses the files the ledger does not
hold yet into raw tables (here, one after another, or in the engine's tasks: Spark);
`stage` runs the per-file SQL on them and updates the ledger; `validate` runs the
cross-file SQL that does not depend on the as-of date (rejects, duplicates, history).
`stages.py` goes on from there, one as-of date at a time. Each stage ends with an event
(`events.py`) and a fault checkpoint (`faults.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from scenario_analytics.engine.database import connect, quote_ident
from scenario_analytics.engine.engines import DUCKDB, SqlEngine
from scenario_analytics.engine.sql_files import SqlFile, SqlPlan, plan_sql_files
from scenario_analytics.errors import (
    AnalyticsError,
    DataQualityError,
    ExitCode,
    UnreadableFileError,
)
from scenario_analytics.events import Event, Report, ignore
from scenario_analytics.faults import checkpoint
from scenario_analytics.filters import as_of_end
from scenario_analytics.ingest import repeats
from scenario_analytics.ingest.discover import ExportsFolder, check_accounted, discover
from scenario_analytics.ingest.entities import ENTITY_FIELDS, ExportFile
from scenario_analytics.ingest.ledger import (
    Entry,
    InputFile,
    Ledger,
    drop_views,
    first_of_each_content,
    upload_parts,
    write_file_parts,
)
from scenario_analytics.ingest.loader import Loader
from scenario_analytics.ingest.readers import jsonl
from scenario_analytics.ingest.repeats import repeated_ids_from_state
from scenario_analytics.locations import Location
from scenario_analytics.publish.fingerprint import (
    DayDigests,
    data_digest,
    snapshot_fingerprint,
)
from scenario_analytics.publish.manifest import (
    CheckResult,
    InputEntry,
)
from scenario_analytics.publish.materialize import create_filters_table
from scenario_analytics.settings import (
    EngineSettings,
    MaterializeSettings,
    StorageSettings,
)
from scenario_analytics.storage import Storage, StorageError, open_storage


def boundary(report: Report, event: Event, name: str) -> None:
    """The end of a stage: tell the operators, then let a fault test kill us here."""
    report(event)
    checkpoint(name)


def run_sql(
    con: duckdb.DuckDBPyConnection,
    files: list[SqlFile],
    params: dict[str, object],
    stage: str,
    report: Report,
    snapshot_date: date | None = None,
    engine: SqlEngine = DUCKDB,
) -> None:
    def on_step(sql_file: SqlFile, seconds: float | None) -> None:
        if seconds is None:
            report(Event(stage, "start", f"sql {sql_file.name}", snapshot_date=snapshot_date))
        else:
            report(
                Event(
                    stage,
                    "step",
                    f"sql {sql_file.name} done in {seconds:.1f}s",
                    seconds=seconds,
                    snapshot_date=snapshot_date,
                    data={"sql": sql_file.name},
                )
            )

    engine.run(con, files, params, on_step=on_step)


# -- scan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """The export files of one run, each with its sha256 (taken once, up front)."""

    folder: ExportsFolder
    files: list[InputFile]

    def fingerprint(self, sql_files: list[SqlFile], spec: MaterializeSettings) -> dict[str, str]:
        return snapshot_fingerprint(
            [(f.rel_path, f.sha256) for f in self.files], self.folder.ignored, sql_files, spec
        )


def find_exports(
    exports: Location | Storage | Path,
    ignore_globs: Sequence[str] = (),
    report: Report = ignore,
    settings: StorageSettings | None = None,
) -> ExportsFolder:
    """List the export files (a folder or an S3 prefix), refusing a folder with files that
    would be left out (exit 4) or without sessions. Runs before the store is touched: bad
    input creates nothing. The caller closes `folder.storage` when done with the files."""
    storage = (
        exports if isinstance(exports, Storage) else open_storage(Location.parse(exports), settings)
    )
    try:
        return _found(discover(storage, ignore_globs), report)
    except BaseException:
        storage.close()
        raise


def _found(folder: ExportsFolder, report: Report) -> ExportsFolder:
    for rel in folder.ignored:
        report(Event("scan", "info", f"ignored (matches no entity or format): {rel}"))
    if folder.skipped:
        shown = ", ".join(folder.skipped[:5]) + (", ..." if len(folder.skipped) > 5 else "")
        report(
            Event(
                "scan",
                "info",
                f"skipped {len(folder.skipped)} (names starting with . or _, or ignore "
                f"globs): {shown}",
                data={"skipped": folder.skipped},
            )
        )
    check_accounted(folder)
    if not folder.of("sessions"):
        raise AnalyticsError(
            f"no sessions export found in {folder.root}",
            "put session files in a sessions/ folder or name them sessions-*.jsonl etc.",
        )
    return folder


def scan_exports(
    exports: Path | ExportsFolder,
    report: Report = ignore,
    ignore_globs: Sequence[str] = (),
    known: Callable[[str, int, str], str | None] | None = None,
) -> Inputs:
    """List the export files (unless given) and hash them: the ledger and fingerprints
    key on the hash. `known(path, size, tag)`: the sha256 the ledger took of an export
    object that has not changed since (S3: an unchanged export is not downloaded)."""
    started = time.monotonic()
    folder = (
        exports
        if isinstance(exports, ExportsFolder)
        else find_exports(exports, ignore_globs, report)
    )
    storage = folder.storage

    def identify(item: tuple[int, ExportFile]) -> InputFile:
        file_id, export = item
        sha256 = (
            known(export.rel_path, export.size, export.etag)
            if known is not None and storage.content_tags
            else None
        )
        if sha256 is not None:
            return InputFile(file_id, export, sha256)
        fetched = fetch_export(storage, export)
        try:
            return InputFile(file_id, fetched, fetched.sha256(), fetched.local.stat().st_mtime_ns)
        except OSError as exc:
            raise UnreadableFileError(export.rel_path, exc.strerror or str(exc)) from exc

    # hashlib releases the GIL: hash a few files at once (and download them, on S3).
    with ThreadPoolExecutor(
        max_workers=max(min(4, os.cpu_count() or 1), storage.concurrency)
    ) as pool:
        files = list(pool.map(identify, enumerate(folder.files)))
    total = sum(f.size for f in files)
    report(
        Event(
            "scan",
            "done",
            f"scanned {len(files)} export files ({total:,} bytes) in "
            f"{time.monotonic() - started:.1f}s",
            seconds=time.monotonic() - started,
            data={"files": len(files), "bytes": total, "ignored": len(folder.ignored)},
        )
    )
    return Inputs(folder, files)


def fetch_export(storage: Storage, export: ExportFile) -> ExportFile:
    """The export with a local file of its bytes (in place on local disk, downloaded from
    S3: the version listed, or an error if it changed since)."""
    if export.path is not None:
        return export
    try:
        local = storage.fetch(export.rel_path, etag=export.etag or None)
    except StorageError as exc:
        raise UnreadableFileError(export.rel_path, exc.message) from exc
    return dataclasses.replace(export, path=local)


def _fetched(storage: Storage, item: InputFile) -> InputFile:
    """`item` with its export fetched (a file the ledger held, parsed again after all)."""
    if item.export.path is not None:
        return item
    export = fetch_export(storage, item.export)
    return dataclasses.replace(item, export=export, mtime_ns=export.local.stat().st_mtime_ns)


# -- load, stage, validate ------------------------------------------------------------------


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

    def manifest_entry(self) -> InputEntry:
        return InputEntry(
            path=self.path,
            entity=self.entity,
            sha256=self.sha256,
            bytes=self.bytes,
            rows_read=self.rows_read,
            rows_accepted=self.rows_accepted,
            rows_rejected=self.rows_rejected,
        )


@dataclass
class LoadResult:
    """What loading and validating the exports found: per file (`files`, with rows read,
    accepted, rejected and rejects by reason), and rejects by reason over all files."""

    folder: ExportsFolder
    files: list[FileStats]
    sql: list[SqlFile]
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    files_parsed: int = 0  # parsed in this run
    files_reused: int = 0  # unchanged: their rows came from the ledger
    validate_started: float = 0.0  # time.monotonic() when the cross-file SQL began
    checks: list[CheckResult] = field(default_factory=list)  # `validate`'s, for `as_of`
    as_of: date | None = None
    digests: DayDigests = field(default_factory=lambda: DayDigests(()))  # sql/0070

    def entity_totals(self, entity: str) -> tuple[int, int, int]:
        stats = [f for f in self.files if f.entity == entity]
        return (
            sum(f.rows_read for f in stats),
            sum(f.rows_accepted for f in stats),
            sum(f.rows_rejected for f in stats),
        )

    def as_json(self) -> dict[str, object]:
        """The validation report (`validate --json`): per file, per entity, by reason."""
        entities: dict[str, dict[str, int]] = {}
        for stats in self.files:
            totals = entities.setdefault(
                stats.entity, {"rows_read": 0, "rows_accepted": 0, "rows_rejected": 0}
            )
            totals["rows_read"] += stats.rows_read
            totals["rows_accepted"] += stats.rows_accepted
            totals["rows_rejected"] += stats.rows_rejected
        return {
            "files": [
                {
                    **s.manifest_entry().model_dump(),
                    "format": s.format,
                    "rejects_by_reason": s.rejects_by_reason,
                }
                for s in self.files
            ],
            "entities": entities,
            "rejects_by_reason": self.rejects_by_reason,
            "ignored_files": self.folder.ignored,
            "skipped_files": self.folder.skipped,
            "checks": [c.model_dump() for c in self.checks],
        }

    def session_rejects_by_reason(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for f in self.files:
            if f.entity == "sessions":
                for reason, count in f.rejects_by_reason.items():
                    totals[reason] = totals.get(reason, 0) + count
        return dict(sorted(totals.items()))


def stage_exports(
    con: duckdb.DuckDBPyConnection,
    inputs: Inputs,
    plan: SqlPlan,
    ledger: Ledger,
    report: Report = ignore,
    engine: SqlEngine = DUCKDB,
) -> LoadResult:
    """Parse what the ledger lacks, validate it per file, then resolve across all files.

    Leaves the staged tables (all files), `rejects`, and the de-duplicated tables. The
    per-file SQL runs here, on DuckDB, as files are parsed; `engine` runs the rest.
    """
    _create_export_files(con)
    con.executemany(
        "INSERT INTO export_files VALUES (?, ?, ?, ?)",
        [(f.file_id, f.rel_path, f.export.entity, f.export.fmt) for f in inputs.files],
    )
    reused = ledger.reusable(inputs.files)
    # Files to parse are fetched where they are parsed: here, or by each task.
    parsed = [f for f in inputs.files if f.rel_path not in reused]
    if not engine.stages_in_tasks:
        parsed = [_fetched(inputs.folder.storage, f) for f in parsed]
    staged_tables = [t for f in plan.per_file for t in f.creates]
    drop_views(con, staged_tables)

    report(
        Event(
            "load",
            "start",
            f"parsing {len(parsed)} of {len(inputs.files)} export files"
            + (f" ({len(reused)} unchanged, from the ledger)" if reused else ""),
            done=0,
            total=len(parsed),
            unit="files",
            data={"bytes_total": sum(f.size for f in parsed), "files_unchanged": len(reused)},
        )
    )
    if engine.stages_in_tasks:
        _stage_in_tasks(con, inputs, parsed, reused, plan, ledger, engine, report)
    else:
        _stage_here(con, inputs.files, parsed, reused, plan, ledger, report)
    engine.use_ledger(ledger.parts_by_table)

    started = time.monotonic()
    files = plan.all_files
    # The DuckDB engine keeps which session ids repeat between runs (ingest/repeats.py).
    kept = ledger.storage if engine.name == DUCKDB.name else None
    if kept and repeated_ids_from_state(con, kept, ledger.digest, inputs.files, report):
        files = [f.without(repeats.TABLE) if f.name == repeats.SQL_FILE else f for f in files]
    run_sql(con, files, {}, "validate", report, engine=engine)
    if kept:
        repeats.keep_state(con, kept, ledger.digest, inputs.files)
    digests = _day_digests(con, report)
    stats = _file_stats(con, inputs, engine)
    rejects = con.execute(
        "SELECT reason, count(*) FROM rejects GROUP BY reason ORDER BY reason"
    ).fetchall()
    return LoadResult(
        inputs.folder,
        stats,
        [*plan.per_file, *plan.all_files, *plan.as_of],
        {str(r): int(n) for r, n in rejects},
        files_parsed=len(parsed),
        files_reused=len(reused),
        validate_started=started,
        digests=digests,
    )


def _stage_here(
    con: duckdb.DuckDBPyConnection,
    files: list[InputFile],
    parsed: list[InputFile],
    reused: set[str],
    plan: SqlPlan,
    ledger: Ledger,
    report: Report,
) -> int:
    """Parse and validate the `parsed` files in this process, one after another, and keep
    them in the ledger; returns the rows read."""
    started = time.monotonic()
    loader = Loader(con)
    total_bytes = sum(f.size for f in parsed)
    rows = bytes_done = 0
    for n, item in enumerate(parsed, start=1):
        report(
            Event(
                "load",
                "progress",
                f"loading {n}/{len(parsed)}: {item.rel_path} ({item.size:,} bytes)",
                rows=rows,
                done=n - 1,
                total=len(parsed),
                unit="files",
                data={"bytes_done": bytes_done, "bytes_total": total_bytes, "file": item.rel_path},
            )
        )
        loader.load(item.file_id, item.export)
        rows += loader.rows[item.file_id]
        bytes_done += item.size
    _loaded(report, parsed, reused, rows, time.monotonic() - started)

    started = time.monotonic()
    _validate_per_file(con, loader, parsed, plan.per_file, report)
    ledger.store(files, parsed, [t for f in plan.per_file for t in f.creates])
    boundary(
        report,
        Event("stage", "done", seconds=time.monotonic() - started, rows=rows),
        "staged",
    )
    return rows


def _loaded(
    report: Report, parsed: list[InputFile], reused: set[str], rows: int, seconds: float
) -> None:
    boundary(
        report,
        Event(
            "load",
            "done",
            f"loaded {len(parsed)} files in {seconds:.1f}s",
            rows=rows,
            seconds=seconds,
            data={"files_parsed": len(parsed), "files_unchanged": len(reused)},
        ),
        "loaded",
    )


def _validate_per_file(
    con: duckdb.DuckDBPyConnection,
    loader: Loader,
    parsed: list[InputFile],
    per_file: list[SqlFile],
    report: Report = ignore,
) -> None:
    """The per-file SQL over the loaded raw rows, then the raw text of rejected rows."""
    try:
        # Parquet files are read here, through the raw views: check them after this.
        run_sql(con, per_file, {}, "stage", report)
    except AnalyticsError:
        _check_unchanged(parsed)
        loader.find_unreadable_parquet()
        raise
    _check_unchanged(parsed)
    _fill_parquet_raw(con, parsed)
    _fill_jsonl_raw(con, parsed)
    loader.drop_raw_tables()


@dataclass(frozen=True)
class StagedFile:
    """What staging one export file in a task gives back: its ledger entry and the rows
    read, or the error (exit code, message, hint) that stops the run."""

    content: tuple[str, str, str, int]
    entry: Entry | None
    rows: int
    error: tuple[int, str, str] | None = None


@dataclass(frozen=True)
class TaskStorage:
    """Where a task reads exports from and writes ledger parts to: locations and the
    `[storage]` settings (picklable; each task opens its own storage)."""

    exports: Location
    store: Location
    settings: StorageSettings


def stage_file(item: InputFile, per_file: list[SqlFile], where: TaskStorage) -> StagedFile:
    """Parse one export file, validate it by the per-file SQL and write its ledger parts,
    in a DuckDB connection of its own: what each Spark task does (`_stage_in_tasks`).
    The task fetches the file and stores the parts itself (local paths must be the same
    where it runs; S3 locations are read and written with the task's own credentials)."""
    con = connect(EngineSettings(threads=1))
    exports = open_storage(where.exports, where.settings)
    store = open_storage(where.store, where.settings)
    try:
        item = _fetched(exports, item)
        loader = Loader(con)
        loader.load(item.file_id, item.export)
        _validate_per_file(con, loader, [item], per_file)
        tables = [
            table
            for sql_file in per_file
            for table in sql_file.creates
            if con.execute(
                f"SELECT count(*) FROM {quote_ident(table)} WHERE file_id = ?", [item.file_id]
            ).fetchall()[0][0]
        ]
        scratch = store.scratch(f"task-{uuid.uuid4().hex}")
        entry = write_file_parts(con, scratch, item, tables)
        upload_parts(store, scratch, entry)
        shutil.rmtree(scratch, ignore_errors=True)
        return StagedFile(item.content, entry, loader.rows[item.file_id])
    except AnalyticsError as exc:
        return StagedFile(item.content, None, 0, (int(exc.exit_code), exc.message, exc.hint))
    finally:
        con.close()
        exports.close()
        store.close()


def _stage_in_tasks(
    con: duckdb.DuckDBPyConnection,
    inputs: Inputs,
    parsed: list[InputFile],
    reused: set[str],
    plan: SqlPlan,
    ledger: Ledger,
    engine: SqlEngine,
    report: Report,
) -> int:
    """Parse and validate the `parsed` files in the engine's tasks (`stage_file`, one a
    file, in parallel), each writing its ledger parts; then the catalog here."""
    if ledger.storage is None:
        raise AnalyticsError(f"--engine {engine.name} stages export files into a store's ledger")
    files = inputs.files
    started, cpu = time.monotonic(), time.process_time()
    first = first_of_each_content(parsed)
    # Absolute: an executor resolves a relative path from its own work folder.
    here = Path.cwd()
    where = TaskStorage(
        inputs.folder.storage.location.resolved(here),
        ledger.storage.location.resolved(here),
        ledger.storage.settings,
    )
    first = [_absolute(item, here) for item in first]
    staged = engine.run_tasks(
        functools.partial(stage_file, per_file=plan.per_file, where=where), first
    )
    for result in staged:
        if result.error is not None:
            code, message, hint = result.error
            error = AnalyticsError(message, hint)
            error.exit_code = ExitCode(code)
            raise error
    rows_of = {s.content: s.rows for s in staged}
    rows = sum(rows_of[f.content] for f in parsed)
    _loaded(report, parsed, reused, rows, time.monotonic() - started)
    written = {s.content: s.entry for s in staged if s.entry is not None}
    # The staged tables, empty, here: a table no file has rows in stays one (`store`).
    _validate_per_file(con, Loader(con), [], plan.per_file)
    ledger.store_written(
        files, written, [t for f in plan.per_file for t in f.creates], started, cpu
    )
    boundary(
        report,
        Event("stage", "done", seconds=time.monotonic() - started, rows=rows),
        "staged",
    )
    return rows


def _absolute(item: InputFile, here: Path) -> InputFile:
    """`item` with its local file's path absolute (for a task on another machine)."""
    path = item.export.path
    if path is None or path.is_absolute():
        return item
    return dataclasses.replace(item, export=dataclasses.replace(item.export, path=here / path))


def _create_export_files(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE export_files (file_id INTEGER, rel_path VARCHAR, "
        "entity VARCHAR, format VARCHAR)"
    )


def empty_inputs(con: duckdb.DuckDBPyConnection) -> None:
    """The tables the SQL files read that the job makes, empty: the raw rows of every
    entity, the list of export files, the filters."""
    Loader(con)  # the raw tables and their views
    _create_export_files(con)
    create_filters_table(con, [])


def _day_digests(con: duckdb.DuckDBPyConnection, report: Report) -> DayDigests:
    """Read the per-day digests `sql/0070` made (one row per day: small)."""
    started = time.monotonic()
    digests = DayDigests.read(con)
    seconds = time.monotonic() - started
    report(
        Event(
            "validate",
            "info",
            f"read the data digests of {len(digests.days):,} days in {seconds:.1f}s",
            seconds=seconds,
            data={"digest_days": len(digests.days)},
        )
    )
    return digests


def day_data_digest(loaded: LoadResult, fingerprint: dict[str, str], day: date) -> str:
    """The manifest's `data_digest` of `day` from these exports (`fingerprint`: the
    run's, for its SQL, tool and settings digests)."""
    return data_digest(loaded.digests.at(day), fingerprint)


def _check_unchanged(parsed: list[InputFile]) -> None:
    """A file rewritten while the run read it would be staged under the wrong hash."""
    for item in parsed:
        try:
            stat = item.export.local.stat()
        except OSError:
            stat = None
        if stat is None or (stat.st_size, stat.st_mtime_ns) != (item.size, item.mtime_ns):
            raise AnalyticsError(
                f"export file {item.rel_path} changed while the job was reading it",
                "run again once the exports are complete",
            )


def _fill_parquet_raw(con: duckdb.DuckDBPyConnection, parsed: list[InputFile]) -> None:
    """Rejected Parquet rows get their raw record (as JSON) only now: they are few."""
    for item in parsed:
        export = item.export
        if export.fmt != "parquet" or export.entity not in ENTITY_FIELDS:
            continue
        table = quote_ident(f"staged_{export.entity}")
        ((missing,),) = con.execute(
            f"SELECT count(*) FROM {table} WHERE file_id = ? AND reject_reason IS NOT NULL "
            "AND raw IS NULL",
            [item.file_id],
        ).fetchall()
        if not missing:
            continue
        columns = [
            str(name)
            for (name,) in con.execute(
                "SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet(?))",
                [str(export.local)],
            ).fetchall()
        ]
        pairs = ", ".join(f"$k{i}, {quote_ident(c)}" for i, c in enumerate(columns))
        params: dict[str, object] = {f"k{i}": c for i, c in enumerate(columns)}
        params.update({"path": str(export.local), "file_id": item.file_id})
        con.execute(
            f"""UPDATE {table} SET raw = src.raw
                FROM (SELECT file_row_number + 1 AS position,
                             CAST(json_object({pairs}) AS VARCHAR) AS raw
                      FROM read_parquet($path, file_row_number = true)) AS src
                WHERE {table}.file_id = $file_id AND {table}.pos = src.position
                  AND {table}.reject_reason IS NOT NULL""",
            params,
        )


def _fill_jsonl_raw(con: duckdb.DuckDBPyConnection, parsed: list[InputFile]) -> None:
    """Rejected JSON Lines rows whose lines DuckDB split get their raw line only now
    (`readers/jsonl.py`): they are few, and carrying every line's text cost more."""
    for item in parsed:
        export = item.export
        if export.fmt != "jsonl" or export.entity not in ENTITY_FIELDS:
            continue
        table = f"staged_{export.entity}"
        ((missing,),) = con.execute(
            f"SELECT count(*) FROM {quote_ident(table)} WHERE file_id = ? "
            "AND reject_reason IS NOT NULL AND raw IS NULL",
            [item.file_id],
        ).fetchall()
        if missing:
            jsonl.fill_raw(con, table, item.file_id, export)


def _file_stats(
    con: duckdb.DuckDBPyConnection, inputs: Inputs, engine: SqlEngine
) -> list[FileStats]:
    counts = engine.fetch(
        con,
        """
        WITH staged AS (
            SELECT file_id, reject_reason FROM staged_sessions
            UNION ALL SELECT file_id, reject_reason FROM staged_members
            UNION ALL SELECT file_id, reject_reason FROM staged_scenarios
            UNION ALL SELECT file_id, reject_reason FROM staged_groups
            UNION ALL SELECT file_id, reject_reason FROM staged_group_memberships
        )
        SELECT file_id, reject_reason, count(*) FROM staged GROUP BY file_id, reject_reason
        """,
    )
    per_file: dict[int, dict[str | None, int]] = {}
    for file_id, reason, n in counts:
        per_file.setdefault(int(file_id), {})[reason] = int(n)
    stats = []
    for item in inputs.files:
        export = item.export
        found = per_file.get(item.file_id, {})
        rejected = {str(r): n for r, n in sorted(found.items(), key=str) if r is not None}
        accepted = found.get(None, 0)
        stats.append(
            FileStats(
                path=export.rel_path,
                entity=export.entity,
                format=export.fmt + (".gz" if export.gzip else ""),
                sha256=item.sha256,
                bytes=export.size,
                rows_read=accepted + sum(rejected.values()),
                rows_accepted=accepted,
                rows_rejected=sum(rejected.values()),
                rejects_by_reason=rejected,
            )
        )
    return stats


def release_sessions(con: duckdb.DuckDBPyConnection, engine: SqlEngine = DUCKDB) -> None:
    """Drop the de-duplicated sessions once the SQL that does not depend on the date ran.

    What each as-of date needs of them is in smaller tables by then (`sql/0050`...`0070`:
    the user and scenario directories, graded_history, sessions_per_day); no as-of or
    summarize SQL reads `sessions` (`tests/test_sql_plan.py`). At 10M sessions the table
    takes ~1.5 GB, which under the default memory limit pushed every day's tables to the
    spill folder.
    """
    engine.release(con, ["sessions"])


def compress_history(con: duckdb.DuckDBPyConnection, engine: SqlEngine = DUCKDB) -> None:
    """Hold the graded sessions of all dates (`sql/0070`) compressed, for a backfill's days.

    Every day reads all of `graded_history`; uncompressed (~1 GB at 10M sessions) it
    left too little of the default memory limit for the day's summaries, which spilled:
    compressing it once costs ~2 s and saves ~0.6 s a day (`database.compress_table`).
    Kept in the history's own (unsorted) order: laid out by day and partition order, as
    the session files are, a 30-day backfill at 10M spent 2.5 s a day in `0120` instead
    of 1.2 s (two bench runs on the shared machine; its hash aggregate is slower over
    rows sorted by scenario and user), far more than sorted day ranges save the writer.
    """
    engine.keep_compressed(con, "graded_history")


def check_reject_ratio(result: LoadResult, max_reject_ratio: float) -> None:
    """The reject gate: `DataQualityError` (exit 4) if more than `max_reject_ratio` of the
    session rows were rejected."""
    read, _accepted, rejected = result.entity_totals("sessions")
    if read and rejected / read > max_reject_ratio:
        reasons = ", ".join(f"{r} {n:,}" for r, n in result.session_rejects_by_reason().items())
        raise DataQualityError(
            f"{rejected:,} of {read:,} session rows rejected ({rejected / read:.2%}), more "
            f"than the allowed {max_reject_ratio:.2%} ({reasons})",
            "inspect the rejects with `scenario-analytics validate --exports DIR`, fix the "
            "exports, or raise --max-reject-ratio; nothing was published",
        )


def report_validated(report: Report, loaded: LoadResult) -> None:
    read, _accepted, rejected = loaded.entity_totals("sessions")
    boundary(
        report,
        Event(
            "validate",
            "done",
            f"validated {read:,} session rows: {rejected:,} rejected",
            rows=read,
            seconds=time.monotonic() - loaded.validate_started,
            data={"rejected": rejected},
        ),
        "validated",
    )


def load_exports(
    con: duckdb.DuckDBPyConnection,
    exports: Path | Location,
    as_of: date,
    sql_files: list[SqlFile],
    report: Report = ignore,
) -> LoadResult:
    """Read every export file and run the whole build phase for one as-of date.

    No ledger: every file is parsed. (`run` and `backfill` use the store's ledger.)
    """
    plan = plan_sql_files(sql_files)
    folder = find_exports(exports, (), report)
    try:
        inputs = scan_exports(folder, report)
        loaded = stage_exports(con, inputs, plan, Ledger(con, None, ""), report)
        run_sql(con, plan.as_of, {"as_of_end": as_of_end(as_of)}, "build", report, as_of)
        return loaded
    finally:
        folder.storage.close()
