"""The HTTP server (`scenario-analytics serve`): the summary and participants endpoints
over HTTP, answered from the snapshot store through `serve/` (the same bytes as `query`).

    http.py     the app: routes, query-string parsing, auth, caching, errors, access log
    served.py   which snapshot is served, switching without a restart, reader pools
    keys.py     API keys (only their SHA-256 hashes are stored)
    metrics.py  Prometheus metrics    logs.py  JSON log lines    openapi.py  parameter schemas
    server.py   uvicorn, signals and exit codes

Nothing here can change what a run writes, so the code digest leaves it out
(`publish/fingerprint.py`).
"""
