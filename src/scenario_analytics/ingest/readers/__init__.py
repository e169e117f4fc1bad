"""The export formats: one reader module per format, listed in `READERS`.

Adding a format is a module with a class that has the members of `Reader`, and a line in
`READERS` (with its import); discovery (`ingest/discover.py`) and loading
(`ingest/loader.py`) take the file suffixes and the reader from here.
"""

from __future__ import annotations

from typing import Protocol

from scenario_analytics.ingest.readers.common import FileLoad, RawRows
from scenario_analytics.ingest.readers.csv import CsvReader
from scenario_analytics.ingest.readers.json_document import JsonDocumentReader
from scenario_analytics.ingest.readers.jsonl import JsonLinesReader
from scenario_analytics.ingest.readers.parquet import ParquetReader


class Reader(Protocol):
    """One export format. Plain class attributes do for the three properties."""

    @property
    def name(self) -> str:
        """The format, as in `ExportFile.fmt`."""

    @property
    def suffixes(self) -> tuple[str, ...]:
        """The file name endings it reads, lower case, with the dot (`.jsonl`)."""

    @property
    def gzip(self) -> bool:
        """Whether each suffix + `.gz` is read too (decompressed while reading)."""

    def load(self, raw: RawRows, load: FileLoad) -> None:
        """Fill `raw` with the rows of the file `load.export`, each kept as text and a
        type tag per field; raise UnreadableFileError if the file cannot be read."""


READERS: tuple[Reader, ...] = (
    JsonLinesReader(),
    JsonDocumentReader(),
    CsvReader(),
    ParquetReader(),
)

_BY_NAME: dict[str, Reader] = {reader.name: reader for reader in READERS}


def reader_for(fmt: str) -> Reader:
    """The reader of a format (`ExportFile.fmt`)."""
    return _BY_NAME[fmt]


def suffix_table() -> tuple[tuple[str, str, bool], ...]:
    """(suffix, format, gzip) of every file name ending a reader reads, to be tried in
    this order: gzip variants first, and a suffix before any that it ends with.

    A suffix that ends with another (`.jsonl.gz`, `.gz`) has more dots, so a stable sort
    by the number of dots, most first, is enough; ties keep the order of `READERS`.
    """
    table = [(s + ".gz", r.name, True) for r in READERS if r.gzip for s in r.suffixes]
    table += [(s, r.name, False) for r in READERS for s in r.suffixes]
    return tuple(sorted(table, key=lambda entry: -entry[0].count(".")))


__all__ = ["READERS", "FileLoad", "RawRows", "Reader", "reader_for", "suffix_table"]
