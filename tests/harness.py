"""Running the real bot, unmodified, in long-polling mode against the Telegram stand-in.

``running_bot`` starts Zicha's own dispatcher in this process; ``BotProcess`` starts
``zicha run`` as a separate process (for kill-and-restart tests). ``Chat`` plays one
Telegram user and waits on real signals, never on sleeps: a button press is done when
its callback query is answered (Zicha answers after the handler has finished), a typed
message when the next screen with buttons arrives.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.config import load_settings
from bot.ops.lifecycle import enable_storage_retry
from bot.telegram.app import App, build_app, build_bot
from bot.webhook import run_webhook
from storage.db import open_db
from storage.institutions import create_invite
from tests.standin import BotMessage, CallbackAnswer, TelegramStandin

# Tests drive the bot far faster than any person types or taps: the per-user flood limit
# (ZICHA_USER_RATE/ZICHA_USER_BURST) is raised here, and tested at its defaults in tests/test_ratelimit.py.
TEST_USER_LIMITS = {"zicha_user_rate": 10_000.0, "zicha_user_burst": 10_000}
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
CAMPAIGN_NOW = dt.datetime(2023, 10, 9, 9, 0, tzinfo=SHANGHAI)


@asynccontextmanager
async def running_bot(
    tg: TelegramStandin,
    db_path: Path,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    locale: str = "zh_CN",
    **overrides: object,
) -> AsyncIterator[App]:
    """``overrides``: settings, e.g. ``zicha_user_rate=2`` (default: ``TEST_USER_LIMITS``)."""
    settings = load_settings(
        _env_file=None, bot_token=tg.token, telegram_api_url=tg.base_url, zicha_db=db_path, zicha_locale=locale,
        **(TEST_USER_LIMITS | overrides),
    )  # fmt: skip
    db = open_db(db_path)
    app = build_app(settings, db, clock=clock or (lambda: CAMPAIGN_NOW))
    bot = build_bot(settings)
    enable_storage_retry(app.dispatcher)  # as run_polling does
    task = asyncio.create_task(
        app.dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=1)
    )
    try:
        await tg.wait_polling()
        yield app
    finally:
        await app.dispatcher.stop_polling()
        await task
        await bot.session.close()
        db.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Hook:
    app: App
    url: str
    base: str
    stop: asyncio.Event
    """Set it to stop the server as SIGTERM does; then ``await hook.task``."""
    task: asyncio.Task[None]


@asynccontextmanager
async def webhook_bot(tg: TelegramStandin, db_path: Path, **settings: Any) -> AsyncIterator[Hook]:
    """Zicha's webhook server (``zicha run --webhook``) in this process, ready for updates."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/tg/hook"
    config = load_settings(
        _env_file=None, bot_token=tg.token, telegram_api_url=tg.base_url, zicha_db=db_path,
        zicha_webhook_url=url, zicha_webhook_port=port, **settings,
    )  # fmt: skip
    db = open_db(db_path)
    app = build_app(config, db, clock=lambda: CAMPAIGN_NOW)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_webhook(app, stop=stop, on_ready=ready.set))
    try:
        done, _ = await asyncio.wait([task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises what stopped it
        yield Hook(app, url, f"http://127.0.0.1:{port}", stop, task)
    finally:
        stop.set()
        await task
        db.close()


class BotProcess:
    """``zicha run`` in a child process, configured for the stand-in."""

    def __init__(self, tg: TelegramStandin, db_path: Path) -> None:
        self.env = os.environ | {
            "BOT_TOKEN": tg.token,
            "TELEGRAM_API_URL": tg.base_url,
            "ZICHA_DB": str(db_path),
            "ZICHA_LOCALE": "zh_CN",
            **{key.upper(): str(value) for key, value in TEST_USER_LIMITS.items()},
        }
        self.cwd = db_path.parent
        self.log_path = db_path.parent / "bot.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.command = ["run"]
        """The zicha command line, e.g. ["run", "--webhook"] (with ZICHA_WEBHOOK_* in ``env``)."""

    def use_webhook(self, port: int) -> None:
        """Run as ``zicha run --webhook`` on ``port`` of 127.0.0.1."""
        self.command = ["run", "--webhook"]
        self.env |= {"ZICHA_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook", "ZICHA_WEBHOOK_PORT": str(port)}

    def start(self) -> None:
        # Output goes to a file shared by every start, so a killed process leaves no open pipe.
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", *self.command], env=self.env, cwd=self.cwd, stdout=log, stderr=log
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def sigterm(self) -> None:
        """Send SIGTERM, what systemd and Docker send to stop a service."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def exited(self, timeout: float = 30) -> int:
        """Wait for the process to exit, keeping the event loop (and so the stand-in) running."""
        assert self.process is not None
        return await asyncio.to_thread(self.process.wait, timeout)

    def log(self) -> str:
        """Everything the process logged so far, across its starts."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self) -> str:
        """Stop gracefully; returns everything the process logged across its starts."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


@dataclass
class Chat:
    """One Telegram user talking to the bot through the stand-in."""

    tg: TelegramStandin
    user_id: int
    first_name: str = "测试"
    language_code: str = "zh-hans"

    def __post_init__(self) -> None:
        self.tg.add_user(self.user_id, first_name=self.first_name, language_code=self.language_code)

    async def say(self, text: str, *, screen: bool = True) -> BotMessage:
        """Send a message; return the screen (a message with buttons) the bot ends on, or
        with ``screen=False`` the first reply."""
        mark = self.tg.mark()
        self.tg.send_text(self.user_id, text, first_name=self.first_name, language_code=self.language_code)
        return await (self.next_screen(mark) if screen else self.tg.wait_reply(self.user_id, after=mark))

    async def join_and_give_contact(self, code: str, name: str = "王五", phone: str = "13812345678") -> BotMessage:
        """Join with an invite code, confirm the institution and its details and type the
        self-check contact's name and phone: the screen of the next item."""
        await self.say(f"/start {code}")
        await self.press("是，这是我的机构")
        await self.press("是，信息无误")
        await self.say(name)
        return await self.say(phone)

    async def send(self, kind: str, *, screen: bool = True, **kwargs: object) -> BotMessage:
        """Send a sticker, photo or document (``kind``); wait as ``say`` does."""
        mark = self.tg.mark()
        getattr(self.tg, f"send_{kind}")(self.user_id, **kwargs)
        return await (self.next_screen(mark) if screen else self.tg.wait_reply(self.user_id, after=mark))

    async def next_screen(self, mark: int) -> BotMessage:
        def latest() -> BotMessage | None:
            for call in reversed(self.tg.calls(after=mark, chat_id=self.user_id)):
                if call.ok and call.message is not None and call.message.buttons:
                    return call.message
            return None

        await self.tg.wait_until(latest, what=f"a screen with buttons in chat {self.user_id}")
        # The screen may be followed by nothing else: the handler's last act was sending it.
        found = latest()
        assert found is not None
        return found

    def screen_after(self, mark: int, message_id: int) -> BotMessage:
        """What a press produced: the last message sent or edited with buttons since ``mark``,
        else the pressed message as it now stands."""
        for call in reversed(self.tg.calls(after=mark, chat_id=self.user_id)):
            if call.ok and call.message is not None and call.message.buttons:
                return self.tg.message(self.user_id, call.message.message_id)
        return self.tg.message(self.user_id, message_id)

    def replies_since(self, mark: int) -> list[str]:
        return [c.message.text for c in self.tg.calls(after=mark, chat_id=self.user_id) if c.ok and c.message]

    async def press(self, text: str, message: BotMessage | None = None) -> tuple[CallbackAnswer, BotMessage]:
        """Press the button labelled ``text`` (on ``message``, else the latest message that
        has it); return the callback's answer and the message as it now stands."""
        target = message or self.latest_with_button(text)
        mark = self.tg.mark()
        query = self.tg.press(self.user_id, target, text=text)
        answer = await self.tg.wait_answered(query)
        return answer, self.screen_after(mark, target.message_id)

    async def press_data(self, data: str, message: BotMessage | None = None) -> CallbackAnswer:
        target = message or self.tg.last_message(self.user_id)
        query = self.tg.press_data(self.user_id, target.message_id, data)
        return await self.tg.wait_answered(query)

    def latest_with_button(self, text: str) -> BotMessage:
        for message in reversed(self.tg.messages(self.user_id)):
            if not message.deleted and text in message.button_texts:
                return message
        raise AssertionError(f"no message with a {text!r} button in chat {self.user_id}:\n{self.tg.dump()}")

    def current(self) -> BotMessage:
        """The latest message that carries buttons (the live screen)."""
        for message in reversed(self.tg.messages(self.user_id)):
            if not message.deleted and message.buttons:
                return message
        return self.tg.last_message(self.user_id)


def invite(db_path: Path, institution_id: int, max_uses: int = 5) -> str:
    db = open_db(db_path)
    try:
        return create_invite(db, institution_id, max_uses)
    finally:
        db.close()


def read_db(db_path: Path) -> sqlite_utils.Database:
    return sqlite_utils.Database(db_path)
