"""Self-checks, their answers, the history of every change, and evidence files."""

from __future__ import annotations

import datetime as dt
import functools
import json
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from bot.core.checklist import Checklist
from bot.core.interview import ANSWER_FIELDS, Answer, Choice, RectStatus, answer_fields
from storage.campaigns import ensure_campaign_row
from storage.db import current_write, transaction, utcnow
from storage.migrations import COUNTER_EXPRESSIONS, RECOUNT_SQL
from storage.sendbacks import WAITING_OF


@dataclass(frozen=True)
class SelfCheck:
    id: int
    institution_id: int
    checklist_id: str
    checklist_version: str
    status: str
    started_at: str
    completed_at: str | None
    campaign_id: str | None = None


class StaleAnswer(Exception):
    """The answer changed since the user's button was drawn; nothing was written."""

    def __init__(self, current: Answer | None) -> None:
        super().__init__("stale answer")
        self.current = current


_SELFCHECK_COLUMNS = "id, institution_id, checklist_id, checklist_version, status, started_at, completed_at, campaign_id"


def _selfcheck(values: Sequence[Any]) -> SelfCheck:
    return SelfCheck(*values)


def _find_selfcheck(db: sqlite_utils.Database, institution_id: int, campaign_id: str) -> SelfCheck | None:
    row = db.execute(
        f"SELECT {_SELFCHECK_COLUMNS} FROM selfchecks WHERE institution_id = ? AND campaign_id = ?",
        [institution_id, campaign_id],
    ).fetchone()
    return _selfcheck(row) if row else None


def find_selfcheck(db: sqlite_utils.Database, institution_id: int, campaign_id: str) -> SelfCheck | None:
    """The institution's self-check in a campaign, if it was ever opened (never creates one)."""
    return _find_selfcheck(db, institution_id, campaign_id)


def get_or_create_selfcheck(db: sqlite_utils.Database, institution_id: int, checklist: Checklist) -> SelfCheck:
    """The institution's self-check in the checklist's campaign (one per institution and
    campaign: two campaigns may run the same table)."""
    campaign_id = checklist.campaign_key
    # Almost always it exists: read it without opening a write transaction.
    existing = _find_selfcheck(db, institution_id, campaign_id)
    if existing is not None:
        return existing
    with db.atomic():
        found = _find_selfcheck(db, institution_id, campaign_id)
        if found is None:
            now = utcnow()
            year = int(checklist.campaign) if checklist.campaign.isdigit() else int(now[:4])
            ensure_campaign_row(db, campaign_id, checklist.id, year, checklist.title.zh_CN)
            db.execute(
                "INSERT INTO selfchecks (institution_id, checklist_id, checklist_version, started_at, updated_at, "
                "campaign_id) VALUES (?, ?, ?, ?, ?, ?)",
                [institution_id, checklist.id, checklist.version, now, now, campaign_id],
            )
            found = _find_selfcheck(db, institution_id, campaign_id)
    assert found is not None
    return found


@dataclass(frozen=True)
class Opened:
    """A self-check as a step opens it, read in one statement (``open_selfcheck``)."""

    selfcheck: SelfCheck
    answers: dict[str, Answer]
    signed: int | None  # the current submission's id: signed, read-only until revised
    has_earlier: bool  # the institution has another self-check (an earlier campaign's answers may be offered)
    sent_back: int | None = None  # the send-back it waits on (storage.sendbacks): a regulator asked for rework


def open_selfcheck(db: sqlite_utils.Database, institution_id: int, campaign_id: str) -> Opened | None:
    """The institution's self-check in a campaign with all its answers, whether it is
    signed and whether the institution has another self-check, in one statement (what a
    step reads first); None if it was never opened. Inside the write transaction it was
    read ahead in (``read_ahead_opened``), that read is used instead, once."""
    ahead = _OPENED_AHEAD.pop(db, None)
    if ahead is not None:
        token, opened = ahead
        sc = opened.selfcheck
        if token is current_write(db) and sc.institution_id == institution_id and sc.campaign_id == campaign_id:
            return opened
    return opened_of(db, db.execute(_OPEN_SQL, [institution_id, campaign_id]).fetchall())


