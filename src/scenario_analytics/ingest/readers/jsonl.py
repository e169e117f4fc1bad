"""JSON Lines (`.jsonl`, `.ndjson`, gzip too): one JSON object per line.

pyarrow streams the file in blocks as one binary column (a line per row) into DuckDB,
which parses the lines; nothing loops over rows in Python.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv

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

# A byte that cannot stand raw in valid JSON, used as pyarrow's "delimiter" so that a
# JSON Lines file reads as one text column; a line holding it is malformed anyway.
_LINE_DELIMITER = "\x1e"


class JsonLinesReader:
    name = "jsonl"
    suffixes = (".jsonl", ".ndjson")
    gzip = True

    def load(self, raw: RawRows, load: FileLoad) -> None:
        with common._open_text(load.export) as probe:
            if not probe.read(1):
                return  # an empty file holds no rows (pyarrow refuses to read it)
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
            source = """(
                SELECT pos, coalesce(txt, CAST(line AS VARCHAR)) AS raw, txt AS doc
                FROM (SELECT pos, line, try(decode(line)) AS txt FROM jsonl_stream)
                -- A line that starts with a brace is not blank: the trim (slow: it costs more
                -- than parsing the JSON) is left for the other lines.
                WHERE txt IS NULL OR starts_with(txt, '{') OR trim(txt, ' \t\r') <> ''
            )"""
            exact = exact_numbers(load.export.entity, "doc")
            raw.insert(
                load,
                json_select(load.export.entity, source, exact),
                {"paths": json_paths(load.export.entity)},
            )
        finally:
            raw.con.unregister("jsonl_stream")
        raw.record_malformed(load, malformed, first_line=1, blank=is_blank)
