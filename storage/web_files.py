"""The bytes of evidence files uploaded in the web chat (``web_files``).

The evidence row itself is written by the workspace, as for a Telegram photo; its
``file_id`` is the ``ref`` here. The content is kept first and dropped again if the
conversation did not take the file (a limit, a frozen self-check), so nothing refused stays.
"""

from __future__ import annotations

import hashlib
import secrets

import sqlite_utils

from storage.db import utcnow

PREFIX = "web:"


def new_ref() -> str:
    return PREFIX + secrets.token_urlsafe(24)


def keep(db: sqlite_utils.Database, ref: str, content: bytes) -> str:
    """Keep ``content`` under ``ref``; returns its SHA-256 (hex)."""
    digest = hashlib.sha256(content).hexdigest()
    with db.atomic():
        db.execute(
            "INSERT INTO web_files (ref, sha256, content, created_at) VALUES (?, ?, ?, ?)", [ref, digest, content, utcnow()]
        )
    return digest


def drop_unless_used(db: sqlite_utils.Database, ref: str) -> bool:
    """Delete the content kept under ``ref`` unless an evidence row names it; True if kept."""
    with db.atomic():
        used = db.execute("SELECT 1 FROM evidence WHERE file_id = ?", [ref]).fetchone() is not None
        if not used:
            db.execute("DELETE FROM web_files WHERE ref = ?", [ref])
    return used


def content_of(db: sqlite_utils.Database, ref: str) -> bytes | None:
    row = db.execute("SELECT content FROM web_files WHERE ref = ?", [ref]).fetchone()
    return bytes(row[0]) if row else None


def count(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT count(*) FROM web_files").fetchone()[0])
