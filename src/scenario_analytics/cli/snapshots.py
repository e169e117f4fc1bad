"""`snapshots`: list a store's published snapshots (the group's default), and manage the
store: pin, unpin, delete, verify, usage, unlock; and list those the exports make out of
date (stale). The logic is the store's (`publish/store.py`);
this parses options and prints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import click

from scenario_analytics.cli import hints
from scenario_analytics.cli.options import (
    CONTEXT,
    bundle,
    debug_option,
    exports_option,
    job_option,
    json_option,
    log_format_option,
    option,
    parse_day,
    snapshots_option,
)
from scenario_analytics.cli.output import fail, handle_errors, interruptible, log, reporter
from scenario_analytics.errors import ExitCode
from scenario_analytics.locations import Location
from scenario_analytics.pipeline.stale import CHANGE_KINDS, StaleDay, StaleOptions, find_stale
from scenario_analytics.publish.store import Store, StoreUsage, require_store
from scenario_analytics.settings import JobSettings

# The options every subcommand takes, as the listing does.
store_options = bundle(snapshots_option, job_option, debug_option)
# The table's width up to its size column, which the usage lines line up with.
LABEL_WIDTH = 81


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _store(snapshots: Location | None, job: Path | None) -> Store:
    """The store named on the command line, the environment or the job file; for a
    subcommand, `--snapshots` and `--job` given before its name count too."""
    parent = click.get_current_context().parent
    if parent is not None:
        snapshots = snapshots or parent.params.get("snapshots")
        job = job or parent.params.get("job")
    settings = JobSettings.resolve(job, snapshots=snapshots)
    return require_store(settings.snapshot_store(), settings.storage)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _usage_lines(usage: StoreUsage) -> list[str]:
    rows = [
        (f"total: {_count(usage.snapshots, 'snapshot')}", usage.snapshot_bytes),
        (f"replaced versions kept for readers: {usage.replaced}", usage.replaced_bytes),
        (f"quarantines: {usage.quarantines}", usage.quarantine_bytes),
        ("ledger", usage.ledger_bytes),
        ("store, all of it", usage.store_bytes),
    ]
    return [f"{label:<{LABEL_WIDTH}}  {_size(n):>9}" for label, n in rows]


@click.group(
    context_settings=CONTEXT,
    invoke_without_command=True,
    subcommand_metavar="[COMMAND [ARGS]...]",
)
@snapshots_option
@job_option
@json_option
@debug_option
@handle_errors
def snapshots_command(snapshots: Location | None, job: Path | None, as_json: bool) -> None:
    """List the store's published snapshots, or manage the store.

    Without a command: date, when it was made, sessions, scenarios, rejected rows, SQL
    version (a digest of the SQL files) and size on disk, oldest first; the one
    latest.json names is marked (and if it is pinned). Then the disk use: the snapshots'
    total, replaced versions still kept for readers, quarantines, the ledger and the whole
    folder (`snapshots usage --json` prints those as JSON). Exit 3 if the store folder
    does not exist.

    --snapshots and --job given before a command apply to it.

    \b
    Example:
      scenario-analytics snapshots --snapshots /data/snapshots
      scenario-analytics snapshots --job jobs/nightly.toml --json | jq '.[-1]'
      scenario-analytics snapshots --job jobs/nightly.toml verify
    """
    if click.get_current_context().invoked_subcommand is not None:
        return
    store = _store(snapshots, job)
    found = store.snapshots()
    if as_json:
        click.echo(json.dumps([s.as_json() for s in found], indent=2))
        return
    click.echo(
        f"{'date':<10}  {'created_at':<20}  {'sessions':>11}  {'scenarios':>9}  "
        f"{'rejects':>9}  {'sql':<12}  {'size':>9}"
    )
    for s in found:
        mark = ("  latest (pinned)" if s.pinned else "  latest") if s.latest else ""
        click.echo(
            f"{s.snapshot_date.isoformat():<10}  {s.created_at[:19] + 'Z':<20}  "
            f"{s.sessions:>11,}  {s.scenarios:>9,}  {s.rejects:>9,}  {s.sql_version:<12}  "
            f"{_size(s.bytes):>9}" + mark
        )
    usage = store.usage()
    if usage.store_bytes:  # an empty folder, a store nothing went into yet: nothing to add
        click.echo()
        for line in _usage_lines(usage):
            click.echo(line)


@snapshots_command.command("pin", context_settings=CONTEXT)
@click.argument("day", metavar="DATE", callback=parse_day)
@store_options
@handle_errors
def pin_command(day: date, snapshots: Location | None, job: Path | None) -> None:
    """Pin latest.json to DATE: readers get that snapshot (a rollback).

    The API and `query` read the snapshot latest.json names. Later runs and backfills
    still publish their dates but leave latest.json where it is, and say so, until
    `snapshots unpin`. Prints the snapshot's path. Exit 3 if DATE is not published, 5
    while a run holds the store.

    \b
    Example:
      scenario-analytics snapshots pin 2026-11-25 --snapshots /data/snapshots
    """
    store = _store(snapshots, job)
    before = store.pin(day)
    was = ""
    if before is not None and before.snapshot_date != day:
        was = f" (it named {before.snapshot_date.isoformat()})"
    log(
        f"latest.json pinned to {day.isoformat()}{was}; runs leave it there until "
        "`scenario-analytics snapshots unpin`"
    )
    click.echo(store.public(day))


@snapshots_command.command("unpin", context_settings=CONTEXT)
@store_options
@handle_errors
def unpin_command(snapshots: Location | None, job: Path | None) -> None:
    """Unpin latest.json: it names the newest published date again.

    Undoes `snapshots pin` once the newer snapshots are right (rebuild a bad one first,
    with backfill --force). Prints the snapshot's path. Exit 3 if nothing is published, 5
    while a run holds the store.

    \b
    Example:
      scenario-analytics snapshots unpin --snapshots /data/snapshots
    """
    store = _store(snapshots, job)
    before, now = store.unpin()
    if before is not None and before.pinned:
        what = f"latest.json unpinned from {before.snapshot_date.isoformat()}"
    else:
        what = "latest.json was not pinned"
    log(f"{what}; it names {now.isoformat()}, the newest published date")
    click.echo(store.public(now))


@snapshots_command.command("delete", context_settings=CONTEXT)
@click.argument("day", metavar="DATE", callback=parse_day)
@click.option(
    "--force",
    is_flag=True,
    # The one option not read from the environment: a SCENARIO_ANALYTICS_FORCE left in a
    # shell for `backfill --force` must never turn into deleting what latest.json names.
    help="Delete the date latest.json names too; latest.json then names the newest remaining "
    "date, unpinned. Never read from the environment.",
)
@store_options
@handle_errors
def delete_command(day: date, force: bool, snapshots: Location | None, job: Path | None) -> None:
    """Delete one date's snapshot, atomically for readers.

    Its commit record goes first; its files stay an hour for readers that hold them,
    then the next run removes them (as retention does). The date latest.json names
    is refused (exit 2) unless --force. Exit 3 if DATE is not published, 5 while a run
    holds the store.

    \b
    Example:
      scenario-analytics snapshots delete 2026-11-20 --snapshots /data/snapshots
      scenario-analytics snapshots delete 2026-11-26 --force --job jobs/nightly.toml
    """
    store = _store(snapshots, job)
    deleted = store.delete(day, force=force)
    log(
        f"deleted snapshot {day.isoformat()}: its files stay an hour for readers that hold "
        "them, then a run removes them"
    )
    if deleted.latest_moved_to is not None:
        log(
            f"latest.json now names {deleted.latest_moved_to.isoformat()}, the newest "
            "remaining date"
        )
    if deleted.latest_removed:
        log("no snapshot is left: latest.json removed")


@snapshots_command.command("verify", context_settings=CONTEXT)
@option(
    "--repair",
    is_flag=True,
    help="First fix what needs no exports: latest.json, snapshots left half moved in place, "
    "leftovers of killed runs. Never deletes a snapshot.",
)
@store_options
@handle_errors
def verify_command(repair: bool, snapshots: Location | None, job: Path | None) -> None:
    """Check that the store is whole: every file against its manifest.

    Re-hashes the files of every published snapshot against the sha256s of its manifest
    (on S3, downloading them), and checks latest.json, the commit records and leftovers
    of killed runs. Each
    problem goes to stderr on a line of its own with what to do, then a summary. Files of
    manifests written before sha256s were recorded are noted as not verifiable, not
    failed. Exit 0 if the store is whole, 1 if not, 5 if --repair finds a run holding
    the store.

    \b
    Example:
      scenario-analytics snapshots verify --snapshots /data/snapshots
      scenario-analytics snapshots verify --repair --job jobs/nightly.toml
    """
    store = _store(snapshots, job)
    if repair:
        for line in store.repair():
            log(f"repaired: {line}")
    found = store.verify()
    for note in found.notes:
        log(f"note: {note}")
    for problem in found.problems:
        log(f"problem: {hints.with_options(str(problem))}")
    counts = f"{_count(found.snapshots, 'snapshot')}, {_count(found.files, 'file')} re-hashed"
    if found.whole:
        log(f"the store {store.describe()} is whole ({counts})")
        return
    next_steps = []
    repairable = sum(p.repairable for p in found.problems)
    if repairable:
        next_steps.append(
            f"`{hints.command(['snapshots', 'verify', '--repair'])}` fixes {repairable} of them"
            if not repair
            else f"{repairable} remain after --repair: look at them by hand"
        )
    if len(found.damaged) == 1:
        day = found.damaged[0].isoformat()
        rebuild = hints.command(["backfill", "--from", day, "--to", day, "--force"], exports=True)
        next_steps.append(f"rebuild {day} with `{rebuild}`")
    elif found.damaged:
        dates = ", ".join(d.isoformat() for d in found.damaged)
        rebuild = hints.command(["backfill", "--from", "D", "--to", "D", "--force"], exports=True)
        next_steps.append(f"rebuild {dates} with `{rebuild}` for each date D")
    fail(
        f"{_count(len(found.problems), 'problem')} in the store {store.describe()} ({counts}) — "
        + "; ".join(next_steps),
        int(ExitCode.FAILURE),
    )


@snapshots_command.command("usage", context_settings=CONTEXT)
@snapshots_option
@job_option
@json_option
@debug_option
@handle_errors
def usage_command(snapshots: Location | None, job: Path | None, as_json: bool) -> None:
    """Show the store's disk use: snapshots, replaced versions, quarantines, ledger.

    Snapshots count a file they share (a session partition) once. Replaced versions are
    the files only rebuilt, pruned or deleted dates use, kept an hour for readers that
    hold them (the next run after that removes them). The same lines end the `snapshots`
    listing; --json prints them as one object of {count, bytes} by kind.

    \b
    Example:
      scenario-analytics snapshots usage --snapshots /data/snapshots
      scenario-analytics snapshots usage --job jobs/nightly.toml --json | jq .store.bytes
    """
    usage = _store(snapshots, job).usage()
    if as_json:
        click.echo(json.dumps(usage.as_json(), indent=2))
        return
    for line in _usage_lines(usage):
        click.echo(line)


def _stale_lines(found: list[StaleDay]) -> Iterator[str]:
    """The table of `snapshots stale`: a row per day, then the example ids of each."""
    yield (
        f"{'date':<10}  {'sessions then':>13}  {'sessions now':>12}  {'added':>9}  "
        f"{'changed':>9}  {'removed':>9}  {'why':<14}  path"
    )
    for d in found:
        changes = d.sessions
        counts = (
            [f"{getattr(changes, kind):>9,}" for kind in CHANGE_KINDS]
            if changes
            else [f"{'-':>9}"] * 3
        )
        yield (
            f"{d.snapshot_date.isoformat():<10}  {d.sessions_then:>13,}  {d.sessions_now:>12,}  "
            f"{'  '.join(counts)}  {d.reason:<14}  {d.path}"
        )
    for d in found:
        if d.sessions is None:
            continue
        for kind in CHANGE_KINDS:
            ids = d.sessions.examples.get(kind, [])
            if ids:
                more = getattr(d.sessions, kind) - len(ids)
                yield (
                    f"  {d.snapshot_date.isoformat()} {kind}: {', '.join(ids)}"
                    + (f" and {more:,} more" if more else "")
                )


@snapshots_command.command("stale", context_settings=CONTEXT)
@exports_option
@store_options
@option("--from", "start", callback=parse_day, help="First snapshot date to look at, YYYY-MM-DD.")
@option("--to", "end", callback=parse_day, help="Last snapshot date to look at, YYYY-MM-DD.")
@option(
    "--examples",
    type=click.IntRange(0, 1000),
    default=5,
    show_default=True,
    help="Session ids to name of each kind of change (added, changed, removed) per day.",
)
@option(
    "--no-sessions",
    is_flag=True,
    help="Do not compare sessions (a pass over each stale snapshot's session files); "
    "list the stale days only.",
)
@json_option
@log_format_option
@handle_errors
@interruptible
def stale_command(
    exports: Location | None,
    snapshots: Location | None,
    job: Path | None,
    start: date | None,
    end: date | None,
    examples: int,
    no_sessions: bool,
    as_json: bool,
    log_format: str,
) -> None:
    """List the published snapshots the exports now make out of date.

    A snapshot is out of date when the accepted sessions up to the end of its day, or the
    user and scenario directory rows it uses, differ from what it was built from (its
    manifest's data_digest), e.g. after exports of past days arrived late. For each: date,
    sessions up to that day then and now, the graded sessions (those its
    session files hold) added, changed and removed since, with the first few ids of
    each, why, and path. Zero session changes means a directory row it uses changed (an
    email, a name, a group membership), or an ungraded session. Snapshots built by
    versions without a data digest are listed (no_data_digest) unless their inputs are
    unchanged. Nothing is published; `backfill --stale` rebuilds them, `run
    --restate-days N` those of the last N days. Exit 0 whether or not any is stale.

    \b
    Example:
      scenario-analytics snapshots stale --job jobs/nightly.toml
      scenario-analytics snapshots stale --exports /data/exports --snapshots /data/snapshots \\
          --from 2026-11-01 --json | jq '.[].sessions.added'
    """
    parent = click.get_current_context().parent
    if parent is not None:
        snapshots = snapshots or parent.params.get("snapshots")
        job = job or parent.params.get("job")
    settings = JobSettings.resolve(job, exports=exports, snapshots=snapshots)
    require_store(settings.snapshot_store(), settings.storage).close()
    options = StaleOptions.from_settings(
        settings, start=start, end=end, examples=None if no_sessions else examples
    )
    with reporter(log_format) as report:
        found = find_stale(options, report)
    if as_json:
        click.echo(json.dumps([d.as_json() for d in found], indent=2))
        return
    for line in _stale_lines(found):
        click.echo(line)
    rebuild = (
        hints.command(["backfill", "--stale", "--from", found[0].snapshot_date.isoformat(),
                       "--to", found[-1].snapshot_date.isoformat()], exports=True)
        if found
        else ""
    )  # fmt: skip
    log(
        f"{len(found)} snapshot{'' if len(found) == 1 else 's'} out of date"
        + (f"; rebuild with: {rebuild}" if found else "")
    )


@snapshots_command.command("unlock", context_settings=CONTEXT)
@click.option(
    "--force",
    is_flag=True,
    # Not read from the environment: taking a store from a run must be typed each time.
    help="Remove the lease whoever holds it. Never read from the environment.",
)
@store_options
@handle_errors
def unlock_command(force: bool, snapshots: Location | None, job: Path | None) -> None:
    """Show who holds the store's lease; with --force, remove it.

    A run holds the store by a lease (`.lease.json`) that it renews while it works. A run
    that crashed leaves it: on the same machine the next run takes it over at once, from
    another machine (a new container) once it expires (`[storage] lease_seconds`, 600 by
    default). --force removes it now: only when you are sure its run is gone, since two
    runs at once would race to publish (one of them then fails with exit 5). Exit 0; 3 if
    no lease is held.

    \b
    Example:
      scenario-analytics snapshots unlock --snapshots s3://analytics/store
      scenario-analytics snapshots unlock --force --job jobs/nightly.toml
    """
    store = _store(snapshots, job)
    holder = store.holder()
    if holder is None:
        fail(f"no lease is held on {store.describe()}", int(ExitCode.NOT_FOUND))
    log(f"the store {store.describe()} is held by {holder}")
    if not force:
        log("nothing changed: pass --force to remove the lease")
        return
    removed = store.unlock()
    log(f"removed the lease of {removed}" if removed else "the lease was already gone")


@snapshots_command.command("files", context_settings=CONTEXT)
@click.argument("day", metavar="[DATE]", callback=parse_day, required=False)
@option(
    "--table",
    help="Only this table's files: sessions (one a day), summaries, participants, users, ... "
    "api (the summary.json bodies) or manifest.",
)
@store_options
@json_option
@handle_errors
def files_command(
    day: date | None, table: str | None, snapshots: Location | None, job: Path | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Print where every file of a published snapshot is: one path or URI a line.

    DATE defaults to the one latest.json names. A snapshot's session partitions are
    shared with other snapshots and stored once, by content (`.objects/`), so they are
    not under its snapshot_date= folder: this lists them where they are, for tools that
    read a list of files (DuckDB's read_parquet, pyarrow, Polars, Spark;
    docs/DATA_DICTIONARY.md). --json prints [{"path", "uri", "sha256"}, ...] (path: in
    the snapshot). Exit 3 if DATE is not published.

    \b
    Example:
      scenario-analytics snapshots files --snapshots s3://analytics/store --table sessions
      scenario-analytics snapshots files 2026-11-26 --job jobs/nightly.toml --json
    """
    store = _store(snapshots, job)
    wanted = day or store.latest()
    version = store.version(wanted) if wanted is not None else None
    if version is None:
        shown = wanted.isoformat() if wanted is not None else "latest.json's date"
        fail(f"no published snapshot for {shown} in {store.describe()}", int(ExitCode.NOT_FOUND))
    assert version is not None
    files = [
        (rel, store.describe(version.key(rel)), sha256)
        for rel, sha256 in sorted(version.files().items())
        if table is None or _of_table(rel, table)
    ]
    if as_json:
        body = [{"path": rel, "uri": uri, "sha256": sha256} for rel, uri, sha256 in files]
        click.echo(json.dumps(body, indent=2))
        return
    for _rel, uri, _sha256 in files:
        click.echo(uri)


def _of_table(rel: str, table: str) -> bool:
    if table in ("sessions", "api"):
        return rel.startswith(table + "/")
    if table == "manifest":
        return rel == "manifest.json"
    return rel == f"{table}.parquet"
