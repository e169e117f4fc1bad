"""CSV (`.csv`, gzip too): a header line, then one record per row (quoted values may span
lines). pyarrow streams the file in blocks of binary columns into DuckDB; every value is
text (tag `text`), typed later by validation like the values of the other formats."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv

from scenario_analytics.engine.database import quote_ident
from scenario_analytics.errors import UnreadableFileError
from scenario_analytics.ingest.entities import ENTITY_FIELDS
from scenario_analytics.ingest.readers import common
from scenario_analytics.ingest.readers.common import (
    FileLoad,
    RawRows,
    is_blank,
    require_columns,
    stream_with_positions,
)


class CsvReader:
    name = "csv"
    suffixes = (".csv",)
    gzip = True

    def load(self, raw: RawRows, load: FileLoad) -> None:
        entity = load.export.entity
        malformed: list[tuple[int, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            malformed.append((int(row.number), row.text))
            return "skip"

        with common._open_text(load.export) as header_stream:
            header = _read_csv_header(header_stream, load.export.rel_path)
        require_columns(load.export, [(name,) for name in header], nested=False)
        reader = pacsv.open_csv(
            common._open_text(load.export),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=common._BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.binary() for name in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
        names = reader.schema.names
        stream = pa.RecordBatchReader.from_batches(
            pa.schema(
                [
                    *[(n, pa.binary()) for n in names],
                    ("pos", pa.int64()),
                    ("line_breaks", pa.int64()),
                ]
            ),
            stream_with_positions(reader, 2, count_line_breaks=True),
        )
        decoded = ", ".join(
            f"try(decode({quote_ident(n)})) AS {quote_ident('t_' + str(i))}"
            for i, n in enumerate(names)
        )
        text_of = {n: quote_ident(f"t_{i}") for i, n in enumerate(names)}
        fields_sql: list[str] = []
        for f in ENTITY_FIELDS[entity]:
            column = next((text_of[c] for c in f.csv_names if c in text_of), None)
            if column is None:
                fields_sql.append(f"NULL AS {f.name}, NULL AS {f.name}_t")
            else:
                value = f"nullif(trim({column}, ' \t'), '')"
                fields_sql.append(
                    f"CASE WHEN {value} IS NOT NULL THEN {column} END AS {f.name}, "
                    f"CASE WHEN {value} IS NULL THEN 'null' ELSE 'text' END AS {f.name}_t"
                )
        all_decoded = " AND ".join(f"{c} IS NOT NULL" for c in text_of.values())
        # pyarrow reads a blank line as a row of empty fields, so such a row (`,,`) cannot
        # be told from a blank line: both are skipped and not counted.
        all_empty = " AND ".join(f"coalesce({c}, 'x') = ''" for c in text_of.values())
        raw_json = (
            "json_object("
            + ", ".join(
                f"$name_{i}, coalesce({text_of[n]}, CAST({quote_ident(n)} AS VARCHAR))"
                for i, n in enumerate(names)
            )
            + ")"
        )
        sql = f"""
            SELECT $file_id::INTEGER AS file_id, pos, NOT ({all_decoded}) AS malformed,
                   CAST({raw_json} AS VARCHAR) AS raw, 'csv' AS kind, line_breaks,
                   {", ".join(fields_sql)}
            FROM (SELECT *, {decoded} FROM csv_stream)
            WHERE NOT ({all_empty})
        """
        raw.con.register("csv_stream", stream)
        try:
            params = {f"name_{i}": n for i, n in enumerate(names)}
            raw.insert(load, sql, params)
        finally:
            raw.con.unregister("csv_stream")
        raw.record_malformed(load, malformed, first_line=2, blank=is_blank)
        raw.records_to_lines(load)


def _read_csv_header(stream: pa.NativeFile, rel_path: str) -> list[str]:
    """The header line of a CSV file, with pyarrow's own parsing (BOM, quotes, CRLF)."""
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 16),
        parse_options=pacsv.ParseOptions(invalid_row_handler=lambda _row: "skip"),
        convert_options=pacsv.ConvertOptions(include_columns=[], include_missing_columns=True),
    )
    try:
        names = list(reader.schema.names)
    except UnicodeDecodeError:
        raise UnreadableFileError(rel_path, "the CSV header is not valid UTF-8") from None
    if len(set(names)) != len(names):
        raise UnreadableFileError(rel_path, "the CSV header repeats a column name")
    return names
