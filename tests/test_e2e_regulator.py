"""A provincial regulator in Telegram (the stand-in): invite, /status, /overdue,
/institution, /export — and nothing of another province, whatever they send."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
import sqlite_utils
from openpyxl import load_workbook

from bot.core.checklist import Checklist
from bot.core.scope import Scope
from bot.telegram.routers.regulator import InstitutionCb, OverduePageCb, RegulatorJoinCb
from storage.db import open_db
from storage.regulators import create_regulator_invite, get_regulator, revoke_regulator_invite
from tests.harness import Chat, running_bot
from tests.regulator_fixture import Fixture, build_fixture
from tests.standin import BotMessage, TelegramStandin

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
AFTER = dt.datetime(2023, 10, 28, 9, 0, tzinfo=SHANGHAI)
REGULATOR = 9201
OUTSIDER = 9202
OTHER_PROVINCES = ("北京", "浙江")


@pytest.fixture
def fx(db: sqlite_utils.Database, checklist: Checklist) -> Fixture:
    return build_fixture(db, checklist)


@pytest.fixture
def db_path(fx: Fixture, tmp_path: Path) -> Path:
    return tmp_path / "zicha.db"


def foreign(fx: Fixture) -> set[str]:
    """Names and USCCs the 广东 regulator must never see."""
    return {fx.names[k] for k in fx.names if not k.startswith("gd")} | {
        fx.usccs[k] for k in fx.usccs if not k.startswith("gd")
    }


def assert_clean(texts: list[str], fx: Fixture) -> None:
    for text in texts:
        for secret in foreign(fx) | set(OTHER_PROVINCES):
            assert secret not in text, (secret, text)


async def become_regulator(tg: TelegramStandin, db_path: Path, chat: Chat) -> None:
    db = open_db(db_path)
    try:
        code = create_regulator_invite(db, Scope.parse("广东"), name="广东省市场监管局")
    finally:
        db.close()
    offer = await chat.say(f"/start {code}")
    assert "广东" in offer.text and "regulator" in offer.text
    answer = await chat.press_data(RegulatorJoinCb(confirm=True).pack(), offer)
    assert answer.text == "Welcome!"
    assert "You are now a regulator for 广东" in tg.message(chat.user_id, offer.message_id).text


async def reply(chat: Chat, text: str) -> str:
    mark = chat.tg.mark()
    message = await chat.say(text, screen=False)
    del mark
    return message.text


async def test_a_provincial_regulator_sees_only_their_province(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, fx: Fixture
) -> None:
    async with running_bot(tg, db_path, clock=lambda: AFTER):
        chat = Chat(tg, REGULATOR, first_name="监管", language_code="en")
        await become_regulator(tg, db_path, chat)
        db = open_db(db_path)
        try:
            regulator = get_regulator(db, REGULATOR)
        finally:
            db.close()
        assert regulator is not None and regulator.scope == Scope.parse("广东")
        # the regulator commands are in this chat's menu only
        menu = tg.commands[(f'{{"chat_id": {REGULATOR}, "type": "chat"}}', "")]
        assert [c["command"] for c in menu] == ["status", "overdue", "institution", "export", "sample", "verify", "broadcast", "language"]

        for command in ("/start", "/help", "hello"):
            assert "/institution" in await reply(chat, command)  # the regulator's help
        status = await reply(chat, "/status")
        assert "Institutions: 3" in status and "Signed: 1" in status and "Overdue: 2" in status
        assert "广东" in status
        assert_clean([status], fx)

        overdue = await reply(chat, "/overdue")
        assert fx.names["gd_finished"] in overdue and fx.names["gd_progress"] in overdue
        assert fx.names["gd_signed"] not in overdue
        last = tg.last_message(REGULATOR)
        # forged page numbers: far beyond the end, negative — still 广东 only, always answered
        for page in (7, -3, 10**6):
            answer = await chat.press_data(OverduePageCb.model_construct(page=page).pack(), last)  # unvalidated: forged
            assert answer is not None
        assert_clean([m.text for m in tg.messages(REGULATOR)], fx)

        # another province's institution by USCC looks exactly like one that does not exist
        missing = await reply(chat, "/institution 91110108MA01A2B32G")
        foreign_uscc = await reply(chat, f"/institution {fx.usccs['bj_signed']}")
        foreign_name = await reply(chat, "/institution 北京某检测")
        assert foreign_uscc == missing == foreign_name
        detail = await reply(chat, f"/institution {fx.usccs['gd_finished']}")
        assert fx.names["gd_finished"] in detail and "Staff bound: 1" in detail
        assert "Pledge: not signed" in detail and "Non-compliant items (2)" in detail
        assert "rectification in progress" in detail and "+设备未校准" in detail
        several = await reply(chat, "/institution 某检测")
        choices = tg.last_message(REGULATOR)
        assert len(choices.buttons) == 3 and several
        # a forged institution button for 北京: the same "not found", nothing shown
        mark = tg.mark()
        answer = await chat.press_data(InstitutionCb(id=fx.ids["bj_signed"]).pack(), choices)
        assert answer.text == missing
        assert [c for c in tg.calls("sendMessage", after=mark)] == []
        answer = await chat.press_data(InstitutionCb(id=fx.ids["gd_signed"]).pack(), choices)
        assert fx.names["gd_signed"] in tg.last_message(REGULATOR).text
        assert "Pledge: signed" in tg.last_message(REGULATOR).text

        # /export: a workbook of 广东 only
        mark = tg.mark()
        tg.send_text(REGULATOR, "/export", first_name="监管", language_code="en")
        tg.send_text(REGULATOR, "/export", first_name="监管", language_code="en")  # impatient: a second one

        def document() -> BotMessage | None:
            for call in tg.calls("sendDocument", after=mark, chat_id=REGULATOR):
                if call.ok and call.message is not None:
                    return call.message
            return None

        sent = await tg.wait_until(document, timeout=15, what="the workbook")
        await tg.wait_until(lambda: len(tg.calls("sendMessage", after=mark, chat_id=REGULATOR)) >= 2 or None)
        assert any("still being prepared" in (c.params.get("text") or "") for c in tg.calls("sendMessage", after=mark))
        assert len(tg.calls("sendDocument", after=mark, chat_id=REGULATOR)) == 1
        assert sent.file is not None and sent.file.file_name and sent.file.file_name.endswith(".xlsx")
        wb = load_workbook(io.BytesIO(sent.file.content), read_only=True)
        cells = [str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v is not None]
        wb.close()
        assert fx.names["gd_progress"] in cells
        assert_clean(cells, fx)
        assert_clean([m.text for m in tg.messages(REGULATOR)], fx)
        assert not tg.unanswered()


async def test_staff_and_strangers_cannot_use_regulator_commands_or_buttons(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, fx: Fixture
) -> None:
    async with running_bot(tg, db_path, clock=lambda: AFTER):
        chat = Chat(tg, OUTSIDER, language_code="en")
        status = await reply(chat, "/status")
        assert "Institutions:" not in status
        hello = await reply(chat, "/start")
        assert "/institution" not in hello
        answer = await chat.press_data(InstitutionCb(id=fx.ids["bj_signed"]).pack(), tg.last_message(OUTSIDER))
        assert answer.text and fx.names["bj_signed"] not in answer.text
        answer = await chat.press_data(OverduePageCb(page=0).pack(), tg.last_message(OUTSIDER))
        assert_clean([m.text for m in tg.messages(OUTSIDER)], fx)
        assert all(fx.names["gd_finished"] not in m.text for m in tg.messages(OUTSIDER)) and hello
        assert not tg.unanswered()


async def test_a_used_or_revoked_regulator_invite_grants_nothing(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, fx: Fixture
) -> None:
    db = open_db(db_path)
    try:
        code = create_regulator_invite(db, Scope(national=True), max_uses=1)
        withdrawn = create_regulator_invite(db, Scope(national=True), max_uses=5)
        assert revoke_regulator_invite(db, withdrawn)
    finally:
        db.close()
    async with running_bot(tg, db_path, clock=lambda: AFTER):
        first = Chat(tg, 9301, language_code="en")
        offer = await first.say(f"/start {code}")
        assert "national" in offer.text
        await first.press_data(RegulatorJoinCb(confirm=True).pack(), offer)
        second = Chat(tg, 9302, language_code="en")
        refused = await reply(second, f"/start {code}")
        assert "already been used" in refused
        assert "withdrawn" in await reply(second, f"/start {withdrawn.lower()}")
        # a "yes" pressed without an offer (forged) grants nothing
        answer = await second.press_data(RegulatorJoinCb(confirm=True).pack(), tg.last_message(9302))
        assert answer.text == "This button is no longer valid."
    db = open_db(db_path)
    try:
        assert get_regulator(db, 9301) is not None and get_regulator(db, 9302) is None
    finally:
        db.close()


async def test_regulators_added_from_the_command_line_get_their_menu_at_start(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, fx: Fixture
) -> None:
    from storage.regulators import add_regulator
    from tests.regulator_fixture import STAFF

    db = open_db(db_path)
    try:
        add_regulator(db, 9401, Scope.parse("浙江"))
        add_regulator(db, STAFF + 1, Scope.parse("广东"))  # also staff of gd_signed
    finally:
        db.close()
    async with running_bot(tg, db_path, clock=lambda: AFTER):
        def menu(chat_id: int) -> list[str] | None:
            found = tg.commands.get((f'{{"chat_id": {chat_id}, "type": "chat"}}', ""))
            return [c["command"] for c in found] if found else None

        regulator_only = await tg.wait_until(lambda: menu(9401), what="the regulator menu")
        assert regulator_only == ["status", "overdue", "institution", "export", "sample", "verify", "broadcast", "language"]
        both = await tg.wait_until(lambda: menu(STAFF + 1), what="the staff+regulator menu")
        assert "progress" in both and "review" in both and "status" in both and len(both) == len(set(both))


async def test_the_digest_reaches_the_regulator_through_the_outbox_with_their_province_only(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, fx: Fixture, tmp_path: Path
) -> None:
    from bot.services.digests import queue_digests
    from storage.regulators import add_regulator

    db = open_db(db_path)
    try:
        add_regulator(db, REGULATOR, Scope.parse("广东"))
    finally:
        db.close()
    async with running_bot(tg, db_path, clock=lambda: AFTER) as app:
        Chat(tg, REGULATOR, language_code="en")
        queued = queue_digests(
            app.db, app.checklist, app.i18n, now=AFTER, directory=tmp_path / "digests", default_locale="en"
        )
        assert [(q.regulator_id, q.kind) for q in queued] == [(REGULATOR, "final")]
        assert app.background is not None
        app.background.wake()

        def delivered() -> list[BotMessage] | None:
            sent = [c.message for c in tg.calls(chat_id=REGULATOR) if c.ok and c.message is not None]
            return sent if len(sent) >= 3 else None

        messages = await tg.wait_until(delivered, timeout=15, what="the digest and its two files")
        text, workbook, chart = messages[:3]
        assert "Final self-check digest" in text.text and fx.names["gd_progress"] in text.text
        assert workbook.file is not None and workbook.file.file_name and workbook.file.file_name.endswith(".xlsx")
        assert chart.file is not None and chart.file.content[:8] == b"\x89PNG\r\n\x1a\n"
        wb = load_workbook(io.BytesIO(workbook.file.content), read_only=True)
        cells = [str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v is not None]
        wb.close()
        assert fx.names["gd_finished"] in cells
        assert_clean(cells + [m.text for m in messages], fx)
