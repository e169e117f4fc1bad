"""The package list, which pyproject.toml alone cannot give: every package under src/
plus `scenario_analytics.sql`, the top-level sql/ folder (see `package-dir` there)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages("src"), "scenario_analytics.sql"])
