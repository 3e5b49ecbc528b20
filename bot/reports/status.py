"""Completion status of the institutions in a regulator's scope.

Each institution is in exactly one state for the configured checklist:

* ``not_started``  no self-check yet, or one without a single answer;
* ``in_progress``  answers given, not every applicable item complete;
* ``finished``     every applicable item complete (self-check ``completed``), not signed;
* ``signed``       a current submission (``submissions.superseded_at IS NULL``).

``overdue`` is a flag on top: not signed once the checklist's deadline (end of that day,
local time) has passed. Everything here is a handful of SQL queries over the whole scope
(no per-institution Python loop over answers), so a national scope of 54,000
institutions stays well under a second.

``build_status`` lists every institution in scope (the workbook writes them all);
``status_figures`` only counts (/status, the digest, the chart), and the screens that
name institutions ask for the few they show (``overdue_window``, ``listed_institutions``).
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import zoneinfo
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from enum import StrEnum

import sqlite_utils

from bot.core.checklist import Checklist
from bot.core.interview import Answer, Choice, Interview, referenced_items
from bot.core.scope import Scope
from storage import reports as store
from storage.db import read_snapshot
from storage.sendbacks import waiting_in_scope


class Status(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    FINISHED = "finished"
    SIGNED = "signed"


STATUSES: tuple[Status, ...] = tuple(Status)


@dataclass(slots=True)  # not frozen: 54,000 of them are built per national query
class InstitutionStatus:
    id: int
    uscc: str
    name: str
    province: str
    level: str
    fields: tuple[str, ...]
    selfcheck_id: int | None
    status: Status
    overdue: bool
    signed_at: str | None


@dataclass
class Tally:
    total: int = 0
    not_started: int = 0
    in_progress: int = 0
    finished: int = 0
    signed: int = 0
    overdue: int = 0

    def add(self, status: Status, overdue: bool, count: int = 1) -> None:
        self.total += count
        setattr(self, status.value, getattr(self, status.value) + count)
        if overdue:
            self.overdue += count

    @property
    def completed(self) -> int:
        """Finished the self-check, signed or not."""
        return self.finished + self.signed

    def as_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "not_started": self.not_started,
            "in_progress": self.in_progress,
            "finished": self.finished,
            "signed": self.signed,
            "overdue": self.overdue,
        }


@dataclass
class StatusReport:
    scope: Scope
    checklist: Checklist
    deadline: dt.date | None
    past_deadline: bool
    institutions: list[InstitutionStatus]
    totals: Tally = field(default_factory=Tally)
    by_province: dict[str, Tally] = field(default_factory=dict)
    by_field: dict[str, Tally] = field(default_factory=dict)
    # A report of figures only (``status_figures``) has no ``institutions``; for /overdue
    # it carries the overdue institutions of one page: those from position
    # ``overdue_from`` of the overdue list (by province, name, id).
    overdue_listed: list[InstitutionStatus] | None = None
    overdue_from: int = 0
    # Self-checks a regulator sent back for rework, not signed again since (figures only).
    sent_back: int = 0

    @property
    def overdue(self) -> list[InstitutionStatus]:
        """Every overdue institution (of ``institutions``: a report of every one)."""
        return [i for i in self.institutions if i.overdue]

    def overdue_slice(self, start: int, stop: int) -> list[InstitutionStatus]:
        """Positions ``start`` to ``stop`` of the overdue list, from whichever the report has."""
        if self.overdue_listed is None:
            return self.overdue[start:stop]
        first = self.overdue_from
        return self.overdue_listed[max(start - first, 0) : max(stop - first, 0)]


def past_deadline(checklist: Checklist, now: dt.datetime) -> bool:
    """True once the deadline day is over where the campaign runs (its time zone; without
    one, the local time of ``now``), as its reminders count it."""
    if checklist.deadline is None:
        return False
    if checklist.timezone is not None and now.tzinfo is not None:
        now = now.astimezone(zoneinfo.ZoneInfo(checklist.timezone))
    return now.date() > checklist.deadline


def institution_statuses(
    db: sqlite_utils.Database, checklist: Checklist, scope: Scope, now: dt.datetime, *, only: int | None = None
) -> list[InstitutionStatus]:
    """Every institution in ``scope`` (or just institution ``only``, if it is in scope)
    with its state, ordered by province, then name."""
    rows = store.status_rows(db, checklist.campaign_key, scope, only=only)
    if checklist.coverage is not None:  # a campaign: only the institutions it covers
        covered: dict[tuple[str, str, str], bool] = {}  # by (level, province, fields as stored): a few thousand

        def covers(row: store.StatusRow) -> bool:
            key = (row.level, row.province, row.fields)
            found = covered.get(key)
            if found is None:
                found = covered[key] = checklist.covers(row.level, row.province, json.loads(row.fields))
            return found

        rows = [r for r in rows if covers(r)]
    # Sorted here rather than in SQL: sorting 54,000 names in SQLite costs more than the query.
    rows.sort(key=_BY_PROVINCE_NAME_ID)
    return _statuses(rows, past_deadline(checklist, now))


_BY_PROVINCE_NAME_ID = operator.itemgetter(3, 2, 0)  # of a StatusRow: (province, name, id), in C


def _statuses(rows: list[store.StatusRow], late: bool) -> list[InstitutionStatus]:
    parsed: dict[str, tuple[str, ...]] = {}
    # each row brings its own copy of a province's name and of the level: one of each is
    # kept (a national list is 54,000 institutions in 31 provinces and two levels)
    shared: dict[str, str] = {}
    result: list[InstitutionStatus] = []
    for iid, uscc, name, province, level, fields, sc, sc_status, answered, signed_at in rows:
        field_ids = parsed.get(fields)
        if field_ids is None:
            field_ids = parsed[fields] = tuple(json.loads(fields))
        province = shared.setdefault(province, province)
        level = shared.setdefault(level, level)
        if signed_at is not None:
            status = Status.SIGNED
        elif sc_status == "completed":
            status = Status.FINISHED
        elif answered:
            status = Status.IN_PROGRESS
        else:
            status = Status.NOT_STARTED
        result.append(
            InstitutionStatus(
                id=iid,
                uscc=uscc,
                name=name,
                province=province,
                level=level,
                fields=field_ids,
                selfcheck_id=sc,
                status=status,
                overdue=late and status is not Status.SIGNED,
                signed_at=signed_at,
            )
        )
    return result


def build_status(db: sqlite_utils.Database, checklist: Checklist, scope: Scope, now: dt.datetime) -> StatusReport:
    """Totals, by province and by field (an institution counts in each of its fields; a
    scope narrowed to fields counts only those)."""
    rows = institution_statuses(db, checklist, scope, now)
    late = past_deadline(checklist, now)
    report = StatusReport(scope, checklist, checklist.deadline, late, rows)
    # counted by province and by fields list apart (a few hundred groups each at national
    # scale, not one per combination); whether one is overdue follows from its status
    for (province, status), count in Counter((row.province, row.status) for row in rows).items():
        overdue = late and status is not Status.SIGNED
        report.totals.add(status, overdue, count)
        report.by_province.setdefault(province, Tally()).add(status, overdue, count)
    for (fields, status), count in Counter((row.fields, row.status) for row in rows).items():
        overdue = late and status is not Status.SIGNED
        for f in fields:
            if not scope.fields or f in scope.fields:
                report.by_field.setdefault(f, Tally()).add(status, overdue, count)
    return report


_STATE_OF_CODE = {
    store.STATE_NOT_STARTED: Status.NOT_STARTED,
    store.STATE_IN_PROGRESS: Status.IN_PROGRESS,
    store.STATE_FINISHED: Status.FINISHED,
    store.STATE_SIGNED: Status.SIGNED,
}


def status_figures(db: sqlite_utils.Database, checklist: Checklist, scope: Scope, now: dt.datetime) -> StatusReport:
    """The figures of ``build_status`` (totals, by province, by field, overdue) counted in
    SQL, without listing a single institution: ``institutions`` is empty. Two queries in
    one snapshot (the institutions by province and fields, their self-checks by state),
    whose groups (some thousands at 54,000) are summed per province and per fields list
    here."""
    late = past_deadline(checklist, now)
    report = StatusReport(scope, checklist, checklist.deadline, late, [])
    # [not started, in progress, finished, signed] per province and per stored fields list:
    # every institution first as not started, then those with a self-check moved to its
    # state (the same WHERE on both sides: each self-check's institution was counted).
    by_province: dict[str, list[int]] = {}
    by_fields: dict[str, list[int]] = {}
    counts = store.status_counts(db, checklist.campaign_key, scope, checklist.coverage)
    for (province, fields), n in counts.institutions.items():
        for row in (by_province.get(province) or by_province.setdefault(province, [0, 0, 0, 0]),
                    by_fields.get(fields) or by_fields.setdefault(fields, [0, 0, 0, 0])):  # fmt: skip
            row[store.STATE_NOT_STARTED] += n
    for (province, fields, state), n in counts.selfchecks.items():
        for row in (by_province[province], by_fields[fields]):
            row[store.STATE_NOT_STARTED] -= n
            row[state] += n

    def add(into: Tally, row: list[int]) -> None:
        for code, n in enumerate(row):
            if n:
                into.add(_STATE_OF_CODE[code], late and code != store.STATE_SIGNED, n)

    for province, row in by_province.items():
        add(report.by_province.setdefault(province, Tally()), row)
        add(report.totals, row)
    by_field: dict[str, list[int]] = {}
    for fields, row in by_fields.items():
        for f in json.loads(fields):
            if not scope.fields or f in scope.fields:
                total = by_field.get(f) or by_field.setdefault(f, [0, 0, 0, 0])
                for k, n in enumerate(row):
                    total[k] += n
    for f, row in by_field.items():
        add(report.by_field.setdefault(f, Tally()), row)
    report.sent_back = waiting_in_scope(db, checklist.campaign_key, scope)
    return report


def listed_institutions(
    db: sqlite_utils.Database,
    checklist: Checklist,
    scope: Scope,
    now: dt.datetime,
    *,
    signed: bool,
    among: Collection[int] | None = None,
    excluding: Collection[int] = (),
    limit: int = -1,
    offset: int = 0,
) -> list[InstitutionStatus]:
    """The signed (or not signed) institutions of ``build_status``'s list, in its order
    (province, name, id): ``limit`` of them (-1: all) from ``offset``, only those in
    ``among`` if given, none in ``excluding``."""
    rows = store.listed_status_rows(
        db, checklist.campaign_key, scope, checklist.coverage,
        signed=signed, among=among, excluding=excluding, limit=limit, offset=offset,
    )  # fmt: skip
    return _statuses(rows, past_deadline(checklist, now))


def signed_institution_ids(db: sqlite_utils.Database, checklist: Checklist, scope: Scope) -> list[int]:
    return store.signed_institution_ids(db, checklist.campaign_key, scope, checklist.coverage)


def page_of(count: int, page: int, size: int) -> tuple[int, int]:
    """(the page shown, pages) for ``page`` of a list of ``count`` in pages of ``size``:
    a page past either end shows the nearest one."""
    pages = max((count + size - 1) // size, 1)
    return min(max(page, 0), pages - 1), pages


def overdue_window(
    db: sqlite_utils.Database, checklist: Checklist, report: StatusReport, now: dt.datetime, page: int, size: int
) -> StatusReport:
    """``report`` (of ``status_figures``) with the overdue institutions of ``page`` (as
    /overdue shows it: ``page_of``) for the screen to list; nobody is overdue before the
    deadline."""
    if not report.past_deadline or not report.totals.overdue:
        report.overdue_listed, report.overdue_from = [], 0
        return report
    shown, _pages = page_of(report.totals.overdue, page, size)
    report.overdue_from = shown * size
    report.overdue_listed = listed_institutions(
        db, checklist, report.scope, now, signed=False, limit=size, offset=report.overdue_from
    )
    return report


# --- per-institution progress and findings (exports, digests, detail) -------------------


@dataclass(frozen=True, slots=True)  # slots: a national workbook holds 54,000 of them
class Progress:
    done: int
    total: int
    noncompliant: int
    open_rectifications: int

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total if self.total else 0


def progress_by_selfcheck(
    db: sqlite_utils.Database, checklist: Checklist, scope: Scope, institutions: list[InstitutionStatus]
) -> dict[int, Progress]:
    """Items complete, non-compliances and open rectifications per self-check, as staff's
    own progress counts them (``Interview.progress``): only the answers to items that apply
    to the institution and that no earlier answer hides.

    Counted from the counters ``save_answer`` keeps on each self-check (over all its
    answers), less the answers that do not count. Only those can be answers to items that
    apply to some fields only, to items with a condition, or to items no longer in the
    checklist; the answers to every other item (most of the two million at national scale)
    always count, and are not read. The reads share one snapshot, so a press meanwhile is
    in the counters and the answers alike or in neither."""
    always = [item.id for item in checklist.items if not item.fields and item.relevant is None]
    conditional = [item for item in checklist.items if item.relevant is not None]
    interviews: dict[tuple[str, ...], Interview] = {}

    def interview_for(fields: tuple[str, ...]) -> Interview:
        # keyed on the tuple as parsed (the same stored list gives an equal tuple); the
        # order of the fields does not change which items apply
        found = interviews.get(fields)
        if found is None:
            found = interviews[fields] = Interview(checklist, fields)
        return found

    with read_snapshot(db):
        counts = {
            t.selfcheck_id: [t.done, t.noncompliant, t.open_rectifications]
            for t in store.counter_tallies(db, checklist.campaign_key, scope)
        }
        # the answers conditions read (a few items), to tell which items are hidden
        stored: dict[int, dict[str, Answer]] = {}
        if conditional:
            for sc, item_id, value, text in store.answers_in_scope(
                db, checklist.campaign_key, scope, referenced_items(checklist)
            ):
                stored.setdefault(sc, {})[item_id] = Answer(item_id, Choice(value), text)
        hidden: dict[int, set[str]] = {}
        interview_of: dict[int, Interview] = {}  # self-check → its institution's interview
        for inst in institutions:
            if inst.selfcheck_id is None:
                continue
            interview = interview_of[inst.selfcheck_id] = interview_for(inst.fields)
            if conditional:
                answers = stored.get(inst.selfcheck_id, {})
                hidden[inst.selfcheck_id] = {
                    item.id for item in conditional if interview.applies(item.id) and not interview.shown(item, answers)
                }
        no_hidden: set[str] = set()
        applies_of = {sc: interview.applies for sc, interview in interview_of.items()}  # (one lookup a row below)
        for sc, item_id, done, nc, open_rect in store.tallies_except(db, checklist.campaign_key, scope, always):
            applies = applies_of.get(sc)
            if applies is None:  # not in scope (or not covered by the campaign)
                continue
            # an item of the checklist that applies to the institution and is not hidden
            if applies(item_id) and item_id not in hidden.get(sc, no_hidden):
                continue  # it counts, as the counters have it
            tally = counts.setdefault(sc, [0, 0, 0])
            tally[0] -= done
            tally[1] -= nc
            tally[2] -= open_rect
    result: dict[int, Progress] = {}
    for sc, interview in interview_of.items():
        done, nc, open_rect = counts.get(sc, (0, 0, 0))
        total = interview.total - len(hidden.get(sc, no_hidden))
        result[sc] = Progress(min(done, total), total, nc, open_rect)
    return result


def top_noncompliant_items(
    db: sqlite_utils.Database, checklist: Checklist, scope: Scope, limit: int = 5
) -> list[tuple[str, int]]:
    """The items most often answered 不符合 in scope: (item id, institutions)."""
    rows = store.noncompliant_item_counts(db, checklist.campaign_key, scope, limit)
    return [(r.item_id, r.institutions) for r in rows if checklist.has_item(r.item_id)]


def find_institutions(
    db: sqlite_utils.Database, scope: Scope, query: str, limit: int = 10
) -> list[dict[str, object]]:
    """Institutions in scope whose USCC is ``query`` or whose name contains it. Outside
    the scope nothing is found, exactly as if it did not exist. As dicts (id, uscc, name,
    province) while bot/telegram's regulator views read them so; ``storage.reports.
    find_in_scope`` has the typed rows."""
    return [asdict(m) for m in store.find_in_scope(db, scope, query, limit)]


def institution_in_scope(db: sqlite_utils.Database, scope: Scope, institution_id: int) -> bool:
    return store.in_scope(db, scope, institution_id)


def noncompliant_counts_by_section(
    db: sqlite_utils.Database, checklist: Checklist, scope: Scope
) -> tuple[dict[str, Counter[str]], dict[str, int]]:
    """For the statistics sheet: per field, non-compliant answers by checklist section
    (the "type" of problem), and per field the institutions with at least one
    (``SectionTally`` of every non-compliant answer in scope)."""
    tally = SectionTally(checklist, scope)
    for iid, fields, item_id in store.noncompliant_answers(db, checklist.campaign_key, scope):
        tally.add(iid, fields, item_id)
    return tally.result()


class SectionTally:
    """Non-compliant answers counted as they come (the workbook counts them while it writes
    the rectification sheet, which lists the same answers, rather than reading them twice).
    Counted per fields list as stored (a few hundred distinct lists at national scale) and
    spread over the fields by ``result``: an institution has one list, so the institutions
    of different lists are different ones. Answers to items not in the checklist are left out."""

    def __init__(self, checklist: Checklist, scope: Scope) -> None:
        self._section_of = {item.id: item.section_id for item in checklist.items}
        self._scope = scope
        self._by_list: Counter[tuple[str, str]] = Counter()  # (fields as stored, section) → answers
        self._institutions_of: dict[str, set[int]] = {}

    def add(self, institution_id: int, fields: str, item_id: str) -> None:
        section = self._section_of.get(item_id)
        if section is None:
            return
        self._by_list[fields, section] += 1
        found = self._institutions_of.get(fields)
        if found is None:
            found = self._institutions_of[fields] = set()
        found.add(institution_id)

    def result(self) -> tuple[dict[str, Counter[str]], dict[str, int]]:
        """Per field: the answers by section, and the institutions with at least one."""
        wanted = self._scope.fields
        parsed = {fields: [f for f in json.loads(fields) if not wanted or f in wanted] for fields in self._institutions_of}
        by_field: dict[str, Counter[str]] = {}
        for (fields, section), n in self._by_list.items():
            for f in parsed[fields]:
                by_field.setdefault(f, Counter())[section] += n
        with_nc: Counter[str] = Counter()
        for fields, ids in self._institutions_of.items():
            for f in parsed[fields]:
                with_nc[f] += len(ids)
        return by_field, dict(with_nc)