def opened_of(db: sqlite_utils.Database, rows: Sequence[Sequence[Any]]) -> Opened | None:
    """The ``Opened`` of ``_OPEN_SQL``'s rows (the self-check's values packed in column 0 of
    one row, its answers' fingerprint in column 1, then one row per answer with column 0
    NULL); None for no rows (no self-check)."""
    first = next((row for row in rows if row[0] is not None), None)
    if first is None:
        return None
    return opened_from(db, json.loads(first[0]), first[1], [row[1:] for row in rows if row[0] is None])


_SELFCHECK_WIDTH = len(_SELFCHECK_COLUMNS.split(","))
OPEN_WIDTH = _SELFCHECK_WIDTH + 3
"""How many values ``OPEN_SELFCHECK_VALUES`` are."""


def opened_from(
    db: sqlite_utils.Database, selfcheck: Sequence[Any], fingerprint: str | None, answers: Sequence[Sequence[Any]]
) -> Opened | None:
    """The ``Opened`` of the values of ``OPEN_SELFCHECK_VALUES`` (all None: no self-check),
    the fingerprint of its stored answers (``ANSWERS_FINGERPRINT``) and rows of
    ``OPEN_ANSWER_COLUMNS``, read in the same statement. If the fingerprint is that of the
    answers known on ``db`` for the self-check (``known_answers``), those are its answers and
    the rows are not read (a statement then asks for none); otherwise the rows are, and are
    kept as the known answers."""
    if selfcheck[0] is None:
        return None
    n = _SELFCHECK_WIDTH
    sc = _selfcheck(selfcheck[:n])
    known = known_answers(db)
    stored = known.get(sc.id, fingerprint)
    if stored is None:
        stored = {row[0]: _answer(row) for row in answers}
        if fingerprint is not None:
            known.keep(sc.id, fingerprint, stored)
    return Opened(sc, stored, selfcheck[n], bool(selfcheck[n + 1]), selfcheck[n + 2])


# --- the answers known from earlier steps ---------------------------------------------------
#
# Every step reads the self-check with all its answers (what comes next, the progress and the
# status depend on them), and most of them have not changed since the same self-check's last
# step. So each database connection keeps the answers it last read or wrote of the self-checks
# stepped through lately, with their fingerprint, and a step's read asks SQLite for the
# fingerprint of the stored answers and for their rows only when it is not the known one.
# Any writer (another process, the CLI) changes the fingerprint, so what is kept is used only
# while it is what is stored; nothing has to tell this cache about a write.

ANSWERS_FINGERPRINT = (
    "(SELECT printf('%d:%d:%s', count(*), coalesce(sum(fp.rev), 0), coalesce(max(fp.updated_at), '')) "
    "FROM answers fp WHERE fp.selfcheck_id = {selfcheck})"
)
"""SQL: the fingerprint of the stored answers of the self-check whose id is the expression
``{selfcheck}``, as ``answers_fingerprint`` makes it of a set of answers: their number, the
sum of their revisions and the time of the latest change. A write to an answer adds one to
its revision and sets its time to the time of the write, and adds or removes an answer or
changes one; so a different set of answers has another fingerprint, short of a write in the
same microsecond as the latest one or a clock put back (with answers removed, which Zicha
never does). Every write of an answer is ``save_answer``'s, which does both; anything that
ever changed answers in place otherwise (a migration of a running database) would have to
bump the revision and the time too."""


def answers_fingerprint(answers: Mapping[str, Answer]) -> str:
    """``ANSWERS_FINGERPRINT`` of these answers."""
    values = answers.values()
    return _fingerprint(len(answers), sum(a.rev for a in values), max((a.updated_at for a in values), default=""))


def _fingerprint(count: int, revisions: int, latest: str) -> str:
    """The text of a fingerprint, as ``ANSWERS_FINGERPRINT``'s printf makes it."""
    return f"{count}:{revisions}:{latest}"


