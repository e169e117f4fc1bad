"""The incremental ledger: each export file's staged rows, kept between runs.

Parsing and validating rows (`sql/` files marked `-- Scope: per-file`) is most of a
run's work, and it depends on nothing but the file's own bytes. The ledger keeps its
result per file in a DuckDB database in the snapshot store (`DIR/.ledger.duckdb`, used
only under the store's lock):

    files(file_key, rel_path, entity, format, size, sha256, rows, staged_at)
    staged_sessions, staged_members, ...   the per-file SQL's tables, with file_key
    meta(key, value)                        the digest the rows were made under

A run parses only files whose (relative path, size, sha256) is not in the ledger, adds
their rows, drops the rows of files that changed or disappeared, and then reads the
staged tables through views over the whole ledger. What follows (rejects, duplicates,
summaries) always runs over all rows, so the result is the same as a run from scratch.
`file_id`, the byte-order rank of a file's path that "last file wins" uses, is never
stored: the views compute it from the current file list.

The rows are valid while the per-file SQL and the code are unchanged; the ledger
remembers the digest they were made under and starts empty when it differs. All
changes of one run are one transaction: a run killed half-way leaves the ledger as the
previous run left it.

A full disk leaves no half-written ledger either, by DuckDB's own write-ahead log: a
commit goes to `.ledger.duckdb.wal` first (one that cannot be written is rolled back:
the previous ledger), and a checkpoint writes the WAL's changes to new blocks of the
file before it swaps the header (one that fails leaves the file as it was and the WAL,
replayed at the next attach). So no copy of the file is made; the next run reads the
ledger (`tests/test_reliability_store.py`, `test_a_failed_ledger_write_leaves_a_...`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb

from scenario_analytics.engine.database import quote_ident, quote_literal
from scenario_analytics.errors import StoreLockedError
from scenario_analytics.events import Event, Report, ignore
from scenario_analytics.ingest.entities import ExportFile

LEDGER_NAME = ".ledger.duckdb"
_CATALOG = "ledger"


@dataclass(frozen=True)
class InputFile:
    """An export file with its identity for the ledger: index, size and content hash."""

    file_id: int
    export: ExportFile
    sha256: str
    mtime_ns: int

    @property
    def rel_path(self) -> str:
        return self.export.rel_path

    @property
    def size(self) -> int:
        return self.export.size


class Ledger:
    """Staged rows per export file, kept in a DuckDB file attached to the run's connection.

    Without a path (validate, tests) nothing is kept: every file is parsed and the
    staged tables stay ordinary tables of the run's connection.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path | None,
        digest: str,
        *,
        reset: bool = False,
        report: Report = ignore,
    ) -> None:
        self.con = con
        self.path = path
        self.digest = digest
        if path is None:
            return
        if reset:
            _remove(path)
        try:
            self._attach(path)
            self._check_digest()
        except duckdb.Error as exc:
            if "Could not set lock" in str(exc):
                # Another program (not a run: we hold the store's lock) has it open.
                raise StoreLockedError(
                    f"the ledger {path} is open in another program",
                    "close it (e.g. a duckdb shell on it), then run again (safe to retry)",
                ) from exc
            # A ledger is only a cache: one that cannot be read is rebuilt.
            report(
                Event(
                    "stage",
                    "warning",
                    f"ledger {path.name} cannot be read ({str(exc).strip().splitlines()[0]}); "
                    "starting a new one, every file is parsed",
                )
            )
            self._detach()
            _remove(path)
            self._attach(path)
            self._check_digest()

    @property
    def kept(self) -> bool:
        return self.path is not None

    def _attach(self, path: Path) -> None:
        self.con.execute(f"ATTACH {quote_literal(str(path))} AS {_CATALOG}")
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {_CATALOG}.meta (key VARCHAR, value VARCHAR)")
        self.con.execute(
            f"""CREATE TABLE IF NOT EXISTS {_CATALOG}.files (
                    file_key INTEGER, rel_path VARCHAR, entity VARCHAR, format VARCHAR,
                    size BIGINT, sha256 VARCHAR, rows BIGINT, staged_at TIMESTAMP)"""
        )

    def _detach(self) -> None:
        self._rollback()  # if one is open
        attached = self.con.execute(
            "SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [_CATALOG]
        ).fetchone()
        if attached and attached[0]:
            self.con.execute(f"DETACH {_CATALOG}")

    def _check_digest(self) -> None:
        row = self.con.execute(f"SELECT value FROM {_CATALOG}.meta WHERE key = 'digest'").fetchone()
        if row is not None and row[0] == self.digest:
            return
        # Made by other SQL or code (or new): none of its rows can be trusted.
        self.con.execute("BEGIN")
        try:
            for table in self._staged_tables():
                self.con.execute(f"DROP TABLE {_CATALOG}.{quote_ident(table)}")
            self.con.execute(f"DELETE FROM {_CATALOG}.files")
            self.con.execute(f"DELETE FROM {_CATALOG}.meta")
            self.con.execute(f"INSERT INTO {_CATALOG}.meta VALUES ('digest', ?)", [self.digest])
            self.con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        """Undo an open transaction, keeping the error that ended it the one reported.

        A failed COMMIT (the disk under the ledger is full) has already ended the
        transaction: a ROLLBACK then fails with "no transaction is active", which would
        hide the real cause.
        """
        with suppress(duckdb.Error):
            self.con.execute("ROLLBACK")

    def _staged_tables(self) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
            "AND table_name NOT IN ('meta', 'files')",
            [_CATALOG],
        ).fetchall()
        return [str(name) for (name,) in rows]

    def reusable(self, files: Sequence[InputFile]) -> set[str]:
        """Relative paths of the files whose staged rows the ledger holds already."""
        if not self.kept:
            return set()
        known = {
            str(rel): (int(size), str(sha))
            for rel, size, sha in self.con.execute(
                f"SELECT rel_path, size, sha256 FROM {_CATALOG}.files"
            ).fetchall()
        }
        return {f.rel_path for f in files if known.get(f.rel_path) == (f.size, f.sha256)}

    def store(
        self, files: Sequence[InputFile], parsed: Sequence[InputFile], tables: list[str]
    ) -> None:
        """Keep the staged rows of `parsed`; forget files not in `files` or re-parsed.

        On return, each of `tables` (the per-file SQL's outputs) holds the rows of every
        file in `files`, with `file_id` as in this run: from the ledger through a view,
        or, without a ledger, as the table the SQL made.
        """
        if not self.kept:
            return
        kept = sorted({f.rel_path for f in files} - {f.rel_path for f in parsed})
        row = self.con.execute(f"SELECT coalesce(max(file_key), 0) FROM {_CATALOG}.files")
        first_key = int(row.fetchone()[0]) + 1  # type: ignore[index]
        staged_at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        # Helper tables first: one transaction may write to one database only.
        self.con.execute("CREATE OR REPLACE TABLE ledger_kept (rel_path VARCHAR)")
        if kept:
            self.con.executemany("INSERT INTO ledger_kept VALUES (?)", [(p,) for p in kept])
        self.con.execute(
            """CREATE OR REPLACE TABLE ledger_new (file_id INTEGER, file_key INTEGER,
                   rel_path VARCHAR, entity VARCHAR, format VARCHAR, size BIGINT,
                   sha256 VARCHAR)"""
        )
        if parsed:
            self.con.executemany(
                "INSERT INTO ledger_new VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (f.file_id, first_key + i, f.rel_path, f.export.entity, f.export.fmt)
                    + (f.size, f.sha256)
                    for i, f in enumerate(parsed)
                ],
            )
        existing = set(self._staged_tables())
        self.con.execute("BEGIN")
        try:
            gone = (
                f"SELECT file_key FROM {_CATALOG}.files "
                "WHERE rel_path NOT IN (SELECT rel_path FROM ledger_kept)"
            )
            for table in tables:
                target = f"{_CATALOG}.{quote_ident(table)}"
                if table not in existing:
                    self.con.execute(
                        f"CREATE TABLE {target} AS SELECT CAST(NULL AS INTEGER) AS file_key, "
                        f"* EXCLUDE (file_id) FROM {quote_ident(table)} LIMIT 0"
                    )
                else:
                    self.con.execute(f"DELETE FROM {target} WHERE file_key IN ({gone})")
                self.con.execute(
                    f"""INSERT INTO {target}
                        SELECT n.file_key, s.* EXCLUDE (file_id)
                        FROM {quote_ident(table)} AS s JOIN ledger_new AS n USING (file_id)"""
                )
            self.con.execute(
                f"DELETE FROM {_CATALOG}.files "
                "WHERE rel_path NOT IN (SELECT rel_path FROM ledger_kept)"
            )
            counts = " UNION ALL ".join(f"SELECT file_id FROM {quote_ident(t)}" for t in tables)
            self.con.execute(
                f"""INSERT INTO {_CATALOG}.files
                    SELECT n.file_key, n.rel_path, n.entity, n.format, n.size, n.sha256,
                           (SELECT count(*) FROM ({counts}) AS c WHERE c.file_id = n.file_id),
                           CAST(? AS TIMESTAMP)
                    FROM ledger_new AS n""",
                [staged_at],
            )
            self.con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self.con.execute(
            f"""CREATE OR REPLACE TABLE ledger_file_ids AS
                SELECT l.file_key, e.file_id
                FROM {_CATALOG}.files AS l JOIN export_files AS e ON e.rel_path = l.rel_path"""
        )
        for table in tables:
            name = quote_ident(table)
            self.con.execute(f"DROP TABLE {name}")
            self.con.execute(
                f"""CREATE VIEW {name} AS
                    SELECT i.file_id, s.* EXCLUDE (file_key)
                    FROM {_CATALOG}.{name} AS s JOIN ledger_file_ids AS i USING (file_key)"""
            )
        for helper in ("ledger_kept", "ledger_new"):
            self.con.execute(f"DROP TABLE {helper}")


def drop_views(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    """Views an earlier `Ledger.store` on this connection left where tables will be made."""
    for table in tables:
        row = con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE database_name = 'memory' AND view_name = ?",
            [table],
        ).fetchone()
        if row and row[0]:
            con.execute(f"DROP VIEW {quote_ident(table)}")


def _remove(path: Path) -> None:
    for candidate in (path, path.with_name(path.name + ".wal")):
        candidate.unlink(missing_ok=True)
