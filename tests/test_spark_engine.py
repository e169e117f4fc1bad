"""`--engine spark`: the same SQL files on Spark, and the same snapshots as DuckDB's.

The golden files (tests/test_golden.py) and the comparison with the reference model
(tests/test_properties.py) run on both engines too. Here: which files run where, each
rule of the compatibility layer on both engines, whole runs compared file for file, and
the errors of a machine without Spark. The Spark tests share one local Spark session
(helpers_summary.ENGINES): the first one starts it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from helpers_ops import snapshot_files
from helpers_spark import standalone_cluster
from helpers_summary import ENGINES, run_snapshot

from scenario_analytics.cli import main
from scenario_analytics.engine.engines import DUCKDB
from scenario_analytics.engine.spark import runner
from scenario_analytics.engine.spark.session import open_session
from scenario_analytics.engine.spark.translate import RULES, translate_files
from scenario_analytics.engine.sql_files import SqlFile, load_sql_files
from scenario_analytics.errors import AnalyticsError, ExitCode
from scenario_analytics.ingest.entities import SESSION_REASONS
from scenario_analytics.pipeline.backfill import BackfillOptions, backfill
from scenario_analytics.settings import JobSettings, SparkSettings

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
SAMPLE_AS_OF = date(2026, 11, 26)


# -- which files run where ----------------------------------------------------------------


def test_every_sql_file_runs_once_on_each_engine() -> None:
    """One set of SQL files: per-file ones run as files are parsed (on DuckDB, on both
    engines); every other one is translated for Spark, once; none is skipped."""
    files = load_sql_files()
    translated = translate_files(files)
    per_file = [f.name for f in files if f.per_file]
    assert per_file == ["0010_validate_sessions.sql", "0020_validate_entities.sql"]
    assert [t.name for t in translated] == [f.name for f in files if not f.per_file]
    for sparked in translated:
        made = {s.table for s in sparked.statements if s.table}
        assert made == set(sparked.source.creates), sparked.name
        assert sparked.statements, sparked.name
    # No second copy of any file for an engine: the folder holds the numbered files only.
    sql_dir = files[0].path.parent
    assert sorted(p.name for p in sql_dir.glob("*.sql")) == [f.name for f in files]
    assert not [p for p in sql_dir.iterdir() if p.is_dir() and p.name != "__pycache__"]


def test_every_rule_is_needed_by_some_file() -> None:
    used = set().union(*(t.rules for t in translate_files(load_sql_files())))
    assert used == {rule.name for rule in RULES}


def test_values_stay_bound_parameters() -> None:
    users = next(t for t in translate_files(load_sql_files()) if t.name == "0080_users.sql")
    (statement,) = users.statements
    assert statement.parameters == ("as_of_end",)
    assert ":as_of_end" in statement.sql and "2026" not in statement.sql


# -- each rule on both engines ------------------------------------------------------------

# Rule name -> DuckDB statements whose last makes table `result`; both engines must give
# the same rows (the digests' hash: the same shape, not the same values; below).
RULE_CASES: dict[str, list[str]] = {
    "macro": [
        "CREATE OR REPLACE MACRO rank_of(score) AS CASE WHEN score >= 90 THEN 'gold' "
        "WHEN score >= 50 THEN 'bronze' ELSE 'unranked' END",
        "CREATE OR REPLACE TABLE result AS SELECT s, rank_of(s + 1) AS r FROM "
        "(VALUES (89.5), (49), (10)) AS t(s)",
    ],
    "hugeint": [
        "CREATE OR REPLACE TABLE result AS SELECT "
        "CAST(9223372036854775807 AS HUGEINT) * 1000 + 5 AS beyond_bigint, "
        "CAST(12345678901234567890123 AS HUGEINT) - 1 AS big"
    ],
    "int_div": [
        "CREATE OR REPLACE TABLE result AS SELECT "
        "CAST(12345678901234567890123 AS HUGEINT) // 1000000 AS q, "
        "(2 * CAST(1234567 AS HUGEINT) + 3 * 1000) // (2 * 3 * 1000) AS rounded, "
        "(2000 * CAST(1 AS HUGEINT) + 3) // (2 * 3) AS tenths"
    ],
    "ubigint": ["CREATE OR REPLACE TABLE result AS SELECT CAST(0 AS UBIGINT) AS zero"],
    "list_length": [
        "CREATE OR REPLACE TABLE result AS SELECT len(['a', 'b', 'c']) AS three, "
        "len(CAST([] AS VARCHAR[])) AS none"
    ],
    "row_key": [
        "CREATE OR REPLACE TABLE result AS SELECT g, arg_max(v, (a, b)) AS last_v, "
        "arg_min(v, (a, b)) FILTER (WHERE v <> 'x') AS first_v FROM (VALUES "
        "(1, 1, 'x', 'z'), (1, 1, 'y', 'w'), (1, 2, 'a', 'v'), (2, 5, 'q', 'u')) "
        "AS t(g, a, b, v) GROUP BY g"
    ],
    "json": [
        "CREATE OR REPLACE TABLE result AS SELECT CAST(json_object("
        "'n', CAST(3 AS BIGINT), 'avg', CAST(62.5 AS DECIMAL(4, 1)), "
        "'zero', CAST(0 AS DECIMAL(4, 1)), 'big', CAST(123456789012345678.9 AS DECIMAL(30, 1)), "
        "'rank', 'gold', 'list', json_array(json_object('rank', 'silver', 'count', 2), "
        "json_object('rank', 'bronze', 'count', 0))) AS VARCHAR) AS body"
    ],
    "getvariable": [
        "SET VARIABLE as_of_end = TIMESTAMP '2026-11-26 23:59:59.999999'",
        "CREATE OR REPLACE TABLE result AS SELECT t FROM (VALUES "
        "(TIMESTAMP '2026-11-26 23:59:59.999999'), (TIMESTAMP '2026-11-27 00:00:00')) "
        "AS v(t) WHERE t <= getvariable('as_of_end')",
    ],
}


def _sql_file(statements: list[str]) -> SqlFile:
    text = "-- Phase: build\n" + "".join(f"{s};\n" for s in statements)
    return SqlFile(10, Path("0010_rule_case.sql"), "build", text)


def _duckdb_rows(statements: list[str]) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        for statement in statements:
            con.execute(statement)
        return sorted(con.execute("SELECT * FROM result").fetchall(), key=repr)
    finally:
        con.close()


def _spark_rows(statements: list[str]) -> list[tuple[Any, ...]]:
    spark = open_session(ENGINES["spark"].spark)
    (translated,) = translate_files([_sql_file(statements)])
    rows: list[tuple[Any, ...]] = []
    for statement in translated.statements:
        frame = spark.sql(statement.sql)
        if statement.table == "result":
            rows = [tuple(row) for row in frame.collect()]
    return sorted(rows, key=repr)


@pytest.mark.parametrize("rule", [r for r in RULE_CASES])
def test_rule_gives_the_same_rows_on_both_engines(rule: str) -> None:
    statements = RULE_CASES[rule]
    (translated,) = translate_files([_sql_file(statements)])
    assert rule in translated.rules
    assert _spark_rows(statements) == _duckdb_rows(statements)


def test_an_integer_division_beyond_64_bits_fails_on_spark_instead_of_wrapping() -> None:
    statements = [
        "CREATE OR REPLACE TABLE result AS SELECT CAST(12345678901234567890123 AS HUGEINT) // 7"
    ]
    assert _duckdb_rows(statements) == [(1763668414462081127160,)]
    with pytest.raises(Exception, match="integer division result beyond 64 bits"):
        _spark_rows(statements)


def test_hash_rule_gives_order_free_64_bit_digests_on_both_engines() -> None:
    """DuckDB's hash and Spark's xxhash64 differ in value (docs/ENGINES.md), but on both
    a digest is a 64-bit XOR of row hashes: the same rows in any order, the same digest;
    one value changed, another digest."""

    def digest(rows: str) -> list[str]:
        return [
            f"CREATE OR REPLACE TABLE result AS SELECT bit_xor(hash(a, b)) AS h "
            f"FROM (VALUES {rows}) AS t(a, b)"
        ]

    forward, backward = "('x', 1.5), ('y', 2.5)", "('y', 2.5), ('x', 1.5)"
    changed = "('x', 1.5), ('y', 2.6)"
    for rows_of in (_duckdb_rows, _spark_rows):
        ((h1,),), ((h2,),), ((h3,),) = (rows_of(digest(r)) for r in (forward, backward, changed))
        assert h1 == h2 != h3
        assert -(2**63) <= h1 < 2**64
    ((spark,),) = _spark_rows(digest(forward))
    ((local,),) = _duckdb_rows(digest(forward))
    assert spark != local  # the documented difference: digests are per engine


# -- whole runs, file for file ------------------------------------------------------------


# Manifest fields that differ between any two runs, or by engine (the digests).
VOLATILE = {"created_at", "duration_seconds", "data_digest"}


def _manifest(path: Path) -> dict[str, Any]:
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for key in VOLATILE:
        manifest.pop(key)
    for output in manifest["outputs"]:
        output.pop("partitions", None)  # content digests of day files: per engine
    return manifest


def assert_same_snapshot(duck: str | Path, spark: str | Path) -> None:
    """Byte-identical files (Parquet and JSON; every file of each snapshot, read through
    its store: the session partitions too), and the same manifest but for what no two
    runs share (times) and the per-engine digests."""
    left, right = snapshot_files(duck), snapshot_files(spark)
    assert any(name.startswith("sessions/") for name in left)  # the partitions are compared
    assert sorted(left) == sorted(right)
    for name, path in left.items():
        if name == "manifest.json":
            assert _manifest(path) == _manifest(right[name])
            continue
        if name.endswith(".parquet"):
            a, b = pq.read_table(path), pq.read_table(right[name])
            assert a.schema == b.schema, name
            assert a.to_pylist() == b.to_pylist(), name
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == hashlib.sha256(right[name].read_bytes()).hexdigest(), name


def _spark_job_file(folder: Path, master: str, **extra_conf: str) -> Path:
    """A job file naming the Spark engine on `master`, with the tests' conf for tiny data
    (helpers_summary.ENGINES) and `extra_conf`."""
    conf = {**ENGINES["spark"].spark.conf, **extra_conf}
    if not master.startswith("local"):
        # Executors of their own: the same quick JIT settings as the driver's.
        conf["spark.executor.extraJavaOptions"] = conf["spark.driver.extraJavaOptions"]
        conf["spark.executor.memory"] = "1g"
    lines = ["[engine]", 'name = "spark"', "[engine.spark]", f"master = {json.dumps(master)}",
             "[engine.spark.conf]"]  # fmt: skip
    lines += [f"{json.dumps(key)} = {json.dumps(value)}" for key, value in conf.items()]
    job = folder / "spark-job.toml"
    job.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return job


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample with rows of every reject reason added (`_bad_rows`), by the library on
    DuckDB and by the command, in a process of its own, on a standalone Spark cluster (a
    master and a worker, each its own JVM: helpers_spark) with paths relative to the
    working folder, as a user types them (an executor resolves a relative path from its
    own work folder: the job hands Spark absolute ones). With --log-format json, every
    line on stderr is one JSON object (Spark's own log stays off it,
    `engine/spark/log4j2.properties`). One Spark run for both: each costs ~20 s."""
    root = tmp_path_factory.mktemp("engines")
    exports = root / "exports"
    shutil.copytree(SAMPLE, exports)
    _bad_rows(exports)
    duck = run_snapshot(exports, root / "duckdb", SAMPLE_AS_OF, max_reject_ratio=0.05)
    with standalone_cluster(root / "cluster") as cluster:
        job = _spark_job_file(root, cluster.master)
        # docs/ENGINES.md's command ("On a cluster"); the job file adds the tests' conf.
        args = ["run", "--job", job.name, "--engine", "spark", "--spark-master", cluster.master,
                "--exports", "exports", "--snapshots", "spark", "--as-of", SAMPLE_AS_OF,
                "--max-reject-ratio", 0.05, "--log-format", "json"]  # fmt: skip
        env = {key: value for key, value in os.environ.items() if key != "PYSPARK_PYTHON"}
        done = subprocess.run(
            [sys.executable, "-m", "scenario_analytics", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=root,
            env={
                **env,
                "SCENARIO_ANALYTICS_SKIP_CHECK": "stale_exports",
                "SPARK_LOCAL_IP": "127.0.0.1",
            },  # fmt: skip
        )
        assert done.returncode == 0, done.stderr[-3000:]
        # The executors really ran the tasks: the worker started an executor for the job.
        assert list((cluster.logs / "work").glob("app-*/*/stderr")), "no executor ran"
    events = [json.loads(line) for line in done.stderr.splitlines()]  # each line is JSON
    assert any(e.get("message", "").startswith("engine spark: started in") for e in events)
    published = json.loads(done.stdout)
    assert published["path"] == "spark/snapshot_date=2026-11-26"  # relative, as given
    return {"duckdb": duck, "spark": root / published["path"]}


def test_sample_run_on_spark_equals_duckdb_file_for_file(sample_runs: dict[str, Path]) -> None:
    assert_same_snapshot(sample_runs["duckdb"], sample_runs["spark"])
    manifest = json.loads((sample_runs["spark"] / "manifest.json").read_text("utf-8"))
    assert manifest["counts"]["sessions_rejected"] > 0  # the sample has rejects: compared


def _bad_rows(folder: Path) -> None:
    """Session rows of every reject reason (and good ones), as JSON Lines and CSV."""
    good = {
        "id": "ok",
        "user": {"id": "u1", "email": "u1@acme.com"},
        "scenario": {"id": "sc1", "slug": "one", "name": "One"},
        "score": 80,
        "duration_seconds": 60,
        "is_valid_attempt": True,
        "created_at": "2026-11-20T10:00:00Z",
    }
    bad: list[Any] = [
        {**good, "id": None},
        {**good, "id": "a", "user": {"email": "x@acme.com"}},
        {**good, "id": "b", "scenario": {"slug": "s"}},
        {**good, "id": "c", "created_at": "yesterday"},
        {**good, "id": "d", "score": 100.5},
        {**good, "id": "e", "duration_seconds": -1},
        {**good, "id": "f", "is_valid_attempt": "maybe"},
        {**good, "id": "g", "score": None},
        "[1, 2, 3]",
    ]
    sessions = folder / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({**good, "id": f"ok{n}"}) for n in range(3)]
    lines += [b if isinstance(b, str) else json.dumps(b) for b in bad]
    lines.insert(4, "{not json")
    (sessions / "bad-1.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (sessions / "bad-2.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["id", "user_id", "scenario_id", "score", "duration_seconds", "is_valid_attempt",
             "created_at"]
        )  # fmt: skip
        writer.writerow(["ok9", "u2", "sc1", "91.25", "", "true", "2026-11-21 09:00:00+02"])
        writer.writerow(["h", "u2", "sc1", "1_000", "", "true", "2026-11-21T09:00Z"])
        writer.writerow(["i", "u2", "", "50", "", "false", "2026-11-21T09:00Z"])
        writer.writerow(["ok", "u3", "sc1", "70", "30", "1", "2026-11-22T09:00:00.5Z"])
    (folder / "members.csv").write_text("id,email\nu1,u1@acme.com\n,nobody@acme.com\n")


