"""Where settings come from: command line > environment (SCENARIO_ANALYTICS_<OPTION>) >
job file > default, for every command; `--job` wherever a path is taken; `--debug`
before or after the command name; `--version`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from scenario_analytics import __version__
from scenario_analytics.cli import main
from scenario_analytics.engine.sql_files import load_sql_files
from scenario_analytics.errors import ExitCode
from scenario_analytics.publish.fingerprint import sql_version

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
AS_OF = "2026-11-26"


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env or {})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("config") / "store"
    result = invoke("run", "--exports", SAMPLE, "--snapshots", root, "--as-of", AS_OF)
    assert result.exit_code == 0, result.stderr
    yield root


def job_file(tmp_path: Path, **settings: object) -> Path:
    lines = []
    for key, value in settings.items():
        lines.append(f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"')
    path = tmp_path / "job.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- every option has its environment variable ----------------------------------------------


def _commands() -> list[tuple[str, click.Command]]:
    """Every command, with the subcommands of groups (`snapshots pin`)."""
    found: list[tuple[str, click.Command]] = []

    def walk(prefix: str, group: click.Group) -> None:
        for name, command in group.commands.items():
            found.append((prefix + name, command))
            if isinstance(command, click.Group):
                walk(f"{prefix}{name} ", command)

    assert isinstance(main, click.Group)
    walk("", main)
    return sorted(found, key=lambda item: item[0])


def test_subcommands_are_walked() -> None:
    names = [name for name, _command in _commands()]
    assert {"snapshots", "snapshots pin", "snapshots verify", "snapshots usage"} <= set(names)


# Destructive confirmations are typed each time: never taken from the environment
# (deleting a snapshot; taking the store's lease from whichever run holds it).
NOT_FROM_THE_ENVIRONMENT = {
    ("snapshots delete", "--force"),
    ("snapshots unlock", "--force"),
    ("serve", "--force-no-auth"),  # no environment turns keys off on a public address
}


@pytest.mark.parametrize(("name", "command"), _commands())
def test_every_option_has_its_environment_variable(name: str, command: click.Command) -> None:
    options = [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]
    assert options, name
    for param in options:
        long_name = next(o for o in param.opts if o.startswith("--"))
        if (name, long_name) in NOT_FROM_THE_ENVIRONMENT:
            assert param.envvar is None, (name, long_name)
            continue
        expected = "SCENARIO_ANALYTICS_" + long_name[2:].replace("-", "_").upper()
        assert param.envvar == expected, (name, long_name)
        assert param.show_envvar, (name, long_name)


@pytest.mark.parametrize("name", ["run", "backfill", "validate", "query", "snapshots"])
def test_job_is_accepted_by_every_command_that_takes_a_path(name: str) -> None:
    group = main
    assert isinstance(group, click.Group)
    assert "--job" in [o for p in group.commands[name].params for o in p.opts]


# -- precedence: command line > environment > job file > default ----------------------------


def test_snapshots_path_precedence(tmp_path: Path) -> None:
    """Each level names a different (missing) store; the error names the one used."""
    job = job_file(tmp_path, snapshots=str(tmp_path / "from-job"))
    env = {"SCENARIO_ANALYTICS_SNAPSHOTS": str(tmp_path / "from-env")}
    cases = [
        (["--snapshots", tmp_path / "from-cli", "--job", job], env, "from-cli"),
        (["--job", job], env, "from-env"),
        (["--job", job], {}, "from-job"),
    ]
    for args, environment, expected in cases:
        result = invoke("snapshots", *args, env=environment)
        assert result.exit_code == ExitCode.NOT_FOUND, result.output
        assert f"no snapshot store at {tmp_path / expected}" in result.stderr
    result = invoke("snapshots")
    assert result.exit_code == ExitCode.USAGE
    assert "--snapshots is required" in result.stderr
    assert "SCENARIO_ANALYTICS_SNAPSHOTS" in result.stderr


def test_job_file_from_the_environment(tmp_path: Path) -> None:
    job = job_file(tmp_path, snapshots=str(tmp_path / "from-job"))
    result = invoke("snapshots", env={"SCENARIO_ANALYTICS_JOB": str(job)})
    assert result.exit_code == ExitCode.NOT_FOUND
    assert f"no snapshot store at {tmp_path / 'from-job'}" in result.stderr


def test_reject_ratio_precedence_in_validate(tmp_path: Path) -> None:
    """The sample has 30 of 3,057 session rows rejected (0.98%)."""
    strict = job_file(tmp_path, exports=str(SAMPLE), max_reject_ratio=0.0)
    assert invoke("validate", "--job", strict).exit_code == ExitCode.DATA_QUALITY
    lenient_env = {"SCENARIO_ANALYTICS_MAX_REJECT_RATIO": "0.5"}
    assert invoke("validate", "--job", strict, env=lenient_env).exit_code == ExitCode.OK
    result = invoke("validate", "--job", strict, "--max-reject-ratio", "0.001", env=lenient_env)
    assert result.exit_code == ExitCode.DATA_QUALITY
    # The default (0.01) when neither says: the sample passes.
    assert invoke("validate", "--exports", SAMPLE).exit_code == ExitCode.OK


def test_run_takes_everything_from_the_environment(tmp_path: Path) -> None:
    env = {
        "SCENARIO_ANALYTICS_EXPORTS": str(SAMPLE),
        "SCENARIO_ANALYTICS_SNAPSHOTS": str(tmp_path / "store"),
        "SCENARIO_ANALYTICS_AS_OF": AS_OF,
        "SCENARIO_ANALYTICS_LOG_FORMAT": "json",
    }
    result = invoke("run", env=env)
    assert result.exit_code == 0, result.stderr
    # The log format came from the environment: stderr and stdout are JSON.
    published = json.loads(result.stdout)
    assert published["path"] == str(tmp_path / "store" / f"snapshot_date={AS_OF}")
    assert result.stderr.startswith('{"time":')


def test_query_filters_from_the_environment(store: Path) -> None:
    args = ["procurement-discovery", "--start-date", "2026-11-01", "--exclude-system-users"]
    by_options = invoke("query", "--snapshots", store, *args)
    env = {
        "SCENARIO_ANALYTICS_START_DATE": "2026-11-01",
        "SCENARIO_ANALYTICS_EXCLUDE_SYSTEM_USERS": "true",
        "SCENARIO_ANALYTICS_SNAPSHOTS": str(store),
    }
    from_env = invoke("query", "procurement-discovery", env=env)
    unfiltered = invoke("query", "--snapshots", store, "procurement-discovery")
    assert by_options.exit_code == from_env.exit_code == 0
    assert from_env.stdout == by_options.stdout != unfiltered.stdout


def test_query_with_a_job_file(store: Path, tmp_path: Path) -> None:
    job = job_file(tmp_path, snapshots=str(store))
    by_job = invoke("query", "--job", job, "procurement-discovery")
    by_option = invoke("query", "--snapshots", store, "procurement-discovery")
    assert by_job.exit_code == 0, by_job.stderr
    assert by_job.stdout == by_option.stdout


def test_validate_with_a_job_file(tmp_path: Path) -> None:
    job = job_file(tmp_path, exports=str(SAMPLE))
    result = invoke("validate", "--job", job, "--json")
    assert result.exit_code == 0, result.stderr
    assert '"sessions/part-0001.jsonl"' in result.stdout


def test_an_invalid_environment_value_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(
        "validate", "--exports", SAMPLE, env={"SCENARIO_ANALYTICS_MAX_REJECT_RATIO": "lots"}
    )
    assert result.exit_code == ExitCode.USAGE
    assert "lots" in result.stderr


# -- --debug and --version --------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after", "environment"])
def test_debug_before_or_after_the_command(tmp_path: Path, where: str) -> None:
    missing = tmp_path / "missing"
    args: list[str | Path] = ["validate", "--exports", missing]
    env: dict[str, str] = {}
    if where == "before":
        args = ["--debug", *args]
    elif where == "after":
        args = [*args, "--debug"]
    else:
        env = {"SCENARIO_ANALYTICS_DEBUG": "1"}
    result = invoke(*args, env=env)
    assert result.exit_code == ExitCode.FAILURE
    assert "Traceback (most recent call last)" in result.stderr
    assert f"error: exports folder {missing} does not exist" in result.stderr
    plain = invoke("validate", "--exports", missing)
    assert "Traceback" not in plain.stderr


def test_version_names_the_package_and_the_sql() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    digest = sql_version((f.name, f.sha256) for f in load_sql_files())
    assert result.stdout.startswith(f"scenario-analytics {__version__}, SQL {digest} (14 files")


def test_the_library_does_not_import_click() -> None:
    """A scheduler or the API service imports the package without the command line."""
    code = (
        "import sys, scenario_analytics as sa; "
        "assert 'click' not in sys.modules, 'click imported'; "
        "print(len(sa.__all__))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 20


def test_every_public_name_is_documented() -> None:
    import scenario_analytics

    for name in scenario_analytics.__all__:
        if name == "__version__":
            continue
        value = getattr(scenario_analytics, name)
        doc = getattr(value, "__doc__", None) or ""
        assert doc and not doc.startswith(f"{name}("), name  # not dataclass's own
