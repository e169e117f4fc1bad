"""Render docs/PERFORMANCE.md from one results file of bench/run.py.

    .venv/bin/python bench/report.py                          # the newest bench/results/*.json
    .venv/bin/python bench/report.py bench/results/X.json --out docs/PERFORMANCE.md
    .venv/bin/python bench/report.py X.json --out -           # print instead of writing
    .venv/bin/python bench/report.py X.json --serve S.json    # serve from a serve_load run

The page is generated, except its "Profile notes" section: everything from that heading
to the end of the existing page is kept as it is when the page is rendered again.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "PERFORMANCE.md"
NOTES_HEADING = "## Profile notes"
NOTES_PLACEHOLDER = f"""{NOTES_HEADING}

_Written by hand; `bench/report.py` keeps this section when it renders the page again._

- Where the full run's time goes (`scenario-analytics run` logs the time of each load
  step and SQL file): to be filled in.
- What was tuned, and what it changed: to be filled in.
- What is left, and why: to be filled in.
"""

GIB = 2**30
MIB = 2**20


# --- formatting ----------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def memory(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / GIB:.2f} GiB" if value >= GIB else f"{value / MIB:.0f} MiB"


def rate(count: float, secs: float | None) -> str:
    if not secs:
        return "—"
    per_second = count / secs
    if per_second >= 1e6:
        return f"{per_second / 1e6:.2f} M/s"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.0f} k/s"
    return f"{per_second:.0f}/s"


def milliseconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- reading results -----------------------------------------------------------------------


def contender(dataset: dict[str, Any], name: str) -> dict[str, Any] | None:
    found = dataset.get("contenders", {}).get(name)
    return found if isinstance(found, dict) else None


def median_seconds(dataset: dict[str, Any] | None, name: str) -> float | None:
    if dataset is None:
        return None
    found = contender(dataset, name)
    if not found or not found.get("median"):
        return None
    return float(found["median"]["seconds"])


def latency(dataset: dict[str, Any] | None, key: str) -> float | None:
    if dataset is None:
        return None
    found = contender(dataset, "query_library")
    if not found or not found.get("median") or "latency" not in found["median"]:
        return None
    return float(found["median"]["latency"][key])


def round_ratios(dataset: dict[str, Any] | None, top: str, bottom: str) -> list[float]:
    """numerator / denominator within each round where both succeeded: how much of a
    ratio is noise shows in how far these spread."""
    if dataset is None:
        return []
    times: list[dict[int, float]] = []
    for name in (top, bottom):
        found = contender(dataset, name) or {}
        times.append(
            {
                int(r["round"]): float(r["seconds"])
                for r in found.get("rounds", [])
                if r.get("exit_code") == 0 and r.get("seconds")
            }
        )
    both = sorted(set(times[0]) & set(times[1]))
    return [times[0][n] / times[1][n] for n in both]


def why_missing(dataset: dict[str, Any] | None, *names: str) -> str:
    if dataset is None:
        return "no such dataset in this run"
    for name in names:
        found = contender(dataset, name)
        if found is None:
            return f"{name} not run"
        if not found.get("available", True):
            return str(found.get("reason") or f"{name} not available")
        if not found.get("median"):
            return f"{name} failed in every round"
    return "not measured"


def parquet_datasets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = [d for d in results.get("datasets", []) if d.get("format") == "parquet"]
    return sorted(found, key=lambda d: int(d.get("sessions", 0)))


def text_datasets(results: dict[str, Any], fmt: str) -> list[dict[str, Any]]:
    found = [d for d in results.get("datasets", []) if d.get("format") == fmt]
    return sorted(found, key=lambda d: int(d.get("sessions", 0)))


# --- targets -------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    dataset: str
    measured: str
    limit: str
    ratio: str
    status: str  # met, not met, not measured: <why>


def _ratio_target(
    name: str,
    dataset: dict[str, Any] | None,
    wanted: str,
    numerator: str,
    denominator: str,
    limit: float,
    strict: bool = False,
) -> Target:
    label = dataset["name"] if dataset else "—"
    if dataset is not None and dataset["name"] != wanted:
        label += f" (target is for {wanted})"
    top = median_seconds(dataset, numerator)
    bottom = median_seconds(dataset, denominator)
    bound = f"< {limit:g}×" if strict else f"≤ {limit:g}×"
    if top is None or bottom is None or bottom == 0:
        reason = why_missing(dataset, numerator, denominator)
        return Target(name, label, "—", bound, "—", f"not measured: {reason}")
    ratio = top / bottom
    met = ratio < limit if strict else ratio <= limit
    measured = f"{numerator} {seconds(top)} s / {denominator} {seconds(bottom)} s"
    paired = round_ratios(dataset, numerator, denominator)
    if len(paired) > 1:
        measured += f" (per round: {', '.join(f'{r:.2f}' for r in paired)})"
    return Target(name, label, measured, bound, f"{ratio:.2f}×", "met" if met else "not met")


def evaluate_targets(results: dict[str, Any]) -> list[Target]:
    """The issue's targets, on the largest Parquet dataset (10m in a full run)."""
    parquet = parquet_datasets(results)
    big = parquet[-1] if parquet else None
    small = parquet[0] if len(parquet) > 1 else None
    jsonl = text_datasets(results, "jsonl")
    lines = jsonl[-1] if jsonl else None
    label = big["name"] if big else "—"
    if big is not None and big["name"] != "10m":
        label += " (target is for 10m)"
    targets = [
        _ratio_target(
            "Full nightly run ≤ 1.5× the hand-written DuckDB pass",
            big,
            "10m",
            "job_full",
            "duckdb_handwritten",
            1.5,
        )
    ]

    peak = None
    found = contender(big, "job_full") if big else None
    if found and found.get("peak_rss_bytes"):
        peak = float(found["peak_rss_bytes"])
    if peak is None:
        targets.append(
            Target(
                "Full nightly run: peak memory ≤ 2 GiB",
                label,
                "—",
                "≤ 2 GiB",
                "—",
                f"not measured: {why_missing(big, 'job_full')}",
            )
        )
    else:
        targets.append(
            Target(
                "Full nightly run: peak memory ≤ 2 GiB",
                label,
                f"{memory(peak)} (highest round)",
                "≤ 2 GiB",
                f"{peak / (2 * GIB):.2f} of the limit",
                "met" if peak <= 2 * GIB else "not met",
            )
        )
    targets.append(
        _ratio_target(
            "Job with no materialized filters faster than Polars (same summaries)",
            big,
            "10m",
            "job_unfiltered",
            "polars_unfiltered",
            1.0,
            strict=True,
        )
    )
    targets.append(
        _ratio_target(
            "Nightly run after one new day ≤ 40% of a full run",
            big,
            "10m",
            "job_new_day",
            "job_full",
            0.4,
        )
    )
    targets.append(
        _ratio_target(
            "30-day backfill ≤ 5× one full run",
            big,
            "10m",
            "job_backfill_30",
            "job_full",
            5.0,
        )
    )
    for key, limit_ms, title in (
        ("p50_ms", 20.0, "`query` p50 ≤ 20 ms per request"),
        ("p99_ms", 100.0, "`query` p99 ≤ 100 ms per request"),
    ):
        value = latency(big, key)
        if value is None:
            why = why_missing(big, "query_library")
            targets.append(
                Target(title, label, "—", f"≤ {limit_ms:g} ms", "—", f"not measured: {why}")
            )
        else:
            targets.append(
                Target(
                    title,
                    label,
                    milliseconds(value),
                    f"≤ {limit_ms:g} ms",
                    f"{value / limit_ms:.2f} of the limit",
                    "met" if value <= limit_ms else "not met",
                )
            )

    title = "Time per session at 10M within 1.3× of that at 1M (full run)"
    big_s = median_seconds(big, "job_full")
    small_s = median_seconds(small, "job_full")
    if big is None or small is None or big_s is None or small_s is None:
        why = "needs two Parquet datasets (e.g. --sizes 1m,10m)" if small is None else ""
        why = why or why_missing(big, "job_full") or why_missing(small, "job_full")
        targets.append(Target(title, "—", "—", "≤ 1.3×", "—", f"not measured: {why}"))
    else:
        per_big = big_s / int(big["sessions"]) * 1e6
        per_small = small_s / int(small["sessions"]) * 1e6
        ratio = per_big / per_small
        pair = f"{big['name']} vs {small['name']}"
        if (big["name"], small["name"]) != ("10m", "1m"):
            pair += " (target is for 10m vs 1m)"
        targets.append(
            Target(
                title,
                pair,
                f"{per_big:.2f} µs vs {per_small:.2f} µs per session",
                "≤ 1.3×",
                f"{ratio:.2f}×",
                "met" if ratio <= 1.3 else "not met",
            )
        )
    targets.append(
        _ratio_target(
            "JSON Lines: loading and validating ≤ 3× DuckDB's bare read_json",
            lines,
            "2m-jsonl",
            "job_validate",
            "duckdb_read_json",
            3.0,
        )
    )
    return targets + serve_targets(results)


