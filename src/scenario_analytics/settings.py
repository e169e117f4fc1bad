"""The job's settings: one model, read from a job file (TOML) and overridden by options.

Where a setting comes from, first match wins (the README's configuration table):

    1. the command line   --snapshots /data/snapshots
    2. the environment    SCENARIO_ANALYTICS_SNAPSHOTS=/data/snapshots
    3. the job file       snapshots = "/data/snapshots"  (--job, or SCENARIO_ANALYTICS_JOB)
    4. the default        the fields' defaults below

The command line merges 1 and 2 (Click reads the environment variables) and hands the
result to `JobSettings.resolve`, which applies 3 and 4. A library caller does the same
with keyword arguments. Job files are validated by pydantic, with messages that name
the bad key.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scenario_analytics.errors import InvalidUsageError
from scenario_analytics.filters import RequestError, parse_request
from scenario_analytics.locations import Location, LocationError

Window = Literal["all"] | Annotated[int, Field(ge=1, le=3660)]


def _plain_path(value: object) -> object:
    """Refuse path text that would not mean what it seems to: `~` and `$VAR` are not
    expanded (they would name a folder called `~` next to the job file), and an empty
    path would be the job file's own folder."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must not be empty")
        if value.startswith("~"):
            raise ValueError("'~' is not expanded: write the absolute path")
        if "$" in value:
            raise ValueError("environment variables are not expanded: write the path")
    return value


def _location(value: object) -> object:
    """A location from text (a path, file://, s3://…) or a Path; refused as `_plain_path`
    refuses paths."""
    if value is None or isinstance(value, Location):
        return value
    if isinstance(value, dict) and "scheme" in value:  # a settings object dumped and read back
        return Location(**value)
    checked = _plain_path(value)
    try:
        return Location.parse(checked if isinstance(checked, Path) else str(checked))
    except LocationError as exc:
        raise ValueError(str(exc)) from None


# What DuckDB's memory_limit takes: a positive number and a unit (1000- or 1024-based), or a
# share of the machine's memory.
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB|%)\s*$", re.I)


class SparkSettings(BaseModel):
    """Where `--engine spark` runs (docs/ENGINES.md): the master URL (None: the one
    spark-submit gives, else Spark's default) and Spark conf on top of the job's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    master: str | None = Field(None, description="Spark master, e.g. 'local[2]' or 'yarn'")
    conf: dict[str, str] = Field({}, description="Spark conf, e.g. spark.executor.memory")

    @field_validator("conf", mode="before")
    @classmethod
    def _conf_text(cls, value: object) -> object:
        # TOML gives numbers and booleans their own types; Spark conf values are text.
        if isinstance(value, dict):
            return {
                str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()
            }
        return value


ENGINE_NAMES = ("duckdb", "spark")


class EngineSettings(BaseModel):
    """Which engine runs the SQL (`name`: duckdb, the default, or spark) and DuckDB's
    resources; None means the default memory limit (engine/database.py), all cores, and a
    private spill folder under the system's temporary folder. DuckDB's settings hold with
    Spark too: the driver's DuckDB still reads the ledger and writes the snapshot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["duckdb", "spark"] = Field("duckdb", description="the engine: duckdb or spark")
    spark: SparkSettings = SparkSettings()

    memory_limit: str | None = Field(None, description="DuckDB memory limit, e.g. '4GB'")
    threads: int | None = Field(None, ge=1, description="DuckDB worker threads")
    temp_directory: Path | None = Field(None, description="where DuckDB spills to disk")

    _plain = field_validator("temp_directory", mode="before")(_plain_path)

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        match = _MEMORY.match(value) if value is not None else None
        if value is not None and (match is None or float(match.group(1)) <= 0):
            raise ValueError(
                f"{value!r} is not a memory size: write a positive number and a unit, "
                "e.g. '4GB', '1.5GiB', '512MB' or '75%'"
            )
        if match is not None and match.group(2).upper() != "%":
            unit = match.group(2).upper()
            scale = 1024 if unit.endswith("IB") else 1000
            power = ["B", "K", "M", "G", "T"].index(unit[0])
            if float(match.group(1)) * scale**power < 64 * 1000**2:
                raise ValueError(f"{value!r} is too little for DuckDB: give at least 64MB")
        return value


# The completeness checks against history (CONTRACT.md section 5), in the order they run.
CHECKS: tuple[str, ...] = ("entity_missing", "entity_drop", "day_volume", "stale_exports")


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


class EntityMissingCheck(_Check):
    """An entity with rows in the newest earlier snapshot has none now."""


class EntityDropCheck(_Check):
    """An entity's accepted rows fall below `min_ratio` of the newest earlier snapshot's,
    or the sessions up to the as-of day fall below that snapshot's at all."""

    min_ratio: float = Field(0.5, gt=0, le=1)