def test_rejects_and_positions_are_equal_on_both_engines(sample_runs: dict[str, Path]) -> None:
    """Every reject reason, with its file and position, the same on both engines (the
    rejects file is compared byte for byte above)."""
    snapshots = sample_runs
    assert_same_snapshot(snapshots["duckdb"], snapshots["spark"])
    rejects = pq.read_table(snapshots["spark"] / "rejects.parquet").to_pylist()
    bad = [r for r in rejects if r["source_file"].startswith("sessions/bad-")]
    assert {r["reason"] for r in bad} == set(SESSION_REASONS)
    assert {r["reason"] for r in rejects if r["entity"] == "sessions"} == set(SESSION_REASONS)
    assert {r["reason"] for r in rejects if r["entity"] == "members"} == {"missing_id"}


def test_backfill_on_spark_equals_duckdb(tmp_path: Path) -> None:
    """Days from one load: the as-of tables are made, dropped and made again day after
    day (two days show it; each more costs Spark ~7 s)."""
    stores = {}
    for engine in ENGINES:
        options = BackfillOptions(
            exports=SAMPLE,
            snapshots=tmp_path / engine,
            start=date(2026, 11, 25),
            end=date(2026, 11, 26),
            max_reject_ratio=0.05,
            engine=ENGINES[engine],
            skip_checks=frozenset({"stale_exports"}),
        )
        result = backfill(options)
        stores[engine] = {d.snapshot_date: d.path for d in result.days}
    assert sorted(stores["spark"]) == [date(2026, 11, d) for d in (25, 26)]
    for day, path in stores["duckdb"].items():
        assert_same_snapshot(path, stores["spark"][day])
    _sessions_recipe_reads_every_snapshot(tmp_path / "spark")


