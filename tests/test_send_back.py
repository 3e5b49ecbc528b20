"""A regulator sends a signed self-check back for rework (退回整改), through Telegram (the
stand-in): the signature is void, the staff are told why and see it on their summary, they
sign again; and nothing is sent back by a forged, stale or repeated press, outside the
regulator's scope, or after the staff revised it themselves."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import sqlite_utils
from openpyxl import load_workbook

from bot.core.checklist import Checklist
from bot.core.scope import Scope
from bot.services.sendback import MAX_REASON
from bot.telegram.callbacks import SendBackCb, SendBackDecideCb
from storage import outbox
from storage.institutions import Institution, get_institution_by_uscc, upsert_institutions
from storage.regulators import add_regulator
from tests.conftest import roster_row
from tests.harness import Chat, invite, read_db, running_bot
from tests.pledge_support import fill
from tests.standin import BotMessage, TelegramStandin
from tests.test_pledge_e2e import button, finish_and_open_signing, join, sign_as

STAFF, COLLEAGUE, REGULATOR, FAR_REGULATOR = 9301, 9302, 9401, 9402
REASON = "第3项：设备校准证书已过期，请补充新的校准证书 <b>并</b> 说明 & 整改。"


async def signed_by_staff(tg: TelegramStandin, db: sqlite_utils.Database, db_path: Path, checklist: Checklist, lab: Institution) -> Chat:
    """Staff of ``lab`` join, answer every item and sign the pledge in the bot."""
    code = invite(db_path, lab.id)
    fill(db, checklist, lab, by=STAFF)
    chat = Chat(tg, STAFF)
    screen = await sign_as(chat, await finish_and_open_signing(chat, await join(chat, code)))
    _answer, signed = await chat.press(button(screen, "✅"), screen)
    assert "✅" in signed.text
    return chat


async def open_send_back(regulator: Chat, lab: Institution) -> BotMessage:
    """/institution, then ↩️: the screen asking for the reason."""
    page = await regulator.say(f"/institution {lab.uscc}")
    assert lab.name in page.text and "Pledge: signed on" in page.text
    _answer, asking = await regulator.press("↩️ Send back for rework", page)
    assert "Type what must be rectified" in asking.text and f"at most {MAX_REASON} characters" in asking.text
    return asking


async def workbook_rows(tg: TelegramStandin, regulator: Chat) -> list[tuple[Any, ...]]:
    """/export, then the rows of the workbook's first sheet (机构 Institutions)."""
    mark = tg.mark()
    await regulator.say("/export", screen=False)

    def document() -> BotMessage | None:
        calls = tg.calls("sendDocument", after=mark, chat_id=regulator.user_id)
        return next((c.message for c in calls if c.ok and c.message is not None), None)

    sent = await tg.wait_until(document, timeout=15, what="the workbook")
    assert sent.file is not None
    wb = load_workbook(io.BytesIO(sent.file.content), read_only=True)
    try:
        return list(wb.worksheets[0].iter_rows(values_only=True))
    finally:
        wb.close()


def current_submissions(db_path: Path) -> list[dict[str, Any]]:
    return list(read_db(db_path)["submissions"].rows_where("superseded_at IS NULL"))