class KnownAnswers:
    """The answers of the ``size`` self-checks stepped through last on one connection, each
    set with its fingerprint (``ANSWERS_FINGERPRINT``). A set is handed out as a copy, for
    the caller to change, and only for its own fingerprint. (1,024 sets of a 40-item
    checklist: a few MB, the answers read from the database shared with ``_answer_of``'s
    cache.)"""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._sets: OrderedDict[int, tuple[str, dict[str, Answer]]] = OrderedDict()

    def fingerprint(self, selfcheck_id: int) -> str | None:
        found = self._sets.get(selfcheck_id)
        return found[0] if found is not None else None

    def get(self, selfcheck_id: int, fingerprint: str | None) -> dict[str, Answer] | None:
        """The known answers of the self-check, if their fingerprint is ``fingerprint``."""
        found = self._sets.get(selfcheck_id)
        if found is None or fingerprint is None or found[0] != fingerprint:
            return None
        self._sets.move_to_end(selfcheck_id)
        return dict(found[1])

    def keep(self, selfcheck_id: int, fingerprint: str, answers: Mapping[str, Answer]) -> None:
        self._sets[selfcheck_id] = (fingerprint, dict(answers))
        self._sets.move_to_end(selfcheck_id)
        if len(self._sets) > self.size:
            self._sets.popitem(last=False)

    def written(self, selfcheck_id: int, answer: Answer) -> None:
        """``answer`` was just written (its transaction may yet fail: then the fingerprint
        stored is not the one kept, and the answers are read again)."""
        found = self._sets.get(selfcheck_id)
        if found is not None:
            fingerprint, answers = found
            previous = answers.get(answer.item_id)
            answers[answer.item_id] = answer
            # ``answers_fingerprint(answers)``, from the one it had: one answer more or
            # replaced, its revision in the sum, its time the latest if it is (a clock put
            # back leaves the older latest time here: a fingerprint that is not the stored
            # one, so the answers are read again, as they would be anyway)
            count, revisions, latest = fingerprint.split(":", 2)
            now = _fingerprint(
                int(count) + (previous is None),
                int(revisions) - (previous.rev if previous is not None else 0) + answer.rev,
                max(latest, answer.updated_at),
            )
            self._sets[selfcheck_id] = (now, answers)


_KNOWN: weakref.WeakKeyDictionary[sqlite_utils.Database, KnownAnswers] = weakref.WeakKeyDictionary()


def known_answers(db: sqlite_utils.Database) -> KnownAnswers:
    """The answers known on ``db`` (one set of them per connection)."""
    known = _KNOWN.get(db)
    if known is None:
        known = _KNOWN[db] = KnownAnswers()
    return known


_OPENED_AHEAD: weakref.WeakKeyDictionary[sqlite_utils.Database, tuple[object, Opened]] = weakref.WeakKeyDictionary()


def read_ahead_opened(db: sqlite_utils.Database, opened: Opened | None) -> None:
    """Keep ``opened``, just read inside the write transaction open on ``db``
    (``storage.db.begin_handed``), for the ``open_selfcheck`` of that self-check in that
    same transaction; None forgets what was kept. Nothing kept outlives its transaction
    (the token must still be current) nor is used twice."""
    token = current_write(db)
    if opened is None or token is None:
        _OPENED_AHEAD.pop(db, None)
    else:
        _OPENED_AHEAD[db] = (token, opened)


def get_selfcheck(db: sqlite_utils.Database, selfcheck_id: int) -> SelfCheck | None:
    row = db.execute(f"SELECT {_SELFCHECK_COLUMNS} FROM selfchecks WHERE id = ?", [selfcheck_id]).fetchone()
    return _selfcheck(row) if row else None


def set_selfcheck_status(db: sqlite_utils.Database, selfcheck_id: int, status: str) -> SelfCheck | None:
    """Set the status (and when it was completed); the self-check as it is now, or None if
    it had that status already (nothing written)."""
    now = utcnow()
    with transaction(db):
        row = db.execute(
            "UPDATE selfchecks SET status = ?, completed_at = CASE WHEN ? = 'completed' THEN ? END, "
            f"updated_at = ? WHERE id = ? AND status != ? RETURNING {_SELFCHECK_COLUMNS}",
            [status, status, now, now, selfcheck_id, status],
        ).fetchone()
    return _selfcheck(row) if row is not None else None




