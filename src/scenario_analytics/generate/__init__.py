"""Synthetic exports for tests, the sample and benchmarks."""

from scenario_analytics.generate.exports import FORMATS, GenerateReport, generate_exports

__all__ = ["FORMATS", "GenerateReport", "generate_exports"]
