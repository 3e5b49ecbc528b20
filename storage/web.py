"""The web channel's storage: web people, server-side sessions, personal sign-in links.

Identity: a person who joins on the web gets a row in ``users`` with a negative id and
``channel = 'web'``. Telegram user ids are positive, so the two ranges never meet, and
``members``, ``answers.answered_by``, history, removal and every access check take a web
person exactly as a Telegram user (``get_membership(db, user_id)``), without a second
membership table or a migration of the existing keys.

Secrets (session cookies, sign-in links) are random tokens kept only as SHA-256: a copy of
the database does not let anyone sign in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.db import utcnow


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


# --- people ------------------------------------------------------------------------------


def create_web_user(db: sqlite_utils.Database, name: str, email: str | None, language: str | None) -> int:
    """A new web person; returns their (negative) user id."""
    now = utcnow()
    with db.atomic():
        row = next(db.query("SELECT min(telegram_id) AS m FROM users"), None)
        lowest = row["m"] if row and row["m"] is not None else 0
        user_id = min(lowest, 0) - 1
        db.execute(
            "INSERT INTO users (telegram_id, first_name, username, language, created_at, updated_at, channel, email) "
            "VALUES (?, ?, NULL, ?, ?, ?, 'web', ?)",
            [user_id, name, language, now, now, email],
        )
    return user_id


def get_web_user(db: sqlite_utils.Database, user_id: int) -> dict[str, Any] | None:
    return next(db.query(
        "SELECT telegram_id AS id, first_name AS name, email, language, channel FROM users "
        "WHERE telegram_id = ? AND channel = 'web'",
        [user_id]), None)


def email_of(db: sqlite_utils.Database, user_id: int) -> str | None:
    row = next(db.query("SELECT email FROM users WHERE telegram_id = ? AND channel = 'web'", [user_id]), None)
    return row["email"] if row else None


def web_members_by_email(db: sqlite_utils.Database, email: str, *, limit: int) -> list[dict[str, Any]]:
    """The web people who gave this e-mail address (any case), are still members and have a
    link that was not revoked (the operator revokes on purpose: ``zicha web-revoke``), with
    their institution's name: at most ``limit``, the most recent first."""
    return list(db.query(
        "SELECT u.telegram_id AS id, u.first_name AS name, u.email, u.language, i.name AS institution "
        "FROM users u JOIN members m ON m.telegram_id = u.telegram_id JOIN institutions i ON i.id = m.institution_id "
        "WHERE u.channel = 'web' AND lower(u.email) = lower(?) "
        "AND EXISTS (SELECT 1 FROM web_links l WHERE l.user_id = u.telegram_id AND l.revoked_at IS NULL) "
        "ORDER BY u.telegram_id LIMIT ?",
        [email, limit]))


def is_web_user(user_id: int) -> bool:
    return user_id < 0


# --- sessions ----------------------------------------------------------------------------


@dataclass
class Session:
    token_sha256: str
    user_id: int | None
    csrf: str
    data: dict[str, Any]
    created_at: str
    seen_at: str
    expires_at: str


def create_session(
    db: sqlite_utils.Database,
    *,
    user_id: int | None,
    lifetime: dt.timedelta,
    data: dict[str, Any] | None = None,
    csrf: str | None = None,
) -> tuple[str, Session]:
    """A new session; returns (cookie token, session). Only the token's hash is stored.
    ``csrf``: the form token it takes over (else a new random one)."""
    token = new_token()
    now = dt.datetime.now(dt.timezone.utc)
    session = Session(token_hash(token), user_id, csrf or secrets.token_urlsafe(32), dict(data or {}), _iso(now), _iso(now), _iso(now + lifetime))
    with db.atomic():
        db.execute(
            "INSERT INTO web_sessions (token_sha256, user_id, csrf, data, created_at, seen_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [session.token_sha256, user_id, session.csrf, json.dumps(session.data), session.created_at, session.seen_at, session.expires_at],
        )
    return token, session


def load_session(db: sqlite_utils.Database, token: str, *, idle: dt.timedelta) -> Session | None:
    """The live session of a cookie token, its idle clock renewed; None if unknown or expired
    (an expired one is deleted)."""
    digest = token_hash(token)
    row = next(db.query("SELECT * FROM web_sessions WHERE token_sha256 = ?", [digest]), None)
    if row is None:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    if row["expires_at"] <= _iso(now) or row["seen_at"] <= _iso(now - idle):
        delete_session(db, digest)
        return None
    with db.atomic():
        db.execute("UPDATE web_sessions SET seen_at = ? WHERE token_sha256 = ?", [_iso(now), digest])
    return Session(digest, row["user_id"], row["csrf"], json.loads(row["data"]), row["created_at"], _iso(now), row["expires_at"])


