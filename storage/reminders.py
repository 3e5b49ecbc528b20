"""Which reminder each staff member has had (table ``reminders_sent``): at most one of each
per campaign, claimed before it is queued so overlapping sweeps never send it twice."""

from __future__ import annotations

import sqlite_utils

from storage.db import utcnow


def reminded(db: sqlite_utils.Database, campaign_id: str, reminder: str) -> set[int]:
    """Telegram ids that already had ``reminder`` for this campaign."""
    return {
        r["telegram_id"]
        for r in db["reminders_sent"].rows_where(
            "campaign_id = ? AND reminder = ?", [campaign_id, reminder], select="telegram_id"
        )
    }


def claim(
    db: sqlite_utils.Database, *, telegram_id: int, campaign_id: str, checklist_id: str, reminder: str, institution_id: int
) -> bool:
    """Record that this reminder of this campaign goes to this user; False if it was claimed
    before (call inside the transaction that queues it)."""
    cursor = db.execute(
        "INSERT INTO reminders_sent (telegram_id, campaign_id, checklist_id, reminder, institution_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [telegram_id, campaign_id, checklist_id, reminder, institution_id, utcnow()],
    )
    return bool(cursor.rowcount)


def link_outbox(db: sqlite_utils.Database, *, telegram_id: int, campaign_id: str, reminder: str, outbox_id: int | None) -> None:
    """Note the outbox row that carries a claimed reminder."""
    db.execute(
        "UPDATE reminders_sent SET outbox_id = ? WHERE telegram_id = ? AND campaign_id = ? AND reminder = ?",
        [outbox_id, telegram_id, campaign_id, reminder],
    )
