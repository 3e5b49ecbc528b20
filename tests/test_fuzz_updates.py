"""Issue 12: 10,000 random and malformed updates of every kind through the real dispatcher
(seeded, so a failure replays): messages, edits, channel posts, group messages, messages
with ``sender_chat`` and no sender, inline queries, polls, poll answers, member updates,
random and forged button data (huge ints included), and raw updates aiogram cannot read.

Asserted: no unhandled error (the error handler never runs, no exception escapes), nothing
stored changes that such updates must not change, and memory stays flat.

The Bot API is a recording session in this process (the dispatcher and every handler are
the real ones; only HTTP is left out, for speed)."""

from __future__ import annotations

import gc
import json
import logging
import random
import string
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.enums import ParseMode
from aiogram.exceptions import ClientDecodeError
from aiogram.methods import GetMe, TelegramMethod
from aiogram.methods.base import TelegramType

from bot.config import load_settings
from bot.core.scope import Scope
from bot.telegram.app import build_app
from bot.telegram.session import parse_update
from storage.db import open_db
from storage.institutions import Institution, bind_member, create_invite
from storage.regulators import add_regulator
from tests.harness import CAMPAIGN_NOW

SEED = 20261201
UPDATES = 10_000
TRACED = 7_000  # memory is traced from this update on (tracing slows everything down)
MEASURED = 7_500  # and compared between this update and the last
STAFF, REGULATOR = 7001, 7002
STRANGERS = (7101, 7102, 7103)
GROUP, SUPERGROUP, CHANNEL = -4001, -100_4002, -100_4003
HUGE = (9223372036854775808, -9223372036854775809, 2**64, 10**30, 2**63 - 1, -1, 0)
PROTECTED = (
    "institutions", "invites", "members", "selfchecks", "answers", "answer_history", "evidence", "regulators",
    "submissions", "submission_files", "outbox_batches", "outbox", "regulator_invites", "reminders_sent",
)  # fmt: skip
"""What no update of this test may change (it sends no valid answer: only forged or stale ones)."""


PREFIXES = ("a", "r", "n", "s", "l", "j", "p", "b", "rgo", "rgi", "rgj")
FORGED = [
    (user, ":".join([prefix, *([str(huge)] * width)]))
    for user in (STAFF, REGULATOR)
    for prefix in PREFIXES
    for huge in HUGE
    for width in (1, 2, 3, 5)
]
"""Every button prefix with an out-of-range number in each of its first fields, as
``rgi:9223372036854775808``: from the staff member and from the regulator."""


