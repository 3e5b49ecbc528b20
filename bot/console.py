"""``zicha chat``: the real dispatcher and handlers, talking to a terminal instead of Telegram.

A ``BaseSession`` answers the bot's API calls locally (printing what would have been
sent), and every line typed becomes an ``Update`` fed to the dispatcher: a number
presses that button of the latest message, anything else is a text message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.enums import ParseMode
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendMessage,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import Update

from bot.telegram.app import App

CONSOLE_BOT_TOKEN = "100:CONSOLE"
CONSOLE_USER_ID = 1000
_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """Telegram HTML as terminal text."""
    return html.unescape(_TAG.sub("", text))


class ConsoleSession(BaseSession):
    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__()
        self.write = write
        self.next_message_id = 1
        self.messages: dict[int, dict[str, Any]] = {}
        self.buttons: list[tuple[str, str]] = []  # the latest message's buttons: (label, data)
        self.buttons_message_id = 0

    async def close(self) -> None:
        return None

    def _show(self, message: dict[str, Any], edited: bool) -> None:
        self.write("")
        self.write(("(updated) " if edited else "") + plain(message["text"]))
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        self.buttons = [(b["text"], b["callback_data"]) for row in rows for b in row if "callback_data" in b]
        self.buttons_message_id = message["message_id"]
        if self.buttons:
            self.write("  ".join(f"[{i}] {label}" for i, (label, _) in enumerate(self.buttons, 1)))

    def _message(self, chat_id: int, text: str, markup: Any) -> dict[str, Any]:
        return {
            "message_id": self.next_message_id,
            "date": int(dt.datetime.now().timestamp()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": 100, "is_bot": True, "first_name": "Zicha"},
            "text": plain(text),
            "reply_markup": json.loads(markup.model_dump_json(exclude_none=True)) if markup is not None else None,
        }

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        result: Any = True
        if isinstance(method, GetMe):
            result = {"id": 100, "is_bot": True, "first_name": "Zicha", "username": "zicha_console_bot"}
        elif isinstance(method, SendMessage):
            message = self._message(int(method.chat_id), method.text, method.reply_markup)
            self.next_message_id += 1
            self.messages[message["message_id"]] = message | {"text": method.text}
            self._show(message | {"text": method.text}, edited=False)
            result = {k: v for k, v in message.items() if v is not None}
        elif isinstance(method, (EditMessageText, EditMessageReplyMarkup)):
            stored = self.messages.get(int(method.message_id or 0))
            if stored is None:
                return self.check_response(
                    bot, method, 400, json.dumps({"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"})
                ).result  # pragma: no cover - raises
            if isinstance(method, EditMessageText):
                stored["text"] = method.text
            stored["reply_markup"] = (
                json.loads(method.reply_markup.model_dump_json(exclude_none=True)) if method.reply_markup else None
            )
            self._show(stored, edited=True)
            result = {k: v for k, v in (stored | {"text": plain(stored["text"])}).items() if v is not None}
        elif isinstance(method, AnswerCallbackQuery):
            if method.text:
                self.write(f"  ({method.text})")
        response = self.check_response(bot, method, 200, json.dumps({"ok": True, "result": result}, default=str))
        return response.result  # type: ignore[return-value]

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:  # pragma: no cover
        raise RuntimeError("the console chat cannot download files")
        yield b""


class ConsoleChat:
    """Turns typed lines into updates for the dispatcher."""

    def __init__(self, app: App, write: Callable[[str], None], user_id: int = CONSOLE_USER_ID) -> None:
        self.app = app
        self.user_id = user_id
        self.session = ConsoleSession(write)
        self.bot = Bot(
            token=CONSOLE_BOT_TOKEN,
            session=self.session,
            default=DefaultBotProperties(parse_mode=ParseMode.HTML),
        )
        self.update_id = 0
        self.write = write

    def _user(self) -> dict[str, Any]:
        lang = "zh-hans" if self.app.settings.zicha_locale == "zh_CN" else "en"
        return {"id": self.user_id, "is_bot": False, "first_name": "Console", "language_code": lang}

    async def send(self, line: str) -> None:
        self.update_id += 1
        line = line.strip()
        now = int(dt.datetime.now().timestamp())
        # A number presses that button; any other line (a phone number, say) is text.
        if line.isdigit() and 1 <= int(line) <= len(self.session.buttons):
            _, data = self.session.buttons[int(line) - 1]
            latest = self.session.buttons_message_id
            payload: dict[str, Any] = {
                "update_id": self.update_id,
                "callback_query": {
                    "id": str(self.update_id),
                    "from": self._user(),
                    "chat_instance": "console",
                    "data": data,
                    "message": {k: v for k, v in (self.session.messages[latest] | {"text": plain(self.session.messages[latest]["text"])}).items() if v is not None},
                },
            }
        else:
            payload = {
                "update_id": self.update_id,
                "message": {
                    "message_id": self.session.next_message_id,
                    "date": now,
                    "chat": {"id": self.user_id, "type": "private"},
                    "from": self._user(),
                    "text": line,
                },
            }
            self.session.next_message_id += 1
        update = Update.model_validate(payload, context={"bot": self.bot})
        await self.app.dispatcher.feed_update(self.bot, update)

    async def run(self, read: Callable[[], str]) -> None:
        """Read lines until end of input or "q"."""
        self.write("Zicha console chat. Type a number to press a button, text to reply, /help for help, q to quit.")
        await self.send("/start")
        while True:
            try:
                line = await asyncio.to_thread(read)
            except EOFError:
                break
            if line.strip().lower() in {"q", "quit", "exit"}:
                break
            await self.send(line)
        self.write("Bye. Your answers are saved; run the same command to continue.")
