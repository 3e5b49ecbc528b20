"""A press through the real dispatcher (issue 14): membership, language and the
conversation's row in one read (``storage.fsm.ReadAhead``), the self-check and its answers
in one more, inside the press's transaction, one COMMIT; and what is read ahead is never
used past its update: a member removed meanwhile is refused at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType

from bot.config import load_settings
from bot.telegram.app import build_app
from bot.telegram.session import parse_update
from storage.db import open_db
from storage.institutions import Institution, bind_member, create_invite, remove_member
from tests.harness import CAMPAIGN_NOW
from tests.test_fuzz_updates import STAFF, RecordingSession


class Screens(RecordingSession):
    """Keeps the last screen sent or edited (its text and buttons)."""

    def __init__(self) -> None:
        super().__init__()
        self.last: Any = None
        self.answers: list[str | None] = []

    async def make_request(self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None) -> TelegramType:
        if getattr(method, "reply_markup", None) is not None:
            self.last = method
        if type(method).__name__ == "AnswerCallbackQuery":
            self.answers.append(getattr(method, "text", None))
        return await super().make_request(bot, method, timeout)

    def button(self, label: str) -> str:
        for row in self.last.reply_markup.inline_keyboard:
            for b in row:
                if b.text == label:
                    return str(b.callback_data)
        raise AssertionError(f"no button {label!r}")


@pytest.fixture
async def app(tmp_path: Path, food_lab: Institution, db: sqlite_utils.Database) -> AsyncIterator[Any]:
    db_path = tmp_path / "zicha.db"
    bot_db = open_db(db_path)
    app = build_app(load_settings(_env_file=None, bot_token="42:READS", zicha_db=db_path), bot_db, clock=lambda: CAMPAIGN_NOW)
    bind_member(bot_db, STAFF, create_invite(bot_db, food_lab.id, 5), "员工")
    session = Screens()
    bot = Bot(token="42:READS", session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    try:
        yield app, bot, session, bot_db
    finally:
        await bot.session.close()
        bot_db.close()


def _user() -> dict[str, Any]:
    return {"id": STAFF, "is_bot": False, "first_name": "员工", "language_code": "zh-hans"}


async def _feed(app: Any, bot: Bot, update: dict[str, Any]) -> None:
    parsed = parse_update(update, bot)
    assert parsed is not None
    await app.dispatcher.feed_update(bot, parsed)


async def _press(app: Any, bot: Bot, session: Screens, label: str, n: int) -> None:
    message = {"message_id": session.next_message_id, "date": 1, "text": "q", "chat": {"id": STAFF, "type": "private"}}
    query = {"id": f"q{n}", "from": _user(), "chat_instance": "c", "message": message, "data": session.button(label)}
    await _feed(app, bot, {"update_id": n, "callback_query": query})


async def test_a_press_reads_its_conversation_once_and_a_removed_member_is_refused_at_once(app: Any, food_lab: Institution) -> None:
    app, bot, session, db = app
    start = {"message_id": 1, "date": 1, "text": "/start", "chat": {"id": STAFF, "type": "private"}, "from": _user(),
             "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}  # fmt: skip
    await _feed(app, bot, {"update_id": 1, "message": start})
    # the header: the institution's details are right, then two typed answers
    await _press(app, bot, session, "是，信息无误", 2)
    for n, text in ((3, "李四"), (4, "010-82262722")):
        await _feed(app, bot, {"update_id": n, "message": {"message_id": 10 + n, "date": 1, "text": text,
                                                            "chat": {"id": STAFF, "type": "private"}, "from": _user()}})  # fmt: skip
    log: list[str] = []
    db.conn.set_trace_callback(log.append)
    try:
        await _press(app, bot, session, "符合", 5)
    finally:
        db.conn.set_trace_callback(None)
    assert session.answers[-1] is not None and session.answers[-1].startswith("已保存")
    fsm_reads = [q for q in log if "FROM fsm" in q or "JOIN fsm" in q]
    assert len(fsm_reads) == 1 and "members" in fsm_reads[0], log  # read with the membership, once
    assert sum(1 for q in log if q.startswith("COMMIT")) == 1
    assert len(log) <= 8, log
    begin = next(n for n, q in enumerate(log) if q.startswith("BEGIN"))
    assert [n for n, q in enumerate(log) if "FROM answers" in q or "JOIN answers" in q] == [begin + 1]
    answered = db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    # nothing read ahead outlives its update (one that writes no state, /help): a change by
    # another process is seen afterwards
    await _feed(app, bot, {"update_id": 50, "message": {"message_id": 50, "date": 1, "text": "/help", "from": _user(),
                                                         "chat": {"id": STAFF, "type": "private"},
                                                         "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}})  # fmt: skip
    key, kept = db.execute("SELECT key, data FROM fsm").fetchone()
    other = open_db(db.conn.execute("PRAGMA database_list").fetchone()[2], migrate=False)
    try:
        other.execute("UPDATE fsm SET data = '{\"item\": \"elsewhere\"}' WHERE key = ?", [key])
        other.conn.commit()
    finally:
        other.close()
    assert app.dispatcher["conversation"].states.load(key).item == "elsewhere"
    with db.atomic():
        db.execute("UPDATE fsm SET data = ? WHERE key = ?", [kept, key])  # as it was: the next press is live

    # removed by a colleague before the next press: refused, nothing stored, nothing of theirs shown
    remove_member(db, food_lab.id, STAFF, removed_by="test")
    shown = session.last
    await _press(app, bot, session, "符合", 6)
    assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == answered
    assert session.answers[-1] is None or "已保存" not in session.answers[-1]
    assert session.last is shown or food_lab.name not in str(getattr(session.last, "text", ""))
