"""A press through the real dispatcher (issue 14): membership, language, the
conversation's row (``storage.fsm.ReadAhead``), the self-check and its answers in one read,
inside the press's transaction (begun by the membership middleware, committed by the
engine's step: ``storage.db.begin_handed``), one COMMIT; and what is read ahead is never
used past its update: a member removed meanwhile is refused at once, a button naming
another institution's self-check or an old screen changes nothing."""

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
    await _press_on(app, bot, session, label, n, session.next_message_id)


async def _press_on(app: Any, bot: Bot, session: Screens, label: str, n: int, message_id: int) -> None:
    """A press on ``label`` of the last screen, shown on message ``message_id`` (a press
    edits the message it was made on)."""
    message = {"message_id": message_id, "date": 1, "text": "q", "chat": {"id": STAFF, "type": "private"}}
    query = {"id": f"q{n}", "from": _user(), "chat_instance": "c", "message": message, "data": session.button(label)}
    await _feed(app, bot, {"update_id": n, "callback_query": query})


async def test_a_press_reads_its_conversation_once_and_a_removed_member_is_refused_at_once(app: Any, food_lab: Institution) -> None:
    app, bot, session, db = app
    await _answer_header(app, bot, session)
    log = await _traced_press(app, bot, session, db, "符合", 5)
    assert session.answers[-1] is not None and session.answers[-1].startswith("已保存")
    fsm_reads = [q for q in log if "FROM fsm" in q or "JOIN fsm" in q]
    assert len(fsm_reads) == 1 and "members" in fsm_reads[0], log  # read with the membership, once
    assert sum(1 for q in log if q.startswith("COMMIT")) == 1
    # BEGIN, who presses with their conversation and the self-check with its answers (one
    # read, under the write lock), the answer, its history, the counters, COMMIT; the state
    # is not written: it follows the interview from one button question to the next
    # (``ConversationState.following``), and the next question is where it leads
    assert len(log) <= 6, log
    assert not any("INTO fsm" in q for q in log), log
    assert log[0] == "BEGIN IMMEDIATE", log
    assert [n for n, q in enumerate(log) if "FROM answers" in q or "JOIN answers" in q] == [1]
    assert "JOIN members" in log[1] and "FROM selfchecks" in log[1]
    assert not db.conn.in_transaction
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


async def _traced_press(app: Any, bot: Bot, session: Screens, db: Any, label: str, n: int) -> list[str]:
    """The statements SQLite ran for a press on ``label`` (its trace callback)."""
    log: list[str] = []
    db.conn.set_trace_callback(log.append)
    try:
        await _press(app, bot, session, label, n)
    finally:
        db.conn.set_trace_callback(None)
    return log


async def _answer_header(app: Any, bot: Bot, session: Screens) -> None:
    """/start, then the header: the institution's details are right, then two typed answers."""
    start = {"message_id": 1, "date": 1, "text": "/start", "chat": {"id": STAFF, "type": "private"}, "from": _user(),
             "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}  # fmt: skip
    await _feed(app, bot, {"update_id": 1, "message": start})
    await _press(app, bot, session, "是，信息无误", 2)
    for n, text in ((3, "李四"), (4, "010-82262722")):
        await _feed(app, bot, {"update_id": n, "message": {"message_id": 10 + n, "date": 1, "text": text,
                                                            "chat": {"id": STAFF, "type": "private"}, "from": _user()}})  # fmt: skip


def _tables(db: sqlite_utils.Database) -> dict[str, list[Any]]:
    return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("answers", "answer_history", "selfchecks")}


