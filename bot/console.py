"""``zicha chat``: the real dispatcher and handlers, talking to a terminal instead of Telegram.

A ``BaseSession`` answers the bot's API calls locally (printing what would have been
sent, and saving every document or photo the bot sends into a folder), and every line
typed becomes an ``Update`` fed to the dispatcher: a key shown next to a button of the
latest message presses it, anything else is a text message.

Buttons get keys that do not move: the answers of a screen are numbered 1, 2, 3 …, and
navigation always has the same letter (``p`` previous, ``n`` skip / continue, ``c``
contents, ``r`` review …), whether or not the item offers 不适用.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
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
    SendDocument,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile, Update
from aiogram.utils.i18n import gettext as _

from bot.i18n import normalize_locale
from bot.telegram.app import App
from bot.telegram.callbacks import NavAction, NavCb
from storage.institutions import get_user_language

CONSOLE_BOT_TOKEN = "100:CONSOLE"
CONSOLE_USER_ID = 1000
DEFAULT_FILES_DIR = Path("zicha-files")
_TAG = re.compile(r"<[^>]+>")

# Fixed keys for navigation buttons; every other button is numbered 1, 2, 3 … in order.
NAV_KEYS = {
    NavAction.PREV: "p",
    NavAction.SKIP: "n",
    NavAction.CONTINUE: "n",
    NavAction.GUIDE: "g",
    NavAction.TOC: "c",
    NavAction.REVIEW: "r",
    NavAction.SUMMARY: "s",
    NavAction.KEEP: "k",
}
PAGE_KEYS = {"◀": "<", "▶": ">"}  # the review list's page buttons
BACK_KEY = "b"  # "↩ Back to the question" on a follow-up


def button_key(label: str, data: str) -> str | None:
    """The fixed key of a navigation button, or None for a button that is numbered."""
    if not data.startswith(NavCb.__prefix__ + ":"):
        return None
    try:
        action = NavCb.unpack(data).action
    except (ValueError, TypeError):
        return None
    if action is NavAction.REVIEW and label in PAGE_KEYS:
        return PAGE_KEYS[label]
    if action is NavAction.OPEN:
        return BACK_KEY if label.startswith("↩") else None
    return NAV_KEYS.get(action)


def assign_keys(buttons: list[tuple[str, str]]) -> list[str]:
    """One key per button, in order: fixed letters for navigation, numbers for the rest."""
    keys: list[str] = []
    number = 0
    for label, data in buttons:
        key = button_key(label, data)
        if key is None or key in keys:
            number += 1
            key = str(number)
        keys.append(key)
    return keys


def shown_path(path: Path) -> str:
    """A path as the user typed it would be: ./zicha-files/x.pdf for a relative one."""
    text = path.as_posix()
    return text if path.is_absolute() or text.startswith(".") else "./" + text


def plain(text: str) -> str:
    """Telegram HTML as terminal text."""
    return html.unescape(_TAG.sub("", text))


class ConsoleSession(BaseSession):
    def __init__(
        self,
        write: Callable[[str], None],
        files_dir: Path = DEFAULT_FILES_DIR,
        speaking: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        super().__init__()
        self.write = write
        self.files_dir = files_dir
        self.speaking = speaking  # the user's language for the console's own lines
        self.next_message_id = 1
        self.messages: dict[int, dict[str, Any]] = {}
        self.buttons: list[tuple[str, str]] = []  # the latest message's buttons: (label, data)
        self.keys: dict[str, str] = {}  # key typed -> callback data, for the latest message
        self.buttons_message_id = 0
        self.saved: list[Path] = []  # every file saved, in order

    async def close(self) -> None:
        return None

    def _show(self, message: dict[str, Any], edited: bool) -> None:
        self.write("")
        with self.speaking():
            prefix = _("(updated)") + " " if edited else ""
        self.write(prefix + plain(message.get("text") or message.get("caption") or ""))
        self._take_buttons(message)

    def _take_buttons(self, message: dict[str, Any]) -> None:
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        buttons = [(b["text"], b["callback_data"]) for row in rows for b in row if "callback_data" in b]
        if not buttons and message.get("text") is None:
            return  # a file without buttons leaves the screen's buttons as they were
        self.buttons = buttons
        keys = assign_keys(buttons)
        self.keys = {key: data for key, (_label, data) in zip(keys, buttons, strict=True)}
        self.buttons_message_id = message["message_id"]
        if buttons:
            self.write("  ".join(f"[{key}] {label}" for key, (label, _data) in zip(keys, buttons, strict=True)))

    def press(self, line: str) -> str | None:
        """The callback data of the button whose key is ``line``, if any."""
        key = line.strip()
        return self.keys.get(key) or self.keys.get(key.lower())

    async def _save_file(self, bot: Bot, file: InputFile | str, fallback_name: str) -> tuple[Path, int]:
        """Write a file the bot sends into ``files_dir``; a different file of the same name
        is kept (the new one gets -2, -3 …), the same content is not written twice."""
        if not isinstance(file, InputFile):
            raise OSError(f"a file already on Telegram ({file}) cannot be fetched here")
        content = b"".join([chunk async for chunk in file.read(bot)])
        name = Path(file.filename or fallback_name).name or fallback_name
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / name
        n = 1
        while path.exists() and path.read_bytes() != content:
            n += 1
            path = self.files_dir / f"{Path(name).stem}-{n}{Path(name).suffix}"
        if not path.exists():
            path.write_bytes(content)
        self.saved.append(path)
        return path, len(content)

    async def _send_file(self, bot: Bot, method: SendDocument | SendPhoto) -> dict[str, Any] | None:
        is_photo = isinstance(method, SendPhoto)
        file = method.photo if isinstance(method, SendPhoto) else method.document
        message_id = self.next_message_id
        fallback = f"photo-{message_id}.jpg" if is_photo else f"file-{message_id}"
        try:
            path, size = await self._save_file(bot, file, fallback)  # type: ignore[arg-type]
        except OSError as exc:
            with self.speaking():
                self.write(_("Could not save a file the bot sent into {folder}: {reason}").format(
                    folder=shown_path(self.files_dir), reason=exc.strerror or exc
                ))  # fmt: skip
            return None
        self.next_message_id += 1
        message = self._message(int(method.chat_id), "", method.reply_markup)
        message.pop("text")
        message["message_id"] = message_id
        unique = f"console-{message_id}"
        if is_photo:
            message["photo"] = [{"file_id": unique, "file_unique_id": unique, "width": 1, "height": 1, "file_size": size}]
        else:
            message["document"] = {"file_id": unique, "file_unique_id": unique, "file_name": path.name, "file_size": size}
        if method.caption:
            message["caption"] = plain(method.caption)
        self.messages[message_id] = message
        self.write("")
        if method.caption:
            self.write(plain(method.caption))
        with self.speaking():
            self.write(_("File saved: {path}").format(path=shown_path(path)))
        self._take_buttons(message)
        return {k: v for k, v in message.items() if v is not None}

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
        elif isinstance(method, (SendDocument, SendPhoto)):
            sent = await self._send_file(bot, method)
            if sent is None:
                failure = {"ok": False, "error_code": 400, "description": "Bad Request: the file could not be saved"}
                return self.check_response(bot, method, 400, json.dumps(failure)).result  # pragma: no cover - raises
            result = sent
        elif isinstance(method, AnswerCallbackQuery) and method.text:
            self.write(f"  ({method.text})")
        response = self.check_response(bot, method, 200, json.dumps({"ok": True, "result": result}, default=str))
        return response.result  # type: ignore[return-value]

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:  # pragma: no cover
        raise RuntimeError("the console chat cannot download files")
        yield b""


class ConsoleChat:
    """Turns typed lines into updates for the dispatcher."""

    def __init__(
        self, app: App, write: Callable[[str], None], user_id: int = CONSOLE_USER_ID, files_dir: Path = DEFAULT_FILES_DIR
    ) -> None:
        self.app = app
        self.user_id = user_id
        self.session = ConsoleSession(write, files_dir, self.speaking)
        self.bot = Bot(
            token=CONSOLE_BOT_TOKEN,
            session=self.session,
            default=DefaultBotProperties(parse_mode=ParseMode.HTML),
        )
        self.update_id = 0
        self.write = write

    def locale(self) -> str:
        """The language the console user chose with /language, else the deployment's."""
        default = self.app.settings.zicha_locale
        return normalize_locale(get_user_language(self.app.db, self.user_id), default)

    @contextlib.contextmanager
    def speaking(self) -> Iterator[None]:
        """Translate the console's own lines (``_()``) into the user's language."""
        with self.app.i18n.context(), self.app.i18n.use_locale(self.locale()):
            yield

    def _user(self) -> dict[str, Any]:
        lang = "zh-hans" if self.app.settings.zicha_locale == "zh_CN" else "en"
        return {"id": self.user_id, "is_bot": False, "first_name": "Console", "language_code": lang}

    async def send(self, line: str) -> None:
        self.update_id += 1
        line = line.strip()
        now = int(dt.datetime.now().timestamp())
        # A button's key presses it; any other line (a phone number, say) is text.
        data = self.session.press(line)
        if data is not None:
            latest = self.session.messages[self.session.buttons_message_id]
            shown = latest | ({"text": plain(latest["text"])} if latest.get("text") is not None else {})
            payload: dict[str, Any] = {
                "update_id": self.update_id,
                "callback_query": {
                    "id": str(self.update_id),
                    "from": self._user(),
                    "chat_instance": "console",
                    "data": data,
                    "message": {k: v for k, v in shown.items() if v is not None},
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
        try:
            await self.app.dispatcher.feed_update(self.bot, update)
        except Exception as exc:  # noqa: BLE001 - the bot's error handler answers; this is the last resort
            with self.speaking():
                self.write(_("Sorry, that could not be done ({error}). Your saved answers are safe.").format(error=type(exc).__name__))

    def prepare(self) -> None:
        """What ``zicha run`` does at start that the console needs: the signing key."""
        from bot.pledge.signing import SigningError, SigningSettings, ensure_default_keys, identity

        settings = self.app.settings
        try:
            ident = identity(SigningSettings(zicha_db=settings.zicha_db), db_path=settings.zicha_db)
            created = ensure_default_keys(ident)
        except SigningError:
            return  # signing says what is wrong when it is tried
        if created:
            with self.speaking():
                self.write(_("Created a self-signed key for signing pledges: {key} (certificate {cert}).").format(
                    key=ident.key, cert=ident.cert
                ))  # fmt: skip

    async def run(self, read: Callable[[], str]) -> None:
        """Read lines until end of input or "q"."""
        with quiet_logs():
            self.prepare()
            with self.speaking():
                self.write(_(
                    "Zicha console chat. Type the number or letter in [ ] to press a button, text to reply, "
                    "/help for help, q to quit. Files the bot sends are saved in {folder}."
                ).format(folder=shown_path(self.session.files_dir)))  # fmt: skip
            await self.send("/start")
            while True:
                try:
                    line = await asyncio.to_thread(read)
                except EOFError:
                    break
                if line.strip().lower() in {"q", "quit", "exit"}:
                    break
                await self.send(line)
            with self.speaking():
                self.write(_("Bye. Your answers are saved; run the same command to continue."))


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """The console is a conversation, not a server: log records (English, for operators,
    some with tracebacks) are not printed between the messages. What the user must know
    reaches them as messages, in their language."""
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)  # with a handler in place, logging's last resort stays silent
    try:
        yield
    finally:
        root.removeHandler(handler)
