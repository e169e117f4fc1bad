"""The parts of the benchmark harness; bench/run.py is the entry point (see bench/README.md)."""
