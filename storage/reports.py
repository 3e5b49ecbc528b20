"""Queries for the regulators' views across a scope: the status of every institution,
what their answers add up to, the rows of the workbook; and the typed answers: the
corrections staff asked for (a "no" to a confirm item, with the correct details) and the
texts of text items (the self-check contact person and phone).

The typed-answer queries go from the institutions in scope to their answers by the answers' primary key
(self-check, item), so a national scope stays a lookup per self-check, not a scan of
every answer.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlite_utils

from bot.core.scope import Scope
from storage.db import read_snapshot
from storage.scope import coverage_where, scope_where


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
    campaign_id: str,
    item_ids: Iterable[str],
    scope: Scope,
    *,
    institution_id: int | None = None,
) -> list[Correction]:
    """Every pending correction in ``scope`` (or of one institution), by province and name.
    Found from the answers' side, through the partial index of "no" answers (few), rather
    than by visiting every self-check in scope (/status and the digest ask at 54,000)."""
    ids = list(item_ids)
    if not ids:
        return []
    where, params = scope_where(scope, "i")
    if institution_id is not None:
        where, params = f"i.id = ? AND {where}", [institution_id, *params]
    marks = ", ".join("?" for _ in ids)
    rows = db.execute(
        f"""SELECT i.id, i.uscc, i.name, i.province, a.item_id, a.text, a.updated_at
            FROM answers a
            JOIN selfchecks s ON s.id = a.selfcheck_id AND s.campaign_id = ?
            JOIN institutions i ON i.id = s.institution_id
            WHERE a.item_id IN ({marks}) AND a.value = 'no' AND COALESCE(a.text, '') != '' AND {where}
            ORDER BY i.province, i.name, i.id, a.item_id""",
        [campaign_id, *ids, *params],
    ).fetchall()
    return [Correction(*row) for row in rows]


def text_answers(
    db: sqlite_utils.Database, campaign_id: str, item_ids: Iterable[str], scope: Scope
) -> dict[int, dict[str, str]]:
    """Institution id → {item id: typed text} for these text items, within ``scope``."""
    ids = list(item_ids)
    if not ids:
        return {}
    where, params = scope_where(scope, "i")
    marks = ", ".join("?" for _ in ids)
    result: dict[int, dict[str, str]] = {}
    for iid, item_id, text in db.execute(
        f"""SELECT i.id, a.item_id, a.text
            FROM institutions i
            JOIN selfchecks s ON s.institution_id = i.id AND s.campaign_id = ?
            JOIN answers a ON a.selfcheck_id = s.id AND a.item_id IN ({marks})
            WHERE a.value = 'text' AND {where}""",
        [campaign_id, *ids, *params],
    ):
        result.setdefault(iid, {})[item_id] = text or ""
    return result


# --- the status of every institution in a scope, and what the answers add up to --------
#
# National queries return tens of thousands of rows (and the answer streams millions):
# those come as NamedTuples, typed and immutable like the frozen dataclasses elsewhere but
# built straight from the cursor's tuples. Small results are frozen dataclasses.


class StatusRow(NamedTuple):
    """One institution in scope with its self-check for the checklist, if any."""

    id: int
    uscc: str
    name: str
    province: str
    level: str
    fields: str  # JSON list of field ids, as stored
    selfcheck_id: int | None
    selfcheck_status: str | None
    answered: bool  # at least one answer
    signed_at: str | None  # of the current submission


def status_rows(
    db: sqlite_utils.Database, campaign_id: str, scope: Scope, *, only: int | None = None
) -> list[StatusRow]:
    """Every institution in ``scope`` (or just institution ``only``, if it is in scope), unsorted."""
    where, params = scope_where(scope, "i")
    if only is not None:
        where, params = f"i.id = ? AND {where}", [only, *params]
    cursor = db.execute(
        f"""SELECT i.id, i.uscc, i.name, i.province, i.level, i.fields, s.id, s.status,
                   (s.id IS NOT NULL AND s.n_answered > 0),  -- the counter save_answer keeps
                   sub.signed_at
            FROM institutions i
            LEFT JOIN selfchecks s ON s.institution_id = i.id AND s.campaign_id = ?
            LEFT JOIN submissions sub ON sub.selfcheck_id = s.id AND sub.superseded_at IS NULL
            WHERE {where}""",
        [campaign_id, *params],
    )
    return list(map(StatusRow._make, cursor))


# --- the figures of /status and the digest, counted rather than listed ---------------------
#
# A state is counted per institution: the selfcheck-driven half of ``status_counts`` only
# sees the institutions that have a self-check for the campaign, so the institutions
# without one (not started) are what its count of every institution adds.

STATE_NOT_STARTED, STATE_IN_PROGRESS, STATE_FINISHED, STATE_SIGNED = range(4)

_STATE_SQL = f"""CASE
    WHEN sub.selfcheck_id IS NOT NULL THEN {STATE_SIGNED}
    WHEN s.status = 'completed' THEN {STATE_FINISHED}
    WHEN s.n_answered > 0 THEN {STATE_IN_PROGRESS}
    ELSE {STATE_NOT_STARTED} END"""
"""An institution's state from its self-check ``s`` and current submission ``sub``, in the
order ``bot.reports.status.Status`` lists them: signed (a current submission) before
finished (``completed``) before in progress (any answer, by the counter save_answer keeps)."""


def _in_scope(scope: Scope, coverage: Any) -> tuple[str, list[Any]]:
    where, params = scope_where(scope, "i")
    covered, more = coverage_where(coverage, "i")
    return f"{where} AND {covered}", [*params, *more]


class StatusCounts(NamedTuple):
    institutions: dict[tuple[str, str], int]  # (province, fields as stored) → institutions
    selfchecks: Counter[tuple[str, str, int]]  # (province, fields, state) → those with a self-check


def status_counts(db: sqlite_utils.Database, campaign_id: str, scope: Scope, coverage: Any = None) -> StatusCounts:
    """The institutions in ``scope`` covered by ``coverage``, by province and fields list;
    and those with a self-check for the campaign (one at most each) by province, fields
    and state (``STATE_*``). Both read in one snapshot: an institution or self-check
    added meanwhile is in both or in neither.

    The first reads the index on (province, fields) alone, in its order. The second is
    driven from the self-checks, each institution found by its rowid: three times faster
    at 54,000 than looking up each institution's self-check in the (campaign,
    institution) index; its rows are counted here (``Counter`` over the cursor) rather
    than with GROUP BY, which would sort them in a temporary B-tree first. (One statement
    with UNION ALL would need no snapshot but costs a fifth more.)"""
    where, params = _in_scope(scope, coverage)
    with read_snapshot(db):
        institutions = {
            (province, fields): n
            for province, fields, n in db.execute(
                f"SELECT i.province, i.fields, COUNT(*) FROM institutions i WHERE {where} GROUP BY i.province, i.fields",
                params,
            )
        }
        selfchecks = Counter(
            db.execute(
                f"""SELECT i.province, i.fields, {_STATE_SQL}
                    FROM selfchecks s JOIN institutions i ON i.id = s.institution_id
                    LEFT JOIN submissions sub ON sub.selfcheck_id = s.id AND sub.superseded_at IS NULL
                    WHERE s.campaign_id = ? AND {where}""",
                [campaign_id, *params],
            )
        )
    return StatusCounts(institutions, selfchecks)


def signed_institution_ids(db: sqlite_utils.Database, campaign_id: str, scope: Scope, coverage: Any = None) -> list[int]:
    """The institutions in scope (and coverage) with a current submission for the campaign."""
    where, params = _in_scope(scope, coverage)
    cursor = db.execute(
        f"""SELECT s.institution_id
            FROM submissions sub JOIN selfchecks s ON s.id = sub.selfcheck_id JOIN institutions i ON i.id = s.institution_id
            WHERE sub.superseded_at IS NULL AND s.campaign_id = ? AND {where}""",
        [campaign_id, *params],
    )
    return [row[0] for row in cursor]


def listed_status_rows(
    db: sqlite_utils.Database,
    campaign_id: str,
    scope: Scope,
    coverage: Any = None,
    *,
    signed: bool,
    among: Collection[int] | None = None,
    excluding: Collection[int] = (),
    limit: int = -1,
    offset: int = 0,
) -> list[StatusRow]:
    """The signed (or not signed) institutions in scope and coverage, by province, name and
    id: ``limit`` of them (-1: all) from position ``offset``, only those in ``among`` if
    given and none in ``excluding``. The id sets go in as one JSON parameter each (any
    size, unlike a list of ``?``)."""
    where, params = _in_scope(scope, coverage)
    if among is not None:
        where += " AND i.id IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(sorted(among)))
    if excluding:
        where += " AND i.id NOT IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(sorted(excluding)))
    cursor = db.execute(
        f"""SELECT i.id, i.uscc, i.name, i.province, i.level, i.fields, s.id, s.status,
                   (s.id IS NOT NULL AND s.n_answered > 0), sub.signed_at
            FROM institutions i
            LEFT JOIN selfchecks s ON s.institution_id = i.id AND s.campaign_id = ?
            LEFT JOIN submissions sub ON sub.selfcheck_id = s.id AND sub.superseded_at IS NULL
            WHERE (sub.selfcheck_id IS {"NOT" if signed else ""} NULL) AND {where}
            ORDER BY i.province, i.name, i.id LIMIT ? OFFSET ?""",
        [campaign_id, *params, limit, offset],
    )
    return list(map(StatusRow._make, cursor))


_DONE_SQL = """CASE
    WHEN a.value = 'noncompliant' THEN (COALESCE(a.problem, '') != '' AND COALESCE(a.measure, '') != ''
        AND (COALESCE(a.rect_status, '') = 'done'
             OR (COALESCE(a.rect_status, '') = 'in_progress' AND a.target_date IS NOT NULL)))
    WHEN a.value = 'no' THEN COALESCE(a.text, '') != ''
    ELSE 1 END"""
"""1 when an answer is complete: a non-compliance needs its problem, measure and a
rectification done (or under way with a target date); a "no" needs its typed text. Always
0 or 1: every column is COALESCEd, as in the counters (``storage.migrations.COUNTER_EXPRESSIONS``),
since a NULL would make the whole condition NULL."""


class AnswerTally(NamedTuple):
    """For one self-check (and, per answer, one item): complete answers, non-compliances,
    non-compliances whose rectification is not done."""

    selfcheck_id: int
    done: int
    noncompliant: int
    open_rectifications: int


class ItemTally(NamedTuple):
    selfcheck_id: int
    item_id: str
    done: int
    noncompliant: int
    open_rectifications: int


def tallies_except(
    db: sqlite_utils.Database, campaign_id: str, scope: Scope, item_ids: Iterable[str]
) -> Iterator[ItemTally]:
    """The same per answer, for the answers in scope to any item but ``item_ids`` (those
    that may not count for their institution: ``bot.reports.status.progress_by_selfcheck``)."""
    ids = list(item_ids)
    where, params = scope_where(scope, "i")
    cursor = db.execute(
        f"""SELECT a.selfcheck_id, a.item_id, {_DONE_SQL}, a.value = 'noncompliant',
                   a.value = 'noncompliant' AND COALESCE(a.rect_status, '') != 'done'
            FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id JOIN institutions i ON i.id = s.institution_id
            WHERE s.campaign_id = ? AND a.item_id NOT IN ({", ".join("?" for _ in ids)}) AND {where}""",
        [campaign_id, *ids, *params],
    )
    return map(ItemTally._make, cursor)


def counter_tallies(db: sqlite_utils.Database, campaign_id: str, scope: Scope) -> Iterator[AnswerTally]:
    """Every self-check in scope as the counters ``save_answer`` keeps on its row make it:
    complete answers, non-compliances, open rectifications, over all its answers. One row
    per self-check, no answer read (summing the answers visits two million of them at
    national scale)."""
    where, params = scope_where(scope, "i")
    cursor = db.execute(
        f"""SELECT s.id, s.n_answered - s.n_incomplete, s.n_noncompliant, s.n_open_rect
            FROM selfchecks s JOIN institutions i ON i.id = s.institution_id
            WHERE s.campaign_id = ? AND {where}""",
        [campaign_id, *params],
    )
    return map(AnswerTally._make, cursor)


@dataclass(frozen=True, slots=True)
class ItemCount:
    item_id: str
    institutions: int


def noncompliant_item_counts(
    db: sqlite_utils.Database, campaign_id: str, scope: Scope, limit: int
) -> list[ItemCount]:
    """The items most often answered non-compliant in scope, most first. The self-checks in
    scope are gathered once into SQLite's in-memory set; the partial index of
    non-compliances is walked in item order and each checked against it (``+`` keeps
    SQLite from probing that index once per self-check instead): five times faster at
    54,000 than joining each non-compliance to its self-check and institution."""
    where, params = scope_where(scope, "i")
    return [
        ItemCount(r["item_id"], r["n"])
        for r in db.query(
            f"""SELECT a.item_id, COUNT(*) AS n FROM answers a
                WHERE a.value = 'noncompliant' AND +a.selfcheck_id IN (
                    SELECT s.id FROM selfchecks s JOIN institutions i ON i.id = s.institution_id
                    WHERE s.campaign_id = ? AND {where})
                GROUP BY a.item_id ORDER BY n DESC, a.item_id LIMIT ?""",
            [campaign_id, *params, limit],
        )
    ]


@dataclass(frozen=True, slots=True)
class InstitutionMatch:
    id: int
    uscc: str
    name: str
    province: str


def find_in_scope(db: sqlite_utils.Database, scope: Scope, query: str, limit: int) -> list[InstitutionMatch]:
    """Institutions in scope whose USCC is ``query`` (any case) or whose name contains it
    (``%`` and ``_`` taken literally), the exact USCC first, then by name."""
    text = query.strip()
    where, params = scope_where(scope, "i")
    like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return [
        InstitutionMatch(**r)
        for r in db.query(
            f"""SELECT i.id, i.uscc, i.name, i.province FROM institutions i
                WHERE (i.uscc = ? OR i.name LIKE ? ESCAPE '\\') AND {where}
                ORDER BY i.uscc = ? DESC, i.name LIMIT ?""",
            [text.upper(), f"%{like}%", *params, text.upper(), limit],
        )
    ]


def in_scope(db: sqlite_utils.Database, scope: Scope, institution_id: int) -> bool:
    where, params = scope_where(scope, "i")
    return db.execute(f"SELECT 1 FROM institutions i WHERE i.id = ? AND {where}", [institution_id, *params]).fetchone() is not None


class NoncompliantAnswer(NamedTuple):
    institution_id: int
    fields: str  # JSON list of the institution's field ids
    item_id: str


def noncompliant_answers(db: sqlite_utils.Database, campaign_id: str, scope: Scope) -> Iterator[NoncompliantAnswer]:
    where, params = scope_where(scope, "i")
    cursor = db.execute(
        f"""SELECT i.id, i.fields, a.item_id FROM answers a
            JOIN selfchecks s ON s.id = a.selfcheck_id JOIN institutions i ON i.id = s.institution_id
            WHERE a.value = 'noncompliant' AND s.campaign_id = ? AND {where}""",
        [campaign_id, *params],
    )
    return map(NoncompliantAnswer._make, cursor)


def fully_unreachable_institutions(db: sqlite_utils.Database, scope: Scope) -> set[int]:
    """Institutions in scope whose every bound staff member has blocked the bot (marked by
    the outbox on 403); empty for a database without the outbox's tables."""
    where, params = scope_where(scope, "i")
    try:
        rows = db.execute(
            f"""SELECT m.institution_id FROM members m JOIN institutions i ON i.id = m.institution_id
                WHERE {where}
                GROUP BY m.institution_id
                HAVING SUM(m.telegram_id IN (SELECT chat_id FROM unreachable)) = COUNT(*)""",
            params,
        ).fetchall()
    except sqlite3.OperationalError:  # no outbox (and no unreachable table) in this database
        return set()
    return {r[0] for r in rows}


