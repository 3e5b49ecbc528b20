"""/status, /overdue and the digest count their figures in SQL (``status_figures``) and
fetch only the institutions they name (issue 14). What a regulator sees must not change:
here the figures, the pages of /overdue and the digest's text are compared with a plain
recount from the stored rows (and with ``build_status``, which lists every institution),
on a database with three campaigns (one without coverage, one of a field, one of a
province's provincial institutions), four provinces, both levels, institutions in one to
three fields, every state (a superseded submission too), staff who blocked the bot and a
previous digest, in national, provincial and field scopes, before and after the deadline."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from bot.conversation.actions import ShowOverdue, ShowStatus
from bot.conversation.engine import Actor, Conversation
from bot.conversation.regulator import OVERDUE_PAGE_SIZE, overdue_screen, status_screen
from bot.core.campaigns import Coverage
from bot.core.checklist import Checklist
from bot.core.interview import Choice, Interview
from bot.core.roster import RosterRow
from bot.core.scope import Scope
from bot.core.uscc import make_uscc
from bot.i18n import build_i18n
from bot.reports.status import (
    Status,
    StatusReport,
    build_status,
    listed_institutions,
    overdue_window,
    status_figures,
)
from bot.services.digests import LIST_LIMIT, Digest, Listing, build_digest, render_digest
from storage.answers import get_or_create_selfcheck, save_answer, set_selfcheck_status
from storage.conversations import SQLiteStates
from storage.db import open_db, utcnow
from storage.digests import save_snapshot
from storage.institutions import ensure_user, upsert_institutions
from storage.regulators import add_regulator
from storage.reports import fully_unreachable_institutions, pending_corrections

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DEADLINE = dt.date(2023, 10, 27)
DURING = dt.datetime(2023, 10, 9, 9, 0, tzinfo=SHANGHAI)
AFTER = dt.datetime(2023, 10, 28, 9, 0, tzinfo=SHANGHAI)
PROVINCES = {"广东": "440100", "北京": "110108", "浙江": "330100", "四川": "510100"}
FIELDS = ("food", "motor-vehicle", "eco-environment", "building-materials")
STATES = ("none", "empty", "progress", "finished", "signed", "superseded")
SCOPES = ["national", "province:广东", "province:北京,浙江", "national;fields:food", "province:广东;fields:motor-vehicle,food"]
REGULATOR = 8800


def _campaigns(checklist: Checklist) -> dict[str, Checklist]:
    return {
        "plain": checklist,  # no campaign: every institution
        "food": checklist.for_campaign("2023-food", DEADLINE, coverage=Coverage("national", fields=frozenset({"food"}))),
        "gd-provincial": checklist.for_campaign(
            "2023-gd", DEADLINE, coverage=Coverage("provincial", provinces=frozenset({"广东"}))
        ),
    }


def _populate(db: sqlite_utils.Database, campaigns: dict[str, Checklist], seed: int = 14) -> None:
    """120 institutions; in each campaign each in a random state. Names repeat (the order
    is province, name, id) and some are written in ASCII."""
    rnd = random.Random(seed)
    rows = []
    for n in range(120):
        province = rnd.choice(list(PROVINCES))
        name = rnd.choice(["华测", "谱尼", "Alpha Lab", "中检", "zeta"]) + f"检测{rnd.randrange(40)}"
        rows.append(
            RosterRow(
                line=n + 2,
                name=name,
                uscc=make_uscc(f"91{PROVINCES[province]}MA{n:07d}"),
                cma_cert=f"23{n:010d}",
                province=province,
                level=rnd.choice(["national", "provincial"]),
                fields=tuple(rnd.sample(FIELDS, rnd.randint(1, 3))),
                contact_name="李四",
                contact_phone="010-82262722",
            )
        )
    upsert_institutions(db, rows)
    ids = [r[0] for r in db.execute("SELECT id FROM institutions ORDER BY id")]
    for n, iid in enumerate(ids):  # staff: a third blocked the bot, some of them alone
        staff = 50_000 + n
        ensure_user(db, staff, f"员工{n}")
        db.execute("INSERT INTO members (telegram_id, institution_id, bound_at) VALUES (?, ?, ?)", [staff, iid, utcnow()])
        if n % 3 == 0:
            db.execute("INSERT INTO unreachable (chat_id, marked_at, error) VALUES (?, ?, '403')", [staff, utcnow()])
        if n % 6 == 0:  # a second member who still reads the bot: this one is reachable
            ensure_user(db, 90_000 + n, "同事")
            db.execute("INSERT INTO members (telegram_id, institution_id, bound_at) VALUES (?, ?, ?)", [90_000 + n, iid, utcnow()])
    db.conn.commit()
    for checklist in campaigns.values():
        for n, iid in enumerate(ids):
            state = rnd.choice(STATES)
            if state == "none":
                continue
            sc = get_or_create_selfcheck(db, iid, checklist).id
            fields = json.loads(db.execute("SELECT fields FROM institutions WHERE id = ?", [iid]).fetchone()[0])
            items = [i for i in Interview(checklist, tuple(fields)).items if i.kind == "compliance"]
            if state in ("progress", "finished", "signed", "superseded"):
                for item in items[: rnd.randint(1, 3)]:
                    save_answer(db, sc, item.id, by=50_000 + n, value=Choice.COMPLIANT)
            if state in ("finished", "signed", "superseded"):
                set_selfcheck_status(db, sc, "completed")
            if state in ("signed", "superseded"):
                db.execute(
                    "INSERT INTO submissions (selfcheck_id, institution_id, pledge_id, pledge_version, signer_name, "
                    "signer_role, signed_by, signed_at, canonical, sha256, verification_code, superseded_at) "
                    "VALUES (?, ?, 'p', '1', '王五', '负责人', ?, '2023-10-08T01:00:00+00:00', '{}', 'x', ?, ?)",
                    [sc, iid, 50_000 + n, f"V{checklist.campaign_key}{n}",
                     "2023-10-09T01:00:00+00:00" if state == "superseded" else None],
                )  # fmt: skip
                db.conn.commit()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, checklist: Checklist) -> Path:
    """The database, built once for the module (each test gets a copy)."""
    path = tmp_path_factory.mktemp("status-figures") / "zicha.db"
    database = open_db(path)
    _populate(database, _campaigns(checklist))
    database.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database.close()
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    shutil.copyfile(template, tmp_path / "zicha.db")
    database = open_db(tmp_path / "zicha.db")
    yield database
    database.close()


@pytest.fixture
def campaigns(checklist: Checklist) -> dict[str, Checklist]:
    return _campaigns(checklist)


# --- the plain recount ------------------------------------------------------------------


def recount(db: sqlite_utils.Database, checklist: Checklist, scope: Scope, now: dt.datetime) -> dict[str, Any]:
    """Every figure, from the stored rows one institution at a time in Python: its
    self-check for the campaign, its answers counted, its current submission."""
    late = now.date() > DEADLINE
    states: dict[int, Status] = {}
    rows: dict[int, tuple[str, str, tuple[str, ...]]] = {}
    for iid, name, province, level, fields_json in db.execute("SELECT id, name, province, level, fields FROM institutions"):
        fields = tuple(json.loads(fields_json))
        if not scope.covers(province, fields) or not checklist.covers(level, province, fields):
            continue
        sc = db.execute(
            "SELECT id, status FROM selfchecks WHERE institution_id = ? AND campaign_id = ?", [iid, checklist.campaign_key]
        ).fetchone()
        if sc is None:
            state = Status.NOT_STARTED
        elif db.execute("SELECT 1 FROM submissions WHERE selfcheck_id = ? AND superseded_at IS NULL", [sc[0]]).fetchone():
            state = Status.SIGNED
        elif sc[1] == "completed":
            state = Status.FINISHED
        elif db.execute("SELECT COUNT(*) FROM answers WHERE selfcheck_id = ?", [sc[0]]).fetchone()[0]:
            state = Status.IN_PROGRESS
        else:
            state = Status.NOT_STARTED
        states[iid], rows[iid] = state, (province, name, fields)

    def tally(ids: list[int]) -> dict[str, int]:
        c = Counter(states[i].value for i in ids)
        overdue = sum(1 for i in ids if late and states[i] is not Status.SIGNED)
        return {"total": len(ids), **{s.value: c[s.value] for s in Status}, "overdue": overdue}

    order = sorted(states, key=lambda i: (rows[i][0], rows[i][1], i))
    by_field: dict[str, list[int]] = {}
    for i in order:
        for f in rows[i][2]:
            if not scope.fields or f in scope.fields:
                by_field.setdefault(f, []).append(i)
    return {
        "totals": tally(order),
        "by_province": {p: tally([i for i in order if rows[i][0] == p]) for p in {rows[i][0] for i in order}},
        "by_field": {f: tally(ids) for f, ids in by_field.items()},
        "order": order,
        "states": states,
        "overdue": [i for i in order if late and states[i] is not Status.SIGNED],
    }


def figures(report: StatusReport) -> dict[str, Any]:
    return {
        "totals": report.totals.as_dict(),
        "by_province": {p: t.as_dict() for p, t in report.by_province.items()},
        "by_field": {f: t.as_dict() for f, t in report.by_field.items()},
    }


# --- the figures --------------------------------------------------------------------------


@pytest.mark.parametrize("now", [DURING, AFTER], ids=["during", "after"])
@pytest.mark.parametrize("scope_text", SCOPES)
@pytest.mark.parametrize("campaign", ["plain", "food", "gd-provincial"])
def test_the_counted_figures_are_the_recounted_ones(
    db: sqlite_utils.Database, campaigns: dict[str, Checklist], campaign: str, scope_text: str, now: dt.datetime
) -> None:
    checklist, scope = campaigns[campaign], Scope.parse(scope_text)
    expected = recount(db, checklist, scope, now)
    counted = status_figures(db, checklist, scope, now)
    assert counted.institutions == []  # nothing listed
    assert figures(counted) == {k: expected[k] for k in ("totals", "by_province", "by_field")}
    listed = build_status(db, checklist, scope, now)  # the workbook's report: the same figures
    assert figures(listed) == figures(counted)
    assert [i.id for i in listed.institutions] == expected["order"]
    assert {i.id: i.status for i in listed.institutions} == expected["states"]
    assert (counted.past_deadline, counted.deadline) == (listed.past_deadline, listed.deadline)


def test_the_fixture_has_every_state_in_every_campaign(db: sqlite_utils.Database, campaigns: dict[str, Checklist]) -> None:
    for checklist in campaigns.values():
        totals = recount(db, checklist, Scope(national=True), AFTER)["totals"]
        assert all(totals[s.value] > 0 for s in Status), totals
        assert totals["overdue"] > 3 * OVERDUE_PAGE_SIZE or checklist.coverage is not None
    assert db.execute("SELECT COUNT(*) FROM submissions WHERE superseded_at IS NOT NULL").fetchone()[0] > 0


@pytest.mark.parametrize("scope_text", SCOPES)
@pytest.mark.parametrize("campaign", ["plain", "food", "gd-provincial"])
def test_the_lists_fetched_are_the_recounted_ones_in_order(
    db: sqlite_utils.Database, campaigns: dict[str, Checklist], campaign: str, scope_text: str
) -> None:
    checklist, scope = campaigns[campaign], Scope.parse(scope_text)
    expected = recount(db, checklist, scope, AFTER)
    unsigned = [i for i in expected["order"] if expected["states"][i] is not Status.SIGNED]
    signed = [i for i in expected["order"] if expected["states"][i] is Status.SIGNED]
    every = {i.id: i for i in build_status(db, checklist, scope, AFTER).institutions}
    assert listed_institutions(db, checklist, scope, AFTER, signed=False) == [every[i] for i in unsigned]
    assert listed_institutions(db, checklist, scope, AFTER, signed=True) == [every[i] for i in signed]
    some = set(expected["order"][::3])
    assert [i.id for i in listed_institutions(db, checklist, scope, AFTER, signed=True, excluding=some, limit=4)] == [
        i for i in signed if i not in some
    ][:4]
    assert [i.id for i in listed_institutions(db, checklist, scope, AFTER, signed=False, among=some, offset=2)] == [
        i for i in unsigned if i in some
    ][2:]
    # /overdue, page by page (and past either end), as the screen shows it
    report = status_figures(db, checklist, scope, AFTER)
    pages = max((len(expected["overdue"]) + OVERDUE_PAGE_SIZE - 1) // OVERDUE_PAGE_SIZE, 1)
    full = build_status(db, checklist, scope, AFTER)
    for page in (-1, *range(pages + 1)):
        windowed = overdue_window(db, checklist, dataclasses.replace(report), AFTER, page, OVERDUE_PAGE_SIZE)
        assert len(windowed.overdue_listed or []) <= OVERDUE_PAGE_SIZE  # one page comes back, not the list
        assert overdue_screen(windowed, page, "zh_CN") == overdue_screen(full, page, "zh_CN")
    assert status_screen(report, "en") == status_screen(full, "en")


# --- through the regulator's screens and the digest ---------------------------------------


def test_status_and_every_overdue_page_through_the_handler_read_as_from_every_institution(
    db: sqlite_utils.Database, campaigns: dict[str, Checklist]
) -> None:
    from bot.config import load_settings

    checklist = campaigns["plain"]
    conversation = Conversation(
        db=db, checklist=checklist, settings=load_settings(_env_file=None), clock=lambda: AFTER,
        states=SQLiteStates(db), catalog=build_i18n("zh_CN"),
    )  # fmt: skip
    scope = Scope.parse("province:广东,北京")
    actor = Actor(REGULATOR, None, "zh_CN", f"test:{REGULATOR}", regulator=add_regulator(db, REGULATOR, scope))
    full = build_status(db, checklist, scope, AFTER)
    i18n = build_i18n("zh_CN")
    with i18n.context(), i18n.use_locale("zh_CN"):
        expected_status = status_screen(full, "zh_CN").text
        pages = (full.totals.overdue + OVERDUE_PAGE_SIZE - 1) // OVERDUE_PAGE_SIZE
        expected_pages = [overdue_screen(full, page, "zh_CN").text for page in range(pages)]
    status = conversation.handle(actor, ShowStatus()).screen
    assert status is not None and status.text == expected_status
    assert pages >= 2
    shown = []
    for page in range(pages):
        screen = conversation.handle(actor, ShowOverdue(page=page)).screen
        assert screen is not None
        shown.append(screen.text)
    assert shown == expected_pages
    names = {i.name for i in full.overdue}
    assert all(any(name in text for text in shown) for name in names)  # every overdue institution on some page


def reference_digest(
    db: sqlite_utils.Database, checklist: Checklist, scope: Scope, now: dt.datetime, previous: Any
) -> Digest:
    """The digest as it was built before: from the list of every institution in scope."""
    report = build_status(db, checklist, scope, now)
    already = previous.signed_ids if previous else frozenset()

    def listing(rows: list[Any]) -> Listing:
        return Listing(len(rows), rows[:LIST_LIMIT])

    unreachable_ids = fully_unreachable_institutions(db, scope)
    from bot.reports.items import confirm_item_ids
    from bot.reports.status import top_noncompliant_items

    return Digest(
        REGULATOR, "daily", now.date(), report, previous,
        signed_ids=[i.id for i in report.institutions if i.status is Status.SIGNED],
        newly_signed=listing([i for i in report.institutions if i.status is Status.SIGNED and i.id not in already]),
        overdue=listing(report.overdue),
        unreachable=listing([i for i in report.institutions if i.id in unreachable_ids and i.status is not Status.SIGNED]),
        top_items=top_noncompliant_items(db, checklist, scope, 5),
        corrections=pending_corrections(db, checklist.campaign_key, confirm_item_ids(checklist), scope),
    )  # fmt: skip


@pytest.mark.parametrize("with_previous", [False, True], ids=["first", "with-previous"])
@pytest.mark.parametrize("now", [DURING, AFTER], ids=["during", "after"])
@pytest.mark.parametrize("scope_text", ["national", "province:广东", "national;fields:food"])
@pytest.mark.parametrize("campaign", ["plain", "food"])
def test_the_digest_reads_as_built_from_every_institution(
    db: sqlite_utils.Database, campaigns: dict[str, Checklist], campaign: str, scope_text: str, now: dt.datetime,
    with_previous: bool,
) -> None:  # fmt: skip
    checklist, scope = campaigns[campaign], Scope.parse(scope_text)
    add_regulator(db, REGULATOR, scope)
    if with_previous:  # the day before, a third of today's signed had signed
        signed = [i.id for i in build_status(db, checklist, scope, now).institutions if i.status is Status.SIGNED]
        save_snapshot(db, REGULATOR, "daily", "2023-10-01", {"signed": len(signed) // 3}, signed[::3], campaign_id=checklist.campaign_key)
    digest = build_digest(db, checklist, REGULATOR, scope, now, "daily")
    expected = reference_digest(db, checklist, scope, now, digest.previous)
    assert (digest.previous is None) is not with_previous
    assert sorted(digest.signed_ids) == sorted(expected.signed_ids)
    assert digest.totals == expected.totals
    for name in ("newly_signed", "overdue", "unreachable"):
        got, want = getattr(digest, name), getattr(expected, name)
        assert (got.count, got.shown) == (want.count, want.shown), name
    assert digest.unreachable.count > 0
    i18n = build_i18n("zh_CN")
    for locale in ("zh_CN", "en"):
        for html in (True, False):
            assert render_digest(db, checklist, i18n, digest, locale, html=html) == render_digest(
                db, checklist, i18n, expected, locale, html=html
            )


# --- one snapshot, and the plans -----------------------------------------------------------


def test_a_report_reads_one_snapshot_while_staff_keep_writing(
    db: sqlite_utils.Database, campaigns: dict[str, Checklist], tmp_path: Path
) -> None:
    """The figures and the names of a report come from one state of the database, even if
    an institution signs between its queries (a second connection, as another process)."""
    from storage.db import read_snapshot
    from storage.reports import signed_institution_ids

    checklist, scope = campaigns["plain"], Scope(national=True)
    other = open_db(tmp_path / "zicha.db", migrate=False)
    before = status_figures(db, checklist, scope, AFTER).totals.signed
    unsigned = listed_institutions(db, checklist, scope, AFTER, signed=False, limit=1)[0]
    with read_snapshot(db):
        inside = status_figures(db, checklist, scope, AFTER)
        sc = other.execute(
            "SELECT id FROM selfchecks WHERE institution_id = ? AND campaign_id = ?", [unsigned.id, checklist.campaign_key]
        ).fetchone()
        sc_id = sc[0] if sc else get_or_create_selfcheck(other, unsigned.id, checklist).id
        other.execute(
            "INSERT INTO submissions (selfcheck_id, institution_id, pledge_id, pledge_version, signer_name, signer_role, "
            "signed_by, signed_at, canonical, sha256, verification_code) "
            "VALUES (?, ?, 'p', '1', '王五', '负责人', 1, '2023-10-20T01:00:00+00:00', '{}', 'x', 'V-late')",
            [sc_id, unsigned.id],
        )
        other.conn.commit()
        assert len(signed_institution_ids(db, checklist.campaign_key, scope)) == before == inside.totals.signed
    assert status_figures(db, checklist, scope, AFTER).totals.signed == before + 1  # and then it is seen
    assert not db.conn.in_transaction
    other.close()


@pytest.mark.parametrize("scope_text", ["national", "province:广东,北京"])
def test_the_counts_read_indexes_and_sort_nothing(
    db: sqlite_utils.Database, campaigns: dict[str, Checklist], scope_text: str
) -> None:
    from bot.reports.items import confirm_item_ids
    from bot.reports.status import top_noncompliant_items

    db.execute("ANALYZE")  # the statistics a grown database has
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    checklist, scope = campaigns["food"], Scope.parse(scope_text)
    status_figures(db, checklist, scope, AFTER)
    pending_corrections(db, checklist.campaign_key, confirm_item_ids(checklist), scope)
    top_noncompliant_items(db, checklist, scope)
    db.conn.set_trace_callback(None)
    plans = {
        sql: " / ".join(str(row[3]) for row in db.execute("EXPLAIN QUERY PLAN " + sql))
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT")
    }
    (count,) = [p for sql, p in plans.items() if "GROUP BY i.province, i.fields" in sql]
    assert "COVERING INDEX institutions_province_fields" in count and "TEMP B-TREE" not in count, count
    (states,) = [p for sql, p in plans.items() if "THEN 3" in sql and "FROM selfchecks s JOIN institutions i" in sql]
    assert "TEMP B-TREE" not in states, states
    (corrections,) = [p for sql, p in plans.items() if "a.value = 'no'" in sql]
    assert "answers_no" in corrections, corrections
    (top,) = [p for sql, p in plans.items() if "a.value = 'noncompliant'" in sql]
    assert "answers_noncompliant" in top and "LIST SUBQUERY" in top, top