# --- serve ---------------------------------------------------------------------------------

SERVE_KINDS = {
    "summary_precomputed": "summaries, precomputed",
    "summary_computed": "summaries, computed (random `start_date`)",
    "participants_precomputed": "participants, unfiltered (participants.parquet)",
    "participants_computed": "participants, random `start_date`",
    "mixed_summary_precomputed": "summaries, precomputed, while 1 client asks computed ones",
    "mixed_summary_computed": "summaries, computed, beside the precomputed clients",
}
SERVE_CLIENTS = 4  # the client count the targets are judged at
# (title, kind, figure, limit, at least?)
SERVE_TARGETS = (
    ("`serve`: precomputed summaries p99 ≤ 10 ms", "summary_precomputed", "p99_ms", 10, False),
    (
        "`serve`: precomputed summaries ≥ 1,000 requests/s",
        "summary_precomputed",
        "requests_per_second",
        1000,
        True,
    ),
    ("`serve`: computed summaries p99 ≤ 100 ms", "summary_computed", "p99_ms", 100, False),
)


def size_name(sessions: int) -> str:
    """10,001,000 sessions -> "10m": the dataset name a standalone run compares with."""
    if sessions >= 1_000_000:
        return f"{sessions / 1e6:.3g}m".replace(".0m", "m")
    return f"{sessions / 1e3:.3g}k".replace(".0k", "k")


