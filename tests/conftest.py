"""Shared fixtures: tiny exports folders written into `tmp_path`, and loading them."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scenario_analytics.engine.database import connect
from scenario_analytics.engine.sql_files import SqlFile, load_sql_files
from scenario_analytics.pipeline.staging import LoadResult, load_exports

AS_OF = date(2026, 11, 26)

# The fixtures' sessions are dated without regard to the as-of days the tests build, so
# the `stale_exports` check (newest session within 72 hours of the as-of day's end) would
# refuse most of them. Tests opt out of that one check: the command line through its
# environment variable (set for every test, below), the library through these
# skip_checks. tests/test_checks.py turns it back on and tests it.
FIXTURE_SKIPS = frozenset({"stale_exports"})


@pytest.fixture(autouse=True)
def _skip_stale_exports_check() -> Iterator[None]:
    # A patch of its own: a test's `monkeypatch.undo()` must not take it back.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCENARIO_ANALYTICS_SKIP_CHECK", " ".join(sorted(FIXTURE_SKIPS)))
        yield


def session(id: str = "s1", **overrides: Any) -> dict[str, Any]:
    """A valid nested session record as the API returns it; `overrides` replace fields.

    Nested fields can be overridden with `user=...`/`scenario=...`; a value of `...`
    (Ellipsis) removes the field.
    """
    record: dict[str, Any] = {
        "id": id,
        "user": {"id": "u1", "email": "u1@acme.com", "first_name": "U", "last_name": "One"},
        "scenario": {"id": "sc1", "slug": "scenario-one", "name": "Scenario One"},
        "score": 80.5,
        "rank": "silver",
        "duration_seconds": 120,
        "is_valid_attempt": True,
        "created_at": "2026-11-01T10:00:00Z",
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not ...}


def flat_session(id: str = "s1", **overrides: Any) -> dict[str, Any]:
    """A valid flat session record (the CSV/Parquet shape); `...` removes a field."""
    record: dict[str, Any] = {
        "id": id,
        "user_id": "u1",
        "user_email": "u1@acme.com",
        "user_first_name": "U",
        "user_last_name": "One",
        "scenario_id": "sc1",
        "scenario_slug": "scenario-one",
        "scenario_name": "Scenario One",
        "score": 80.5,
        "rank": "silver",
        "duration_seconds": 120,
        "is_valid_attempt": True,
        "created_at": "2026-11-01T10:00:00Z",
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not ...}


CSV_SESSION_HEADER = [
    "id",
    "user_id",
    "user_email",
    "scenario_id",
    "score",
    "duration_seconds",
    "is_valid_attempt",
    "created_at",
]


def csv_session(id: str = "s1", **overrides: str) -> list[str]:
    """One CSV row (all text) in the order of CSV_SESSION_HEADER."""
    values = {
        "id": id,
        "user_id": "u1",
        "user_email": "u1@acme.com",
        "scenario_id": "sc1",
        "score": "80.5",
        "duration_seconds": "120",
        "is_valid_attempt": "true",
        "created_at": "2026-11-01T10:00:00Z",
    }
    values.update(overrides)
    return [values[name] for name in CSV_SESSION_HEADER]


def _text_lines(items: list[Any]) -> str:
    """JSON Lines: a str item is a raw line as written, anything else is JSON-encoded."""
    return "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items)


def _csv_text(rows: list[Any]) -> str:
    """CSV: a str item is a raw line, a list is a row written by the csv module."""
    out = io.StringIO()
    for row in rows:
        if isinstance(row, str):
            out.write(row + "\n")
        else:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(row)
    return out.getvalue()


def _encode(rel_path: str, content: Any) -> bytes:
    name = rel_path.removesuffix(".gz")
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, pa.Table) or name.endswith(".parquet"):
        table = content if isinstance(content, pa.Table) else pa.Table.from_pylist(content)
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()
    if name.endswith((".jsonl", ".ndjson")):
        return _text_lines(content).encode("utf-8")
    if name.endswith(".csv"):
        return _csv_text(content).encode("utf-8")
    return json.dumps(content).encode("utf-8")


def write_exports(root: Path, files: dict[str, Any]) -> Path:
    """Write an exports folder under `root` and return it.

    Keys are paths relative to the folder; the format follows the extension:
    - bytes or str: written as is (a str as UTF-8);
    - `.jsonl`/`.ndjson`: a list of records (JSON-encoded) or raw lines (str);
    - `.json`: any JSON value (a list of records, or a page dict);
    - `.csv`: a list of rows (lists, written by `csv`) or raw lines (str), header first;
    - `.parquet`: a list of dicts or a `pyarrow.Table`.
    A trailing `.gz` gzip-compresses whatever the rest of the name gives.
    """
    for rel_path, content in files.items():
        path = root / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _encode(rel_path, content)
        if rel_path.endswith(".gz") and not isinstance(content, bytes):
            data = gzip.compress(data)
        path.write_bytes(data)
    return root


@dataclass
class Loaded:
    """An exports folder loaded into DuckDB, with the result and handy queries."""

    con: duckdb.DuckDBPyConnection
    result: LoadResult

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params).fetchall()

    def rejects(self, entity: str = "sessions") -> list[tuple[Any, ...]]:
        """(source_file, position, reason, raw) of an entity, in file and position order."""
        return self.rows(
            "SELECT source_file, position, reason, raw FROM rejects WHERE entity = ? "
            "ORDER BY source_file, position",
            [entity],
        )

    def reasons(self, entity: str = "sessions") -> list[tuple[int, str]]:
        """(position, reason) of an entity's rejects."""
        return [(int(pos), str(reason)) for _f, pos, reason, _raw in self.rejects(entity)]

    def staged(self, columns: str = "*", where: str = "true") -> list[tuple[Any, ...]]:
        return self.rows(f"SELECT {columns} FROM staged_sessions WHERE {where} ORDER BY pos")

    def file(self, rel_path: str) -> Any:
        return next(f for f in self.result.files if f.path == rel_path)


