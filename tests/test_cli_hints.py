"""Commands the tool prints for a user to copy repeat the options in force, and do what
they say when run as printed (issue #28: a printed backfill that dropped `--job`
rebuilt a day with the default filters and engine, and `snapshots stale` still listed
it; the hints of `snapshots --job … stale` and `verify` left out the store)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from conftest import FIXTURE_SKIPS, session, write_exports
from helpers_ops import base_exports, cli

from scenario_analytics.cli.hints import given_options

SKIPS = [arg for check in sorted(FIXTURE_SKIPS) for arg in ("--skip-check", check)]
# Fewer filters than the default: a rebuild without the job file would have more.
JOB = """exports = "exports"
snapshots = "store"
max_reject_ratio = 0.5

[materialize]
audiences = ["all_users"]
system_users = ["include"]
windows = ["all", 7]
"""


def _printed(stderr: str, pattern: str) -> list[str]:
    found = re.search(pattern, stderr)
    assert found, stderr
    words = shlex.split(found.group(1))
    assert words[0] == "scenario-analytics"
    return words[1:]


def _filters(store: Path, day: str) -> int:
    manifest = json.loads((store / f"snapshot_date={day}" / "manifest.json").read_text("utf-8"))
    return int(manifest["materialized_filters_per_scenario"])


def _late(exports: Path, name: str, score: int) -> None:
    write_exports(exports, {f"sessions/{name}.jsonl": [
        session(name, created_at="2026-11-25T08:00:00Z", score=score)]})  # fmt: skip


def test_every_printed_rebuild_repeats_the_job_and_runs_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # The fixture's days are long past (stale_exports), and a rebuilt day moves into its
    # folder at once (no reader to wait for): set in the environment, which a printed
    # command does not repeat, so each one runs exactly as printed.
    monkeypatch.setenv("SCENARIO_ANALYTICS_SKIP_CHECK", " ".join(sorted(FIXTURE_SKIPS)))
    monkeypatch.setenv("SCENARIO_ANALYTICS_STORAGE_GRACE_SECONDS", "0")
    exports = base_exports(tmp_path / "exports")
    store = tmp_path / "store"
    (tmp_path / "custom.toml").write_text(JOB, encoding="utf-8")
    done = cli("backfill", "--job", "custom.toml", "--from", "2026-11-25", "--to", "2026-11-25")
    assert done.exit_code == 0, done.stderr
    custom = _filters(store, "2026-11-25")

    # A late session of the 25th: `run` of the 26th warns, printing the rebuild.
    _late(exports, "late1", 88)
    done = cli("run", "--job", "custom.toml", "--as-of", "2026-11-26")
    assert done.exit_code == 0, done.stderr
    rebuild = _printed(done.stderr, r"rebuild with: (scenario-analytics [^\n]*?), or set restate")
    assert rebuild == ["backfill", "--from", "2026-11-25", "--to", "2026-11-25", "--stale",
                       "--job", "custom.toml"]  # fmt: skip
    done = cli(*rebuild)
    assert done.exit_code == 0, done.stderr
    assert _filters(store, "2026-11-25") == custom  # the job's filters, not the default's
    done = cli("snapshots", "--job", "custom.toml", "stale")
    assert done.exit_code == 0 and "0 snapshots out of date" in done.stderr, done.stderr

    # Another late session: `snapshots --job … stale` names the rebuild, with the job.
    _late(exports, "late2", 77)
    done = cli("snapshots", "--job", "custom.toml", "stale")
    assert done.exit_code == 0, done.stderr
    # (the 26th's snapshot has the 25th's sessions too)
    rebuild = _printed(done.stderr, r"2 snapshots out of date; rebuild with: ([^\n]*)")
    assert rebuild == ["backfill", "--stale", "--from", "2026-11-25", "--to", "2026-11-26",
                       "--job", "custom.toml"]  # fmt: skip
    done = cli(*rebuild)
    assert done.exit_code == 0, done.stderr
    assert _filters(store, "2026-11-25") == _filters(store, "2026-11-26") == custom
    done = cli("snapshots", "--job", "custom.toml", "stale")
    assert "0 snapshots out of date" in done.stderr, done.stderr

    # A damaged file: `snapshots verify` names the rebuild that mends it, with the job.
    (store / "snapshot_date=2026-11-25" / "summaries.parquet").write_bytes(b"damaged")
    done = cli("snapshots", "--job", "custom.toml", "verify")
    assert done.exit_code == 1, done.stderr
    rebuild = _printed(done.stderr, r"rebuild 2026-11-25 with `([^`]*)`")
    assert rebuild == ["backfill", "--from", "2026-11-25", "--to", "2026-11-25", "--force",
                       "--job", "custom.toml"]  # fmt: skip
    done = cli(*rebuild)
    assert done.exit_code == 0, done.stderr
    assert _filters(store, "2026-11-25") == custom
    done = cli("snapshots", "--job", "custom.toml", "verify")
    assert done.exit_code == 0, done.stderr


def test_a_hint_without_the_exports_names_them_for_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`snapshots verify --snapshots S` knows no exports: the printed backfill repeats the
    store and says where the exports go; quoting keeps a path with a space one word."""
    monkeypatch.chdir(tmp_path)
    base_exports(tmp_path / "exports")
    done = cli("run", "--exports", "exports", "--snapshots", "my store", "--as-of",
               "2026-11-26", "--max-reject-ratio", "0.5", *SKIPS)  # fmt: skip
    assert done.exit_code == 0, done.stderr
    (tmp_path / "my store" / "snapshot_date=2026-11-26" / "users.parquet").write_bytes(b"x")
    done = cli("snapshots", "verify", "--snapshots", "my store")
    assert done.exit_code == 1
    assert (
        "rebuild 2026-11-26 with `scenario-analytics backfill --from 2026-11-26 --to "
        "2026-11-26 --force --exports EXPORTS --snapshots 'my store'`" in done.stderr
    ), done.stderr


def test_options_from_the_environment_are_not_repeated() -> None:
    """Only what the command line gave: the environment is in force where the printed
    command runs in it (and a secret-free, short line)."""
    import click
    from click.testing import CliRunner

    @click.command()
    @click.option("--job", envvar="X_JOB")
    @click.option("--snapshots")
    def show(job: str | None, snapshots: str | None) -> None:
        click.echo(" ".join(given_options()))

    runner = CliRunner()
    assert runner.invoke(show, ["--snapshots", "s"], env={"X_JOB": "j.toml"}).output == (
        "--snapshots s\n"
    )
    assert runner.invoke(show, ["--job", "j.toml"]).output == "--job j.toml\n"


def test_the_commands_in_error_hints_repeat_the_options_they_take(tmp_path: Path) -> None:
    """Any command an error line names (`query`'s "run … first", a store's "snapshots
    verify --repair") repeats the options given that it takes; help and patterns with
    placeholders (`keys create --keys-file FILE`) are left as written."""
    missing = tmp_path / "nowhere"
    done = cli("query", "--snapshots", str(missing), "sc1")
    assert done.exit_code == 3
    assert (
        f"run `scenario-analytics run --exports EXPORTS --snapshots {missing}` first" in done.stderr
    ), done.stderr
    done = cli("serve", "--snapshots", str(missing), "--port", "1")
    assert done.exit_code == 2
    assert "`scenario-analytics keys create --keys-file FILE --name NAME`" in done.stderr
