"""`validate`: load and check an exports folder without writing anything."""

from __future__ import annotations

from pathlib import Path

from scenario_analytics.engine.database import connect
from scenario_analytics.engine.sql_files import load_sql_files, plan_sql_files
from scenario_analytics.events import Report, ignore
from scenario_analytics.ingest.ledger import Ledger
from scenario_analytics.pipeline.stages import (
    LoadResult,
    check_reject_ratio,
    scan_exports,
    stage_exports,
)
from scenario_analytics.settings import EngineSettings

__all__ = ["check_reject_ratio", "validate"]


def validate(
    exports: Path, report: Report = ignore, engine: EngineSettings | None = None
) -> LoadResult:
    """Load and check an exports folder without writing anything: rows read, accepted
    and rejected per file, rejects by reason. Apply the reject gate with
    `check_reject_ratio(result, ratio)` (raises `DataQualityError`, exit 4). Example:

        from scenario_analytics import check_reject_ratio, validate

        result = validate(Path("data/sample"))
        print(result.entity_totals("sessions"))  # (read, accepted, rejected)
        check_reject_ratio(result, 0.01)
    """
    con = connect(engine)
    try:
        plan = plan_sql_files(load_sql_files())
        inputs = scan_exports(exports, report)
        return stage_exports(con, inputs, plan, Ledger(con, None, ""), report)
    finally:
        con.close()
