"""Who receives bulk messages: staff to remind, staff a regulator's broadcast reaches."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from bot.core.scope import Scope
from storage.scope import scope_where


@dataclass(frozen=True, slots=True)
class Recipient:
    telegram_id: int
    institution_id: int
    language: str | None  # chosen with /language; None: follow Telegram's
    unreachable: bool  # answered 403 before (blocked the bot)


def unfinished_members(db: sqlite_utils.Database, campaign_id: str) -> list[Recipient]:
    """Bound staff of institutions without a current signed submission, reachable ones
    only, by institution and user."""
    return [
        Recipient(r["telegram_id"], r["institution_id"], r["language"], False)
        for r in db.query(
            """SELECT m.telegram_id, m.institution_id, u.language
               FROM members m
               JOIN users u ON u.telegram_id = m.telegram_id
               WHERE NOT EXISTS (
                       SELECT 1 FROM submissions s JOIN selfchecks c ON c.id = s.selfcheck_id
                       WHERE c.institution_id = m.institution_id AND c.campaign_id = ? AND s.superseded_at IS NULL)
                 AND NOT EXISTS (SELECT 1 FROM unreachable x WHERE x.chat_id = m.telegram_id)
               ORDER BY m.institution_id, m.telegram_id""",
            [campaign_id],
        )
    ]


def members_in_scope(db: sqlite_utils.Database, scope: Scope) -> list[Recipient]:
    """Bound staff of the institutions in ``scope``, by institution and user."""
    condition, params = scope_where(scope, "i")
    return [
        Recipient(r["telegram_id"], r["institution_id"], r["language"], bool(r["blocked"]))
        for r in db.query(
            f"""SELECT m.telegram_id, m.institution_id, u.language,
                       EXISTS (SELECT 1 FROM unreachable x WHERE x.chat_id = m.telegram_id) AS blocked
                FROM members m JOIN institutions i ON i.id = m.institution_id
                LEFT JOIN users u ON u.telegram_id = m.telegram_id
                WHERE {condition} ORDER BY m.institution_id, m.telegram_id""",
            params,
        )
    ]