# --- the regulator's workbook -------------------------------------------------------------


class RosterExportRow(NamedTuple):
    """An institution as the roster import reads it."""

    name: str
    uscc: str
    cma_cert: str
    province: str
    level: str
    fields: str  # JSON list of field ids
    contact_name: str
    contact_phone: str


def roster_in_scope(db: sqlite_utils.Database, scope: Scope) -> Iterator[RosterExportRow]:
    """By province, then name."""
    where, params = scope_where(scope, "i")
    cursor = db.execute(
        f"""SELECT i.name, i.uscc, i.cma_cert, i.province, i.level, i.fields, i.contact_name, i.contact_phone
            FROM institutions i WHERE {where} ORDER BY i.province, i.name, i.id""",
        params,
    )
    return map(RosterExportRow._make, cursor)


def staff_counts(db: sqlite_utils.Database, scope: Scope) -> dict[int, int]:
    """Institution id → staff bound to it, for the institutions in scope with any."""
    where, params = scope_where(scope, "i")
    return dict(
        db.execute(
            f"""SELECT m.institution_id, COUNT(*) FROM members m JOIN institutions i ON i.id = m.institution_id
                WHERE {where} GROUP BY m.institution_id""",
            params,
        ).fetchall()
    )


# (selfcheck_id, item_id, value, text): a plain tuple, not a NamedTuple. A national export
# reads two million of them, and ``_make`` on each one cost 1.6 s of its CPU (issue 14).
AnswerCell = tuple[int, str, str, str | None]


