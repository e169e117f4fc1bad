"""Options, defined once: every option reads `SCENARIO_ANALYTICS_<OPTION>` from the
environment when it is not on the command line.

Options that a job file can also set (`--exports`, `--snapshots`, `--max-reject-ratio`,
`--keep`) have no Click default: a value given on the command line or in the
environment overrides the job file, and `settings.JobSettings.resolve` supplies the
job file's value or the default otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from scenario_analytics.filters import FILTERS
from scenario_analytics.locations import Location, LocationError
from scenario_analytics.settings import CHECKS, ENGINE_NAMES

F = TypeVar("F", bound=Callable[..., Any])
ENV_PREFIX = "SCENARIO_ANALYTICS_"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "terminal_width": 100}
DEBUG = "scenario_analytics.debug"  # key in click's shared context meta


def envvar(long_name: str) -> str:
    """`--max-reject-ratio` -> `SCENARIO_ANALYTICS_MAX_REJECT_RATIO`."""
    return ENV_PREFIX + long_name.lstrip("-").replace("-", "_").upper()


def option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    """`click.option` with the environment variable named after the long option."""
    long_name = next(d for d in decls if d.startswith("--"))
    kwargs.setdefault("envvar", envvar(long_name))
    kwargs.setdefault("show_envvar", True)
    return click.option(*decls, **kwargs)


def bundle(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several options as one decorator, applied in the order listed."""

    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def parse_day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from None


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[DEBUG] = True


class LocationType(click.ParamType):  # type: ignore[type-arg]
    """A local folder, file://… or s3://bucket/prefix (`locations.Location`)."""

    name = "location"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DIR|S3_URI"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Location:
        try:
            return Location.parse(value if isinstance(value, Location | Path) else str(value))
        except LocationError as exc:
            self.fail(str(exc), param, ctx)


LOCATION = LocationType()

# `--debug` is accepted before the command name and after it.
debug_option = option(
    "--debug",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_debug,
    help="Show the traceback of an error.",
)
exports_option = option(
    "--exports",
    type=LOCATION,
    help="Folder or s3://bucket/prefix holding the platform's exports. Default: the job "
    "file's exports.",
)
snapshots_option = option(
    "--snapshots",
    type=LOCATION,
    help="Snapshot store: a folder or s3://bucket/prefix. Default: the job file's snapshots.",
)
job_option = option(
    "--job",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Job file (TOML) with paths, engine settings and the materialized filter set.",
)
ratio_option = option(
    "--max-reject-ratio",
    type=click.FloatRange(0, 1),
    default=None,
    help="Largest share of rejected session rows allowed before nothing is published "
    "(exit 4). Default: the job file's, else 0.01.",
)
keep_option = option(
    "--keep",
    type=click.IntRange(min=1),
    default=None,
    help="Keep the newest N snapshots and prune older ones (never the one latest.json "
    "names). Default: the job file's keep_snapshots, else keep all.",
)
full_refresh_option = option(
    "--full-refresh",
    is_flag=True,
    help="Parse every export file again and rebuild the store's ledger instead of reusing "
    "the rows of unchanged files.",
)
log_format_option = option(
    "--log-format",
    type=click.Choice(["auto", "plain", "json"]),
    default="auto",
    show_default=True,
    help="Progress and logs on stderr: auto is a progress bar on a terminal and plain lines "
    "elsewhere; json is one JSON object per event.",
)
skip_check_option = option(
    "--skip-check",
    "skip_checks",
    multiple=True,
    type=click.Choice(CHECKS),
    help="Do not run this completeness check this time (repeatable); the job file's [checks] "
    "turns checks off for good.",
)
partial_day_option = option(
    "--allow-partial-day",
    is_flag=True,
    help="Accept today (UTC), a day not over yet, as a snapshot date.",
)
engine_option = option(
    "--engine",
    "engine_name",
    type=click.Choice(ENGINE_NAMES),
    default=None,
    help="What runs the SQL: duckdb, in this process, or spark (needs the spark extra and "
    "Java; docs/ENGINES.md). Default: the job file's [engine] name, else duckdb.",
)
spark_master_option = option(
    "--spark-master",
    metavar="URL",
    default=None,
    help="Spark master with --engine spark, e.g. local[2], yarn or k8s://https://host:443. "
    "Default: the job file's [engine.spark] master, else the one spark-submit gives.",
)
json_option = option(
    "--json", "as_json", is_flag=True, help="Print one JSON document instead of a table."
)


def _filter_option(name: str) -> Callable[[F], F]:
    f = next(f for f in FILTERS if f.name == name)
    if f.kind == "flag":
        return option(f.option, is_flag=True, help=f.help)
    return option(f.option, help=f.help)


# One option per filter parameter of the API (`filters.FILTERS`), named after it.
filter_options = bundle(*(_filter_option(f.name) for f in FILTERS))
