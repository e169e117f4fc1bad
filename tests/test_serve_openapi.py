"""The OpenAPI description of `serve`: committed as docs/openapi.json and kept equal to
what the app generates; its parameter schemas exactly as strict as the parsers; and
schemathesis over the served description (no 5xx, responses conform to it).

Regenerate the committed copy on purpose:
    .venv/bin/scenario-analytics serve --print-openapi > docs/openapi.json
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from click.testing import CliRunner
from helpers_serve import LATEST, Server, build_store, create_key, serving
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scenario_analytics.api import openapi
from scenario_analytics.api.http import openapi_document, parse_as_of
from scenario_analytics.cli import main
from scenario_analytics.filters import (
    MAX_PAGE,
    MAX_PAGE_SIZE,
    SORTINGS,
    WHITESPACE,
    RequestError,
    parse_participants_request,
    parse_request,
)

COMMITTED = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"
UNICODE_SPACES = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def test_the_committed_description_is_the_generated_one() -> None:
    printed = CliRunner().invoke(main, ["serve", "--print-openapi"])
    assert printed.exit_code == 0
    assert printed.stdout == COMMITTED.read_text(encoding="utf-8"), (
        "docs/openapi.json is out of date: run "
        "`.venv/bin/scenario-analytics serve --print-openapi > docs/openapi.json`"
    )
    document = json.loads(printed.stdout)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/rest/v1/scenarios/{scenario_id}/analytics/summary",
        "/rest/v1/scenarios/{scenario_id}/analytics/participants",
    }
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for item in document["paths"].values():
        operation = item["get"]
        assert operation["security"] == [{"bearerAuth": []}]
        assert "422" not in operation["responses"]  # FastAPI's own error never comes


def test_every_parameter_of_the_parsers_is_described() -> None:
    document = openapi_document()
    paths = document["paths"]
    summary = paths["/rest/v1/scenarios/{scenario_id}/analytics/summary"]["get"]
    participants = paths["/rest/v1/scenarios/{scenario_id}/analytics/participants"]["get"]
    names = [p["name"] for p in summary["parameters"]]
    assert names == [
        "scenario_id",
        "user_ids",
        "user_emails",
        "group_ids",
        "start_date",
        "end_date",
        "exclude_system_users",
        "as_of",
    ]
    extra = [p["name"] for p in participants["parameters"]][len(names) :]
    assert extra == ["sorting", "page", "page_size"]
    sorting = participants["parameters"][len(names)]["schema"]
    assert sorting["enum"] == list(SORTINGS) and len(SORTINGS) == 10


# -- the patterns agree with the parsers ----------------------------------------------------------


def matches(pattern: str, value: str) -> bool:
    """As a JSON Schema validator reads the pattern (`$`: the end of the string)."""
    return re.search(pattern.replace("$", r"\Z"), value) is not None


def accepted(params: dict[str, str], participants: bool = False) -> bool:
    try:
        (parse_participants_request if participants else parse_request)(params)
    except RequestError:
        return False
    return True


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


_spaces = st.text(alphabet=WHITESPACE + "\u00a0\u2003", max_size=2)
_year = st.sampled_from(["0000", "0001", "1900", "2000", "2024", "2026", "2100", "9999", "202"])
_zone = st.sampled_from(
    ["", "Z", "z", "+00", "-00:00", "+02:00", "-05", "+0530", "+24:00", "-23:59", "+01:60"]
)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """Near-misses around the ISO 8601 forms, and plain noise."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(alphabet=string.printable, max_size=12))
    text = f"{draw(_year)}-{draw(_two(0, 13))}-{draw(_two(0, 32))}"
    if draw(st.booleans()):
        text += draw(st.sampled_from(["T", " ", "t", "_", "TT"]))
        text += f"{draw(_two(0, 25))}:{draw(_two(0, 61))}"
        if draw(st.booleans()):
            text += f":{draw(_two(0, 61))}"
            if draw(st.booleans()):
                text += "." + draw(st.text(alphabet="0123456789", min_size=0, max_size=9))
        text += draw(_zone)
    return draw(_spaces) + text + draw(_spaces)


def _edge_day(value: str) -> bool:
    """The two days the pattern leaves out with an offset that could overflow."""
    text = value.strip(WHITESPACE)
    return text.startswith(("9999-12-31", "0001-01-01")) and len(text) > 10


