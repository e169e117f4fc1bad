"""What checking a snapshot's files against its manifest costs when `serve` loads it
(issue #24, "trust on read"): the load of a version as the server does it (a reader, its
tables and session files fetched, the precomputed bodies read), with every file hashed
(what `serve` and `query` do) and without (what they did before).

    .venv/bin/python bench/trust_on_read.py STORE [--rounds 5] [--out FILE.json]

STORE is a published store (local folder or s3://…), e.g. the one `bench/run.py` leaves
in `bench/data/.scratch/10m/reference`. Each round opens a new `Store` (nothing hashed
yet; the page cache is warm after the first round, as on a server that loads a new
version published by a run minutes before). Prints one line per round and the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scenario_analytics.api.served import load_bodies  # noqa: E402
from scenario_analytics.publish.store import Store  # noqa: E402
from scenario_analytics.serve.query import SnapshotQuery  # noqa: E402


def load(where: str, whole: bool) -> tuple[float, int]:
    """Seconds to load the latest version as `serve` does; the bytes of its files."""
    store = Store(where)
    if not whole:  # the files as found, unhashed (before issue #24)
        plain = store.fetch

        def unchecked(version: Any, rel: str, *, verify: bool = False, whole: bool = False):  # type: ignore[no-untyped-def]
            return plain(version, rel, verify=verify)

        store.fetch = unchecked  # type: ignore[method-assign]
    started = time.perf_counter()
    reader = SnapshotQuery(store)
    try:
        reader.prefetch()
        load_bodies(reader.table("summaries"))
        seconds = time.perf_counter() - started
        version = reader.version
        size = sum((Path(store.fetch(version, rel)).stat().st_size) for rel in version.files())
    finally:
        reader.close()
        store.close()
    return seconds, size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    load(args.store, True)  # warm the page cache
    rounds: dict[str, list[float]] = {"unchecked": [], "checked": []}
    size = 0
    for n in range(args.rounds):
        for kind in ("unchecked", "checked") if n % 2 == 0 else ("checked", "unchecked"):
            seconds, size = load(args.store, kind == "checked")
            rounds[kind].append(seconds)
            print(f"round {n + 1}: {kind} {seconds:.3f} s", file=sys.stderr)
    medians = {k: statistics.median(v) for k, v in rounds.items()}
    extra = medians["checked"] - medians["unchecked"]
    document = {
        "kind": "trust_on_read",
        "command": " ".join([".venv/bin/python", "bench/trust_on_read.py", *sys.argv[1:]]),
        "store": args.store,
        "bytes": size,
        "rounds": rounds,
        "median_seconds": medians,
        "extra_seconds": round(extra, 3),
        "hashed_mb_per_second": round(size / 1e6 / extra, 1) if extra > 0 else None,
    }
    print(
        f"load: {medians['unchecked']:.3f} s unchecked, {medians['checked']:.3f} s with every "
        f"file hashed ({size / 2**20:.0f} MiB): +{extra:.3f} s",
        file=sys.stderr,
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