def _sessions_recipe_reads_every_snapshot(store: Path) -> None:
    """docs/DATA_DICTIONARY.md's Spark recipe for the sessions across snapshots, run as
    written: each snapshot's rows are its session files' rows, with its date."""
    text = (ROOT / "docs" / "DATA_DICTIONARY.md").read_text("utf-8")
    block = text.split("**Spark, across snapshots**", 1)[1].split("```python\n", 1)[1]
    namespace: dict[str, Any] = {}
    exec(block.split("```", 1)[0], namespace)  # noqa: S102 (the documented code itself)
    spark = open_session(ENGINES["spark"].spark)
    frame = namespace["sessions_by_snapshot"](spark, str(store))
    counts = {str(d): n for d, n in frame.groupBy("snapshot_date").count().collect()}
    for day in ("2026-11-25", "2026-11-26"):
        files = snapshot_files(store / f"snapshot_date={day}")
        rows = sum(pq.ParquetFile(p).metadata.num_rows
                   for rel, p in files.items() if rel.startswith("sessions/"))  # fmt: skip
        assert counts[day] == rows > 0
    (field,) = [f for f in frame.schema.fields if f.name == "created_date"]
    assert field.dataType.simpleString() == "date"
    assert frame.schema["score"].dataType.simpleString() == "decimal(9,4)"


