from scenario_analytics.cli import main

main()
