"""JSON documents (`.json`, gzip too): an array of records, or an API list page
`{"data": [...]}`. DuckDB reads the whole document and unnests its records."""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

from scenario_analytics.errors import UnreadableFileError
from scenario_analytics.ingest.readers.common import (
    FileLoad,
    RawRows,
    exact_numbers,
    json_paths,
    json_select,
)


class JsonDocumentReader:
    name = "json"
    suffixes = (".json",)
    gzip = True

    def load(self, raw: RawRows, load: FileLoad) -> None:
        with tempfile.TemporaryDirectory(prefix="scenario-analytics-") as tmp:
            path = load.export.local
            if load.export.gzip:
                path = Path(tmp) / "document.json"
                with gzip.open(load.export.local, "rb") as src, path.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            raw.con.execute(
                """CREATE OR REPLACE TEMP TABLE json_document AS
                   SELECT CASE WHEN starts_with(content, chr(65279)) THEN content[2:]
                               ELSE content END AS content
                   FROM read_text(?)""",
                [str(path)],
            )
        shape = raw.con.execute(
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
            path_expr, exact = "'$[*]'", exact_numbers(entity, "content", "[{}]")
        else:
            path_expr = "'$.data[*]'"
            exact = exact_numbers(entity, "content", '{"data": [{}]}', member="data")
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
        raw.insert(
            load,
            json_select(load.export.entity, source, "exact"),
            {"paths": json_paths(load.export.entity)},
        )
        raw.con.execute("DROP TABLE json_document")
