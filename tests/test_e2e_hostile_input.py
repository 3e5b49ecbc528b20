"""Whatever a user types, sends or presses, they get a clear reply and stored data stays
as it was. Every callback query is answered."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from bot.core.checklist import Checklist
from bot.core.interview import Choice, Interview, RectStatus
from bot.telegram.callbacks import AnswerCb, NavAction, NavCb, RectCb
from storage.institutions import Institution
from tests.harness import Chat, invite, read_db, running_bot
from tests.standin import BotMessage, TelegramStandin

STAFF = 9001
STRANGER = 9002


def snapshot(db_path: Path) -> dict[str, list[dict[str, object]]]:
    """Everything a user's input could change, to compare before and after."""
    db = read_db(db_path)
    try:
        return {
            table: list(db[table].rows)
            for table in ("answers", "answer_history", "evidence", "members", "invites", "selfchecks", "institutions")
        }
    finally:
        db.close()


async def join(chat: Chat, code: str) -> BotMessage:
    await chat.say(f"/start {code}")
    await chat.press("是，这是我的机构")
    return chat.current()


async def reach_first_compliance_item(chat: Chat) -> BotMessage:
    _, _screen = await chat.press("是，信息无误")
    await chat.say("王五")
    return await chat.say("13812345678")


async def test_a_stranger_gets_an_explanation_and_changes_nothing(
    tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    invite(db_path, food_lab.id, max_uses=1)  # an invite exists, but the stranger does not have it
    before = snapshot(db_path)
    async with running_bot(tg, db_path):
        stranger = Chat(tg, STRANGER)
        for text in ("/start", "hello", "/progress", "/review", "<b>hi</b> & <script>x</script>"):
            reply = await stranger.say(text, screen=False)
            assert "仅供受邀人员使用" in reply.text
        reply = await stranger.say("/start WRONG-CODE", screen=False)
        assert reply.text.startswith("邀请码无效")
        reply = await stranger.say("/start " + "<b>" * 30, screen=False)
        assert reply.text.startswith("邀请码无效")
        # Forged buttons for the institution's self-check, an item, anything at all.
        await tg.wait_until(lambda: tg.messages(STRANGER) or None)
        message = tg.last_message(STRANGER)
        sc = 1
        forged = [
            AnswerCb(sc=sc, item=checklist.items[3].id, fp=checklist.fingerprint, rev=0, choice=Choice.COMPLIANT).pack(),
            NavCb(action=NavAction.OPEN, sc=sc, item=checklist.items[3].id).pack(),
            "j:1",  # "yes, that is my institution" without an invite
            "garbage",
        ]
        for data in forged:
            answer = await stranger.press_data(data, message)
            assert answer.text in {"只有受邀的机构工作人员才能使用这些按钮。发送 /start 查看说明。", "此按钮已失效。"}
        assert not tg.unanswered()
    assert snapshot(db_path) == before


async def test_forged_and_foreign_buttons_are_refused(
    tg: TelegramStandin, tmp_path: Path, checklist: Checklist, food_lab: Institution, motor_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    food_code, motor_code = invite(db_path, food_lab.id), invite(db_path, motor_lab.id)
    async with running_bot(tg, db_path):
        other = Chat(tg, 9100)
        await join(other, motor_code)  # creates the motor lab's self-check (id 1)
        staff = Chat(tg, STAFF)
        screen = await join(staff, food_code)  # the food lab's self-check is id 2
        screen = await reach_first_compliance_item(staff)
        before = snapshot(db_path)
        item = AnswerCb.unpack(next(d for row in screen.buttons for _, d in row if d and d.startswith("a:")))
        motor_only = next(i for i in checklist.items if i.fields == frozenset({"motor-vehicle"}))
        cases = {
            "another institution's self-check": item.model_copy(update={"sc": 1}).pack(),
            "an item of another field": item.model_copy(update={"item": motor_only.id}).pack(),
            "an unknown item": item.model_copy(update={"item": "no-such-item"}).pack(),
            "not applicable where the item forbids it": item.model_copy(update={"choice": Choice.NA}).pack(),
            "a confirm answer on a compliance item": item.model_copy(update={"choice": Choice.YES}).pack(),
            "a rectification status on a compliant item": RectCb(
                sc=2, item=item.item, fp=item.fp, rev=0, status=RectStatus.DONE
            ).pack(),
            "an unknown action": f"n:explode:2:{item.item}:0",
            "a wrong type": f"a:two:{item.item}:{item.fp}:0:compliant",
            "an unknown prefix": "zz:1:2",
            "navigation in another self-check": NavCb(action=NavAction.REVIEW, sc=1).pack(),
        }
        for case, data in cases.items():
            answer = await staff.press_data(data, screen)
            assert answer.text, f"{case}: no notice"
            assert "已保存" not in answer.text, case
        assert snapshot(db_path) == before
        assert not tg.unanswered()
        # The real buttons still work afterwards.
        answer, _ = await staff.press("符合", screen)
        assert answer.text == "已保存：符合"


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("<b>粗体</b> & <script>alert(1)</script> &amp; &lt;", "<b>粗体</b> & <script>alert(1)</script> &amp; &lt;"),
        ("设备 🔧🧪 超期 👍🏽 ‏RTL ‮txet", "设备 🔧🧪 超期 👍🏽 RTL txet"),
    ],
)
async def test_html_and_emoji_are_stored_and_shown_literally(
    tg: TelegramStandin, tmp_path: Path, checklist: Checklist, food_lab: Institution, text: str, stored: str
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        staff = Chat(tg, STAFF)
        await join(staff, code)
        await reach_first_compliance_item(staff)
        await staff.press("不符合")
        screen = await staff.say(text)
        assert f"问题：{stored}" in screen.text  # the stand-in accepted the HTML, so it was escaped
    row = next(iter(read_db(db_path)["answers"].rows_where("value = 'noncompliant'")))
    assert row["problem"] == stored


async def test_overlong_empty_and_non_text_input_is_refused_politely_and_loses_nothing(
    tg: TelegramStandin, tmp_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        staff = Chat(tg, STAFF)
        await join(staff, code)
        screen = await reach_first_compliance_item(staff)
        # Text where buttons are expected: a hint and the question again; nothing stored.
        before = snapshot(db_path)
        mark = tg.mark()
        again = await staff.say("符合")
        assert "请使用问题下方的按钮作答" in staff.replies_since(mark)[0]
        assert again.text == screen.text
        for kind in ("sticker", "document"):
            mark = tg.mark()
            await staff.send(kind, screen=kind == "sticker")
            assert any(("抱歉" in t or "文件仅可作为不符合项" in t) for t in staff.replies_since(mark)), kind
        assert snapshot(db_path) == before

        await staff.press("不符合")
        before = snapshot(db_path)
        for bad, reason in [("字" * 4000, "4,000 个字符"), ("   ", "消息为空"), ("\u200b\u202e", "消息为空")]:
            mark = tg.mark()
            prompt = await staff.say(bad)
            assert reason in staff.replies_since(mark)[0].replace("4000", "4,000")
            assert "请用一条消息描述发现的问题" in prompt.text
        await staff.send("sticker")
        assert snapshot(db_path) == before
        screen = await staff.say("字" * 1000)  # exactly the limit is fine
        assert "已采取或计划采取哪些整改措施" in screen.text
        await staff.say("补充记录")
        await staff.press("整改中")
        for bad, reason in [("明天", "年-月-日"), ("2023-02-30", "年-月-日"), ("2023-10-01", "不能早于今天"), ("2099-01-01", "三年以后")]:
            mark = tg.mark()
            await staff.say(bad)
            assert reason in staff.replies_since(mark)[0], bad
        screen = await staff.say("2023-12-01")
        assert "第 5/" in screen.text
        assert not tg.unanswered()
    row = next(iter(read_db(db_path)["answers"].rows_where("value = 'noncompliant'")))
    assert row["problem"] == "字" * 1000 and row["target_date"] == "2023-12-01"


async def test_a_text_item_rejects_an_answer_that_does_not_fit_its_pattern(
    tg: TelegramStandin, tmp_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    interview = Interview(checklist, food_lab.fields)
    phone_item = interview.items[2]
    async with running_bot(tg, db_path):
        staff = Chat(tg, STAFF)
        await join(staff, code)
        await staff.press("是，信息无误")
        await staff.say("王五")
        mark = tg.mark()
        screen = await staff.say("not a phone <b>")
        assert staff.replies_since(mark)[0].startswith("格式不符合要求")
        assert "请填写自查负责人的联系电话" in screen.text
        screen = await staff.say("0755-1234567")
        assert "第 4/" in screen.text
    stored = {r["item_id"]: r["text"] for r in read_db(db_path)["answers"].rows}
    assert stored[phone_item.id] == "0755-1234567"


async def test_a_used_up_or_revoked_invite_is_explained(
    tg: TelegramStandin, tmp_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id, max_uses=1)
    async with running_bot(tg, db_path):
        await join(Chat(tg, 9301), code)
        second = Chat(tg, 9302)
        reply = await second.say(f"/start {code.lower()}", screen=False)
        assert "使用人数已满" in reply.text
        # Declining an invite binds nobody.
        other = invite(db_path, food_lab.id, max_uses=1)
        await second.say(f"/start {other}")
        _answer, message = await second.press("否")
        assert "未做任何更改" in message.text
        stale = await second.press_data("j:1", message)
        assert stale.text == "此按钮已失效。"
    members = {r["telegram_id"] for r in read_db(db_path)["members"].rows}
    assert members == {9301}
