"""Backups with SQLite's online backup API, and restoring one.

``backup`` copies the live database page by page inside one read transaction: in WAL
mode that neither blocks the bot's writes nor sees half of one, so the copy is the
database as it stood at one moment. The copy is written next to its destination,
checked with ``PRAGMA integrity_check``, switched to a single self-contained file
(journal mode DELETE) and only then renamed into place.

``restore`` checks the backup first (integrity, and that it is a Zicha database), keeps a
safety copy of the current database, and copies the backup in through the same API, so
the live file and its ``-wal`` stay consistent. It refuses while the bot's heartbeat says
it is running, unless forced.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.files import private_file
from storage.maintenance import check_file, copy_file

REQUIRED_TABLES = ("_sqlite_migrations", "institutions", "answers")


class BackupError(RuntimeError):
    """The backup or restore cannot be done; the message says what to fix."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    tables: int


def integrity_problem(path: Path) -> str | None:
    """None when ``path`` is an intact Zicha database, else what is wrong with it."""
    if not path.is_file():
        return f"{path} does not exist"
    try:
        checked = check_file(path)
    except sqlite3.DatabaseError as exc:
        return f"{path} is not a readable SQLite database ({exc})"
    if checked.integrity != ("ok",):
        return f"{path} fails SQLite's integrity check: {'; '.join(checked.integrity[:3])}"
    missing = [t for t in REQUIRED_TABLES if t not in checked.tables]
    if missing:
        return f"{path} is not a Zicha database (no table {', '.join(missing)})"
    return None


def default_backup_name(now: dt.datetime | None = None, tz: dt.tzinfo | None = None) -> str:
    """``zicha-YYYYMMDD-HHMMSS.db`` in local time (``tz``: ZICHA_TIMEZONE), the time every
    date users see is in; UTC only when no zone is given."""
    now = now or dt.datetime.now(tz or dt.timezone.utc)
    return f"zicha-{now:%Y%m%d-%H%M%S}.db"


def backup(db_path: Path, dest: Path, *, force: bool = False, tz: dt.tzinfo | None = None) -> BackupResult:
    """Copy the live database at ``db_path`` to ``dest`` (a file, or a folder for a name
    dated in the time zone ``tz``)."""
    if not db_path.is_file():
        raise BackupError(f"There is no database at {db_path} to back up (check ZICHA_DB).")
    if dest.is_dir():
        dest = dest / default_backup_name(tz=tz)
    if dest.resolve() == db_path.resolve():
        raise BackupError("The backup must not overwrite the database itself: give another PATH.")
    if not dest.parent.is_dir():
        raise BackupError(f"The folder {dest.parent} does not exist: create it or give another PATH.")
    if dest.exists() and not force:
        raise BackupError(f"{dest} already exists: give a new name, or --force to replace it.")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        private_file(partial)  # 0600 whatever the umask: a backup holds everything
        tables = copy_file(db_path, partial)
    except sqlite3.DatabaseError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"Could not back up {db_path}: {exc}.") from None
    problem = integrity_problem(partial)
    if problem is not None:
        partial.unlink(missing_ok=True)
        raise BackupError(f"The copy failed its check ({problem}); the database itself may be damaged.")
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, dest)
    return BackupResult(dest, dest.stat().st_size, tables)


def restore(backup_path: Path, db_path: Path, *, tz: dt.tzinfo | None = None) -> Path | None:
    """Replace the database at ``db_path`` by the backup; returns the safety copy of the
    replaced database (None if there was none), named with the local time in ``tz``.
    The caller checks the bot is stopped."""
    problem = integrity_problem(backup_path)
    if problem is not None:
        raise BackupError(f"Not restoring: {problem}.")
    if backup_path.resolve() == db_path.resolve():
        raise BackupError("The backup is the database itself: nothing to restore.")
    safety: Path | None = None
    if db_path.exists() and db_path.stat().st_size > 0:
        stamp = dt.datetime.now(tz or dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        safety = db_path.with_name(f"{db_path.name}.before-restore-{stamp}")
        try:
            backup(db_path, safety, force=True)
        except BackupError:
            # A damaged database cannot be copied page-perfectly; keep its bytes as they are.
            private_file(safety)
            safety.write_bytes(db_path.read_bytes())
            db_path.unlink()
            for suffix in ("-wal", "-shm"):
                Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    try:
        private_file(db_path)
        copy_file(backup_path, db_path, self_contained=False)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"Could not restore into {db_path}: {exc}.") from None
    return safety
