"""Institutions, their invite codes, the staff bound to them, and per-user settings."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlite_utils

from bot.core.invites import new_invite_code
from bot.core.roster import RosterRow
from storage.db import query_one, query_rows, utcnow

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
            existing = query_one(db, "SELECT id FROM institutions WHERE uscc = ?", [row.uscc])
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
    row = query_one(db, f"SELECT {_INSTITUTION_COLUMNS} FROM institutions WHERE id = ?", [institution_id])
    return Institution.from_row(row) if row else None


def get_institution_by_uscc(db: sqlite_utils.Database, uscc: str) -> Institution | None:
    row = query_one(db, f"SELECT {_INSTITUTION_COLUMNS} FROM institutions WHERE uscc = ?", [uscc])
    return Institution.from_row(row) if row else None


def list_institutions(db: sqlite_utils.Database) -> list[Institution]:
    return [Institution.from_row(r) for r in query_rows(db, f"SELECT {_INSTITUTION_COLUMNS} FROM institutions ORDER BY id")]


# --- invites -------------------------------------------------------------------------


class InviteProblem(StrEnum):
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    USED_UP = "used_up"


class InviteError(Exception):
    def __init__(self, problem: InviteProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


def create_invite(
    db: sqlite_utils.Database, institution_id: int, max_uses: int = DEFAULT_INVITE_USES, code: str | None = None
) -> str:
    code = code or new_invite_code()
    with db.atomic():
        db.execute(
            "INSERT INTO invites (code, institution_id, max_uses, created_at) VALUES (?, ?, ?, ?)",
            [code, institution_id, max_uses, utcnow()],
        )
    return code


def ensure_invites(db: sqlite_utils.Database, max_uses: int = DEFAULT_INVITE_USES) -> int:
    """Give every institution without a usable invite a new one; returns how many were made."""
    lacking = query_rows(
        db,
        """SELECT i.id FROM institutions i WHERE NOT EXISTS (
               SELECT 1 FROM invites v WHERE v.institution_id = i.id
               AND v.revoked_at IS NULL AND v.uses < v.max_uses)
           ORDER BY i.id""",
    )
    with db.atomic():
        for row in lacking:
            create_invite(db, row["id"], max_uses)
    return len(lacking)


def list_invites(db: sqlite_utils.Database, *, include_inactive: bool = False) -> list[dict[str, Any]]:
    where = "" if include_inactive else "WHERE v.revoked_at IS NULL AND v.uses < v.max_uses"
    return query_rows(
        db,
        f"""SELECT i.uscc, i.name, v.code, v.uses, v.max_uses, v.revoked_at, v.created_at
            FROM invites v JOIN institutions i ON i.id = v.institution_id {where}
            ORDER BY i.id, v.created_at""",
    )


def revoke_invite(db: sqlite_utils.Database, code: str) -> bool:
    with db.atomic():
        cursor = db.execute(
            "UPDATE invites SET revoked_at = ? WHERE code = ? AND revoked_at IS NULL", [utcnow(), code]
        )
    return cursor.rowcount == 1


def check_invite(db: sqlite_utils.Database, code: str) -> Institution:
    """The institution an invite code admits to; InviteError if it cannot be used."""
    invite = query_one(db, "SELECT * FROM invites WHERE code = ?", [code])
    if invite is None:
        raise InviteError(InviteProblem.UNKNOWN)
    if invite["revoked_at"] is not None:
        raise InviteError(InviteProblem.REVOKED)
    if invite["uses"] >= invite["max_uses"]:
        raise InviteError(InviteProblem.USED_UP)
    institution = get_institution(db, invite["institution_id"])
    assert institution is not None  # foreign key
    return institution


def bind_member(db: sqlite_utils.Database, telegram_id: int, code: str, first_name: str = "") -> Institution:
    """Bind a Telegram user to the institution of an invite, spending one use of it.

    Re-binding with a code of the institution the user already belongs to spends nothing.
    """
    with db.atomic():
        institution = check_invite(db, code)
        current = get_membership(db, telegram_id)
        if current is not None and current.id == institution.id:
            return institution
        ensure_user(db, telegram_id, first_name)
        db.execute("UPDATE invites SET uses = uses + 1 WHERE code = ?", [code])
        db.execute(
            "INSERT INTO members (telegram_id, institution_id, invite_code, bound_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(telegram_id) DO UPDATE SET institution_id = excluded.institution_id, "
            "invite_code = excluded.invite_code, bound_at = excluded.bound_at",
            [telegram_id, institution.id, code, utcnow()],
        )
    return institution


def get_membership(db: sqlite_utils.Database, telegram_id: int) -> Institution | None:
    row = query_one(
        db,
        f"SELECT {', '.join('i.' + c.strip() for c in _INSTITUTION_COLUMNS.split(','))} "
        "FROM members m JOIN institutions i ON i.id = m.institution_id WHERE m.telegram_id = ?",
        [telegram_id],
    )
    return Institution.from_row(row) if row else None


def members_of(db: sqlite_utils.Database, institution_id: int) -> list[dict[str, Any]]:
    return query_rows(
        db,
        """SELECT m.telegram_id, u.first_name, u.username, m.bound_at FROM members m
           JOIN users u ON u.telegram_id = m.telegram_id WHERE m.institution_id = ? ORDER BY m.bound_at""",
        [institution_id],
    )


# --- users ---------------------------------------------------------------------------


def ensure_user(db: sqlite_utils.Database, telegram_id: int, first_name: str = "", username: str | None = None) -> None:
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


def set_user_language(db: sqlite_utils.Database, telegram_id: int, language: str, first_name: str = "") -> None:
    ensure_user(db, telegram_id, first_name)
    with db.atomic():
        db.execute("UPDATE users SET language = ? WHERE telegram_id = ?", [language, telegram_id])