@settings(max_examples=3000, deadline=None)
@given(timestamps())
def test_the_date_pattern_is_the_parser(value: str) -> None:
    for name in ("start_date", "end_date"):
        parsed = accepted({name: value})
        if matches(openapi.TIMESTAMP_PATTERN, value):
            assert parsed, f"the schema admits {value!r}, the parser refuses it"
        elif not _edge_day(value):
            assert not parsed, f"the parser accepts {value!r}, the schema refuses it"


@pytest.mark.parametrize(
    ("value", "admitted"),
    [
        ("", True),
        (" \t", True),
        ("2024-02-29", True),
        ("2023-02-29", False),
        ("1900-02-29", False),
        ("2000-02-29", True),
        ("0000-01-01", False),
        ("2026-04-31", False),
        ("2026-11-26T23:59:59.1234567+05:30", True),
        ("2026-11-26 00:00", True),
        ("2026-11-26T24:00", False),
        ("9999-12-31T23:00Z", True),
        ("9999-12-31T23:00+01:00", True),
        ("9999-12-31T23:00-00:00", True),
        ("9999-12-31T23:00-01:00", False),  # past 9999-12-31 in UTC
        ("0001-01-01T00:30+01:00", False),  # before 0001-01-01 in UTC
        ("\u00a02026-11-26", False),  # the parser strips ASCII white space only
    ],
)
def test_date_pattern_examples(value: str, admitted: bool) -> None:
    assert matches(openapi.TIMESTAMP_PATTERN, value) is admitted
    if not _edge_day(value) or not admitted:
        assert accepted({"start_date": value}) is admitted


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(
        st.tuples(
            st.text(alphabet=UNICODE_SPACES, max_size=2),
            st.sampled_from(["true", "false", "True", "FALSE", "tRuE", "yes", "1", "", "truee"]),
            st.text(alphabet=UNICODE_SPACES + "x", max_size=2),
        ).map("".join),
        st.text(max_size=6),
    )
)
def test_the_flag_pattern_is_the_parser(value: str) -> None:
    admitted = matches(openapi.FLAG_PATTERN, value)
    assert admitted is accepted({"exclude_system_users": value}), repr(value)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(timestamps(), st.dates().map(str)))
def test_the_as_of_pattern_is_the_parser(value: str) -> None:
    try:
        parse_as_of(value)
        parsed = True
    except Exception:  # the server's 400
        parsed = False
    assert matches(openapi.AS_OF_PATTERN, value) is parsed, repr(value)


def test_paging_schemas_are_the_parser() -> None:
    for sorting in SORTINGS:
        assert accepted({"sorting": sorting}, participants=True)
    for sorting in ("score", "+best_score", "-", "Best_score", "best_score,-lift_percentage"):
        assert not accepted({"sorting": sorting}, participants=True)
    for name, high in (("page", MAX_PAGE), ("page_size", MAX_PAGE_SIZE)):
        for number in (1, 2, high):
            assert accepted({name: str(number)}, participants=True)
        for number in (0, -1, high + 1):
            assert not accepted({name: str(number)}, participants=True)
        for text in ("1.0", "1e1", "one", "٣"):
            assert not accepted({name: text}, participants=True)


# -- schemathesis over the served description ---------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    store = build_store(tmp_path_factory.mktemp("serve-openapi"), days=(LATEST,))
    key = create_key(store.parent / "keys.json", "schemathesis")
    with serving(store, "--keys-file", str(store.parent / "keys.json")) as server:
        yield server, key


def test_the_served_description_is_the_committed_one(served: tuple[Server, str]) -> None:
    server, _key = served
    served_document = httpx.get(f"{server.url}/openapi.json").json()
    assert served_document == json.loads(COMMITTED.read_text(encoding="utf-8"))


# Loaded when the module is collected, from the committed copy: the test above shows it is
# the one the server serves (schemathesis' lazy, fixture-loaded schemas need older pytest).
schema = schemathesis.openapi.from_path(COMMITTED)


@schema.parametrize()
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_conforms(case: Any, served: tuple[Server, str]) -> None:
    server, key = served
    # What a static schema cannot hold: an as_of after today (invalid_date) and a start
    # after the end (invalid_date_range) are 400s whatever each value's schema says.
    query = {k: str(v) for k, v in (case.query or {}).items()}
    assume(query.pop("as_of", "") <= date.today().isoformat())
    try:
        parse_participants_request(query)
    except RequestError as exc:
        assume(exc.code != "invalid_date_range")
    response = case.call_and_validate(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code < 500
    assert not [r for r in server.records() if r.get("status", 0) >= 500]
