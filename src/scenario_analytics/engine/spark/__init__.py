"""Running the SQL files of `sql/` on Apache Spark (`--engine spark`; docs/ENGINES.md).

Optional: needs the `spark` extra (pyspark, sqlglot) and Java. Nothing here is imported
unless Spark is asked for, so the DuckDB engine runs without them.
"""
