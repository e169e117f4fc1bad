"""Starting Spark the way the SQL files need it, or saying clearly why it cannot start."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from scenario_analytics.errors import InvalidUsageError
from scenario_analytics.settings import SparkSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# What the SQL files rely on, whatever the job file's conf says (docs/ENGINES.md):
# - every timestamp is UTC (as DuckDB's session in engine/database.py);
# - decimal arithmetic keeps every digit: with precision loss allowed, Spark would round
#   a product or quotient to fit 38 digits, where DuckDB errors;
# - ANSI mode: an overflow or a bad cast outside TRY_CAST is an error, as in DuckDB.
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.decimalOperations.allowPrecisionLoss": "false",
    "spark.sql.ansi.enabled": "true",
}
# Set when this process starts Spark (a session that exists keeps its own): stderr is the
# job's log, and Spark's progress bar and its own log must not reach it.
START_CONF = {"spark.ui.showConsoleProgress": "false"}
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
# Defaults a job file may change: a local session stays small and quiet.
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
}
INSTALL_HINT = (
    "install the spark extra (pip install 'scenario-analytics[spark]') and Java 17 or "
    "newer (java on PATH, or JAVA_HOME), or run with --engine duckdb"
)


def require_spark() -> None:
    """Raise a usage error (exit 2) naming what is missing for `--engine spark`."""
    try:
        import pyspark  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError as exc:
        raise InvalidUsageError(
            f"--engine spark needs pyspark and sqlglot, which are not installed ({exc.name})",
            INSTALL_HINT,
        ) from None
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))) and not (
        shutil.which("java")
    ):
        raise InvalidUsageError("--engine spark needs Java, which is not found", INSTALL_HINT)


def workers_python(settings: SparkSettings) -> str:
    """The Python that Spark's executors start their workers with: tasks parse export
    files with this package, so by default this very Python (the same path on every
    machine of the cluster: one image, or the same install). The job file's
    `spark.pyspark.python` (`[engine.spark.conf]`) or the `PYSPARK_PYTHON` variable
    overrides it; PySpark sends it with every task (else workers run `python3` from
    their PATH, which rarely has the package)."""
    return (
        settings.conf.get("spark.pyspark.python")
        or os.environ.get("PYSPARK_PYTHON")
        or sys.executable
    )


def log_file() -> Path:
    """Where the Spark JVM this process starts writes its output and its own log."""
    return Path(tempfile.gettempdir()) / f"scenario-analytics-spark-{os.getpid()}.log"


def open_session(settings: SparkSettings) -> SparkSession:
    """A Spark session on `settings.master` (or the one spark-submit gave), with the
    conf the SQL files need on top of the job file's.

    When this process starts Spark's JVM, the JVM's stderr is `log_file()`: stderr is
    the job's log (one JSON object a line with --log-format json), and the JVM writes
    there from its first line on, before any log setting of Spark's applies.
    """
    require_spark()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("scenario-analytics")
    if settings.master:
        builder = builder.master(settings.master)
    if SparkContext._active_spark_context is None:
        os.environ["PYSPARK_PYTHON"] = workers_python(settings)
    conf = {**DEFAULT_CONF, **settings.conf, **START_CONF, **REQUIRED_CONF}
    java_options = f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}"
    given = settings.conf.get("spark.driver.extraJavaOptions")
    conf["spark.driver.extraJavaOptions"] = f"{given} {java_options}" if given else java_options
    for key, value in conf.items():
        builder = builder.config(key, value)
    if SparkContext._active_spark_context is None and not os.environ.get("PYSPARK_GATEWAY_PORT"):
        with _stderr_to(log_file()):
            session = builder.getOrCreate()
    else:
        # A JVM that exists already (spark-submit started it and passed its gateway's port)
        # writes where its starter sent it: no log file of ours to name.
        session = builder.getOrCreate()
    for key, value in REQUIRED_CONF.items():
        # A session spark-submit made before us keeps its conf: set what the SQL needs.
        session.conf.set(key, value)
    session.sparkContext.setLogLevel("WARN")
    return session


@contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """File descriptor 2 is `path` meanwhile: a process started now keeps writing there."""
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(target, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)
