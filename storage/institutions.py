"""Institutions, their invite codes, the staff bound to them, and per-user settings."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlite_utils

from bot.core.interview import without_controls
from bot.core.invites import new_invite_code
from bot.core.roster import RosterRow
from storage import outbox
from storage.db import utcnow

# How many staff one invite code admits unless the operator says otherwise: enough for
# a quality manager, a deputy and a few section heads, few enough that a leaked code
# cannot be used by a crowd.
DEFAULT_INVITE_USES = 5


@dataclass(frozen=True)
class Institution:
    id: int
    uscc: str
    name: str
    cma_cert: str
    province: str
    level: str
    fields: tuple[str, ...]
    contact_name: str
    contact_phone: str

    @classmethod
    def from_row(cls, row: Any) -> Institution:
        return cls(
            id=row["id"],
            uscc=row["uscc"],
            name=row["name"],
            cma_cert=row["cma_cert"],
            province=row["province"],
            level=row["level"],
            fields=tuple(json.loads(row["fields"])),
            contact_name=row["contact_name"],
            contact_phone=row["contact_phone"],
        )

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> Institution:
        """From a row of ``_INSTITUTION_COLUMNS``, in that order."""
        return _institution_of(tuple(values))


@functools.lru_cache(maxsize=4096)
def _institution_of(values: tuple[Any, ...]) -> Institution:
    # Read with the sender on every update: an Institution is frozen and wholly made of its
    # row, so a row seen before gives the same object without parsing its fields again.
    id_, uscc, name, cma_cert, province, level, fields, contact_name, contact_phone = values
    return Institution(id_, uscc, name, cma_cert, province, level, tuple(json.loads(fields)), contact_name, contact_phone)


_INSTITUTION_COLUMNS = "id, uscc, name, cma_cert, province, level, fields, contact_name, contact_phone"


def upsert_institutions(db: sqlite_utils.Database, rows: Iterable[RosterRow]) -> tuple[int, int]:
    """Insert or update institutions by USCC in one transaction; returns (created, updated)."""
    created = updated = 0
    now = utcnow()
    with db.atomic():
        for row in rows:
            values = {
                "name": row.name,
                "cma_cert": row.cma_cert,
                "province": row.province,
                "level": row.level,
                "fields": json.dumps(list(row.fields)),
                "contact_name": row.contact_name,
                "contact_phone": row.contact_phone,
            }
            existing = next(db.query("SELECT id FROM institutions WHERE uscc = ?", [row.uscc]), None)
            if existing:
                sets = ", ".join(f"{k} = ?" for k in values)
                db.execute(
                    f"UPDATE institutions SET {sets}, updated_at = ? WHERE id = ?",
                    [*values.values(), now, existing["id"]],
                )
                updated += 1
            else:
                cols = ", ".join(values)
                marks = ", ".join("?" for _ in values)
                db.execute(
                    f"INSERT INTO institutions (uscc, {cols}, created_at, updated_at) VALUES (?, {marks}, ?, ?)",
                    [row.uscc, *values.values(), now, now],
                )
                created += 1
    return created, updated


def get_institution(db: sqlite_utils.Database, institution_id: int) -> Institution | None:
    # on every update (hot path): db.execute, see storage/__init__.py
    row = db.execute(f"SELECT {_INSTITUTION_COLUMNS} FROM institutions WHERE id = ?", [institution_id]).fetchone()
    return Institution.from_values(row) if row else None


def get_institution_by_uscc(db: sqlite_utils.Database, uscc: str) -> Institution | None:
    row = next(db.query(f"SELECT {_INSTITUTION_COLUMNS} FROM institutions WHERE uscc = ?", [uscc]), None)
    return Institution.from_row(row) if row else None


def list_institutions(db: sqlite_utils.Database) -> list[Institution]:
    return [Institution.from_row(r) for r in db.query(f"SELECT {_INSTITUTION_COLUMNS} FROM institutions ORDER BY id")]


# --- invites -------------------------------------------------------------------------


class InviteProblem(StrEnum):
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    USED_UP = "used_up"
    EXPIRED = "expired"


def stored_time(moment: dt.datetime | None) -> str | None:
    """A moment as stored (UTC ISO 8601, as ``utcnow``), so stored times compare as text."""
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


class InviteError(Exception):
    def __init__(self, problem: InviteProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


def create_invite(
    db: sqlite_utils.Database,
    institution_id: int,
    max_uses: int = DEFAULT_INVITE_USES,
    code: str | None = None,
    *,
    expires_at: dt.datetime | None = None,
) -> str:
    code = code or new_invite_code()
    with db.atomic():
        db.execute(
            "INSERT INTO invites (code, institution_id, max_uses, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            [code, institution_id, max_uses, utcnow(), stored_time(expires_at)],
        )
    return code


def ensure_invites(db: sqlite_utils.Database, max_uses: int = DEFAULT_INVITE_USES) -> int:
    """Give every institution without a usable invite a new one; returns how many were made."""
    lacking = list(
        db.query(
            """SELECT i.id FROM institutions i WHERE NOT EXISTS (
                   SELECT 1 FROM invites v WHERE v.institution_id = i.id
                   AND v.revoked_at IS NULL AND v.uses < v.max_uses
                   AND (v.expires_at IS NULL OR v.expires_at > ?))
               ORDER BY i.id""",
            [utcnow()],
        )
    )
    with db.atomic():
        for row in lacking:
            create_invite(db, row["id"], max_uses)
    return len(lacking)


def list_invites(db: sqlite_utils.Database, *, include_inactive: bool = False) -> list[dict[str, Any]]:
    """Staff invites with their institution; only usable ones unless ``include_inactive``."""
    where = "" if include_inactive else "WHERE v.revoked_at IS NULL AND v.uses < v.max_uses AND (v.expires_at IS NULL OR v.expires_at > ?)"
    return list(
        db.query(
            f"""SELECT i.uscc, i.name, v.code, v.uses, v.max_uses, v.revoked_at, v.created_at, v.expires_at
                FROM invites v JOIN institutions i ON i.id = v.institution_id {where}
                ORDER BY i.id, v.created_at""",
            [] if include_inactive else [utcnow()],
        )
    )


def invite_problem(invite: dict[str, Any], now: str | None = None) -> InviteProblem | None:
    """Why a stored invite row (staff or regulator) admits nobody, or None if it is usable."""
    if invite["revoked_at"] is not None:
        return InviteProblem.REVOKED
    if invite["expires_at"] is not None and invite["expires_at"] <= (now or utcnow()):
        return InviteProblem.EXPIRED
    if invite["uses"] >= invite["max_uses"]:
        return InviteProblem.USED_UP
    return None


def get_invite(db: sqlite_utils.Database, code: str) -> dict[str, Any] | None:
    return next(db.query("SELECT * FROM invites WHERE code = ?", [code]), None)


def revoke_invite(db: sqlite_utils.Database, code: str) -> bool:
    """Stop a staff invite admitting anyone new. Staff who joined with it stay (see
    ``remove_members_of_invite``)."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE invites SET revoked_at = ? WHERE code = ? AND revoked_at IS NULL", [utcnow(), code]
        )
    return cursor.rowcount == 1


