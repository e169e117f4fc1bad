"""`generate`: synthetic exports for tests, the sample and benchmarks."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from scenario_analytics.cli.options import CONTEXT, debug_option, option, parse_day
from scenario_analytics.cli.output import handle_errors, log
from scenario_analytics.errors import InvalidUsageError
from scenario_analytics.filters import utc_yesterday
from scenario_analytics.generate import FORMATS, generate_exports


@click.command(context_settings=CONTEXT)
@option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder to write the exports into (must be empty or missing).",
)
@option("--sessions", type=click.IntRange(min=0), required=True, help="Session rows.")
@option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="parquet",
    show_default=True,
    help="File format of the sessions and most entities.",
)
@option(
    "--bad-rows",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of extra session rows made to be rejected, across every reason.",
)
@option(
    "--end-date",
    callback=parse_day,
    help="Last day of the 90 days of sessions, YYYY-MM-DD  [default: yesterday, UTC, so that "
    "`run` with its default --as-of publishes them].",
)
@debug_option
@handle_errors
def generate_command(
    out: Path, sessions: int, seed: int, fmt: str, bad_rows: float, end_date: date | None
) -> None:
    """Write realistic synthetic exports that `run` accepts.

    Prints what it wrote (files, rows, bad rows by reason) as JSON on stdout. The same
    options and --end-date give the same files.

    \b
    Example:
      scenario-analytics generate --out /tmp/exports --sessions 1000000 --seed 7
      scenario-analytics generate --out /tmp/b1m --sessions 1000000 --end-date 2026-11-26
    """
    try:
        report = generate_exports(
            out, sessions, seed, fmt, bad_rows,  # type: ignore[arg-type]
            end_date=end_date or utc_yesterday(),
        )  # fmt: skip
    except FileExistsError as exc:
        raise InvalidUsageError(
            f"{out} is not empty", "choose a new --out folder or empty it first"
        ) from exc
    click.echo(json.dumps(report.to_json(), indent=2))
    log(f"wrote {report.sessions_written:,} session rows to {out}")