def serve_runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The serve measurements to report: a standalone serve_load.py document given to
    report.py (--serve), else each dataset's (bench/run.py), smallest first."""
    if results.get("serve_run"):
        return [results["serve_run"]]
    runs = [
        {"dataset": d["name"], "sessions": int(d.get("sessions") or 0), **d["serve"]}
        for d in results.get("datasets", [])
        if isinstance(d.get("serve"), dict)
    ]
    return sorted(runs, key=lambda r: r["sessions"])


def serve_phase(run: dict[str, Any], kind: str, clients: int) -> dict[str, Any] | None:
    for phase in (run.get("result") or {}).get("phases", []):
        if phase.get("kind") == kind and phase.get("clients") == clients:
            return phase
    return None


def non_200(phase: dict[str, Any]) -> int:
    return sum(int(n) for s, n in (phase.get("statuses") or {}).items() if s != "200")


def serve_targets(results: dict[str, Any]) -> list[Target]:
    """The issue's serve targets, at 4 clients, on the largest dataset measured."""
    runs = serve_runs(results)
    run = runs[-1] if runs else None
    label = "—"
    if run is not None:
        label = run["dataset"] + ("" if run["dataset"] == "10m" else " (target is for 10m)")
    targets = []
    for title, kind, figure, limit, at_least in SERVE_TARGETS:
        title = f"{title} at {SERVE_CLIENTS} clients"
        bound = f"≥ {limit:,}/s" if at_least else f"≤ {limit:g} ms"
        phase = serve_phase(run, kind, SERVE_CLIENTS) if run else None
        if phase is None or phase.get(figure) is None:
            why = "serve not run" if run is None else f"no {kind} phase at {SERVE_CLIENTS} clients"
            if run is not None and run.get("error") and phase is None:
                why = "serve_load.py failed"
            targets.append(Target(title, label, "—", bound, "—", f"not measured: {why}"))
            continue
        value = float(phase[figure])
        if at_least:
            measured = f"{value:,.0f} requests/s (p99 {milliseconds(phase.get('p99_ms'))})"
            ratio = f"{value / limit:.2f}× the floor"
            met = value >= limit
        else:
            measured = f"{milliseconds(value)} (p50 {milliseconds(phase.get('p50_ms'))})"
            ratio = f"{value / limit:.2f} of the limit"
            met = value <= limit
        status = "met" if met else "not met"
        bad = non_200(phase)
        if bad:
            status = f"not met: {bad:,} answers other than 200"
        targets.append(Target(title, label, measured, bound, ratio, status))
    return targets


