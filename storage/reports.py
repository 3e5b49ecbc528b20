"""Queries for the regulators' views that read typed answers across a scope: the
corrections staff asked for (a "no" to a confirm item, with the correct details) and the
texts of text items (the self-check contact person and phone).

Both go from the institutions in scope to their answers by the answers' primary key
(self-check, item), so a national scope stays a lookup per self-check, not a scan of
every answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from bot.core.scope import Scope


@dataclass(frozen=True)
class Correction:
    """Staff said the roster's details of their institution are wrong and typed the
    correct ones; pending until the answer is changed (after the roster is corrected,
    staff confirm the details again)."""

    institution_id: int
    uscc: str
    name: str
    province: str
    item_id: str
    text: str
    updated_at: str  # ISO 8601, UTC


def pending_corrections(
    db: sqlite_utils.Database,
    checklist_id: str,
    item_ids: Iterable[str],
    scope: Scope,
    *,
    institution_id: int | None = None,
) -> list[Correction]:
    """Every pending correction in ``scope`` (or of one institution), by province and name."""
    ids = list(item_ids)
    if not ids:
        return []
    where, params = scope.sql("i")
    if institution_id is not None:
        where, params = f"i.id = ? AND {where}", [institution_id, *params]  # type: ignore[list-item]
    marks = ", ".join("?" for _ in ids)
    rows = db.execute(
        f"""SELECT i.id, i.uscc, i.name, i.province, a.item_id, a.text, a.updated_at
            FROM institutions i
            JOIN selfchecks s ON s.institution_id = i.id AND s.checklist_id = ?
            JOIN answers a ON a.selfcheck_id = s.id AND a.item_id IN ({marks})
            WHERE a.value = 'no' AND COALESCE(a.text, '') != '' AND {where}
            ORDER BY i.province, i.name, i.id, a.item_id""",
        [checklist_id, *ids, *params],
    ).fetchall()
    return [Correction(*row) for row in rows]


def text_answers(
    db: sqlite_utils.Database, checklist_id: str, item_ids: Iterable[str], scope: Scope
) -> dict[int, dict[str, str]]:
    """Institution id → {item id: typed text} for these text items, within ``scope``."""
    ids = list(item_ids)
    if not ids:
        return {}
    where, params = scope.sql("i")
    marks = ", ".join("?" for _ in ids)
    result: dict[int, dict[str, str]] = {}
    for iid, item_id, text in db.execute(
        f"""SELECT i.id, a.item_id, a.text
            FROM institutions i
            JOIN selfchecks s ON s.institution_id = i.id AND s.checklist_id = ?
            JOIN answers a ON a.selfcheck_id = s.id AND a.item_id IN ({marks})
            WHERE a.value = 'text' AND {where}""",
        [checklist_id, *ids, *params],
    ):
        result.setdefault(iid, {})[item_id] = text or ""
    return result