def check_invite(db: sqlite_utils.Database, code: str) -> Institution:
    """The institution an invite code admits to; InviteError if it cannot be used."""
    invite = get_invite(db, code)
    if invite is None:
        raise InviteError(InviteProblem.UNKNOWN)
    problem = invite_problem(invite)
    if problem is not None:
        raise InviteError(problem)
    institution = get_institution(db, invite["institution_id"])
    assert institution is not None  # foreign key
    return institution


def bind_member(
    db: sqlite_utils.Database, telegram_id: int, code: str, first_name: str = "", username: str | None = None
) -> Institution:
    """Bind a Telegram user to the institution of an invite, spending one use of it.

    Re-binding with a code of the institution the user already belongs to spends nothing.
    """
    with db.atomic():
        institution = check_invite(db, code)
        current = get_membership(db, telegram_id)
        if current is not None and current.id == institution.id:
            return institution
        ensure_user(db, telegram_id, first_name, username)  # the @username lets operators name them
        db.execute("UPDATE invites SET uses = uses + 1 WHERE code = ?", [code])
        db.execute(
            "INSERT INTO members (telegram_id, institution_id, invite_code, bound_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(telegram_id) DO UPDATE SET institution_id = excluded.institution_id, "
            "invite_code = excluded.invite_code, bound_at = excluded.bound_at",
            [telegram_id, institution.id, code, utcnow()],
        )
    return institution


def get_membership(db: sqlite_utils.Database, telegram_id: int) -> Institution | None:
    # on every update (hot path): db.execute, see storage/__init__.py
    row = db.execute(
        f"SELECT {', '.join('i.' + c.strip() for c in _INSTITUTION_COLUMNS.split(','))} "
        "FROM members m JOIN institutions i ON i.id = m.institution_id WHERE m.telegram_id = ?",
        [telegram_id],
    ).fetchone()
    return Institution.from_values(row) if row else None


def members_of(db: sqlite_utils.Database, institution_id: int) -> list[dict[str, Any]]:
    """The staff of the institution, earliest first; ``channel``: 'telegram', or 'web' for a
    person who joined in the web chat (their id is negative, ``storage.web``)."""
    return list(
        db.query(
            """SELECT m.telegram_id, u.first_name, u.username, m.bound_at, m.invite_code, u.channel, u.email FROM members m
               JOIN users u ON u.telegram_id = m.telegram_id WHERE m.institution_id = ? ORDER BY m.bound_at""",
            [institution_id],
        )
    )


