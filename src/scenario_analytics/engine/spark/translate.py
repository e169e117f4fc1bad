"""The SQL files of `sql/`, written for DuckDB, as Spark SQL: sqlglot plus our own rules.

sqlglot reads each statement in DuckDB's dialect and writes it in Spark's. Most of the
files' SQL (window functions, FILTER aggregates, `arg_max`, `//`, `unnest`, list indexes,
`E'...'` strings, `$name` parameters) it carries over unchanged in meaning. A few
constructs it writes in a form Spark rejects or reads differently; each is a `Rule`
below, applied to the parsed statement before Spark's SQL is written, and each is tested
on both engines (`tests/test_spark_translate.py`). `docs/ENGINES.md` lists them.

Statements change form too: a `CREATE [OR REPLACE] TABLE t AS q` becomes the query q,
whose rows the runner writes as Parquet and reads back as the temporary view t (Spark's
session has no writable default catalog for tables; `runner.py`), a view a temporary
view, `SET VARIABLE` a declared session variable, and a `CREATE MACRO` is not sent at
all: its calls are replaced by its body wherever later statements use it.

Values stay bound parameters: `$as_of_end` becomes the marker `:as_of_end`, which
`SparkSession.sql(..., args=...)` binds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from scenario_analytics.engine.sql_files import SqlFile
from scenario_analytics.errors import AnalyticsError

SOURCE = "duckdb"
TARGET = "spark"


@dataclass
class Context:
    """What one translation of the SQL files carries from statement to statement."""

    macros: dict[str, tuple[list[str], exp.Expression]] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """One rewrite of a DuckDB construct that sqlglot alone does not carry to Spark."""

    name: str
    duckdb: str  # the construct, as written in sql/
    spark: str  # what Spark runs instead
    why: str
    rewrite: Callable[[exp.Expression, Context], exp.Expression]


def _function_name(node: exp.Expression) -> str:
    return node.name.lower() if isinstance(node, exp.Anonymous) else ""


def _inline_macro(node: exp.Expression, ctx: Context) -> exp.Expression:
    name = _function_name(node)
    if name not in ctx.macros:
        return node
    params, body = ctx.macros[name]
    args = node.expressions
    if len(args) != len(params):
        raise AnalyticsError(f"macro {name} takes {len(params)} arguments, given {len(args)}")
    values = dict(zip(params, args, strict=True))

    def substitute(inner: exp.Expression) -> exp.Expression:
        if isinstance(inner, exp.Column) and not inner.table and inner.name.lower() in values:
            return exp.paren(values[inner.name.lower()].copy(), copy=False)
        return inner

    # The body's own calls of earlier macros are inlined when the body is translated.
    return body.copy().transform(substitute)


def _hugeint(node: exp.Expression, ctx: Context) -> exp.Expression:
    if isinstance(node, exp.DataType) and node.this in (exp.DataType.Type.INT128,):
        return exp.DataType.build("DECIMAL(38, 0)")
    return node


# Below 2^63 (9.22e18) by a margin far wider than a double's error at that size.
_DIV_LIMIT = "9.2e18"


def _int_div(node: exp.Expression, ctx: Context) -> exp.Expression:
    if not isinstance(node, exp.IntDiv):
        return node
    quotient = exp.IntDiv(this=node.this.copy(), expression=node.expression.copy())
    estimate = exp.Div(
        this=exp.Cast(this=node.this.copy(), to=exp.DataType.build("DOUBLE")),
        expression=exp.Cast(this=node.expression.copy(), to=exp.DataType.build("DOUBLE")),
    )
    fits = exp.LT(this=exp.Abs(this=estimate), expression=exp.Literal.number(_DIV_LIMIT))
    error = exp.Anonymous(
        this="raise_error",
        expressions=[exp.Literal.string("integer division result beyond 64 bits")],
    )
    return exp.Case(ifs=[exp.If(this=fits, true=quotient)], default=error)


def _ubigint(node: exp.Expression, ctx: Context) -> exp.Expression:
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.UBIGINT:
        return exp.DataType.build("BIGINT")
    return node


def _list_length(node: exp.Expression, ctx: Context) -> exp.Expression:
    if isinstance(node, exp.Length):
        return exp.ArraySize(this=node.this)
    return node


def _row_key(node: exp.Expression, ctx: Context) -> exp.Expression:
    if isinstance(node, exp.Tuple) and isinstance(node.parent, (exp.ArgMax, exp.ArgMin)):
        return exp.Struct(expressions=list(node.expressions))
    return node


def _hash(node: exp.Expression, ctx: Context) -> exp.Expression:
    if _function_name(node) == "hash":
        return exp.Anonymous(this="xxhash64", expressions=list(node.expressions))
    return node


def _json(node: exp.Expression, ctx: Context) -> exp.Expression:
    if not isinstance(node, (exp.JSONObject, exp.JSONArray)):
        return node
    built = _json_value(node)
    return exp.Anonymous(this="to_json", expressions=[built])


def _json_value(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.JSONObject):
        args: list[exp.Expression] = []
        for pair in node.expressions:
            if not isinstance(pair, exp.JSONKeyValue):
                raise AnalyticsError(f"json_object argument {pair.sql(SOURCE)} is not key, value")
            args += [pair.this, _json_value(pair.expression)]
        return exp.Anonymous(this="named_struct", expressions=args)
    if isinstance(node, exp.JSONArray):
        return exp.Array(expressions=[_json_value(e) for e in node.expressions])
    return node


def _getvariable(node: exp.Expression, ctx: Context) -> exp.Expression:
    if _function_name(node) == "getvariable":
        (name,) = node.expressions
        if not (isinstance(name, exp.Literal) and name.is_string):
            raise AnalyticsError("getvariable() takes the variable's name as a string literal")
        return exp.column(name.this, table="session", db="system")
    return node


RULES: tuple[Rule, ...] = (
    Rule(
        "macro",
        "CREATE MACRO f(x) AS expr; ... f(a) ...",
        "the macro's body, with a in place of x, where f(a) was",
        "Spark has no macros; temporary SQL functions would need typed parameters",
        _inline_macro,
    ),
    Rule(
        "hugeint",
        "HUGEINT",
        "DECIMAL(38, 0)",
        "sqlglot writes INT128, which Spark does not know",
        _hugeint,
    ),
    Rule(
        "int_div",
        "a // b",
        "CASE WHEN abs(CAST(a AS DOUBLE) / CAST(b AS DOUBLE)) < 9.2e18 THEN a DIV b "
        "ELSE raise_error(...) END",
        "Spark's DIV of two decimals returns a BIGINT and wraps around silently past 2^63; "
        "the double only decides whether the exact DIV may run (an error otherwise), it "
        "never reaches a figure",
        _int_div,
    ),
    Rule(
        "ubigint",
        "UBIGINT",
        "BIGINT",
        "Spark has no unsigned integers; only the digests' zero values use it, and Spark's "
        "digests are signed 64-bit hashes",
        _ubigint,
    ),
    Rule(
        "list_length",
        "len(list)",
        "size(list)",
        "sqlglot writes LENGTH, which in Spark is the length of a string; sql/ applies len "
        "to lists only",
        _list_length,
    ),
    Rule(
        "row_key",
        "arg_max(v, (a, b))",
        "max_by(v, struct(a, b))",
        "a row value (a, b) is no value in Spark; a struct compares the same way, field by field",
        _row_key,
    ),
    Rule(
        "hash",
        "hash(a, b, ...)",
        "xxhash64(a, b, ...)",
        "no function computes DuckDB's hash in Spark: the digests (sql/0070) are 64-bit "
        "hashes of the same columns, but their values differ by engine",
        _hash,
    ),
    Rule(
        "json",
        "json_object('k', v, ...), json_array(...)",
        "to_json(named_struct('k', v, ...)), array(...)",
        "sqlglot writes JSON_OBJECT('k': v), which Spark does not know; to_json writes "
        "the same text for the summaries' numbers, strings and lists",
        _json,
    ),
    Rule(
        "getvariable",
        "getvariable('x')",
        "system.session.x",
        "Spark reads a session variable by name",
        _getvariable,
    ),
)


@dataclass(frozen=True)
class SparkStatement:
    """A statement for Spark; with `table`, `sql` is a query whose rows become that table."""

    sql: str
    parameters: tuple[str, ...]  # the named markers (:name) it binds
    table: str | None = None
    # The query's ORDER BY, in DuckDB's dialect: the order the job's DuckDB must hold the
    # table's rows in (and lay them out: the snapshot's files are then the same bytes).
    order_by: str | None = None


@dataclass(frozen=True)
class SparkFile:
    """One SQL file as Spark runs it: its statements, and the tables it makes."""

    source: SqlFile
    statements: tuple[SparkStatement, ...]
    rules: frozenset[str]  # the rules its statements needed
    reads: frozenset[str]  # the tables it reads that it does not make itself
    makes: frozenset[str]  # the tables and views it makes

    @property
    def name(self) -> str:
        return self.source.name


def translate_files(files: list[SqlFile]) -> list[SparkFile]:
    """Translate the files in order (a macro defined by one is used by later ones).

    Per-file files (`-- Scope: per-file`) are not translated: they run as export files
    are parsed, on DuckDB, and their output is the ledger's parts."""
    ctx = Context()
    return [_translate_file(sql_file, ctx) for sql_file in files if not sql_file.per_file]


