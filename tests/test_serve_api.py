"""`serve`: both endpoints over real HTTP, answering byte for byte as `query` does; keys,
caching, `as_of`, and every error status.

One server (a subprocess on 127.0.0.1) serves a store with two snapshots for the module.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers_serve import (
    LATEST,
    ODD_ID,
    OLDER,
    STATUS,
    Server,
    build_store,
    create_key,
    expected,
    participants_path,
    run_cli,
    serving,
    summary_path,
    with_query,
)

from scenario_analytics.filters import SORTINGS


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("serve-api"))


@pytest.fixture(scope="module")
def key(store: Path) -> str:
    return create_key(store.parent / "keys.json", "tests")


@pytest.fixture(scope="module")
def server(store: Path, key: str) -> Iterator[Server]:
    with serving(store, "--keys-file", str(store.parent / "keys.json")) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server, key: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        yield http


def check_same(
    response: httpx.Response,
    store: Path,
    endpoint: str,
    scenario: str,
    params: dict[str, str],
) -> None:
    want = expected(store, endpoint, scenario, params)
    assert response.status_code == STATUS[want.exit_code], response.text
    assert response.content == want.body.encode("utf-8")
    assert response.headers["content-type"] == "application/json"


SUMMARY_REQUESTS: list[dict[str, str]] = [
    {},
    {"user_ids": "u1"},
    {"user_ids": " u2 , u1,,u1 "},
    {"user_emails": "ALICE@acme.com"},
    {"user_emails": "bob@acme.com", "user_ids": "u4"},
    {"group_ids": "g1"},
    {"group_ids": "g2,g1"},
    {"group_ids": "nope"},
    {"start_date": "2026-11-22"},
    {"end_date": "2026-11-23"},
    {"start_date": "2026-11-21T10:00:00+02:00", "end_date": "2026-11-24 23:00"},
    {"start_date": "2026-11-20T00:00:00.000000Z", "end_date": "2026-11-26T23:59:59.999999Z"},
    {"start_date": "", "end_date": " "},
    {"exclude_system_users": "true"},
    {"exclude_system_users": "FALSE"},
    {"exclude_system_users": " True "},
    {"group_ids": "g1", "exclude_system_users": "true", "start_date": "2026-11-20"},
    # errors, in the order the parser reports them
    {"start_date": "2026-11-31"},
    {"start_date": "yesterday"},
    {"start_date": "2026-11-25", "end_date": "2026-11-21"},
    {"exclude_system_users": "yes"},
    {"exclude_system_users": ""},
    {"sorting": "best_score"},  # a participants parameter
    {"colour": "blue"},
]


@pytest.mark.parametrize("params", SUMMARY_REQUESTS, ids=lambda p: json.dumps(p))
def test_summary_equals_query(client: httpx.Client, store: Path, params: dict[str, str]) -> None:
    response = client.get(with_query(summary_path("sc1"), params))
    check_same(response, store, "summary", "sc1", params)


@pytest.mark.parametrize("scenario", ["sc1", "sc2", "procurement-discovery", "shared", ODD_ID])
def test_scenarios_by_id_and_slug(client: httpx.Client, store: Path, scenario: str) -> None:
    for params in ({}, {"user_ids": "u1,u3"}):
        response = client.get(with_query(summary_path(scenario), params))
        check_same(response, store, "summary", scenario, params)
        assert response.status_code == 200


def test_unknown_scenario_is_404(client: httpx.Client, store: Path) -> None:
    for scenario in ("nope", "SC1", " sc1", ""):
        response = client.get(summary_path(scenario))
        check_same(response, store, "summary", scenario, {})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "scenario_not_found"
    # Bytes that are not UTF-8 match no scenario, and say so as `query` does.
    response = client.get("/rest/v1/scenarios/a%FFb/analytics/summary")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Scenario not found: a\\udcffb"


def test_precomputed_and_computed_answers_are_both_used(server: Server) -> None:
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'scenario_analytics_answers_total{endpoint="summary",source="precomputed"}' in metrics
    assert 'scenario_analytics_answers_total{endpoint="summary",source="computed"}' in metrics


PARTICIPANT_REQUESTS: list[dict[str, str]] = [
    *({"sorting": sorting} for sorting in SORTINGS),
    {"page_size": "1"},
    {"page_size": "1", "page": "5"},  # the last page
    {"page_size": "2", "page": "3"},  # a partial last page
    {"page": "4", "page_size": "2"},  # past the end: empty data
    {"page_size": "100"},
    {"page": " 2 ", "page_size": "002"},
    {"page": "", "page_size": "", "sorting": ""},  # empty: the defaults
    {"group_ids": "g1", "sorting": "-lift_percentage", "page_size": "2"},
    {"start_date": "2026-11-22", "exclude_system_users": "true", "sorting": "first_score"},
    {"user_emails": "DORA@acme.com,alice@acme.com"},
    # errors
    {"page": "0"},
    {"page": "-1"},
    {"page": "1.5"},
    {"page": "2147483648"},
    {"page_size": "0"},
    {"page_size": "101"},
    {"page_size": "abc"},
    {"sorting": "score"},
    {"sorting": "--best_score"},
    {"sorting": "best_score", "start_date": "2026-13-01"},
    {"as_off": "2026-11-25"},
]


@pytest.mark.parametrize("params", PARTICIPANT_REQUESTS, ids=lambda p: json.dumps(p))
def test_participants_equal_query(
    client: httpx.Client, store: Path, params: dict[str, str]
) -> None:
    response = client.get(with_query(participants_path("sc1"), params))
    check_same(response, store, "participants", "sc1", params)


def test_participants_paging_covers_everyone_once(client: httpx.Client) -> None:
    first = client.get(participants_path("sc1"), params={"page_size": "2"}).json()
    total = first["pagination"]["total_count"]
    assert first["pagination"]["total_pages"] == -(-total // 2)
    ids = []
    for page in range(1, first["pagination"]["total_pages"] + 2):
        body = client.get(
            participants_path("sc1"), params={"page_size": "2", "page": str(page)}
        ).json()
        ids += [entry["user"]["id"] for entry in body["data"]]
    assert len(ids) == len(set(ids)) == total


def test_participants_of_unknown_scenario(client: httpx.Client, store: Path) -> None:
    response = client.get(participants_path("nope"), params={"sorting": "session_count"})
    check_same(response, store, "participants", "nope", {"sorting": "session_count"})
    assert response.status_code == 404


def test_the_query_command_prints_the_same_bytes(client: httpx.Client, store: Path) -> None:
    """The command itself, not only the library under it (its line ends with \\n)."""
    cases = [
        (summary_path("procurement-discovery") + "?group_ids=g1&start_date=2026-11-22", []),
        (summary_path("sc2") + "?user_ids=u1,u2", []),
        (
            participants_path("sc1") + "?sorting=-first_score&page=2&page_size=2",
            ["--participants", "--sorting=-first_score", "--page", "2", "--page-size", "2"],
        ),
    ]
    options = {
        "group_ids": "--group-ids",
        "start_date": "--start-date",
        "user_ids": "--user-ids",
    }
    for url, extra in cases:
        path, _, query = url.partition("?")
        scenario = path.split("/")[4]
        args = ["query", "--snapshots", str(store), scenario, *extra]
        for item in query.split("&"):
            name, _, value = item.partition("=")
            if name in options:
                args += [options[name], value]
        printed = run_cli(*args)
        assert printed.returncode == 0, printed.stderr
        response = client.get(url)
        assert response.status_code == 200
        assert response.content + b"\n" == printed.stdout.encode("utf-8")


# -- caching -------------------------------------------------------------------------------------


def test_etag_and_304(client: httpx.Client) -> None:
    for url in (
        summary_path("sc1"),  # precomputed
        summary_path("sc1") + "?start_date=2026-11-21T07:00:00Z",  # computed
        participants_path("sc1") + "?page_size=3",
    ):
        first = client.get(url)
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        assert first.headers["cache-control"] == "private, max-age=60"
        assert first.headers["x-snapshot-date"] == LATEST.isoformat()
        for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            again = client.get(url, headers={"If-None-Match": sent})
            assert again.status_code == 304, sent
            assert again.content == b""
            assert again.headers["etag"] == etag
            assert again.headers["x-snapshot-date"] == LATEST.isoformat()
        changed = client.get(url, headers={"If-None-Match": '"other"'})
        assert changed.status_code == 200 and changed.content == first.content


def test_the_same_body_has_the_same_etag_and_errors_are_not_cached(client: httpx.Client) -> None:
    one = client.get(summary_path("sc1"))
    two = client.get(summary_path("procurement-discovery"), params={"user_emails": ""})
    assert one.content == two.content and one.headers["etag"] == two.headers["etag"]
    error = client.get(summary_path("nope"))
    assert error.status_code == 404
    assert "etag" not in error.headers
    assert error.headers["cache-control"] == "no-store"


# -- as_of -----------------------------------------------------------------------------------


def test_as_of_reads_an_older_snapshot(client: httpx.Client, store: Path) -> None:
    for endpoint, path in (("summary", summary_path), ("participants", participants_path)):
        for params in ({}, {"user_ids": "u1,u2"}):
            response = client.get(with_query(path("sc1"), {**params, "as_of": "2026-11-25"}))
            want = expected(store, endpoint, "sc1", params, as_of=OLDER)
            assert response.status_code == 200
            assert response.content == want.body.encode()
            assert response.headers["x-snapshot-date"] == "2026-11-25"
    older = client.get(summary_path("sc1"), params={"as_of": "2026-11-25"}).content
    latest = client.get(summary_path("sc1"), params={"as_of": "2026-11-26"})
    assert latest.headers["x-snapshot-date"] == "2026-11-26"
    assert latest.content != older  # a session of the 26th counts in the latest only
    assert client.get(summary_path("sc1"), params={"as_of": ""}).content == latest.content


def test_as_of_errors(client: httpx.Client, store: Path) -> None:
    missing = client.get(summary_path("sc1"), params={"as_of": "2026-11-01"})
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "type": "not_found",
            "code": "snapshot_not_found",
            "message": "no snapshot for 2026-11-01",
        }
    }
    assert str(store) not in missing.text  # the server's paths are its own
    future = client.get(summary_path("sc1"), params={"as_of": "2999-01-01"})
    assert future.status_code == 400
    assert future.json()["error"]["code"] == "invalid_date"
    for bad in ("2026-11-31", "26-11-2026", "2026-11-26T00:00:00Z", "x"):
        response = client.get(summary_path("sc1"), params={"as_of": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "invalid_date"


# -- errors ------------------------------------------------------------------------------------


def test_repeated_parameters_are_400(client: httpx.Client) -> None:
    for query in ("user_ids=u1&user_ids=u2", "as_of=2026-11-25&as_of=2026-11-26"):
        response = client.get(summary_path("sc1") + "?" + query)
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("invalid_request", "invalid_parameter")
        assert "more than once" in error["message"]


def test_a_long_request_line_is_414(client: httpx.Client) -> None:
    response = client.get(summary_path("sc1"), params={"user_ids": "u" * 9000})
    assert response.status_code == 414
    assert response.json()["error"]["code"] == "uri_too_long"
    response = client.get(summary_path("s" * 9000))
    assert response.status_code == 414
    many = "&".join(f"p{i}=1" for i in range(100))
    response = client.get(summary_path("sc1") + "?" + many)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"


def test_other_routes_and_methods_get_exec_error_bodies(client: httpx.Client) -> None:
    response = client.get("/rest/v1/scenarios/sc1/analytics/sessions")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "route_not_found"
    response = client.post(summary_path("sc1"))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert client.get(summary_path("sc1") + "/").status_code == 404
    assert client.get("/docs").status_code == 404  # no page that loads scripts from elsewhere


def test_odd_bytes_in_the_query_string(client: httpx.Client, store: Path) -> None:
    response = client.get(summary_path("sc1") + "?user_ids=%FF%FE")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"
    response = client.get(summary_path("sc1") + "?start_date=%00")
    assert response.status_code == 400
    response = client.get(summary_path("sc1") + "?user_emails=a%2Bb%40x.com+")
    check_same(response, store, "summary", "sc1", {"user_emails": "a+b@x.com "})
    response = client.get(summary_path("sc1") + "?&&user_ids=u1&")
    check_same(response, store, "summary", "sc1", {"user_ids": "u1"})


# -- keys --------------------------------------------------------------------------------------


def test_authentication(server: Server, key: str) -> None:
    url = server.url + summary_path("sc1")
    wrong = "exec_live_" + "A" * 40
    cases = {
        None: "missing_api_key",
        "": "missing_api_key",
        "Bearer": "malformed_api_key",
        f"Basic {key}": "malformed_api_key",
        "Bearer exec_live_short": "malformed_api_key",
        f"Bearer {key}x": "malformed_api_key",
        f"Bearer {key[:-1]}é": "malformed_api_key",  # sent as UTF-8 bytes
        f"Bearer {wrong}": "invalid_api_key",
        f"Bearer {key.replace('exec_live_', 'exec_test_')}": "malformed_api_key",
    }
    for header, code in cases.items():
        headers = {} if header is None else {"Authorization": header.encode("utf-8")}
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401, header
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("authentication_error", code), header
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert key not in response.text
    # The scheme is case-insensitive; two Authorization headers are refused.
    assert httpx.get(url, headers={"Authorization": f"bearer {key}"}).status_code == 200
    twice = httpx.get(url, headers=[("Authorization", f"Bearer {key}")] * 2)
    assert twice.status_code == 401
    # The key comes before everything else: even a bad request is 401 without one.
    assert httpx.get(url + "?colour=blue").status_code == 401
    assert httpx.get(server.url + summary_path("nope")).status_code == 401


def test_ops_endpoints_need_no_key(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json() == {
        "status": "ready",
        "snapshot_date": LATEST.isoformat(),
    }
    assert httpx.get(f"{server.url}/openapi.json").status_code == 200


def test_the_keys_file_holds_no_key(store: Path, key: str) -> None:
    path = store.parent / "keys.json"
    text = path.read_text()
    assert key not in text and key[len("exec_live_") :] not in text
    entry = json.loads(text)["keys"][0]
    assert entry["name"] == "tests" and len(entry["sha256"]) == 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_logs_are_json_and_hold_no_key_email_or_value(
    server: Server, client: httpx.Client, key: str
) -> None:
    client.get(summary_path("sc1"), params={"user_emails": "alice@acme.com"})
    client.get(participants_path(ODD_ID), params={"group_ids": "secret-group-value"})
    client.get(summary_path("sc1"), params={"start_date": "not-a-date-value"})
    httpx.get(server.url + summary_path("sc1"), headers={"Authorization": f"Bearer {key}x"})
    records = server.records()  # every line is JSON
    text = "".join(server.lines)
    for secret in (key, key[10:], "alice@acme.com", "secret-group-value", "not-a-date-value"):
        assert secret not in text
    assert "odd/id" not in text and "%2F" not in text  # no raw path either
    requests = [r for r in records if r.get("event") == "request"]
    routes = {r["route"] for r in requests}
    assert "/rest/v1/scenarios/{scenario_id}/analytics/summary" in routes
    assert "/rest/v1/scenarios/{scenario_id}/analytics/participants" in routes
    for record in requests:
        assert {"method", "route", "status", "duration_ms"} <= set(record)
    served = [r for r in requests if r["status"] == 200 and "analytics" in r["route"]]
    dates = {OLDER.isoformat(), LATEST.isoformat()}  # as_of asked for the older one
    assert served and all(r["snapshot_date"] in dates for r in served)
    assert all(r["key"] == "tests" for r in served)
    assert all(r["status"] != 500 for r in requests)
