# Two commands do all the set-up on a fresh clone: `make test` and `make run`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
# Extra arguments for bench/run.py, e.g. make bench BENCH_ARGS="--quick"
BENCH_ARGS ?=

.PHONY: test check run lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# --no-compile: pip would byte-compile every installed module (pyspark's thousands: ~20 s
# of a fresh clone's set-up); Python compiles what is imported, when it is first imported.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test,spark]'
	touch $(STAMP) $@

# The suite on both cores; the Spark tests together on one worker (one JVM), the wheel
# tests together (one build): tests/conftest.py names the groups.
PYTEST_PARALLEL := -n 2 --dist loadgroup

## make test: lint, strict type checks, the layering contracts and the whole test suite
## (Spark and the S3 servers included), the checks beside the tests: 6-7 minutes here,
## ending with the 25 slowest tests
test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) --durations=25

## make check: the inner loop, under a minute: lint, types, layering, and the fast tests
## (no Spark, no S3 server, no subprocess runs: `-m "not slow and not spark and not s3"`)
check: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow and not spark and not s3"

## make run: the nightly job on the committed sample exports, a query of the result, and
## the serve command to try
run: $(STAMP)
	$(BIN)/scenario-analytics run --job jobs/sample.toml --as-of 2026-11-26
	$(BIN)/scenario-analytics query --snapshots snapshots procurement-discovery
	@echo
	@echo "Serve both endpoints over HTTP from this store (no keys: loopback only):"
	@echo "  $(BIN)/scenario-analytics serve --snapshots snapshots --no-auth"
	@echo "  curl http://127.0.0.1:8080/rest/v1/scenarios/procurement-discovery/analytics/summary"
	@echo "  curl 'http://127.0.0.1:8080/rest/v1/scenarios/procurement-discovery/analytics/participants?page_size=2'"

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e '.[bench]'
	touch $(STAMP) $@

## make bench: heavy measurements (not part of make test): datasets 1m, 10m, 2m-jsonl,
## 3 rounds (1.5-2 hours here, estimated), then docs/PERFORMANCE.md from the new results
bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) snapshots build .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
