"""The database file as a whole: integrity checks, counting tables, a consistent copy."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils


@dataclass(frozen=True, slots=True)
class FileCheck:
    integrity: tuple[str, ...]  # ("ok",) when intact, else SQLite's first complaints
    tables: frozenset[str]


def check_file(path: Path) -> FileCheck:
    """Run SQLite's integrity check on the file at ``path`` (opened read-only) and list its
    tables. Raises ``sqlite3.DatabaseError`` when it is not a readable SQLite database."""
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=10)
    try:
        integrity = tuple(row[0] for row in conn.execute("PRAGMA integrity_check").fetchall())
        if integrity != ("ok",):
            return FileCheck(integrity, frozenset())
        tables = frozenset(row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    finally:
        conn.close()
    return FileCheck(integrity, tables)


def copy_file(source: Path, target: Path, *, self_contained: bool = True) -> int:
    """Copy the live database ``source`` to ``target`` in one read snapshot and (with
    ``self_contained``) make the copy one file (journal mode DELETE). Returns how many
    tables it has. Raises ``sqlite3.DatabaseError``."""
    src = sqlite3.connect(str(source), timeout=10)
    dst = sqlite3.connect(str(target), timeout=10)
    try:
        src.backup(dst, pages=-1)  # the whole database in one step, i.e. one read snapshot
        if self_contained:
            dst.execute("PRAGMA journal_mode=DELETE")
        return int(dst.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
    finally:
        dst.close()
        src.close()


def table_count(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])


def quick_check(db: sqlite_utils.Database) -> str:
    """``"ok"``, or SQLite's first complaint."""
    return str(db.execute("PRAGMA quick_check").fetchone()[0])