# -- settings and errors ------------------------------------------------------------------


def test_job_file_names_the_engine_and_the_command_line_overrides_it(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text(
        '[engine]\nname = "spark"\nmemory_limit = "2GB"\n'
        '[engine.spark]\nmaster = "local[2]"\n'
        'conf = { "spark.executor.memory" = "2g", "spark.sql.shuffle.partitions" = 16 }\n'
    )
    settings = JobSettings.resolve(job)
    assert settings.engine.name == "spark"
    assert settings.engine.memory_limit == "2GB"
    assert settings.engine.spark == SparkSettings(
        master="local[2]",
        conf={"spark.executor.memory": "2g", "spark.sql.shuffle.partitions": "16"},
    )
    overridden = JobSettings.resolve(job, engine_name="duckdb", spark_master="yarn")
    assert overridden.engine.name == "duckdb"
    assert overridden.engine.spark.master == "yarn"
    assert overridden.engine.spark.conf == settings.engine.spark.conf


def test_an_unknown_engine_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["run", "--exports", str(SAMPLE), "--snapshots", str(tmp_path), "--engine", "x"]
    )
    assert result.exit_code == ExitCode.USAGE
    assert "'x' is not one of 'duckdb', 'spark'" in result.output


def _run_on_spark(snapshots: Path) -> Result:
    args = ["run", "--exports", SAMPLE, "--snapshots", snapshots, "--as-of", "2026-11-26"]
    return CliRunner().invoke(main, [*map(str, args), "--engine", "spark"])


