"""Benchmark: the cost of ONE ANSWER STEP through Zicha's real dispatcher, beside a bare
aiogram bot and aiogram-dialog asking the same survey.

One "answer step" is a staff member pressing "符合" (compliant) under the live question:
the update is parsed, goes through Zicha's dispatcher (membership and language
middlewares, the SQLite FSM storage, the press router's Route filter that decodes the
press by its prefix), the conversation engine records the answer in SQLite and commits and
computes the next question, the message is edited to it, the conversation state is kept
(one write) and the callback is answered.

The contenders, all in this process, fed the same kind of updates through the same null
session, in alternating rounds:

* ``bare``: the fair baseline. A Dispatcher with MemoryStorage, one router, a CallbackData
  filter; the handler keeps the answer in FSM data, edits the message to the next
  question (Zicha's text for it, the same 3 + 2 + 3 keyboard, built directly with
  InlineKeyboardMarkup/InlineKeyboardButton: the cheapest way aiogram allows) and answers
  the callback.
* ``dialog/memory``, ``dialog/sqlite-full``, ``dialog/sqlite-normal``: aiogram-dialog 2
  (the ``bench`` extra) asking the same questions with the same text and keyboard (one
  Window, a getter, Buttons), on MemoryStorage and on Zicha's own SQLite FSM storage at
  each durability.
* ``zicha/full``, ``zicha/normal``: Zicha at ZICHA_DURABILITY=full and normal, each on its
  own database file with the background WAL checkpointer of ``zicha run``.

The null session does the client-side work of the real aiohttp session (serialising the
method's fields, parsing a JSON response into aiogram types) but no I/O, so only the
dispatcher, the handlers and the storage differ.

Run from the repository root (``pip install -e '.[bench]'`` first):

    python bench/answer_step.py [--steps N] [--json] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import gc
import json
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.enums import ParseMode
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.methods import EditMessageText, GetMe, SendMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update

try:
    from aiogram_dialog import Dialog, DialogManager, StartMode, Window, setup_dialogs
    from aiogram_dialog.widgets.kbd import Button, Row
    from aiogram_dialog.widgets.text import Const, Format
except ImportError:  # pragma: no cover
    sys.exit("aiogram-dialog is missing: install the bench extra with  pip install -e '.[bench]'")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bot.config import load_settings  # noqa: E402
from bot.core.checklist import Checklist, Item  # noqa: E402
from bot.core.interview import Choice, Interview  # noqa: E402
from bot.core.roster import RosterRow  # noqa: E402
from bot.core.uscc import make_uscc  # noqa: E402
from bot.telegram.app import build_app  # noqa: E402
from bot.telegram.callbacks import AnswerCb  # noqa: E402
from storage.answers import get_or_create_selfcheck, recount_all, save_answer  # noqa: E402
from storage.checkpoint import WalCheckpointer  # noqa: E402
from storage.db import open_db  # noqa: E402
from storage.fsm import SQLiteStorage  # noqa: E402
from storage.institutions import bind_member, create_invite, get_institution_by_uscc, upsert_institutions  # noqa: E402

TOKEN = "42:TEST"
BOT_USER = {"id": 42, "is_bot": True, "first_name": "Zicha", "username": "zicha_bench_bot"}
USER_ID = 5001
USER = {"id": USER_ID, "is_bot": False, "first_name": "测试", "language_code": "zh-hans"}
LOCALE = "zh_CN"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2023, 10, 9, 9, 0, tzinfo=SHANGHAI)


# --- the null session ----------------------------------------------------------------


class NullSession(BaseSession):
    """Answers every API method locally, doing the client-side work the real
    ``AiohttpSession`` does (``prepare_value`` on every field of the method, then
    ``check_response`` parsing a JSON body into aiogram types), without any I/O.

    It records where a real session would await the network (after serialising the
    request, until the response body is in), so the stretches of a step that hold the
    event loop can be measured, and how long each step spends in the session.
    """

    def __init__(self) -> None:
        super().__init__()
        self.next_message_id = 1
        self.calls = 0
        self.io_marks: list[int] = []  # perf_counter_ns where the network await would start and end
        self.session_ns = 0  # time inside make_request
        self.last_message_json: str | None = None  # the last sent / edited message, raw
        self.last_callback_text: str | None = None

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        entered = time.perf_counter_ns()
        self.calls += 1
        files: dict[str, Any] = {}
        form = {}
        for key, value in method.model_dump(warnings=False).items():  # as AiohttpSession.build_form_data
            value = self.prepare_value(value, bot=bot, files=files)
            if value:
                form[key] = value
        self.io_marks.append(time.perf_counter_ns())  # a real session would now await the network ...
        if isinstance(method, (SendMessage, EditMessageText)):
            if isinstance(method, SendMessage):
                message_id = self.next_message_id
                self.next_message_id += 1
            else:
                message_id = int(form["message_id"])
            chat_id = int(form["chat_id"]) if "chat_id" in form else USER_ID
            result = (
                f'{{"message_id":{message_id},"date":{int(NOW.timestamp())},'
                f'"chat":{{"id":{chat_id},"type":"private","first_name":"测试"}},'
                f'"from":{json.dumps(BOT_USER)},"text":{json.dumps(form["text"], ensure_ascii=False)}'
                + (f',"reply_markup":{form["reply_markup"]}' if "reply_markup" in form else "")
                + "}"
            )
            self.last_message_json = result
        elif isinstance(method, GetMe):
            result = json.dumps(BOT_USER)
        else:  # answerCallbackQuery, setMyCommands, ...
            if "callback_query_id" in form:
                self.last_callback_text = form.get("text")
            result = "true"
        content = '{"ok":true,"result":' + result + "}"
        self.io_marks.append(time.perf_counter_ns())  # ... and resume here with the response body
        response = self.check_response(bot, method, 200, content)
        self.session_ns += time.perf_counter_ns() - entered
        return response.result  # type: ignore[return-value]

    async def stream_content(self, *args: Any, **kwargs: Any):  # pragma: no cover
        raise RuntimeError("no downloads in the benchmark")
        yield b""


def make_bot() -> tuple[Bot, NullSession]:
    session = NullSession()
    return Bot(token=TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML)), session


# --- updates -------------------------------------------------------------------------


class Updates:
    def __init__(self) -> None:
        self.update_id = 0

    def message(self, text: str) -> dict[str, Any]:
        self.update_id += 1
        return {
            "update_id": self.update_id,
            "message": {
                "message_id": 100_000 + self.update_id,
                "date": int(NOW.timestamp()),
                "chat": {"id": USER_ID, "type": "private", "first_name": "测试"},
                "from": USER,
                "text": text,
                **({"entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]} if text.startswith("/") else {}),
            },
        }

    def press(self, message: dict[str, Any], data: str) -> dict[str, Any]:
        """A press on a button of ``message`` (as Telegram sends it: the whole message,
        keyboard included)."""
        self.update_id += 1
        return {
            "update_id": self.update_id,
            "callback_query": {
                "id": str(self.update_id),
                "from": USER,
                "chat_instance": "bench",
                "message": message,
                "data": data,
            },
        }


def button_by_text(message: dict[str, Any], text: str) -> str | None:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            if button.get("text") == text:
                return button.get("callback_data")
    return None


def answer_button(message: dict[str, Any], choice: str) -> str | None:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data", "")
            if data.startswith("a:") and data.endswith(":" + choice):
                return data
    return None


# --- the two bots --------------------------------------------------------------------


class Runner:
    """One bot under test: ``step()`` makes one timed answer step, ``prepare()`` (untimed)
    gets the next one ready."""

    name = ""

    def __init__(self) -> None:
        self.bot, self.session = make_bot()
        self.dp: Dispatcher
        self.updates = Updates()
        self.message: dict[str, Any] = {}
        self.payload: dict[str, Any] = {}
        self.marks: list[int] = []
        self.cpu_ns = 0

    async def feed(self, payload: dict[str, Any]) -> None:
        await self.dp.feed_update(self.bot, Update.model_validate(payload, context={"bot": self.bot}))

    async def step(self) -> int:
        """One answer step; returns its duration in ns and leaves the segment marks."""
        payload = self.payload
        self.session.io_marks.clear()
        self.session.session_ns = 0
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        await self.dp.feed_update(self.bot, Update.model_validate(payload, context={"bot": self.bot}))
        t1 = time.perf_counter_ns()
        self.cpu_ns = time.thread_time_ns() - c0  # CPU time: not inflated when the core is shared
        self.marks = [t0, *self.session.io_marks, t1]
        return t1 - t0

    def session_time(self) -> int:
        """Time the last step spent inside the null session (ns)."""
        return self.session.session_ns

    def longest_blocking(self) -> int:
        """The longest stretch of the last step that would hold the event loop with a
        real session: between two network awaits, serialisation and parsing included (ns)."""
        marks = self.marks
        return max(marks[i + 1] - marks[i] for i in range(0, len(marks) - 1, 2))

    async def prepare(self) -> None:
        raise NotImplementedError

    def check_last(self) -> None:
        """Check (untimed) that the last step did what it should."""
        raise NotImplementedError


class ZichaRunner(Runner):
    name = "zicha"

    def __init__(self, tmp: Path, durability: str = "full") -> None:
        super().__init__()
        self.name = f"zicha/{durability}"
        db_path = tmp / f"zicha-{durability}.db"
        self.settings = load_settings(
            _env_file=None, bot_token=TOKEN, zicha_db=db_path, zicha_locale=LOCALE, zicha_durability=durability
        )
        # A file in WAL mode at the chosen durability, checkpointed in the background: as `zicha run`.
        self.db = open_db(db_path, durability=durability)
        self.checkpointer = WalCheckpointer(self.db)
        row = RosterRow(
            line=2,
            name="食品检验所",
            uscc=make_uscc("91110108MA0100002"),
            cma_cert="230000000002",
            province="广东",
            level="national",
            fields=("food",),
            contact_name="李四",
            contact_phone="010-82262722",
        )
        upsert_institutions(self.db, [row])
        institution = get_institution_by_uscc(self.db, row.uscc)
        assert institution is not None
        bind_member(self.db, USER_ID, create_invite(self.db, institution.id), "测试")
        self.app = build_app(self.settings, self.db, clock=lambda: NOW)
        self.checklist: Checklist = self.app.checklist
        self.dp = self.app.dispatcher
        self.interview = Interview(self.checklist, institution.fields)
        self.selfcheck = get_or_create_selfcheck(self.db, institution.id, self.checklist)
        # The header items (a yes/no confirmation and two typed answers) are answered up
        # front: the measured step is the button press "compliant" on a compliance item.
        self.header = [i for i in self.interview.items if i.kind != "compliance"]
        for item in self.header:
            value = Choice.YES if item.kind == "confirm" else Choice.TEXT
            text = None if item.kind == "confirm" else ("李四" if "person" in item.id else "010-82262722")
            save_answer(self.db, self.selfcheck.id, item.id, by=USER_ID, value=value, text=text)
        self.compliance = [i for i in self.interview.items if i.kind == "compliance"]
        self.answered_in_cycle = 0
        self.cycles = 0
        self.checkpointer.start()

    def reset(self) -> None:
        """Untimed: forget the compliance answers so the interview starts over."""
        ids = [i.id for i in self.compliance]
        marks = ",".join("?" for _ in ids)
        with self.db.atomic():
            self.db.execute(f"DELETE FROM answers WHERE selfcheck_id = ? AND item_id IN ({marks})", [self.selfcheck.id, *ids])
            self.db.execute(
                f"DELETE FROM answer_history WHERE selfcheck_id = ? AND item_id IN ({marks})", [self.selfcheck.id, *ids]
            )
            self.db.execute("UPDATE selfchecks SET status = 'in_progress', completed_at = NULL WHERE id = ?", [self.selfcheck.id])
            recount_all(self.db)  # the counters save_answer keeps, after answers deleted behind its back

    async def start(self) -> None:
        """Untimed: /start shows the next open item in a new message, which becomes live."""
        self.session.last_message_json = None
        await self.feed(self.updates.message("/start"))
        assert self.session.last_message_json is not None, "/start sent nothing"
        self.message = json.loads(self.session.last_message_json)

    async def prepare(self) -> None:
        if self.session.last_message_json is not None:
            self.message = json.loads(self.session.last_message_json)
        data = answer_button(self.message, Choice.COMPLIANT.value) if self.message else None
        if data is None:
            if self.message:  # the checklist is exhausted: check every press was taken
                done = self.db.execute(
                    "SELECT COUNT(*) FROM answers WHERE selfcheck_id = ?", [self.selfcheck.id]
                ).fetchone()[0]
                assert done == len(self.header) + len(self.compliance), f"only {done} answers stored"
                assert self.answered_in_cycle == len(self.compliance), self.answered_in_cycle
                self.cycles += 1
            self.reset()
            await self.start()
            self.answered_in_cycle = 0
            data = answer_button(self.message, Choice.COMPLIANT.value)
            assert data is not None, self.message
        cb = AnswerCb.unpack(data)
        assert cb.rev == 0 and cb.fp == self.checklist.fingerprint
        self.answered_in_cycle += 1
        self.session.last_message_json = None
        self.payload = self.updates.press(self.message, data)

    def check_last(self) -> None:
        text = self.session.last_callback_text or ""
        assert text.startswith(("已保存", "Saved")), f"the press was not taken: {text!r}"


# The baseline and the peer: the same survey (Zicha's compliance items, in order), the
# same question text and the same 3 + 2 + 3 keyboard, built the cheapest way each allows.


class BareAnswerCb(CallbackData, prefix="a"):
    sc: int
    item: str
    fp: str
    rev: int
    choice: str


CHOICE_LABELS = {"compliant": "符合", "noncompliant": "不符合", "na": "不适用"}


class Survey:
    """The questions both the bare bot and aiogram-dialog ask: text as Zicha shows it."""

    def __init__(self, items: list[Item], section_titles: dict[str, str]) -> None:
        self.items = items
        self.total = len(items)
        self.index = {item.id: k for k, item in enumerate(items)}
        self.titles = section_titles

    def text(self, k: int) -> str:
        item, total = self.items[k], self.total
        pct = round(100 * k / total)
        bar = "▰" * (k * 10 // total) + "▱" * (10 - k * 10 // total)
        return (
            f"<b>{self.titles[item.section_id]}</b>\n第 {k + 1}/{total} 项  {bar} {pct}%\n\n"
            f"<b>{item.text.get(LOCALE)}</b>"
            + (f"\n\n<i>依据：{item.basis.get(LOCALE)}</i>" if item.basis is not None else "")
        )


def bare_router(survey: Survey) -> Router:
    router = Router(name="bare")

    def question(k: int) -> tuple[str, InlineKeyboardMarkup]:
        item = survey.items[k]
        # Built directly: InlineKeyboardBuilder.as_markup() deep-copies every button.
        answers = [
            InlineKeyboardButton(
                text=CHOICE_LABELS[c], callback_data=BareAnswerCb(sc=1, item=item.id, fp="9dce4f8a", rev=0, choice=c).pack()
            )
            for c in ("compliant", "noncompliant", "na")
        ]
        nav = [
            InlineKeyboardButton(text="◀ 上一项", callback_data=f"n:prev:1:{item.id}"),
            InlineKeyboardButton(text="暂时跳过 ▶", callback_data=f"n:skip:1:{item.id}"),
        ]
        tools = [
            InlineKeyboardButton(text="📋 目录", callback_data="n:toc:1"),
            InlineKeyboardButton(text="🔎 检查", callback_data="n:review:1"),
        ]
        if item.guidance is not None:
            tools.insert(0, InlineKeyboardButton(text="💡 说明", callback_data=f"n:guide:1:{item.id}"))
        return survey.text(k), InlineKeyboardMarkup(inline_keyboard=[answers, nav, tools])

    @router.callback_query(BareAnswerCb.filter())
    async def on_answer(query: CallbackQuery, callback_data: BareAnswerCb, state: FSMContext) -> None:
        await state.update_data({callback_data.item: callback_data.choice})
        k = (survey.index[callback_data.item] + 1) % survey.total
        text, markup = question(k)
        await query.message.edit_text(text, reply_markup=markup)  # type: ignore[union-attr]
        await query.answer("已保存：" + CHOICE_LABELS[callback_data.choice])

    @router.message()
    async def on_start(message: Any) -> None:
        text, markup = question(0)
        await message.answer(text, reply_markup=markup)

    return router


class BareRunner(Runner):
    name = "bare"

    def __init__(self, survey: Survey) -> None:
        super().__init__()
        self.dp = Dispatcher(storage=MemoryStorage())
        self.dp.include_router(bare_router(survey))

    async def prepare(self) -> None:
        if self.session.last_message_json is not None:
            self.message = json.loads(self.session.last_message_json)
        if not self.message:
            await self.feed(self.updates.message("/start"))
            assert self.session.last_message_json is not None
            self.message = json.loads(self.session.last_message_json)
        data = answer_button(self.message, "compliant")
        assert data is not None
        self.session.last_message_json = None
        self.payload = self.updates.press(self.message, data)

    def check_last(self) -> None:
        assert (self.session.last_callback_text or "").startswith("已保存")


class SurveyStates(StatesGroup):
    question = State()


def survey_dialog(survey: Survey) -> Dialog:
    """aiogram-dialog's way: one window, the question from a getter, Buttons with on_click."""

    async def getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
        k = dialog_manager.dialog_data.get("k", 0)
        return {"text": survey.text(k), "guide": survey.items[k].guidance is not None}

    async def on_choice(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
        k = manager.dialog_data.get("k", 0)
        manager.dialog_data.setdefault("answers", {})[survey.items[k].id] = button.widget_id
        manager.dialog_data["k"] = (k + 1) % survey.total

    async def on_nav(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
        pass  # never pressed in the benchmark

    window = Window(
        Format("{text}"),
        Row(*(Button(Const(CHOICE_LABELS[c]), id=c, on_click=on_choice) for c in ("compliant", "noncompliant", "na"))),
        Row(Button(Const("◀ 上一项"), id="prev", on_click=on_nav), Button(Const("暂时跳过 ▶"), id="skip", on_click=on_nav)),
        Row(
            Button(Const("💡 说明"), id="guide", on_click=on_nav, when="guide"),
            Button(Const("📋 目录"), id="toc", on_click=on_nav),
            Button(Const("🔎 检查"), id="review", on_click=on_nav),
        ),
        getter=getter,
        state=SurveyStates.question,
        parse_mode="HTML",
    )
    return Dialog(window)


class DialogRunner(Runner):
    """aiogram-dialog 2 running the same survey; its context and stack live in ``storage``."""

    def __init__(self, name: str, survey: Survey, storage: BaseStorage) -> None:
        super().__init__()
        self.name = name
        self.dp = Dispatcher(storage=storage)
        self.dp.include_router(survey_dialog(survey))
        start = Router(name="start")

        @start.message()
        async def on_start(message: Any, dialog_manager: DialogManager) -> None:
            await dialog_manager.start(SurveyStates.question, mode=StartMode.RESET_STACK)

        self.dp.include_router(start)
        setup_dialogs(self.dp)
        self.answered = 0

    async def prepare(self) -> None:
        if self.session.last_message_json is not None:
            self.message = json.loads(self.session.last_message_json)
        if not self.message:
            await self.feed(self.updates.message("/start"))
            assert self.session.last_message_json is not None, "aiogram-dialog showed nothing"
            self.message = json.loads(self.session.last_message_json)
        data = button_by_text(self.message, CHOICE_LABELS["compliant"])
        assert data is not None, self.message
        self.session.last_message_json = None
        self.session.last_callback_text = "(not answered)"
        self.payload = self.updates.press(self.message, data)

    def check_last(self) -> None:
        # aiogram-dialog answers the callback itself, without a text; the message moved on.
        assert self.session.last_callback_text is None, "the callback was not answered"
        assert self.session.last_message_json is not None, "the message was not edited"


# --- where the time goes (a separate pass; only timers are added) --------------------


class Attribution:
    """Exclusive wall time per component: a wrapped call's time minus the time of the
    wrapped calls inside it, so nested components are not counted twice."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.stack: list[list[int]] = []  # per open call: time of wrapped calls inside it

    def enter(self) -> None:
        self.stack.append([0])

    def leave(self, name: str, elapsed: int) -> None:
        inner = self.stack.pop()[0]
        self.totals[name] = self.totals.get(name, 0) + elapsed - inner
        if self.stack:
            self.stack[-1][0] += elapsed

    def wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        if asyncio.iscoroutinefunction(func):

            async def async_timed(*args: Any, **kwargs: Any) -> Any:
                self.enter()
                t0 = time.perf_counter_ns()
                try:
                    return await func(*args, **kwargs)
                finally:
                    self.leave(name, time.perf_counter_ns() - t0)

            return async_timed

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.enter()
            t0 = time.perf_counter_ns()
            try:
                return func(*args, **kwargs)
            finally:
                self.leave(name, time.perf_counter_ns() - t0)

        return timed


SQLITE = "SQLite (C library, COMMITs included)"


class TimedCursor:
    __slots__ = ("_attribution", "_cursor")

    def __init__(self, cursor: sqlite3.Cursor, attribution: Attribution) -> None:
        self._cursor = cursor
        self._attribution = attribution

    def _timed(self, fetch: Callable[[], Any]) -> Any:
        at = self._attribution
        at.enter()
        t0 = time.perf_counter_ns()
        try:
            return fetch()
        finally:
            at.leave(SQLITE, time.perf_counter_ns() - t0)

    def fetchone(self) -> Any:
        return self._timed(self._cursor.fetchone)

    def fetchall(self) -> list[Any]:
        return self._timed(self._cursor.fetchall)

    def __iter__(self) -> Any:
        return iter(self.fetchall())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class TimedConnection:
    """Wraps the sqlite3 connection: every ``execute`` (COMMIT included) is timed and
    logged, and the cursor's fetches are timed too."""

    def __init__(self, conn: sqlite3.Connection, attribution: Attribution, log: list[tuple[int, str]]) -> None:
        self._conn = conn
        self._attribution = attribution
        self._log = log

    def execute(self, sql: str, *args: Any) -> Any:
        at = self._attribution
        at.enter()
        t0 = time.perf_counter_ns()
        try:
            cursor = self._conn.execute(sql, *args)
        finally:
            elapsed = time.perf_counter_ns() - t0
            at.leave(SQLITE, elapsed)
            self._log.append((elapsed, sql))
        return TimedCursor(cursor, at)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _patch(obj: Any, attr: str, new: Any, undo: list[Callable[[], None]]) -> None:
    old = getattr(obj, attr)
    setattr(obj, attr, new)
    undo.append(lambda: setattr(obj, attr, old))


async def breakdown_pass(zicha: ZichaRunner, n: int) -> dict[str, Any]:
    """Zicha again, with timers around SQLite, Babel, the null session and Zicha's main
    functions: exclusive time per component, SQLite calls and COMMITs per step, the
    longest single SQLite call. Nothing Zicha does is changed; the timers cost a few µs
    per step, so this pass's mean is a little above the table's."""
    import bot.conversation.engine as engine
    import bot.conversation.render as render
    import bot.core.locales as locales
    import bot.telegram.middlewares as middlewares
    import storage.answers as answer_store
    from bot.core.interview import Interview as InterviewRules
    from storage.conversations import SQLiteStates
    from storage.fsm import SQLiteStorage

    at = Attribution()
    log: list[tuple[int, str]] = []
    undo: list[Callable[[], None]] = []
    components = [
        (locales, "format_decimal", "Babel format_decimal (numbers in the question header)"),
        (render, "question_screen", "question screen: text and keyboard (Python)"),
        (render, "summary_screen", "question screen: text and keyboard (Python)"),
        (answer_store, "load_answers", "answers: rows to Answer objects (Python)"),
        (answer_store, "open_selfcheck", "answers: rows to Answer objects (Python)"),
        (answer_store, "get_answer", "answers: rows to Answer objects (Python)"),
        (answer_store, "save_answer", "save_answer: history JSON, rev check (Python)"),
        (answer_store, "set_selfcheck_status", "save_answer: history JSON, rev check (Python)"),
        (InterviewRules, "progress", "interview rules: progress, next item (Python)"),
        (InterviewRules, "progress_after", "interview rules: progress, next item (Python)"),
        (InterviewRules, "next_open", "interview rules: progress, next item (Python)"),
        (engine, "open_workspace", "open_workspace: self-check row, applicable items"),
        (middlewares, "who_is", "middlewares: membership and language lookups (Python)"),
        (middlewares, "get_user_language", "middlewares: membership and language lookups (Python)"),
    ]
    for method in ("get_state", "set_state", "get_data", "set_data", "update_data"):
        components.append((SQLiteStorage, method, "FSM storage: JSON and keys (Python)"))
    for method in ("load", "save"):
        components.append((SQLiteStates, method, "FSM storage: JSON and keys (Python)"))
    for obj, attr, label in components:
        _patch(obj, attr, at.wrap(label, getattr(obj, attr)), undo)
    _patch(zicha.session, "make_request", at.wrap("null session (same work as for the bare bot)", zicha.session.make_request), undo)
    real_conn = zicha.db.conn
    zicha.db.conn = TimedConnection(real_conn, at, log)  # type: ignore[assignment]
    undo.append(lambda: setattr(zicha.db, "conn", real_conn))

    step_times: list[int] = []
    per_step_calls: list[int] = []
    per_step_commits: list[int] = []
    commits_all: list[int] = []
    longest: tuple[int, str] = (0, "")
    try:
        for _ in range(n):
            await zicha.prepare()
            log.clear()
            step_times.append(await zicha.step())
            zicha.check_last()
            per_step_calls.append(len(log))
            commits = [t for t, sql in log if sql.strip().upper() == "COMMIT"]
            per_step_commits.append(len(commits))
            commits_all += commits
            for t, sql in log:
                if t > longest[0]:
                    longest = (t, sql)
    finally:
        for u in reversed(undo):
            u()
    commits_all.sort()
    step_mean = statistics.fmean(step_times) / 1000
    parts = {name: total / n / 1000 for name, total in at.totals.items()}
    parts["aiogram: update parsing, dispatch, filters, middlewares, handler glue"] = step_mean - sum(parts.values())
    return {
        "steps": n,
        "step_us_mean": step_mean,
        "components_us_per_step": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
        "sql_calls_per_step": statistics.fmean(per_step_calls),
        "commits_per_step": statistics.fmean(per_step_commits),
        "commit_us_p50": commits_all[len(commits_all) // 2] / 1000,
        "commit_us_p99": commits_all[int(0.99 * (len(commits_all) - 1))] / 1000,
        "longest_commit_us": commits_all[-1] / 1000,
        "commits_over_1ms": sum(1 for t in commits_all if t > 1_000_000),
        "longest_sql_call_us": longest[0] / 1000,
        "longest_sql_call": " ".join(longest[1].split())[:90],
    }


# --- measuring -----------------------------------------------------------------------


def summarize(ns: list[int]) -> dict[str, float]:
    us = sorted(x / 1000 for x in ns)

    def pct(p: float) -> float:
        return us[min(len(us) - 1, round(p / 100 * (len(us) - 1)))]

    mean = statistics.fmean(us)
    return {
        "n": len(us),
        "mean_us": mean,
        "p50_us": pct(50),
        "p95_us": pct(95),
        "p99_us": pct(99),
        "max_us": us[-1],
        "steps_per_s": 1e6 / mean,
    }


async def run_batch(
    runner: Runner,
    n: int,
    times: list[int],
    blocking: list[int],
    calls: list[int],
    session: list[int],
    cpu: list[int] | None = None,
) -> None:
    for _ in range(n):
        await runner.prepare()
        before = runner.session.calls
        times.append(await runner.step())
        if cpu is not None:
            cpu.append(runner.cpu_ns)
        calls.append(runner.session.calls - before)
        blocking.append(runner.longest_blocking())
        session.append(runner.session_time())
        runner.check_last()


def _group(filename: str, func: str) -> str:
    if filename == "~":  # a built-in: sqlite3, pydantic_core, str methods ...
        if "sqlite3" in func:
            return "sqlite3 (C)"
        if "pydantic_core" in func:
            return "pydantic"
        return ""  # attributed to the caller
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].split(".")[0]
    if filename.startswith(str(REPO)):
        rel = filename[len(str(REPO)) + 1 :]
        if rel.startswith("bench/"):
            return "bench harness (null session, updates)"
        return "zicha " + rel.split("/", 1)[0] + "/"
    return "python stdlib"


def grouped_profile(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time per package; the own time of built-ins goes to whoever called them."""
    totals: dict[str, float] = {}
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, func), (_cc, _nc, tt, _ct, callers) in raw.items():
        group = _group(filename, func)
        if group:
            totals[group] = totals.get(group, 0.0) + tt
            continue
        caller_tt = {c: v[2] for c, v in callers.items()}
        whole = sum(caller_tt.values()) or 1.0
        for (cfile, _cl, cfunc), share in caller_tt.items():
            g = _group(cfile, cfunc) or "python stdlib"
            totals[g] = totals.get(g, 0.0) + tt * share / whole
    total = sum(totals.values())
    return sorted(((g, t / total) for g, t in totals.items()), key=lambda x: -x[1])


def profile_pass(zicha: ZichaRunner, n: int, top: int = 25) -> str:
    import io

    async def go() -> None:
        for _ in range(n):
            await zicha.prepare()
            await zicha.step()

    loop = asyncio.get_event_loop()
    loop.run_until_complete(go())  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    loop.run_until_complete(go())
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"cProfile of {n} Zicha answer steps: own time per package (cProfile inflates code that makes many small calls)\n")
    for group, share in grouped_profile(stats):
        if share >= 0.005:
            out.write(f"  {100 * share:5.1f}%  {group}\n")
    out.write("\n")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    if os.environ.get("BENCH_CALLERS"):
        stats.print_callers(*os.environ["BENCH_CALLERS"].split(","))
    return out.getvalue()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


async def statements_pass(zicha: ZichaRunner, n: int) -> dict[str, Any]:
    """Zicha again, with sqlite3's trace callback on the serving connection: every
    statement SQLite runs for a press (the sqlite3 module's implicit BEGINs included)."""
    log: list[str] = []
    conn = zicha.db.conn
    per_step: list[int] = []
    commits: list[int] = []
    kinds: dict[str, int] = {}
    conn.set_trace_callback(log.append)
    try:
        for _ in range(n):
            await zicha.prepare()
            log.clear()
            await zicha.step()
            zicha.check_last()
            per_step.append(len(log))
            commits.append(sum(1 for q in log if q.lstrip().upper().startswith(("COMMIT", "END"))))
            for q in log:
                word = q.split(None, 1)[0].upper() if q.strip() else "?"
                kinds[word] = kinds.get(word, 0) + 1
    finally:
        conn.set_trace_callback(None)
    return {
        "steps": n,
        "statements_per_press": statistics.fmean(per_step),
        "commits_per_press": statistics.fmean(commits),
        "max_statements": max(per_step),
        "by_kind_per_press": {k: v / n for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
    }


MODES = ("full", "normal")


def fsync_probe(folder: Path, n: int = 100) -> dict[str, float]:
    """What one fsync costs on the disk under the databases right now (µs): the floor of a
    COMMIT at synchronous=FULL, and on a shared machine the most variable figure here."""
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    times = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            t0 = time.perf_counter_ns()
            os.fsync(fd)
            times.append(time.perf_counter_ns() - t0)
    finally:
        os.close(fd)
        path.unlink()
    s = summarize(times)
    return {"p50_us": s["p50_us"], "p99_us": s["p99_us"], "max_us": s["max_us"]}


def order_for(round_no: int, names: list[str]) -> list[str]:
    """Each round starts with a different contender and alternates direction."""
    k = round_no % len(names)
    rotated = names[k:] + names[:k]
    return rotated if round_no % 2 == 0 else rotated[::-1]


async def main_async(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    zichas = {mode: ZichaRunner(tmp, mode) for mode in MODES}
    ref = zichas["full"]
    survey = Survey(ref.compliance, {s.id: s.title.get(LOCALE) for s in ref.checklist.sections})
    dialog_dbs = {mode: open_db(tmp / f"dialog-{mode}.db", durability=mode) for mode in MODES}
    checkpointers = [z.checkpointer for z in zichas.values()]
    for db in dialog_dbs.values():
        checkpointers.append(WalCheckpointer(db))
        checkpointers[-1].start()
    runners: dict[str, Runner] = {"bare": BareRunner(survey), "dialog/memory": DialogRunner("dialog/memory", survey, MemoryStorage())}
    for mode in MODES:
        runners[f"dialog/sqlite-{mode}"] = DialogRunner(f"dialog/sqlite-{mode}", survey, SQLiteStorage(dialog_dbs[mode]))
    for mode in MODES:
        runners[f"zicha/{mode}"] = zichas[mode]
    names = list(runners)
    times: dict[str, list[int]] = {n: [] for n in names}
    blocking: dict[str, list[int]] = {n: [] for n in names}
    calls: dict[str, list[int]] = {n: [] for n in names}
    session: dict[str, list[int]] = {n: [] for n in names}
    cpu: dict[str, list[int]] = {n: [] for n in names}

    def quiet() -> None:
        # Untimed, before each batch: no contender pays for another's garbage or WAL.
        gc.collect()
        for c in checkpointers:
            c.checkpoint()

    # Warm-up (imports, caches, pydantic validators, SQLite page cache), not recorded.
    for runner in runners.values():
        await run_batch(runner, args.warmup, [], [], [], [])

    rounds = args.rounds
    per_round = max(1, args.steps // rounds)
    fsync_before = fsync_probe(tmp)
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    for r in range(rounds):
        for name in order_for(r, names):
            quiet()
            await run_batch(runners[name], per_round, times[name], blocking[name], calls[name], session[name], cpu[name])
    wall = time.perf_counter() - t_start
    # Below 1.0, the core was shared with other processes (the figures are then pessimistic).
    cpu_share = (time.process_time() - cpu_start) / wall

    result: dict[str, Any] = {
        "machine": {
            "cpu": cpu_model(),
            "nproc": os.cpu_count(),
            "pinned_to_cpu": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "python": platform.python_version(),
            "aiogram": __import__("aiogram").__version__,
            "aiogram_dialog": __import__("importlib.metadata").metadata.version("aiogram-dialog"),
            "sqlite": sqlite3.sqlite_version,
        },
        "survey_items": survey.total,
        "steps_per_bot": per_round * rounds,
        "rounds": rounds,
        "warmup": args.warmup,
        "wall_s": wall,
        "cpu_share": cpu_share,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "fsync_before": fsync_before,
        "fsync_after": fsync_probe(tmp),
        "zicha_cycles_completed": {m: zichas[m].cycles for m in MODES},
        "bots": {},
    }
    for name in names:
        s: dict[str, Any] = summarize(times[name])
        s["longest_blocking_stretch_us"] = max(blocking[name]) / 1000
        block = summarize(blocking[name])
        s["blocking_stretch_p50_us"] = block["p50_us"]
        s["blocking_stretch_p99_us"] = block["p99_us"]
        s["api_calls_per_step"] = statistics.fmean(calls[name])
        s["null_session_us_per_step"] = statistics.fmean(session[name]) / 1000
        c = summarize(cpu[name])
        s["cpu"] = {"mean_us": c["mean_us"], "p50_us": c["p50_us"], "p99_us": c["p99_us"], "steps_per_cpu_s": c["steps_per_s"]}
        result["bots"][name] = s
    bots = result["bots"]
    bare = bots["bare"]
    result["vs_bare"] = {
        n: {"p50": bots[n]["p50_us"] / bare["p50_us"], "mean": bots[n]["mean_us"] / bare["mean_us"],
            "cpu_p50": bots[n]["cpu"]["p50_us"] / bare["cpu"]["p50_us"]}
        for n in names if n != "bare"
    }  # fmt: skip
    result["zicha_vs_dialog"] = {
        f"zicha/{m} vs {d}": {"p50": bots[f"zicha/{m}"]["p50_us"] / bots[d]["p50_us"],
                              "mean": bots[f"zicha/{m}"]["mean_us"] / bots[d]["mean_us"]}
        for m in MODES for d in ("dialog/memory", f"dialog/sqlite-{m}")
    }  # fmt: skip
    for checkpointer in checkpointers:
        checkpointer.stop()
    result["statements"] = await statements_pass(zichas["normal"], args.breakdown_steps)
    result["breakdown"] = {m: await breakdown_pass(zichas[m], args.breakdown_steps) for m in MODES}
    st = result["statements"]
    result["targets"] = {
        **{f"zicha/{m} p50 <= 1.4x bare": result["vs_bare"][f"zicha/{m}"]["p50"] <= 1.4 for m in MODES},
        **{f"zicha/{m} ahead of dialog/memory (p50)": bots[f"zicha/{m}"]["p50_us"] < bots["dialog/memory"]["p50_us"] for m in MODES},
        **{f"zicha/{m} ahead of dialog/sqlite-{m} (p50)": bots[f"zicha/{m}"]["p50_us"] < bots[f"dialog/sqlite-{m}"]["p50_us"] for m in MODES},
        "zicha/normal >= 1500 steps/s": bots["zicha/normal"]["steps_per_s"] >= 1500,
        "zicha/full >= 800 steps/s": bots["zicha/full"]["steps_per_s"] >= 800,
        "<= 6 statements per press": st["statements_per_press"] <= 6,
        "1 COMMIT per press": st["commits_per_press"] <= 1,
    }
    for db in dialog_dbs.values():
        db.close()
    return result


def print_table(r: dict[str, Any]) -> None:
    m = r["machine"]
    print(f"Answer-step benchmark — {m['cpu']}, {m['nproc']} CPUs, pinned to CPU {m['pinned_to_cpu']}, "
          f"Python {m['python']}, aiogram {m['aiogram']}, aiogram-dialog {m['aiogram_dialog']}, SQLite {m['sqlite']}")
    print(f"{r['steps_per_bot']} steps per bot in {r['rounds']} alternating rounds after {r['warmup']} warm-up steps "
          f"({r['wall_s']:.1f} s; a {r['survey_items']}-question survey; Zicha went through it "
          + ", ".join(f"{n} times ({k})" for k, n in r["zicha_cycles_completed"].items()) + ")")
    lb, la = r["loadavg_before"], r["loadavg_after"]
    print(f"this process got {100 * r['cpu_share']:.0f}% of its core during the timed rounds; "
          f"load average before {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, after {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}"
          + ("  -- WARNING: the core was shared with other processes, absolute figures are pessimistic"
             if r["cpu_share"] < 0.95 else ""))
    fb, fa = r["fsync_before"], r["fsync_after"]
    print(f"fsync of a 4 KiB write in the database folder: before p50 {fb['p50_us']:.0f} µs, p99 {fb['p99_us']:.0f} µs; "
          f"after p50 {fa['p50_us']:.0f} µs, p99 {fa['p99_us']:.0f} µs")
    print()
    head = (f"{'bot':<22}{'mean µs':>9}{'p50 µs':>9}{'p95 µs':>9}{'p99 µs':>9}{'max µs':>9}{'steps/s':>9}"
            f"{'CPU p50':>9}{'block p99':>11}{'block max':>11}{'p50 ×bare':>11}{'mean ×bare':>11}{'CPU ×bare':>11}")
    print(head)
    print("-" * len(head))
    for name, s in r["bots"].items():
        ratio = r["vs_bare"].get(name, {"p50": 1.0, "mean": 1.0, "cpu_p50": 1.0})
        print(
            f"{name:<22}{s['mean_us']:>9.0f}{s['p50_us']:>9.0f}{s['p95_us']:>9.0f}{s['p99_us']:>9.0f}{s['max_us']:>9.0f}"
            f"{s['steps_per_s']:>9.0f}{s['cpu']['p50_us']:>9.0f}{s['blocking_stretch_p99_us']:>11.0f}"
            f"{s['longest_blocking_stretch_us']:>11.0f}{ratio['p50']:>10.2f}×{ratio['mean']:>10.2f}×{ratio['cpu_p50']:>10.2f}×"
        )
    print("steps/s = 1 / mean on one core; CPU p50 = thread CPU time (not inflated when the core is shared); "
          "block = the longest stretch of a step between two awaits on the network (serialisation and parsing "
          "included): how long it would hold the event loop with a real session; CPU ×bare = ratio of the CPU p50s")
    print("API calls per step: " + ", ".join(f"{n} {s['api_calls_per_step']:.1f}" for n, s in r["bots"].items()))
    print()
    for k, v in r["zicha_vs_dialog"].items():
        print(f"{k}: p50 {v['p50']:.2f}×, mean {v['mean']:.2f}×")
    st = r["statements"]
    print()
    print(f"SQLite per Zicha press (sqlite3 trace callback, {st['steps']} presses, normal): "
          f"{st['statements_per_press']:.1f} statements (max {st['max_statements']}), "
          f"{st['commits_per_press']:.2f} COMMITs; by kind: "
          + ", ".join(f"{k} {v:.1f}" for k, v in st["by_kind_per_press"].items()))
    print()
    print("Targets:")
    for k, ok in r["targets"].items():
        print(f"  {'met    ' if ok else 'NOT met'}  {k}")
    for mode, q in r["breakdown"].items():
        print()
        print(f"Where a zicha/{mode} step's time goes ({q['steps']} more steps with timers; exclusive µs per step, "
              f"mean step {q['step_us_mean']:.0f} µs):")
        for name, us in q["components_us_per_step"].items():
            print(f"  {us:>6.0f} µs  {100 * us / q['step_us_mean']:>3.0f}%  {name}")
        print(f"  COMMIT p50 {q['commit_us_p50']:.0f} µs, p99 {q['commit_us_p99']:.0f} µs, max {q['longest_commit_us']:.0f} µs; "
              f"{q['commits_over_1ms']} COMMITs over 1 ms; longest single SQLite call {q['longest_sql_call_us']:.0f} µs "
              f"({q['longest_sql_call']!r})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000, help="timed answer steps per bot (default 3000)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating batches per bot (default 6)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed warm-up steps per bot (default 300)")
    parser.add_argument("--breakdown-steps", type=int, default=660,
                        help="Zicha steps with timers / with the trace callback, per mode (default 660)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--profile", type=int, nargs="?", const=1000, default=0, metavar="N",
                        help="also cProfile N Zicha steps (default 1000, normal durability) and print the top functions")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to CPU 0")
    args = parser.parse_args()
    if args.breakdown_steps < 1:  # the statement count and the breakdown need steps to count
        parser.error("--breakdown-steps must be at least 1")

    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {0})
        except OSError as exc:  # pragma: no cover
            print(f"(could not pin to CPU 0: {exc})", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="zicha-bench-") as tmp:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            result = loop.run_until_complete(main_async(args, Path(tmp)))
            if args.json:
                print(json.dumps(result, indent=2, ensure_ascii=False))
            else:
                print_table(result)
            if args.profile:
                # A fresh Zicha (same setup) so the profile is not skewed by the runs above.
                (Path(tmp) / "profile").mkdir()
                zicha = ZichaRunner(Path(tmp) / "profile", "normal")
                print(profile_pass(zicha, args.profile), file=sys.stderr if args.json else sys.stdout)
                zicha.checkpointer.stop()
        finally:
            loop.close()


if __name__ == "__main__":
    main()
