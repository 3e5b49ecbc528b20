"""Regulator accounts: a Telegram user with a scope of institutions they may see."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from bot.core.scope import Scope
from storage import outbox
from storage.answers import (
    ANSWER_WIDTH,
    ANSWERS_FINGERPRINT,
    OPEN_ANSWER_COLUMNS,
    OPEN_SELFCHECK_VALUES,
    OPEN_WIDTH,
    known_answers,
    opened_from,
    read_ahead_opened,
)
from storage.db import utcnow
from storage.institutions import _INSTITUTION_COLUMNS, Institution, InviteProblem, invite_problem, stored_time
from storage.readahead import ReadAhead


@dataclass(frozen=True)
class Regulator:
    telegram_id: int
    name: str
    scope: Scope
    added_at: str


def _regulator(row: dict[str, Any]) -> Regulator:
    return Regulator(
        telegram_id=int(row["telegram_id"]),
        name=str(row["name"]),
        scope=Scope.from_json(str(row["scope"])),
        added_at=str(row["added_at"]),
    )


def add_regulator(db: sqlite_utils.Database, telegram_id: int, scope: Scope, name: str = "") -> Regulator:
    """Add a regulator, or change the scope and name of an existing one."""
    with db.atomic():
        _scope_changing(db, telegram_id, scope)
        db.execute(
            "INSERT INTO regulators (telegram_id, name, scope, added_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(telegram_id) DO UPDATE SET name = excluded.name, scope = excluded.scope",
            [telegram_id, name, scope.to_json(), utcnow()],
        )
    regulator = get_regulator(db, telegram_id)
    assert regulator is not None
    return regulator


def get_regulator(db: sqlite_utils.Database, telegram_id: int) -> Regulator | None:
    row = next(db.query("SELECT * FROM regulators WHERE telegram_id = ?", [telegram_id]), None)
    return _regulator(row) if row else None


def list_regulators(db: sqlite_utils.Database) -> list[Regulator]:
    return [_regulator(r) for r in list(db.query("SELECT * FROM regulators ORDER BY added_at, telegram_id"))]


def remove_regulator(db: sqlite_utils.Database, telegram_id: int) -> bool:
    """Remove a regulator: what is queued for them (digests and their workbooks, delivery
    reports) is not sent any more."""
    with db.atomic():
        cursor = db.execute("DELETE FROM regulators WHERE telegram_id = ?", [telegram_id])
        if cursor.rowcount == 1:
            outbox.fail_queued(db, telegram_id, outbox.REGULATOR_KINDS, "recipient is no longer a regulator")
    return cursor.rowcount == 1


def _scope_changing(db: sqlite_utils.Database, telegram_id: int, scope: Scope) -> None:
    """Before a regulator's scope changes: what was queued for them under the old one (a
    digest and its workbook name institutions of that scope) is not sent any more."""
    current = get_regulator(db, telegram_id)
    if current is not None and current.scope != scope:
        outbox.fail_queued(db, telegram_id, outbox.REGULATOR_KINDS, "made for the regulator's scope before it changed")


# --- regulator invites (issue 5) -------------------------------------------------------

DEFAULT_REGULATOR_INVITE_USES = 1


@dataclass(frozen=True)
class RegulatorInvite:
    code: str
    scope: Scope
    name: str
    max_uses: int
    uses: int
    revoked: bool
    created_at: str = ""
    expires_at: str | None = None  # UTC ISO 8601, as stored
    revoked_at: str | None = None

    @property
    def problem(self) -> InviteProblem | None:
        """Why it admits nobody (revoked, expired, used up), or None if it is usable."""
        return invite_problem(
            {"revoked_at": self.revoked_at, "expires_at": self.expires_at, "uses": self.uses, "max_uses": self.max_uses}
        )

    @property
    def usable(self) -> bool:
        return self.problem is None


def create_regulator_invite(
    db: sqlite_utils.Database,
    scope: Scope,
    *,
    name: str = "",
    max_uses: int = DEFAULT_REGULATOR_INVITE_USES,
    expires_at: dt.datetime | None = None,
) -> str:
    from bot.core.invites import new_invite_code

    if max_uses < 1:
        raise ValueError("max_uses must be at least 1")
    code = new_invite_code()
    with db.atomic():
        db.execute(
            "INSERT INTO regulator_invites (code, scope, name, max_uses, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            [code, scope.to_json(), name, max_uses, utcnow(), stored_time(expires_at)],
        )
    return code


def _regulator_invite(row: dict[str, Any]) -> RegulatorInvite:
    return RegulatorInvite(
        code=str(row["code"]),
        scope=Scope.from_json(str(row["scope"])),
        name=str(row["name"]),
        max_uses=int(row["max_uses"]),
        uses=int(row["uses"]),
        revoked=row["revoked_at"] is not None,
        created_at=str(row["created_at"]),
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def get_regulator_invite(db: sqlite_utils.Database, code: str) -> RegulatorInvite | None:
    """The regulator invite with this canonical code (usable or not); None if there is none."""
    row = next(db.query("SELECT * FROM regulator_invites WHERE code = ?", [code]), None)
    return _regulator_invite(row) if row is not None else None


def list_regulator_invites(db: sqlite_utils.Database) -> list[RegulatorInvite]:
    """Every regulator invite, usable or not, oldest first."""
    return [_regulator_invite(r) for r in list(db.query("SELECT * FROM regulator_invites ORDER BY created_at, code"))]


def redeem_regulator_invite(db: sqlite_utils.Database, code: str, telegram_id: int) -> Regulator | None:
    """Make ``telegram_id`` a regulator with the invite's scope, spending one use; None if
    the invite cannot be used (any more). Redeeming twice by the same person spends nothing."""
    with db.atomic():
        invite = get_regulator_invite(db, code)
        if invite is None or not invite.usable:
            return None
        current = get_regulator(db, telegram_id)
        if current is not None and current.scope == invite.scope:
            return current
        db.execute("UPDATE regulator_invites SET uses = uses + 1 WHERE code = ?", [code])
        _scope_changing(db, telegram_id, invite.scope)
        db.execute(
            "INSERT INTO regulators (telegram_id, name, scope, added_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(telegram_id) DO UPDATE SET scope = excluded.scope, "
            "name = CASE WHEN excluded.name != '' THEN excluded.name ELSE regulators.name END",
            [telegram_id, invite.name, invite.scope.to_json(), utcnow()],
        )
    return get_regulator(db, telegram_id)


def revoke_regulator_invite(db: sqlite_utils.Database, code: str) -> bool:
    with db.atomic():
        cursor = db.execute(
            "UPDATE regulator_invites SET revoked_at = ? WHERE code = ? AND revoked_at IS NULL", [utcnow(), code]
        )
    return cursor.rowcount == 1


@dataclass(frozen=True)
class Identity:
    """Who sends an update: the institution they are bound to, their regulator account,
    the language they chose with /language (each None when there is none)."""

    institution: Institution | None
    regulator: Regulator | None
    language: str | None


_WHO_COLUMNS = (
    f"{', '.join('i.' + c.strip() for c in _INSTITUTION_COLUMNS.split(','))}, "
    "r.telegram_id, r.name, r.scope, r.added_at, u.language, f.key, f.state, f.data"
)
_WHO_JOINS = (
    "LEFT JOIN members m ON m.telegram_id = q.tid LEFT JOIN institutions i ON i.id = m.institution_id "
    "LEFT JOIN regulators r ON r.telegram_id = q.tid LEFT JOIN users u ON u.telegram_id = q.tid "
    "LEFT JOIN fsm f ON f.key = q.fkey"
)
_WHO_IS_SQL = f"SELECT {_WHO_COLUMNS} FROM (SELECT ? AS tid, ? AS fkey) q {_WHO_JOINS}"
_INSTITUTION_WIDTH = len(_INSTITUTION_COLUMNS.split(","))
_WHO_WIDTH = _INSTITUTION_WIDTH + 8
# With the self-check a button names, if it is the institution's the sender is a member of
# (a forged or foreign id finds none), and its answers: one row with the sender's and the
# self-check's values packed in one JSON array (column 0), then one row per answer with the
# answer's columns only (column 0 NULL). Packed rather than spread over columns NULL on every
# other row: a third less time in this read than unpacked or as two statements, most of a
# press's read being the making of Python values.
#
# The answers' fingerprint is in column 1 of that row; the answers' rows come only if it is
# not the fingerprint of the answers known here (``storage.answers.KnownAnswers``): most
# presses then read the sender and one row of the self-check, not all its answers.
_WHO_PRESSES_SQL = (
    "WITH q AS (SELECT ? AS tid, ? AS fkey, ? AS scid, ? AS known), "
    f"w AS MATERIALIZED (SELECT json_array({_WHO_COLUMNS}, {OPEN_SELFCHECK_VALUES}) AS who, sc.id AS open_id, "
    f"{ANSWERS_FINGERPRINT.format(selfcheck='sc.id')} AS fp "
    f"FROM q {_WHO_JOINS} LEFT JOIN selfchecks sc ON sc.id = q.scid AND sc.institution_id = m.institution_id) "
    f"SELECT w.who, w.fp{', NULL' * (ANSWER_WIDTH - 1)} FROM w UNION ALL "
    f"SELECT NULL, {OPEN_ANSWER_COLUMNS} FROM answers a WHERE a.selfcheck_id = (SELECT open_id FROM w) "
    "AND (SELECT fp FROM w) IS NOT (SELECT known FROM q)"
)


def who_is(
    db: sqlite_utils.Database,
    telegram_id: int,
    read_ahead: tuple[ReadAhead, str] | None = None,
    selfcheck_id: int | None = None,
) -> Identity:
    """Membership, regulator account and language in one read (on every update: the
    same rows as ``get_membership``, ``get_regulator`` and ``get_user_language``).
    ``read_ahead``: (where to keep it, the conversation's key): the conversation's ``fsm``
    row is read in the same statement and primed there (``storage.fsm.ReadAhead``).
    ``selfcheck_id`` (inside a write transaction: a press's, ``storage.db.begin_handed``):
    that self-check, if it is the institution's the sender is a member of, is read in the
    same statement with its answers, and kept for the press's ``open_selfcheck``
    (``storage.answers.read_ahead_opened``)."""
    fkey = read_ahead[1] if read_ahead else None
    n = _INSTITUTION_WIDTH
    if selfcheck_id is None:
        row = db.execute(_WHO_IS_SQL, [telegram_id, fkey]).fetchone()
    else:
        known = known_answers(db).fingerprint(selfcheck_id)
        rows = db.execute(_WHO_PRESSES_SQL, [telegram_id, fkey, selfcheck_id, known]).fetchall()
        first = next(r for r in rows if r[0] is not None)
        row = json.loads(first[0])
        answers = [r[1:] for r in rows if r[0] is None]
        read_ahead_opened(db, opened_from(db, row[_WHO_WIDTH : _WHO_WIDTH + OPEN_WIDTH], first[1], answers))
    institution = Institution.from_values(row[:n]) if row[0] is not None else None
    tid, name, scope, added_at = row[n : n + 4]
    regulator = Regulator(int(tid), str(name), Scope.from_json(str(scope)), str(added_at)) if tid is not None else None
    if read_ahead is not None:
        key, state, data = row[n + 5 : n + 8]
        read_ahead[0].prime(read_ahead[1], None if key is None else (state, data))
    return Identity(institution, regulator, row[n + 4])
