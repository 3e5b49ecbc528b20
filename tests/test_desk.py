"""A regulator's session with the conversation engine and no channel at all: /status, an
institution looked up and chosen, a staff member removed after confirming, the workbook
(one at a time), a broadcast written, previewed and confirmed — and nothing outside the
regulator's scope, whatever ids their actions carry."""

from __future__ import annotations

import datetime as dt
import io
import zoneinfo
from pathlib import Path

import pytest
import sqlite_utils
from openpyxl import load_workbook

from bot.config import load_settings
from bot.conversation.actions import (
    CancelBroadcast,
    DecideBroadcast,
    FindInstitution,
    RemoveStaff,
    SendFile,
    ShowInstitution,
    ShowStaff,
    ShowStatus,
    StartBroadcast,
    TypeText,
    from_fields,
)
from bot.conversation.desk import COMPOSE, CONFIRM
from bot.conversation.engine import Actor, Conversation
from bot.conversation.screens import Expect, Outcome
from bot.core.checklist import Checklist
from bot.core.scope import Scope
from bot.i18n import build_i18n
from storage import outbox
from storage.conversations import SQLiteStates
from storage.db import open_db
from storage.institutions import get_membership
from storage.regulators import add_regulator
from tests.regulator_fixture import STAFF, Fixture, build_fixture
from tests.test_conversation_engine import Channel

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
AFTER = dt.datetime(2023, 10, 28, 9, 0, tzinfo=TZ)
REGULATOR = 9501


@pytest.fixture
def fx(db: sqlite_utils.Database, checklist: Checklist) -> Fixture:
    return build_fixture(db, checklist)


@pytest.fixture
def conversation(db: sqlite_utils.Database, checklist: Checklist, db_path: Path, fx: Fixture) -> Conversation:
    settings = load_settings(_env_file=None, zicha_db=db_path)
    return Conversation(
        db=db, checklist=checklist, settings=settings, clock=lambda: AFTER, states=SQLiteStates(db),
        catalog=build_i18n("zh_CN"),
    )  # fmt: skip


@pytest.fixture
def desk(db: sqlite_utils.Database, conversation: Conversation) -> Channel:
    regulator = add_regulator(db, REGULATOR, Scope.parse("广东"), "广东省市场监管局")
    return Channel(conversation, Actor(REGULATOR, None, "en", f"test:{REGULATOR}", regulator=regulator))


def foreign(fx: Fixture) -> set[str]:
    return {fx.names[k] for k in fx.names if not k.startswith("gd")} | {fx.usccs[k] for k in fx.usccs if not k.startswith("gd")}


def seen(channel: Channel, *outcomes: Outcome) -> str:
    texts = [*channel.notices, *channel.messages] + [o.screen.text for o in outcomes if o.screen is not None]
    return "\n".join(texts)


def test_status_and_an_institution_looked_up_then_chosen(desk: Channel, fx: Fixture) -> None:
    status = desk.do(ShowStatus())
    assert status.screen is not None and "Institutions: 3" in status.screen.text and "Overdue: 2" in status.screen.text
    usage = desk.do(FindInstitution(query="  "))
    assert usage.screen is not None and "/institution 检测" in usage.screen.text
    several = desk.do(FindInstitution(query="某检测"))
    assert several.screen is not None and several.screen.kind == "institution:choose"
    assert sorted(b.label.split(" (")[0] for b in several.screen.buttons()) == sorted(
        fx.names[k] for k in ("gd_signed", "gd_finished", "gd_progress")
    )
    detail = desk.do(several.screen.buttons()[0].action)
    assert detail.fresh and detail.screen is not None and detail.screen.kind == "institution"
    exact = desk.do(FindInstitution(query=fx.usccs["gd_finished"].lower()))
    assert exact.screen is not None and "Non-compliant items (2)" in exact.screen.text and "Staff bound: 1" in exact.screen.text
    assert "+设备未校准" in exact.screen.text and [b.action for b in exact.screen.buttons()] == [ShowStaff(id=fx.ids["gd_finished"])]
    # another province, by USCC, by name or by a forged button: exactly like nothing at all
    missing = desk.do(FindInstitution(query="91110108MA01A2B32G")).screen
    assert missing is not None
    assert desk.do(FindInstitution(query=fx.usccs["bj_signed"])).screen == missing
    assert desk.do(FindInstitution(query="北京某检测")).screen == missing
    forged = desk.do(ShowInstitution(id=fx.ids["bj_signed"]))
    assert forged.screen is None and forged.notice == "No institution found in your scope."
    assert desk.do(ShowInstitution(id=2**63)).notice == forged.notice
    assert desk.do(FindInstitution(query="x" * 101)).screen == missing
    assert not any(secret in seen(desk, status, several, detail, exact) for secret in foreign(fx))


