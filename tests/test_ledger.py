"""The ledger reports the error that ended a transaction, not the ROLLBACK after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import duckdb
import pytest

from scenario_analytics.engine.database import connect
from scenario_analytics.ingest.ledger import Ledger


class FullDiskOnCommit:
    """A connection whose COMMIT fails as DuckDB's does when the disk is full: the
    transaction is over (rolled back) and an IOException is raised."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.commits = 0

    def execute(self, sql: str, *args: Any) -> duckdb.DuckDBPyConnection:
        if sql.strip().upper() == "COMMIT":
            self.commits += 1
            self.con.execute("ROLLBACK")
            raise duckdb.IOException("IO Error: could not write ledger: No space left on device")
        return self.con.execute(sql, *args)


def test_a_failed_commit_is_reported_as_itself(tmp_path: Path) -> None:
    con = FullDiskOnCommit(connect())
    with pytest.raises(duckdb.IOException, match="No space left on device"):
        Ledger(cast(duckdb.DuckDBPyConnection, con), tmp_path / ".ledger.duckdb", "digest")
    # It tried the ledger as it was, then a new one: both commits failed the same way.
    assert con.commits == 2
    # DuckDB itself: a ROLLBACK without a transaction fails (what used to hide the cause).
    with pytest.raises(duckdb.TransactionException, match="no transaction is active"):
        con.con.execute("ROLLBACK")