class RecordingSession(BaseSession):
    """Answers every Bot API call as Telegram would, well enough for the handlers: a message
    for what sends or edits one, True for the rest; counts the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.next_message_id = 10_000

    async def close(self) -> None:
        return None

    def _message(self, method: TelegramMethod[Any]) -> dict[str, Any]:
        self.next_message_id += 1
        chat_id = getattr(method, "chat_id", None)
        chat_id = chat_id if isinstance(chat_id, int) else STAFF
        return {
            "message_id": self.next_message_id, "date": 1_700_000_000, "text": "ok",
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": {"id": 42, "is_bot": True, "first_name": "Zicha"},
        }  # fmt: skip

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.calls += 1
        if isinstance(method, GetMe):
            candidates: list[Any] = [{"id": 42, "is_bot": True, "first_name": "Zicha", "username": "zicha_test_bot"}]
        else:
            candidates = [True, self._message(method), {"file_id": "f", "file_unique_id": "u", "file_path": "f.pdf"}, []]
        for result in candidates:
            try:
                response = self.check_response(bot, method, 200, json.dumps({"ok": True, "result": result}))
            except ClientDecodeError:
                continue
            return response.result  # type: ignore[return-value]
        raise AssertionError(f"the recording session cannot answer {type(method).__name__}")

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        yield b"%PDF-1.4 fuzz"


def protected(db: sqlite_utils.Database) -> dict[str, list[tuple[Any, ...]]]:
    return {table: db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall() for table in PROTECTED}


class Fuzzer:
    def __init__(self, rng: random.Random, staff_sc: int, item_ids: list[str]) -> None:
        self.rng = rng
        self.staff_sc = staff_sc
        self.item_ids = item_ids
        self.update_id = 0
        self.message_id = 0

    # --- pieces
    def text(self) -> str:
        rng = self.rng
        pools = [
            string.printable, "自查整改符合不符合不适用机构统一社会信用代码", "<b>&lt;</b><script>'\"&",
            "\u200b\u202e\ufeff\x00\U0001f9ea👍🏽", "=+-@＝＋＠",
        ]  # fmt: skip
        pool = rng.choice(pools)
        length = rng.choice((0, 1, 5, 40, 300, 4097))
        chunk = "".join(rng.choices(pool, k=min(length, 50)))
        return (chunk * (length // max(len(chunk), 1) + 1))[:length]

    def number(self) -> str:
        rng = self.rng
        return str(rng.choice((*HUGE, rng.randint(-5, 50), self.staff_sc, rng.getrandbits(70))))

    def token(self) -> str:
        rng = self.rng
        return rng.choice((self.number(), rng.choice(self.item_ids), "", "x" * rng.randint(1, 70), "open", "review",
                           "toc", "compliant", "done", "true", "false", "zh_CN", "en", "start", "confirm", "pdf",
                           "send", self.text()[:20]))  # fmt: skip

    def callback_data(self) -> str:
        rng = self.rng
        prefix = rng.choice((*PREFIXES, "zz", ""))
        parts = [prefix, *(self.token() for _ in range(rng.randint(0, 6)))]
        data = ":".join(parts)
        if rng.random() < 0.05:
            data = self.text()
        return data[: rng.choice((64, 64, 64, 200))]

    def user(self, user_id: int | None = None) -> dict[str, Any]:
        rng = self.rng
        uid = user_id or rng.choice((STAFF, REGULATOR, *STRANGERS, rng.getrandbits(40) + 1))
        user: dict[str, Any] = {"id": uid, "is_bot": False, "first_name": self.text()[:64] or "U"}
        if rng.random() < 0.7:
            user["language_code"] = rng.choice(("zh-hans", "en", "fr", "", "xx-YY-zz"))
        return user

    def chat(self, kind: str, user: dict[str, Any]) -> dict[str, Any]:
        if kind == "private":
            return {"id": user["id"], "type": "private", "first_name": "U"}
        chat_id = {"group": GROUP, "supergroup": SUPERGROUP, "channel": CHANNEL}[kind]
        return {"id": chat_id, "type": kind, "title": "群"}

    def message(self, chat_kind: str | None = None, user: dict[str, Any] | None = None) -> dict[str, Any]:
        rng = self.rng
        self.message_id += 1
        chat_kind = chat_kind or rng.choice(("private", "private", "private", "group", "supergroup"))
        sender = user or self.user(rng.choice((STAFF, REGULATOR, *STRANGERS)))
        message: dict[str, Any] = {"message_id": self.message_id, "date": 1_700_000_000,
                                   "chat": self.chat(chat_kind, sender)}  # fmt: skip
        if chat_kind != "channel":
            message["from"] = sender
        if sender["id"] == STAFF and chat_kind == "private":
            # Bound staff: only commands (typed answers may be valid and stored: not for this test).
            body = self.command(staff=True)
        else:
            body = rng.choice((self.command(), self.command(), self.text()))
        roll = rng.random()
        if roll < 0.55:
            message["text"] = body
            if body.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(body.split(" ")[0])}]
        elif roll < 0.65:
            message["sticker"] = {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
                                  "is_animated": False, "is_video": False}  # fmt: skip
        elif roll < 0.75 and not (sender["id"] == STAFF and chat_kind == "private"):
            message["document"] = {"file_id": "d", "file_unique_id": "d", "file_name": self.text()[:80] or "x.pdf",
                                   "mime_type": rng.choice(("application/pdf", "image/png", "text/plain")),
                                   "file_size": rng.choice((1, 10**6, 10**9))}  # fmt: skip
            message["caption"] = self.text()[:1024]
        elif roll < 0.8:
            message["contact"] = {"phone_number": self.number(), "first_name": "C"}
        elif roll < 0.85:
            message["location"] = {"latitude": 39.9, "longitude": 116.4}
        else:
            message["text"] = body
        if rng.random() < 0.1 and chat_kind != "private":
            message.pop("from", None)
            message["sender_chat"] = rng.choice((self.chat("channel", sender), message["chat"]))
        return message

    def command(self, *, staff: bool = False) -> str:
        rng = self.rng
        names = ["start", "progress", "review", "pledge", "language", "help", "verify", "cancel"]
        if not staff:
            names += ["status", "overdue", "institution", "broadcast"]
        name = rng.choice(names)
        suffix = rng.choice(("", "", "@zicha_test_bot", "@other_bot"))
        arg = rng.choice(("", "", " " + self.token(), " " + self.text()[:100]))
        if staff and name in ("start", "verify", "language"):
            arg = ""  # /start CODE would rebind, /language would be a legitimate change
        return f"/{name}{suffix}{arg}"

    def member_update(self) -> dict[str, Any]:
        rng = self.rng
        user = self.user()
        chat_kind = rng.choice(("group", "supergroup", "channel"))
        statuses = ("member", "kicked", "left", "administrator", "restricted")
        def member(status: str) -> dict[str, Any]:
            base: dict[str, Any] = {"status": status, "user": {"id": 42, "is_bot": True, "first_name": "Zicha"}}
            if status == "kicked":
                base["until_date"] = 0
            return base
        return {"chat": self.chat(chat_kind, user), "from": user, "date": 1_700_000_000,
                "old_chat_member": member(rng.choice(statuses)), "new_chat_member": member(rng.choice(statuses))}  # fmt: skip

    def poll(self) -> dict[str, Any]:
        rng = self.rng
        poll: dict[str, Any] = {
            "id": self.number(), "question": self.text()[:300] or "?",
            "options": [{"text": "a", "voter_count": 0, "persistent_id": "1"}], "total_voter_count": 0,
            "is_closed": False, "is_anonymous": True, "type": "regular", "allows_multiple_answers": False,
            "allows_revoting": False, "members_only": False,
        }  # fmt: skip
        if rng.random() < 0.5:  # as an older local Bot API server sends it
            for key in rng.sample(["allows_revoting", "members_only"], rng.randint(1, 2)):
                poll.pop(key)
        return poll

    # --- updates
    def next(self) -> tuple[dict[str, Any], str]:
        rng = self.rng
        self.update_id += 1
        if self.update_id <= len(FORGED):
            user, data = FORGED[self.update_id - 1]
            shown = self.message("private", self.user(user)) | {"from": {"id": 42, "is_bot": True, "first_name": "Z"}}
            query = {"id": str(self.update_id), "from": self.user(user), "chat_instance": "1", "message": shown,
                     "data": data}  # fmt: skip
            return {"update_id": self.update_id, "callback_query": query}, "forged"
        kind = rng.choices(
            ("message", "edited_message", "channel_post", "edited_channel_post", "group", "callback_query",
             "inline_query", "chosen_inline_result", "poll", "poll_answer", "my_chat_member", "chat_member",
             "malformed", "poll_message"),
            weights=(20, 4, 4, 2, 10, 30, 4, 1, 3, 2, 4, 3, 5, 3),
        )[0]  # fmt: skip
        update: dict[str, Any] = {"update_id": self.update_id}
        if kind == "message":
            update["message"] = self.message("private")
        elif kind == "group":
            update["message"] = self.message(rng.choice(("group", "supergroup")))
        elif kind == "edited_message":
            update["edited_message"] = self.message() | {"edit_date": 1_700_000_100}
        elif kind in ("channel_post", "edited_channel_post"):
            update[kind] = self.message("channel")
        elif kind == "callback_query":
            user = self.user()
            shown = self.message(rng.choice(("private",) * 8 + ("supergroup",)), user)
            shown["from"] = {"id": 42, "is_bot": True, "first_name": "Zicha"}
            if rng.random() < 0.1:
                shown = {"chat": shown["chat"], "message_id": shown["message_id"], "date": 0}  # inaccessible
            query: dict[str, Any] = {"id": str(rng.getrandbits(63)), "from": user, "chat_instance": "1",
                                     "data": self.callback_data()}  # fmt: skip
            if rng.random() < 0.05:
                query["inline_message_id"] = "inline"
            else:
                query["message"] = shown
            update["callback_query"] = query
        elif kind == "inline_query":
            update["inline_query"] = {"id": "q", "from": self.user(), "query": self.text()[:256], "offset": ""}
        elif kind == "chosen_inline_result":
            update["chosen_inline_result"] = {"result_id": "r", "from": self.user(), "query": "q"}
        elif kind == "poll":
            update["poll"] = self.poll()
        elif kind == "poll_message":
            update["message"] = self.message("private", self.user(rng.choice(STRANGERS))) | {"poll": self.poll()}
        elif kind == "poll_answer":
            update["poll_answer"] = {"poll_id": "p", "user": self.user(), "option_ids": [rng.randint(-1, 3)]}
        elif kind in ("my_chat_member", "chat_member"):
            update[kind] = self.member_update()
        else:  # malformed: a known type with fields missing, of the wrong type, or an unknown type
            victim = self.message("private")
            for key in rng.sample(sorted(victim), rng.randint(1, 3)):
                victim[key] = rng.choice((None, "x", -1, [], {}, 10**30))
            update[rng.choice(("message", "callback_query", "brand_new_update_type"))] = victim
        return update, kind


@pytest.fixture
async def fuzz_app(tmp_path: Path, food_lab: Institution, db: sqlite_utils.Database) -> AsyncIterator[Any]:
    db_path = tmp_path / "zicha.db"
    settings = load_settings(_env_file=None, bot_token="42:FUZZ", zicha_db=db_path)
    bot_db = open_db(db_path)
    app = build_app(settings, bot_db, clock=lambda: CAMPAIGN_NOW)
    bind_member(bot_db, STAFF, create_invite(bot_db, food_lab.id, 5), "员工")
    add_regulator(bot_db, REGULATOR, Scope.parse("national"), "监管")
    session = RecordingSession()
    bot = Bot(token="42:FUZZ", session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    try:
        yield app, bot, session, bot_db
    finally:
        await bot.session.close()
        bot_db.close()


async def test_random_and_malformed_updates_change_nothing_and_crash_nothing(
    fuzz_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app, bot, session, bot_db = fuzz_app
    caplog.set_level(logging.WARNING)
    dp = app.dispatcher

    async def feed(update: dict[str, Any]) -> None:
        parsed = parse_update(update, bot)  # what polling and the webhook do with every update
        if parsed is not None:
            await dp.feed_update(bot, parsed)

    # The staff member has opened the self-check (what /start legitimately stores), then the fuzz.
    await feed({"update_id": 0, "message": {"message_id": 1, "date": 1, "text": "/start",
                                            "chat": {"id": STAFF, "type": "private"},
                                            "from": {"id": STAFF, "is_bot": False, "first_name": "员工"},
                                            "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}})  # fmt: skip
    staff_sc = bot_db.execute("SELECT id FROM selfchecks").fetchone()[0]
    before = protected(bot_db)
    fuzzer = Fuzzer(random.Random(SEED), staff_sc, [item.id for item in app.checklist.items])
    kinds: dict[str, int] = {}
    escaped: list[str] = []
    memory: list[int] = []
    for n in range(UPDATES):
        if n == TRACED:
            gc.collect()
            tracemalloc.start()
        if n in (MEASURED, UPDATES - 1):
            gc.collect()
            memory.append(tracemalloc.get_traced_memory()[0])
        update, kind = fuzzer.next()
        kinds[kind] = kinds.get(kind, 0) + 1
        try:
            await feed(update)
        except Exception as exc:  # noqa: BLE001 - counted and reported below
            escaped.append(f"update {update['update_id']} ({kind}): {type(exc).__name__}: {exc}"[:300])
    tracemalloc.stop()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not escaped, f"{len(escaped)} exception(s) escaped the dispatcher, e.g. {escaped[:5]}"
    assert not errors, f"{len(errors)} unhandled error(s), e.g. {[r.getMessage() for r in errors[:10]]}"
    after = protected(bot_db)
    changed = {table for table in PROTECTED if before[table] != after[table]}
    assert not changed, f"stored data changed in {sorted(changed)}"
    assert bot_db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(kinds) == 15 and min(kinds.values()) >= 50, kinds
    assert session.calls > 1_000, "the handlers did answer"
    grown = memory[1] - memory[0]
    assert grown < 1_000_000, f"memory grew by {grown} bytes over {UPDATES - 1 - MEASURED} updates"