_ANSWER_COLUMNS = (
    "item_id, value, text, problem, measure, rect_status, target_date, rev, answered_by, updated_by, updated_at"
)


OPEN_SELFCHECK_VALUES = (
    ", ".join(f"sc.{c.strip()}" for c in _SELFCHECK_COLUMNS.split(",")) + ", "
    "(SELECT id FROM submissions WHERE selfcheck_id = sc.id AND superseded_at IS NULL), "  # signed
    "EXISTS (SELECT 1 FROM selfchecks e WHERE e.institution_id = sc.institution_id AND e.id != sc.id), "  # earlier
    + WAITING_OF.format(selfcheck="sc.id")  # sent back
)
"""What ``open_selfcheck`` reads of a self-check ``sc`` (packed by ``json_array``), before
its answers' columns (``OPEN_ANSWER_COLUMNS`` of ``a``); ``opened_from`` makes an
``Opened`` of them."""
OPEN_ANSWER_COLUMNS = ", ".join(f"a.{c.strip()}" for c in _ANSWER_COLUMNS.split(","))
ANSWER_WIDTH = len(_ANSWER_COLUMNS.split(","))
"""How many columns ``OPEN_ANSWER_COLUMNS`` are."""

# The self-check's values packed in one JSON array on one row (with its answers' fingerprint
# beside it: ``opened_from``), then the answers' rows with their own columns only: not the
# self-check's repeated on every answer row (making Python values is most of this read; see
# storage.regulators._WHO_PRESSES_SQL).
_OPEN_SQL = (
    f"WITH s AS MATERIALIZED (SELECT json_array({OPEN_SELFCHECK_VALUES}) AS packed, sc.id AS sid, "
    f"{ANSWERS_FINGERPRINT.format(selfcheck='sc.id')} AS fp "
    "FROM selfchecks sc WHERE sc.institution_id = ? AND sc.campaign_id = ?) "
    f"SELECT s.packed, s.fp{', NULL' * (ANSWER_WIDTH - 1)} FROM s UNION ALL "
    f"SELECT NULL, {OPEN_ANSWER_COLUMNS} FROM answers a WHERE a.selfcheck_id = (SELECT sid FROM s)"
)


def _answer(values: Sequence[Any]) -> Answer:
    return _answer_of(tuple(values))


def _new_answer(values: Sequence[Any]) -> Answer:
    """The Answer of a row of ``_ANSWER_COLUMNS``."""
    item_id, value, text, problem, measure, rect_status, target_date, rev, answered_by, updated_by, updated_at = values
    return Answer(
        item_id=item_id,
        value=Choice(value),
        text=text,
        problem=problem,
        measure=measure,
        rect_status=RectStatus(rect_status) if rect_status else None,
        target_date=dt.date.fromisoformat(target_date) if target_date else None,
        rev=rev,
        answered_by=answered_by,
        updated_by=updated_by,
        updated_at=updated_at,
    )


# An Answer is frozen and wholly made of its row, so a row read before gives the same object
# without parsing it again: the answers of a self-check are read again whenever another
# connection (a colleague's step, the web chat, the CLI) changed one of them. An answer just
# written is a row never read before, and is made with ``_new_answer``: kept here, it would
# only push out rows that may be read again.
_answer_of = functools.lru_cache(maxsize=16384)(_new_answer)


def load_answers(db: sqlite_utils.Database, selfcheck_id: int) -> dict[str, Answer]:
    cursor = db.execute(f"SELECT {_ANSWER_COLUMNS} FROM answers WHERE selfcheck_id = ?", [selfcheck_id])
    return {row[0]: _answer(row) for row in cursor}