def translate_query(sql: str) -> tuple[str, frozenset[str]]:
    """One query (no macros, no parameters) for Spark, and the tables it reads."""
    try:
        parsed = sqlglot.parse_one(sql, read=SOURCE)
    except sqlglot.errors.ParseError as exc:
        raise AnalyticsError(f"sqlglot cannot read a query: {exc}") from exc
    if not (isinstance(parsed, exp.Query) and isinstance(parsed, exp.Expression)):
        raise AnalyticsError("only a query can be translated on its own")
    tree = _apply_rules(parsed, Context(), set())
    return tree.sql(TARGET, comments=False), frozenset(_tables_read(tree))


def _translate_file(sql_file: SqlFile, ctx: Context) -> SparkFile:
    statements: list[SparkStatement] = []
    used: set[str] = set()
    reads: set[str] = set()
    makes: set[str] = set()
    for text in sql_file.statements():
        try:
            parsed = sqlglot.parse_one(text, read=SOURCE)
        except sqlglot.errors.ParseError as exc:
            raise AnalyticsError(
                f"{sql_file.name}: sqlglot cannot read a statement: {exc}"
            ) from exc
        if isinstance(parsed, exp.Create) and parsed.kind == "MACRO":
            _define_macro(sql_file, parsed, ctx, used)
            continue
        if not isinstance(parsed, exp.Expression):
            raise AnalyticsError(f"{sql_file.name}: a statement sqlglot reads as nothing")
        tree = _apply_rules(parsed, ctx, used)
        reads |= _tables_read(tree)
        markers = sorted({m.name for m in tree.find_all(exp.Placeholder) if m.name})
        if isinstance(tree, exp.Create):
            makes.add(tree.this.name.lower())
        for table, sql in _spark_statements(sql_file, tree):
            bound = tuple(name for name in markers if f":{name}" in sql)
            statements.append(SparkStatement(sql, bound, table, _order_by(tree, table)))
    return SparkFile(
        sql_file, tuple(statements), frozenset(used), frozenset(reads - makes), frozenset(makes)
    )