def serve_reproduce(results: dict[str, Any], source: str) -> list[str]:
    """The report's command, and the serve_load.py run's when it came separately."""
    run = results.get("serve_run")
    if not run:
        return [f".venv/bin/python bench/report.py {source}"]
    command = (run.get("result") or {}).get("command", ".venv/bin/python bench/serve_load.py")
    return [
        command if "--out" in command else f"{command} > {run['source']}",
        f".venv/bin/python bench/report.py {source} --serve {run['source']}",
    ]


def serve_section(results: dict[str, Any]) -> str:
    runs = serve_runs(results)
    out = [
        "## Serve",
        "",
        "`scenario-analytics serve` under `bench/serve_load.py`: the server on 127.0.0.1 with its",
        "default 2 workers and an API key on every request; per kind of request and number of",
        "concurrent keep-alive clients (each sends its next request when the last one is",
        "answered), as many requests as are answered within the phase's time. Kinds: summaries",
        "answered from the precomputed bodies; summaries with a random `start_date` (computed",
        "with SQL on a worker); the unfiltered participants, a random sorting and page (read",
        "from participants.parquet, on a worker); participants with a random `start_date`. The",
        "clients run on the same cores as the server; *other* is the CPU every other process",
        "used meanwhile (someone else's tests, say; the machine is shared): where it is not near",
        "0, the figures are pessimistic. `make bench` runs it once per Parquet dataset, on the",
        "reference snapshot, after the rounds.",
    ]
    if not runs:
        out += [
            "",
            "Not measured in this run (`--only` without `serve`, or an older results file).",
        ]
        return "\n".join(out)
    for run in runs:
        result = run.get("result") or {}
        snap = result.get("snapshot") or {}
        facts = [f"{int(snap.get('sessions') or run.get('sessions') or 0):,} sessions"]
        if snap.get("scenarios"):
            facts.append(f"{snap['scenarios']} scenarios")
        if snap.get("precomputed_bodies"):
            facts.append(f"{snap['precomputed_bodies']:,} precomputed bodies")
        out += ["", f"### serve at {run['dataset']} ({', '.join(facts)})", ""]
        if run.get("source"):
            out += [
                f"From `{run['source']}`, a separate run of `bench/serve_load.py` (not part of "
                "the results file above): "
                f"`{result.get('command', '')}`, {result.get('started_at')} to "
                f"{result.get('finished_at')} (UTC), snapshot {snap.get('date')} of "
                f"`{result.get('store')}`.",
                "",
            ]
        server = result.get("server") or {}
        settings = result.get("settings") or {}
        machine = result.get("machine") or {}
        load = [machine.get("load_average_start"), machine.get("load_average_end")]
        load_text = " → ".join("/".join(f"{x:.1f}" for x in v) for v in load if isinstance(v, list))
        notes = [
            f"{settings.get('workers', '?')} workers",
            f"ready (workers holding all sessions) after {seconds(server.get('ready_seconds'))} s",
            f"server peak RSS {server['peak_rss_mib']:,} MiB" if server.get("peak_rss_mib") else "",
            f"each phase ≤ {settings.get('seconds', 0):g} s and ≤ "
            f"{settings.get('requests', 0):,} requests",
            f"load average (1/5/15 min) {load_text}" if load_text else "",
        ]
        out.append("; ".join(n for n in notes if n) + ".")
        if result.get("note"):
            out += ["", f"Note: {result['note']}."]
        if run.get("exit_code") not in (0, None) or result.get("problems"):
            problems = result.get("problems") or [(run.get("error") or "failed").splitlines()[-1]]
            out += ["", "**Failed**: " + "; ".join(str(p) for p in problems)]
        rows = []
        for phase in result.get("phases", []):
            cpu = phase.get("cpu_cores") or {}
            clients = str(phase.get("clients"))
            if phase.get("kind") == "mixed_summary_precomputed":
                clients += " (+1 computed)"
            elif phase.get("kind") == "mixed_summary_computed":
                clients += f" (+{phase.get('with_clients')} precomputed)"
            rows.append(
                [
                    SERVE_KINDS.get(phase.get("kind", ""), phase.get("kind", "")),
                    clients,
                    f"{phase.get('requests', 0):,}",
                    f"{float(phase.get('requests_per_second') or 0):,.0f}",
                    milliseconds(phase.get("p50_ms")),
                    milliseconds(phase.get("p99_ms")),
                    milliseconds(phase.get("max_ms")),
                    f"{non_200(phase):,}",
                    "/".join(f"{cpu.get(k, 0):.1f}" for k in ("server", "client", "other"))
                    if cpu
                    else "—",
                ]
            )
        if rows:
            out += [
                "",
                table(
                    [
                        "kind",
                        "clients",
                        "requests",
                        "requests/s",
                        "p50",
                        "p99",
                        "max",
                        "non-200",
                        "cores: server/client/other",
                    ],
                    rows,
                ),
            ]
    targets = serve_targets(results)
    out += ["", f"Targets, at {SERVE_CLIENTS} clients, judged on {targets[0].dataset}:", ""]
    out += [f"- {t.name}: {t.measured} — **{t.status}**" for t in targets]
    return "\n".join(out)


