"""An invited quality manager completes the self-check through Telegram (the stand-in),
with the real bot, real handlers and the real database."""

from __future__ import annotations

import json
from pathlib import Path

from bot.core.checklist import Checklist
from bot.core.interview import Choice, Interview
from bot.telegram.callbacks import AnswerCb
from storage.institutions import Institution
from tests.harness import Chat, invite, read_db, running_bot
from tests.standin import BotMessage, TelegramStandin

USER = 5001


def item_on(message: BotMessage) -> str | None:
    """The item whose answer buttons a message carries (read from the buttons' data)."""
    for _text, data in (b for row in message.buttons for b in row):
        if data and data.startswith(AnswerCb.__prefix__ + ":"):
            return AnswerCb.unpack(data).item
    return None


async def join(chat: Chat, code: str) -> BotMessage:
    screen = await chat.say(f"/start {code}")
    assert "此邀请对应以下机构" in screen.text
    await chat.press("是，这是我的机构")
    return chat.current()


async def test_invited_user_completes_the_whole_checklist_and_changes_an_answer_from_review(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, motor_lab: Institution
) -> None:
    code = invite(db_path, motor_lab.id)
    interview = Interview(checklist, motor_lab.fields)
    compliance = [i for i in interview.items if i.kind == "compliance"]
    motor_items = [i for i in compliance if "motor-vehicle" in i.fields]
    not_applicable = next(i for i in compliance if i.allow_na)
    rectified, in_progress, with_evidence = compliance[0], compliance[5], motor_items[0]
    plan_nc = {rectified.id, in_progress.id, with_evidence.id}
    assert not_applicable.id not in plan_nc

    async with running_bot(tg, db_path):
        chat = Chat(tg, USER)
        screen = await join(chat, code)
        answered: list[str] = []
        while "自查已完成" not in screen.text:
            item_id = item_on(screen)
            if item_id is None:  # a text item: its screen has no answer buttons
                assert "请直接输入文字作答" in screen.text
                item_id = interview.items[len(answered)].id
                text = "13812345678" if "电话" in screen.text else "王五"
                screen = await chat.say(text)
            else:
                item = checklist.item(item_id)
                assert f"第 {interview.position(item_id)}/{interview.total} 项" in screen.text
                if item.kind == "confirm":
                    _, screen = await chat.press("是，信息无误", screen)
                elif item_id == not_applicable.id:
                    _, screen = await chat.press("不适用", screen)
                elif item_id in plan_nc:
                    answer, screen = await chat.press("不符合", screen)
                    assert answer.text == "已保存：不符合"
                    assert "请用一条消息描述发现的问题" in screen.text
                    if item_id == with_evidence.id:
                        screen = await chat.send("photo", caption="现场照片")
                        assert any("已为第" in t and "保存证明材料" in t for t in chat.replies_since(0))
                    screen = await chat.say(f"问题<{item_id}> & 记录缺失")
                    assert f"问题：问题<{item_id}> & 记录缺失" in screen.text  # echoed literally, escaped as HTML
                    screen = await chat.say("补充记录，组织培训")
                    if item_id == in_progress.id:
                        _, screen = await chat.press("整改中", screen)
                        screen = await chat.say("2023年11月30日")
                    else:
                        _, screen = await chat.press("已完成整改", screen)
                else:
                    _, screen = await chat.press("符合", screen)
            answered.append(item_id)
        assert "不符合：3" in screen.text and "不适用：1" in screen.text and "未完成整改：1" in screen.text

        # Change an answer from the review screen: the rectified item becomes compliant.
        review = await chat.say("/review")
        assert "不符合 (3)" in review.text
        label = next(t for t in review.button_texts if t.startswith(f"{interview.position(rectified.id)}. "))
        _, screen = await chat.press(label, review)
        assert item_on(screen) == rectified.id and "当前答案：不符合" in screen.text
        _, screen = await chat.press("符合", screen)
        assert "自查已完成" in screen.text and "不符合：2" in screen.text
        assert not tg.unanswered()

    db = read_db(db_path)
    rows = {r["item_id"]: r for r in db["answers"].rows}
    assert set(rows) == {i.id for i in interview.items}, "exactly the applicable items are answered"
    food_only = [i.id for i in checklist.items if i.fields and "motor-vehicle" not in i.fields]
    assert food_only and not set(food_only) & set(rows)
    assert rows[not_applicable.id]["value"] == "na"
    assert rows[rectified.id]["value"] == "compliant" and rows[rectified.id]["problem"] is None
    assert rows[in_progress.id]["rect_status"] == "in_progress" and rows[in_progress.id]["target_date"] == "2023-11-30"
    assert rows[with_evidence.id]["problem"] == f"问题<{with_evidence.id}> & 记录缺失"
    assert {r["value"] for r in rows.values()} == {"yes", "text", "compliant", "noncompliant", "na"}
    assert all(r["answered_by"] == USER for r in rows.values())
    history = list(db["answer_history"].rows_where("item_id = ?", [rectified.id], order_by="id"))
    assert [json.loads(h["new"])["value"] for h in history] == ["noncompliant"] * 4 + ["compliant"]
    assert json.loads(history[-1]["old"])["problem"] == f"问题<{rectified.id}> & 记录缺失"
    total_history = db.execute("SELECT count(*) FROM answer_history").fetchone()[0]
    assert total_history == sum(r["rev"] for r in rows.values())
    evidence = list(db["evidence"].rows)
    assert len(evidence) == 1 and evidence[0]["item_id"] == with_evidence.id and evidence[0]["kind"] == "photo"
    assert db["selfchecks"].get(1)["status"] == "completed"
    assert db["selfchecks"].get(1)["checklist_version"] == checklist.version


