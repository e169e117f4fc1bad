"""Regenerate the broken and hostile export files of this folder (deterministic).

    .venv/bin/python tests/data/bad/make_corpus.py

Each file is small; the big and odd ones (a 50 MB line, thousands of CSV columns) are
made at test time in `tmp_path` by `tests/test_reliability_inputs.py`. What each file
holds and what the job must do with it: README.md here, and the CASES table of that test.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
HEADER = "id,user_id,user_email,scenario_id,score,duration_seconds,is_valid_attempt,created_at"


def record(id: str, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": id,
        "user": {"id": "u1", "email": "u1@acme.com"},
        "scenario": {"id": "sc1", "slug": "one", "name": "One"},
        "score": 80,
        "duration_seconds": 60,
        "is_valid_attempt": True,
        "created_at": "2026-11-01T10:00:00Z",
    }
    base.update(fields)
    return base


def line(id: str, **fields: object) -> str:
    return json.dumps(record(id, **fields))


def csv_row(id: str, score: str = "80", duration: str = "60", user: str = "u1") -> str:
    return f"{id},{user},{user}@acme.com,sc1,{score},{duration},true,2026-11-01T10:00:00Z"


def write(name: str, data: bytes | str) -> None:
    (HERE / name).write_bytes(data.encode() if isinstance(data, str) else data)


def main() -> None:
    rng = random.Random(20261126)
    text = "".join(line(f"t{i}") + "\n" for i in range(200))
    write("truncated.jsonl.gz", gzip.compress(text.encode(), mtime=0)[:-40])
    write("not-gzip.csv.gz", HEADER + "\n" + csv_row("s1") + "\n")
    # Random bytes: they hold 0x1E and bytes that are not UTF-8 in the same row.
    garbage = bytes(rng.randrange(256) for _ in range(4096))
    assert b"\x1e" in garbage
    write("garbage.jsonl", garbage)
    # Text that is not JSON: each non-blank line is one malformed record.
    write(
        "garbage-text.jsonl",
        "hello\n\n<html><body>502 Bad Gateway</body></html>\n"
        + line("g1")
        + '\n\x01\x02\x03\n[1, 2, 3]\n"just a string"\nnull\n{"id": "g2"\n',
    )
    write("not-parquet.parquet", b"PAR1" + bytes(rng.randrange(256) for _ in range(512)) + b"PAR1")
    # Parquet with the right column names and one column of a wrong type per file.
    good = {
        "id": pa.array(["p1", "p2"]),
        "user_id": pa.array(["u1", "u2"]),
        "scenario_id": pa.array(["sc1", "sc1"]),
        "created_at": pa.array(["2026-11-01T10:00:00Z"] * 2),
        "is_valid_attempt": pa.array([True, True]),
        "score": pa.array([80.0, 90.0]),
        "duration_seconds": pa.array([60, 60], pa.int64()),
    }
    wrong = {
        "id": pa.array([1.5, 2.5]),  # an id must be a string or an integer
        "user_id": pa.array([[1], [2]], pa.list_(pa.int64())),
        "scenario_id": pa.array([{"a": 1}, {"a": 2}]),
        "created_at": pa.array([20261101, 20261102], pa.int64()),
        "is_valid_attempt": pa.array(["true", "false"]),
        "score": pa.array(["80", "90"]),
        "duration_seconds": pa.array([True, False]),
    }
    for column, values in wrong.items():
        sink = io.BytesIO()
        pq.write_table(pa.table({**good, column: values}), sink)
        write(f"wrong-type-{column.replace('_', '-')}.parquet", sink.getvalue())
    sink = io.BytesIO()
    dates = pa.array([0, 1], pa.int32()).cast(pa.date32())
    pq.write_table(pa.table({**good, "created_at": dates}), sink)
    write("wrong-type-created-at-date.parquet", sink.getvalue())
    write("missing-columns.csv", "id,user_id,score\ns1,u1,80\n")
    write("members-missing-id.csv", "email,first_name\na@acme.com,A\n")
    write("empty.jsonl", b"")
    write("empty.csv", b"")
    write("empty.json", b"")
    write("empty.parquet", b"")
    write("empty.jsonl.gz", gzip.compress(b"", mtime=0))
    write(
        "invalid-utf8.jsonl",
        (line("i1") + "\n").encode()
        + b'{"id": "i2\xff", "user": {"id": "u1"}}\n'
        + b"\xc3\x28\xa0\xa1\n"
        # Latin-1 text, not UTF-8: a user id of "u" and an e acute.
        + (json.dumps(record("i3", user={"id": "u\xe9"}), ensure_ascii=False) + "\n").encode(
            "latin-1"
        ),
    )
    write(
        "invalid-utf8.csv",
        (HEADER + "\n" + csv_row("c1") + "\n").encode()
        + csv_row("c2", user="caf\xe9").encode("latin-1")
        + b"\n"
        + (csv_row("c3") + "\n").encode(),
    )
    write("invalid-utf8-header.csv", b"id,user_id,scenario_id,sc\xf6re\ns1,u1,sc1,80\n")
    write(
        "nul-bytes.jsonl",
        (line("n1") + "\n").encode()
        + line("n2").encode().replace(b'"n2"', b'"n\x002"')  # a raw NUL: not JSON
        + b"\n\x00\x00\x00\x00\n"
        + (line("n\u00003") + "\n").encode(),  # an escaped NUL: valid JSON, kept as text
    )
    write(
        "nul-bytes.csv",
        (HEADER + "\n" + csv_row("c1") + "\n" + csv_row("c\x002") + "\n").encode(),
    )
    deep = 5_000
    write(
        "deep.jsonl",
        line("d1")
        + "\n"
        + "[" * deep
        + "]" * deep
        + "\n"
        + line("d2")[:-1]
        + ', "extra": '
        + '{"a": ' * deep
        + "1"
        + "}" * deep
        + "}\n"
        + line("d3").replace('"score": 80', '"score": ' + "[" * deep + "]" * deep)
        + "\n"
        + line("d4").replace(
            '{"id": "u1", "email": "u1@acme.com"}', '{"id": ' + "[" * deep + "]" * deep + "}"
        )
        + "\n",
    )
    write("deep.json", "[" + line("d1") + ", " + "[" * deep + "]" * deep + "]")
    numbers = [
        ("x1", '"score": 1e309'),
        ("x2", '"score": NaN'),
        ("x3", '"score": -0'),
        ("x4", '"score": -0.0'),
        ("x5", '"score": Infinity'),
        ("x6", '"score": -Infinity'),
        ("x7", '"score": 1e-400'),
        ("x8", '"score": 100.00000000000000000000001'),
        ("x9", '"score": 1e2'),
        ("x10", '"score": 12345678901234567890123456789'),
        ("x11", '"duration_seconds": 1e309'),
        ("x12", '"duration_seconds": NaN'),
        ("x13", '"duration_seconds": -0'),
        ("x14", '"duration_seconds": -1e-400'),
    ]
    lines = []
    for id, field in numbers:
        key = field.split(":")[0]
        original = '"score": 80' if key == '"score"' else '"duration_seconds": 60'
        lines.append(line(id).replace(original, field))
    write("numbers.jsonl", "\n".join(lines) + "\n")
    write(
        "numbers.csv",
        HEADER
        + "\n"
        + "\n".join(
            [
                csv_row("y1", score="1e309"),
                csv_row("y2", score="NaN"),
                csv_row("y3", score="-0"),
                csv_row("y4", score="-0.0"),
                csv_row("y5", score="inf"),
                csv_row("y6", score="-Infinity"),
                csv_row("y7", score="1e-400"),
                csv_row("y8", score="100.00000000000000000000001"),
                csv_row("y9", score="1E2"),
                csv_row("y10", duration="1e309"),
                csv_row("y11", duration="nan"),
                csv_row("y12", duration="-0"),
                csv_row("y13", duration="-1e-400"),
            ]
        )
        + "\n",
    )


if __name__ == "__main__":
    main()