def test_a_staff_member_removed_after_confirming_and_only_in_scope(
    desk: Channel, fx: Fixture, db: sqlite_utils.Database
) -> None:
    gd, bj = fx.ids["gd_finished"], fx.ids["bj_signed"]
    member = STAFF + 2  # 员工2, staff of gd_finished
    listing = desk.do(ShowStaff(id=gd)).screen
    assert listing is not None and f"Telegram id <code>{member}</code>" in listing.text
    remove = lambda a: isinstance(a, RemoveStaff) and a.member == member and not a.ok  # noqa: E731
    confirm = desk.press(remove)
    assert confirm.screen is not None and "They lose access with their next message" in confirm.screen.text
    assert get_membership(db, member) is not None  # nothing removed before the confirmation
    back = desk.press(lambda a: isinstance(a, ShowStaff) and a.id == gd)  # Cancel: back to the list
    assert back.screen is not None and back.screen.kind == "staff" and get_membership(db, member) is not None
    desk.press(remove)
    done = desk.press(lambda a: isinstance(a, RemoveStaff) and a.ok)
    assert done.notice == "Removed." and done.screen is not None
    assert f"Removed 员工2 from {fx.names['gd_finished']}." in done.screen.text
    assert "Nobody is bound to this institution." in done.screen.text
    assert get_membership(db, member) is None
    again = desk.do(RemoveStaff(id=gd, member=member, ok=True))
    assert again.notice == "This person is no longer a staff member of this institution."
    # outside the scope, or a member of another institution: nothing removed
    for forged in (ShowStaff(id=bj), RemoveStaff(id=bj, member=STAFF + 4, ok=True), RemoveStaff(id=gd, member=2**64, ok=True)):
        outcome = desk.do(forged)
        assert outcome.notice == "No institution found in your scope." and outcome.screen is None
    assert desk.do(RemoveStaff(id=fx.ids["gd_signed"], member=STAFF + 4, ok=True)).notice == again.notice
    assert get_membership(db, STAFF + 4) is not None
    rows = list(db["member_removals"].rows)
    assert [(r["telegram_id"], r["removed_by"]) for r in rows] == [(member, f"regulator:{REGULATOR}")]
    # staff and strangers cannot use the desk at all
    staff = Actor(STAFF + 1, get_membership(db, STAFF + 1), "en", "test:staff")
    assert desk.conversation.handle(staff, RemoveStaff(id=fx.ids["gd_signed"], member=STAFF + 1, ok=True)).notice == (
        "This button is no longer valid."
    )
    stranger = desk.conversation.handle(Actor(1, None, "en", "test:1"), ShowStatus())
    assert stranger.alert and stranger.screen is None
    assert get_membership(db, STAFF + 1) is not None


async def test_the_workbook_of_the_scope_one_at_a_time(desk: Channel, fx: Fixture) -> None:
    first = desk.conversation.desk.export(desk.actor)
    preparing = await first.__anext__()
    assert preparing.messages == ["Preparing the workbook…"]
    # asked again while the first is being made: told to wait, nothing made
    second = [o async for o in desk.conversation.desk.export(desk.actor)]
    assert [o.messages for o in second] == [["Your workbook is still being prepared; it will arrive shortly."]]
    done = await first.__anext__()
    with pytest.raises(StopAsyncIteration):
        await first.__anext__()
    assert done.screen is not None and not done.screen.blocks
    (workbook,) = done.screen.attachments
    assert workbook.name == "zicha-2023-10-28.xlsx" and "广东" in workbook.caption
    wb = load_workbook(io.BytesIO(workbook.content), read_only=True)
    cells = [str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v is not None]
    wb.close()
    assert fx.names["gd_progress"] in cells and not foreign(fx) & set(cells)
    # free again once it is done
    again = [o async for o in desk.conversation.desk.export(desk.actor)]
    assert again[0].messages == ["Preparing the workbook…"] and again[1].screen is not None


