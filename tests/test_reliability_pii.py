"""Personal data: emails appear only in the tables that need them, never in logs or messages.

Distinctive emails ("canaries") are planted in members, in accepted and in rejected
session rows, and in rows that make a file unreadable. Every command's stdout and stderr
(successes, the data-quality gate, unreadable files, query errors) and every file of the
snapshot are searched for them. They may be only in:

- `users.parquet` (`email`): the API's `user_emails` filter and system-user rule need it;
- `rejects.parquet` (`raw`): the contract keeps a rejected record as it was written;
- `summaries.parquet` (`user_emails`, `request_key`): only for a materialized request
  that a job file names by email.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result
from helpers_ops import snapshot_files

from scenario_analytics.cli import main
from scenario_analytics.publish.lease import LEASE_KEY, Holder

CANARY = "zz-canary"
MEMBER = f"{CANARY}-member@acme.com"
SESSION = f"{CANARY}-session@acme.com"
REJECTED = f"{CANARY}-rejected@acme.com"
REQUESTED = f"{CANARY}-requested@acme.com"
AS_OF = "2026-11-26"


def _session(sid: str, user: str, email: str, score: object = 80) -> str:
    return json.dumps(
        {
            "id": sid,
            "user": {"id": user, "email": email},
            "scenario": {"id": "sc1", "slug": "one", "name": "One"},
            "score": score,
            "duration_seconds": 60,
            "is_valid_attempt": True,
            "created_at": "2026-11-01T10:00:00Z",
        }
    )


def _exports(root: Path, bad_rows: int = 1) -> Path:
    exports = root / "exports"
    (exports / "sessions").mkdir(parents=True)
    lines = [_session(f"s{i}", f"u{i % 3}", SESSION) for i in range(30)]
    lines += [_session(f"bad{i}", "u9", REJECTED, score="high") for i in range(bad_rows)]
    (exports / "sessions" / "a.jsonl").write_text("\n".join(lines) + "\n")
    (exports / "members.csv").write_text(f"id,email,first_name\nu1,{MEMBER},Ann\nu7,{MEMBER},B\n")
    (exports / "group_memberships.csv").write_text("group_id,user_id\ng1,u1\n")
    return exports


def _invoke(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def _assert_clean(result: Result) -> None:
    assert CANARY not in result.stdout.lower(), result.stdout
    assert CANARY not in result.stderr.lower(), result.stderr


def _columns_with_canary(path: Path) -> set[str]:
    con = duckdb.connect()
    columns = [
        str(name)
        for (name,) in con.execute(
            "SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet(?))", [str(path)]
        ).fetchall()
    ]
    found = set()
    for column in columns:
        hits = con.execute(
            f'SELECT count(*) FROM read_parquet(?) WHERE lower(CAST("{column}" AS VARCHAR)) '
            "LIKE '%' || ? || '%'",
            [str(path), CANARY],
        ).fetchone()
        if hits and hits[0]:
            found.add(column)
    return found


def test_emails_stay_in_the_tables_that_need_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports = _exports(tmp_path)
    job = tmp_path / "job.toml"
    job.write_text(f'[[materialize.requests]]\nuser_emails = "{REQUESTED.upper()}"\n')
    store = tmp_path / "store"
    # The lease (who holds the store: host, pid, command) is gone once the run ends:
    # what the run wrote into it is kept as it is written.
    leases: list[bytes] = []
    to_bytes = Holder.to_bytes

    def kept(holder: Holder) -> bytes:
        leases.append(to_bytes(holder))
        return leases[-1]

    monkeypatch.setattr(Holder, "to_bytes", kept)
    ran = _invoke(
        "run", "--exports", str(exports), "--snapshots", str(store), "--as-of", AS_OF,
        "--job", str(job), "--max-reject-ratio", "0.5",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    _assert_clean(ran)
    folder = (store / f"snapshot_date={AS_OF}").resolve()
    allowed = {
        "users.parquet": {"email"},
        "rejects.parquet": {"raw"},
        "summaries.parquet": {"user_emails", "request_key"},
    }
    # Every file of the snapshot, through its store (the session partitions too).
    files = snapshot_files(folder)
    assert any(rel.startswith("sessions/") for rel in files)
    for rel, path in files.items():
        if path.suffix == ".parquet":
            assert _columns_with_canary(path) == allowed.get(rel, set()), rel
        else:
            assert CANARY not in path.read_text(encoding="utf-8").lower(), rel
    # The store's bookkeeping: latest.json, commit records, retired versions, the
    # ledger's catalog, the format mark; and the lease the run held.
    bookkeeping = sorted(store.rglob("*.json"))
    assert {store / "latest.json", store / ".store.json"} <= set(bookkeeping)
    assert any(p.parent == store / ".commits" for p in bookkeeping)
    for path in bookkeeping:
        assert CANARY not in path.read_text().lower(), path
    assert leases and not (store / LEASE_KEY).exists()
    for lease in leases:
        assert CANARY not in lease.decode().lower()
    # The tables that hold emails hold exactly the expected ones.
    emails = duckdb.execute(
        "SELECT DISTINCT email FROM read_parquet(?) WHERE email IS NOT NULL ORDER BY 1",
        [str(folder / "users.parquet")],
    ).fetchall()
    assert emails == [(MEMBER,), (SESSION,)]

    for args in (
        ["query", "--snapshots", str(store), "sc1", "--user-emails", SESSION],
        ["query", "--snapshots", str(store), "sc1", "--user-emails", REQUESTED],
        ["query", "--snapshots", str(store), "sc1", "--user-emails", MEMBER, "--start-date", "x"],
        ["query", "--snapshots", str(store), "nope", "--user-emails", MEMBER],
        [
            "query",
            "--snapshots",
            str(store),
            "sc1",
            "--user-emails",
            MEMBER,
            "--as-of",
            "2001-01-01",
        ],
    ):
        _assert_clean(_invoke(*args))
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "\n".join(
            json.dumps(r)
            for r in (
                {"scenario_id": "sc1", "user_emails": f"{MEMBER},{SESSION}"},
                {"scenario_id": "sc1", "user_emails": MEMBER, "group_ids": 5},
                {"scenario_id": "sc1", "user_emails": MEMBER, "email": MEMBER},
                {"user_emails": MEMBER},
            )
        )
        + "\n"
    )
    _assert_clean(_invoke("query", "--snapshots", str(store), "--requests", str(requests)))


def test_no_email_in_validate_reports_or_the_gate(tmp_path: Path) -> None:
    exports = _exports(tmp_path, bad_rows=10)
    for extra in ([], ["--json"]):
        result = _invoke("validate", "--exports", str(exports), *extra)
        assert result.exit_code == 4
        _assert_clean(result)
    result = _invoke(
        "run", "--exports", str(exports), "--snapshots", str(tmp_path / "s"), "--as-of", AS_OF
    )
    assert result.exit_code == 4
    _assert_clean(result)


def test_no_email_in_the_message_of_an_unreadable_file(tmp_path: Path) -> None:
    """pyarrow quotes a row it cannot split; that text must not reach the message."""
    cases = {
        # wrong column count and not UTF-8
        "sessions/b.csv": (
            "id,user_id,user_email,scenario_id,created_at,is_valid_attempt\n"
            f"s1,u1,{MEMBER},sc1,2026-11-01T10:00:00Z,true\n"
            f"s2,u1,{MEMBER},\xe9\n"
        ).encode("latin-1"),
        # a line holding the byte 0x1E and bytes that are not UTF-8
        "sessions/b.jsonl": f'{{"id": "s2", "email": "{MEMBER}"}}\x1e'.encode() + b"\xff\n",
        # a line too long to be a record
        "sessions/c.jsonl": (_session("s3", "u1", MEMBER) + " " * (40 << 20) + "\n").encode(),
        # a JSON document that is not JSON
        "sessions/b.json": f'[{{"email": "{MEMBER}"'.encode(),
    }
    for rel, data in cases.items():
        exports = tmp_path / rel.replace("/", "-") / "exports"
        (exports / "sessions").mkdir(parents=True)
        (exports / "sessions" / "a.jsonl").write_text(_session("s1", "u1", "x@acme.com") + "\n")
        (exports / rel).write_bytes(data)
        for args in (
            ["validate", "--exports", str(exports)],
            ["run", "--exports", str(exports), "--snapshots", str(exports.parent / "store")],
        ):
            result = _invoke(*args)
            assert result.exit_code == 1, (rel, result.stderr)
            assert f"cannot read export file {rel}" in result.stderr
            _assert_clean(result)