def find_member(db: sqlite_utils.Database, institution_id: int, who: str) -> dict[str, Any] | None:
    """The member of this institution named by ``who``: a Telegram user id, or @username
    (case-insensitive). None if no member of *this* institution matches."""
    who = who.strip()
    for member in members_of(db, institution_id):
        if who.lstrip("-").isdigit() and int(who) == member["telegram_id"]:
            return member
        if who.startswith("@") and member["username"] and who[1:].lower() == member["username"].lower():
            return member
    return None


def remove_member(
    db: sqlite_utils.Database, institution_id: int, telegram_id: int, *, removed_by: str
) -> dict[str, Any] | None:
    """Unbind a member from this institution (their access ends with the next update) and
    record who removed them. Their answers stay: they belong to the institution. Returns
    the removed member, or None if they were not a member of this institution."""
    with db.atomic():
        member = next(
            db.query(
                """SELECT m.telegram_id, m.invite_code, m.bound_at, u.first_name, u.username FROM members m
                   JOIN users u ON u.telegram_id = m.telegram_id WHERE m.telegram_id = ? AND m.institution_id = ?""",
                [telegram_id, institution_id],
            ),
            None,
        )
        if member is None:
            return None
        db.execute("DELETE FROM members WHERE telegram_id = ? AND institution_id = ?", [telegram_id, institution_id])
        now = utcnow()
        db.execute(
            "INSERT INTO member_removals (telegram_id, institution_id, invite_code, bound_at, removed_at, removed_by) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [telegram_id, institution_id, member["invite_code"], member["bound_at"], now, removed_by],
        )
        # Reminders and broadcasts still waiting for them carry the institution's progress
        # and news: they are not for someone removed (a delivery report counts them failed).
        outbox.fail_queued(db, telegram_id, outbox.STAFF_KINDS, outbox.MEMBER_REMOVED)
        # A web person is signed out everywhere at once, and their sign-in links stop working.
        db.execute("DELETE FROM web_sessions WHERE user_id = ?", [telegram_id])
        db.execute("UPDATE web_links SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", [now, telegram_id])
    return member


def remove_members_of_invite(db: sqlite_utils.Database, code: str, *, removed_by: str) -> list[dict[str, Any]]:
    """Remove every member who joined with this staff invite; returns them."""
    with db.atomic():
        rows = list(db.query("SELECT telegram_id, institution_id FROM members WHERE invite_code = ?", [code]))
        removed = [remove_member(db, r["institution_id"], r["telegram_id"], removed_by=removed_by) for r in rows]
    return [m for m in removed if m is not None]


def member_removals(db: sqlite_utils.Database, institution_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT * FROM member_removals WHERE institution_id = ? ORDER BY removed_at", [institution_id],
        )
    )


# --- users ---------------------------------------------------------------------------


def ensure_user(db: sqlite_utils.Database, telegram_id: int, first_name: str = "", username: str | None = None) -> None:
    first_name = without_controls(first_name)  # Telegram allows them in names; our lists and the CLI print it
    now = utcnow()
    with db.atomic():
        db.execute(
            "INSERT INTO users (telegram_id, first_name, username, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(telegram_id) DO UPDATE SET first_name = excluded.first_name, "
            "username = excluded.username, updated_at = excluded.updated_at",
            [telegram_id, first_name, username, now, now],
        )


def get_user_language(db: sqlite_utils.Database, telegram_id: int) -> str | None:
    row = db.execute("SELECT language FROM users WHERE telegram_id = ?", [telegram_id]).fetchone()
    return row[0] if row else None


def user_label(db: sqlite_utils.Database, telegram_id: int) -> str | None:
    """How a known user is named to a regulator: first name and @username (None if unknown)."""
    row = db.execute("SELECT first_name, username FROM users WHERE telegram_id = ?", [telegram_id]).fetchone()
    if row is None:
        return None
    return str(row[0]) + (f" @{row[1]}" if row[1] else "")


def set_user_language(db: sqlite_utils.Database, telegram_id: int, language: str, first_name: str = "") -> None:
    ensure_user(db, telegram_id, first_name)
    with db.atomic():
        db.execute("UPDATE users SET language = ? WHERE telegram_id = ?", [language, telegram_id])


@dataclass(frozen=True, slots=True)
class UserName:
    first_name: str
    username: str | None


def get_user_name(db: sqlite_utils.Database, telegram_id: int) -> UserName | None:
    """The names Telegram last told us for this user; None for a user never seen."""
    rows = list(db.query("SELECT first_name, username FROM users WHERE telegram_id = ?", [telegram_id]))
    return UserName(**rows[0]) if rows else None
