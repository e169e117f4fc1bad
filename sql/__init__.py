"""The versioned SQL of the job, installed as package data (scenario_analytics.sql)."""