async def test_colleagues_see_each_others_answers_and_a_stale_button_changes_nothing(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        alice, bob = Chat(tg, 6001, "Alice"), Chat(tg, 6002, "Bob")
        alice_screen = await join(alice, code)
        bob_screen = await join(bob, code)
        assert item_on(alice_screen) == item_on(bob_screen) == checklist.items[0].id
        _, alice_screen = await alice.press("是，信息无误", alice_screen)
        # Bob's screen still offers the same item at its old revision: pressing it is stale.
        answer, bob_screen = await bob.press("否，需要更正", bob_screen)
        assert answer.text == "该项目刚刚已被修改，以下是当前答案。"
        assert "当前答案：是，信息无误" in bob_screen.text
        # An old message of Alice's (an earlier screen) is stale too, even at the right revision.
        old = alice_screen
        fresh = await alice.say("/start")
        assert fresh.message_id != old.message_id
        stale = await alice.press_data(
            AnswerCb(sc=1, item=checklist.items[0].id, fp=checklist.fingerprint, rev=1, choice=Choice.NO).pack(), old
        )
        assert stale.text == "此消息已过期，请使用下方最新的问题。"
        # A button drawn from an older version of the checklist file is stale as well.
        outdated = await alice.press_data(
            AnswerCb(sc=1, item=checklist.items[0].id, fp="00000000", rev=1, choice=Choice.NO).pack(), fresh
        )
        assert outdated.text == "自查表在这条消息之后已更新，请使用最新的问题。"
    db = read_db(db_path)
    assert [r["value"] for r in db["answers"].rows] == ["yes"]
    assert db.execute("SELECT count(*) FROM answer_history").fetchone()[0] == 1


async def test_language_is_remembered_and_buttons_are_translated(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        chat = Chat(tg, 7001)
        screen = await join(chat, code)
        await chat.press("是，信息无误", screen)
        menu = await chat.say("/language")
        answer, _ = await chat.press("English", menu)
        assert answer.text == "Language set to English."
        screen = await chat.say("/start")
        assert "Item 2/" in screen.text and "Previous" in " ".join(screen.button_texts)
        await chat.say("Wang Wu")
        screen = await chat.say("010-82262722")
        assert {"Compliant", "Non-compliant"} <= set(screen.button_texts)
        # The menu commands were registered in both languages at start.
        default_scope = json.dumps({"type": "default"})
        assert {c["command"] for c in tg.commands[(default_scope, "")]} >= {"start", "progress", "review", "help"}
        assert tg.commands[(default_scope, "")][0]["description"] == "继续自查"
        assert tg.commands[(default_scope, "en")][0]["description"] == "Continue the self-check"
    db = read_db(db_path)
    assert db["users"].get(7001)["language"] == "en"


async def test_progress_contents_and_guidance_screens(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        chat = Chat(tg, 8001)
        screen = await join(chat, code)
        _, screen = await chat.press("💡 填写指引", screen)
        assert "💡" in screen.text and "💡 收起指引" in screen.button_texts
        progress = await chat.say("/progress")
        assert "进度：0/" in progress.text and "机构基本信息 0/3" in progress.text
        _, contents = await chat.press("📋 目录", screen)
        assert "目录" in contents.text
        section_button = next(t for t in contents.button_texts if "依法从业" in t)
        _, section = await chat.press(section_button, contents)
        first = section.button_texts[0]
        _, opened = await chat.press(first, section)
        assert "依法从业" in opened.text and "符合" in opened.button_texts
        _, prev = await chat.press("◀ 上一项", opened)
        assert "第 3/" in prev.text
        _answer, _ = await chat.press("暂时跳过 ▶", prev)
        assert not tg.unanswered()


async def test_a_double_tap_is_answered_and_message_is_not_modified_is_never_an_error(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        chat = Chat(tg, 8101)
        screen = await join(chat, code)
        toc = next(d for row in screen.buttons for t, d in row if t == "📋 目录")
        assert toc is not None
        mark = tg.mark()
        first = tg.press_data(8101, screen.message_id, toc)
        second = tg.press_data(8101, screen.message_id, toc)  # the same button, tapped twice
        await tg.wait_answered(first)
        await tg.wait_answered(second)
        edits = tg.calls("editMessageText", after=mark)
        assert [c.ok for c in edits] == [True, False]
        assert "message is not modified" in (edits[1].description or "")
        assert not tg.unanswered()
        assert not any("出现了问题" in (c.params.get("text") or "") for c in tg.calls(after=mark))
