"""Scenario analytics: Exec session exports in, API-ready summary snapshots out."""

__version__ = "0.1.0"
