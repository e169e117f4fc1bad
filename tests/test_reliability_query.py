"""Hostile query input: Hypothesis fuzzing of every `query` parameter and `--requests` line.

Whatever the input (malformed dates, huge lists, SQL-looking text, any Unicode, lone
surrogates, empty strings, repeated items, wrong JSON types, unknown keys, bytes that are
not UTF-8), `query` answers with exit 0, 2 or 3 and a JSON body: never a traceback,
never exit 1. And no parameter reaches SQL as text: every SQL statement `query` executes
is one of a fixed set that does not depend on the request (values are bound).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result
from helpers_summary import BODY_FIELDS, run_snapshot, session_record, write_exports
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scenario_analytics.cli import main
from scenario_analytics.errors import ExitCode
from scenario_analytics.serve.query import SnapshotQuery

AS_OF = date(2026, 11, 26)
SQL_TEXT = "'; DROP TABLE summaries; --"
SCENARIOS = ["sc1", "a/b", "50% off", "naïve café", SQL_TEXT, "$s", "?", "../x"]
USERS = ["u1", "u2", "U1", "u 3", "' OR 1=1 --"]
GROUPS = ["g1", "g'2", "%"]
ERRORS = {
    ExitCode.USAGE: (
        "invalid_request",
        {"invalid_date", "invalid_date_range", "invalid_parameter"},
    ),
    ExitCode.NOT_FOUND: ("not_found", {"scenario_not_found", "snapshot_not_found"}),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    sessions = []
    for i in range(60):
        sessions.append(
            session_record(
                f"s{i}",
                USERS[i % len(USERS)],
                str(40 + i % 60),
                f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                scenario=SCENARIOS[i % len(SCENARIOS)],
                slug=f"slug-{i % len(SCENARIOS)}",
                duration=str(30 * i),
                email=f"{USERS[i % len(USERS)].strip()}@{'exec' if i % 4 == 0 else 'acme'}.com",
            )
        )
    exports = write_exports(
        root / "exports",
        sessions,
        groups=[{"id": g, "name": g} for g in GROUPS],
        memberships=[(GROUPS[i % len(GROUPS)], u) for i, u in enumerate(USERS)],
    )
    snapshots = root / "store"
    run_snapshot(exports, snapshots, AS_OF)
    return snapshots


class RecordingConnection:
    """A DuckDB connection that remembers the text of every statement it executes."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.statements: set[str] = set()

    def execute(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        self.statements.add(query)
        return self._con.execute(query, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


@pytest.fixture(scope="module")
def reader(store: Path) -> Iterator[tuple[SnapshotQuery, RecordingConnection, frozenset[str]]]:
    """A reader whose statements are recorded, and the statements of a few plain requests
    that go through every path (precomputed, computed, not found, invalid)."""
    query = SnapshotQuery(store)
    recording = RecordingConnection(query.con)
    query.con = recording  # type: ignore[assignment]
    for scenario, params in (
        ("sc1", {}),
        ("sc1", {"user_ids": "u1", "start_date": "2026-11-02", "exclude_system_users": True}),
        ("slug-1", {"group_ids": "g1", "user_emails": "u1@acme.com", "end_date": "2026-11-20"}),
        ("nope", {}),
        ("sc1", {"start_date": "bad"}),
    ):
        assert query.answer(scenario, params).exit_code in (0, 2, 3)
    # The first computed request read its scenario from the session files, the second (of
    # another scenario) loaded all sessions: the baseline holds the statements of both.
    assert query.sessions_in_memory
    baseline = frozenset(recording.statements)
    yield query, recording, baseline
    query.close()


def assert_body(exit_code: int, body: str) -> None:
    """A response body (exit 0) or an error body whose type and code fit the exit code."""
    data = json.loads(body)
    assert isinstance(data, dict)
    if exit_code == ExitCode.OK:
        assert list(data) == BODY_FIELDS
        assert [d["rank"] for d in data["score_distribution"]] == [
            "gold",
            "silver",
            "bronze",
            "unranked",
        ]
        return
    kind, codes = ERRORS[ExitCode(exit_code)]
    assert list(data) == ["error"]
    assert data["error"]["type"] == kind
    assert data["error"]["code"] in codes
    assert isinstance(data["error"]["message"], str)


# --- strategies ---------------------------------------------------------------------------

VALID_DATES = st.sampled_from(
    [
        "2026-11-01",
        "2026-11-20",
        "2026-11-01T10:00:00Z",
        "2026-11-01 10:00",
        "2026-11-10T10:00:00.1234567+05:45",
        "2026-11-15T23:59:59.999999-12:00",
        "2028-02-29",
        " 2026-11-05 ",
        "",
    ]
)
DATES = st.one_of(
    VALID_DATES,
    st.sampled_from(
        [
            "2026-11-31",
            "2026-02-29",
            "2026-13-01",
            "2026-11-01T24:00:00Z",
            "2026-11-01T10:00:00+0100",
            "20261101",
            "2026-11-01T",
            "٢٠٢٦-١١-٠١",
            "0000-01-01",
            "9999-12-31T23:59:59.999999-23:59",
            "0001-01-01T00:00:00+23:59",
            " ",
            "null",
            SQL_TEXT,
        ]
    ),
)
ITEMS = st.one_of(
    st.sampled_from([*USERS, *GROUPS, "u1@acme.com", "U1@ACME.COM", " ", "", SQL_TEXT, "%s", "\\"]),
    st.text(max_size=12),
)
LISTS = st.one_of(
    st.lists(ITEMS, max_size=8).map(",".join),
    st.builds(lambda item, n: ",".join([item] * n), ITEMS, st.integers(0, 3000)),
    st.text(max_size=40),
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
PARAM_VALUES: dict[str, st.SearchStrategy[object]] = {
    "user_ids": LISTS,
    "user_emails": LISTS,
    "group_ids": LISTS,
    "start_date": st.one_of(DATES, st.text(max_size=30)),
    "end_date": st.one_of(DATES, st.text(max_size=30)),
    "exclude_system_users": st.one_of(
        st.booleans(), st.sampled_from(["true", "FALSE", " true ", "1", "yes", ""])
    ),
}
# Requests as the API gets them (every value a string, or the boolean), and as they may
# arrive from JSON: values of any JSON type, unknown names.
WELL_TYPED = st.fixed_dictionaries({}, optional=PARAM_VALUES)
ANY_TYPED = st.fixed_dictionaries(
    {},
    optional={
        **{name: st.one_of(strategy, JSON_VALUES) for name, strategy in PARAM_VALUES.items()},
        "scenario": st.text(max_size=5),
        "": JSON_SCALARS,
    },
)
PARAMS = st.one_of(WELL_TYPED, ANY_TYPED)
SCENARIO = st.one_of(
    st.sampled_from([*SCENARIOS, "slug-3"]),
    st.sampled_from(SCENARIOS),
    st.sampled_from(["SC1", "", " sc1"]),
    st.text(max_size=20),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=SCENARIO, params=PARAMS)
def test_any_request_gets_a_json_answer_and_reaches_sql_only_as_bound_values(
    reader: tuple[SnapshotQuery, RecordingConnection, frozenset[str]],
    scenario: str,
    params: Mapping[str, object],
) -> None:
    query, recording, baseline = reader
    answer = query.answer(scenario, params)
    event(f"exit {int(answer.exit_code)}")
    assert answer.exit_code in (ExitCode.OK, ExitCode.USAGE, ExitCode.NOT_FOUND)
    assert_body(answer.exit_code, answer.body)
    # Only statements the plain requests also ran: nothing of the request is SQL text.
    assert recording.statements <= baseline, recording.statements - baseline


def test_known_hostile_values(
    reader: tuple[SnapshotQuery, RecordingConnection, frozenset[str]],
) -> None:
    query, recording, baseline = reader
    huge = ",".join(f"u{i}" for i in range(100_000))
    cases: list[tuple[str, dict[str, object], int]] = [
        (SQL_TEXT, {}, ExitCode.OK),
        ("sc1", {"user_ids": SQL_TEXT}, ExitCode.OK),
        ("sc1", {"user_ids": huge}, ExitCode.OK),
        ("sc1", {"user_emails": huge, "group_ids": huge}, ExitCode.OK),
        ("sc1", {"user_ids": "u1," * 50_000}, ExitCode.OK),
        ("sc1", {"user_ids": "\udcff"}, ExitCode.USAGE),
        ("\udcff", {}, ExitCode.NOT_FOUND),
        ("sc1", {"start_date": "2026-11-01T10:00:00Z\x00"}, ExitCode.USAGE),
        ("sc1", {"start_date": "9" * 10_000}, ExitCode.USAGE),
        ("sc1", {"start_date": "2026-11-20", "end_date": "2026-11-19"}, ExitCode.USAGE),
        ("sc1", {"user_ids": ["u1"]}, ExitCode.USAGE),
        ("sc1", {"exclude_system_users": "maybe"}, ExitCode.USAGE),
        ("sc1", {"$s": "x"}, ExitCode.USAGE),
        ("x" * 100_000, {}, ExitCode.NOT_FOUND),
    ]
    for scenario, params, expected in cases:
        answer = query.answer(scenario, params)
        assert answer.exit_code == expected, (scenario[:20], params)
        assert_body(answer.exit_code, answer.body)
    assert recording.statements <= baseline, recording.statements - baseline


def test_sql_looking_scenario_id_is_just_an_id(
    reader: tuple[SnapshotQuery, RecordingConnection, frozenset[str]],
) -> None:
    query, _recording, _baseline = reader
    answer = query.answer(SQL_TEXT, {"user_ids": USERS[-1]})
    assert answer.exit_code == ExitCode.OK
    assert json.loads(answer.body)["participant_count"] == 1
    # The tables are all still there.
    assert query.answer("sc1", {}).exit_code == ExitCode.OK


# --- the command line ---------------------------------------------------------------------

OPTION_TEXT = st.text(max_size=30).filter(lambda t: "\x00" not in t)  # argv cannot hold NUL


def _lines(stdout: str) -> list[str]:
    """stdout's lines, split the Unicode way (str.splitlines: also at U+0085, U+2028 and
    U+2029, which an error message quoting the scenario may hold): a body is escaped so
    that it stays on one line for any reader, and it ends with \\n."""
    assert not stdout or stdout.endswith("\n")
    return stdout.splitlines()


def _query(store: Path, *args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["query", "--snapshots", str(store), *args], input=input)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=st.one_of(st.sampled_from(SCENARIOS), OPTION_TEXT),
    options=st.dictionaries(
        st.sampled_from(
            ["--user-ids", "--user-emails", "--group-ids", "--start-date", "--end-date"]
        ),
        st.one_of(DATES, OPTION_TEXT, LISTS.filter(lambda t: "\x00" not in t)),
    ),
    exclude=st.booleans(),
)
def test_command_line_answers_with_json(
    store: Path, scenario: str, options: dict[str, str], exclude: bool
) -> None:
    args = [f"{name}={value}" for name, value in options.items()]
    if exclude:
        args.append("--exclude-system-users")
    result = _query(store, *args, "--", scenario)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (ExitCode.OK, ExitCode.USAGE, ExitCode.NOT_FOUND), result.stderr
    (line,) = _lines(result.stdout)
    assert_body(result.exit_code, line)
    assert "Traceback" not in result.stderr


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(as_of=st.one_of(DATES, OPTION_TEXT))
def test_as_of_is_a_date_or_a_usage_error(store: Path, as_of: str) -> None:
    """`--as-of` is the command's own option, not an API parameter: a malformed one is a
    usage error (exit 2, message on stderr); a date after today is `invalid_date` (exit 2,
    its error body); a date without a snapshot is exit 3."""
    result = _query(store, f"--as-of={as_of}", "--", "sc1")
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr
    if result.exit_code == ExitCode.USAGE and result.stdout:
        (line,) = _lines(result.stdout)
        assert json.loads(line)["error"]["code"] == "invalid_date"
        assert date.fromisoformat(as_of) > date.today() - timedelta(days=1)
    elif result.exit_code == ExitCode.USAGE:
        assert "--as-of" in result.stderr
    else:
        assert result.exit_code in (ExitCode.OK, ExitCode.NOT_FOUND)
        (line,) = _lines(result.stdout)
        assert_body(result.exit_code, line)


LINES = st.one_of(
    PARAMS.flatmap(
        lambda params: st.builds(
            lambda scenario, ascii_only: json.dumps(
                {"scenario_id": scenario, **params} if scenario is not None else params,
                ensure_ascii=ascii_only,
            ).encode("utf-8", "surrogatepass"),
            st.one_of(st.none(), SCENARIO, st.integers(), st.booleans(), JSON_VALUES),
            st.booleans(),
        )
    ),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from(
        [b"", b"   ", b"\t\r", b"{", b"[]", b"null", b"\xef\xbb\xbf{}", b'{"scenario_id"']
    ),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINES, min_size=1, max_size=8))
def test_requests_file_answers_every_line(store: Path, lines: list[bytes]) -> None:
    result = _query(store, "--requests", "-", input=b"\n".join(lines) + b"\n")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "Traceback" not in result.stderr
    answered = _lines(result.stdout)
    expected = [line for line in b"\n".join(lines).split(b"\n") if line.strip()]
    assert len(answered) == len(expected)
    for body in answered:
        data = json.loads(body)
        exit_code = ExitCode.OK
        if "error" in data:
            exit_code = (
                ExitCode.USAGE if data["error"]["type"] == "invalid_request" else ExitCode.NOT_FOUND
            )
        assert_body(exit_code, body)


def test_unicode_line_breaks_in_an_error_stay_on_its_line(store: Path) -> None:
    breaks = "a\u0085b\u2028c\u2029d"
    requests = [{"scenario_id": breaks}, {"scenario_id": "sc1", "user_ids": breaks}]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests)
    result = _query(store, "--requests", "-", input=text.encode())
    assert result.exit_code == ExitCode.OK, result.stderr
    answered = _lines(result.stdout)
    assert len(answered) == 2
    assert breaks in json.loads(answered[0])["error"]["message"]
    assert "\\u2028" in answered[0] and "\u2028" not in answered[0]
    assert json.loads(answered[1])["participant_count"] == 0  # an unknown user is no error


def test_requests_without_a_snapshot_give_one_body(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["query", "--snapshots", str(tmp_path), "--requests", "-"],
        input=b'{"scenario_id": "x"}\n',
    )
    assert result.exit_code == ExitCode.NOT_FOUND
    (line,) = _lines(result.stdout)
    assert json.loads(line)["error"]["code"] == "snapshot_not_found"