async def test_a_button_naming_another_institutions_self_check_reads_none_of_it_and_changes_nothing(
    app: Any, motor_lab: Institution, checklist: Any
) -> None:
    app, bot, session, db = app
    await _answer_header(app, bot, session)
    from storage.answers import get_or_create_selfcheck

    theirs = get_or_create_selfcheck(db, motor_lab.id, checklist)
    ours = session.button("符合")
    prefix, sc, *rest = ours.split(":")
    assert int(sc) != theirs.id
    before = _tables(db)
    log: list[str] = []
    db.conn.set_trace_callback(log.append)
    try:
        message = {"message_id": session.next_message_id, "date": 1, "text": "q", "chat": {"id": STAFF, "type": "private"}}
        query = {"id": "forged", "from": _user(), "chat_instance": "c", "message": message,
                 "data": ":".join([prefix, str(theirs.id), *rest])}  # fmt: skip
        await _feed(app, bot, {"update_id": 7, "callback_query": query})
    finally:
        db.conn.set_trace_callback(None)
    assert session.answers[-1] is not None and "不属于" in session.answers[-1]  # "does not belong to your institution"
    assert _tables(db) == before
    assert not db.conn.in_transaction
    # the self-check read with the membership was none (it is not the member's institution's),
    # so the step read its own institution's self-check as usual
    assert "JOIN members" in log[1] and sum(1 for q in log if "FROM answers" in q or "JOIN answers" in q) == 2, log


async def test_a_press_on_an_old_screen_is_refused_politely_and_leaves_no_transaction_open(app: Any) -> None:
    app, bot, session, db = app
    await _answer_header(app, bot, session)
    data = session.button("符合")
    message = {"message_id": session.next_message_id, "date": 1, "text": "q", "chat": {"id": STAFF, "type": "private"}}
    await _feed(app, bot, {"update_id": 8, "callback_query": {"id": "q8", "from": _user(), "chat_instance": "c",
                                                              "message": message, "data": data}})  # fmt: skip
    assert session.answers[-1] is not None and session.answers[-1].startswith("已保存")
    before = _tables(db)
    # the same button again, on the same (now edited) message: its item is answered, the screen moved on
    await _feed(app, bot, {"update_id": 9, "callback_query": {"id": "q9", "from": _user(), "chat_instance": "c",
                                                              "message": message, "data": data}})  # fmt: skip
    assert session.answers[-1] is not None and "已保存" not in session.answers[-1]
    assert _tables(db) == before
    assert not db.conn.in_transaction


