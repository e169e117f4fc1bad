"""First and last names in the user directory and `users.parquet` (docs/DECISIONS.md,
"User names"): per field, the member record's when not blank, else the latest session's
non-blank one (latest created_at, then highest session id), over all sessions; kept as
written; NULL when none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from conftest import flat_session, session, write_exports
from helpers_ops import cli

AS_OF = "2026-11-26"
USERS_COLUMNS = ["user_id", "email", "is_system", "is_member", "first_name", "last_name"]


def _user(id: str, first: Any = ..., last: Any = ..., email: str | None = None) -> dict[str, Any]:
    """A nested `user` object; a name given as `...` is left out."""
    record: dict[str, Any] = {"id": id, "email": email or f"{id}@acme.com"}
    if first is not ...:
        record["first_name"] = first
    if last is not ...:
        record["last_name"] = last
    return record


def _run(exports: Path, store: Path, as_of: str = AS_OF) -> Path:
    result = cli("run", "--exports", str(exports), "--snapshots", str(store), "--as-of", as_of)
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip())


def _users(snapshot: Path) -> duckdb.DuckDBPyRelation:
    return duckdb.sql(
        f"SELECT * FROM read_parquet('{snapshot / 'users.parquet'}', hive_partitioning = false)"
    )


def _names(snapshot: Path) -> dict[str, tuple[str | None, str | None]]:
    rows = _users(snapshot).select("user_id, first_name, last_name").fetchall()
    return {user_id: (first, last) for user_id, first, last in rows}


def _manifest(snapshot: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((snapshot / "manifest.json").read_text())
    return manifest


def test_users_parquet_has_the_names_as_its_last_two_columns(tmp_path: Path) -> None:
    exports = write_exports(tmp_path / "exports", {"sessions/a.jsonl": [session("s1")]})
    users = _users(_run(exports, tmp_path / "store"))
    assert users.columns == USERS_COLUMNS
    assert [str(t) for t in users.types[-2:]] == ["VARCHAR", "VARCHAR"]
    assert users.fetchall() == [("u1", "u1@acme.com", False, False, "U", "One")]


def test_member_names_win_over_session_names(tmp_path: Path) -> None:
    exports = write_exports(
        tmp_path / "exports",
        {
            "sessions/a.jsonl": [
                session(
                    "s1", user=_user("u1", "Session", "Name"), created_at="2026-11-20T10:00:00Z"
                ),
            ],
            "members.csv": [
                ["id", "email", "first_name", "last_name"],
                ["u1", "u1@acme.com", "Ann", "Lee"],
                ["u2", "u2@acme.com", "Bo", "Ng"],  # a member without sessions
            ],
        },
    )
    assert _names(_run(exports, tmp_path / "store")) == {"u1": ("Ann", "Lee"), "u2": ("Bo", "Ng")}


def test_a_blank_member_name_falls_back_to_the_latest_session_per_field(tmp_path: Path) -> None:
    exports = write_exports(
        tmp_path / "exports",
        {
            "sessions/a.jsonl": [
                session(
                    "s1", user=_user("u1", "Early", "Early"), created_at="2026-11-20T10:00:00Z"
                ),
                session("s2", user=_user("u1", "Late", "Late"), created_at="2026-11-21T10:00:00Z"),
                session("s3", user=_user("u2", "Sess", "Sess"), created_at="2026-11-21T10:00:00Z"),
            ],
            "members.jsonl": [
                # first name blank (white space the emails trim too), last name kept
                {
                    "id": "u1",
                    "email": "u1@acme.com",
                    "first_name": " \t\u000b\f\r\n ",
                    "last_name": "Lee",
                },
                # an empty first name and a last name that is not text: both from sessions
                {"id": "u2", "email": "", "first_name": "", "last_name": 7},
                # a member with blank names and no sessions: unknown
                {"id": "u3", "email": "u3@acme.com", "first_name": "  ", "last_name": None},
            ],
        },
    )
    snapshot = _run(exports, tmp_path / "store")
    assert _names(snapshot) == {
        "u1": ("Late", "Lee"),
        "u2": ("Sess", "Sess"),
        "u3": (None, None),
    }
    # The email still follows its own rule (u2's member email is blank).
    emails = dict(_users(snapshot).select("user_id, email").fetchall())
    assert emails == {"u1": "u1@acme.com", "u2": "u2@acme.com", "u3": "u3@acme.com"}


def test_a_non_member_takes_the_latest_non_blank_names(tmp_path: Path) -> None:
    exports = write_exports(
        tmp_path / "exports",
        {
            "sessions/a.jsonl": [
                session("s1", user=_user("u1", "First", "Last"), created_at="2026-11-20T10:00:00Z"),
                # Same time: the highest session id wins, in byte order ("s9" > "s10").
                session(
                    "s9", user=_user("u1", "  Nine ", "   "), created_at="2026-11-21T10:00:00Z"
                ),
                session("s10", user=_user("u1", "ten", None), created_at="2026-11-21T10:00:00Z"),
            ],
            # A later file, a later session, blank names: they erase nothing.
            "sessions/b.jsonl": [
                session("s2", user=_user("u1", "", ...), created_at="2026-11-22T10:00:00Z"),
            ],
        },
    )
    # Kept as written (not trimmed); the last name's latest non-blank one is s1's.
    assert _names(_run(exports, tmp_path / "store")) == {"u1": ("  Nine ", "Last")}


def test_names_that_are_not_text_are_null_and_never_reject(tmp_path: Path) -> None:
    exports = write_exports(
        tmp_path / "exports",
        {
            "sessions/a.jsonl": [
                session("s1", user=_user("u1", None, None)),
                session("s2", user=_user("u2")),  # absent
                session("s3", user=_user("u3", 42, 1.5)),
                session("s4", user=_user("u4", True, {"x": "y"})),
                session("s5", user=_user("u5", ["A"], "Kept")),
                # A later number does not replace an earlier name.
                session("s6", user=_user("u6", "Text", "Text"), created_at="2026-11-01T10:00:00Z"),
                session("s7", user=_user("u6", 5, 6), created_at="2026-11-02T10:00:00Z"),
                # Flat names in JSON are read too.
                flat_session("s8", user_id="u7", user_first_name="Flat", user_last_name=8),
            ],
        },
    )
    snapshot = _run(exports, tmp_path / "store")
    assert _names(snapshot) == {
        "u1": (None, None),
        "u2": (None, None),
        "u3": (None, None),
        "u4": (None, None),
        "u5": (None, "Kept"),
        "u6": ("Text", "Text"),
        "u7": ("Flat", None),
    }
    counts = _manifest(snapshot)["counts"]
    assert (counts["sessions_accepted"], counts["sessions_rejected"]) == (8, 0)


def test_csv_and_parquet_sessions_carry_names(tmp_path: Path) -> None:
    header = [
        "id",
        "user_id",
        "user_first_name",
        "user_last_name",
        "scenario_id",
        "score",
        "is_valid_attempt",
        "created_at",
    ]
    exports = write_exports(
        tmp_path / "exports",
        {
            "sessions/a.csv": [
                header,
                ["c1", "u1", " Ann ", "42", "sc1", "70", "true", "2026-11-20T10:00:00Z"],
                # empty is null, white space is blank: neither replaces c1's names
                ["c2", "u1", "", "  ", "sc1", "70", "true", "2026-11-21T10:00:00Z"],
            ],
            "sessions/b.parquet": [
                flat_session("p1", user_id="u2", user_first_name="Pa", user_last_name="Rquet"),
                flat_session("p2", user_id="u3", user_first_name=None, user_last_name="Only"),
            ],
            # Parquet is typed like JSON: a numeric name column is not a name.
            "sessions/c.parquet": pa.table(
                {
                    "id": ["n1"],
                    "user_id": ["u4"],
                    "user_first_name": ["Num"],
                    "user_last_name": pa.array([12], pa.int64()),
                    "scenario_id": ["sc1"],
                    "score": [60.0],
                    "is_valid_attempt": [True],
                    "created_at": ["2026-11-20T10:00:00Z"],
                }
            ),
            # Nested Parquet (a `user` struct) as the API returns it.
            "sessions/d.parquet": [session("n2", user=_user("u5", "Nest", "Ed"))],
        },
    )
    snapshot = _run(exports, tmp_path / "store")
    assert _names(snapshot) == {
        "u1": (" Ann ", "42"),  # CSV text is text, kept as written
        "u2": ("Pa", "Rquet"),
        "u3": (None, "Only"),
        "u4": ("Num", None),
        "u5": ("Nest", "Ed"),
    }
    assert _manifest(snapshot)["counts"]["sessions_rejected"] == 0


def test_users_seen_only_after_the_as_of_day_are_absent(tmp_path: Path) -> None:
    exports = write_exports(
        tmp_path / "exports",
        {
            "sessions/a.jsonl": [
                session(
                    "s1", user=_user("u1", "Before", "Before"), created_at="2026-11-20T10:00:00Z"
                ),
                # After the as-of day, yet it names u1 (names are as of the export).
                session(
                    "s2", user=_user("u1", "After", "After"), created_at="2026-11-28T10:00:00Z"
                ),
                session("s3", user=_user("u2", "Later", "User"), created_at="2026-11-28T10:00:00Z"),
            ],
        },
    )
    assert _names(_run(exports, tmp_path / "store")) == {"u1": ("After", "After")}


def _stale_days(exports: Path, store: Path) -> list[object]:
    result = cli(
        "snapshots", "stale", "--exports", str(exports), "--snapshots", str(store), "--json"
    )
    assert result.exit_code == 0, result.stderr
    return [s["snapshot_date"] for s in json.loads(result.stdout)]


def test_a_changed_name_makes_the_days_that_show_the_user_stale(tmp_path: Path) -> None:
    exports = write_exports(
        tmp_path / "exports",
        {
            "sessions/a.jsonl": [
                session("s1", user=_user("u1", "Ann", "Lee"), created_at="2026-11-20T10:00:00Z"),
                session("s2", user=_user("u2", "Bo", "Ng"), created_at="2026-11-22T10:00:00Z"),
            ],
        },
    )
    store = tmp_path / "store"
    for day in ("2026-11-21", "2026-11-22"):
        _run(exports, store, day)
    # A later session with the same names changes nothing the two days show.
    write_exports(
        exports,
        {
            "sessions/b.jsonl": [
                session("s3", user=_user("u2", "Bo", "Ng"), created_at="2026-11-24T10:00:00Z")
            ]
        },
    )
    assert _stale_days(exports, store) == []
    # Another last name for u2 (email unchanged): the day that shows u2 is stale, the
    # day before u2's first session is not.
    write_exports(
        exports,
        {
            "sessions/b.jsonl": [
                session("s3", user=_user("u2", "Bo", "Ngo"), created_at="2026-11-24T10:00:00Z")
            ]
        },
    )
    assert _stale_days(exports, store) == ["2026-11-22"]
    # A rebuilt day shows the new name.
    assert _names(_run(exports, tmp_path / "fresh", "2026-11-22"))["u2"] == ("Bo", "Ngo")