def save_session_data(db: sqlite_utils.Database, session: Session) -> None:
    with db.atomic():
        db.execute(
            "UPDATE web_sessions SET data = ? WHERE token_sha256 = ?", [json.dumps(session.data), session.token_sha256]
        )


def delete_session(db: sqlite_utils.Database, token_sha256: str) -> None:
    with db.atomic():
        db.execute("DELETE FROM web_sessions WHERE token_sha256 = ?", [token_sha256])


def end_sessions_of(db: sqlite_utils.Database, user_id: int) -> int:
    """Sign a person out everywhere (removal, a revoked link)."""
    with db.atomic():
        cursor = db.execute("DELETE FROM web_sessions WHERE user_id = ?", [user_id])
    return cursor.rowcount


def purge_expired_sessions(db: sqlite_utils.Database, *, idle: dt.timedelta) -> int:
    now = dt.datetime.now(dt.timezone.utc)
    with db.atomic():
        cursor = db.execute(
            "DELETE FROM web_sessions WHERE expires_at <= ? OR seen_at <= ?", [_iso(now), _iso(now - idle)]
        )
    return cursor.rowcount


def count_sessions(db: sqlite_utils.Database) -> int:
    row = next(db.query("SELECT count(*) AS n FROM web_sessions"), None)
    return int(row["n"]) if row else 0


# --- personal sign-in links ---------------------------------------------------------------


def create_link(db: sqlite_utils.Database, user_id: int) -> str:
    """A new personal sign-in token for a web person (shown once; only its hash is kept)."""
    token = new_token()
    with db.atomic():
        db.execute(
            "INSERT INTO web_links (token_sha256, user_id, created_at) VALUES (?, ?, ?)",
            [token_hash(token), user_id, utcnow()],
        )
    return token


@dataclass(frozen=True)
class Link:
    user_id: int
    created_at: str
    revoked: bool

    def expired(self, max_age: dt.timedelta | None, now: dt.datetime | None = None) -> bool:
        if max_age is None:
            return False
        made = dt.datetime.fromisoformat(self.created_at)
        if made.tzinfo is None:
            made = made.replace(tzinfo=dt.timezone.utc)
        return made + max_age <= (now or dt.datetime.now(dt.timezone.utc))


def find_link(db: sqlite_utils.Database, token: str) -> Link | None:
    """The sign-in link of a token, revoked or not; None if there is none."""
    row = next(db.query("SELECT user_id, created_at, revoked_at FROM web_links WHERE token_sha256 = ?", [token_hash(token)]), None)
    return Link(int(row["user_id"]), row["created_at"], row["revoked_at"] is not None) if row else None


def user_of_link(db: sqlite_utils.Database, token: str, *, max_age: dt.timedelta | None = None) -> int | None:
    """The person a sign-in token belongs to, or None if unknown, revoked or (given
    ``max_age``) older than that."""
    link = find_link(db, token)
    return link.user_id if link is not None and not link.revoked and not link.expired(max_age) else None


def mark_link_used(db: sqlite_utils.Database, token: str) -> None:
    with db.atomic():
        db.execute("UPDATE web_links SET used_at = ? WHERE token_sha256 = ?", [utcnow(), token_hash(token)])


def revoke_links(db: sqlite_utils.Database, user_id: int) -> int:
    """Revoke every sign-in link of a person and end their sessions; returns links revoked."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE web_links SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", [utcnow(), user_id]
        )
        end_sessions_of(db, user_id)
    return cursor.rowcount


def links_of(db: sqlite_utils.Database, user_id: int) -> list[dict[str, Any]]:
    return list(db.query( "SELECT id, created_at, used_at, revoked_at FROM web_links WHERE user_id = ? ORDER BY id", [user_id]))


def set_web_language(db: sqlite_utils.Database, user_id: int, language: str) -> None:
    """The language a web person chose (``set_user_language`` would reset their name)."""
    with db.atomic():
        db.execute("UPDATE users SET language = ?, updated_at = ? WHERE telegram_id = ?", [language, utcnow(), user_id])