async def test_a_press_whose_step_fails_rolls_back_what_it_began(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app, bot, session, db = app
    await _answer_header(app, bot, session)
    before = _tables(db)
    conversation = app.dispatcher["conversation"]

    async def broken(actor: Any, action: Any) -> Any:
        db.execute("UPDATE selfchecks SET updated_at = 'written by a step that then failed'")
        raise RuntimeError("a bug in the step")

    monkeypatch.setattr(conversation, "handle_off_loop", broken)
    await _press(app, bot, session, "符合", 10)  # the error handler answers the press
    assert not db.conn.in_transaction
    assert _tables(db) == before


async def test_a_removed_member_pressing_ends_the_transaction_before_anything_is_shown(app: Any, food_lab: Institution) -> None:
    app, bot, session, db = app
    await _answer_header(app, bot, session)
    remove_member(db, food_lab.id, STAFF, removed_by="test")
    before = _tables(db)
    log = await _traced_press(app, bot, session, db, "符合", 11)
    assert log[:3] == ["BEGIN IMMEDIATE", log[1], "COMMIT"] and "JOIN members" in log[1], log
    assert _tables(db) == before
    assert not db.conn.in_transaction


async def test_a_press_is_unpacked_once(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The membership middleware unpacks the press (to find the self-check it names); the
    press's route takes what it unpacked rather than unpacking it again."""
    app, bot, session, _db = app
    await _answer_header(app, bot, session)
    from bot.telegram.callbacks import AnswerCb

    calls: list[str] = []
    unpack = AnswerCb.unpack.__func__  # type: ignore[attr-defined]

    def counted(cls: Any, value: str) -> Any:
        calls.append(value)
        return unpack(cls, value)

    monkeypatch.setattr(AnswerCb, "unpack", classmethod(counted))
    from bot.telegram.conversation import _decoded

    _decoded.cache_clear()  # data seen in another test is not unpacked again at all
    await _press(app, bot, session, "符合", 12)
    assert session.answers[-1] is not None and session.answers[-1].startswith("已保存")
    assert len(calls) == 1, calls


async def test_no_transaction_is_open_while_a_press_waits_on_the_network(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a step that does not take the press's transaction over (here: one that only
    answers with a notice) leaves none open when the press's answer is sent."""
    app, bot, session, db = app
    await _answer_header(app, bot, session)
    from bot.conversation.screens import Outcome

    async def notice_only(actor: Any, action: Any) -> Outcome:
        return Outcome(notice="nothing to do")

    monkeypatch.setattr(app.dispatcher["conversation"], "handle_off_loop", notice_only)
    open_when_sent: list[bool] = []
    request = session.make_request

    async def recording(bot: Bot, method: Any, timeout: int | None = None) -> Any:
        open_when_sent.append(db.conn.in_transaction)
        return await request(bot, method, timeout)

    monkeypatch.setattr(session, "make_request", recording)
    await _press(app, bot, session, "符合", 13)
    assert session.answers[-1] == "nothing to do"
    assert open_when_sent and not any(open_when_sent)


def _item_on_screen(session: Screens) -> str:
    return session.button("符合").split(":")[2]  # AnswerCb: a:<self-check>:<item>:...


class _RowsRead:
    """The serving connection, counting the rows each statement gave (``fetchall``)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.rows: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def execute(self, sql: str, *args: Any) -> Any:
        cursor = self._conn.execute(sql, *args)
        rows = self.rows

        class Counted:
            def __getattr__(self, name: str) -> Any:
                return getattr(cursor, name)

            def __iter__(self) -> Any:
                return iter(self.fetchall())

            def fetchall(self) -> list[Any]:
                got = cursor.fetchall()
                rows.append((sql, len(got)))
                return got

        return Counted()


async def test_a_press_on_a_self_check_whose_answers_are_known_reads_none_of_their_rows(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answers of the last step are kept with their fingerprint; the press's read asks
    for the stored answers' fingerprint and gets no answer rows when it is the same."""
    app, bot, session, db = app
    await _answer_header(app, bot, session)
    import storage.answers as answer_store

    def counting(make: Any, made: list[str]) -> Any:
        def counted(values: Any) -> Any:
            made.append(values[0])
            return make(values)

        return counted

    read: list[str] = []  # answers made of rows read
    written: list[str] = []  # answers made of what was written
    monkeypatch.setattr(answer_store, "_answer", counting(answer_store._answer, read))
    monkeypatch.setattr(answer_store, "_new_answer", counting(answer_store._new_answer, written))
    counted = _RowsRead(db.conn)
    monkeypatch.setattr(db, "conn", counted)
    before = _item_on_screen(session)
    await _press(app, bot, session, "符合", 20)
    assert session.answers[-1] is not None and session.answers[-1].startswith("已保存")
    assert _item_on_screen(session) != before
    reads = [n for sql, n in counted.rows if "JOIN members" in sql]
    assert reads == [1], counted.rows  # one row: the sender and the self-check, no answer
    assert read == [] and written == [before]  # only the answer just written was made (from its values)
    monkeypatch.undo()
    assert db.execute("SELECT value FROM answers WHERE item_id = ?", [before]).fetchone() == ("compliant",)


async def test_an_answer_written_elsewhere_between_two_presses_is_seen_by_the_next_one(
    app: Any, food_lab: Institution
) -> None:
    """A colleague on the web chat or the terminal (another connection) answers the item
    after the one on screen: the next press here reads the answers afresh (their fingerprint
    changed), so it skips that item and counts it."""
    app, bot, session, db = app
    await _answer_header(app, bot, session)
    live = session.next_message_id  # the message the header's last answer sent the question on
    await _press_on(app, bot, session, "符合", 21, live)  # the answers are known now
    from bot.selfcheck import open_workspace
    from storage.answers import save_answer

    ws = open_workspace(db, app.checklist, food_lab)
    order = [item.id for item in ws.interview.items]
    current = _item_on_screen(session)
    following = order[order.index(current) + 1]
    done_before = ws.progress().done
    other = open_db(db.conn.execute("PRAGMA database_list").fetchone()[2], migrate=False)
    try:
        save_answer(other, ws.selfcheck.id, following, by=STAFF + 1, value="na")
    finally:
        other.close()
    await _press_on(app, bot, session, "符合", 22, live)
    assert session.answers[-1] is not None and session.answers[-1].startswith("已保存")
    assert _item_on_screen(session) == order[order.index(current) + 2]  # the colleague's item skipped
    assert open_workspace(db, app.checklist, food_lab).progress().done == done_before + 2