class DayVolumeCheck(_Check):
    """Sessions created on the as-of day fall below `min_ratio` of the median of the same
    weekday over the previous `weeks` weeks, when that median is at least `min_median`."""

    min_ratio: float = Field(0.25, gt=0, le=1)
    min_median: int = Field(100, ge=1)
    weeks: int = Field(4, ge=1, le=52)


class StaleExportsCheck(_Check):
    """The newest accepted session is more than `max_hours` older than the end of the
    as-of day."""

    max_hours: float = Field(72, gt=0)


class ChecksSettings(BaseModel):
    """The job file's `[checks]`: each check on or off, and its threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity_missing: EntityMissingCheck = EntityMissingCheck()
    entity_drop: EntityDropCheck = EntityDropCheck()
    day_volume: DayVolumeCheck = DayVolumeCheck()
    stale_exports: StaleExportsCheck = StaleExportsCheck()


# One more request to precompute: the API's parameters (`filters.FILTERS`), dates absolute.
ExtraRequest = dict[str, str | bool]


class MaterializeSettings(BaseModel):
    """Which filtered summaries each snapshot precomputes, per scenario.

    The set is audiences x system_users x windows, plus `requests`. The unfiltered
    summary (all users, system users included, all time) is always precomputed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    audiences: list[Literal["all_users", "each_group"]] = ["all_users", "each_group"]
    system_users: list[Literal["include", "exclude"]] = ["include", "exclude"]
    windows: list[Window] = ["all", 7, 30, 90]
    requests: list[ExtraRequest] = []

    @field_validator("audiences", "system_users", "windows")
    @classmethod
    def _not_empty(cls, value: list[object]) -> list[object]:
        if not value:
            raise ValueError("must list at least one value")
        return value

    @field_validator("requests")
    @classmethod
    def _valid_requests(cls, value: list[ExtraRequest]) -> list[ExtraRequest]:
        # Checked by the API's own parser, so a job file accepts exactly what the API does.
        for number, request in enumerate(value, start=1):
            try:
                parse_request(request)
            except RequestError as exc:
                raise ValueError(
                    f"request #{number} is not a valid request: {exc.code}: {exc.message}"
                ) from None
        return value


STORAGE_ENV_PREFIX = "SCENARIO_ANALYTICS_STORAGE_"


class StorageSettings(BaseModel):
    """The job file's `[storage]`: how S3 locations are reached, on top of the AWS chain
    (credentials, profile and endpoint come from the AWS tools' own variables and files;
    docs/OPERATIONS.md). Each key can also be set by `SCENARIO_ANALYTICS_STORAGE_<KEY>`,
    which wins over the job file. Local folders ignore all but `lease_seconds`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str | None = Field(None, description="AWS region (default: the AWS chain's)")
    endpoint_url: str | None = Field(
        None,
        description="endpoint of an S3-compatible server, e.g. http://minio:9000 "
        "(default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS)",
    )
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", description="path-style addressing for servers that need it: path"
    )
    max_attempts: int = Field(
        6, ge=1, le=30, description="tries per request (throttling, dropped connections)"
    )
    connect_timeout: float = Field(5.0, gt=0, description="seconds to connect")
    read_timeout: float = Field(60.0, gt=0, description="seconds to wait for an answer")
    cache: Path | None = Field(
        None,
        description="local folder kept between runs for downloaded objects (by sha256); "
        "default: a temporary folder removed at exit",
    )
    cache_days: float = Field(7.0, gt=0, description="cached objects unused this long go")
    grace_seconds: float = Field(
        3600.0,
        ge=0,
        le=7 * 86400,
        description="how long the files of a replaced, pruned or deleted snapshot are kept "
        "for readers that hold it, before a run deletes them",
    )
    lease_seconds: int = Field(
        600,
        ge=30,
        le=86400,
        description="a run's hold on the store lasts this long unless renewed (a crashed "
        "run on another machine blocks the store at most this long)",
    )

    _plain = field_validator("cache", mode="before")(_plain_path)

    @classmethod
    def from_environment(cls, base: StorageSettings) -> StorageSettings:
        """`base` with the SCENARIO_ANALYTICS_STORAGE_* variables set in the environment."""
        given = {
            name: os.environ[STORAGE_ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if os.environ.get(STORAGE_ENV_PREFIX + name.upper(), "") != ""
        }
        if not given:
            return base
        try:
            return cls.model_validate({**base.model_dump(), **given})
        except ValidationError as exc:
            raise InvalidUsageError(
                f"invalid {STORAGE_ENV_PREFIX}* variable: {_problems(exc)}", "fix it"
            ) from exc


class JobSettings(BaseModel):
    """Everything a job file can set; what `run`, `backfill`, `validate` and `query` read."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    exports: Location | None = None
    snapshots: Location | None = None
    max_reject_ratio: float = Field(0.01, ge=0, le=1)
    keep_snapshots: int | None = Field(
        None, ge=1, description="keep the newest N snapshots, prune older ones; unset keeps all"
    )
    restate_days: int = Field(
        0,
        ge=0,
        le=3660,
        description="run rebuilds the out-of-date snapshots of the N days before its as-of "
        "date (late exports) in the same run; 0 only warns of them",
    )
    ignore: list[str] = Field(
        [], description="globs of export paths to skip on purpose (e.g. 'sessions/*.tmp')"
    )
    engine: EngineSettings = EngineSettings()
    storage: StorageSettings = StorageSettings()
    materialize: MaterializeSettings = MaterializeSettings()
    checks: ChecksSettings = ChecksSettings()

    _locations = field_validator("exports", "snapshots", mode="before")(_location)

    @classmethod
    def resolve(cls, job_file: Path | None = None, **overrides: object) -> JobSettings:
        """The job file's settings (or the defaults) with `overrides` on top.

        Overrides that are None are not given (the job file's value, else the default,
        stays). Keys are the top-level fields (`exports`, `keep_snapshots`, ...), DuckDB's
        (`memory_limit`, `threads`, `temp_directory`), `engine_name` (duckdb or spark) and
        `spark_master`.
        """
        job = load_job(job_file) if job_file is not None else cls()
        given = {k: v for k, v in overrides.items() if v is not None}
        engine_keys = set(EngineSettings.model_fields) - {"name", "spark"}
        spark_keys = {"engine_name", "spark_master"}
        unknown = set(given) - set(cls.model_fields) - engine_keys - spark_keys
        if unknown:
            raise TypeError(f"not a job setting: {', '.join(sorted(unknown))}")
        engine = {k: given.pop(k) for k in list(given) if k in engine_keys}
        if "engine_name" in given:
            engine["name"] = given.pop("engine_name")
        data = job.model_dump()
        data["engine"] = {**job.engine.model_dump(), **engine}
        if "spark_master" in given:
            data["engine"]["spark"] = {
                **data["engine"]["spark"],
                "master": given.pop("spark_master"),
            }
        data.update(given)
        try:
            settings = cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidUsageError(f"invalid setting: {_problems(exc)}", "fix it") from exc
        storage = StorageSettings.from_environment(settings.storage)
        return (
            settings
            if storage is settings.storage
            else settings.model_copy(update={"storage": storage})
        )

    def exports_folder(self) -> Location:
        """`exports`, which the caller needs: a usage error naming where to set it."""
        return _required(self.exports, "exports")

    def snapshot_store(self) -> Location:
        return _required(self.snapshots, "snapshots")