@pytest.mark.parametrize("missing", ["pyspark", "sqlglot"])
def test_spark_without_the_extra_is_a_clear_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if not installed
    result = _run_on_spark(tmp_path / "s")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"--engine spark needs pyspark and sqlglot, which are not installed ({missing})" in (
        result.stderr
    )
    assert "pip install 'scenario-analytics[spark]'" in result.stderr
    assert "Java 17" in result.stderr
    assert not (tmp_path / "s").exists()  # refused before the store is touched


def test_spark_without_java_is_a_clear_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    result = _run_on_spark(tmp_path / "s")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "--engine spark needs Java, which is not found" in result.stderr


def test_executors_without_the_package_are_one_clear_error(tmp_path: Path) -> None:
    """Executors whose Python lacks the package (here: `spark.pyspark.python` names a
    bare virtual environment's) fail the probe task before any file is staged: exit 1,
    one `error:` line naming the setting to fix, no traceback, nothing published."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = bare / "bin" / "python"
    job = _spark_job_file(tmp_path, "local[1]", **{"spark.pyspark.python": str(python)})
    done = subprocess.run(
        [sys.executable, "-m", "scenario_analytics", "run", "--job", str(job), "--exports",
         str(SAMPLE), "--snapshots", str(tmp_path / "store"), "--as-of", "2026-11-26",
         "--max-reject-ratio", "0.05", "--skip-check", "stale_exports"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    (error,) = [line for line in done.stderr.splitlines() if "error:" in line]
    assert error.startswith(
        "scenario-analytics: error: Spark's executors cannot run this package: "
        "ModuleNotFoundError: No module named 'scenario_analytics' — the executors run "
        f"their Python workers with {python}: "
    ), done.stderr[-3000:]
    assert "spark.pyspark.python ([engine.spark.conf] in the job file)" in error
    assert "Traceback" not in done.stderr and "Py4J" not in done.stderr
    assert not list((tmp_path / "store").glob("snapshot_date=*"))


def test_a_task_error_is_one_line_of_the_python_error_inside() -> None:
    java = (
        "An error occurred while calling o42.collectAndServe.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in "
        "stage 0.0 failed 4 times\norg.apache.spark.api.python.PythonException: Traceback "
        '(most recent call last):\n  File "worker.py", line 1\nModuleNotFoundError: No '
        "module named 'scenario_analytics'\n\tat org.apache.spark.api.python.X(X.scala:1)"
    )
    assert runner.task_error(RuntimeError(java)) == (
        "ModuleNotFoundError: No module named 'scenario_analytics'"
    )
    missing = 'java.io.IOException: Cannot run program "/nope/python": error=2, No such file'
    assert runner.task_error(RuntimeError("Job aborted\n" + missing)) == (
        'Cannot run program "/nope/python": error=2, No such file'
    )
    assert runner.task_error(RuntimeError("plain failure\nmore")) == "plain failure"


def test_exact_decimals_hold_on_spark() -> None:
    """No precision loss: products and sums of DECIMAL(38, s) keep every digit."""
    spark = open_session(ENGINES["spark"].spark)
    (product, total) = spark.sql(
        "SELECT CAST(12345678901234567890.123456 AS DECIMAL(38, 6)) * 1000000, "
        "sum(x) FROM VALUES (CAST(0.1 AS DECIMAL(9, 4))), (CAST(0.2 AS DECIMAL(9, 4))) AS t(x)"
    ).collect()[0]
    assert product == Decimal("12345678901234567890123456.000000")
    assert total == Decimal("0.3000")
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


# -- staging in tasks, without Spark ------------------------------------------------------


@pytest.fixture
def duckdb_in_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The DuckDB engine staging each file as a Spark task does (`staging.stage_file`, one
    connection a file), one after another: the task path, fast."""
    monkeypatch.setattr(DUCKDB, "stages_in_tasks", True)


