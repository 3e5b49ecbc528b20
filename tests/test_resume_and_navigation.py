"""Where "Continue" leads, which navigation buttons an item offers, /language and pattern
hints: driven through the real bot and the Telegram stand-in, as a user presses them."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest

from bot.core.checklist import Checklist, ChecklistError, load_checklist
from bot.core.interview import Interview
from bot.telegram.callbacks import NavAction, NavCb
from storage.db import open_db
from storage.institutions import Institution
from tests.conftest import SHIPPED_CHECKLIST
from tests.harness import Chat, invite, read_db, running_bot
from tests.pledge_support import fill
from tests.standin import BotMessage, TelegramStandin
from tests.test_e2e_interview import item_on, join

USER = 9301
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")


async def answer_header(chat: Chat, screen: BotMessage) -> BotMessage:
    """Items 1-3 (details confirmed, name, phone); returns the screen of item 4."""
    _, screen = await chat.press("是，信息无误", screen)
    await chat.say("王五")
    screen = await chat.say("13812345678")
    assert "第 4/" in screen.text
    return screen


async def test_every_continue_button_resumes_at_the_open_item_the_user_is_on(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, food_lab: Institution, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZICHA_OUTBOX_RATE", "300")
    monkeypatch.setenv("ZICHA_OUTBOX_CHAT_INTERVAL", "0.05")
    code = invite(db_path, food_lab.id)
    interview = Interview(checklist, food_lab.fields)
    item4 = interview.items[3]
    # During the campaign, a week before the deadline: a reminder is due.
    now = dt.datetime(2023, 10, 20, 9, 0, tzinfo=TZ)
    async with running_bot(tg, db_path, clock=lambda: now) as app:
        chat = Chat(tg, USER)
        screen = await answer_header(chat, await join(chat, code))

        # Item 4 is on screen, unanswered. /progress -> Continue: item 4 again, not item 5.
        progress = await chat.say("/progress")
        _, screen = await chat.press("▶ 继续", progress)
        assert "第 4/" in screen.text and item_on(screen) == item4.id, screen.text

        # Contents -> Continue, and review -> Continue: the same.
        _, contents = await chat.press("📋 目录", screen)
        _, screen = await chat.press("▶ 继续", contents)
        assert "第 4/" in screen.text, screen.text
        review = await chat.say("/review")
        _, screen = await chat.press("▶ 继续", review)
        assert "第 4/" in screen.text, screen.text

        # "The pledge cannot be signed yet" -> Continue.
        refusal = await chat.say("/pledge")
        assert "暂不能签署承诺书" in refusal.text, refusal.text
        _, screen = await chat.press("▶ 继续", refusal)
        assert "第 4/" in screen.text, screen.text

        # The deadline reminder's "Continue the self-check" button.
        assert app.background is not None
        await app.background.sweep()
        await tg.wait_until(lambda: any("继续自查" in m.button_texts for m in tg.messages(USER)), what="the reminder")
        reminder = chat.latest_with_button("继续自查")
        _, screen = await chat.press("继续自查", reminder)
        assert "第 4/" in screen.text, screen.text

        # On an answered item (opened from the contents), Continue goes on to the first open one.
        _, contents = await chat.press("📋 目录", screen)
        _, section = await chat.press(next(t for t in contents.button_texts if "机构基本信息" in t), contents)
        _, item1 = await chat.press(section.button_texts[0], section)
        assert "第 1/" in item1.text and "当前答案：是，信息无误" in item1.text
        progress = await chat.say("/progress")
        _, screen = await chat.press("▶ 继续", progress)
        assert "第 4/" in screen.text, screen.text

        # /start agrees with every Continue button.
        screen = await chat.say("/start")
        assert "第 4/" in screen.text, screen.text
        assert not tg.unanswered()
    db = read_db(db_path)
    assert db["answers"].count == 3, "navigating stores no answer"
    assert item4.id not in {r["item_id"] for r in db["answers"].rows}


async def test_item_one_offers_no_previous_and_the_last_open_item_no_skip(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER)
        screen = await join(chat, code)
        assert "第 1/" in screen.text
        assert "◀ 上一项" not in screen.button_texts and "暂时跳过 ▶" in screen.button_texts
        _, screen = await chat.press("是，信息无误", screen)
        assert "第 2/" in screen.text and "◀ 上一项" in screen.button_texts
        # A forged "previous" on item 1 still changes nothing.
        answer = await chat.press_data(NavCb(action=NavAction.PREV, sc=1, item=checklist.items[0].id).pack(), screen)
        assert answer.text == "已经是第一项。"

        # A colleague answers everything but the last item: there is nowhere to skip to.
        db = open_db(db_path)
        try:
            fill(db, checklist, food_lab, by=USER + 1, leave=1)
        finally:
            db.close()
        total = Interview(checklist, food_lab.fields).total
        screen = await chat.say("/start")
        assert f"第 {total}/{total} 项" in screen.text, screen.text
        assert "暂时跳过 ▶" not in screen.button_texts and "◀ 上一项" in screen.button_texts


async def test_a_phone_number_in_the_wrong_form_is_refused_with_what_is_expected(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER)
        screen = await join(chat, code)
        _, screen = await chat.press("是，信息无误", screen)
        await chat.say("王五")
        mark = tg.mark()
        screen = await chat.say("1381234")
        assert "第 3/" in screen.text
        refusal = chat.replies_since(mark)[0]
        assert "本次未保存" in refusal and "应填写：手机号码（如 13812345678）或带区号的固定电话（如 010-82262722" in refusal, refusal
        screen = await chat.say("010-82262722")
        assert "第 4/" in screen.text
    rows = {r["item_id"]: r["text"] for r in read_db(db_path)["answers"].rows}
    assert rows["header-phone"] == "010-82262722"


async def test_language_redisplays_the_question_and_keeps_the_follow_up(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER)
        screen = await join(chat, code)
        _, screen = await chat.press("是，信息无误", screen)
        assert "第 2/" in screen.text

        menu = await chat.say("/language")
        answer, _ = await chat.press("English", menu)
        assert answer.text == "Language set to English."
        screen = chat.current()
        assert "Item 2/" in screen.text and "Send /start" not in screen.text, screen.text
        assert "◀ Previous" in screen.button_texts
        assert tg.message(USER, menu.message_id).text == "Language set to English."
        # The redisplayed question is the live one: typing answers it.
        await chat.say("Wang Wu")
        screen = await chat.say("13812345678")
        assert "Item 4/" in screen.text
        _, screen = await chat.press("Non-compliant", screen)
        assert "describe the problem" in screen.text

        # In the middle of the follow-up questions: the follow-up is asked again, in Chinese.
        menu = await chat.say("/language")
        answer, _ = await chat.press("中文", menu)
        screen = chat.tg.last_message(USER)
        assert "请用一条消息描述发现的问题" in screen.text, screen.text
        screen = await chat.say("记录不全")
        assert "已采取或计划采取哪些整改措施" in screen.text
    db = read_db(db_path)
    assert db["users"].get(USER)["language"] == "zh_CN"
    item4 = Interview(checklist, food_lab.fields).items[3]
    row = next(r for r in db["answers"].rows if r["item_id"] == item4.id)
    assert row["value"] == "noncompliant" and row["problem"] == "记录不全"


def test_a_pattern_hint_needs_its_pattern_and_both_languages(tmp_path: Path) -> None:
    text = SHIPPED_CHECKLIST.read_text(encoding="utf-8")
    assert load_checklist(SHIPPED_CHECKLIST).item("header-phone").pattern_hint is not None
    without_pattern = text.replace(
        'text.zh_CN = "请填写本次自查负责人的姓名。"',
        'pattern_hint.zh_CN = "姓名"\npattern_hint.en = "a name"\ntext.zh_CN = "请填写本次自查负责人的姓名。"',
    )
    path = tmp_path / "bad.toml"
    path.write_text(without_pattern, encoding="utf-8")
    with pytest.raises(ChecklistError, match=r"item 'header-person'.*pattern_hint is only allowed together with pattern"):
        load_checklist(path)
    one_language = text.replace('pattern_hint.en = "a mobile number', 'pattern_hint.fr = "a mobile number')
    path.write_text(one_language, encoding="utf-8")
    with pytest.raises(ChecklistError, match=r"item 'header-phone'.*pattern_hint"):
        load_checklist(path)


def test_the_resume_point_is_the_first_open_item_from_the_current_one(checklist: Checklist) -> None:
    from bot.core.interview import Answer, Choice

    interview = Interview(checklist, ["food"])
    first, second, third = interview.items[:3]
    answered = {first.id: Answer(first.id, Choice.YES)}
    assert interview.resume_point(answered, second.id) == second  # the open item the user is on
    assert interview.resume_point(answered, first.id) == second  # on an answered one: the next open
    assert interview.resume_point(answered, None) == second
    everything_but_first = {i.id: Answer(i.id, Choice.COMPLIANT) for i in interview.items[1:]}
    assert interview.resume_point(everything_but_first, third.id) == first  # wraps around
    assert interview.resume_point(everything_but_first | answered, third.id) is None  # all done: the summary
    assert interview.skip_target(everything_but_first, first.id) == second
    last = interview.items[-1]
    only_last_open = {i.id: Answer(i.id, Choice.COMPLIANT) for i in interview.items[:-1]}
    assert interview.skip_target(only_last_open, last.id) is None
