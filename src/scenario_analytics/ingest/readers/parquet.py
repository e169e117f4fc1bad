"""Parquet (`.parquet`): read in place, not copied. Loading reads the schema and the row
count from the footer; the `raw_<entity>` view reads the typed columns through one
`read_parquet` select per file, so validation reads them in one pass."""

from __future__ import annotations

from scenario_analytics.engine.database import quote_ident, quote_literal
from scenario_analytics.ingest.entities import ENTITY_FIELDS
from scenario_analytics.ingest.readers.common import (
    FileLoad,
    RawRows,
    coalesce_alternatives,
    require_columns,
)


class ParquetReader:
    name = "parquet"
    suffixes = (".parquet",)
    gzip = False

    def load(self, raw: RawRows, load: FileLoad) -> None:
        path = str(load.export.local)
        schema = raw.con.execute(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))", [path]
        ).fetchall()
        types = {str(name): str(type_) for name, type_ in schema}
        struct_fields = {
            name: _struct_fields(raw, path, name)
            for name, t in types.items()
            if t.startswith("STRUCT")
        }
        available: list[tuple[str, ...]] = [(n,) for n in types]
        available += [(n, c) for n, cols in struct_fields.items() for c in cols]
        require_columns(load.export, available, nested=True)
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
            tag, value = coalesce_alternatives(tags, values)
            fields_sql.append(f"{value} AS {f.name}, {tag} AS {f.name}_t")
        # A view cannot bind parameters: the file id and the quoted path are written in.
        sql = f"""
            SELECT CAST({int(load.file_id)} AS INTEGER) AS file_id, file_row_number + 1 AS pos,
                   false AS malformed, CAST(NULL AS VARCHAR) AS raw, 'parquet' AS kind,
                   CAST(NULL AS INTEGER) AS line_breaks, {", ".join(fields_sql)}
            FROM read_parquet({quote_literal(path)}, file_row_number = true)
        """
        ((rows,),) = raw.con.execute(
            "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)", [path]
        ).fetchall()
        raw.add_in_place(load, sql, int(rows))


def _struct_fields(raw: RawRows, path: str, column: str) -> dict[str, str]:
    rows = raw.con.execute(
        f"SELECT column_name, column_type FROM (DESCRIBE SELECT {quote_ident(column)}.* "
        "FROM read_parquet(?))",
        [path],
    ).fetchall()
    return {str(name): str(type_) for name, type_ in rows}


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