@pytest.fixture
def sql_files() -> list[SqlFile]:
    return load_sql_files()


@pytest.fixture
def load(tmp_path: Path, sql_files: list[SqlFile]) -> Iterator[Callable[..., Loaded]]:
    """`load({"sessions/a.jsonl": [...]})` writes the exports and loads them."""
    connections: list[duckdb.DuckDBPyConnection] = []

    def _load(files: dict[str, Any], as_of: date = AS_OF) -> Loaded:
        root = write_exports(tmp_path / "exports", files)
        con = connect()
        connections.append(con)
        return Loaded(con, load_exports(con, root, as_of, sql_files))

    yield _load
    for con in connections:
        con.close()


# -- object storage: S3-compatible servers started here, on 127.0.0.1 ----------------------


@dataclass
class S3Place:
    """A fresh bucket on a test server, with the AWS variables set for the test: `uri` is
    where a test puts its store (`s3://bucket/store`), `exports_uri` its exports."""

    server: Any
    bucket: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/store"

    @property
    def exports_uri(self) -> str:
        return f"s3://{self.bucket}/exports"

    def upload_folder(self, folder: Path, prefix: str = "exports") -> str:
        """Copy a local folder's files under `prefix`; returns its s3:// URI."""
        client = self.server.client()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            client.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
        return f"s3://{self.bucket}/{prefix}"

    def keys(self, prefix: str = "store") -> dict[str, bytes]:
        return dict(self.server.keys(self.bucket, prefix))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """moto's S3 server, one per test process (xdist worker)."""
    from helpers_s3 import start_moto

    server = start_moto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs_server() -> Iterator[Any]:
    """SeaweedFS (`weed mini`): a real object store, one per test process."""
    from helpers_s3 import start_seaweedfs

    server = start_seaweedfs()
    yield server
    server.stop()


def _place(server: Any, monkeypatch: pytest.MonkeyPatch) -> S3Place:
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return S3Place(server, server.new_bucket())


@pytest.fixture
def s3(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> S3Place:
    """A new bucket on moto's server, the AWS variables pointing at it."""
    return _place(s3_server, monkeypatch)


@pytest.fixture(params=["moto", "seaweedfs"])
def any_s3(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> S3Place:
    """A new bucket on each server in turn (moto, then SeaweedFS)."""
    name = "s3_server" if request.param == "moto" else "seaweedfs_server"
    return _place(request.getfixturevalue(name), monkeypatch)


# -- markers for running subsets: `make check` leaves these out; `make test` runs all ----

_S3_FIXTURES = {"s3", "any_s3", "s3_server", "seaweedfs_server"}
# Files whose tests run the job end to end (many runs, subprocesses, servers, kills):
# `make check` leaves them out (`-m "not slow"`), `make test` runs them. The others hold
# unit tests and small runs: together under a minute on two cores.
SLOW_FILES = {
    "test_backfill.py",
    "test_checks.py",
    "test_cli_hints.py",
    "test_digests.py",
    "test_faults.py",
    "test_generate.py",
    "test_incremental.py",
    "test_install.py",
    "test_interrupts.py",
    "test_jsonl_fast_path.py",
    "test_ledger.py",
    "test_object_storage.py",
    "test_progress.py",
    "test_properties.py",
    "test_query_statement.py",
    "test_refusals.py",
    "test_reliability_faults.py",
    "test_reliability_inputs.py",
    "test_reliability_query.py",
    "test_reliability_store.py",
    "test_serve_api.py",
    "test_serve_limits.py",
    "test_serve_openapi.py",
    "test_serve_ops.py",
    "test_serve_trust.py",
    "test_sharing.py",
    "test_snapshot.py",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Spark tests share one JVM per process: they all go to one xdist worker
    (`--dist loadgroup`: one JVM starts), and are marked `spark`; tests that start an S3
    server are marked `s3`."""
    del config
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
        if "spark" in item.nodeid.lower():
            item.add_marker(pytest.mark.spark)
            item.add_marker(pytest.mark.xdist_group("spark"))
        if fixtures & _S3_FIXTURES:
            item.add_marker(pytest.mark.s3)


def _xdist_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pytest-xdist 3.8's `--dist loadgroup` names a test's group by appending `@group` to
    `item._nodeid`, which pytest 9 no longer reads (it keeps the id in `item._id`): the
    groups were silently ignored and every worker started its own JVM. This does what
    xdist meant to, on a worker, after its own hook."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        names = sorted({str(m.args[0]) for m in item.iter_markers("xdist_group") if m.args})
        if names and "@" not in item.nodeid:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")  # type: ignore[attr-defined]


class _XdistGroups:
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        _xdist_groups(config, items)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_XdistGroups(), "xdist-groups-for-pytest-9")