def get_answer(db: sqlite_utils.Database, selfcheck_id: int, item_id: str) -> Answer | None:
    row = db.execute(
        f"SELECT {_ANSWER_COLUMNS} FROM answers WHERE selfcheck_id = ? AND item_id = ?", [selfcheck_id, item_id]
    ).fetchone()
    return _answer(row) if row else None


def _snapshot(answer: Answer | None) -> dict[str, Any] | None:
    return None if answer is None else answer_fields(answer)


class _Unknown:
    """``save_answer``'s ``current`` when the caller has not read the answer."""


UNKNOWN: Any = _Unknown()


_to_json = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(value, ensure_ascii=False)``, with one encoder made once (``dumps`` makes one
per call when given an argument): the history's ``old`` and ``new`` of every answer."""


def counter_deltas(before: Answer | None, after: Answer | None) -> tuple[int, int, int, int]:
    """How an answer changing from ``before`` to ``after`` moves the self-check's counters
    (answered, incomplete, non-compliant, not rectified); None is no answer."""

    def weight(a: Answer | None) -> tuple[int, int, int, int]:
        if a is None:
            return (0, 0, 0, 0)
        nc = a.value is Choice.NONCOMPLIANT
        return (1, int(not a.is_complete), int(nc), int(a.open_rectification))

    old, new = weight(before), weight(after)
    return (new[0] - old[0], new[1] - old[1], new[2] - old[2], new[3] - old[3])


def save_answer(
    db: sqlite_utils.Database,
    selfcheck_id: int,
    item_id: str,
    *,
    by: int,
    expected_rev: int | None = None,
    current: Answer | None = UNKNOWN,
    **changes: Any,
) -> Answer:
    """Write a change to one answer, its history and the self-check's counters, in one
    transaction (or as part of the caller's: ``storage.db.transaction``).

    ``expected_rev`` is the revision the user saw; if the answer has moved on since
    (another staff member, an old message), nothing is written and StaleAnswer is
    raised. ``current`` is the answer as the caller last read it (None: not answered),
    which saves reading it again: the write itself checks, in its WHERE clause, that the
    stored revision is still the one read, and raises StaleAnswer if not. A new ``value``
    drops the follow-ups that belonged to the old one (they stay in the history). A
    change that changes nothing writes nothing.
    """
    return save_answer_settled(db, selfcheck_id, item_id, by=by, expected_rev=expected_rev, current=current, **changes)[0]


