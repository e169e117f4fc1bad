"""The committed job files: valid, and the nightly and backfill jobs build alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenario_analytics.settings import load_job

JOBS = Path(__file__).parents[1] / "jobs"


@pytest.mark.parametrize("name", sorted(p.name for p in JOBS.glob("*.toml")))
def test_job_file_is_valid(name: str) -> None:
    load_job(JOBS / name)


def test_nightly_and_backfill_jobs_build_the_same_snapshots() -> None:
    nightly, backfill = load_job(JOBS / "nightly.toml"), load_job(JOBS / "backfill.toml")
    assert nightly.materialize == backfill.materialize
    assert (nightly.exports, nightly.snapshots) == (backfill.exports, backfill.snapshots)
    assert nightly.keep_snapshots and backfill.keep_snapshots is None
