"""What changed between two snapshots' summaries: figures, scenarios and summaries.

Two snapshots are compared through their `summaries.parquet` (one row per scenario and
canonical request key) in DuckDB, set-based: a FULL OUTER JOIN on
(scenario_id, request_key) tells rows added and removed; the figure columns of the rows in
both are unpivoted into one row per figure and kept where they differ. Figures compare as
the JSON text the API body carries (`72.4`, `"bronze"`), so decimals stay exact and a
change of scale (`72.4` to `72.40`) counts as a change, as it would for a client.

`body` is compared too: a body that differs while every figure is the same (its JSON was
written differently) is reported as a change of the pseudo-figure `body`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from scenario_analytics.engine.database import connect, quote_ident
from scenario_analytics.errors import AnalyticsError, InvalidUsageError, NotFoundError, first_line
from scenario_analytics.locations import Location
from scenario_analytics.publish.manifest import Manifest
from scenario_analytics.publish.snapshot import SUMMARY_FIGURES
from scenario_analytics.publish.store import Store, require_store
from scenario_analytics.settings import EngineSettings

# The figure columns of summaries.parquet, in the order the response body has them.
FIGURES = SUMMARY_FIGURES  # the columns of summaries.parquet that a body shows
# Reported only when it is a row's one difference (see the module's docstring).
BODY = "body"
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

# A figure's value as the body has it: an exact decimal, a count, a rank (or the body).
FigureValue = Decimal | int | str | None


@dataclass(frozen=True)
class SnapshotSide:
    """One of the two snapshots compared: its date (from its manifest) and its folder as
    named (`DIR/snapshot_date=D` for a date of a store, else the folder given)."""

    snapshot_date: date
    path: str
    tables: dict[str, Path | None]  # local files read: summaries and scenarios (None: none)

    def as_json(self) -> dict[str, object]:
        return {"snapshot_date": self.snapshot_date.isoformat(), "path": self.path}


@dataclass(frozen=True)
class Tally:
    """How many scenarios or summaries were added, removed, changed and left unchanged;
    `before` = removed + changed + unchanged, `after` = added + changed + unchanged."""

    added: int
    removed: int
    changed: int
    unchanged: int

    @property
    def before(self) -> int:
        return self.removed + self.changed + self.unchanged

    @property
    def after(self) -> int:
        return self.added + self.changed + self.unchanged

    def as_json(self) -> dict[str, int]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unchanged": self.unchanged,
        }


@dataclass(frozen=True)
class ScenarioEntry:
    """A scenario added or removed, with its slug and name (None if unknown)."""

    scenario_id: str
    slug: str | None
    name: str | None

    @property
    def label(self) -> str:
        return self.slug or self.scenario_id

    def as_json(self) -> dict[str, object]:
        return {"scenario_id": self.scenario_id, "slug": self.slug, "name": self.name}


@dataclass(frozen=True)
class SummaryEntry:
    """A summary (a scenario's canonical request key, '' = unfiltered) added or removed."""

    scenario_id: str
    slug: str | None
    request_key: str

    @property
    def label(self) -> str:
        return self.slug or self.scenario_id

    def as_json(self) -> dict[str, object]:
        return {"scenario_id": self.scenario_id, "slug": self.slug, "request_key": self.request_key}


@dataclass(frozen=True)
class FigureChange:
    """One figure of one summary that differs: its value before and after, as the body
    has them (`Decimal` for decimals, so `72.4` stays `72.4`)."""

    scenario_id: str
    slug: str | None
    request_key: str
    figure: str
    before: FigureValue
    after: FigureValue

    @property
    def label(self) -> str:
        return self.slug or self.scenario_id

    def as_json(self) -> dict[str, object]:
        return {
            "scenario_id": self.scenario_id,
            "slug": self.slug,
            "request_key": self.request_key,
            "figure": self.figure,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True)
class SnapshotDiff:
    """What changed from the `before` snapshot to the `after` one (`diff_snapshots`).

    The tallies and `changed_figures` always count everything; the lists hold at most the
    `limit` given to `diff_snapshots` each (all of them without one), sorted by scenario
    (slug, else id), request key and the body's order of figures.
    """

    before: SnapshotSide
    after: SnapshotSide
    scenarios: Tally
    summaries: Tally
    changed_figures: int
    scenarios_added: tuple[ScenarioEntry, ...]
    scenarios_removed: tuple[ScenarioEntry, ...]
    summaries_added: tuple[SummaryEntry, ...]
    summaries_removed: tuple[SummaryEntry, ...]
    changes: tuple[FigureChange, ...]

    @property
    def identical(self) -> bool:
        """No scenario or summary added or removed, and no figure changed."""
        return self.scenarios.added == self.scenarios.removed == 0 and (
            self.summaries.added == self.summaries.removed == self.summaries.changed == 0
        )

    def as_json(self) -> dict[str, object]:
        """The document `diff --json` prints; decimals are `Decimal`s (see `to_json`)."""
        return {
            "before": self.before.as_json(),
            "after": self.after.as_json(),
            "identical": self.identical,
            "scenarios": self.scenarios.as_json(),
            "summaries": self.summaries.as_json(),
            "changed_figures": self.changed_figures,
            "scenarios_added": [s.as_json() for s in self.scenarios_added],
            "scenarios_removed": [s.as_json() for s in self.scenarios_removed],
            "summaries_added": [s.as_json() for s in self.summaries_added],
            "summaries_removed": [s.as_json() for s in self.summaries_removed],
            "changes": [c.as_json() for c in self.changes],
        }

    def to_json(self) -> str:
        """`as_json()` as JSON text, decimals written exactly as the bodies write them
        (`72.4`, never a float's `72.40000000000001`); one line per list item."""
        return _json_text(self.as_json())


def diff_snapshots(
    before: date | Path | str,
    after: date | Path | str | None = None,
    *,
    store: Store | Location | Path | None = None,
    limit: int | None = None,
    engine: EngineSettings | None = None,
) -> SnapshotDiff:
    """Compare two snapshots' summaries. Example:

        from scenario_analytics import diff_snapshots

        diff = diff_snapshots("2026-11-25", store=Path("snapshots"))  # vs latest.json's date
        print(diff.identical, diff.summaries.changed, diff.changed_figures)
        for change in diff.changes:  # average_best_score 72.4 -> 73.1, ...
            print(change.label, change.request_key, change.figure, change.before, change.after)

        diff_snapshots(Path("/data/snapshots/snapshot_date=2026-11-26"),
                       Path("/tmp/trial/snapshot_date=2026-11-26"))  # two folders

    `before` and `after` are a date of `store` (a `date`, or text YYYY-MM-DD) or the
    folder of a snapshot (a `Path`, or other text: a folder holding manifest.json);
    `after` defaults to the date `store`'s latest.json names. `limit` caps each list of
    the result (the counts stay complete). Raises `NotFoundError` (exit 3) when a
    snapshot or the store is not found, `InvalidUsageError` (exit 2) for a date that is
    not one, or one given without a store.
    """
    side_before = locate_snapshot(before, store)
    side_after = locate_snapshot(after, store) if after is not None else _latest(store)
    with _compared(side_before, side_after, engine) as con:
        return _result(con, side_before, side_after, limit)


def locate_snapshot(
    ref: date | Path | str, store: Store | Location | Path | None = None
) -> SnapshotSide:
    """A snapshot named by a date of `store` or by its folder (see `diff_snapshots`)."""
    if isinstance(ref, str):
        if _DATE.match(ref):
            try:
                ref = date.fromisoformat(ref)
            except ValueError:
                raise InvalidUsageError(
                    f"{ref!r} is not a date", "give a date YYYY-MM-DD or a snapshot folder"
                ) from None
        else:
            ref = Path(ref)
    if isinstance(ref, Path):
        return _folder(ref)
    if store is None:
        raise InvalidUsageError(
            f"the snapshot date {ref.isoformat()} needs a store to look in",
            "pass --snapshots DIR (or --job), or give the snapshot's folder instead",
        )
    opened = store if isinstance(store, Store) else require_store(store)
    version = opened.version(ref)
    if version is None:
        raise NotFoundError(
            f"no snapshot for {ref.isoformat()} in {opened.describe()}",
            f"`scenario-analytics snapshots --snapshots {opened.describe()}` lists the "
            "published dates",
        )
    files = version.files()
    tables = {
        name: opened.fetch(version, f"{name}.parquet") if f"{name}.parquet" in files else None
        for name in ("summaries", "scenarios")
    }
    return SnapshotSide(ref, opened.public(ref), tables)


def _latest(store: Store | Location | Path | None) -> SnapshotSide:
    if store is None:
        raise InvalidUsageError(
            "no second snapshot to compare with",
            "give B, or pass --snapshots DIR (or --job) to compare with its latest snapshot",
        )
    opened = store if isinstance(store, Store) else require_store(store)
    latest = opened.latest()
    if latest is None:
        raise NotFoundError(
            f"no latest.json in {opened.describe()}: nothing published there yet",
            "give B, or run `scenario-analytics run` first",
        )
    return locate_snapshot(latest, opened)


def _folder(path: Path) -> SnapshotSide:
    if not path.is_dir():
        raise NotFoundError(
            f"no snapshot folder at {path}",
            "give a snapshot's folder (one holding manifest.json) or a date YYYY-MM-DD",
        )
    folder = path.resolve()
    manifest = Manifest.read(folder / "manifest.json")
    if manifest is None:
        raise NotFoundError(
            f"{path} is not a snapshot folder (no readable manifest.json in it)",
            "give a folder `scenario-analytics run` published, such as DIR/snapshot_date=D",
        )
    tables = {
        name: folder / f"{name}.parquet" if (folder / f"{name}.parquet").is_file() else None
        for name in ("summaries", "scenarios")
    }
    return SnapshotSide(manifest.snapshot_date, str(path), tables)


# -- the comparison, in DuckDB -------------------------------------------------------------

_COLUMNS = (*FIGURES, BODY)


@contextmanager
def _compared(
    before: SnapshotSide, after: SnapshotSide, engine: EngineSettings | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection holding `joined` (the FULL OUTER JOIN), `changes` (the figures that
    differ), `summary_status` and `scenario_status` (one status per row and scenario) and
    `labels` (each scenario's slug and name)."""
    con = connect(engine)
    try:
        for name, side in (("before", before), ("after", after)):
            _load(con, name, side)
        _compare(con)
        yield con
    finally:
        con.close()


def _load(con: duckdb.DuckDBPyConnection, name: str, side: SnapshotSide) -> None:
    """One snapshot's summaries, each figure as its JSON text, and its scenarios' labels."""
    figures = ", ".join(
        f"CAST(to_json({quote_ident(c)}) AS VARCHAR) AS {quote_ident(c)}" for c in _COLUMNS
    )
    for table, found in side.tables.items():
        if found is None:
            raise NotFoundError(
                f"snapshot {side.path} has no {table}.parquet",
                "give a folder `scenario-analytics run` published, such as DIR/snapshot_date=D",
            )
    try:
        con.execute(
            f"""CREATE TABLE {name}_summaries AS
                SELECT scenario_id, request_key, {figures}
                FROM read_parquet($p, hive_partitioning = false)""",
            {"p": str(side.tables["summaries"])},
        )
        con.execute(
            f"""CREATE TABLE {name}_scenarios AS
                SELECT scenario_id, slug, name FROM read_parquet($p, hive_partitioning = false)""",
            {"p": str(side.tables["scenarios"])},
        )
    except duckdb.Error as exc:
        raise AnalyticsError(
            f"cannot compare snapshot {side.path}: {first_line(exc)}",
            "compare snapshots written by scenario-analytics (summaries.parquet with "
            "scenario_id, request_key, the figures and body)",
        ) from exc


def _compare(con: duckdb.DuckDBPyConnection) -> None:
    pairs = ", ".join(
        f"a.{quote_ident(c)} AS {quote_ident('before.' + c)}, "
        f"b.{quote_ident(c)} AS {quote_ident('after.' + c)}"
        for c in _COLUMNS
    )
    con.execute(
        f"""CREATE TABLE joined AS
            SELECT coalesce(b.scenario_id, a.scenario_id) AS scenario_id,
                   coalesce(b.request_key, a.request_key) AS request_key,
                   a.scenario_id IS NOT NULL AS in_before,
                   b.scenario_id IS NOT NULL AS in_after,
                   {pairs}
            FROM before_summaries AS a
            FULL OUTER JOIN after_summaries AS b
              ON a.scenario_id = b.scenario_id AND a.request_key = b.request_key"""
    )
    unpivot = ", ".join(
        f"({quote_ident('before.' + c)}, {quote_ident('after.' + c)}) AS {quote_ident(c)}"
        for c in _COLUMNS
    )
    # The body counts only when no figure of its row differs (QUALIFY comes after WHERE).
    con.execute(
        f"""CREATE TABLE changes AS
            WITH long AS (
                UNPIVOT (SELECT * FROM joined WHERE in_before AND in_after)
                ON {unpivot}
                INTO NAME figure VALUE before, after
            )
            SELECT scenario_id, request_key, figure, before, after,
                   list_position($columns, figure) AS figure_no
            FROM long
            WHERE before IS DISTINCT FROM after
            QUALIFY figure <> $body
                OR count(*) OVER (PARTITION BY scenario_id, request_key) = 1""",
        {"columns": list(_COLUMNS), "body": BODY},
    )
    con.execute(
        """CREATE TABLE summary_status AS
           SELECT j.scenario_id, j.request_key,
                  CASE WHEN NOT j.in_before THEN 'added'
                       WHEN NOT j.in_after THEN 'removed'
                       WHEN c.scenario_id IS NOT NULL THEN 'changed'
                       ELSE 'unchanged' END AS status
           FROM joined AS j
           LEFT JOIN (SELECT DISTINCT scenario_id, request_key FROM changes) AS c
             ON c.scenario_id = j.scenario_id AND c.request_key = j.request_key"""
    )
    con.execute(
        """CREATE TABLE scenario_status AS
           SELECT scenario_id,
                  CASE WHEN NOT bool_or(status <> 'added') THEN 'added'
                       WHEN NOT bool_or(status <> 'removed') THEN 'removed'
                       WHEN bool_or(status <> 'unchanged') THEN 'changed'
                       ELSE 'unchanged' END AS status
           FROM summary_status GROUP BY scenario_id"""
    )
    con.execute(
        """CREATE TABLE labels AS
           SELECT coalesce(b.scenario_id, a.scenario_id) AS scenario_id,
                  coalesce(b.slug, a.slug) AS slug, coalesce(b.name, a.name) AS name
           FROM before_scenarios AS a
           FULL OUTER JOIN after_scenarios AS b ON a.scenario_id = b.scenario_id"""
    )


def _tally(con: duckdb.DuckDBPyConnection, table: str) -> Tally:
    row = con.execute(
        f"""SELECT count(*) FILTER (WHERE status = 'added'),
                   count(*) FILTER (WHERE status = 'removed'),
                   count(*) FILTER (WHERE status = 'changed'),
                   count(*) FILTER (WHERE status = 'unchanged')
            FROM {table}"""
    ).fetchone()
    assert row is not None
    return Tally(*(int(n) for n in row))


def _result(
    con: duckdb.DuckDBPyConnection, before: SnapshotSide, after: SnapshotSide, limit: int | None
) -> SnapshotDiff:
    scenarios = _tally(con, "scenario_status")
    summaries = _tally(con, "summary_status")
    row = con.execute("SELECT count(*) FROM changes").fetchone()
    changed_figures = int(row[0]) if row is not None else 0

    def scenario_list(status: str) -> tuple[ScenarioEntry, ...]:
        rows = con.execute(
            """SELECT s.scenario_id, l.slug, l.name
               FROM scenario_status AS s LEFT JOIN labels AS l USING (scenario_id)
               WHERE s.status = $status
               ORDER BY coalesce(l.slug, s.scenario_id), s.scenario_id
               LIMIT $limit""",
            {"status": status, "limit": limit},
        ).fetchall()
        return tuple(ScenarioEntry(*r) for r in rows)

    def summary_list(status: str) -> tuple[SummaryEntry, ...]:
        rows = con.execute(
            """SELECT s.scenario_id, l.slug, s.request_key
               FROM summary_status AS s LEFT JOIN labels AS l USING (scenario_id)
               WHERE s.status = $status
               ORDER BY coalesce(l.slug, s.scenario_id), s.scenario_id, s.request_key
               LIMIT $limit""",
            {"status": status, "limit": limit},
        ).fetchall()
        return tuple(SummaryEntry(*r) for r in rows)

    rows = con.execute(
        """SELECT c.scenario_id, l.slug, c.request_key, c.figure, c.before, c.after
           FROM changes AS c LEFT JOIN labels AS l USING (scenario_id)
           ORDER BY coalesce(l.slug, c.scenario_id), c.scenario_id, c.request_key, c.figure_no
           LIMIT $limit""",
        {"limit": limit},
    ).fetchall()
    changes = tuple(
        FigureChange(scenario_id, slug, key, figure, _value(old), _value(new))
        for scenario_id, slug, key, figure, old, new in rows
    )
    return SnapshotDiff(
        before=before,
        after=after,
        scenarios=scenarios,
        summaries=summaries,
        changed_figures=changed_figures,
        scenarios_added=scenario_list("added"),
        scenarios_removed=scenario_list("removed"),
        summaries_added=summary_list("added"),
        summaries_removed=summary_list("removed"),
        changes=changes,
    )


def _value(text: str | None) -> FigureValue:
    """A figure's JSON text as DuckDB wrote it, as a value: decimals as `Decimal`."""
    if text is None:
        return None
    value = json.loads(text, parse_float=Decimal)
    if isinstance(value, Decimal | int | str):
        return value
    return text  # not a figure's shape (a changed schema): shown as written


# -- text with exact decimals -------------------------------------------------------------


def figure_text(value: FigureValue) -> str:
    """A figure's value as the body writes it: `72.4`, `57`, `bronze` (no quotes)."""
    if value is None:
        return "null"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _json_text(document: dict[str, object]) -> str:
    """The document as JSON: a key per line, a list item per line, and `Decimal`s written
    as their exact digits (`json.dumps` cannot write them, and floats would round)."""
    lines = []
    for key, value in document.items():
        if isinstance(value, list) and value:
            text = "[\n" + ",\n".join(f"    {_compact(v)}" for v in value) + "\n  ]"
        else:
            text = _compact(value)
        lines.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}"


def _compact(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(str(k))}: {_compact(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return json.dumps(value)
