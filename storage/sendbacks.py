"""Submissions a regulator sent back for rework (退回整改), table ``send_backs``.

Sending back supersedes the current submission (as a revision by its staff does) and keeps
the reason, who sent it back and when, in one transaction. A self-check is *waiting for
rework* while its newest submission is one that was sent back: once its staff sign again,
the new submission is newer and the send-back is history.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from bot.core.scope import Scope
from storage.db import utcnow
from storage.scope import scope_where


@dataclass(frozen=True)
class SendBack:
    id: int
    submission_id: int
    selfcheck_id: int
    institution_id: int
    reason: str
    sent_by: int
    sent_by_label: str
    sent_at: str


_COLUMNS = "id, submission_id, selfcheck_id, institution_id, reason, sent_by, sent_by_label, sent_at"

WAITING = "NOT EXISTS (SELECT 1 FROM submissions later WHERE later.selfcheck_id = b.selfcheck_id AND later.id > b.submission_id)"
"""SQL: the self-check of the send-back ``b`` has no submission newer than the one sent back
(it was not signed again since): it waits for rework."""
WAITING_OF = f"(SELECT b.id FROM send_backs b WHERE b.selfcheck_id = {{selfcheck}} AND {WAITING} ORDER BY b.id DESC LIMIT 1)"
"""SQL: the id of the send-back the self-check whose id is the expression ``{selfcheck}``
waits on, or NULL (two index probes; one, into an empty index, for a self-check never sent back)."""


def send_back(db: sqlite_utils.Database, submission_id: int, *, reason: str, by: int, by_label: str) -> SendBack | None:
    """Supersede the current submission ``submission_id`` and record why; None (nothing
    written) if it is not current any more (revised by its staff, or sent back already).
    Nests in the caller's transaction, so the staff's notices can be queued with it."""
    now = utcnow()
    with db.atomic():
        cursor = db.execute(
            "UPDATE submissions SET superseded_at = ?, superseded_by = ? WHERE id = ? AND superseded_at IS NULL",
            [now, by, submission_id],
        )
        if cursor.rowcount != 1:
            return None
        cursor = db.execute(
            "INSERT INTO send_backs (submission_id, selfcheck_id, institution_id, reason, sent_by, sent_by_label, sent_at) "
            "SELECT id, selfcheck_id, institution_id, ?, ?, ?, ? FROM submissions WHERE id = ?",
            [reason, by, by_label, now, submission_id],
        )
        row_id = int(cursor.lastrowid or 0)
    found = db.execute(f"SELECT {_COLUMNS} FROM send_backs WHERE id = ?", [row_id]).fetchone()
    return SendBack(*found)


def waiting_send_back(db: sqlite_utils.Database, selfcheck_id: int) -> SendBack | None:
    """The send-back a self-check is waiting on (not signed again since), else None."""
    row = db.execute(f"SELECT {_COLUMNS} FROM send_backs WHERE id = {WAITING_OF.format(selfcheck='?')}", [selfcheck_id]).fetchone()
    return SendBack(*row) if row else None


def send_back_of(db: sqlite_utils.Database, submission_id: int) -> SendBack | None:
    """The send-back that superseded this submission, if a regulator's did."""
    row = db.execute(f"SELECT {_COLUMNS} FROM send_backs WHERE submission_id = ?", [submission_id]).fetchone()
    return SendBack(*row) if row else None


def get_send_back(db: sqlite_utils.Database, send_back_id: int) -> SendBack | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM send_backs WHERE id = ?", [send_back_id]).fetchone()
    return SendBack(*row) if row else None


def send_backs_of(db: sqlite_utils.Database, selfcheck_id: int) -> list[SendBack]:
    """Every send-back of a self-check, newest first."""
    rows = db.execute(f"SELECT {_COLUMNS} FROM send_backs WHERE selfcheck_id = ? ORDER BY id DESC", [selfcheck_id])
    return [SendBack(*row) for row in rows.fetchall()]


# The queries over a scope start from the send-backs (CROSS JOIN fixes SQLite's join order):
# there are few of them, and from the other side a national scope visits every self-check of
# the campaign (22 ms at 54,000 on /status and the digest, against 0.1 ms).


def waiting_in_scope(db: sqlite_utils.Database, campaign_id: str, scope: Scope) -> int:
    """How many self-checks of ``campaign_id`` in ``scope`` wait for rework after a send-back."""
    where, params = scope_where(scope, "i")
    row = db.execute(
        f"""SELECT COUNT(DISTINCT b.selfcheck_id) FROM send_backs b
            CROSS JOIN selfchecks s ON s.id = b.selfcheck_id AND s.campaign_id = ?
            CROSS JOIN institutions i ON i.id = s.institution_id
            WHERE {where} AND {WAITING}""",
        [campaign_id, *params],
    ).fetchone()
    return int(row[0])


def waiting_by_institution(db: sqlite_utils.Database, campaign_id: str, scope: Scope) -> dict[int, SendBack]:
    """Institution id → the send-back its self-check of ``campaign_id`` waits on, in ``scope``
    (for the workbook)."""
    where, params = scope_where(scope, "i")
    rows = db.execute(
        f"""SELECT {", ".join("b." + c.strip() for c in _COLUMNS.split(","))} FROM send_backs b
            CROSS JOIN selfchecks s ON s.id = b.selfcheck_id AND s.campaign_id = ?
            CROSS JOIN institutions i ON i.id = s.institution_id
            WHERE {where} AND {WAITING} ORDER BY b.id""",
        [campaign_id, *params],
    ).fetchall()
    return {row[3]: SendBack(*row) for row in rows}
