"""Persistence for Zicha: one SQLite database, accessed through sqlite-utils."""
