"""Answering summary and participants requests from a published snapshot alone.

A request is first normalized to its canonical key; if the snapshot precomputed that
key for the scenario, the stored body is the answer. Otherwise the summarize-phase SQL
files run on the snapshot's session-level tables for that one scenario, which gives the
same answer the materialization would have. They run inlined into one statement, parsed
once per reader, with a few optimizer passes off (`SnapshotQuery._prepare_statements`,
REQUEST_DISABLED_OPTIMIZERS): per request, DuckDB's parsing, binding and planning cost
more than reading the scenario's rows.

For batches (`query --requests`, the API), what a request needs from the snapshot is
read once: the scenario index at open, all precomputed bodies at the first lookup, and
the sessions of one scenario at a time from the session files until such reads have
cost about as much as loading them all, which are then held in memory (see
`_select_sessions`). Statement texts never depend on a request: values are bound, and
the scenario the summarize SQL sees is a session variable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

import duckdb

from scenario_analytics import filters
from scenario_analytics.engine.database import connect
from scenario_analytics.engine.sql_files import inline_sql_files, load_sql_files
from scenario_analytics.errors import ExitCode
from scenario_analytics.filters import (
    RequestError,
    SummaryRequest,
    is_text,
    parse_participants_request,
    parse_request,
)
from scenario_analytics.locations import Location
from scenario_analytics.publish.materialize import ONE_FILTER_QUERY, one_filter_params
from scenario_analytics.publish.records import Version
from scenario_analytics.publish.snapshot import sessions_relation
from scenario_analytics.publish.store import Store
from scenario_analytics.serve.participants import PAGE_COLUMNS, page_body
from scenario_analytics.settings import EngineSettings

_T = TypeVar("_T")
_R = TypeVar("_R")
# How many scenarios' precomputed bodies a batch of requests keeps as Python strings.
CACHED_SCENARIOS = 64
# Reading one scenario's sessions from the session files (a few row groups per day to
# decompress) costs about as much as loading this many rows in bulk: after as many reads
# as the files have such slices, a batch loads them all.
ROWS_PER_SCENARIO_READ = 100_000
# A scenario's read decodes at least one row group of every day's file: over 90 day files
# at 10M sessions it took 160-240 ms, against ~15 ms from one sorted sessions.parquet.
# So each DAY_FILES_PER_SLICE files make a read cost one more slice.
DAY_FILES_PER_SLICE = 8
# Optimizer passes a computed request runs without: on one scenario's few thousand rows
# they cost more planning time than they save (measured one at a time on the inlined
# summary statement at 10M sessions; together ~3 ms of ~18 ms CPU on a busy machine).
# Results are the same with and without them (tests/test_query_statement.py compares the
# two over many random requests). Only those statements run without them
# (`SnapshotQuery._fewer_optimizer_passes`).
REQUEST_DISABLED_OPTIMIZERS = (
    "statistics_propagation",
    "join_order",
    "projection_pullup",
    "join_filter_pushdown",
    "compressed_materialization",
    "common_subexpressions",
)
_DISABLED_OPTIMIZERS = ",".join(REQUEST_DISABLED_OPTIMIZERS)


@dataclass(frozen=True)
class Answer:
    """One request's answer: the exit code a command would end with (0, 2 invalid
    request, 3 not found) and the JSON body the API sends (its error body if not 0)."""

    exit_code: ExitCode
    body: str  # JSON text: the response body or the error body

    @property
    def code(self) -> str:
        """The error code of an error answer (`scenario_not_found`, ...); "" if not one."""
        if self.exit_code == ExitCode.OK:
            return ""
        return str(json.loads(self.body)["error"]["code"])

    @property
    def message(self) -> str:
        """A one-line description of an error answer, for stderr."""
        if self.exit_code == ExitCode.OK:
            return ""
        error = json.loads(self.body)["error"]
        return f"{error['code']}: {error['message']}"

    @property
    def hint(self) -> str:
        """What to do next about an error answer; "" if not one."""
        if self.exit_code == ExitCode.OK:
            return ""
        if self.code == "invalid_date" and "ISO 8601" in self.body:
            return _FORMAT_HINT  # the value's form is the problem, not its date
        return _HINTS.get(self.code, "see `scenario-analytics query --help`")


# What to do next, per error code of an answer (people read it; the body is the API's).
_HINTS = {
    "scenario_not_found": "check the scenario id or slug (both match exactly)",
    "snapshot_not_found": "run `scenario-analytics run` first, or pick a published --as-of date",
    "invalid_date": "give a date in the past (`scenario-analytics snapshots` lists them)",
}


_FORMAT_HINT = (
    "give a date as YYYY-MM-DD (a whole UTC day) or a date-time such as 2026-11-20T08:00:00Z"
)


def error_body(kind: str, code: str, message: str) -> str:
    # A message may quote what the user typed; lone surrogates in it (bytes that were
    # not UTF-8) are shown as \\udcff escapes so that the body can always be written.
    printable = message.encode("utf-8", "backslashreplace").decode("utf-8")
    body = {"error": {"type": kind, "code": code, "message": printable}}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    # JSON escapes the ASCII controls; these three it leaves as they are, yet readers
    # that split lines the Unicode way (Python's str.splitlines, some JSON Lines tools)
    # would break an answer of `--requests` in two at them.
    return text.translate(_LINE_BREAKS_ESCAPED)


# U+0085 (next line), U+2028 and U+2029 (line and paragraph separators), as JSON escapes.
_LINE_BREAKS_ESCAPED = {c: f"\\u{c:04x}" for c in (0x85, 0x2028, 0x2029)}


class SnapshotNotFound(Exception):
    """No such snapshot in the store; `answer` is the API's `snapshot_not_found` body."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.answer = Answer(
            ExitCode.NOT_FOUND, error_body("not_found", "snapshot_not_found", message)
        )


