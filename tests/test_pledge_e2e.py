"""Signing the pledge through Telegram (the stand-in): complete → sign → receive the signed
PDF → verify it; then revise, which voids it. Answers up to the last item are filled
through the workspace (tests/pledge_support.py) to keep the tests fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from bot.cli import cli
from bot.core.checklist import Checklist
from bot.core.interview import Choice
from bot.core.scope import Scope
from bot.pledge.document import format_code
from bot.telegram.callbacks import AnswerCb
from bot.telegram.pledge_views import PledgeAction, PledgeCb
from storage.institutions import Institution
from storage.regulators import add_regulator
from tests.harness import Chat, invite, read_db, running_bot
from tests.pledge_support import MEASURE, PROBLEM, fill, flat, needs_poppler, pdf_text
from tests.standin import BotMessage, TelegramStandin

USER, COLLEAGUE, REGULATOR, FAR_REGULATOR = 9101, 9102, 9201, 9202
SIGNER = "张<三> & 李"

pytestmark = needs_poppler


def button(message: BotMessage, prefix: str) -> str:
    for text in message.button_texts:
        if text.startswith(prefix):
            return text
    raise AssertionError(f"no button starting with {prefix!r} in {message.button_texts}")


def role_button(message: BotMessage, role: str) -> str:
    for text, data in (b for row in message.buttons for b in row):
        if data and data.startswith("p:") and PledgeCb.unpack(data).role == role:
            return text
    raise AssertionError(f"no {role} button in {message.button_texts}")


async def join(chat: Chat, code: str) -> BotMessage:
    screen = await chat.say(f"/start {code}")
    assert "此邀请对应以下机构" in screen.text
    await chat.press("是，这是我的机构")
    return chat.current()


async def finish_and_open_signing(chat: Chat, screen: BotMessage) -> BotMessage:
    """From the last open item: answer it, then start signing from the summary."""
    _, screen = await chat.press("符合", screen)
    assert "自查已完成" in screen.text
    _, screen = await chat.press(button(screen, "✍️"), screen)
    return screen


async def sign_as(chat: Chat, screen: BotMessage, name: str = SIGNER) -> BotMessage:
    """From the pledge preview: type the name, choose the role; returns the confirm screen."""
    assert "诚信守法承诺书" in screen.text and "反垄断法" in screen.text
    screen = await chat.say(name)
    _, screen = await chat.press(role_button(screen, "legal_representative"), screen)
    assert "✅" in screen.button_texts[0]
    return screen


def zicha(*args: str, db_path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"ZICHA_DB": str(db_path)})
    return result.exit_code, result.output


async def test_sign_receive_the_pdf_verify_it_then_revise_voids_it(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution,
    tmp_path: Path,
) -> None:  # fmt: skip
    code = invite(db_path, motor_lab.id)
    ws = fill(db, checklist, motor_lab, by=USER)
    add_regulator(db, REGULATOR, Scope.parse("province:北京"), "北京市市场监管局")
    add_regulator(db, FAR_REGULATOR, Scope.parse("province:广东"), "广东省市场监管局")
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER)
        last_item = await join(chat, code)
        # Signing is refused while an item is open, with the list of what is missing.
        refused = await chat.say("/pledge")
        assert "⚠️" in refused.text and f"{ws.interview.total}." in refused.text

        screen = await sign_as(chat, await finish_and_open_signing(chat, last_item))
        _answer, signed = await chat.press(button(screen, "✅"), screen)
        assert "✅" in signed.text and "SIGNED" not in signed.text
        document = tg.messages(USER)[-1]
        assert document.kind == "document" and document.file is not None
        pdf = document.file.content
        assert pdf.startswith(b"%PDF") and document.file.file_name.endswith(".pdf")

        # One submission, frozen: the old question's buttons are refused with a notice.
        rows = list(read_db(db_path)["submissions"].rows)
        assert len(rows) == 1 and rows[0]["signer_name"] == SIGNER and rows[0]["signed_by"] == USER
        code_text = format_code(rows[0]["verification_code"])
        assert code_text in signed.text
        last = ws.interview.items[-1]
        current = read_db(db_path)["answers"].get((ws.selfcheck.id, last.id))
        press = AnswerCb(sc=ws.selfcheck.id, item=last.id, fp=checklist.fingerprint, rev=current["rev"], choice=Choice.NONCOMPLIANT)
        frozen = await chat.press_data(press.pack(), signed)
        assert frozen.show_alert and code_text in (frozen.text or "")

        # The PDF: institution, signer, non-compliant items with their rectification, the code.
        text = flat(pdf_text(pdf, tmp_path))
        for expected in (motor_lab.name, motor_lab.uscc, SIGNER, PROBLEM, MEASURE, code_text, rows[0]["sha256"]):
            assert flat(expected) in text, expected
        assert "2023年11月30日" in text  # the open rectification's target date

        # A scan of the paper pledge is attached to the submission.
        reply = await chat.send("photo", screen=False, caption="盖章承诺书")
        assert code_text in reply.text
        assert read_db(db_path).execute("SELECT count(*) FROM submission_files WHERE kind = 'paper_pledge'").fetchone()[0] == 1

        # /pledge sends the kept PDF again (the same bytes).
        await chat.say("/pledge")
        await tg.wait_until(lambda: (tg.messages(USER)[-1].kind == "document" and tg.messages(USER)[-1] is not document) or None)
        assert tg.messages(USER)[-1].file.content == pdf

        # A regulator whose scope covers the institution sees who signed what, when; another does not.
        regulator = Chat(tg, REGULATOR, "监管")
        seen = await regulator.say(f"/verify {code_text.lower()}", screen=False)
        assert motor_lab.name in seen.text and SIGNER in seen.text and "✅" in seen.text
        far = await Chat(tg, FAR_REGULATOR, "远方").say(f"/verify {code_text}", screen=False)
        assert motor_lab.name not in far.text and code_text in far.text

        # zicha verify accepts the PDF; one changed byte, and it is rejected with the reason.
        good = tmp_path / "pledge.pdf"
        good.write_bytes(pdf)
        status, output = zicha("verify", str(good), db_path=db_path)
        assert status == 0, output
        assert "valid" in output and code_text in output
        tampered = bytearray(pdf)
        tampered[len(pdf) // 3] ^= 0x01
        bad = tmp_path / "tampered.pdf"
        bad.write_bytes(bytes(tampered))
        status, output = zicha("verify", str(bad), db_path=db_path)
        assert status == 1 and "changed after signing" in output, output

        # Revise: a warning first, then the signature is void and answers can change.
        _, warning = await chat.press(button(signed, "✏️"), signed)
        assert "⚠️" in warning.text
        _answer, review = await chat.press(warning.button_texts[0], warning)
        assert review.text.splitlines()[0] == "检查"  # the review screen: answers can change again
        _, reopened = await chat.press(review.button_texts[0], review)  # a non-compliant item
        saved, _ = await chat.press("符合", reopened)
        assert saved.text == "已保存：符合"
        regulator_after = await regulator.say(f"/verify {code_text}", screen=False)
        assert "⛔" in regulator_after.text
        assert not tg.unanswered()

    status, output = zicha("verify", str(good), db_path=db_path)
    assert status == 1 and "superseded" in output, output
    row = read_db(db_path)["submissions"].get(rows[0]["id"])
    assert row["superseded_at"] is not None and row["superseded_by"] == USER


async def test_double_taps_and_two_colleagues_signing_at_once_make_one_submission(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution
) -> None:
    code = invite(db_path, food_lab.id)
    fill(db, checklist, food_lab, by=USER, leave=0)
    async with running_bot(tg, db_path):
        alice, bob = Chat(tg, USER, "Alice"), Chat(tg, COLLEAGUE, "Bob")
        screens = []
        for chat in (alice, bob):
            summary = await join(chat, code)
            assert "自查已完成" in summary.text
            _, preview = await chat.press(button(summary, "✍️"), summary)
            screens.append(await sign_as(chat, preview, name=f"{chat.first_name} 签字人"))
        data = [next(d for row in s.buttons for t, d in row if t.startswith("✅") and d is not None) for s in screens]
        assert PledgeCb.unpack(data[0]).action is PledgeAction.CONFIRM
        presses = [
            tg.press_data(USER, screens[0].message_id, data[0]),
            tg.press_data(USER, screens[0].message_id, data[0]),  # a double tap
            tg.press_data(COLLEAGUE, screens[1].message_id, data[1]),  # the colleague at the same moment
        ]
        answers = [await tg.wait_answered(p) for p in presses]
        assert sum(a.text == "Signed." or a.text == "已签署。" for a in answers) == 1, answers
        assert not tg.unanswered()
    rows = list(read_db(db_path)["submissions"].rows)
    assert len(rows) == 1 and rows[0]["superseded_at"] is None
    assert read_db(db_path).execute("SELECT count(*) FROM submission_files WHERE kind = 'signed_pdf'").fetchone()[0] == 1


async def test_forged_and_stale_pledge_buttons_change_nothing(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution
) -> None:
    code = invite(db_path, food_lab.id)
    ws = fill(db, checklist, food_lab, by=USER, leave=0)
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER)
        summary = await join(chat, code)
        foreign = await chat.press_data(PledgeCb(action=PledgeAction.START, sc=ws.selfcheck.id + 7).pack(), summary)
        assert foreign.show_alert
        early = await chat.press_data(PledgeCb(action=PledgeAction.CONFIRM, sc=ws.selfcheck.id, h="0" * 16).pack(), summary)
        assert early.text and "SIGN" not in early.text
        unknown = await chat.press_data(PledgeCb(action=PledgeAction.REVISE_OK, sc=ws.selfcheck.id, sub=99).pack(), summary)
        assert unknown.text
        # A wrong digest (the answers changed after the preview) is not signed either.
        _, preview = await chat.press(button(summary, "✍️"), summary)
        confirm = await sign_as(chat, preview)
        real = next(d for row in confirm.buttons for t, d in row if t.startswith("✅") and d is not None)
        forged = PledgeCb.unpack(real).model_copy(update={"h": "f" * 16}).pack()
        changed = await chat.press_data(forged, confirm)
        assert changed.text and changed.text != "Signed."
        # /verify is for regulators only; a malformed code gets the usage.
        staff_reply = await chat.say("/verify ABCDE-12345", screen=False)
        assert "/verify" not in staff_reply.text and food_lab.name not in staff_reply.text
        add_regulator(db, REGULATOR, Scope.parse("national"))
        usage = await Chat(tg, REGULATOR).say("/verify not-a-code", screen=False)
        assert "/verify ABCDE-12345" in usage.text
        assert not tg.unanswered()
    assert read_db(db_path).execute("SELECT count(*) FROM submissions").fetchone()[0] == 0


async def test_without_a_cjk_font_the_bot_says_so_instead_of_sending_boxes(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from bot.pledge import render
    from bot.telegram.routers import pledge as pledge_router

    monkeypatch.setattr(render, "cjk_font_available", lambda: False)
    monkeypatch.setattr(pledge_router, "cjk_font_available", lambda: False)
    code = invite(db_path, food_lab.id)
    fill(db, checklist, food_lab, by=USER, leave=0)
    async with running_bot(tg, db_path):
        assert render.NO_CJK_FONT in caplog.text  # said once, clearly, at start
        chat = Chat(tg, USER)
        summary = await join(chat, code)
        _, preview = await chat.press(button(summary, "✍️"), summary)
        confirm = await sign_as(chat, preview)
        mark = tg.mark()
        await chat.press(button(confirm, "✅"), confirm)
        sent = [c for c in tg.calls(after=mark, chat_id=USER) if c.method in ("sendMessage", "sendDocument")]
        assert [c.method for c in sent] == ["sendMessage"] and "fonts-noto-cjk" in sent[0].params["text"]
        # Once a font is there, /pledge produces and sends the PDF of the recorded signature.
        monkeypatch.setattr(render, "cjk_font_available", lambda: True)
        await chat.say("/pledge")
        await tg.wait_until(lambda: tg.messages(USER)[-1].kind == "document" or None)
        assert not tg.unanswered()
    assert read_db(db_path).execute("SELECT count(*) FROM submissions").fetchone()[0] == 1


async def test_control_characters_in_a_telegram_name_reach_neither_the_pdf_nor_the_terminal(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution,
) -> None:  # fmt: skip
    """Telegram allows a bidirectional override and control characters in a name: the
    signed pledge prints who confirmed it in Telegram (reversed by U+202E, as it was), and
    `zicha staff list` printed the name raw to the operator's terminal (ESC: a cleared screen)."""
    hostile = "\u202e小王\x1b[2J\x9b31m\u200b"
    code = invite(db_path, motor_lab.id)
    fill(db, checklist, motor_lab, by=USER)
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER, first_name=hostile)
        last_item = await join(chat, code)
        screen = await sign_as(chat, await finish_and_open_signing(chat, last_item))
        await chat.press(button(screen, "✅"), screen)
    [row] = list(read_db(db_path)["submissions"].rows)
    signed_by = json.loads(row["canonical"])["signed_by"]
    assert signed_by["name"] == "小王[2J31m", signed_by
    assert read_db(db_path)["users"].get(USER)["first_name"] == "小王[2J31m"
    status, listing = zicha("staff", "list", motor_lab.uscc, db_path=db_path)
    assert status == 0 and "小王[2J31m" in listing
    assert not any(c in listing for c in "\x1b\x9b\u202e\u200b")
