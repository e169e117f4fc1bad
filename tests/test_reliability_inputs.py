"""Broken and hostile export files: each ends in a defined outcome, never a traceback.

The corpus is `tests/data/bad/` (small files, made by its `make_corpus.py`); the big and
odd ones (a 50 MB line, thousands of CSV columns) are made here in `tmp_path`. Each file
is put next to one good sessions file and `run` is invoked end to end. The outcome is one
of two, and the CASES table says which:

- `Rows`: the file loads; every non-blank line/row/element is counted, and each is
  accepted or rejected with the expected reason at the expected position (`rejects`);
- `Fails`: the run exits 1 with a message naming the file, and nothing is published.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result
from helpers_ops import snapshot_files

from scenario_analytics.cli import main
from scenario_analytics.publish.store import Store

BAD = Path(__file__).parent / "data" / "bad"
AS_OF = "2026-11-26"
BASE_FILE = "sessions/0-base.jsonl"
BASE = {
    "id": "base1",
    "user": {"id": "u1", "email": "u1@acme.com"},
    "scenario": {"id": "sc1"},
    "score": 80,
    "duration_seconds": 10,
    "is_valid_attempt": True,
    "created_at": "2026-11-01T10:00:00Z",
}


@dataclass(frozen=True)
class Rows:
    """The file is read: `read` rows, rejected ones by position, accepted ones by id."""

    read: int
    rejects: dict[int, str]
    accepted: dict[str, tuple[Decimal, Decimal | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Fails:
    """The file cannot be read: exit 1, this text in the message, nothing published."""

    reason: str


D = Decimal
SCORE_0 = (D("0"), D("60"))
SCORE_100 = (D("100"), D("60"))
DURATION_0 = (D("80"), D("0"))

# corpus file -> (where it goes in the exports folder, outcome)
CASES: dict[str, tuple[str, Rows | Fails]] = {
    "truncated.jsonl.gz": ("sessions/t.jsonl.gz", Fails("compressed data is truncated")),
    "not-gzip.csv.gz": ("sessions/t.csv.gz", Fails("compressed data is truncated or corrupt")),
    "garbage.jsonl": ("sessions/t.jsonl", Fails("holds bytes that are not UTF-8")),
    "not-parquet.parquet": ("sessions/t.parquet", Fails("not a Parquet file")),
    "missing-columns.csv": (
        "sessions/t.csv",
        Fails("required column(s) missing: scenario_id, created_at, is_valid_attempt"),
    ),
    "members-missing-id.csv": ("members.csv", Fails("required column(s) missing: id")),
    "empty.csv": ("sessions/t.csv", Fails("Empty CSV file")),
    "empty.json": ("sessions/t.json", Fails("not valid JSON")),
    "empty.parquet": ("sessions/t.parquet", Fails("not a Parquet file")),
    "invalid-utf8-header.csv": ("sessions/t.csv", Fails("the CSV header is not valid UTF-8")),
    # Text that is not JSON: every non-blank line is one rejected record, in place.
    "garbage-text.jsonl": (
        "sessions/t.jsonl",
        Rows(8, dict.fromkeys([1, 3, 5, 6, 7, 8, 9], "malformed_record"), {"g1": (D(80), D(60))}),
    ),
    "empty.jsonl": ("sessions/t.jsonl", Rows(0, {})),
    "empty.jsonl.gz": ("sessions/t.jsonl.gz", Rows(0, {})),
    "invalid-utf8.jsonl": (
        "sessions/t.jsonl",
        Rows(
            4,
            {2: "malformed_record", 3: "malformed_record", 4: "malformed_record"},
            {"i1": (D(80), D(60))},
        ),
    ),
    "invalid-utf8.csv": (
        "sessions/t.csv",
        Rows(3, {3: "malformed_record"}, {"c1": (D(80), D(60)), "c3": (D(80), D(60))}),
    ),
    # A raw NUL inside a JSON line is not JSON; an escaped one is text like any other.
    "nul-bytes.jsonl": (
        "sessions/t.jsonl",
        Rows(
            4,
            {2: "malformed_record", 3: "malformed_record"},
            {"n1": (D(80), D(60)), "n\x003": (D(80), D(60))},
        ),
    ),
    "nul-bytes.csv": (
        "sessions/t.csv",
        Rows(2, {}, {"c1": (D(80), D(60)), "c\x002": (D(80), D(60))}),
    ),
    "deep.jsonl": (
        "sessions/t.jsonl",
        Rows(
            5,
            {2: "malformed_record", 4: "bad_score", 5: "missing_user_id"},
            {"d1": (D(80), D(60)), "d2": (D(80), D(60))},
        ),
    ),
    "deep.json": ("sessions/t.json", Rows(2, {2: "malformed_record"}, {"d1": (D(80), D(60))})),
    # 1e309, NaN, +-Infinity: bad values. -0 is zero. Beyond 20 decimal places a number
    # is rounded once before the range check (docs/DECISIONS.md), so 1e-400 is 0 and
    # 100.00000000000000000000001 is 100.
    "numbers.jsonl": (
        "sessions/t.jsonl",
        Rows(
            14,
            {
                1: "bad_score",
                2: "bad_score",
                5: "bad_score",
                6: "bad_score",
                10: "bad_score",
                11: "bad_duration",
                12: "bad_duration",
            },
            {
                "x3": SCORE_0,
                "x4": SCORE_0,
                "x7": SCORE_0,
                "x8": SCORE_100,
                "x9": SCORE_100,
                "x13": DURATION_0,
                "x14": DURATION_0,
            },
        ),
    ),
    "numbers.csv": (
        "sessions/t.csv",
        Rows(
            13,
            {
                2: "bad_score",
                3: "bad_score",
                6: "bad_score",
                7: "bad_score",
                11: "bad_duration",
                12: "bad_duration",
            },
            {
                "y3": SCORE_0,
                "y4": SCORE_0,
                "y7": SCORE_0,
                "y8": SCORE_100,
                "y9": SCORE_100,
                "y12": DURATION_0,
                "y13": DURATION_0,
            },
        ),
    ),
    "wrong-type-id.parquet": ("sessions/t.parquet", Rows(2, dict.fromkeys([1, 2], "missing_id"))),
    "wrong-type-user-id.parquet": (
        "sessions/t.parquet",
        Rows(2, dict.fromkeys([1, 2], "missing_user_id")),
    ),
    "wrong-type-scenario-id.parquet": (
        "sessions/t.parquet",
        Rows(2, dict.fromkeys([1, 2], "missing_scenario_id")),
    ),
    "wrong-type-created-at.parquet": (
        "sessions/t.parquet",
        Rows(2, dict.fromkeys([1, 2], "bad_created_at")),
    ),
    "wrong-type-created-at-date.parquet": (
        "sessions/t.parquet",
        Rows(2, dict.fromkeys([1, 2], "bad_created_at")),
    ),
    "wrong-type-score.parquet": ("sessions/t.parquet", Rows(2, dict.fromkeys([1, 2], "bad_score"))),
    "wrong-type-duration-seconds.parquet": (
        "sessions/t.parquet",
        Rows(2, dict.fromkeys([1, 2], "bad_duration")),
    ),
    "wrong-type-is-valid-attempt.parquet": (
        "sessions/t.parquet",
        Rows(2, dict.fromkeys([1, 2], "bad_is_valid_attempt")),
    ),
}


def _exports(root: Path) -> Path:
    exports = root / "exports"
    (exports / "sessions").mkdir(parents=True)
    (exports / BASE_FILE).write_text(json.dumps(BASE) + "\n")
    return exports


def _run(exports: Path, store: Path) -> Result:
    return CliRunner().invoke(
        main,
        [
            "run",
            "--exports",
            str(exports),
            "--snapshots",
            str(store),
            "--as-of",
            AS_OF,
            "--max-reject-ratio",
            "1",
        ],
    )


def _assert_no_traceback(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout


def _assert_fails(result: Result, store: Path, rel: str, reason: str) -> None:
    _assert_no_traceback(result)
    assert result.exit_code == 1, result.stderr
    assert result.stdout == ""
    (error,) = [line for line in result.stderr.splitlines() if "error:" in line]
    assert error.startswith(f"scenario-analytics: error: cannot read export file {rel}: ")
    assert reason in error
    assert Store(store).dates() == [] and not (store / "latest.json").exists()


def _assert_rows(result: Result, store: Path, rel: str, expected: Rows) -> None:
    _assert_no_traceback(result)
    assert result.exit_code == 0, result.stderr
    # The published snapshot's files, through its store (the session partitions too).
    files = snapshot_files(store / f"snapshot_date={AS_OF}")
    manifest = json.loads(files["manifest.json"].read_text())
    (entry,) = [i for i in manifest["inputs"] if i["path"] == rel]
    assert entry["rows_read"] == expected.read
    assert entry["rows_rejected"] == len(expected.rejects)
    assert entry["rows_accepted"] == expected.read - len(expected.rejects)
    rejects = duckdb.execute(
        "SELECT position, reason, raw IS NOT NULL FROM read_parquet(?) WHERE source_file = ? "
        "ORDER BY position",
        [str(files["rejects.parquet"]), rel],
    ).fetchall()
    assert {int(p): r for p, r, _ in rejects} == expected.rejects
    assert all(has_raw for _p, _r, has_raw in rejects)
    partitions = [
        str(path) for name, path in files.items()
        if name.startswith("sessions/") and name.endswith(".parquet")
    ]  # fmt: skip
    assert partitions  # the base file's session at least
    graded = duckdb.execute(
        "SELECT session_id, score, duration_seconds FROM read_parquet(?) WHERE session_id <> ?",
        [partitions, BASE["id"]],
    ).fetchall()
    assert {sid: (score, duration) for sid, score, duration in graded} == expected.accepted


def test_every_corpus_file_has_a_case() -> None:
    files = {p.name for p in BAD.iterdir() if p.suffix not in {".py", ".md"}}
    assert files == set(CASES)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("name", list(CASES))
def test_corpus_file_has_a_defined_outcome(tmp_path: Path, name: str) -> None:
    rel, outcome = CASES[name]
    exports = _exports(tmp_path)
    (exports / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BAD / name, exports / rel)
    store = tmp_path / "store"
    result = _run(exports, store)
    if isinstance(outcome, Fails):
        _assert_fails(result, store, rel, outcome.reason)
    else:
        _assert_rows(result, store, rel, outcome)


@pytest.mark.parametrize("name", [n for n, (_r, o) in CASES.items() if isinstance(o, Fails)])
def test_validate_names_the_unreadable_file(tmp_path: Path, name: str) -> None:
    rel, outcome = CASES[name]
    assert isinstance(outcome, Fails)
    exports = _exports(tmp_path)
    (exports / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BAD / name, exports / rel)
    result = CliRunner().invoke(main, ["validate", "--exports", str(exports), "--json"])
    _assert_no_traceback(result)
    assert result.exit_code == 1
    assert f"cannot read export file {rel}: " in result.stderr
    assert outcome.reason in result.stderr


# --- generated at run time: too big or too odd to commit ------------------------------

FIFTY_MB = 50 << 20


@pytest.mark.parametrize("rel", ["sessions/t.jsonl", "sessions/t.csv", "sessions/t.jsonl.gz"])
@pytest.mark.parametrize("kind", ["record", "garbage"])
def test_a_50_mb_line_fails_naming_the_file(tmp_path: Path, rel: str, kind: str) -> None:
    """One line longer than the 16 MiB read block: no record is that big, so the file is
    not what its name says (binary data, or records without line breaks)."""
    exports = _exports(tmp_path)
    good = json.dumps({**BASE, "id": "s1"})
    if kind == "record":
        big = json.dumps({**BASE, "id": "s2", "pad": "x" * FIFTY_MB})
    else:
        big = "y" * FIFTY_MB
    if ".csv" in rel:
        header = "id,user_id,scenario_id,created_at,is_valid_attempt,score"
        good = "s1,u1,sc1,2026-11-01T10:00:00Z,true,80"
        if kind == "record":
            big = "s2,u1,sc1,2026-11-01T10:00:00Z,true,80,x" + "x" * FIFTY_MB
        text = f"{header}\n{good}\n{big}\n{good.replace('s1', 's3')}\n"
    else:
        text = f"{good}\n{big}\n{good.replace('s1', 's3')}\n"
    data = text.encode()
    (exports / rel).write_bytes(
        gzip.compress(data, compresslevel=1) if rel.endswith(".gz") else data
    )
    store = tmp_path / "store"
    result = _run(exports, store)
    _assert_fails(result, store, rel, "a line is longer than 16 MiB")


def test_csv_with_thousands_of_columns(tmp_path: Path) -> None:
    """Unknown columns are ignored however many; a row of the wrong width is one reject."""
    exports = _exports(tmp_path)
    extra = 3000
    header = "id,user_id,scenario_id,created_at,is_valid_attempt,score," + ",".join(
        f"c{i}" for i in range(extra)
    )
    filler = ",".join(str(i) for i in range(extra))
    rows = [f"w{r},u{r},sc1,2026-11-01T10:00:00Z,true,{50 + r}," + filler for r in range(30)]
    rows.insert(10, "w-short,u1,sc1")  # line 12: wrong column count
    (exports / "sessions" / "wide.csv").write_text("\n".join([header, *rows]) + "\n")
    store = tmp_path / "store"
    result = _run(exports, store)
    accepted = {f"w{r}": (D(50 + r), None) for r in range(30)}
    _assert_rows(result, store, "sessions/wide.csv", Rows(31, {12: "malformed_record"}, accepted))


def test_csv_with_thousands_of_columns_and_a_required_one_missing(tmp_path: Path) -> None:
    exports = _exports(tmp_path)
    header = "id,user_id,created_at,is_valid_attempt," + ",".join(f"c{i}" for i in range(5000))
    (exports / "sessions" / "wide.csv").write_text(header + "\n")
    store = tmp_path / "store"
    result = _run(exports, store)
    _assert_fails(result, store, "sessions/wide.csv", "required column(s) missing: scenario_id")
