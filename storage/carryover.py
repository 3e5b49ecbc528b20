"""Last year's answer to the same question: the institution's answer in an earlier
campaign's self-check (for the carry-over offered with a question, never copied silently)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from bot.core.interview import Answer
from storage.answers import _ANSWER_COLUMNS, _answer


@dataclass(frozen=True)
class EarlierAnswer:
    year: int
    campaign_id: str
    checklist_id: str
    answer: Answer


def previous_campaign_answer(
    db: sqlite_utils.Database,
    institution_id: int,
    selfcheck_id: int,
    item_id: str,
    *,
    checklist_id: str | None = None,
) -> EarlierAnswer | None:
    """The institution's answer to ``item_id`` in the latest self-check of a campaign
    earlier (by year) than the one of ``selfcheck_id``; with ``checklist_id``, only in a
    self-check of that checklist (an explicit ``same_as``). None when there is none."""
    columns = ", ".join(f"a.{c.strip()}" for c in _ANSWER_COLUMNS.split(","))
    sql = (
        f"SELECT c.year, c.id, s.checklist_id, {columns} FROM answers a "
        "JOIN selfchecks s ON s.id = a.selfcheck_id JOIN campaigns c ON c.id = s.campaign_id "
        "WHERE s.institution_id = ? AND s.id != ? AND a.item_id = ? "
        "AND c.year < (SELECT c2.year FROM selfchecks s2 JOIN campaigns c2 ON c2.id = s2.campaign_id WHERE s2.id = ?)"
    )
    params: list[object] = [institution_id, selfcheck_id, item_id, selfcheck_id]
    if checklist_id is not None:
        sql += " AND s.checklist_id = ?"
        params.append(checklist_id)
    row = db.execute(sql + " ORDER BY c.year DESC, s.id DESC LIMIT 1", params).fetchone()
    if row is None:
        return None
    return EarlierAnswer(year=row[0], campaign_id=row[1], checklist_id=row[2], answer=_answer(row[3:]))
