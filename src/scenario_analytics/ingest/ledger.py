"""The incremental ledger: each export file's staged rows, kept between runs.

Parsing and validating rows (`sql/` files marked `-- Scope: per-file`) is most of a
run's work, and it depends on nothing but the file's own bytes. The ledger keeps its
result per file as Parquet in the snapshot store (on local disk or S3, through
`storage/`), used only under the store's lease; a run in a new container reads it from
the store like any other:

    DIR/.ledger/catalog.json                          which files the ledger holds
    DIR/.ledger/<table>/<sha256>.<entity>.<format>.parquet
                                                      one file's rows of one staged table
    DIR/.ledger/repeats.json, repeats/<sha256>.parquet
                                                      the session ids repeated among the
                                                      files (`ingest/repeats.py`)

`catalog.json` lists, for each export file of the last run, its relative path, entity,
format, size, sha256 and row count, and for each staged table it has rows in, the part
file's row count, bytes and sha256; it also holds the digest of the per-file SQL and the
code the rows were made under. A part is named by what its rows depend on: the export
file's content (sha256), entity (which SQL reads it) and format (how it is parsed). So
the same bytes under two paths, or a renamed file, share one part and are not parsed
again. `file_id`, the byte-order rank of a file's path that "last file wins" uses, is
not stored: each run maps every part to its own `file_id`s.

A run parses only files whose content the catalog does not list and writes their rows
as new parts. Then every staged table becomes a view: one `read_parquet` over exactly
the parts this run needs (the new ones too), joined to this run's file ids, and the
tables the per-file SQL made are dropped. Reading the new rows back costs less than
keeping them: at 10M sessions those tables hold 2.6 GB uncompressed, more than the
default memory limit, so they sit in the spill folder; their Parquet is 314 MB. What
follows (rejects, duplicates, summaries) runs over all rows, so the result is the same
as a run from scratch; only which session ids repeat is carried from the run before
when files were only added (`ingest/repeats.py`), and that is exact too.

Each part is written once (`COPY ... TO` a local file, then uploaded: verified by size
and sha256) and never rewritten while its file is unchanged; the parts of files that
changed or disappeared are deleted once the new catalog no longer names them. The
catalog is written last, as one object (atomic: the old catalog or the new one): it
names only parts that were complete before it was written. So a run killed at any
point, or one that fails on a full disk, leaves the previous catalog with all its
parts, or the new one with all of its; what the catalog does not name (parts of a run
that died) is deleted by the next run. Nothing the catalog names is trusted blindly
either: a part is used only if its size and sha256 are those the catalog recorded
(hashing the 314 MB of parts of 10M sessions takes ~0.1 s, in threads; on S3 each part
is downloaded into the cache folder and checked there); a missing, truncated or altered
part is deleted and its export file parsed again, with a warning. A catalog that cannot
be read is a new, empty ledger, with a warning.

The rows are valid while the per-file SQL and the code are unchanged: a catalog made
under another digest, or `--full-refresh`, empties the ledger before anything is
parsed. The DuckDB file of earlier versions (`DIR/.ledger.duckdb` and its `.wal`) is
removed on sight, with a message; its files are parsed once more.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from scenario_analytics.engine.database import insertion_order_kept, quote_ident, quote_literal
from scenario_analytics.events import Event, Report, ignore
from scenario_analytics.ingest.entities import ExportFile
from scenario_analytics.ingest.repeats import forget_state, state_names
from scenario_analytics.layout import LEDGER_NAME
from scenario_analytics.storage import ObjectMissing, Storage, StorageError, sha256_file

CATALOG_NAME = "catalog.json"
CATALOG_KEY = f"{LEDGER_NAME}/{CATALOG_NAME}"
# The ledger of earlier versions: one DuckDB file (and its write-ahead log).
OLD_LEDGER_NAMES = (".ledger.duckdb", ".ledger.duckdb.wal")
# Bumped when the catalog's layout changes: a catalog of another format is not read.
CATALOG_FORMAT = 2
# ZSTD level 1, as the snapshot's tables: the ledger is written for every new file.
_PARQUET = "FORMAT PARQUET, COMPRESSION ZSTD, COMPRESSION_LEVEL 1, PARQUET_VERSION V2"
# A part's rows by user, then position: a user's sessions repeat their email, names and
# id, which then compress to runs (10M sessions: a 1.26M-row part 36.7 -> 28.0 MB, the
# ledger a quarter smaller, for +0.25 s of sorting per such part). Readers never rely on
# the order: every later step keys on (file_id, pos). By position alone where a table
# has no user.
_PART_ORDER = ("user_id", "pos")


def _part_order(columns: set[str]) -> str:
    keys = [c for c in _PART_ORDER if c in columns]
    return f" ORDER BY {', '.join(keys)}" if keys else ""


# What a table, entity, format or sha256 in a part's name may hold: the catalog is read
# from disk, and a name from it must not reach outside the ledger's folder.
_NAME = re.compile(r"^[a-z0-9_]+$")
_FORMAT = re.compile(r"^[a-z0-9]+(\.gz)?$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class InputFile:
    """An export file with its identity for the ledger: index, size and content hash."""

    file_id: int
    export: ExportFile
    sha256: str
    mtime_ns: int = 0

    @property
    def rel_path(self) -> str:
        return self.export.rel_path

    @property
    def size(self) -> int:
        return self.export.size

    @property
    def format(self) -> str:
        """How the file is parsed: its format, and `.gz` when compressed."""
        return self.export.fmt + (".gz" if self.export.gzip else "")

    @property
    def content(self) -> tuple[str, str, str, int]:
        """What its staged rows depend on (besides the digest): entity, format, bytes."""
        return (self.export.entity, self.format, self.sha256, self.size)


@dataclass(frozen=True)
class Part:
    """One export file's rows of one staged table, in one Parquet file of the ledger."""

    table: str
    rows: int
    bytes: int
    sha256: str  # of the Parquet file