def test_a_broadcast_written_previewed_and_confirmed_once(desk: Channel, db: sqlite_utils.Database) -> None:
    states = desk.conversation.states
    compose = desk.do(StartBroadcast())
    assert compose.screen is not None and compose.screen.expects is Expect.TEXT and "广东" in compose.screen.text
    assert states.load(desk.actor.key).step == COMPOSE
    desk.do(SendFile(ref="f", unique_ref="u"))
    assert desk.messages[-1] == "Please send the broadcast as a text message, or /cancel."
    desk.do(TypeText(text="x" * 3801))
    assert "3801 characters" in desk.messages[-1] and states.load(desk.actor.key).step == COMPOSE
    typed = "请于周五前完成 <script> & 签署"
    preview = desk.do(TypeText(text=typed))  # no markup from the channel: the text is escaped
    assert preview.screen is not None and "recipients: 3 staff of 3 institution(s)" in preview.screen.text
    assert "广东省市场监管局" in preview.messages[0] and "&lt;script&gt; &amp;" in preview.messages[0]
    assert states.load(desk.actor.key).step == CONFIRM
    send, cancel = preview.screen.buttons()
    assert send.label == "Send to 3" and cancel.label == "Cancel"
    # a forged preview id, a staff member's press: nothing queued
    assert desk.do(DecideBroadcast(preview="000000000000", send=True)).notice == (
        "This preview is no longer valid. Send /broadcast to start again."
    )
    staff = Actor(STAFF + 1, get_membership(db, STAFF + 1), "en", "test:staff")
    assert desk.conversation.handle(staff, send.action).notice == "This button is no longer valid."
    assert outbox.backlog(db)["total"] == 0
    # the form of a web page reads the same action back
    queued = desk.do(from_fields(send.action.to_fields()))
    assert queued.notice == "Queued." and queued.screen is not None and "queued for 3 recipient(s)" in queued.screen.text
    assert outbox.backlog(db)["total"] == 3 and states.load(desk.actor.key).step is None
    assert desk.do(send.action).notice == "This preview is no longer valid. Send /broadcast to start again."
    assert outbox.backlog(db)["total"] == 3
    # written and cancelled: nothing more
    desk.do(StartBroadcast())
    desk.do(TypeText(text="明早开会", html="<b>明早</b>开会"))
    cancelled = desk.do(CancelBroadcast())
    assert cancelled.screen is not None and cancelled.screen.text == "Broadcast cancelled. Nothing was sent."
    assert states.load(desk.actor.key).step is None and outbox.backlog(db)["total"] == 3


async def test_the_workbook_of_a_database_in_memory_is_made_on_the_bots_own_connection(checklist: Checklist) -> None:
    """A database in memory (tests, demos) cannot be opened by the report worker nor by a
    connection of its own (that would be another, empty database): /export makes it in a
    thread on the bot's connection, with the scope's institutions in it."""
    db = open_db(":memory:")
    try:
        fx = build_fixture(db, checklist)
        conversation = Conversation(
            db=db, checklist=checklist, settings=load_settings(_env_file=None, zicha_db=":memory:"), clock=lambda: AFTER,
            states=SQLiteStates(db), catalog=build_i18n("zh_CN"),
        )  # fmt: skip
        regulator = add_regulator(db, REGULATOR, Scope.parse("广东"), "广东省市场监管局")
        actor = Actor(REGULATOR, None, "en", f"test:{REGULATOR}", regulator=regulator)
        outcomes = [o async for o in conversation.desk.export(actor)]
    finally:
        db.close()
    assert outcomes[0].messages == ["Preparing the workbook…"]
    done = outcomes[-1]
    assert done.screen is not None
    (workbook,) = done.screen.attachments
    wb = load_workbook(io.BytesIO(workbook.content), read_only=True)
    cells = [str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v is not None]
    wb.close()
    assert fx.names["gd_progress"] in cells and not foreign(fx) & set(cells)