def save_answer_settled(
    db: sqlite_utils.Database,
    selfcheck_id: int,
    item_id: str,
    *,
    by: int,
    expected_rev: int | None = None,
    current: Answer | None = UNKNOWN,
    settle: Callable[[Answer], str | None] | None = None,
    **changes: Any,
) -> tuple[Answer, SelfCheck | None]:
    """``save_answer``, and with ``settle`` the self-check's status in the same write as its
    counters (issue 14: the press that completes an interview is no statement longer than
    any other). ``settle`` is called with the answer as it will be stored, before the
    counters are written; it returns the status the self-check has with it, or None to
    leave the status alone. Returned: the answer, and the self-check as written if a status
    was set (None otherwise)."""
    unknown = set(changes) - set(ANSWER_FIELDS)
    if unknown:
        raise TypeError(f"unknown answer fields: {sorted(unknown)}")
    now = utcnow()
    with transaction(db):
        read_here = current is UNKNOWN
        if read_here:
            current = get_answer(db, selfcheck_id, item_id)
        if expected_rev is not None and (current.rev if current else 0) != expected_rev:
            raise StaleAnswer(get_answer(db, selfcheck_id, item_id))
        before = _snapshot(current)
        after: dict[str, Any] = dict(before) if before else dict.fromkeys(ANSWER_FIELDS)
        new_value = changes.get("value")
        if new_value is not None and before is not None and Choice(new_value).value != before["value"]:
            after = dict.fromkeys(ANSWER_FIELDS)
        for key, value in changes.items():
            if isinstance(value, (Choice, RectStatus)):
                value = value.value
            elif isinstance(value, dt.date):
                value = value.isoformat()
            after[key] = value
        if after.get("rect_status") != RectStatus.IN_PROGRESS.value:
            after["target_date"] = None
        if after["value"] is None:
            raise ValueError("an answer needs a value before its details")
        if after == before:
            assert current is not None
            if not read_here:  # nothing to write, so no WHERE to check the revision in
                stored = get_answer(db, selfcheck_id, item_id)
                if stored is None or stored.rev != current.rev:
                    raise StaleAnswer(stored)
            return current, None
        rev = (current.rev if current else 0) + 1
        if current is None:
            cursor = db.execute(
                "INSERT INTO answers (selfcheck_id, item_id, value, text, problem, measure, rect_status, "
                "target_date, rev, answered_by, answered_at, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (selfcheck_id, item_id) DO NOTHING",
                [selfcheck_id, item_id, *(after[k] for k in ANSWER_FIELDS), rev, by, now, by, now],
            )
        else:
            cursor = db.execute(
                "UPDATE answers SET value = ?, text = ?, problem = ?, measure = ?, rect_status = ?, "
                "target_date = ?, rev = ?, updated_by = ?, updated_at = ? "
                "WHERE selfcheck_id = ? AND item_id = ? AND rev = ?",
                [*(after[k] for k in ANSWER_FIELDS), rev, by, now, selfcheck_id, item_id, current.rev],
            )
        if cursor.rowcount != 1:  # someone saved it after the caller read it: nothing written
            raise StaleAnswer(get_answer(db, selfcheck_id, item_id))
        saved = _new_answer(
            [item_id, *(after[k] for k in ANSWER_FIELDS), rev, current.answered_by if current else by, by, now]
        )
        known_answers(db).written(selfcheck_id, saved)
        db.execute(
            "INSERT INTO answer_history (selfcheck_id, item_id, rev, changed_by, changed_at, old, new) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                selfcheck_id,
                item_id,
                rev,
                by,
                now,
                _to_json(before) if before else None,
                _to_json(after),
            ],
        )
        counted = [now, *counter_deltas(current, saved)]
        status = settle(saved) if settle is not None else None
        if status is None:
            db.execute(f"UPDATE selfchecks SET {_COUNTED} WHERE id = ?", [*counted, selfcheck_id])
            return saved, None
        # completed_at: kept if it was completed already (a colleague's step), cleared if not completed
        row = db.execute(
            f"UPDATE selfchecks SET {_COUNTED}, status = ?, completed_at = CASE WHEN ? != 'completed' THEN NULL "
            f"WHEN status = 'completed' THEN completed_at ELSE ? END WHERE id = ? RETURNING {_SELFCHECK_COLUMNS}",
            [*counted, status, status, now, selfcheck_id],
        ).fetchone()
    return saved, _selfcheck(row)


_COUNTED = (
    "updated_at = ?, n_answered = n_answered + ?, n_incomplete = n_incomplete + ?, "
    "n_noncompliant = n_noncompliant + ?, n_open_rect = n_open_rect + ?"
)
"""The counters' change by ``counter_deltas`` (and the time of it) in ``save_answer``'s UPDATE."""


@dataclass(frozen=True)
class Counters:
    """A self-check's answer counters (see migration m014)."""

    answered: int
    incomplete: int
    noncompliant: int
    open_rectifications: int


def counters(db: sqlite_utils.Database, selfcheck_id: int) -> Counters | None:
    """The counters as kept on the self-check row."""
    row = db.execute(
        "SELECT n_answered, n_incomplete, n_noncompliant, n_open_rect FROM selfchecks WHERE id = ?", [selfcheck_id]
    ).fetchone()
    return Counters(*row) if row else None


def recount(db: sqlite_utils.Database, selfcheck_id: int) -> Counters:
    """The counters counted afresh from the answers (what the kept ones must equal)."""
    row = db.execute(f"SELECT {COUNTER_EXPRESSIONS} FROM answers a WHERE a.selfcheck_id = ?", [selfcheck_id]).fetchone()
    return Counters(*row)


