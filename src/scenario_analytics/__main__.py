"""`python -m scenario_analytics`, and the script `spark-submit` runs (docs/ENGINES.md):
its path is `python -c 'import scenario_analytics.__main__ as m; print(m.__file__)'`,
which imports it without running the command."""

from scenario_analytics.cli import main

if __name__ == "__main__":
    main()