def _required(value: Location | None, key: str) -> Location:
    if value is None:
        option = f"--{key}"
        raise InvalidUsageError(
            f"{option} is required",
            f"pass {option} (a folder or s3://bucket/prefix), set "
            f"SCENARIO_ANALYTICS_{key.upper()}, or set {key} in --job",
        )
    return value


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


def load_job(path: Path) -> JobSettings:
    """Read a job file; relative paths in it are relative to the job file's folder.

    The folder is the one the job file was named in (`jobs/` for `jobs/nightly.toml`),
    never the current directory; command-line options override the file's paths.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidUsageError(f"cannot read job file {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidUsageError(f"job file {path} is not valid TOML: {exc}") from exc
    try:
        job = JobSettings.model_validate(data)
    except ValidationError as exc:
        raise InvalidUsageError(
            f"job file {path} is invalid: {_problems(exc)}", "fix the named keys"
        ) from exc
    base = path.parent
    updates: dict[str, object] = {}
    for key in ("exports", "snapshots"):
        value = getattr(job, key)
        if value is not None:
            updates[key] = value.resolved(base)
    if job.storage.cache is not None and not job.storage.cache.is_absolute():
        cache = Path(os.path.normpath(base / job.storage.cache))
        updates["storage"] = job.storage.model_copy(update={"cache": cache})
    if job.engine.temp_directory is not None and not job.engine.temp_directory.is_absolute():
        temp = Path(os.path.normpath(base / job.engine.temp_directory))
        updates["engine"] = job.engine.model_copy(update={"temp_directory": temp})
    job = job.model_copy(update=updates)
    if job.exports is not None and job.snapshots is not None:
        check_store_and_exports(job.exports, job.snapshots)
    return job


def check_store_and_exports(exports: Location, snapshots: Location) -> None:
    """The store must be neither the exports folder, nor inside it, nor around it.

    Otherwise a run would write into its own inputs (and read its snapshots back as
    exports the next night). Symbolic links are resolved before comparing; on S3, the
    same bucket with one prefix inside the other overlaps.
    """
    if exports.overlaps(snapshots):
        raise InvalidUsageError(
            f"the snapshot store {snapshots} and the exports folder {exports} overlap",
            "keep the snapshot store outside the exports folder, and the exports outside it",
        )
