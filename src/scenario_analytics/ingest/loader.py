"""Loading export files into DuckDB raw tables: every row kept, as text plus a type tag.

Each entity has one raw table (`raw_sessions`, `raw_members`, ...). A raw row holds, for
every field of the entity, the value as text and a tag saying what the file had there:
`string`, `integer`, `number`, `boolean`, `null`, `object`, `array` (JSON and Parquet
values), `text` (a CSV value, which is always text), or NULL when the field is absent.
Validation (`sql/0010_*.sql`) turns these into typed rows or reject reasons, the same
way for every format. Nothing here loops over rows in Python: CSV (and JSON Lines that
DuckDB cannot split exactly, `readers/jsonl.py`) is streamed by pyarrow in blocks into
DuckDB; other JSON Lines files and JSON documents are read by DuckDB. A raw sessions row
from a JSON Lines file that DuckDB split has no raw text unless it is malformed: the
pipeline fills it in for the rows validation rejects (`jsonl.fill_raw`).

The fields are declared in `ingest/fields.py`; each format has a reader in
`ingest/readers/` (listed in `READERS`), which `Loader.load` picks by the file's format.

Parquet files are not copied: `raw_<entity>` becomes a view, the rows of the text formats
(a table, `raw_<entity>_rows`) followed by one `read_parquet` select per Parquet file, so
validation reads typed Parquet columns in one pass instead of a materialized text copy.
"""

from __future__ import annotations

import re
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa

from scenario_analytics import interrupts
from scenario_analytics.errors import UnreadableFileError
from scenario_analytics.ingest.entities import ENTITY_FIELDS, ExportFile
from scenario_analytics.ingest.readers import common, reader_for
from scenario_analytics.ingest.readers.common import FileLoad


def raw_table(entity: str) -> str:
    """What validation reads: every raw row of the entity (a view once loading is done)."""
    return f"raw_{entity}"


def _rows_table(entity: str) -> str:
    """The raw rows of the text formats (JSON Lines, JSON, CSV), inserted while loading."""
    return f"raw_{entity}_rows"


