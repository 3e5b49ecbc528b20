"""Opening the database: one SQLite file, WAL mode, schema migrated at start."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlite_utils

from storage.migrations import migrations


class DatabaseError(RuntimeError):
    """The database file cannot be used; the message says what to fix."""


def utcnow() -> str:
    """Timestamps are stored as ISO 8601 in UTC; they are shown in ZICHA_TIMEZONE."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def query_rows(db: sqlite_utils.Database, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    cursor = db.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def query_one(db: sqlite_utils.Database, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
    rows = query_rows(db, sql, params)
    return rows[0] if rows else None


def open_db(path: str | os.PathLike[str] = "zicha.db", *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database at ``path``.

    ``":memory:"`` gives a private in-memory database, handy for tests.
    """
    if str(path) != ":memory:":
        parent = Path(path).expanduser().resolve().parent
        if not parent.is_dir():
            raise DatabaseError(f"The folder for the database does not exist: {parent} (set ZICHA_DB to a writable path)")
    try:
        # check_same_thread=False: the console chat and benchmarks hand the connection
        # between the event loop thread and worker threads, never concurrently.
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
        db = sqlite_utils.Database(conn)
        if str(path) != ":memory:":
            db.enable_wal()
        # WAL with synchronous=NORMAL is durable across application crashes (only an OS
        # crash can lose the last transactions) and keeps a commit in the tens of µs.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=10000")
        if migrate:
            migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"Cannot use the database file {path}: {exc}") from exc
    return db
