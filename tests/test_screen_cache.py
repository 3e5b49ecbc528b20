"""Question screens are kept (``bot.conversation.render._QUESTIONS``) under everything
they are made of: two languages never share one, an answer or a progress that changed
gives a new one, and the kept one is the screen as it would be made afresh."""

from __future__ import annotations

import sqlite_utils

from bot.conversation import render
from bot.conversation.actions import Choose, NavAction, Navigate
from bot.conversation.engine import Actor
from bot.core.checklist import Checklist
from bot.core.interview import Choice
from storage.institutions import Institution, ensure_user
from tests.test_press_transaction import MESSAGE, USER, _conversation, _header_answered, _press


def test_a_kept_question_screen_is_the_one_made_afresh_in_each_language(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    ensure_user(db, USER, "张三")
    ensure_user(db, USER + 1, "Li")
    _header_answered(db, checklist, motor_lab)
    conversation = _conversation(db, checklist)
    zh = Actor(USER, motor_lab, "zh_CN", f"test:{USER}")
    en = Actor(USER + 1, motor_lab, "en", f"test:{USER + 1}")
    first_zh, first_en = conversation.screen_for(zh), conversation.screen_for(en)
    assert first_zh.screen is not None and first_en.screen is not None
    assert first_zh.screen.item == first_en.screen.item
    assert "符合" in [b.label for b in first_zh.screen.buttons()] and "Compliant" in [b.label for b in first_en.screen.buttons()]
    render._QUESTIONS.clear()  # made afresh: the same screens
    assert conversation.screen_for(zh).screen == first_zh.screen and conversation.screen_for(en).screen == first_en.screen

    # zh answers: en's screen of the same item (again) shows the answer, and the progress moved
    conversation.shown(zh, first_zh, MESSAGE)
    conversation.shown(en, first_en, MESSAGE + 1)
    after, _log = _press(conversation, zh, first_zh, lambda a: isinstance(a, Choose) and a.choice is Choice.COMPLIANT)
    assert after.notice == "已保存：符合"
    # en opens the item again (their state followed the interview on to the next question)
    sc = next(b.action.sc for b in first_en.screen.buttons() if isinstance(b.action, Choose))
    open_it = Navigate(action=NavAction.OPEN, sc=sc, item=first_en.screen.item or "")
    again = conversation.handle(en, open_it)
    assert again.screen is not None and again.screen.item == first_en.screen.item
    assert again.screen != first_en.screen
    assert "✅ Compliant" in [b.label for b in again.screen.buttons()]
    assert all(b.action.rev == 1 for b in again.screen.buttons() if isinstance(b.action, Choose))
    render._QUESTIONS.clear()
    assert conversation.handle(en, open_it).screen == again.screen
