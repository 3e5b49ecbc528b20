"""Persistence for Zicha: one SQLite database, accessed through sqlite-utils.

Only this package speaks SQL (tests/test_layout_rules.py checks the rest of ``bot/``), and
it hands out typed rows: frozen dataclasses, or NamedTuples for the national-size streams
of the regulators' reports. Reads go through sqlite-utils' ``db.query`` and
``table.rows_where``, except the few made on every update (membership, the institution,
the self-check and its answers, FSM state): ``db.query`` guards each statement with a
SAVEPOINT and its RELEASE, two more statements on the answer step's hot path, so those
use ``db.execute`` with their columns listed and build their rows from the tuples.
"""