def answers_in_scope(
    db: sqlite_utils.Database, campaign_id: str, scope: Scope, item_ids: Collection[str] | None = None
) -> Iterator[AnswerCell]:
    """Every answer in scope (to ``item_ids`` only, if given) as (selfcheck_id, item_id,
    value, text), grouped by self-check (in institution id order: one self-check per
    institution and campaign). Ordered so that SQLite walks its indexes in that order
    (selfchecks by institution, then each one's answers by primary key) rather than sorting
    two million rows in a temporary B-tree (``answers_in_scope_sql``)."""
    sql, params = answers_in_scope_sql(campaign_id, scope, item_ids)
    cursor: Iterator[AnswerCell] = db.execute(sql, params)
    return cursor


def answers_in_scope_sql(
    campaign_id: str, scope: Scope, item_ids: Collection[str] | None = None
) -> tuple[str, list[Any]]:
    where, params = scope_where(scope, "i")
    ids = sorted(item_ids) if item_ids is not None else None
    only = f"AND a.item_id IN ({', '.join('?' for _ in ids)})" if ids is not None else ""
    return (
        f"""SELECT a.selfcheck_id, a.item_id, a.value, a.text FROM answers a
            JOIN selfchecks s ON s.id = a.selfcheck_id JOIN institutions i ON i.id = s.institution_id
            WHERE s.campaign_id = ? {only} AND {where} ORDER BY s.institution_id""",
        [campaign_id, *(ids or []), *params],
    )