def recount_all(db: sqlite_utils.Database) -> None:
    """Set every self-check's counters from its answers (after answers were written by
    other means than ``save_answer``: a bulk load, a benchmark's reset)."""
    with transaction(db):
        db.execute(RECOUNT_SQL)


def answer_history(db: sqlite_utils.Database, selfcheck_id: int, item_id: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM answer_history WHERE selfcheck_id = ?"
    params: list[Any] = [selfcheck_id]
    if item_id is not None:
        sql += " AND item_id = ?"
        params.append(item_id)
    rows = list(db.query(sql + " ORDER BY id", params))
    for row in rows:
        row["old"] = json.loads(row["old"]) if row["old"] else None
        row["new"] = json.loads(row["new"])
    return rows


def add_evidence(
    db: sqlite_utils.Database,
    selfcheck_id: int,
    item_id: str,
    *,
    kind: str,
    file_id: str,
    file_unique_id: str,
    by: int,
    file_name: str | None = None,
    mime_type: str | None = None,
    file_size: int | None = None,
) -> int:
    with db.atomic():
        # An id never used before, removed files' included (``evidence`` has no AUTOINCREMENT,
        # so SQLite would hand out the id of the newest file again once it was removed): an
        # old "remove" button must never reach a newer file, nor its record collide.
        cursor = db.execute(
            "INSERT INTO evidence (id, selfcheck_id, item_id, kind, file_id, file_unique_id, file_name, mime_type, "
            "file_size, uploaded_by, uploaded_at) VALUES ((SELECT max(coalesce((SELECT max(id) FROM evidence), 0), "
            "coalesce((SELECT max(id) FROM evidence_removed), 0)) + 1), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [selfcheck_id, item_id, kind, file_id, file_unique_id, file_name, mime_type, file_size, by, utcnow()],
        )
    return int(cursor.lastrowid or 0)


_EVIDENCE_COLUMNS = (
    "id, selfcheck_id, item_id, kind, file_id, file_unique_id, file_name, mime_type, file_size, uploaded_by, uploaded_at"
)


def institution_evidence(db: sqlite_utils.Database, evidence_id: int, institution_id: int) -> dict[str, Any] | None:
    """Evidence ``evidence_id`` if it is of a self-check of this institution (else None)."""
    return next(db.query(
        "SELECT e.* FROM evidence e JOIN selfchecks s ON s.id = e.selfcheck_id WHERE e.id = ? AND s.institution_id = ?",
        [evidence_id, institution_id]), None)


def remove_evidence(db: sqlite_utils.Database, selfcheck_id: int, item_id: str, evidence_id: int, *, by: int) -> dict[str, Any] | None:
    """Move evidence ``evidence_id`` of this self-check's item to ``evidence_removed`` (who,
    when) and delete the web-uploaded bytes no other row names; returns the row as it was,
    or None if there is no such row there (removed already, or another item's)."""
    with db.atomic():
        row = next(
            db.query("SELECT * FROM evidence WHERE id = ? AND selfcheck_id = ? AND item_id = ?", [evidence_id, selfcheck_id, item_id]),
            None,
        )
        if row is None:
            return None
        db.execute(
            f"INSERT INTO evidence_removed ({_EVIDENCE_COLUMNS}, removed_by, removed_at) "
            f"SELECT {_EVIDENCE_COLUMNS}, ?, ? FROM evidence WHERE id = ?",
            [by, utcnow(), evidence_id],
        )
        db.execute("DELETE FROM evidence WHERE id = ?", [evidence_id])
        db.execute(
            "DELETE FROM web_files WHERE ref = ? AND NOT EXISTS (SELECT 1 FROM evidence WHERE file_id = ?)",
            [row["file_id"], row["file_id"]],
        )
    return row


def evidence_for(db: sqlite_utils.Database, selfcheck_id: int, item_id: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM evidence WHERE selfcheck_id = ?"
    params: list[Any] = [selfcheck_id]
    if item_id is not None:
        sql += " AND item_id = ?"
        params.append(item_id)
    return list(db.query(sql + " ORDER BY id", params))
