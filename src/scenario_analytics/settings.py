"""Job files: TOML, validated by pydantic, with messages that name the bad key."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scenario_analytics.errors import InvalidUsageError

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


class EngineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_limit: str | None = Field(None, description="DuckDB memory limit, e.g. '4GB'")
    threads: int | None = Field(None, ge=1, description="DuckDB worker threads")
    temp_directory: Path | None = Field(None, description="where DuckDB spills to disk")

    _plain = field_validator("temp_directory", mode="before")(_plain_path)


class ExtraRequest(BaseModel):
    """One more request to precompute, with the API's parameters (dates absolute)."""

    model_config = ConfigDict(extra="forbid")

    user_ids: str | None = None
    user_emails: str | None = None
    group_ids: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    exclude_system_users: bool = False


class MaterializeConfig(BaseModel):
    """Which filtered summaries each snapshot precomputes, per scenario.

    The set is audiences x system_users x windows, plus `requests`. The unfiltered
    summary (all users, system users included, all time) is always precomputed.
    """

    model_config = ConfigDict(extra="forbid")

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


class JobConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exports: Path | None = None
    snapshots: Path | None = None
    max_reject_ratio: float = Field(0.01, ge=0, le=1)
    keep_snapshots: int | None = Field(
        None, ge=1, description="keep the newest N snapshots, prune older ones; unset keeps all"
    )
    engine: EngineConfig = EngineConfig()
    materialize: MaterializeConfig = MaterializeConfig()

    _plain = field_validator("exports", "snapshots", mode="before")(_plain_path)


def load_job(path: Path) -> JobConfig:
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
        job = JobConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidUsageError(
            f"job file {path} is invalid: {problems}", "fix the named keys"
        ) from exc
    base = path.parent
    updates: dict[str, object] = {}
    for key in ("exports", "snapshots"):
        value = getattr(job, key)
        if value is not None and not value.is_absolute():
            updates[key] = Path(os.path.normpath(base / value))
    if job.engine.temp_directory is not None and not job.engine.temp_directory.is_absolute():
        temp = Path(os.path.normpath(base / job.engine.temp_directory))
        updates["engine"] = job.engine.model_copy(update={"temp_directory": temp})
    job = job.model_copy(update=updates)
    if job.exports is not None and job.snapshots is not None:
        check_store_and_exports(job.exports, job.snapshots)
    return job


def check_store_and_exports(exports: Path, snapshots: Path) -> None:
    """The store must be neither the exports folder, nor inside it, nor around it.

    Otherwise a run would write into its own inputs (and read its snapshots back as
    exports the next night). Symbolic links are resolved before comparing.
    """
    real_exports, real_store = exports.resolve(), snapshots.resolve()
    if real_store.is_relative_to(real_exports) or real_exports.is_relative_to(real_store):
        raise InvalidUsageError(
            f"the snapshot store {snapshots} and the exports folder {exports} overlap",
            "keep the snapshot store outside the exports folder, and the exports outside it",
        )