def answers_in_scope_plan(db: sqlite_utils.Database, checklist_id: str, scope: Scope) -> list[str]:
    """SQLite's EXPLAIN QUERY PLAN of ``answers_in_scope`` and of ``answer_sheet_rows``
    (for the tests and benchmarks)."""
    plan = []
    for sql, params in (answers_in_scope_sql(checklist_id, scope), answer_sheet_rows_sql(checklist_id, scope)):
        plan += [str(row[3]) for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
    return plan


class AnswerSheetRow(NamedTuple):
    """One self-check's answers, folded by SQLite into two JSON texts."""

    selfcheck_id: int
    values: str  # JSON object: item id → value, of the answers without typed text
    typed: str  # JSON array of [item id, value, text], of the answers with typed text


def answer_sheet_rows(db: sqlite_utils.Database, campaign_id: str, scope: Scope) -> Iterator[AnswerSheetRow]:
    """Every self-check in scope that has an answer, with all its answers, in institution
    id order: one row per self-check (54,000 at national scale) rather than one per answer
    (two million), each answer put into JSON by SQLite. Most answers have no typed text,
    and their values alone make most of a workbook's answer cells."""
    sql, params = answer_sheet_rows_sql(campaign_id, scope)
    return map(AnswerSheetRow._make, db.execute(sql, params))


def answer_sheet_rows_sql(campaign_id: str, scope: Scope) -> tuple[str, list[Any]]:
    where, params = scope_where(scope, "i")
    return (
        f"""SELECT s.id,
                   json_group_object(a.item_id, a.value) FILTER (WHERE a.text IS NULL),
                   json_group_array(json_array(a.item_id, a.value, a.text)) FILTER (WHERE a.text IS NOT NULL)
            FROM selfchecks s JOIN institutions i ON i.id = s.institution_id JOIN answers a ON a.selfcheck_id = s.id
            WHERE s.campaign_id = ? AND {where}
            GROUP BY s.institution_id ORDER BY s.institution_id""",
        [campaign_id, *params],
    )


class Rectification(NamedTuple):
    name: str
    uscc: str
    province: str
    item_id: str
    problem: str | None
    measure: str | None
    rect_status: str | None
    target_date: str | None
    updated_at: str
    institution_id: int
    fields: str  # the institution's, as stored (the statistics sheet counts them by it)


def rectifications_in_scope(db: sqlite_utils.Database, campaign_id: str, scope: Scope) -> Iterator[Rectification]:
    """Every non-compliance in scope, by province, institution name and item."""
    where, params = scope_where(scope, "i")
    cursor = db.execute(
        f"""SELECT i.name, i.uscc, i.province, a.item_id, a.problem, a.measure, a.rect_status, a.target_date,
                   a.updated_at, i.id, i.fields
            FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id JOIN institutions i ON i.id = s.institution_id
            WHERE a.value = 'noncompliant' AND s.campaign_id = ? AND {where}
            ORDER BY i.province, i.name, a.item_id""",
        [campaign_id, *params],
    )
    return map(Rectification._make, cursor)