# --- the page ------------------------------------------------------------------------------


def describe_machine(results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    versions = machine.get("versions", {})
    parts = [
        str(machine.get("cpu_model") or "unknown CPU"),
        f"{machine.get('nproc')} cores available (nproc)",
        f"{(machine.get('memory_bytes') or 0) / GIB:.0f} GiB RAM",
        str(machine.get("platform") or ""),
    ]
    tools = ", ".join(
        f"{name} {versions[key]}"
        for key, name in (
            ("python", "Python"),
            ("duckdb", "DuckDB"),
            ("pyarrow", "pyarrow"),
            ("polars", "Polars"),
            ("pandas", "pandas"),
            ("scenario-analytics", "scenario-analytics"),
        )
        if versions.get(key)
    )
    return "; ".join(p for p in parts if p) + f". {tools}."


def dataset_section(dataset: dict[str, Any]) -> str:
    sessions = int(dataset.get("sessions", 0))
    setup = dataset.get("setup", {})
    counts = setup.get("counts") or {}
    fmt = {"parquet": "Parquet", "jsonl": "JSON Lines", "csv": "CSV"}.get(
        dataset.get("format", ""), dataset.get("format", "")
    )
    lines = [f"### {dataset['name']}: {sessions:,} sessions, {fmt}", ""]
    facts = [
        f"{dataset.get('session_rows_written', 0) or 0:,} session rows written "
        f"({dataset.get('duplicates', 0) or 0:,} re-exported duplicates)",
        f"{dataset.get('files', '?')} files, {memory(dataset.get('bytes'))}",
        f"as-of {dataset.get('as_of')}",
    ]
    if counts:
        facts.append(f"{counts.get('scenarios', '?')} scenarios, {counts.get('users', 0):,} users")
    if setup.get("materialized_filters_per_scenario"):
        facts.append(f"{setup['materialized_filters_per_scenario']} materialized filters/scenario")
    if setup.get("new_day"):
        facts.append(f"new day: {setup['new_day']['sessions']:,} sessions")
    lines += ["; ".join(facts) + ".", ""]

    rows: list[list[object]] = []
    query_rows: list[list[object]] = []
    for name, found in dataset.get("contenders", {}).items():
        if not found.get("available", True):
            rows.append([f"`{name}`", found.get("description", ""), *["—"] * 5, found["reason"]])
            continue
        rounds = found.get("rounds", [])
        med = found.get("median")
        if not med:
            errors = [r.get("error", "") for r in rounds if r.get("exit_code") != 0]
            first = (errors[0].splitlines() or [""])[-1][:120] if errors else "no rounds"
            rows.append([f"`{name}`", found.get("description", ""), *["—"] * 5, f"failed: {first}"])
            continue
        secs = float(med["seconds"])
        unit = found.get("unit", "sessions")
        if unit == "requests":
            count = sum(setup.get("requests", {}).values()) or 0
            throughput = rate(count, secs).replace("/s", " req/s")
        else:
            throughput = rate(sessions, secs)
        ok = f"{found.get('rounds_ok', len(rounds))}/{len(rounds)}"
        good = [r for r in rounds if r.get("exit_code") == 0 and "seconds" in r]
        spread = [min(r["seconds"] for r in good), max(r["seconds"] for r in good)]
        cpu = [r["user_seconds"] + r["system_seconds"] for r in good if "user_seconds" in r]
        rows.append(
            [
                f"`{name}`",
                found.get("description", ""),
                seconds(secs),
                f"{seconds(spread[0])}–{seconds(spread[1])}",
                seconds(statistics.median(cpu)) if cpu else "—",
                throughput,
                memory(med.get("max_rss_bytes")),
                ok,
            ]
        )
        if unit == "requests":
            lat = med.get("latency")
            count = sum(setup.get("requests", {}).values()) or 0
            if lat:
                by_kind = med.get("latency_by_kind", {})
                kinds = ", ".join(
                    f"{kind} p50 {milliseconds(v['p50_ms'])} / p99 {milliseconds(v['p99_ms'])}"
                    for kind, v in by_kind.items()
                )
                query_rows.append(
                    [
                        f"`{name}`",
                        milliseconds(lat["p50_ms"]),
                        milliseconds(lat["p99_ms"]),
                        milliseconds(lat["mean_ms"]),
                        milliseconds(lat["max_ms"]),
                        kinds,
                    ]
                )
            elif count:
                per = secs / count * 1000
                query_rows.append(
                    [f"`{name}`", "—", "—", f"{per:.1f} ms (whole process / requests)", "—", ""]
                )
    lines.append(
        table(
            [
                "contender",
                "what",
                "median s",
                "min–max s",
                "CPU s",
                "rows/s",
                "peak RSS (median)",
                "rounds ok / note",
            ],
            rows,
        )
    )
    lines += [
        "",
        "CPU s: median user + system time of the process (less sensitive to a busy machine "
        "than wall time, but blind to waiting). "
        "rows/s: the dataset's sessions over the median time, whatever the contender does "
        "with them (`job_backfill_30` builds 30 snapshots; `job_new_day` has one new day's "
        "file to read); for queries, requests per second over the whole process.",
    ]
    if query_rows:
        lines += [
            "",
            "Query latency per request (medians over rounds of p50, p99, mean, max):",
            "",
            table(["contender", "p50", "p99", "mean", "max", "by kind"], query_rows),
        ]
        if setup.get("requests"):
            mix = ", ".join(f"{n} {kind}" for kind, n in setup["requests"].items())
            verified = setup.get("precomputed_verified")
            if verified:
                mix += f" ({verified} of the precomputed ones match a stored request key)"
            lines += ["", f"Requests: {mix}."]
    logged = []
    for name in ("job_new_day", "job_backfill_30"):
        found = dataset.get("contenders", {}).get(name) or {}
        said = [r["job_summary"] for r in found.get("rounds", []) if r.get("job_summary")]
        if said:
            logged.append(f"- `{name}`, last round: `{said[-1]}`")
    if logged:
        lines += ["", "What the job logged:", "", *logged]
    checks = dataset.get("checks", {})
    if checks:
        check_rows = []
        for name, check in checks.items():
            check_rows.append(
                [
                    f"`{name}`",
                    check.get("compared", ""),
                    f"{check.get('equal')}/{check.get('job_rows')}",
                    # Older results files name it one_tenth_off (it then counted decimals only).
                    check.get("last_digit_off", check.get("one_tenth_off")),
                    check.get("different"),
                    f"{check.get('missing_in_baseline')}/{check.get('extra_in_baseline')}",
                    "ok" if check.get("ok") else "MISMATCH",
                ]
            )
        lines += [
            "",
            "Baselines against the job's `summaries.parquet` (same dataset, same as-of):",
            "",
            table(
                [
                    "baseline",
                    "compared",
                    "rows equal",
                    "last digit off (float tie)",
                    "different",
                    "missing/extra",
                    "status",
                ],
                check_rows,
            ),
        ]
    return "\n".join(lines)


def render(results: dict[str, Any], source: str, notes: str | None = None) -> str:
    settings = results.get("settings", {})
    git = results.get("git", {})
    commit = (git.get("commit") or "unknown")[:12] + (
        " with local changes" if git.get("dirty") else ""
    )
    engine = []
    if settings.get("threads"):
        engine.append(f"{settings['threads']} threads")
    if settings.get("memory_limit"):
        engine.append(f"memory limit {settings['memory_limit']}")
    engine_text = ", ".join(engine) if engine else "DuckDB's and Polars' defaults (all cores)"
    load = results.get("load_average_start"), results.get("load_average_end")
    load_text = " → ".join(
        "/".join(f"{x:.1f}" for x in values) for values in load if isinstance(values, list)
    )
    capability = results.get("capabilities", {})
    targets = evaluate_targets(results)
    out = [
        "# Performance",
        "",
        f"<!-- Generated by bench/report.py from {source}. Edit bench/report.py, not this page;",
        '     only the "Profile notes" section at the end is written by hand and kept. -->',
        "",
        "What `make bench` measures (see `bench/README.md`): the full nightly `run` with the",
        "default materialized filters, a run with the unfiltered summary only, the next",
        "night's run after one new day of exports, a 30-day `backfill`, `validate`",
        "(loading and validating), and `query` latency over random requests; against a",
        "hand-written DuckDB pass computing the same default summaries without validation",
        "or publishing (the floor for this engine), DuckDB's bare `read_json`, and Polars and",
        "pandas computing the unfiltered summary of every scenario, on the same files in",
        "the same run. Each contender is its own process; times are wall-clock medians",
        "over rounds in which the contenders take turns; peak RSS is the process's maximum",
        "resident set size. `serve` is measured under load from 1, 4 and 16 clients.",
        "",
        f"- Run: {results.get('started_at')} to {results.get('finished_at') or '(unfinished)'} "
        f"(UTC), commit "
        f"{commit}; rounds per dataset: {settings.get('rounds')}; engine settings: "
        f"{engine_text}.",
        f"- Machine: {describe_machine(results)}",
        f"- Load average (1/5/15 min) at start → end: {load_text or 'unknown'}. The machine is "
        "shared: compare ratios within one run, not seconds across runs.",
        f"- Incremental runs (`run --full-refresh` present): "
        f"{'yes' if capability.get('full_refresh') else 'no'}; `backfill` present: "
        f"{'yes' if capability.get('backfill') else 'no'}.",
        "",
        "Reproduce:",
        "",
        "```",
        "make bench                      # full run: 1m, 10m, 2m-jsonl, 3 rounds, then this page",
        f"{results.get('command', '.venv/bin/python bench/run.py')}",
        *serve_reproduce(results, source),
        "```",
        "",
        "## Targets",
        "",
        table(
            ["target", "dataset", "measured", "limit", "ratio", "status"],
            [[t.name, t.dataset, t.measured, t.limit, t.ratio, t.status] for t in targets],
        ),
        "",
    ]
    out += [serve_section(results), "", "## Results by dataset"]
    for dataset in results.get("datasets", []):
        out += ["", dataset_section(dataset)]
    out += ["", (notes or NOTES_PLACEHOLDER).rstrip(), ""]
    return "\n".join(out)


def existing_notes(page: Path) -> str | None:
    """The hand-written "Profile notes" section of the current page, if any."""
    try:
        text = page.read_text(encoding="utf-8")
    except OSError:
        return None
    at = text.find("\n" + NOTES_HEADING)
    if at < 0:
        return None
    return text[at + 1 :]


def newest_results() -> Path:
    files = sorted(RESULTS.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    if not files:
        raise SystemExit("report: no results in bench/results; run bench/run.py first")
    return files[-1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render docs/PERFORMANCE.md from bench results.")
    parser.add_argument("results", nargs="?", type=Path, help="default: the newest results file")
    parser.add_argument("--out", default=str(PAGE), help="page to write, or - for stdout")
    parser.add_argument(
        "--serve",
        type=Path,
        help="the serve section from this bench/serve_load.py document instead",
    )
    args = parser.parse_args(argv)
    source = args.results or newest_results()
    results = json.loads(source.read_text(encoding="utf-8"))
    shown = os.path.relpath(source.resolve(), ROOT)
    if args.serve:
        document = json.loads(args.serve.read_text(encoding="utf-8"))
        sessions = int((document.get("snapshot") or {}).get("sessions") or 0)
        results["serve_run"] = {
            "dataset": size_name(sessions),
            "sessions": sessions,
            "source": os.path.relpath(args.serve.resolve(), ROOT),
            "exit_code": 0 if document.get("ok") else 1,
            "result": document,
        }
    if args.out == "-":
        sys.stdout.write(render(results, shown))
        return
    page = Path(args.out)
    page.write_text(render(results, shown, existing_notes(page)), encoding="utf-8")
    print(f"report: wrote {page} from {shown}", file=sys.stderr)


if __name__ == "__main__":
    main()
