"""The `--requests` line protocol: JSON requests in, one response body per line out.

Input: one JSON object per line, `{"scenario_id": ..., <filter parameters>}`, answered
as the summary endpoint; with `"endpoint": "participants"` (and optionally `sorting`,
`page`, `page_size`), as the participants endpoint (`"endpoint": "summary"` is the
default). Blank lines are skipped; a byte order mark is tolerated. Output: one line per request, in
order: the API's response body or its error body. A line that is not such an object
gets an `invalid_parameter` error body naming its line number, and the batch goes on.
Bodies never hold a raw line break (`query.error_body` escapes U+0085, U+2028, U+2029),
so the output splits at `\\n` into exactly one body per request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from scenario_analytics.serve.query import SnapshotQuery, error_body


def answer_lines(reader: SnapshotQuery, lines: Iterable[bytes]) -> Iterator[str]:
    """One body per non-blank line of `lines` (bytes, as read from a file), in order.

    Example (what `scenario-analytics query --requests requests.jsonl` does):

        with SnapshotQuery(Path("snapshots")) as reader, open("requests.jsonl", "rb") as f:
            for body in answer_lines(reader, f):
                print(body)
    """
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        request: object = None
        try:
            # utf-8-sig: a byte order mark is tolerated, as in CSV exports.
            request = json.loads(raw.decode("utf-8-sig"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            pass
        scenario = request.get("scenario_id") if isinstance(request, dict) else None
        # Ids may be JSON integers in the exports, so they may be in requests too.
        if isinstance(scenario, int) and not isinstance(scenario, bool):
            scenario = str(scenario)
        if not isinstance(request, dict) or not isinstance(scenario, str):
            message = f"line {number}: not a JSON object with a scenario_id (string or integer)"
            yield error_body("invalid_request", "invalid_parameter", message)
            continue
        endpoint = request.get("endpoint", "summary")
        params = {k: v for k, v in request.items() if k not in ("scenario_id", "endpoint")}
        if endpoint == "participants":
            yield reader.participants(scenario, params).body
        elif endpoint == "summary":
            yield reader.answer(scenario, params).body
        else:
            message = f'line {number}: endpoint must be "summary" or "participants"'
            yield error_body("invalid_request", "invalid_parameter", message)