async def test_a_regulator_sends_a_signed_self_check_back_and_the_staff_sign_again(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    add_regulator(db, REGULATOR, Scope.parse("province:北京"), "北京市市场监管局")
    async with running_bot(tg, db_path):
        staff = await signed_by_staff(tg, db, db_path, checklist, motor_lab)
        (signed,) = current_submissions(db_path)
        regulator = Chat(tg, REGULATOR, first_name="监管", language_code="en")
        await open_send_back(regulator, motor_lab)

        # Too long, then not text: told, nothing sent back, still asking.
        mark = tg.mark()
        await regulator.say("长" * (MAX_REASON + 1), screen=False)
        assert f"it can have at most {MAX_REASON}" in " ".join(regulator.replies_since(mark))
        mark = tg.mark()
        await regulator.send("sticker", screen=False)
        assert "Please type the reason as a text message" in " ".join(regulator.replies_since(mark))
        assert len(current_submissions(db_path)) == 1

        preview = await regulator.say(REASON)
        assert "Send back for rework?" in preview.text and "the 1 staff member(s) are told" in preview.text
        assert "&lt;b&gt;并&lt;/b&gt;" in preview.html and "&amp;" in preview.html  # the reason is escaped
        assert len(current_submissions(db_path)) == 1  # nothing happens before the confirmation

        mark = tg.mark()
        answer, page = await regulator.press("↩️ Send back", preview)
        assert answer.text == "Sent back."
        assert f"Sent back for rework: {motor_lab.name}" in page.text and "1 staff member(s) will be told" in page.text
        assert "Sent back for rework</b> on" in page.html and "not signed again yet" in page.text
        assert "↩️ Send back for rework" not in page.button_texts  # not signed any more

        # Stored: the signature void (by the regulator), the reason kept, the staff told.
        assert current_submissions(db_path) == []
        row = read_db(db_path)["submissions"].get(signed["id"])
        assert row["superseded_by"] == REGULATOR and row["superseded_at"]
        (kept,) = read_db(db_path)["send_backs"].rows
        assert kept["reason"] == REASON and kept["sent_by"] == REGULATOR and kept["sent_by_label"] == "北京市市场监管局"
        assert kept["submission_id"] == signed["id"] and kept["institution_id"] == motor_lab.id
        await tg.wait_until(lambda: outbox.backlog(db)["sent"] >= 1, what="the staff's notice sent")
        (notice,) = [c.message for c in tg.calls("sendMessage", after=mark) if c.ok and c.params.get("chat_id") == STAFF]
        assert notice is not None
        assert "退回" in notice.text and "北京市市场监管局" in notice.text and motor_lab.name in notice.text
        assert "&lt;b&gt;并&lt;/b&gt;" in notice.html and "/start" in notice.text

        # The same confirmation again (a double tap, an old message): nothing more happens.
        again = await regulator.press_data(SendBackDecideCb(preview="0" * 12, send=True).pack(), preview)
        assert "no longer valid" in (again.text or "")
        assert read_db(db_path)["send_backs"].count == 1

        # The workbook says it, in the institution's row (the reason as typed: a text cell).
        rows = await workbook_rows(tg, regulator)
        header = rows[0]
        column = next(n for n, title in enumerate(header) if str(title).startswith("退回整改"))
        (lab_row,) = [r for r in rows[1:] if r[0] == motor_lab.name]
        assert "北京市市场监管局" in str(lab_row[column]) and REASON in str(lab_row[column])

        # /verify (the regulator's, in Telegram) says who sent it back, when and why.
        mark = tg.mark()
        await regulator.say(f"/verify {signed['verification_code']}", screen=False)
        told = " ".join(regulator.replies_since(mark))
        assert "Sent back for rework by 北京市市场监管局" in told and "Not signed again yet" in told

        # /status counts it; the staff's summary says why, and they can sign again.
        mark = tg.mark()
        await regulator.say("/status", screen=False)
        assert "Sent back for rework, not signed again yet: 1" in " ".join(regulator.replies_since(mark))
        summary = await staff.say("/start")
        assert "退回整改" in summary.text and "北京市市场监管局" in summary.text
        assert "设备校准证书已过期" in summary.text and "&lt;b&gt;并&lt;/b&gt;" in summary.html
        _answer, preview_pledge = await staff.press(button(summary, "✍️"), summary)
        screen = await sign_as(staff, preview_pledge)
        _answer, signed_again = await staff.press(button(screen, "✅"), screen)
        assert "✅" in signed_again.text
        assert len(current_submissions(db_path)) == 1
        summary = await staff.say("/start")
        assert "退回整改" not in summary.text  # signed again: history now

        mark = tg.mark()
        await regulator.say("/status", screen=False)
        assert "Sent back for rework" not in " ".join(regulator.replies_since(mark))
        page = await regulator.say(f"/institution {motor_lab.uscc}")
        assert "Sent back for rework 1 time(s)" in page.text and "signed again since" in page.text
        assert "↩️ Send back for rework" in page.button_texts  # signed: it can be sent back again

        # /verify of the pledge sent back: signed again since; then that signature revised too.
        async def verify_old() -> str:
            mark = tg.mark()
            await regulator.say(f"/verify {signed['verification_code']}", screen=False)
            return " ".join(regulator.replies_since(mark))

        assert "Signed again since: the current code is" in await verify_old()
        _answer, asking = await staff.press(button(summary, "✏️"), summary)
        await staff.press(asking.button_texts[0], asking)  # 是，作废签名并修改
        told = await verify_old()
        assert "Signed again since, and that signature was voided too" in told and "current code" not in told


async def test_nothing_is_sent_back_outside_the_scope_or_by_a_forged_or_stale_press(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    add_regulator(db, REGULATOR, Scope.parse("province:北京"), "北京市市场监管局")
    add_regulator(db, FAR_REGULATOR, Scope.parse("province:广东"), "广东省市场监管局")
    upsert_institutions(db, [roster_row("另一家检测公司", 2, ("food",))])
    other = get_institution_by_uscc(db, roster_row("另一家检测公司", 2, ("food",)).uscc)
    assert other is not None
    async with running_bot(tg, db_path):
        await signed_by_staff(tg, db, db_path, checklist, motor_lab)
        (signed,) = current_submissions(db_path)
        far = Chat(tg, FAR_REGULATOR, language_code="en")
        regulator = Chat(tg, REGULATOR, language_code="en")
        far_page = await far.say("/help", screen=False)

        # Another province's regulator, with the button forged: "not found", nothing written.
        answer = await far.press_data(SendBackCb(id=motor_lab.id, sub=int(signed["id"])).pack(), far_page)
        assert answer.show_alert and "No institution found in your scope" in (answer.text or "")
        # In scope, but the submission of another institution, or none at all.
        page = await regulator.say(f"/institution {motor_lab.uscc}")
        for forged in (SendBackCb(id=other.id, sub=int(signed["id"])), SendBackCb(id=motor_lab.id, sub=10**12)):
            answer = await regulator.press_data(forged.pack(), page)
            assert "No institution found in your scope" in (answer.text or "")
        # A confirmation with no send-back started.
        answer = await regulator.press_data(SendBackDecideCb(preview="abc", send=True).pack(), page)
        assert "no longer valid" in (answer.text or "")
        # Staff (not regulators) pressing the regulator's button.
        staff_answer = await Chat(tg, STAFF).press_data(SendBackCb(id=motor_lab.id, sub=int(signed["id"])).pack(), page)
        assert staff_answer.text and "Send back" not in staff_answer.text
        assert len(current_submissions(db_path)) == 1 and read_db(db_path)["send_backs"].count == 0

        # /cancel while asked for the reason, and "Cancel" on a preview: nothing sent back.
        await open_send_back(regulator, motor_lab)
        mark = tg.mark()
        await regulator.say("/cancel", screen=False)
        assert "Not sent back" in " ".join(regulator.replies_since(mark))
        await open_send_back(regulator, motor_lab)
        preview = await regulator.say("请整改")
        answer, _screen = await regulator.press("Cancel", preview)
        assert "Not sent back" in (answer.text or "")
        assert len(current_submissions(db_path)) == 1 and read_db(db_path)["send_backs"].count == 0


async def test_a_self_check_its_staff_revised_meanwhile_is_not_sent_back(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    add_regulator(db, REGULATOR, Scope.parse("province:北京"), "北京市市场监管局")
    async with running_bot(tg, db_path):
        staff = await signed_by_staff(tg, db, db_path, checklist, motor_lab)
        regulator = Chat(tg, REGULATOR, language_code="en")
        await open_send_back(regulator, motor_lab)
        preview = await regulator.say("请补充记录")
        # The staff revise (void their own signature) before the regulator confirms.
        summary = await staff.say("/start")
        _answer, asking = await staff.press(button(summary, "✏️"), summary)
        await staff.press(asking.button_texts[0], asking)  # 是，作废签名并修改
        assert current_submissions(db_path) == []
        mark = tg.mark()
        answer, _page = await regulator.press("↩️ Send back", preview)
        assert answer.show_alert and "not signed (any more)" in (answer.text or "")
        assert read_db(db_path)["send_backs"].count == 0
        assert not [c for c in tg.calls("sendMessage", after=mark) if c.params.get("chat_id") == STAFF]


async def test_verify_says_a_pledge_was_sent_back_without_showing_the_reason_publicly(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, tmp_path: Path
) -> None:
    """The public web /verify (code or PDF) says the regulator withdrew the pledge, not why;
    ``zicha verify``'s verdict for the operator says who sent it back and when."""
    import asyncio
    import zoneinfo

    import aiohttp

    from bot.config import load_settings
    from bot.i18n import build_i18n
    from bot.pledge.signing import SigningSettings, identity, init_keys
    from bot.pledge.submit import produce_pdf, sign
    from bot.pledge.verify import Finding, verify_pdf
    from storage.sendbacks import send_back
    from tests.web_support import csrf_of, web_client

    db_file = Path(next(db.query("PRAGMA database_list"))["file"])
    ident = identity(SigningSettings(zicha_db=db_file), db_path=db_file)
    init_keys(ident)
    ws = fill(db, checklist, motor_lab, by=4242, leave=0)
    submission = sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=4242, by_name="t")
    pdf = await asyncio.to_thread(produce_pdf, submission.document, build_i18n("zh_CN"), zoneinfo.ZoneInfo("Asia/Shanghai"), ident)
    assert send_back(db, submission.id, reason="内部整改要求：记录不全", by=REGULATOR, by_label="北京市市场监管局") is not None
    assert send_back(db, submission.id, reason="again", by=REGULATOR, by_label="x") is None  # once only

    verdict = verify_pdf(pdf, db, load_settings(_env_file=None, zicha_db=db_file))
    assert verdict.finding is Finding.SUPERSEDED and "sent back for rework" in verdict.reason and "北京市市场监管局" in verdict.reason

    client = await web_client(db, checklist, db_file, zicha_locale="en")
    try:
        page = await (await client.get("/verify", headers={"Accept-Language": "en"})).text()
        by_code = await client.post("/verify", data={"csrf": csrf_of(page), "code": submission.verification_code}, headers={"Accept-Language": "en"})
        text = await by_code.text()
        assert by_code.status == 200 and "Withdrawn: the regulator sent this self-check back for rework" in text
        assert motor_lab.name in text and "记录不全" not in text and "北京市市场监管局" not in text
        form = aiohttp.FormData()
        form.add_field("csrf", csrf_of(page))
        form.add_field("pdf", io.BytesIO(pdf), filename="pledge.pdf", content_type="application/pdf")
        text = await (await client.post("/verify", data=form, headers={"Accept-Language": "en"})).text()
        assert "Withdrawn: the regulator sent this self-check back for rework" in text and "记录不全" not in text
    finally:
        await client.close()