@dataclass(frozen=True)
class Entry:
    """One export file in the catalog: what it is and where its staged rows are."""

    rel_path: str
    entity: str
    format: str
    size: int
    sha256: str
    parts: tuple[Part, ...]
    etag: str = ""  # the export object's tag when its sha256 was taken (S3 exports)

    @property
    def content(self) -> tuple[str, str, str, int]:
        return (self.entity, self.format, self.sha256, self.size)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    def part_path(self, part: Part) -> str:
        """The part's path in the ledger's folder: named by the file's content."""
        return f"{part.table}/{self.sha256}.{self.entity}.{self.format}.parquet"

    def paths(self) -> list[str]:
        return [self.part_path(p) for p in self.parts]

    def as_json(self) -> dict[str, object]:
        return {
            "rel_path": self.rel_path,
            "entity": self.entity,
            "format": self.format,
            "size": self.size,
            "sha256": self.sha256,
            **({"etag": self.etag} if self.etag else {}),
            "rows": self.rows,
            "parts": [
                {"table": p.table, "rows": p.rows, "bytes": p.bytes, "sha256": p.sha256}
                for p in self.parts
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> Entry:
        """An entry of `catalog.json`; ValueError (or KeyError, TypeError) if malformed."""
        parts = tuple(
            Part(str(p["table"]), int(p["rows"]), int(p["bytes"]), str(p["sha256"]))
            for p in data["parts"]
        )
        entry = cls(
            str(data["rel_path"]),
            str(data["entity"]),
            str(data["format"]),
            int(data["size"]),
            str(data["sha256"]),
            parts,
            str(data.get("etag", "")),
        )
        names = [entry.entity, *(p.table for p in parts)]
        hashes = [entry.sha256, *(p.sha256 for p in parts)]
        if (
            not all(_NAME.match(n) for n in names)
            or not _FORMAT.match(entry.format)
            or not all(_SHA256.match(h) for h in hashes)
            or len({p.table for p in parts}) != len(parts)
        ):
            raise ValueError(f"malformed entry for {entry.rel_path}")
        return entry


@dataclass
class Catalog:
    """`catalog.json`: the digest the rows were made under, and one entry per file."""

    digest: str
    entries: list[Entry] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        body = {
            "format": CATALOG_FORMAT,
            "digest": self.digest,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": [e.as_json() for e in sorted(self.entries, key=lambda e: e.rel_path)],
        }
        return json.dumps(body, indent=1).encode() + b"\n"

    @classmethod
    def read(cls, storage: Storage) -> Catalog | None:
        """The store's catalog; None if there is none. ValueError if unreadable."""
        try:
            text, _etag = storage.read(CATALOG_KEY)
        except ObjectMissing:
            return None
        try:
            data = json.loads(text)
            if data["format"] != CATALOG_FORMAT:
                raise ValueError(f"format {data['format']!r}, not {CATALOG_FORMAT}")
            return cls(str(data["digest"]), [Entry.from_json(e) for e in data["files"]])
        except (KeyError, TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(str(exc) or type(exc).__name__) from exc

    def paths(self) -> set[str]:
        return {p for e in self.entries for p in e.paths()}

    def known_sha256(self, rel_path: str, size: int, etag: str) -> str | None:
        """The sha256 of an export object as the catalog took it, if the object is the same
        (same path, size and tag): a run need not download an unchanged S3 export."""
        if not etag:
            return None
        for entry in self.entries:
            if (entry.rel_path, entry.size, entry.etag) == (rel_path, size, etag):
                return entry.sha256
        return None


class Ledger:
    """Staged rows per export file, kept as Parquet in the store (`.ledger/`).

    Without a storage (validate, tests) nothing is kept: every file is parsed and the
    staged tables stay ordinary tables of the run's connection.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        storage: Storage | None,
        digest: str,
        *,
        reset: bool = False,
        report: Report = ignore,
    ) -> None:
        self.con = con
        self.storage = storage
        self.digest = digest
        self.report = report
        self.catalog = Catalog(digest)
        self._reused: dict[str, Entry] = {}  # by rel_path: this run's unchanged files
        self._local: dict[str, Path] = {}  # part path -> a local file with its bytes
        # After `store`: each staged table's parts, with the file_id each gives its rows.
        self.parts_by_table: dict[str, list[tuple[str, int]]] = {}
        if storage is None:
            return
        _migrate(storage, report)
        catalog = None if reset else self._read_catalog()
        if catalog is not None and catalog.digest != digest:
            # Made by other SQL or code: none of its rows can be trusted.
            report(
                Event(
                    "stage",
                    "info",
                    "the per-file SQL or the code changed since the ledger was written: "
                    "starting a new one, every file is parsed",
                )
            )
            catalog = None
        if catalog is None:
            # Forget the old catalog before its parts go: no catalog names a missing part.
            # The ids repeated among the old files go too (made from the same rows).
            storage.delete([CATALOG_KEY])
            forget_state(storage)
        else:
            self.catalog = catalog
        self._remove_unnamed()

    @property
    def kept(self) -> bool:
        return self.storage is not None

    def _read_catalog(self) -> Catalog | None:
        assert self.storage is not None
        try:
            return Catalog.read(self.storage)
        except (StorageError, ValueError) as exc:
            # A ledger is only a cache: one that cannot be read is rebuilt.
            self.report(
                Event(
                    "stage",
                    "warning",
                    f"ledger {CATALOG_KEY} cannot be read ({exc}); starting a new one, every "
                    "file is parsed",
                )
            )
            return None

    def _remove_unnamed(self, report: bool = True) -> int:
        """Delete what the catalog does not name: parts of files that changed or went,
        what killed or failed runs left (parts no catalog names). Returns how many
        objects were removed."""
        assert self.storage is not None
        keep = {CATALOG_NAME, *self.catalog.paths(), *state_names(self.storage)}
        prefix = LEDGER_NAME + "/"
        doomed = [o.key for o in self.storage.objects(prefix) if o.key[len(prefix) :] not in keep]
        self.storage.delete(doomed)
        if doomed and report:
            self.report(
                Event("stage", "info", f"removed {len(doomed)} files the ledger no longer names")
            )
        return len(doomed)

    def reusable(self, files: Sequence[InputFile]) -> set[str]:
        """Relative paths of the files whose staged rows the ledger holds, intact.

        A part that is missing or differs from what the catalog recorded (size, sha256)
        is deleted and its files are parsed again, with a warning."""
        if self.storage is None:
            return set()
        known = {e.content: e for e in self.catalog.entries}
        wanted = {f.rel_path: known[f.content] for f in files if f.content in known}
        checks = {
            path: part
            for entry in wanted.values()
            for part, path in zip(entry.parts, entry.paths(), strict=True)
        }
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(4, self.storage.concurrency)) as pool:
            problems = dict(zip(checks, pool.map(self._check_part, checks.items()), strict=True))
        if checks:
            seconds = time.monotonic() - started
            self.report(
                Event(
                    "stage",
                    "info",
                    f"ledger: checked {len(checks)} parts "
                    f"({sum(p.bytes for p in checks.values()):,} bytes) in {seconds:.1f}s",
                    seconds=seconds,
                    data={"ledger_parts_checked": len(checks)},
                )
            )
        damaged = {path: problem for path, problem in problems.items() if problem}
        for path, problem in sorted(damaged.items()):
            self.report(
                Event(
                    "stage",
                    "warning",
                    f"ledger part {LEDGER_NAME}/{path} {problem}: not used, its export file "
                    "is parsed again",
                    data={"ledger_part": path},
                )
            )
            self.storage.delete([f"{LEDGER_NAME}/{path}"])
        self._reused = {
            rel: entry for rel, entry in wanted.items() if not set(entry.paths()) & set(damaged)
        }
        return set(self._reused)

    def _check_part(self, item: tuple[str, Part]) -> str | None:
        """What is wrong with a part (missing, another size, another sha256), or None;
        a whole part's local file is kept for reading it."""
        assert self.storage is not None
        path, part = item
        try:
            local = self.storage.fetch(f"{LEDGER_NAME}/{path}", part.sha256, verify=True)
            size = local.stat().st_size
        except ObjectMissing:
            return "cannot be read (it is missing)"
        except StorageError as exc:
            if "sha256" in exc.message:
                return "does not have the sha256 recorded"
            return f"cannot be read ({exc.message})"
        except OSError as exc:
            return f"cannot be read ({exc.strerror or exc})"
        if size != part.bytes:
            return f"has {size:,} bytes, not the {part.bytes:,} recorded"
        self._local[path] = local
        return None

    def store(
        self, files: Sequence[InputFile], parsed: Sequence[InputFile], tables: list[str]
    ) -> None:
        """Keep the staged rows of `parsed`; forget files not in `files`.

        On return, each of `tables` (the per-file SQL's outputs) is a view of the rows
        of every file in `files`, read from the ledger's parts, with `file_id` as in
        this run; the tables the SQL made are dropped.
        """
        if self.storage is None:
            return
        started, cpu = time.monotonic(), time.process_time()
        first = first_of_each_content(parsed)
        ids = [f.file_id for f in first]
        has_rows: set[tuple[int, str]] = set()
        for table in tables if first else []:
            found = self.con.execute(
                f"SELECT DISTINCT file_id FROM {quote_ident(table)} "
                "WHERE list_contains(?, file_id)",
                [ids],
            ).fetchall()
            has_rows |= {(int(file_id), table) for (file_id,) in found}
        scratch = self.storage.scratch(f"ledger-{uuid.uuid4().hex}")
        written = {
            item.content: write_file_parts(
                self.con, scratch, item, [t for t in tables if (item.file_id, t) in has_rows]
            )
            for item in first
        }
        storage = self.storage
        with ThreadPoolExecutor(max_workers=max(1, storage.concurrency)) as pool:
            for local in pool.map(lambda e: upload_parts(storage, scratch, e), written.values()):
                self._local.update(local)
        shutil.rmtree(scratch, ignore_errors=True)
        self.store_written(files, written, tables, started, cpu)

    def store_written(
        self,
        files: Sequence[InputFile],
        written: dict[tuple[str, str, str, int], Entry],
        tables: list[str],
        started: float,
        cpu: float,
    ) -> None:
        """Name the parts `written` (by content; `write_file_parts` made them and
        `upload_parts` stored them, here or in a Spark task) and the reused ones in a new
        catalog, then read them (`store`)."""
        assert self.storage is not None
        self.catalog = Catalog(
            self.digest,
            [
                dataclasses.replace(
                    self._reused.get(f.rel_path) or written[f.content],
                    rel_path=f.rel_path,
                    etag=f.export.etag,
                )
                for f in files
            ],
        )
        self.storage.write(CATALOG_KEY, self.catalog.to_bytes())
        removed = self._remove_unnamed(report=False)
        seconds = time.monotonic() - started
        parts = [p for e in written.values() for p in e.parts]
        self.report(
            Event(
                "stage",
                "info",
                f"ledger: wrote {len(parts)} parts of {len(written)} files "
                f"({sum(p.rows for p in parts):,} rows, {sum(p.bytes for p in parts):,} "
                f"bytes) in {seconds:.1f}s"
                + (f", removed {removed} no longer named" if removed else ""),
                seconds=seconds,
                data={
                    "ledger_files_written": len(written),
                    "ledger_bytes_written": sum(p.bytes for p in parts),
                    "ledger_cpu_seconds": round(time.process_time() - cpu, 3),
                },
            )
        )
        self._read_parts(files, tables)

    def _part_file(self, entry: Entry, part: Part) -> str:
        """A local file with a part's bytes (in place on local disk, fetched on S3)."""
        assert self.storage is not None
        path = entry.part_path(part)
        if path not in self._local:
            self._local[path] = self.storage.fetch(f"{LEDGER_NAME}/{path}", part.sha256)
        return str(self._local[path])

    def _read_parts(self, files: Sequence[InputFile], tables: list[str]) -> None:
        """Make each table with rows a view of its parts, each row with its file's
        `file_id` in this run (a part two paths share gives its rows to both).

        The rows just written are read back too, rather than kept in the tables the SQL
        made: at 10M sessions those hold 2.6 GB uncompressed, more than the default memory
        limit, and reading them back from the spill folder cost more than reading ~300 MB
        of Parquet (docs/PERFORMANCE.md, fourth round).
        """
        entries = {e.rel_path: e for e in self.catalog.entries}
        mapping = [
            (self._part_file(entries[f.rel_path], part), f.file_id, part.table)
            for f in files
            for part in entries[f.rel_path].parts
        ]
        self.parts_by_table = {
            table: [(p, i) for p, i, t in mapping if t == table]
            for table in tables
            if any(t == table for _, _, t in mapping)
        }
        self.con.execute("CREATE OR REPLACE TABLE ledger_parts (filename VARCHAR, file_id INTEGER)")
        if mapping:
            self.con.executemany(
                "INSERT INTO ledger_parts VALUES (?, ?)", [(p, i) for p, i, _ in mapping]
            )
        for table in tables:
            paths = sorted({p for p, _, t in mapping if t == table})
            if not paths:
                continue  # no file has rows in it: the SQL's (empty) table stays
            columns = self.con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE database_name = 'memory' AND schema_name = 'main' AND table_name = ? "
                "ORDER BY column_index",
                [table],
            ).fetchall()
            # Cast to the types the SQL made, so the view is the table it replaces
            # (`tests/test_ledger.py` checks that the rows and types come back the same).
            selected = ", ".join(
                "r.file_id"
                if name == "file_id"
                else f"CAST(p.{quote_ident(name)} AS {data_type}) AS {quote_ident(name)}"
                for name, data_type in columns
            )
            listed = ", ".join(quote_literal(p) for p in paths)
            self.con.execute(f"DROP TABLE {quote_ident(table)}")
            self.con.execute(
                f"""CREATE VIEW {quote_ident(table)} AS
                    SELECT {selected}
                    FROM read_parquet([{listed}], filename = true) AS p
                    JOIN ledger_parts AS r ON r.filename = p.filename"""
            )


def first_of_each_content(parsed: Sequence[InputFile]) -> list[InputFile]:
    """Two paths with the same bytes have the same rows: their parts are written once."""
    first: dict[tuple[str, str, str, int], InputFile] = {}
    for item in parsed:
        first.setdefault(item.content, item)
    return list(first.values())


def write_file_parts(
    con: duckdb.DuckDBPyConnection, folder: Path, item: InputFile, tables: list[str]
) -> Entry:
    """The ledger's parts of one parsed file: its rows of each of `tables` (staged tables
    of `con` that have rows of it), each a Parquet file of `folder` named by the content."""
    entry = Entry(item.rel_path, item.export.entity, item.format, item.size, item.sha256, ())
    parts = tuple(_write_part(con, folder, entry, table, item.file_id) for table in tables)
    return dataclasses.replace(entry, parts=parts)


def _write_part(
    con: duckdb.DuckDBPyConnection, folder: Path, entry: Entry, table: str, file_id: int
) -> Part:
    """One file's rows of one table, written into a local folder and hashed."""
    final = folder / entry.part_path(Part(table, 0, 0, ""))
    final.parent.mkdir(parents=True, exist_ok=True)
    columns = {str(c) for c, *_ in con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()}
    with insertion_order_kept(con):
        ((count,),) = con.execute(
            f"COPY (SELECT * EXCLUDE (file_id) FROM {quote_ident(table)} WHERE file_id = ?"
            f"{_part_order(columns)}) TO {quote_literal(str(final))} ({_PARQUET})",
            [file_id],
        ).fetchall()
    with final.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    return Part(table, int(count), size, sha256)


def upload_parts(storage: Storage, folder: Path, entry: Entry) -> dict[str, Path]:
    """Store the parts `write_file_parts` wrote into `folder` in the ledger (verified);
    returns a local file with each part's bytes, by part path."""
    local = {}
    for part in entry.parts:
        path = entry.part_path(part)
        storage.upload(f"{LEDGER_NAME}/{path}", folder / path, part.sha256, move=True)
        local[path] = storage.fetch(f"{LEDGER_NAME}/{path}", part.sha256)
    return local


def drop_views(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    """Views an earlier `Ledger.store` on this connection left where tables will be made."""
    for table in tables:
        row = con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE database_name = 'memory' AND view_name = ?",
            [table],
        ).fetchone()
        if row and row[0]:
            con.execute(f"DROP VIEW {quote_ident(table)}")


def ledger_problems(storage: Storage) -> list[str]:
    """What is inconsistent in a store's ledger: a part the catalog names that is missing
    or differs, a file it does not name. Empty for a whole ledger (tests, support)."""
    catalog = Catalog.read(storage)
    named = catalog.paths() if catalog else set()
    problems = []
    prefix = LEDGER_NAME + "/"
    sizes = {o.key[len(prefix) :]: o.size for o in storage.objects(prefix)}
    for entry in catalog.entries if catalog else []:
        for part, rel in zip(entry.parts, entry.paths(), strict=True):
            if rel not in sizes:
                problems.append(f"{rel} is missing")
            elif sizes[rel] != part.bytes:
                problems.append(f"{rel} has another size")
            elif sha256_file(storage.fetch(prefix + rel)) != part.sha256:
                problems.append(f"{rel} has another sha256")
    kept = state_names(storage)
    for rel in sizes:
        if rel != CATALOG_NAME and rel not in named and rel not in kept:
            problems.append(f"{rel} is not named by the catalog")
    return problems


def _migrate(storage: Storage, report: Report) -> None:
    """Remove the DuckDB ledger of earlier versions (its rows are parsed once more)."""
    old = [
        name
        for name in OLD_LEDGER_NAMES
        if storage.head(name) is not None or storage.objects(name + "/")
    ]
    if not old:
        return
    storage.delete(old)
    report(
        Event(
            "stage",
            "info",
            f"removed the ledger of an earlier version ({', '.join(old)}): the ledger is "
            f"now {LEDGER_NAME}/, Parquet per export file; every file is parsed once",
        )
    )