class InvalidSnapshotDate(SnapshotNotFound):
    """An as-of date that cannot have a snapshot (after today, UTC): `invalid_date`, 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.answer = Answer(ExitCode.USAGE, error_body("invalid_request", "invalid_date", message))


class SnapshotQuery:
    """Answers summary requests from one published snapshot of a store. Example:

        from scenario_analytics import SnapshotQuery

        reader = SnapshotQuery(Path("snapshots"))  # the snapshot latest.json names
        try:
            answer = reader.answer("procurement-discovery", {"group_ids": "g1"})
            print(answer.exit_code, answer.body)  # the API's body, or its error body
        finally:
            reader.close()

    Raises `SnapshotNotFound` (its `answer` is the error body) when there is no such
    snapshot. Not thread-safe: one reader per thread.
    """

    def __init__(
        self,
        store: Store | Location | Path | str,
        as_of: date | None = None,
        reads_before_loading: int | None = None,
        engine: EngineSettings | None = None,
        version: Version | None = None,
    ) -> None:
        """`store`: the store (or its location); `as_of`: the date (None: the one
        latest.json names), or `version`, one version of a date already read.
        `reads_before_loading`: how many scenarios a batch reads from the session files
        before it loads all sessions into memory; None: one per ROWS_PER_SCENARIO_READ
        rows of the files (0 loads them for the first computed request). `engine`: DuckDB's
        resources (a job file's [engine]); None: the defaults."""
        if as_of is not None and as_of > filters.utc_today():
            raise InvalidSnapshotDate(
                f"as_of {as_of.isoformat()} is after today ({filters.utc_today().isoformat()}, UTC)"
            )
        self._owns_store = not isinstance(store, Store)
        store = store if isinstance(store, Store) else Store(store)
        if version is None:
            snapshot_date = as_of or store.latest()
            if snapshot_date is None:
                raise SnapshotNotFound(f"no snapshot in {store.describe()}")
            version = store.version(snapshot_date)
            if version is None:
                raise SnapshotNotFound(
                    f"no snapshot for {snapshot_date.isoformat()} in {store.describe()}"
                )
        self.snapshot_date = version.snapshot_date
        self.version = version
        self._store = store
        self._tables: dict[str, Path] = {}
        self._participant_tables = False  # participants.parquet and the user directory
        self.con: duckdb.DuckDBPyConnection = connect(engine)
        # A request's statements each touch a few thousand rows: one thread runs them
        # without handing pipelines to a worker and waiting for it (measured on a busy
        # 2-core machine: ~10% less CPU per computed request). Bulk loads get all threads.
        row = self.con.execute("SELECT current_setting('threads')").fetchone()
        self._bulk_threads = int(row[0]) if row is not None else 1
        self.con.execute("SET threads = 1")
        # Per-scenario caches for batches of requests (`query --requests`).
        self._bodies: dict[str, dict[str, str]] = {}
        self._bodies_loaded = False
        self._sessions_of: str | None = None  # the scenario graded_sessions holds now
        self._sessions_in_memory = False  # all the session files are in snapshot_sessions
        self._parquet_reads = 0  # scenarios read from the session files so far
        # The session files (and the SQL reading them), fetched for the first computed
        # request: a precomputed answer needs none of them (`prefetch` gets them now).
        self._fetched_sessions: list[Path] | None = None
        self._reads_before_loading = reads_before_loading
        # Snapshot tables are read as they are: no Hive columns from `x=y` folder names.
        self.con.execute(
            """CREATE TABLE scenario_index AS
               SELECT CAST(row_number() OVER (ORDER BY scenario_id) AS INTEGER) AS scenario_no,
                      scenario_id, slug, name
               FROM read_parquet($p, hive_partitioning = false)""",
            {"p": str(self.table("scenarios"))},
        )
        for table, source, columns in (
            ("users", "users", "user_id, email, is_system, is_member"),
            ("group_memberships", "group_memberships", "group_id, user_id"),
        ):
            self.con.execute(
                f"CREATE TABLE {table} AS SELECT {columns} "
                "FROM read_parquet($p, hive_partitioning = false)",
                {"p": str(self.table(source))},
            )
        # The summarize SQL reads the one scenario of the request from these views; the
        # scenario is a variable (`_select_sessions`), so statement texts stay the same.
        self.con.execute(
            """CREATE VIEW snapshot_scenarios AS
               SELECT scenario_id, slug, name FROM scenario_index
               WHERE scenario_no = getvariable('query_scenario').no"""
        )
        # Lookups by id and slug in Python: a statement per request costs ~1 ms.
        self._scenario_no: dict[str, int] = {}
        self._by_slug: dict[str, str] = {}
        rows = self.con.execute("SELECT scenario_id, slug, scenario_no FROM scenario_index")
        for scenario_id, slug, number in rows.fetchall():
            self._scenario_no[str(scenario_id)] = int(number)
            if slug is not None:
                known = self._by_slug.get(str(slug))
                # The smallest id by byte order, as the SQL side compares text.
                if known is None or str(scenario_id).encode() < known.encode():
                    self._by_slug[str(slug)] = str(scenario_id)
        self._prepare_statements()

    def table(self, name: str) -> Path:
        """A local path of one table of the snapshot (fetched once on S3)."""
        if name not in self._tables:
            self._tables[name] = self._store.fetch(self.version, f"{name}.parquet", whole=True)
        return self._tables[name]

    def _session_files(self) -> list[Path]:
        if self._fetched_sessions is None:
            self._fetched_sessions = self._store.session_paths(self.version, whole=True)
        return self._fetched_sessions

    def _sessions_sql(self) -> str:
        """SQL for a FROM clause reading the snapshot's session files."""
        return sessions_relation(self._session_files())

    def prefetch(self) -> None:
        """Fetch every file any request may read now (a server loading a snapshot: later,
        the store may be unreachable)."""
        self.table("participants")
        self.table("summaries")
        self._session_files()

    def _prepare_statements(self) -> None:
        """The summarize SQL files as two statements, parsed once: the summary body, and
        the participants of `filter_participants` (sql/0130) for the participants page.

        Run file by file, a computed request was seven statements (~20 ms at 10M
        sessions), nearly all of it DuckDB parsing, binding and planning them and
        writing their tables, not reading data. Inlined (`inline_sql_files`: each table
        a materialized common table expression, the request's `filters` row from bound
        values), it is one statement, and parsing it once saves ~2 ms more. The files
        stay the one definition of the semantics; the nightly job runs them as files.
        """
        summarize = [f for f in load_sql_files() if f.phase == "summarize"]
        # The participants endpoint needs the summarize files up to filter_participants.
        last = next(n for n, f in enumerate(summarize) if "filter_participants" in f.creates)
        inputs = {"filters": ONE_FILTER_QUERY}
        summary = inline_sql_files(summarize, inputs, "SELECT body FROM summaries")
        participants = inline_sql_files(
            summarize[: last + 1],
            inputs,
            """SELECT user_id, session_count, first_score, score_rank(first_score) AS first_rank,
                      best_score, score_rank(best_score) AS best_rank, lift,
                      total_duration_seconds
               FROM filter_participants""",
        )
        # Macros (score_rank) do not depend on a request: defined once per connection.
        for statement in dict.fromkeys([*summary.setup, *participants.setup]):
            self.con.execute(statement)
        (self._summary_statement,) = self.con.extract_statements(summary.query)
        (self._participants_statement,) = self.con.extract_statements(
            "CREATE OR REPLACE TABLE page_participants AS " + participants.query
        )

    @contextmanager
    def _fewer_optimizer_passes(self) -> Iterator[None]:
        """The inlined summarize statements run without REQUEST_DISABLED_OPTIMIZERS; every
        other statement (the participants page's join with all users, loads) with them:
        without join ordering, say, the page would build its hash table on 262k users."""
        self.con.execute("SET disabled_optimizers = $d", {"d": _DISABLED_OPTIMIZERS})
        try:
            yield
        finally:
            self.con.execute("RESET disabled_optimizers")

    @property
    def sessions_in_memory(self) -> bool:
        """Whether this reader has loaded all of the snapshot's sessions."""
        return self._sessions_in_memory

    def close(self) -> None:
        self.con.close()
        if self._owns_store:
            self._store.close()

    def __enter__(self) -> SnapshotQuery:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def resolve(self, scenario: str) -> str | None:
        """By exact id, else by exact slug (the smallest id if two share it)."""
        if scenario in self._scenario_no:
            return scenario
        return self._by_slug.get(scenario)

    def check(
        self,
        parse: Callable[[Mapping[str, object]], _R],
        scenario: str,
        params: Mapping[str, object],
    ) -> tuple[_R, str] | Answer:
        """The parsed request (`parse`: `parse_request` or `parse_participants_request`)
        and the scenario's id, or the error answer: parameters are checked before the
        lookup, as the API does. No SQL runs: the HTTP server calls it on its event loop."""
        try:
            request = parse(params)
        except RequestError as exc:
            return Answer(ExitCode.USAGE, error_body("invalid_request", exc.code, exc.message))
        scenario_id = self.resolve(scenario) if is_text(scenario) else None
        if scenario_id is None:
            return Answer(
                ExitCode.NOT_FOUND,
                error_body("not_found", "scenario_not_found", f"Scenario not found: {scenario}"),
            )
        return request, scenario_id

    def answer(self, scenario: str, params: Mapping[str, object]) -> Answer:
        """The API's answer: parameters are checked first, then the scenario is looked up."""
        checked = self.check(parse_request, scenario, params)
        if isinstance(checked, Answer):
            return checked
        request, scenario_id = checked
        body = self.precomputed(scenario_id, request.key)
        if body is None:
            body = self.compute(scenario_id, request)
        return Answer(ExitCode.OK, body)

    def participants(self, scenario: str, params: Mapping[str, object]) -> Answer:
        """The participants endpoint's answer (`serve/participants.py`): the summary's
        filters plus `sorting`, `page` and `page_size`; checked first, then the scenario
        is looked up. The unfiltered request's participants come from participants.parquet
        (precomputed), any other's from the summarize SQL on the scenario's sessions."""
        checked = self.check(parse_participants_request, scenario, params)
        if isinstance(checked, Answer):
            return checked
        request, scenario_id = checked
        self._load_participant_tables()
        if request.filters.key == "":
            self.con.execute(
                f"""CREATE OR REPLACE TABLE page_participants AS
                    SELECT {PAGE_COLUMNS} FROM default_participants WHERE scenario_id = $s""",
                {"s": scenario_id},
            )
        else:
            self._select_sessions(scenario_id)
            with self._fewer_optimizer_passes():
                self.con.execute(self._participants_statement, one_filter_params(request.filters))
        return Answer(ExitCode.OK, page_body(self.con, request))

    def _load_participant_tables(self) -> None:
        """The unfiltered participants of every scenario (participants.parquet, sorted by
        scenario) and the user directory with names, read once by the first participants
        request. Snapshots of versions before names were kept have none (null)."""
        if self._participant_tables:
            return
        self.con.execute(
            f"""CREATE TABLE default_participants AS
                SELECT scenario_id, {PAGE_COLUMNS}
                FROM read_parquet($p, hive_partitioning = false)""",
            {"p": str(self.table("participants"))},
        )
        users = str(self.table("users"))
        names = self.con.execute(
            "SELECT name FROM parquet_schema($p) WHERE name IN ('first_name', 'last_name')",
            {"p": users},
        ).fetchall()
        name_columns = (
            "first_name, last_name"
            if len(names) == 2
            else "CAST(NULL AS VARCHAR) AS first_name, CAST(NULL AS VARCHAR) AS last_name"
        )
        self.con.execute(
            f"""CREATE TABLE page_users AS
                SELECT user_id, email, {name_columns}
                FROM read_parquet($p, hive_partitioning = false)""",
            {"p": users},
        )
        self._participant_tables = True

    def precomputed(self, scenario_id: str, request_key: str) -> str | None:
        """The materialized body of this scenario and canonical request key, if any.

        The first lookup loads every body of `summaries.parquet` into a table (the file
        is one row group, so reading one scenario's rows costs as much as all of them);
        a scenario's bodies are then fetched from it once and kept for the next requests.
        """
        bodies = self._bodies.get(scenario_id)
        if bodies is None:
            if not self._bodies_loaded:
                self.con.execute(
                    """CREATE OR REPLACE TABLE summary_bodies AS
                       SELECT scenario_id, request_key, body
                       FROM read_parquet($p, hive_partitioning = false)""",
                    {"p": str(self.table("summaries"))},
                )
                self._bodies_loaded = True
            rows = self.con.execute(
                "SELECT request_key, body FROM summary_bodies WHERE scenario_id = $s",
                {"s": scenario_id},
            ).fetchall()
            bodies = {str(key): str(body) for key, body in rows}
            self._remember(self._bodies, scenario_id, bodies)
        return bodies.get(request_key)

    def _remember(self, cache: dict[str, _T], key: str, value: _T) -> None:
        if len(cache) >= CACHED_SCENARIOS:
            cache.pop(next(iter(cache)))
        cache[key] = value

    def compute(self, scenario_id: str, request: SummaryRequest) -> str:
        """Run the summarize-phase SQL on the snapshot's sessions of one scenario: one
        statement (`_prepare_statements`), the request's filters bound as values."""
        self._select_sessions(scenario_id)
        with self._fewer_optimizer_passes():
            params = one_filter_params(request)
            computed = self.con.execute(self._summary_statement, params).fetchone()
        assert computed is not None
        return str(computed[0])

    def _select_sessions(self, scenario_id: str) -> None:
        """Make `graded_sessions` and `snapshot_scenarios` hold this scenario only.

        A ski-rental rule decides where sessions come from: one scenario at a time from
        the session files (a batch about one scenario reads only that), until a batch has
        made as many such reads as loading them all costs (`_reads_before_load`); then
        they are all loaded into `snapshot_sessions` (sorted by scenario, so each
        scenario's rows are a few row groups that zone maps find) and `graded_sessions`
        becomes a view of the variable's scenario. DuckDB's memory limit stays in force:
        past it the table spills to the connection's temporary folder.
        """
        if self._sessions_of == scenario_id:
            return
        if not self._sessions_in_memory and self._parquet_reads >= self._reads_before_load():
            self._load_sessions()
        self.con.execute(
            "SET VARIABLE query_scenario = {'id': $s, 'no': $n}",
            {"s": scenario_id, "n": self._scenario_no[scenario_id]},
        )
        if not self._sessions_in_memory:
            # All threads: the read decodes a row group of each day's file.
            with self._all_threads():
                self.con.execute(
                    f"""CREATE OR REPLACE TABLE graded_sessions AS
                        SELECT session_id, scenario_id, user_id, created_at, score,
                               duration_seconds
                        FROM {self._sessions_sql()} WHERE scenario_id = $s""",
                    {"s": scenario_id},
                )
            self._parquet_reads += 1
        self._sessions_of = scenario_id

    def _reads_before_load(self) -> int:
        """One read per slice of ROWS_PER_SCENARIO_READ rows; over day files a slice is
        that many rows times the files / DAY_FILES_PER_SLICE (a read decodes a row group
        of each file)."""
        if self._reads_before_loading is None:
            files = [str(f) for f in self._session_files()]
            rows = 0
            if files:  # none: a snapshot without graded sessions
                row = self.con.execute(
                    "SELECT sum(num_rows) FROM parquet_file_metadata($p)", {"p": files}
                ).fetchone()
                rows = int(row[0]) if row is not None and row[0] is not None else 0
            per_read = ROWS_PER_SCENARIO_READ * max(1, -(-len(files) // DAY_FILES_PER_SLICE))
            self._reads_before_loading = max(1, -(-rows // per_read))
        return self._reads_before_loading

    def _load_sessions(self) -> None:
        """All sessions into memory; if that fails (no memory left to spill to, say), the
        batch goes on reading one scenario at a time and does not try again."""
        try:
            with self._all_threads():
                self._create_scenario_tables()
        except duckdb.Error:
            for table in ("snapshot_sessions", "scenario_users", "scenario_group_memberships"):
                self.con.execute(f"DROP TABLE IF EXISTS {table}")
            self._reads_before_loading = sys.maxsize
            return
        self._use_scenario_tables()

    @contextmanager
    def _all_threads(self) -> Iterator[None]:
        """Bulk reads and loads run on all threads; requests on one (see __init__)."""
        self.con.execute("SET threads = $n", {"n": self._bulk_threads})
        try:
            yield
        finally:
            self.con.execute("SET threads = 1")

    def _create_scenario_tables(self) -> None:
        # A scenario number (4 bytes) instead of its id (a 36-character UUID here, 52
        # bytes a row in memory): 640 MB instead of 980 MB for 9M sessions.
        # The files hold a day each: sorted by scenario here, so that zone maps find a
        # scenario's rows in a few row groups.
        self.con.execute(
            f"""CREATE TABLE snapshot_sessions AS
                SELECT i.scenario_no, s.session_id, s.user_id, s.created_at, s.score,
                       s.duration_seconds
                FROM {self._sessions_sql()} AS s
                JOIN scenario_index AS i ON i.scenario_id = s.scenario_id
                ORDER BY i.scenario_no"""
        )
        # 0130 joins users and group memberships with the scenario's participants: the
        # rows of users who have no graded session in the scenario can never match, and
        # scanning all of them (262k users, 433k memberships) was most of its time.
        # So each user's row is kept once per scenario they have sessions in, clustered
        # by scenario, and the views show the variable's scenario only.
        self.con.execute(
            """CREATE TABLE scenario_users AS
               WITH pairs AS (SELECT DISTINCT scenario_no, user_id FROM snapshot_sessions)
               SELECT p.scenario_no, u.user_id, u.email, u.is_system, u.is_member
               FROM pairs AS p JOIN users AS u ON u.user_id = p.user_id
               ORDER BY p.scenario_no"""
        )
        self.con.execute(
            """CREATE TABLE scenario_group_memberships AS
               SELECT u.scenario_no, m.group_id, m.user_id
               FROM scenario_users AS u JOIN group_memberships AS m ON m.user_id = u.user_id
               ORDER BY u.scenario_no"""
        )

    def _use_scenario_tables(self) -> None:
        self.con.execute("DROP TABLE IF EXISTS graded_sessions")
        self.con.execute("DROP TABLE users")
        self.con.execute("DROP TABLE group_memberships")
        self.con.execute(
            """CREATE VIEW graded_sessions AS
               SELECT session_id, getvariable('query_scenario').id AS scenario_id, user_id,
                      created_at, score, duration_seconds
               FROM snapshot_sessions WHERE scenario_no = getvariable('query_scenario').no"""
        )
        self.con.execute(
            """CREATE VIEW users AS
               SELECT user_id, email, is_system, is_member FROM scenario_users
               WHERE scenario_no = getvariable('query_scenario').no"""
        )
        self.con.execute(
            """CREATE VIEW group_memberships AS
               SELECT group_id, user_id FROM scenario_group_memberships
               WHERE scenario_no = getvariable('query_scenario').no"""
        )
        self._sessions_in_memory = True