def test_staging_in_tasks_gives_the_same_snapshot_and_ledger(
    tmp_path: Path, duckdb_in_tasks: None
) -> None:
    tasked = run_snapshot(SAMPLE, tmp_path / "tasks", SAMPLE_AS_OF, max_reject_ratio=0.05)
    catalog = json.loads((tmp_path / "tasks" / ".ledger" / "catalog.json").read_text("utf-8"))
    DUCKDB.stages_in_tasks = False  # the fixture undoes this too
    plain = run_snapshot(SAMPLE, tmp_path / "plain", SAMPLE_AS_OF, max_reject_ratio=0.05)
    assert_same_snapshot(plain, tasked)
    again = json.loads((tmp_path / "plain" / ".ledger" / "catalog.json").read_text("utf-8"))

    def parts(files: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        # Which parts with how many rows (a part's own sha256 depends on its row order).
        return [(f["rel_path"], f["sha256"], [(p["table"], p["rows"]) for p in f["parts"]])
                for f in files]  # fmt: skip

    assert parts(catalog["files"]) == parts(again["files"])


def test_an_unreadable_file_fails_a_task_as_it_fails_the_run(
    tmp_path: Path, duckdb_in_tasks: None
) -> None:
    exports = tmp_path / "exports"
    (exports / "sessions").mkdir(parents=True)
    (exports / "sessions" / "a.jsonl").write_text(json.dumps({"id": "x"}) + "\n")
    (exports / "sessions" / "b.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00truncated")
    with pytest.raises(AnalyticsError) as caught:
        run_snapshot(exports, tmp_path / "s", SAMPLE_AS_OF, max_reject_ratio=1)
    assert caught.value.exit_code == ExitCode.FAILURE
    assert "cannot read export file sessions/b.jsonl.gz" in caught.value.message
    assert caught.value.hint == "fix or remove the file and run again"


def test_a_big_driver_table_is_never_sent_to_spark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "MAX_DRIVER_ROWS", 3)  # the sample has 7 export files
    with pytest.raises(AnalyticsError, match="table export_files has 7 rows: too many to send"):
        run_snapshot(SAMPLE, tmp_path / "s", SAMPLE_AS_OF, max_reject_ratio=0.05, engine="spark")


def test_a_spark_error_the_engine_did_not_name_is_one_line_too() -> None:
    """An error of pyspark's or Py4J's that reaches the command (not one the engine turned
    into the job's own) ends as one `error:` line and exit 1, its traceback only with
    --debug."""
    import click

    from scenario_analytics.cli.output import handle_errors

    class Py4JJavaError(Exception):  # as py4j.protocol names it
        pass

    Py4JJavaError.__module__ = "py4j.protocol"

    @click.command()
    @click.option("--debug", is_flag=True)
    @handle_errors
    def failing(debug: bool) -> None:
        raise Py4JJavaError("An error occurred while calling o31.sql.\n: java.lang.Boom")

    result = CliRunner().invoke(failing, [])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "scenario-analytics: error: Spark failed: An error occurred while calling o31.sql. — "
        "Spark's own log has the rest (the run's \"engine spark: started\" line names it); "
        "--debug shows the traceback"
    ]