def _tables_read(tree: exp.Expression) -> set[str]:
    query = tree.expression if isinstance(tree, exp.Create) else tree
    if query is None:
        return set()
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    return {
        t.name.lower()
        for t in query.find_all(exp.Table)
        if t.name and not t.db and t.name.lower() not in ctes
    }


def _define_macro(sql_file: SqlFile, tree: exp.Create, ctx: Context, used: set[str]) -> None:
    udf = tree.this
    if not isinstance(udf, exp.UserDefinedFunction) or tree.expression is None:
        raise AnalyticsError(f"{sql_file.name}: a macro must be CREATE MACRO f(x, ...) AS expr")
    params = [p.name.lower() for p in udf.expressions]
    body = _apply_rules(tree.expression, ctx, used)
    ctx.macros[udf.this.name.lower()] = (params, body)
    used.add("macro")


def _apply_rules(tree: exp.Expression, ctx: Context, used: set[str]) -> exp.Expression:
    for rule in RULES:

        def rewrite(node: exp.Expression, rule: Rule = rule) -> exp.Expression:
            new = rule.rewrite(node, ctx)
            if new is not node:
                used.add(rule.name)
            return new

        tree = tree.transform(rewrite, copy=False)
    return tree


def _order_by(tree: exp.Expression, table: str | None) -> str | None:
    query = tree.expression if isinstance(tree, exp.Create) else None
    order = query.args.get("order") if table and isinstance(query, exp.Query) else None
    if not isinstance(order, exp.Order):
        return None
    return ", ".join(e.sql(SOURCE) for e in order.expressions)


def _spark_statements(sql_file: SqlFile, tree: exp.Expression) -> list[tuple[str | None, str]]:
    """(table, query) for a table the runner makes from a query's rows; (None, statement)
    for a statement Spark runs as it is."""
    if isinstance(tree, exp.Create) and tree.kind in ("TABLE", "VIEW"):
        query = tree.expression
        if query is None:
            raise AnalyticsError(f"{sql_file.name}: CREATE {tree.kind} without AS query")
        name = tree.this.name if isinstance(tree.this, exp.Table) else tree.this.this.name
        body = query.sql(TARGET, comments=False)
        if tree.kind == "TABLE":
            return [(name, body)]
        return [(None, f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {body}")]
    if isinstance(tree, exp.Set):
        out: list[tuple[str | None, str]] = []
        for item in tree.expressions:
            if not (isinstance(item, exp.SetItem) and item.args.get("kind") == "VARIABLE"):
                raise AnalyticsError(f"{sql_file.name}: only SET VARIABLE is translated")
            assignment = item.this
            name = assignment.this.name
            value = assignment.expression.sql(TARGET, comments=False)
            out.append((None, f"DECLARE OR REPLACE VARIABLE {name} DEFAULT {value}"))
        return out
    raise AnalyticsError(
        f"{sql_file.name}: statement {tree.key.upper()} has no Spark form "
        "(CREATE TABLE/VIEW ... AS, CREATE MACRO and SET VARIABLE are translated)"
    )