def _raw_columns(entity: str) -> list[tuple[str, str]]:
    columns = [
        ("file_id", "INTEGER"),
        ("pos", "BIGINT"),
        ("malformed", "BOOLEAN"),
        ("raw", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("line_breaks", "INTEGER"),
    ]
    for f in ENTITY_FIELDS[entity]:
        columns += [(f.name, "VARCHAR"), (f"{f.name}_t", "VARCHAR")]
    return columns


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    for entity in ENTITY_FIELDS:
        columns = ", ".join(f"{name} {type_}" for name, type_ in _raw_columns(entity))
        con.execute(f"DROP VIEW IF EXISTS {raw_table(entity)}")
        con.execute(f"CREATE OR REPLACE TABLE {_rows_table(entity)} ({columns})")


class Loader:
    """Reads export files into the raw tables of one DuckDB connection.

    It is the `RawRows` the readers fill (`ingest/readers/common.py`).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        create_raw_tables(con)
        con.execute("CREATE OR REPLACE TABLE removed_lines (file_id INTEGER, line BIGINT)")
        # Per entity, each Parquet file and the select of its raw rows that the view reads.
        self.parquet: dict[str, list[tuple[ExportFile, str]]] = {e: [] for e in ENTITY_FIELDS}
        self.rows: dict[int, int] = {}  # rows of each loaded file, by file_id
        for entity in ENTITY_FIELDS:
            self._make_view(entity)

    def _make_view(self, entity: str) -> None:
        """(Re)make the `raw_<entity>` view over the text rows and the Parquet files."""
        names = ", ".join(name for name, _ in _raw_columns(entity))
        parts = [f"SELECT {names} FROM {_rows_table(entity)}"]
        parts += [f"SELECT {names} FROM ({select})" for _export, select in self.parquet[entity]]
        self.con.execute(
            f"CREATE OR REPLACE VIEW {raw_table(entity)} AS {' UNION ALL '.join(parts)}"
        )

    def drop_raw_tables(self) -> None:
        """Free the raw rows once validation has turned them into staged tables."""
        for entity in ENTITY_FIELDS:
            self.con.execute(f"DROP VIEW IF EXISTS {raw_table(entity)}")
            self.con.execute(f"DROP TABLE IF EXISTS {_rows_table(entity)}")
        self.con.execute("DROP TABLE IF EXISTS removed_lines")

    def find_unreadable_parquet(self) -> None:
        """After validation failed: read each Parquet file whole, to name one that is broken.

        Loading reads only a Parquet file's footer; its pages are first read by
        validation, through the views. Raises UnreadableFileError for the first file
        whose pages cannot be read; returns if all can.
        """
        for entity in ENTITY_FIELDS:
            for export, _select in self.parquet[entity]:
                try:
                    self.con.execute(
                        "SELECT count(*) FROM read_parquet(?) AS t WHERE hash(t) IS NULL",
                        [str(export.local)],
                    ).fetchall()
                except duckdb.Error as exc:
                    interrupts.raise_pending(exc)
                    raise UnreadableFileError(export.rel_path, _describe(exc)) from exc

    def load(self, file_id: int, export: ExportFile) -> None:
        load = FileLoad(file_id, export)
        with _undecodable_rows() as undecodable:
            try:
                reader_for(export.fmt).load(self, load)
            except UnreadableFileError as exc:
                interrupts.raise_pending(exc)
                raise
            except (
                OSError,
                pa.ArrowException,
                duckdb.Error,
                EOFError,
                zlib.error,
                UnicodeError,
            ) as exc:
                # A signal's handler raised inside pyarrow or DuckDB, which report their own
                # error instead: the interrupt wins, the file is not to blame.
                interrupts.raise_pending(exc)
                reason = _NOT_TEXT if undecodable else _describe(exc)
                raise UnreadableFileError(export.rel_path, reason) from exc
        if undecodable:
            # pyarrow could not hand such a row to the handler: never drop it silently.
            raise UnreadableFileError(export.rel_path, _NOT_TEXT)
        if not load.in_place:
            ((rows,),) = self.con.execute(
                f"SELECT count(*) FROM {_rows_table(export.entity)} WHERE file_id = ?", [file_id]
            ).fetchall()
            self.rows[file_id] = int(rows)

    # -- what the readers call (RawRows) ----------------------------------------------
    def add_in_place(self, load: FileLoad, select_sql: str, rows: int) -> None:
        """A file not copied (Parquet, the only such format: `find_unreadable_parquet`
        reads these files), read by the `raw_<entity>` view through `select_sql`."""
        self.parquet[load.export.entity].append((load.export, select_sql))
        self.rows[load.file_id] = rows
        load.in_place = True
        self._make_view(load.export.entity)

    def insert(
        self, load: FileLoad, select_sql: str, params: dict[str, object] | None = None
    ) -> None:
        entity = load.export.entity
        bound: dict[str, object] = {"file_id": load.file_id, **(params or {})}
        self.con.execute(f"INSERT INTO {_rows_table(entity)} BY NAME {select_sql}", bound)

    def record_malformed(
        self,
        load: FileLoad,
        rows: list[tuple[int, str]],
        first_line: int,
        blank: Callable[[str], bool],
    ) -> None:
        """Rows pyarrow could not split: malformed records, or blank lines to skip.

        Either way the line was taken out of pyarrow's stream, so the provisional
        positions of later rows are shifted back to true line numbers.
        """
        if not rows:
            return
        entity = load.export.entity
        lines = sorted(line for line, _ in rows)
        self.con.executemany(
            "INSERT INTO removed_lines VALUES (?, ?)", [(load.file_id, n) for n in lines]
        )
        # Row k of the stream (provisional pos = first_line + k) sits at line
        # first_line + k + (number of removed lines before it).
        self.con.execute(
            f"""
            UPDATE {_rows_table(entity)} AS r SET pos = r.pos + m.shift
            FROM (
                SELECT p.pos, max(g.shift) AS shift
                FROM (SELECT pos FROM {_rows_table(entity)} WHERE file_id = $file_id) p
                JOIN (
                    SELECT line - (row_number() OVER (ORDER BY line) - 1) AS first_pos,
                           row_number() OVER (ORDER BY line) AS shift
                    FROM removed_lines WHERE file_id = $file_id
                ) g ON p.pos >= g.first_pos
                GROUP BY p.pos
            ) m
            WHERE r.file_id = $file_id AND r.pos = m.pos
            """,
            {"file_id": load.file_id},
        )
        kept = [(line, text) for line, text in rows if not blank(text)]
        if kept:
            self.con.executemany(
                f"INSERT INTO {_rows_table(entity)} (file_id, pos, malformed, raw, kind, "
                "line_breaks) VALUES (?, ?, true, ?, ?, ?)",
                [
                    (load.file_id, line, text, load.export.fmt, text.count("\n"))
                    for line, text in kept
                ],
            )

    def records_to_lines(self, load: FileLoad) -> None:
        """pyarrow numbers CSV records; a quoted value spanning lines makes them differ from
        line numbers, so shift each row by the line breaks inside the rows before it."""
        table = _rows_table(load.export.entity)
        params = {"file_id": load.file_id}
        # fetchall, not fetchone: an unfinished result would block the next `register`.
        ((found,),) = self.con.execute(
            f"SELECT count(*) FROM {table} WHERE file_id = $file_id AND line_breaks > 0", params
        ).fetchall()
        if not found:
            return
        self.con.execute(
            f"""
            UPDATE {table} AS r SET pos = r.pos + m.shift
            FROM (
                SELECT pos, sum(coalesce(line_breaks, 0)) OVER (
                           ORDER BY pos ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                       ) AS shift
                FROM {table} WHERE file_id = $file_id
            ) AS m
            WHERE r.file_id = $file_id AND r.pos = m.pos AND m.shift > 0
            """,
            params,
        )


_NOT_TEXT = (
    "a row that cannot be split into records holds bytes that are not UTF-8 "
    "(binary data, or another text encoding?)"
)


@contextmanager
def _undecodable_rows() -> Iterator[list[BaseException]]:
    """Collect the rows pyarrow could not decode for the invalid-row handler.

    pyarrow decodes a row's text before it calls the handler; for bytes that are not
    UTF-8 that fails inside pyarrow, which reports it through `sys.unraisablehook` (a
    traceback on stderr) and then fails the read with its own parse error. Collecting
    them keeps tracebacks off stderr and lets the caller say what is wrong.
    """
    caught: list[BaseException] = []
    previous = sys.unraisablehook

    def hook(info: sys.UnraisableHookArgs) -> None:
        if isinstance(info.exc_value, UnicodeDecodeError):
            caught.append(info.exc_value)
        else:
            previous(info)

    sys.unraisablehook = hook
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    # DuckDB appends the Python traceback of a failed Arrow stream read: not for people.
    text = text.split("Detail: Python exception", 1)[0].strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    # pyarrow quotes the row it could not split; rows hold personal data (emails).
    text = re.sub(r"(Expected \d+ columns?, got \d+):.*$", r"\1", text)
    if "straddl" in text:
        return (
            f"a line is longer than {common._BLOCK_SIZE >> 20} MiB, too long to be one record "
            "(binary data, or records not separated by line breaks?)"
        )
    lower = text.lower()
    if isinstance(exc, EOFError | zlib.error) or any(
        word in lower for word in ("gzip", "zlib", "compressed")
    ):
        return f"compressed data is truncated or corrupt ({text})"
    if "parquet" in lower or "magic" in lower:
        return f"not a Parquet file ({text})"
    return text
