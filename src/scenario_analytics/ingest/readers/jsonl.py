"""JSON Lines (`.jsonl`, `.ndjson`, gzip too): one JSON object per line.

The lines are split one of two ways, which give the same lines and line numbers:

- DuckDB's CSV reader, for a plain file it can take whole: every line as text with its
  number (`WITH ORDINALITY`: one thread reads the file in order) into a temporary
  table, which the parse then reads on all threads. It takes only line feeds as line
  ends (a carriage return, a line of invalid UTF-8, a record separator or a line over
  2 MB makes it fail), and the bytes of the lines, their line feeds and a BOM must add
  up to the file's size, so no byte was skipped or split differently.
- pyarrow, for every other file (gzip, carriage returns, bytes that are not UTF-8, ...):
  streamed in blocks as one binary column (a line per row) into DuckDB on one thread;
  its splitting is the reference that the first way matches.

DuckDB then parses each line (`json_select` in `common.py`); nothing loops over rows in
Python. When DuckDB split a sessions file, only malformed records keep their text in the
raw rows (validation keeps it for rejected rows only): `fill_raw` reads the lines again
for the other records validation rejects.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from scenario_analytics import interrupts
from scenario_analytics.engine.database import quote_ident
from scenario_analytics.errors import UnreadableFileError
from scenario_analytics.ingest.entities import ExportFile
from scenario_analytics.ingest.readers import common
from scenario_analytics.ingest.readers.common import (
    FileLoad,
    RawRows,
    exact_numbers,
    is_blank,
    json_paths,
    json_select,
    stream_with_positions,
)

# A byte that cannot stand raw in valid JSON, used as the "delimiter" so that a JSON
# Lines file reads as one text column; a line holding it is malformed anyway.
_LINE_DELIMITER = "\x1e"

# Test switch: False leaves every file to pyarrow's split (the reference).
DUCKDB_SPLIT = True

# The temporary table DuckDB splits a file's lines into: (pos, line), line NULL if empty.
_LINES = "jsonl_lines"

# Entities whose validation keeps the raw text of rejected rows only (sql/0010); the other
# entities' staged rows keep it for every row (sql/0020), so they are loaded with it.
_RAW_FOR_REJECTS_ONLY = frozenset({"sessions"})

# Lines that are not blank (a line that starts with a brace is not blank: the trim, which
# costs more than parsing the JSON, is left for the other lines).
_NOT_BLANK = "starts_with({t}, '{{') OR trim({t}, ' \t\r') <> ''"


class JsonLinesReader:
    name = "jsonl"
    suffixes = (".jsonl", ".ndjson")
    gzip = True

    def load(self, raw: RawRows, load: FileLoad) -> None:
        with common._open_text(load.export) as probe:
            if not probe.read(1):
                return  # an empty file holds no rows (pyarrow refuses to read it)
        entity = load.export.entity
        if DUCKDB_SPLIT and split_lines(raw.con, load.export):
            try:
                source = f"""(
                    SELECT pos, coalesce(line, '') AS raw, line AS doc FROM {_LINES}
                    WHERE {_NOT_BLANK.format(t="line")}
                )"""
                raw.insert(
                    load,
                    json_select(
                        entity,
                        source,
                        exact_numbers(entity, "doc"),
                        keep_raw=entity not in _RAW_FOR_REJECTS_ONLY,
                    ),
                    {"paths": json_paths(entity)},
                )
            finally:
                raw.con.execute(f"DROP TABLE IF EXISTS {_LINES}")
            return
        self._load_with_pyarrow(raw, load)

    def _load_with_pyarrow(self, raw: RawRows, load: FileLoad) -> None:
        malformed: list[tuple[int, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            malformed.append((int(row.number), row.text))
            return "skip"

        reader = pacsv.open_csv(
            common._open_text(load.export),
            read_options=pacsv.ReadOptions(
                use_threads=False, column_names=["line"], block_size=common._BLOCK_SIZE
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=_LINE_DELIMITER,
                quote_char=False,
                escape_char=False,
                double_quote=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={"line": pa.binary()}, strings_can_be_null=False, null_values=[]
            ),
        )
        stream = pa.RecordBatchReader.from_batches(
            pa.schema([("line", pa.binary()), ("pos", pa.int64())]),
            stream_with_positions(reader, 1),
        )
        raw.con.register("jsonl_stream", stream)
        try:
            source = f"""(
                SELECT pos, coalesce(txt, CAST(line AS VARCHAR)) AS raw, txt AS doc
                FROM (SELECT pos, line, try(decode(line)) AS txt FROM jsonl_stream)
                WHERE txt IS NULL OR {_NOT_BLANK.format(t="txt")}
            )"""
            entity = load.export.entity
            raw.insert(
                load,
                json_select(entity, source, exact_numbers(entity, "doc")),
                {"paths": json_paths(entity)},
            )
        finally:
            raw.con.unregister("jsonl_stream")
        raw.record_malformed(load, malformed, first_line=1, blank=is_blank)


def split_lines(con: duckdb.DuckDBPyConnection, export: ExportFile) -> bool:
    """Split a plain file's lines with DuckDB into the temporary table `jsonl_lines`
    (pos, line); False (and no table) if the file is left to pyarrow's split."""
    if export.gzip:
        return False
    with export.local.open("rb") as handle:
        bom = 3 if handle.read(3) == b"\xef\xbb\xbf" else 0
        handle.seek(-1, 2)
        ends_with_line_feed = handle.read(1) == b"\n"
        size = handle.seek(0, 2)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {_LINES} AS
                SELECT ordinality AS pos, line
                FROM read_csv($path, columns = {{'line': 'VARCHAR'}}, delim = $delim,
                              quote = '', escape = '', header = false, auto_detect = false,
                              new_line = '\\n', compression = 'none')
                     WITH ORDINALITY""",
            {"path": str(export.local), "delim": _LINE_DELIMITER},
        )
    except duckdb.Error as exc:
        interrupts.raise_pending(exc)
        return False  # pyarrow's split decides (and names what is wrong, if anything)
    ((lines, text_bytes),) = con.execute(
        f"SELECT count(*), coalesce(sum(strlen(line)), 0) FROM {_LINES}"
    ).fetchall()
    # Every line but the last ends with one line feed; the last too if the file does.
    line_feeds = int(lines) if ends_with_line_feed else int(lines) - 1
    if bom + int(text_bytes) + line_feeds != size:
        con.execute(f"DROP TABLE {_LINES}")
        return False
    return True


def fill_raw(con: duckdb.DuckDBPyConnection, staged: str, file_id: int, export: ExportFile) -> None:
    """Give the rejected rows of a file in table `staged` that have no raw text (records of
    the typed path) their line, read again the way loading read it."""
    table = quote_ident(staged)
    if not split_lines(con, export):
        raise UnreadableFileError(export.rel_path, "the file changed while the job was reading it")
    try:
        con.execute(
            f"""UPDATE {table} SET raw = l.line
                FROM {_LINES} AS l
                WHERE {table}.file_id = $file_id AND {table}.pos = l.pos
                  AND {table}.reject_reason IS NOT NULL AND {table}.raw IS NULL""",
            {"file_id": file_id},
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_LINES}")
