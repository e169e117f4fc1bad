"""What the readers share: the file being loaded, what they fill, and SQL builders.

A reader turns one file into raw rows (see `ingest/loader.py`): for every field of the
entity, the value as text and a type tag. The JSON builders here (`json_select`,
`exact_numbers`) serve JSON Lines and JSON documents; `coalesce_alternatives` also
Parquet; `stream_with_positions`, `is_blank` and `require_columns` the text formats.

Readers use `_open_text` and `_BLOCK_SIZE` through this module (`common._open_text`), not
imported by name, so that a test can replace them for every reader at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from scenario_analytics.engine.database import quote_literal
from scenario_analytics.errors import UnreadableFileError
from scenario_analytics.ingest.entities import ENTITY_FIELDS, REQUIRED_FIELDS, ExportFile

_BLOCK_SIZE = 16 << 20


def _open_text(export: ExportFile) -> pa.NativeFile:
    return pa.input_stream(str(export.local), compression="gzip" if export.gzip else None)


@dataclass
class FileLoad:
    """What loading one file found before validation."""

    file_id: int
    export: ExportFile
    removed_lines: list[int] = field(default_factory=list)
    in_place: bool = False  # read in place by the raw view (RawRows.add_in_place)


class RawRows(Protocol):
    """What a reader fills: the raw rows of one connection (`Loader` in ingest/loader.py)."""

    con: duckdb.DuckDBPyConnection

    def insert(
        self, load: FileLoad, select_sql: str, params: dict[str, object] | None = None
    ) -> None:
        """Insert the rows of `select_sql` into the entity's rows table; binds `$file_id`
        and `params` (the JSON readers pass `$paths`, `json_paths(entity)`)."""

    def record_malformed(
        self,
        load: FileLoad,
        rows: list[tuple[int, str]],
        first_line: int,
        blank: Callable[[str], bool],
    ) -> None:
        """Rows pyarrow could not split: malformed records (kept), or blank lines."""

    def records_to_lines(self, load: FileLoad) -> None:
        """Turn CSV record numbers into line numbers (quoted values spanning lines)."""

    def add_in_place(self, load: FileLoad, select_sql: str, rows: int) -> None:
        """A file not copied: the raw view reads its `rows` rows through `select_sql`."""


def require_columns(export: ExportFile, available: list[tuple[str, ...]], *, nested: bool) -> None:
    """Fail the file if a required field has none of its columns in `available`.

    `nested`: a field's nested paths count too (Parquet structs); else only its flat
    names (a CSV header).
    """
    fields = {f.name: f for f in ENTITY_FIELDS[export.entity]}
    missing = [
        name
        for name in REQUIRED_FIELDS[export.entity]
        if not any(
            path in available
            for path in (fields[name].columns if nested else [(c,) for c in fields[name].csv_names])
        )
    ]
    if missing:
        raise UnreadableFileError(
            export.rel_path, f"required column(s) missing: {', '.join(missing)}"
        )


def is_blank(text: str) -> bool:
    """A blank line, as the SQL side trims it: `str.strip()` would also drop lines of
    control characters such as the record separator, which are malformed rows."""
    return not text.strip(" \t\r\n")


def stream_with_positions(
    reader: pacsv.CSVStreamingReader, first_line: int, count_line_breaks: bool = False
) -> Iterator[pa.RecordBatch]:
    """Add `pos` (provisional line number, before removed lines are accounted) to batches.

    With `count_line_breaks`, also `line_breaks`: the line feeds inside the row's values
    (a quoted CSV value may span lines), to turn record numbers into line numbers.
    """
    start = first_line
    for batch in reader:
        n = batch.num_rows
        if n == 0:
            continue
        ones = pa.repeat(pa.scalar(1, pa.int64()), n)
        pos = pc.subtract(pc.cumulative_sum(ones, start=start), 1)
        arrays, names = [*batch.columns, pos], [*batch.schema.names, "pos"]
        if count_line_breaks:
            breaks = pc.multiply(ones, 0)
            for column in batch.columns:
                breaks = pc.add(breaks, pc.cast(pc.count_substring(column, "\n"), pa.int64()))
            arrays.append(breaks)
            names.append("line_breaks")
        yield pa.RecordBatch.from_arrays(arrays, names=names)
        start += n


def coalesce_alternatives(tags: list[str], values: list[str]) -> tuple[str, str]:
    """The first alternative that is present and not null wins; else null if any was null."""
    if len(tags) == 1:
        return tags[0], values[0]
    present = [f"nullif({t}, 'null')" for t in tags]
    any_null = " OR ".join(f"{t} = 'null'" for t in tags)
    tag = f"coalesce({', '.join(present)}, CASE WHEN {any_null} THEN 'null' END)"
    value = (
        "coalesce("
        + ", ".join(
            f"CASE WHEN {t} <> 'null' THEN {v} END" for t, v in zip(tags, values, strict=True)
        )
        + ")"
    )
    return tag, value


# -- JSON (JSON Lines and JSON documents) ------------------------------------------------

# Type tags of JSON values, from the type names of DuckDB's json_type.
_JSON_TAG = (
    "CASE {t} WHEN 'VARCHAR' THEN 'string' WHEN 'BIGINT' THEN 'integer' "
    "WHEN 'DOUBLE' THEN 'number' WHEN 'NULL' THEN 'null' WHEN 'BOOLEAN' THEN 'boolean' "
    "WHEN 'UBIGINT' THEN 'integer' WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array' "
    "ELSE 'other' END"
)


def json_select(entity: str, source: str, exact: str, *, keep_raw: bool = True) -> str:
    """SQL turning `source(pos, raw, doc, ...)` into raw rows.

    `doc` is the record's JSON text (or NULL when it is not text). `exact` is the SQL of
    the record's `exact_numbers`, evaluated only for records that have a number in one of
    those fields (a column of `source`, or an expression of `doc`). `RawRows.insert`
    needs `$paths` bound to `json_paths(entity)`.

    A record is parsed once per function, each taking all paths at once: `json_type`
    gives the tags (and fails on text that is not JSON), `json_extract_string` the texts
    (a string unescaped, any other value as JSON text), and `exact` the exact numbers.
    Asking per path, or parsing each extracted value again, cost several times as much.
    An absent path (SQL NULL) has no tag, so that a nested path's absence lets the flat
    alternative (`user_id` for `user.id`) be used.

    Without `keep_raw`, only malformed records keep their `raw` text: the rest are
    mostly accepted, and carrying every line's text through loading and validation cost
    more than the parse (it made validation spill). The reader then gives the few other
    rejected rows their text afterwards (JSON Lines: `jsonl.fill_raw`).
    """
    fields = ENTITY_FIELDS[entity]
    elements: list[str] = []
    tagged: list[str] = []
    select: list[str] = []
    numeric: list[str] = []
    index = 1
    for f in fields:
        tags, values = [], []
        for _ in f.json_paths:
            elements.append(f"types[{index}] AS y{index}, texts[{index}] AS v{index}")
            tagged.append(
                f"CASE WHEN y{index} IS NOT NULL THEN {_JSON_TAG.format(t=f'y{index}')} END "
                f"AS t{index}, v{index}"
            )
            tags.append(f"t{index}")
            values.append(f"v{index}")
            if f.name in _EXACT_DECIMAL_FIELDS:
                numeric.append(f"t{index} IN ('integer', 'number')")
            index += 1
        tag, value = coalesce_alternatives(tags, values)
        if f.name in _EXACT_DECIMAL_FIELDS:
            value = (
                f"CASE WHEN {tag} IN ('integer', 'number') "
                f"THEN coalesce(CAST(d.{f.name} AS VARCHAR), {value}) ELSE {value} END"
            )
        select.append(f"{value} AS {f.name}, {tag} AS {f.name}_t")
    exact_sql = f"CASE WHEN {' OR '.join(numeric)} THEN {exact} END" if numeric else "NULL"
    return f"""
        SELECT $file_id::INTEGER AS file_id, pos, NOT ok AS malformed,
               {"raw" if keep_raw else "CASE WHEN ok THEN NULL ELSE raw END"} AS raw,
               'json' AS kind,
               {", ".join(select)}
        FROM (
            SELECT *, {exact_sql} AS d
            FROM (
                SELECT *, {", ".join(tagged)}
                FROM (
                    SELECT *, {", ".join(elements)}
                    FROM (
                        SELECT *, CASE WHEN ok THEN all_types END AS types,
                               CASE WHEN ok THEN json_extract_string(doc, $paths::VARCHAR[]) END
                                   AS texts
                        FROM (
                            -- Text that is not JSON has no types (the error is caught);
                            -- JSON that starts with a brace is an object. (A CASE, not AND:
                            -- only a CASE keeps such text away from json_type.)
                            SELECT *,
                                   CASE WHEN all_types IS NULL THEN false
                                        WHEN starts_with(doc, '{{') THEN true
                                        ELSE coalesce(json_type(doc) = 'OBJECT', false)
                                   END AS ok
                            FROM (
                                SELECT *, try(json_type(doc, $paths::VARCHAR[])) AS all_types
                                FROM {source}
                            )
                        )
                    )
                )
            )
        )
    """


# Numbers read as exact decimals. `json_extract_string` (like `->>`) renders a JSON number
# through a double (`100.0000000000000001` becomes `100.0`), but `from_json` into a DECIMAL
# reads the digits as written, so the range checks and the rounding see the value as written.
_EXACT_DECIMAL_FIELDS = frozenset({"score", "duration_seconds"})


def exact_numbers(entity: str, json_text: str, shape: str = "{}", member: str = "") -> str:
    """SQL reading the exact-decimal fields of the record(s) in `json_text`.

    `shape` wraps the record structure: `{}` for one record, `[{}]` for an array of
    records, `{"data": [{}]}` for an API page, whose `member` "data" holds the list.
    The structure comes from constant field names, never from file data.
    """
    fields = [f.name for f in ENTITY_FIELDS[entity] if f.name in _EXACT_DECIMAL_FIELDS]
    if not fields:
        return "NULL"
    record = json.dumps(dict.fromkeys(fields, "DECIMAL(38, 20)"))
    exact = f"try(from_json({json_text}, {quote_literal(shape.replace('{}', record))}))"
    return f"{exact}.{member}" if member else exact


def json_paths(entity: str) -> list[str]:
    return [p for f in ENTITY_FIELDS[entity] for p in f.json_paths]
