"""The running bot's pulse (table ``heartbeat``), written by the bot and read by
``zicha status`` and ``zicha restore`` from other processes."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils


@dataclass(frozen=True, slots=True)
class HeartbeatRow:
    pid: int
    mode: str
    beat_at: str  # UTC ISO 8601
    stopped_at: str | None
    scheduler: str


def beat(db: sqlite_utils.Database, *, pid: int, mode: str, now: str, scheduler: str) -> None:
    """Renew the bot's row; ``started_at`` stays while the same process beats."""
    with db.atomic():
        db.execute(
            """
            INSERT INTO heartbeat (role, pid, mode, started_at, beat_at, stopped_at, scheduler)
            VALUES ('bot', ?, ?, ?, ?, NULL, ?)
            ON CONFLICT (role) DO UPDATE SET
                pid = excluded.pid, mode = excluded.mode, beat_at = excluded.beat_at,
                stopped_at = NULL, scheduler = excluded.scheduler,
                started_at = CASE WHEN heartbeat.pid = excluded.pid THEN heartbeat.started_at
                                  ELSE excluded.started_at END
            """,
            [pid, mode, now, now, scheduler],
        )


def mark_stopped(db: sqlite_utils.Database, *, pid: int, now: str, scheduler: str) -> None:
    """A clean shutdown of process ``pid`` (another process's row is left alone)."""
    with db.atomic():
        db.execute(
            "UPDATE heartbeat SET stopped_at = ?, scheduler = ? WHERE role = 'bot' AND pid = ?",
            [now, scheduler, pid],
        )


def bot_heartbeat(db: sqlite_utils.Database) -> HeartbeatRow | None:
    """The bot's row; None if it never ran here (or this database has no heartbeat table)."""
    try:
        rows = list(db.query("SELECT pid, mode, beat_at, stopped_at, scheduler FROM heartbeat WHERE role = 'bot'"))
    except sqlite3.OperationalError:
        return None
    return HeartbeatRow(**rows[0]) if rows else None


def running_bot_in_file(path: Path) -> HeartbeatRow | None:
    """The heartbeat of a bot not stopped cleanly, read from the file at ``path`` without
    changing it; None when there is none, or the file has no heartbeat table or is damaged."""
    try:
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            row = bot_heartbeat(sqlite_utils.Database(conn))
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return row if row is not None and row.stopped_at is None else None
