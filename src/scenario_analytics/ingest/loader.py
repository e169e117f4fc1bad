"""Loading export files into DuckDB raw tables: every row kept, as text plus a type tag.

Each entity has one raw table (`raw_sessions`, `raw_members`, ...). A raw row holds, for
every field of the entity, the value as text and a tag saying what the file had there:
`string`, `integer`, `number`, `boolean`, `null`, `object`, `array` (JSON and Parquet
values), `text` (a CSV value, which is always text), or NULL when the field is absent.
Validation (`sql/0010_*.sql`) turns these into typed rows or reject reasons, the same
way for every format. Nothing here loops over rows in Python: JSON Lines and CSV are
streamed by pyarrow in blocks into DuckDB, JSON documents are read by DuckDB.

Parquet files are not copied: `raw_<entity>` becomes a view, the rows of the text formats
(a table, `raw_<entity>_rows`) followed by one `read_parquet` select per Parquet file, so
validation reads typed Parquet columns in one pass instead of a materialized text copy.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from scenario_analytics.engine.database import quote_ident, quote_literal
from scenario_analytics.errors import UnreadableFileError
from scenario_analytics.ingest.discover import ExportFile


@dataclass(frozen=True)
class Field:
    """One field of an entity and where each format keeps it (nested paths first)."""

    name: str
    json_paths: tuple[str, ...]
    columns: tuple[tuple[str, ...], ...]  # Parquet column paths; CSV uses the flat ones

    @property
    def csv_names(self) -> tuple[str, ...]:
        return tuple(path[0] for path in self.columns if len(path) == 1)


def _flat(name: str) -> Field:
    return Field(name, (f"$.{name}",), ((name,),))


def _nested(name: str, parent: str, child: str) -> Field:
    return Field(name, (f"$.{parent}.{child}", f"$.{name}"), ((parent, child), (name,)))


ENTITY_FIELDS: dict[str, tuple[Field, ...]] = {
    "sessions": (
        _flat("id"),
        _nested("user_id", "user", "id"),
        _nested("user_email", "user", "email"),
        _nested("user_first_name", "user", "first_name"),
        _nested("user_last_name", "user", "last_name"),
        _nested("scenario_id", "scenario", "id"),
        _nested("scenario_slug", "scenario", "slug"),
        _nested("scenario_name", "scenario", "name"),
        _flat("score"),
        _flat("duration_seconds"),
        _flat("is_valid_attempt"),
        _flat("created_at"),
    ),
    "members": (
        _flat("id"),
        _flat("email"),
        _flat("first_name"),
        _flat("last_name"),
        _flat("role"),
    ),
    "scenarios": (_flat("id"), _flat("slug"), _flat("name")),
    "groups": (_flat("id"), _flat("name")),
    "group_memberships": (_flat("group_id"), _flat("user_id")),
}

# Columns a CSV header or Parquet schema must have, or the file cannot be read.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "sessions": ("id", "user_id", "scenario_id", "created_at", "is_valid_attempt"),
    "members": ("id",),
    "scenarios": ("id",),
    "groups": ("id",),
    "group_memberships": ("group_id", "user_id"),
}

# A byte that cannot stand raw in valid JSON, used as pyarrow's "delimiter" so that a
# JSON Lines file reads as one text column; a line holding it is malformed anyway.
_LINE_DELIMITER = "\x1e"
_BLOCK_SIZE = 16 << 20


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


@dataclass
class FileLoad:
    """What loading one file found before validation."""

    file_id: int
    export: ExportFile
    removed_lines: list[int] = field(default_factory=list)


# Type tags of JSON values, from the type names of DuckDB's json_type.
_JSON_TAG = (
    "CASE {t} WHEN 'VARCHAR' THEN 'string' WHEN 'BIGINT' THEN 'integer' "
    "WHEN 'DOUBLE' THEN 'number' WHEN 'NULL' THEN 'null' WHEN 'BOOLEAN' THEN 'boolean' "
    "WHEN 'UBIGINT' THEN 'integer' WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array' "
    "ELSE 'other' END"
)


def _coalesce_alternatives(tags: list[str], values: list[str]) -> tuple[str, str]:
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


def _json_select(entity: str, source: str, exact: str) -> str:
    """SQL turning `source(pos, raw, doc, ...)` into raw rows.

    `doc` is the record's JSON text (or NULL when it is not text). `exact` is the SQL of
    the record's `_exact_numbers`, evaluated only for records that have a number in one of
    those fields (a column of `source`, or an expression of `doc`).

    A record is parsed once per function, each taking all paths at once: `json_type`
    gives the tags (and fails on text that is not JSON), `json_extract_string` the texts
    (a string unescaped, any other value as JSON text), and `exact` the exact numbers.
    Asking per path, or parsing each extracted value again, cost several times as much.
    An absent path (SQL NULL) has no tag, so that a nested path's absence lets the flat
    alternative (`user_id` for `user.id`) be used.
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
        tag, value = _coalesce_alternatives(tags, values)
        if f.name in _EXACT_DECIMAL_FIELDS:
            value = (
                f"CASE WHEN {tag} IN ('integer', 'number') "
                f"THEN coalesce(CAST(d.{f.name} AS VARCHAR), {value}) ELSE {value} END"
            )
        select.append(f"{value} AS {f.name}, {tag} AS {f.name}_t")
    exact_sql = f"CASE WHEN {' OR '.join(numeric)} THEN {exact} END" if numeric else "NULL"
    return f"""
        SELECT $file_id::INTEGER AS file_id, pos, NOT ok AS malformed, raw, 'json' AS kind,
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


def _exact_numbers(entity: str, json_text: str, shape: str = "{}", member: str = "") -> str:
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


def _json_paths(entity: str) -> list[str]:
    return [p for f in ENTITY_FIELDS[entity] for p in f.json_paths]


def _open_text(export: ExportFile) -> pa.NativeFile:
    return pa.input_stream(str(export.path), compression="gzip" if export.gzip else None)


def _stream_with_positions(
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


class Loader:
    """Reads export files into the raw tables of one DuckDB connection."""

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
                        [str(export.path)],
                    ).fetchall()
                except duckdb.Error as exc:
                    raise UnreadableFileError(export.rel_path, _describe(exc)) from exc

    def load(self, file_id: int, export: ExportFile) -> None:
        loaders: dict[str, Callable[[FileLoad], None]] = {
            "jsonl": self._load_jsonl,
            "json": self._load_json,
            "csv": self._load_csv,
            "parquet": self._load_parquet,
        }
        load = FileLoad(file_id, export)
        with _undecodable_rows() as undecodable:
            try:
                loaders[export.fmt](load)
            except UnreadableFileError:
                raise
            except (
                OSError,
                pa.ArrowException,
                duckdb.Error,
                EOFError,
                zlib.error,
                UnicodeError,
            ) as exc:
                reason = _NOT_TEXT if undecodable else _describe(exc)
                raise UnreadableFileError(export.rel_path, reason) from exc
        if undecodable:
            # pyarrow could not hand such a row to the handler: never drop it silently.
            raise UnreadableFileError(export.rel_path, _NOT_TEXT)
        if export.fmt != "parquet":
            ((rows,),) = self.con.execute(
                f"SELECT count(*) FROM {_rows_table(export.entity)} WHERE file_id = ?", [file_id]
            ).fetchall()
            self.rows[file_id] = int(rows)

    # -- JSON Lines ---------------------------------------------------------------
    def _load_jsonl(self, load: FileLoad) -> None:
        with _open_text(load.export) as probe:
            if not probe.read(1):
                return  # an empty file holds no rows (pyarrow refuses to read it)
        malformed: list[tuple[int, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            malformed.append((int(row.number), row.text))
            return "skip"

        reader = pacsv.open_csv(
            _open_text(load.export),
            read_options=pacsv.ReadOptions(
                use_threads=False, column_names=["line"], block_size=_BLOCK_SIZE
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
            _stream_with_positions(reader, 1),
        )
        self.con.register("jsonl_stream", stream)
        try:
            source = """(
                SELECT pos, coalesce(txt, CAST(line AS VARCHAR)) AS raw, txt AS doc
                FROM (SELECT pos, line, try(decode(line)) AS txt FROM jsonl_stream)
                -- A line that starts with a brace is not blank: the trim (slow: it costs more
                -- than parsing the JSON) is left for the other lines.
                WHERE txt IS NULL OR starts_with(txt, '{') OR trim(txt, ' \t\r') <> ''
            )"""
            exact = _exact_numbers(load.export.entity, "doc")
            self._insert(load, _json_select(load.export.entity, source, exact))
        finally:
            self.con.unregister("jsonl_stream")
        self._record_malformed(load, malformed, first_line=1, blank=_is_blank)

    # -- JSON documents (API list page or array) ------------------------------------
    def _load_json(self, load: FileLoad) -> None:
        with tempfile.TemporaryDirectory(prefix="scenario-analytics-") as tmp:
            path = load.export.path
            if load.export.gzip:
                path = Path(tmp) / "document.json"
                with gzip.open(load.export.path, "rb") as src, path.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            self.con.execute(
                """CREATE OR REPLACE TEMP TABLE json_document AS
                   SELECT CASE WHEN starts_with(content, chr(65279)) THEN content[2:]
                               ELSE content END AS content
                   FROM read_text(?)""",
                [str(path)],
            )
        shape = self.con.execute(
            """SELECT CASE WHEN NOT json_valid(content) THEN 'invalid'
                           WHEN json_type(content) = 'ARRAY' THEN 'array'
                           WHEN json_type(content) = 'OBJECT'
                                AND json_type(content, '$.data') = 'ARRAY' THEN 'page'
                           ELSE 'other' END
               FROM json_document"""
        ).fetchone()
        kind = shape[0] if shape else "invalid"
        if kind == "invalid":
            raise UnreadableFileError(load.export.rel_path, "not valid JSON")
        if kind == "other":
            raise UnreadableFileError(
                load.export.rel_path,
                'JSON is neither an array nor an API list page {"data": [...]}',
            )
        entity = load.export.entity
        if kind == "array":
            path_expr, exact = "'$[*]'", _exact_numbers(entity, "content", "[{}]")
        else:
            path_expr = "'$.data[*]'"
            exact = _exact_numbers(entity, "content", '{"data": [{}]}', member="data")
        # Exact numbers are read from the document itself: an element's text is rendered
        # again by DuckDB, through doubles. Both lists are in element order.
        source = f"""(
            SELECT pos, CAST(element AS VARCHAR) AS raw, CAST(element AS VARCHAR) AS doc, exact
            FROM (
                SELECT unnest(items) AS element, unnest(exact_items) AS exact,
                       generate_subscripts(items, 1) AS pos
                FROM (SELECT json_extract(content, {path_expr}) AS items,
                             {exact} AS exact_items
                      FROM json_document)
            )
        )"""
        self._insert(load, _json_select(load.export.entity, source, "exact"))
        self.con.execute("DROP TABLE json_document")

    # -- CSV ----------------------------------------------------------------------
    def _load_csv(self, load: FileLoad) -> None:
        entity = load.export.entity
        malformed: list[tuple[int, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            malformed.append((int(row.number), row.text))
            return "skip"

        with _open_text(load.export) as header_stream:
            header = _read_csv_header(header_stream, load.export.rel_path)
        self._require(load, [(name,) for name in header])
        reader = pacsv.open_csv(
            _open_text(load.export),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=_BLOCK_SIZE),
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
            _stream_with_positions(reader, 2, count_line_breaks=True),
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
        raw = (
            "json_object("
            + ", ".join(
                f"$name_{i}, coalesce({text_of[n]}, CAST({quote_ident(n)} AS VARCHAR))"
                for i, n in enumerate(names)
            )
            + ")"
        )
        sql = f"""
            SELECT $file_id::INTEGER AS file_id, pos, NOT ({all_decoded}) AS malformed,
                   CAST({raw} AS VARCHAR) AS raw, 'csv' AS kind, line_breaks,
                   {", ".join(fields_sql)}
            FROM (SELECT *, {decoded} FROM csv_stream)
            WHERE NOT ({all_empty})
        """
        self.con.register("csv_stream", stream)
        try:
            params = {f"name_{i}": n for i, n in enumerate(names)}
            self._insert(load, sql, params)
        finally:
            self.con.unregister("csv_stream")
        self._record_malformed(load, malformed, first_line=2, blank=_is_blank)
        self._records_to_lines(load)

    # -- Parquet ------------------------------------------------------------------
    def _load_parquet(self, load: FileLoad) -> None:
        path = str(load.export.path)
        schema = self.con.execute(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))", [path]
        ).fetchall()
        types = {str(name): str(type_) for name, type_ in schema}
        struct_fields = {
            name: self._struct_fields(path, name)
            for name, t in types.items()
            if t.startswith("STRUCT")
        }
        available: list[tuple[str, ...]] = [(n,) for n in types]
        available += [(n, c) for n, cols in struct_fields.items() for c in cols]
        self._require(load, available)
        fields_sql: list[str] = []
        for f in ENTITY_FIELDS[load.export.entity]:
            alternatives = [p for p in f.columns if p in available]
            if not alternatives:
                fields_sql.append(f"NULL AS {f.name}, NULL AS {f.name}_t")
                continue
            tags, values = [], []
            for column_path in alternatives:
                ref = ".".join(quote_ident(p) for p in column_path)
                type_ = (
                    types[column_path[0]]
                    if len(column_path) == 1
                    else struct_fields[column_path[0]][column_path[1]]
                )
                tag, value = _parquet_value(ref, type_)
                tags.append(tag)
                values.append(value)
            tag, value = _coalesce_alternatives(tags, values)
            fields_sql.append(f"{value} AS {f.name}, {tag} AS {f.name}_t")
        # A view cannot bind parameters: the file id and the quoted path are written in.
        sql = f"""
            SELECT CAST({int(load.file_id)} AS INTEGER) AS file_id, file_row_number + 1 AS pos,
                   false AS malformed, CAST(NULL AS VARCHAR) AS raw, 'parquet' AS kind,
                   CAST(NULL AS INTEGER) AS line_breaks, {", ".join(fields_sql)}
            FROM read_parquet({quote_literal(path)}, file_row_number = true)
        """
        ((rows,),) = self.con.execute(
            "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)", [path]
        ).fetchall()
        self.parquet[load.export.entity].append((load.export, sql))
        self.rows[load.file_id] = int(rows)
        self._make_view(load.export.entity)

    def _struct_fields(self, path: str, column: str) -> dict[str, str]:
        rows = self.con.execute(
            f"SELECT column_name, column_type FROM (DESCRIBE SELECT {quote_ident(column)}.* "
            "FROM read_parquet(?))",
            [path],
        ).fetchall()
        return {str(name): str(type_) for name, type_ in rows}

    # -- shared -------------------------------------------------------------------
    def _require(self, load: FileLoad, available: list[tuple[str, ...]]) -> None:
        fields = {f.name: f for f in ENTITY_FIELDS[load.export.entity]}
        missing = [
            name
            for name in REQUIRED_FIELDS[load.export.entity]
            if not any(
                path in available
                for path in (
                    fields[name].columns
                    if load.export.fmt == "parquet"
                    else [(c,) for c in fields[name].csv_names]
                )
            )
        ]
        if missing:
            raise UnreadableFileError(
                load.export.rel_path, f"required column(s) missing: {', '.join(missing)}"
            )

    def _insert(
        self, load: FileLoad, select_sql: str, params: dict[str, object] | None = None
    ) -> None:
        entity = load.export.entity
        bound: dict[str, object] = {"file_id": load.file_id, **(params or {})}
        if "$paths" in select_sql:
            bound["paths"] = _json_paths(entity)
        self.con.execute(f"INSERT INTO {_rows_table(entity)} BY NAME {select_sql}", bound)

    def _record_malformed(
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

    def _records_to_lines(self, load: FileLoad) -> None:
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


def _parquet_value(ref: str, type_: str) -> tuple[str, str]:
    """Type tag and text of one Parquet column, from its DuckDB type."""
    t = type_.upper()
    null_or = f"CASE WHEN {ref} IS NULL THEN 'null' ELSE '{{tag}}' END"
    if t in {"VARCHAR", "UUID"}:
        return null_or.format(tag="string"), f"CAST({ref} AS VARCHAR)"
    if t in {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    }:
        return null_or.format(tag="integer"), f"CAST({ref} AS VARCHAR)"
    if t in {"FLOAT", "DOUBLE"} or t.startswith("DECIMAL"):
        return null_or.format(tag="number"), f"CAST({ref} AS VARCHAR)"
    if t == "BOOLEAN":
        return null_or.format(tag="boolean"), f"CAST({ref} AS VARCHAR)"
    if t.startswith("TIMESTAMP"):
        # Nanoseconds are dropped, not rounded, like fraction digits beyond 6 in text:
        # strftime of a TIMESTAMP_NS truncates, a cast to TIMESTAMP would round
        # 23:59:59.999999999 up into the next day.
        target = "TIMESTAMP_NS" if "_NS" in t else "TIMESTAMP"
        zone = "Z" if "TIME ZONE" in t or t.startswith("TIMESTAMPTZ") else ""
        return (
            null_or.format(tag="string"),
            f"strftime(CAST({ref} AS {target}), '%Y-%m-%dT%H:%M:%S.%f{zone}')",
        )
    if t == "DATE":
        return null_or.format(tag="string"), f"CAST({ref} AS VARCHAR)"
    return null_or.format(tag="other"), "NULL"


def _is_blank(text: str) -> bool:
    """A blank line, as the SQL side trims it: `str.strip()` would also drop lines of
    control characters such as the record separator, which are malformed rows."""
    return not text.strip(" \t\r\n")


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
            f"a line is longer than {_BLOCK_SIZE >> 20} MiB, too long to be one record "
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
