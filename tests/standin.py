"""A local stand-in of the Telegram Bot API, for end-to-end tests and benchmarks.

Zicha's tests run the real bot, unmodified, in long-polling mode against this server on 127.0.0.1::

    async with TelegramStandin() as tg:
        session = AiohttpSession(api=tg.api_server)
        ...start the bot with `session`, then:
        n = tg.mark()
        tg.send_text(1001, "/start")
        reply = await tg.wait_reply(1001, after=n)

Why a server rather than a mocked session: the bot's own aiogram session, form encoding, error classes and
polling loop are exercised exactly as in production, and the stand-in answers the way Telegram does in the places
bots commonly get wrong (malformed HTML, over-long texts and callback data, "message is not modified", answering a
callback twice, users who blocked the bot, flood waits). Error descriptions use Telegram's own wording so that code
matching on them is tested for real.

The HTML parser follows tdlib's ``parse_html`` (the code behind the Bot API server). Two checks are deliberately
*stricter* than Telegram and can be switched off with ``TelegramStandin(strict=False)``:

* an unsupported named entity such as ``&nbsp;`` is rejected; Telegram accepts it but shows ``&nbsp;`` verbatim to
  the user, which is a bug in the bot all the same;
* an inline button with more than one action field is rejected; Telegram silently uses one of them.

Both rejections say "stand-in strictness" in their description so that nobody searches Telegram's docs for them.

Only stdlib, aiohttp and aiogram are imported, so ``bench/`` scripts can use this module as well.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import mimetypes
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message
from aiohttp import web
from aiohttp.web_request import FileField

__all__ = [
    "ApiCall",
    "ApiError",
    "BotMessage",
    "CallbackAnswer",
    "CallbackQueryRecord",
    "EntityParseError",
    "Fault",
    "RateLimitEnforcer",
    "SlidingWindowEnforcer",
    "Hold",
    "StoredFile",
    "TelegramStandin",
    "UploadedFile",
    "parse_html",
    "utf16_len",
]

T = TypeVar("T")

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_INLINE_BUTTONS = 100
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
"""Bots may upload up to 50 MB but only download (getFile) up to 20 MB."""

WEBHOOK_ACTIVE_DESCRIPTION = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
CONFLICT_DESCRIPTION = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
NOT_MODIFIED_DESCRIPTION = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as "
    "a current content and reply markup of the message"
)
QUERY_INVALID_DESCRIPTION = "Bad Request: query is too old and response timeout expired or query ID is invalid"
BLOCKED_DESCRIPTION = "Forbidden: bot was blocked by the user"

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: BLOCKED_DESCRIPTION,
    404: "Not Found",
    409: CONFLICT_DESCRIPTION,
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

# Update types Telegram does not deliver unless asked for explicitly in allowed_updates.
_OPT_IN_UPDATE_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

# How form fields are typed on the wire: aiogram JSON-encodes ints, bools and objects, and sends strings raw,
# so the stand-in must know which fields to decode (a text of "123" must stay a string).
_SCALAR_FIELDS = frozenset(
    {
        "chat_id", "message_id", "offset", "limit", "timeout", "cache_time", "message_thread_id",
        "reply_to_message_id", "user_id", "from_chat_id", "duration", "width", "height", "show_alert",
        "disable_notification", "protect_content", "drop_pending_updates", "disable_web_page_preview",
        "disable_content_type_detection", "has_spoiler", "show_caption_above_media", "allow_sending_without_reply",
        "allow_paid_broadcast",
    }
)  # fmt: skip
_JSON_FIELDS = frozenset(
    {
        "reply_markup", "entities", "caption_entities", "commands", "scope", "menu_button", "allowed_updates",
        "link_preview_options", "reply_parameters", "message_ids",
    }
)  # fmt: skip
_BUTTON_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat", "copy_text", "callback_game", "pay",
)  # fmt: skip
_URL_SCHEMES = ("http://", "https://", "tg://", "ton://")
_SEND_METHODS = frozenset({"sendMessage", "sendDocument", "sendPhoto"})
_MESSAGE_METHODS = _SEND_METHODS | {"editMessageText", "editMessageReplyMarkup", "editMessageCaption"}


# --------------------------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error reply of the Bot API; raised inside method handlers and by faults to produce a JSON error."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error (``parameters`` only for flood waits)."""
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass
class UploadedFile:
    """A file part of a multipart request, as the bot uploaded it."""

    field: str
    filename: str
    content_type: str
    content: bytes


@dataclass
class StoredFile:
    """A file the stand-in can serve through getFile and the file download route.

    ``origin`` is "user" for files the test sent to the bot and "bot" for files the bot uploaded.
    """

    file_id: str
    file_unique_id: str
    content: bytes
    file_name: str | None
    mime_type: str | None
    file_path: str
    origin: str
    url: str | None = None

    @property
    def file_size(self) -> int:
        """Size in bytes, as Telegram reports it."""
        return len(self.content)


@dataclass
class BotMessage:
    """A message the bot sent to a chat, kept up to date by edits and deletions.

    ``text`` is what the user sees (tags stripped, entities decoded, trimmed like Telegram does); ``html`` is the raw
    text as the bot sent it (whatever its parse_mode). For documents and photos both hold the caption.
    """

    chat_id: int
    message_id: int
    kind: str
    text: str
    html: str
    parse_mode: str | None
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    date: int
    file: StoredFile | None = None
    edited: int = 0
    edit_date: int | None = None
    deleted: bool = False

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Inline keyboard rows as (text, callback_data); url and other buttons have ``None`` as data."""
        if not self.reply_markup or "inline_keyboard" not in self.reply_markup:
            return []
        return [
            [(button.get("text", ""), button.get("callback_data")) for button in row]
            for row in self.reply_markup["inline_keyboard"]
        ]

    @property
    def button_texts(self) -> list[str]:
        """All inline button texts, row by row, for quick membership assertions."""
        return [text for row in self.buttons for text, _ in row]

    def snapshot(self) -> BotMessage:
        """A copy frozen at this moment, so later edits do not change what a test already received."""
        return replace(self, entities=copy.deepcopy(self.entities), reply_markup=copy.deepcopy(self.reply_markup))


@dataclass
class ApiCall:
    """One request the bot made, with the reply it got; ``time`` and ``started`` are seconds since start()."""

    index: int
    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    status: int
    response: dict[str, Any]
    started: float
    time: float
    message: BotMessage | None = None
    """For successful send/edit calls: the message right after this call."""

    @property
    def ok(self) -> bool:
        """Whether Telegram would have reported success."""
        return bool(self.response.get("ok"))

    @property
    def result(self) -> Any:
        """The ``result`` of a successful call."""
        return self.response.get("result")

    @property
    def description(self) -> str | None:
        """The error description of a failed call."""
        return self.response.get("description")

    @property
    def chat_id(self) -> int | str | None:
        """The target chat, when the method has one."""
        return self.params.get("chat_id")

    def summary(self) -> str:
        """One line for failure dumps."""
        shown = []
        for key, value in self.params.items():
            if key == "reply_markup" and isinstance(value, dict) and "inline_keyboard" in value:
                rendered = f"<{sum(len(row) for row in value['inline_keyboard'])} inline buttons>"
            else:
                rendered = repr(value)
                if len(rendered) > 70:
                    rendered = rendered[:67] + "..."
            shown.append(f"{key}={rendered}")
        shown.extend(f"{key}=<file {file.filename!r} {len(file.content)} B>" for key, file in self.files.items())
        outcome = "ok" if self.ok else f"{self.status} {self.description}"
        return f"#{self.index} +{self.time:.3f}s {self.method}({', '.join(shown)}) -> {outcome}"


@dataclass
class CallbackAnswer:
    """How the bot answered a callback query."""

    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    call_index: int


@dataclass
class CallbackQueryRecord:
    """A button press the test made, and the bot's answer once it arrives."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    update_id: int
    answer: CallbackAnswer | None = None


@dataclass
class Fault:
    """An injected error: the next ``times`` calls of ``method`` (to ``chat_id`` if given) fail.

    ``method`` "*" matches every method except getUpdates. Kept as a small object with ``__call__`` so that later
    rate-limit simulations can be plugged in through ``TelegramStandin.add_interceptor`` the same way.
    """

    method: str
    status: int
    description: str
    retry_after: int | None = None
    chat_id: int | None = None
    times: int = 1
    hits: int = 0

    @property
    def remaining(self) -> int:
        """How many more calls this fault will fail."""
        return self.times - self.hits

    def __call__(self, method: str, params: dict[str, Any]) -> ApiError | None:
        if self.remaining <= 0:
            return None
        if self.method == "*":
            if method == "getUpdates":
                return None
        elif self.method.lower() != method.lower():
            return None
        if self.chat_id is not None and params.get("chat_id") != self.chat_id:
            return None
        self.hits += 1
        return ApiError(self.status, self.description, retry_after=self.retry_after)


@dataclass
class DownloadFault:
    """The next ``times`` downloads from the file endpoint fail: with HTTP ``status`` (a
    plain-text body, as a proxy in front of Telegram sends), or, with ``disconnect``, by
    closing the connection halfway through the body (a network error)."""

    times: int
    status: int = 502
    disconnect: bool = False
    hits: int = 0

    @property
    def remaining(self) -> int:
        return self.times - self.hits


class Hold:
    """A call held open by the stand-in: see ``TelegramStandin.hold``."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.claimed = False
        self._arrived = asyncio.Event()
        self._released = asyncio.Event()

    def claim(self, method: str) -> bool:
        if self.claimed or self.method.lower() != method.lower():
            return False
        self.claimed = True
        self._arrived.set()
        return True

    async def wait_arrived(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._arrived.wait(), timeout)

    async def wait_released(self) -> None:
        await self._released.wait()

    def release(self) -> None:
        self._released.set()


@dataclass
class RateLimitEnforcer:
    """Opt-in (``TelegramStandin.enforce_rate_limits``): answer 429 with ``retry_after`` as Telegram does when
    messages exceed a global rate or a per-chat rate.

    Each limit is a token bucket: ``global_rate`` messages per second with room for a burst of ``global_burst``, and
    ``chat_rate`` per chat with a burst of ``chat_burst``. A rejected call consumes nothing. ``retry_after`` is the
    whole number of seconds (at least 1) until the bucket that said no has a token again. Only sending methods count
    (``methods``); ``accepted`` and ``rejected`` count what the enforcer decided.
    """

    global_rate: float = 30.0
    global_burst: float = 30.0
    chat_rate: float = 1.0
    chat_burst: float = 3.0
    methods: frozenset[str] = frozenset({"sendMessage", "sendDocument", "sendPhoto", "copyMessage", "forwardMessage"})
    accepted: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        self._global = (self.global_burst, time.monotonic())
        self._chats: dict[Any, tuple[float, float]] = {}

    @staticmethod
    def _refill(bucket: tuple[float, float], rate: float, burst: float, now: float) -> float:
        tokens, at = bucket
        return min(burst, tokens + (now - at) * rate)

    def __call__(self, method: str, params: dict[str, Any]) -> ApiError | None:
        if method not in self.methods:
            return None
        now = time.monotonic()
        chat = params.get("chat_id")
        global_tokens = self._refill(self._global, self.global_rate, self.global_burst, now)
        chat_tokens = self._refill(self._chats.get(chat, (self.chat_burst, now)), self.chat_rate, self.chat_burst, now)
        wait = 0.0
        if global_tokens < 1:
            wait = max(wait, (1 - global_tokens) / self.global_rate)
        if chat_tokens < 1:
            wait = max(wait, (1 - chat_tokens) / self.chat_rate)
        if wait > 0:
            self.rejected += 1
            self._global = (global_tokens, now)
            self._chats[chat] = (chat_tokens, now)
            retry_after = max(1, math.ceil(wait))
            return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
        self.accepted += 1
        self._global = (global_tokens - 1, now)
        self._chats[chat] = (chat_tokens - 1, now)
        return None


@dataclass
class SlidingWindowEnforcer:
    """Opt-in (``TelegramStandin.enforce_sliding_window``): the strictest reading of Telegram's limits. A send is
    refused with 429 if, counting it, any window of ``window`` seconds would hold more than ``global_limit`` sends,
    or any window of ``chat_window`` seconds more than ``chat_limit`` sends to its chat. Unlike a token bucket there
    is no credit for a quiet moment before: 31 messages within 0.999 s are one too many, however they are spread.

    A rejected call consumes nothing; ``retry_after`` is the whole number of seconds (at least 1) until the oldest
    send of the full window leaves it. ``accepted``/``rejected`` count the decisions; ``clock`` is for unit tests.
    """

    global_limit: int = 30
    window: float = 1.0
    chat_limit: int = 1
    chat_window: float = 1.0
    methods: frozenset[str] = frozenset({"sendMessage", "sendDocument", "sendPhoto", "copyMessage", "forwardMessage"})
    clock: Callable[[], float] = time.monotonic
    accepted: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        self._sends: deque[float] = deque()
        self._chats: dict[Any, deque[float]] = {}

    @staticmethod
    def _expire(log: deque[float], now: float, window: float) -> None:
        while log and log[0] <= now - window:
            log.popleft()

    def __call__(self, method: str, params: dict[str, Any]) -> ApiError | None:
        if method not in self.methods:
            return None
        now = self.clock()
        chat = params.get("chat_id")
        chat_log = self._chats.setdefault(chat, deque())
        self._expire(self._sends, now, self.window)
        self._expire(chat_log, now, self.chat_window)
        wait = 0.0
        if len(self._sends) >= self.global_limit:
            wait = max(wait, self._sends[len(self._sends) - self.global_limit] + self.window - now)
        if len(chat_log) >= self.chat_limit:
            wait = max(wait, chat_log[len(chat_log) - self.chat_limit] + self.chat_window - now)
        if wait > 0:
            self.rejected += 1
            retry_after = max(1, math.ceil(wait))
            return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
        self.accepted += 1
        self._sends.append(now)
        chat_log.append(now)
        return None


Interceptor = Callable[[str, dict[str, Any]], "ApiError | None"]
"""Called before every method with (method, decoded params); returning an ApiError fails the call with it."""

MethodHandler = Callable[[dict[str, Any], dict[str, UploadedFile]], Awaitable[Any]]


# --------------------------------------------------------------------------------------------------------------------
# Text formatting, as tdlib does it
# --------------------------------------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """Raised by :func:`parse_html`; the message is the part after "can't parse entities: "."""


_HTML_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji", "span", "pre",
        "code", "blockquote",
    }
)  # fmt: skip
_SIMPLE_ENTITY_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler",
}  # fmt: skip
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TDLIB_SPACE = " \t\r\n\0\v"
_TRIMMED = " \t\r\n\v\f"


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: the unit of Telegram's length limits and entity offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _decode_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode the character reference at ``text[pos] == '&'`` like tdlib: (character, next position) or None.

    Only &lt; &gt; &amp; &quot; and numeric references are supported; the semicolon is optional. None means the
    ampersand is literal text.
    """
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        code = 0
        if end < n and text[end] == "x":
            end += 1
            while end < n and text[end] in "0123456789abcdefABCDEF":
                code = code * 16 + int(text[end], 16)
                end += 1
        else:
            while end < n and text[end].isascii() and text[end].isdigit():
                code = code * 10 + int(text[end])
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
        char = chr(code)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        char_or_none = _NAMED_ENTITIES.get(text[pos + 1 : end])
        if char_or_none is None:
            return None
        char = char_or_none
    if end < n and text[end] == ";":
        end += 1
    return char, end


@dataclass
class _OpenTag:
    name: str
    argument: str
    utf16_offset: int
    text_index: int
    byte_offset: int


def parse_html(source: str, *, strict: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML into (plain text, Bot API entities with UTF-16 offsets).

    Mirrors tdlib's ``parse_html``: the same accepted tags, the same quirks (``</>`` closes the innermost tag, a bare
    ``&`` is literal text, a bare ``<`` is an "Unsupported start tag") and the same error messages with UTF-8 byte
    offsets. With ``strict`` an unsupported named entity such as ``&nbsp;`` is an error instead of literal text.
    """
    n = len(source)

    def at(k: int) -> str:
        return source[k] if k < n else "\0"

    out: list[str] = []
    out_len = 0  # in characters, for <a> without href
    utf16 = 0
    entities: list[dict[str, Any]] = []
    stack: list[_OpenTag] = []
    has_surrogates = False
    i = 0
    while i < n:
        char = source[i]
        if char == "&":
            decoded = _decode_entity(source, i)
            if decoded is not None:
                decoded_char, i = decoded
                has_surrogates = has_surrogates or 0xD800 <= ord(decoded_char) <= 0xDFFF
                out.append(decoded_char)
                out_len += 1
                utf16 += 2 if ord(decoded_char) > 0xFFFF else 1
                continue
            if strict:
                end = i + 1
                while end < n and source[end].isascii() and source[end].isalnum():
                    end += 1
                if end > i + 1 and source[i + 1].isalpha() and at(end) == ";":
                    raise EntityParseError(
                        f'Unsupported HTML entity "{source[i : end + 1]}" at byte offset {_byte_offset(source, i)} '
                        "(stand-in strictness: Telegram would show it verbatim; use a character or a numeric "
                        "reference)"
                    )
        if char != "<":
            out.append(char)
            out_len += 1
            utf16 += 2 if ord(char) > 0xFFFF else 1
            i += 1
            continue

        begin = i
        begin_byte = _byte_offset(source, begin)
        i += 1
        if at(i) != "/":
            while at(i) not in _TDLIB_SPACE and at(i) != ">":
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin_byte}")
            tag = source[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin_byte}')
            argument = ""
            while at(i) != ">":
                while i < n and at(i) in _TDLIB_SPACE:
                    i += 1
                if at(i) == ">":
                    break
                name_begin = i
                while at(i) not in _TDLIB_SPACE and at(i) not in "=>":
                    i += 1
                attribute = source[name_begin:i]
                if not attribute:
                    raise EntityParseError(f'Empty attribute name in the tag "{tag}" at byte offset {begin_byte}')
                while i < n and at(i) in _TDLIB_SPACE:
                    i += 1
                if i >= n:
                    raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin_byte}')
                if at(i) != "=":
                    # A valueless attribute; Telegram uses only <blockquote expandable>.
                    if tag == "blockquote" and attribute == "expandable":
                        argument = "1"
                    continue
                i += 1
                while i < n and at(i) in _TDLIB_SPACE:
                    i += 1
                if i >= n:
                    raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin_byte}')
                value_chars: list[str] = []
                if at(i) not in "'\"":
                    token_begin = i
                    while at(i).isascii() and (at(i).isalnum() or at(i) in ".-"):
                        i += 1
                    value = source[token_begin:i].lower()
                    if at(i) not in _TDLIB_SPACE and at(i) != ">":
                        raise EntityParseError(
                            f"Unexpected end of name token at byte offset {_byte_offset(source, token_begin)}"
                        )
                else:
                    quote = source[i]
                    i += 1
                    while i < n and source[i] != quote:
                        if source[i] == "&":
                            decoded = _decode_entity(source, i)
                            if decoded is not None:
                                value_chars.append(decoded[0])
                                i = decoded[1]
                                continue
                        value_chars.append(source[i])
                        i += 1
                    if at(i) == quote:
                        i += 1
                    value = "".join(value_chars)
                if i >= n:
                    raise EntityParseError(f"Unclosed start tag at byte offset {begin_byte}")
                if tag == "a" and attribute == "href":
                    argument = value
                elif tag == "code" and attribute == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attribute == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attribute == "emoji-id":
                    argument = value
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin_byte}')
            stack.append(_OpenTag(tag, argument, utf16, out_len, begin_byte))
            i += 1  # past '>'
            continue

        # An end tag.
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {begin_byte}")
        while at(i) not in _TDLIB_SPACE and at(i) != ">":
            i += 1
        end_name = source[begin + 2 : i].lower()
        while i < n and at(i) in _TDLIB_SPACE:
            i += 1
        if at(i) != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {begin_byte}")
        i += 1
        opened = stack[-1]
        if end_name and end_name != opened.name:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {begin_byte}, expected "</{opened.name}>", found "</{end_name}>"'
            )
        stack.pop()
        if utf16 > opened.utf16_offset:
            entity = _make_entity(opened, utf16, "".join(out)[opened.text_index :], entities)
            if entity is not None:
                entities.append(entity)
    if stack:
        raise EntityParseError(f"Can't find end tag corresponding to start tag {stack[-1].name}")
    text = "".join(out)
    if has_surrogates:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise EntityParseError(
                "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched "
                "surrogate code units"
            ) from None
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return text, entities


def _make_entity(
    opened: _OpenTag, utf16_end: int, inner_text: str, entities: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The Bot API entity for a closed tag (None when Telegram would drop it), merging <pre><code class=...>."""
    offset, length = opened.utf16_offset, utf16_end - opened.utf16_offset
    name = opened.name
    if name in _SIMPLE_ENTITY_TYPES:
        return {"type": _SIMPLE_ENTITY_TYPES[name], "offset": offset, "length": length}
    if name == "blockquote":
        kind = "expandable_blockquote" if opened.argument else "blockquote"
        return {"type": kind, "offset": offset, "length": length}
    if name == "tg-emoji":
        if not opened.argument.isdigit() or int(opened.argument) == 0:
            raise EntityParseError("Invalid custom emoji identifier specified")
        return {"type": "custom_emoji", "offset": offset, "length": length, "custom_emoji_id": opened.argument}
    if name == "a":
        url = opened.argument or inner_text
        if not url:
            return None
        return {"type": "text_link", "offset": offset, "length": length, "url": url}
    last = entities[-1] if entities else None
    same_span = last is not None and last["offset"] == offset and last["length"] == length
    if name == "pre":
        if same_span and last is not None and last["type"] == "code" and last.get("_language"):
            entities.pop()
            return {"type": "pre", "offset": offset, "length": length, "language": last["_language"]}
        return {"type": "pre", "offset": offset, "length": length}
    # code
    if same_span and last is not None and last["type"] == "pre" and opened.argument:
        last["language"] = opened.argument
        return None
    entity: dict[str, Any] = {"type": "code", "offset": offset, "length": length}
    if opened.argument:
        entity["_language"] = opened.argument  # only meaningful if a <pre> closes right around it
    return entity


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip leading/trailing whitespace as Telegram does for sent texts, keeping entities aligned."""
    stripped_left = text.lstrip(_TRIMMED)
    shift = len(text) - len(stripped_left)  # whitespace is ASCII: one UTF-16 unit per character
    result = stripped_left.rstrip(_TRIMMED)
    limit = utf16_len(result)
    trimmed: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, limit)
        if end > start:
            clean = {key: value for key, value in entity.items() if not key.startswith("_")}
            clean.update(offset=start, length=end - start)
            trimmed.append(clean)
    return result, trimmed


# --------------------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------------------


class TelegramStandin:
    """A fake Telegram Bot API on 127.0.0.1 with an ephemeral port, plus a test-side API to play the users.

    Use ``async with TelegramStandin() as tg:`` (or ``await tg.start()`` / ``await tg.stop()``). Everything runs on
    the test's event loop; the test-side methods that only queue updates are synchronous.

    ``require_known_chats``: sending to a chat the stand-in has never seen (no update from it, no ``add_user``) fails
    with Telegram's "chat not found", which catches user-id/chat-id mix-ups. ``strict``: see the module docstring.
    """

    def __init__(
        self,
        token: str = "42:TEST",
        *,
        bot_username: str = "zicha_test_bot",
        bot_first_name: str = "Zicha Test Bot",
        strict: bool = True,
        require_known_chats: bool = True,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.strict = strict
        self.require_known_chats = require_known_chats

        self.requests: list[ApiCall] = []
        """Every call the bot made (including failed ones and getUpdates), in completion order."""
        self.files: dict[str, StoredFile] = {}
        """Every file known by file_id: sent by the test (send_document...) or uploaded by the bot."""
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        """setMyCommands state, keyed by (scope as canonical JSON, language_code)."""
        self.menu_buttons: dict[int | None, dict[str, Any] | None] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.blocked: set[int] = set()
        self.interceptors: list[Interceptor] = []
        self.request_delay: Callable[[str, dict[str, Any]], float] | None = None
        """Network jitter: seconds a request takes to "arrive" before it is counted by the rate limits and handled,
        e.g. ``tg.request_delay = lambda method, params: 0.015``; getUpdates is never delayed."""
        self.download_faults: list[DownloadFault] = []

        self._messages: dict[int, list[BotMessage]] = {}
        self._by_id: dict[tuple[int, int], BotMessage] = {}
        self._user_messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._next_message_id: dict[int, int] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._discarded_updates: list[dict[str, Any]] = []
        self._allowed_updates: frozenset[str] | None = None
        self._next_query_id = 1
        self._next_file = 1
        self._poll_generation = 0
        self._active_polls = 0
        self._last_poll_at: float | None = None
        self._changed = asyncio.Event()
        self._closing = False
        self._t0 = time.monotonic()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        # Webhook mode (setWebhook): updates are POSTed to the bot instead of served by getUpdates.
        self.webhook: dict[str, Any] | None = None
        """The webhook as set by setWebhook: url, secret_token, allowed_updates; None when not set."""
        self.webhook_deliveries: list[tuple[int, int]] = []
        """(update_id, HTTP status) of every webhook delivery attempt, in order."""
        self._webhook_task: asyncio.Task[None] | None = None
        self._holds: list[Hold] = []

        handlers: dict[str, MethodHandler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "editMessageCaption": self._edit_message_caption,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "getFile": self._get_file,
            "setChatMenuButton": self._set_chat_menu_button,
        }
        # Telegram matches method names case-insensitively; the log uses the canonical spelling.
        self._methods: dict[str, tuple[str, MethodHandler]] = {
            name.lower(): (name, handler) for name, handler in handlers.items()
        }

    # ---------------------------------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> TelegramStandin:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Serve on 127.0.0.1 with a port chosen by the OS (read it back through ``base_url``)."""
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_download)
        # A short shutdown timeout: long polls are woken on stop, so nothing legitimate waits longer.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self._t0 = time.monotonic()

    async def stop(self) -> None:
        """Wake pending long polls (they return no updates) and shut the server down."""
        self._closing = True
        for hold in self._holds:
            hold.release()
        await self._stop_webhook_delivery()
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``TelegramAPIServer.from_base``."""
        if self._port is None:
            raise RuntimeError("TelegramStandin is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_server(self) -> TelegramAPIServer:
        """The aiogram server config pointing at this stand-in: ``AiohttpSession(api=tg.api_server)``."""
        return TelegramAPIServer.from_base(self.base_url)

    # ---------------------------------------------------------------------------------------------- playing users

    def add_user(
        self, user_id: int, *, first_name: str = "Test", language_code: str | None = "zh-hans", username: str | None = None
    ) -> dict[str, Any]:
        """Register (or update) a user and make their private chat known, without sending anything."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.users[user_id] = user
        self._next_message_id.setdefault(user_id, 1)
        return user

    def send_text(
        self, user_id: int, text: str, *, first_name: str = "Test", language_code: str | None = "zh-hans"
    ) -> int:
        """Queue a text message from ``user_id`` in their private chat; returns the new message's id.

        A text starting with "/" gets a bot_command entity, as Telegram adds one.
        """
        user = self.add_user(user_id, first_name=first_name, language_code=language_code)
        fields: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            fields["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        return self._queue_user_message(user, fields)

    def send_sticker(self, user_id: int, *, emoji: str = "👍") -> int:
        """Queue a sticker message (a registered fake .webp file); returns the message id."""
        user = self._user(user_id)
        stored = self.register_file(b"RIFF\x00\x00\x00\x00WEBPVP8 fake sticker", file_name=None, mime_type="image/webp")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": stored.file_size,
        }
        return self._queue_user_message(user, {"sticker": sticker})

    def send_photo(self, user_id: int, caption: str | None = None, *, content: bytes | None = None) -> int:
        """Queue a photo message (a registered fake JPEG, downloadable through getFile); returns the message id."""
        user = self._user(user_id)
        data = content if content is not None else b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 fake photo \xff\xd9"
        stored = self.register_file(data, file_name=None, mime_type="image/jpeg")
        fields: dict[str, Any] = {"photo": _photo_sizes(stored)}
        if caption is not None:
            fields["caption"] = caption
        return self._queue_user_message(user, fields)

    def send_document(
        self,
        user_id: int,
        file_name: str = "x.pdf",
        mime_type: str | None = None,
        *,
        content: bytes | None = None,
        caption: str | None = None,
    ) -> int:
        """Queue a document message with a registered fake file; returns the message id.

        ``mime_type`` defaults to a guess from ``file_name``; ``content`` to a few bytes that look like the type.
        """
        user = self._user(user_id)
        mime = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        data = content if content is not None else _fake_content(file_name)
        stored = self.register_file(data, file_name=file_name, mime_type=mime)
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "mime_type": mime,
            "file_size": stored.file_size,
        }
        fields: dict[str, Any] = {"document": document}
        if caption is not None:
            fields["caption"] = caption
        return self._queue_user_message(user, fields)

    def send_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (``update_id`` is added if missing); returns its update_id.

        Chats and users found in it become known. Use ``register_file`` for files it refers to.
        """
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, update["update_id"] + 1)
        for value in update.values():
            if isinstance(value, dict):
                carrier = value if "chat" in value else value.get("message") or {}
                chat = carrier.get("chat")
                if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                    # Keep message ids unique per chat even when a raw update chose its own.
                    following = carrier.get("message_id", 0) + 1 if isinstance(carrier.get("message_id"), int) else 1
                    self._next_message_id[chat["id"]] = max(self._next_message_id.get(chat["id"], 1), following)
                sender = value.get("from")
                if isinstance(sender, dict) and isinstance(sender.get("id"), int) and not sender.get("is_bot"):
                    self.users.setdefault(sender["id"], sender)
        self._updates.append(update)
        self._notify()
        return int(update["update_id"])

    def register_file(
        self, content: bytes, *, file_name: str | None = None, mime_type: str | None = None, origin: str = "user"
    ) -> StoredFile:
        """Make bytes downloadable through getFile/the file route; returns the record with its file_id."""
        n = self._next_file
        self._next_file += 1
        folder = "photos" if (mime_type or "").startswith("image/") else "documents"
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        elif mime_type:
            suffix = mimetypes.guess_extension(mime_type) or ""
        stored = StoredFile(
            file_id=f"BQACAgIAAxkBAAI{n:06d}standin",
            file_unique_id=f"AgAD{n:06d}",
            content=content,
            file_name=file_name,
            mime_type=mime_type,
            file_path=f"{folder}/file_{n}{suffix}",
            origin=origin,
        )
        self.files[stored.file_id] = stored
        return stored

    def press(
        self,
        user_id: int,
        message_or_id: BotMessage | Message | int,
        *,
        text: str | None = None,
        data: str | None = None,
    ) -> str:
        """Queue a callback_query for a button of a bot message in the user's chat; returns the query id.

        The message may be given as a BotMessage (from ``messages``/``wait_reply``), an aiogram Message or an id.
        ``text`` finds the button by its visible text (exact match) and sends its callback_data; ``data`` sends the
        given data as is (forged or not). The message must exist and not be deleted.
        """
        if (text is None) == (data is None):
            raise ValueError("press() needs exactly one of text= or data=")
        message_id = message_or_id if isinstance(message_or_id, int) else message_or_id.message_id
        message = self._by_id.get((user_id, message_id))
        if message is None or message.deleted:
            state = "deleted" if message is not None else "unknown"
            raise AssertionError(f"cannot press a button of {state} message {message_id} in chat {user_id}")
        if text is not None:
            matches = [button for row in message.buttons for button in row if button[0] == text]
            if not matches:
                raise AssertionError(
                    f"no button {text!r} on message {message_id} in chat {user_id}; buttons: {message.buttons}"
                )
            data = matches[0][1]
            if data is None:
                raise AssertionError(f"button {text!r} on message {message_id} has no callback_data")
        assert data is not None
        return self.press_data(user_id, message_id, data)

    def press_data(self, user_id: int, message_id: int, data: str) -> str:
        """Queue a callback_query with arbitrary (possibly forged) data on a message; returns the query id.

        An unknown or deleted message is sent as an inaccessible message (``date`` 0), as Telegram does.
        """
        user = self._user(user_id)
        query_id = str(4_000_000_000_000_000 + self._next_query_id)
        self._next_query_id += 1
        message = self._by_id.get((user_id, message_id))
        if message is not None and not message.deleted:
            shown = self._message_json(message)
        else:
            shown = {"chat": self._chat_json(user_id), "message_id": message_id, "date": 0}
        update_id = self.send_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "message": shown,
                    "chat_instance": f"-{abs(hash((self.bot_id, user_id))) % 10**18}",
                    "data": data,
                }
            }
        )
        self.callback_queries[query_id] = CallbackQueryRecord(query_id, user_id, user_id, message_id, data, update_id)
        return query_id

    def block(self, chat_id: int, *, notify: bool = False) -> None:
        """Mark the chat as having blocked the bot: sends fail with 403 "bot was blocked by the user".

        With ``notify`` a my_chat_member update (bot "kicked") is queued, as Telegram sends one.
        """
        self.blocked.add(chat_id)
        if notify:
            self._queue_member_change(chat_id, old="member", new="kicked")

    def unblock(self, chat_id: int, *, notify: bool = False) -> None:
        """Undo ``block``; with ``notify`` a my_chat_member update (bot "member" again) is queued."""
        self.blocked.discard(chat_id)
        if notify:
            self._queue_member_change(chat_id, old="kicked", new="member")

    # ---------------------------------------------------------------------------------------------- faults

    def fail_next(
        self,
        method: str,
        status: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> Fault:
        """Make the next ``times`` calls of ``method`` ("*" = any but getUpdates), to ``chat_id`` if given, fail.

        The description defaults to Telegram's for the status ("Too Many Requests: retry after N" with
        ``retry_after``). Returns the Fault; its ``remaining`` tells whether the bot hit it.
        """
        if description is None:
            if retry_after is not None:
                description = f"Too Many Requests: retry after {retry_after}"
            else:
                description = _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        fault = Fault(method, status, description, retry_after, chat_id, times)
        self.interceptors.append(fault)
        return fault

    def fail_downloads(self, times: int = 1, *, status: int = 502, disconnect: bool = False) -> DownloadFault:
        """Make the next ``times`` requests to the file endpoint (``/file/bot<token>/<path>``) fail with HTTP
        ``status``, or with ``disconnect`` by dropping the connection mid-body. getFile itself still works."""
        fault = DownloadFault(times, status, disconnect)
        self.download_faults.append(fault)
        return fault

    def enforce_rate_limits(
        self,
        *,
        global_rate: float = 30.0,
        global_burst: float | None = None,
        chat_rate: float = 1.0,
        chat_burst: float = 3.0,
    ) -> RateLimitEnforcer:
        """Opt in to Telegram's flood control: sends beyond ``global_rate``/s (burst ``global_burst``, default one
        second's worth) or ``chat_rate``/s per chat (burst ``chat_burst``) get 429 with ``retry_after``."""
        enforcer = RateLimitEnforcer(
            global_rate=global_rate,
            global_burst=global_rate if global_burst is None else global_burst,
            chat_rate=chat_rate,
            chat_burst=chat_burst,
        )
        self.interceptors.append(enforcer)
        return enforcer

    def enforce_sliding_window(
        self, *, global_limit: int = 30, window: float = 1.0, chat_limit: int = 1, chat_window: float = 1.0
    ) -> SlidingWindowEnforcer:
        """Opt in to the strict sliding-window reading of the limits (see ``SlidingWindowEnforcer``): more than
        ``global_limit`` sends in any ``window`` seconds, or ``chat_limit`` to one chat in any ``chat_window``
        seconds, get 429 with ``retry_after``."""
        enforcer = SlidingWindowEnforcer(global_limit, window, chat_limit, chat_window)
        self.interceptors.append(enforcer)
        return enforcer

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Run ``interceptor(method, params)`` before every method; an ApiError it returns becomes the reply."""
        self.interceptors.append(interceptor)

    # ---------------------------------------------------------------------------------------------- inspection

    def mark(self) -> int:
        """The index the next logged request will get: pass it as ``after=`` to wait for what happens next."""
        return len(self.requests)

    def messages(self, chat_id: int) -> list[BotMessage]:
        """The bot's messages in the chat, oldest first, including deleted ones (``deleted`` is set)."""
        return list(self._messages.get(chat_id, []))

    def last_message(self, chat_id: int) -> BotMessage:
        """The bot's latest message in the chat that is not deleted; AssertionError if there is none."""
        for message in reversed(self._messages.get(chat_id, [])):
            if not message.deleted:
                return message
        raise AssertionError(f"the bot has no message in chat {chat_id}\n{self.dump()}")

    def message(self, chat_id: int, message_id: int) -> BotMessage:
        """One bot message by id; AssertionError if the bot never sent it."""
        found = self._by_id.get((chat_id, message_id))
        if found is None:
            raise AssertionError(f"the bot has no message {message_id} in chat {chat_id}\n{self.dump()}")
        return found

    def calls(self, method: str | None = None, *, chat_id: int | None = None, after: int = 0) -> list[ApiCall]:
        """Logged calls filtered by method (case-insensitive) and target chat."""
        return [
            call
            for call in self.requests[after:]
            if (method is None or call.method.lower() == method.lower())
            and (chat_id is None or call.params.get("chat_id") == chat_id)
        ]

    def unanswered(self) -> list[CallbackQueryRecord]:
        """Callback queries the bot has not (successfully) answered: each leaves the user's button spinning."""
        return [query for query in self.callback_queries.values() if query.answer is None]

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued but not yet confirmed by the bot through getUpdates' offset."""
        return list(self._updates)

    # ---------------------------------------------------------------------------------------------- waiting

    async def wait_until(self, condition: Callable[[], T | None], *, timeout: float = 5.0, what: str = "") -> T:
        """Wait until ``condition()`` returns something truthy, re-checking on every change; returns that value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            value = condition()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what or condition!r}\n{self.dump()}")
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass

    async def wait_for(
        self, predicate: Callable[[ApiCall], object], *, after: int = 0, timeout: float = 5.0, what: str = ""
    ) -> ApiCall:
        """Wait for the first logged call at index >= ``after`` for which ``predicate(call)`` is true."""
        cursor = after

        def scan() -> ApiCall | None:
            nonlocal cursor
            while cursor < len(self.requests):
                call = self.requests[cursor]
                cursor += 1
                if predicate(call):
                    return call
            return None

        return await self.wait_until(scan, timeout=timeout, what=what or f"a call matching {predicate!r}")

    async def wait_call(
        self, method: str, *, after: int = 0, chat_id: int | None = None, timeout: float = 5.0
    ) -> ApiCall:
        """Wait for a call of ``method`` (to ``chat_id`` if given), successful or not."""
        return await self.wait_for(
            lambda call: call.method.lower() == method.lower()
            and (chat_id is None or call.params.get("chat_id") == chat_id),
            after=after,
            timeout=timeout,
            what=f"{method}" + (f" to chat {chat_id}" if chat_id is not None else "") + f" after #{after}",
        )

    async def wait_reply(self, chat_id: int, *, after: int, timeout: float = 5.0) -> BotMessage:
        """The next message sent or edited in the chat by a call at index >= ``after`` (a snapshot of that moment)."""
        call = await self.wait_for(
            lambda call: call.ok and call.message is not None and call.message.chat_id == chat_id,
            after=after,
            timeout=timeout,
            what=f"a message sent or edited in chat {chat_id} after request #{after}",
        )
        assert call.message is not None
        return call.message

    async def wait_answered(self, query_id: str, *, timeout: float = 5.0) -> CallbackAnswer:
        """Wait until the bot answered the callback query; returns its answer (text, show_alert...)."""
        if query_id not in self.callback_queries:
            raise AssertionError(f"unknown callback query {query_id!r}")
        query = self.callback_queries[query_id]
        return await self.wait_until(
            lambda: query.answer, timeout=timeout, what=f"an answer to callback query {query_id} ({query.data!r})"
        )

    async def wait_polling(self, *, timeout: float = 5.0) -> None:
        """Wait until the bot is inside a getUpdates long poll (it has started polling and caught up)."""
        await self.wait_until(lambda: self._active_polls > 0, timeout=timeout, what="the bot to poll getUpdates")

    async def wait_not_polling(self, *, timeout: float = 5.0) -> None:
        """Wait until no getUpdates long poll is open (a stopped bot's last poll ends within its timeout), so a
        bot started next is not mistaken for polling by ``wait_polling``."""
        await self.wait_until(lambda: self._active_polls == 0, timeout=timeout, what="open long polls to end")

    def dump(self, last: int = 25) -> str:
        """A readable state summary and the latest requests, for assertion messages."""
        lines = [
            f"stand-in state: {len(self._updates)} pending update(s)"
            + (f" (ids {self._updates[0]['update_id']}..{self._updates[-1]['update_id']})" if self._updates else "")
            + f", {len(self._discarded_updates)} discarded by allowed_updates, "
            + f"{self._active_polls} long poll(s) waiting, "
            + (
                f"last getUpdates {time.monotonic() - self._last_poll_at:.2f}s ago"
                if self._last_poll_at is not None
                else "getUpdates never called"
            )
            + f", {len(self.unanswered())} unanswered callback query(ies)",
            f"recent requests (of {len(self.requests)}, oldest first):",
        ]
        empty_polls = 0
        for call in self.requests[-last:]:
            if call.method == "getUpdates" and call.ok and not call.result:
                empty_polls += 1
                continue
            if empty_polls:
                lines.append(f"  ... {empty_polls} empty getUpdates")
                empty_polls = 0
            lines.append("  " + call.summary())
        if empty_polls:
            lines.append(f"  ... {empty_polls} empty getUpdates")
        return "\n".join(lines)

    # ---------------------------------------------------------------------------------------------- HTTP layer

    async def _handle_method(self, request: web.Request) -> web.Response:
        started = self._now()
        raw_method = request.match_info["method"]
        method, handler = self._methods.get(raw_method.lower(), (raw_method, None))
        params: dict[str, Any] = {}
        files: dict[str, UploadedFile] = {}
        try:
            raw, files = await _read_form(request)
            params = _decode_params(raw)
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            if self.request_delay is not None and method != "getUpdates":
                delay = self.request_delay(method, params)
                if delay > 0:
                    await asyncio.sleep(delay)
            for hold in list(self._holds):
                if hold.claim(method):
                    await hold.wait_released()
            for interceptor in list(self.interceptors):
                error = interceptor(method, params)
                if error is not None:
                    raise error
            result = await handler(params, files)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as error:
            status, body = error.status, error.payload()
        except web.HTTPRequestEntityTooLarge:
            status, body = 413, ApiError(413, "Request Entity Too Large").payload()
        except Exception as error:  # noqa: BLE001 - a stand-in bug must reach the test as a readable reply
            description = f"Internal Server Error: stand-in bug: {type(error).__name__}: {error}"
            status, body = 500, ApiError(500, description).payload()
        self._log(method, params, files, status, body, started)
        return web.json_response(body, status=status)

    async def _handle_download(self, request: web.Request) -> web.StreamResponse:
        started = self._now()
        path = request.match_info["path"]
        params: dict[str, Any] = {"file_path": path}
        stored = next((f for f in self.files.values() if f.file_path == path), None)
        fault = next((f for f in self.download_faults if f.remaining > 0), None)
        if fault is not None and request.match_info["token"] == self.token and stored is not None:
            fault.hits += 1
            if fault.disconnect:
                self._log("downloadFile", params, {}, 0, {"ok": False, "description": "connection dropped"}, started)
                response = web.StreamResponse(headers={"Content-Length": str(len(stored.content) + 1024)})
                await response.prepare(request)
                await response.write(stored.content[:16])
                if request.transport is not None:
                    request.transport.close()
                return response
            self._log("downloadFile", params, {}, fault.status, {"ok": False, "description": "Bad Gateway"}, started)
            return web.Response(status=fault.status, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if request.match_info["token"] != self.token:
            error = ApiError(401, "Unauthorized")
        elif stored is None:
            error = ApiError(404, "Not Found")
        else:
            self._log("downloadFile", params, {}, 200, {"ok": True, "result": len(stored.content)}, started)
            return web.Response(body=stored.content, content_type=stored.mime_type or "application/octet-stream")
        self._log("downloadFile", params, {}, error.status, error.payload(), started)
        return web.json_response(error.payload(), status=error.status)

    def _log(
        self,
        method: str,
        params: dict[str, Any],
        files: dict[str, UploadedFile],
        status: int,
        body: dict[str, Any],
        started: float,
    ) -> None:
        message = None
        if status == 200 and method in _MESSAGE_METHODS and isinstance(body.get("result"), dict):
            found = self._by_id.get((body["result"]["chat"]["id"], body["result"]["message_id"]))
            message = found.snapshot() if found is not None else None
        call = ApiCall(len(self.requests), method, params, files, status, body, started, self._now(), message)
        self.requests.append(call)
        self._notify()

    def _notify(self) -> None:
        """Wake everything waiting on state (long polls, wait_* helpers): swap in a fresh event, set the old one."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _now(self) -> float:
        return time.monotonic() - self._t0

    # ---------------------------------------------------------------------------------------------- methods

    async def _get_me(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self.bot_user

    async def _get_updates(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        loop = asyncio.get_running_loop()
        offset = params.get("offset")
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(int(params.get("timeout") or 0), 0)
        if "allowed_updates" in params:
            allowed = params["allowed_updates"]
            self._allowed_updates = frozenset(allowed) if allowed else None
        if self.webhook is not None:
            raise ApiError(409, WEBHOOK_ACTIVE_DESCRIPTION)
        self._poll_generation += 1
        generation = self._poll_generation
        self._last_poll_at = time.monotonic()
        self._notify()  # an older long poll must notice it was superseded
        if isinstance(offset, int) and offset > 0:
            self._updates = [update for update in self._updates if update["update_id"] >= offset]
        elif isinstance(offset, int) and offset < 0:
            self._updates = self._updates[offset:]
        deadline = loop.time() + timeout
        self._active_polls += 1
        try:
            while True:
                changed = self._changed
                if self._closing:
                    return []
                if generation != self._poll_generation:
                    raise ApiError(409, CONFLICT_DESCRIPTION)
                batch = self._deliverable(limit)
                if batch:
                    return batch
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except TimeoutError:
                    pass
        finally:
            self._active_polls -= 1
            self._notify()

    def _deliverable(self, limit: int) -> list[dict[str, Any]]:
        """Pending updates the bot asked for; the others are discarded, as Telegram does not send them."""
        kept: list[dict[str, Any]] = []
        for update in self._updates:
            kind = next((key for key in update if key != "update_id"), "")
            allowed = kind in self._allowed_updates if self._allowed_updates else kind not in _OPT_IN_UPDATE_TYPES
            if allowed:
                kept.append(update)
            else:
                self._discarded_updates.append(update)
        self._updates = kept
        return copy.deepcopy(kept[:limit])

    async def _delete_webhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = None
        # A delivery in flight completes (its update counts as delivered on 2xx); then the loop ends.
        self._notify()
        return True

    # ---------------------------------------------------------------------------------------------- webhook mode

    async def _set_webhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        url = params.get("url") or ""
        if not url:
            # Telegram: setWebhook with an empty url removes the webhook.
            return await self._delete_webhook(params, files)
        if not url.startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        allowed = params.get("allowed_updates")
        if "allowed_updates" in params:
            self._allowed_updates = frozenset(allowed) if allowed else None
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": allowed}
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._deliver_webhook_updates())
        self._notify()
        return True

    async def _get_webhook_info(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook and self.webhook.get("allowed_updates"):
            info["allowed_updates"] = list(self.webhook["allowed_updates"])
        return info

    async def _stop_webhook_delivery(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _deliver_webhook_updates(self) -> None:
        """POST pending updates one at a time to the webhook, with its secret header, as Telegram does;
        an update leaves the queue only when the bot answered 2xx (else it is retried shortly)."""
        import aiohttp  # the client side is needed only in webhook mode

        async with aiohttp.ClientSession() as session:
            while self.webhook is not None and not self._closing:
                changed = self._changed
                batch = self._deliverable(1)
                if not batch:
                    await changed.wait()
                    continue
                update, hook = batch[0], self.webhook
                headers = {"X-Telegram-Bot-Api-Secret-Token": hook["secret_token"]} if hook["secret_token"] else {}
                try:
                    async with session.post(hook["url"], json=update, headers=headers) as response:
                        status = response.status
                        await response.read()
                except aiohttp.ClientError:
                    status = 0
                self.webhook_deliveries.append((update["update_id"], status))
                if 200 <= status < 300:
                    self._updates = [u for u in self._updates if u["update_id"] != update["update_id"]]
                    self._notify()
                else:
                    self._notify()
                    await asyncio.sleep(0.05)  # Telegram backs off longer; a test wants it soon

    # ---------------------------------------------------------------------------------------------- holding calls

    def hold(self, method: str) -> Hold:
        """Make the next call of ``method`` wait (the bot sees a slow Telegram) until ``release()``;
        ``await hold.wait_arrived()`` returns once the bot is waiting on it."""
        hold = Hold(method)
        self._holds.append(hold)
        return hold

    async def _set_my_commands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: commands must be an array")
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: too many commands specified")
        for command in commands:
            name = str(command.get("command", "")).removeprefix("/")
            if not (1 <= len(name) <= 32) or not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not (1 <= len(str(command.get("description", ""))) <= 256):
                raise ApiError(400, "Bad Request: command description is empty")
        self.commands[self._commands_key(params)] = commands
        return True

    async def _get_my_commands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self.commands.get(self._commands_key(params), [])

    async def _delete_my_commands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        self.commands.pop(self._commands_key(params), None)
        return True

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def _set_chat_menu_button(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_id = params.get("chat_id")
        self.menu_buttons[chat_id if isinstance(chat_id, int) else None] = params.get("menu_button")
        return True

    async def _send_message(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_id = self._target_chat(params)
        text, entities = self._format(params, "text", MAX_TEXT_LENGTH)
        markup = self._checked_markup(params)
        self._check_not_blocked(chat_id)
        message = self._store(chat_id, "text", text, params.get("text") or "", params, entities, markup)
        return self._message_json(message)

    async def _send_document(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return await self._send_media(params, files, "document")

    async def _send_photo(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return await self._send_media(params, files, "photo")

    async def _send_media(self, params: dict[str, Any], files: dict[str, UploadedFile], kind: str) -> Any:
        chat_id = self._target_chat(params)
        stored = self._input_file(params, files, kind)
        caption, entities = self._format(params, "caption", MAX_CAPTION_LENGTH)
        markup = self._checked_markup(params)
        self._check_not_blocked(chat_id)
        message = self._store(chat_id, kind, caption, params.get("caption") or "", params, entities, markup)
        message.file = stored
        return self._message_json(message)

    async def _edit_message_text(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        message = self._message_to_edit(params)
        if message.kind != "text":
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities = self._format(params, "text", MAX_TEXT_LENGTH)
        # Without reply_markup Telegram removes the keyboard: a classic way to lose buttons.
        markup = self._checked_markup(params)
        if (text, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise ApiError(400, NOT_MODIFIED_DESCRIPTION)
        self._apply_edit(message, text=text, html=params.get("text") or "", params=params, entities=entities)
        message.reply_markup = markup
        return self._message_json(message)

    async def _edit_message_caption(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        message = self._message_to_edit(params)
        if message.kind == "text":
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption, entities = self._format(params, "caption", MAX_CAPTION_LENGTH)
        markup = self._checked_markup(params)
        if (caption, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise ApiError(400, NOT_MODIFIED_DESCRIPTION)
        self._apply_edit(message, text=caption, html=params.get("caption") or "", params=params, entities=entities)
        message.reply_markup = markup
        return self._message_json(message)

    async def _edit_message_reply_markup(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        message = self._message_to_edit(params)
        markup = self._checked_markup(params)
        if markup == message.reply_markup:
            raise ApiError(400, NOT_MODIFIED_DESCRIPTION)
        message.reply_markup = markup
        message.edited += 1
        message.edit_date = int(time.time())
        return self._message_json(message)

    async def _delete_message(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_id = self._target_chat(params)
        message_id = params.get("message_id")
        message = self._by_id.get((chat_id, message_id)) if isinstance(message_id, int) else None
        if message is not None and not message.deleted:
            message.deleted = True
            return True
        user_message = self._user_messages.get((chat_id, message_id)) if isinstance(message_id, int) else None
        if user_message is not None and not user_message.get("_deleted"):
            user_message["_deleted"] = True
            return True
        raise ApiError(400, "Bad Request: message to delete not found")

    async def _answer_callback_query(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        query = self.callback_queries.get(str(params.get("callback_query_id", "")))
        if query is None or query.answer is not None:
            raise ApiError(400, QUERY_INVALID_DESCRIPTION)
        text = params.get("text")
        if text is not None and utf16_len(str(text)) > MAX_CALLBACK_ANSWER_LENGTH:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        query.answer = CallbackAnswer(
            text=text,
            show_alert=bool(params.get("show_alert", False)),
            url=params.get("url"),
            cache_time=params.get("cache_time"),
            call_index=len(self.requests),  # the index this call is about to be logged under
        )
        return True

    async def _get_file(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        stored = self.files.get(str(params.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    # ---------------------------------------------------------------------------------------------- method helpers

    def _target_chat(self, params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int) or (self.require_known_chats and chat_id not in self._next_message_id):
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _check_not_blocked(self, chat_id: int) -> None:
        if chat_id in self.blocked:
            raise ApiError(403, BLOCKED_DESCRIPTION)

    def _message_to_edit(self, params: dict[str, Any]) -> BotMessage:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat_id = self._target_chat(params)
        message_id = params.get("message_id")
        message = self._by_id.get((chat_id, message_id)) if isinstance(message_id, int) else None
        if message is None or message.deleted:
            if isinstance(message_id, int) and (chat_id, message_id) in self._user_messages:
                raise ApiError(400, "Bad Request: message can't be edited")
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    def _format(self, params: dict[str, Any], key: str, limit: int) -> tuple[str, list[dict[str, Any]]]:
        """Parse text/caption per parse_mode; trim; check emptiness (texts only) and length like Telegram."""
        raw = params.get(key)
        raw = "" if raw is None else str(raw)
        parse_mode = params.get("parse_mode")
        entities_key = "entities" if key == "text" else "caption_entities"
        given = params.get(entities_key)
        if isinstance(given, list):
            # Explicit entities win over parse_mode, as in the Bot API.
            plain, entities = raw, [dict(entity) for entity in given]
        elif parse_mode:
            if str(parse_mode).lower() != "html":
                if str(parse_mode).lower() in ("markdown", "markdownv2"):
                    raise ApiError(400, f"Bad Request: stand-in supports parse_mode HTML only, not {parse_mode}")
                raise ApiError(400, "Bad Request: unsupported parse_mode")
            try:
                plain, entities = parse_html(raw, strict=self.strict)
            except EntityParseError as error:
                raise ApiError(400, f"Bad Request: can't parse entities: {error}") from None
        else:
            plain, entities = raw, []
        plain, entities = _trim(plain, entities)
        if key == "text" and not plain:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > limit:
            raise ApiError(400, "Bad Request: message is too long" if key == "text" else
                           "Bad Request: message caption is too long")  # fmt: skip
        return plain, entities

    def _checked_markup(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """Validate an inline keyboard where Telegram would reject it; other markups are stored as they are."""
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: object expected as reply markup")
        if "inline_keyboard" not in markup:
            return markup
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise ApiError(400, 'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
        if sum(len(row) for row in rows) > MAX_INLINE_BUTTONS:
            raise ApiError(400, "Bad Request: REPLY_MARKUP_TOO_LONG")
        prefix = "Bad Request: can't parse inline keyboard button: "
        for row in rows:
            for button in row:
                if not isinstance(button, dict):
                    raise ApiError(400, prefix + "InlineKeyboardButton must be an Object")
                if "text" not in button:
                    raise ApiError(400, prefix + "Can't find field \"text\"")
                if not isinstance(button["text"], str):
                    raise ApiError(400, prefix + "Field \"text\" must be of type String")
                actions = [key for key in _BUTTON_ACTIONS if button.get(key) not in (None, "")]
                if not actions:
                    raise ApiError(400, prefix + "Text buttons are unallowed in the inline keyboard")
                if len(actions) > 1 and self.strict:
                    raise ApiError(
                        400,
                        prefix + f"more than one action field ({', '.join(actions)}) "
                        "(stand-in strictness: Telegram silently uses one of them)",
                    )
                data = button.get("callback_data")
                if data is not None and len(str(data).encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                url = button.get("url")
                if isinstance(url, str) and "://" in url and not url.lower().startswith(_URL_SCHEMES):
                    raise ApiError(
                        400, f"Bad Request: inline keyboard button URL '{url}' is invalid: Unsupported URL protocol"
                    )
        return markup

    def _input_file(self, params: dict[str, Any], files: dict[str, UploadedFile], kind: str) -> StoredFile:
        value = params.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
            if upload is None:
                raise ApiError(400, f"Bad Request: there is no {kind} in the request")
            if not upload.content:
                raise ApiError(400, "Bad Request: file must be non-empty")
            mime = (
                "image/jpeg"
                if kind == "photo"
                else mimetypes.guess_type(upload.filename)[0] or upload.content_type or "application/octet-stream"
            )
            return self.register_file(
                upload.content,
                file_name=upload.filename if kind == "document" else None,
                mime_type=mime,
                origin="bot",
            )
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
            stored = self.register_file(b"", file_name=value.rsplit("/", 1)[-1] or None, origin="bot")
            stored.url = value
            return stored
        if not value:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _store(
        self,
        chat_id: int,
        kind: str,
        text: str,
        html: str,
        params: dict[str, Any],
        entities: list[dict[str, Any]],
        markup: dict[str, Any] | None,
    ) -> BotMessage:
        message_id = self._take_message_id(chat_id)
        message = BotMessage(
            chat_id=chat_id,
            message_id=message_id,
            kind=kind,
            text=text,
            html=html,
            parse_mode=params.get("parse_mode"),
            entities=entities,
            reply_markup=markup,
            date=int(time.time()),
        )
        self._messages.setdefault(chat_id, []).append(message)
        self._by_id[(chat_id, message_id)] = message
        return message

    @staticmethod
    def _apply_edit(
        message: BotMessage, *, text: str, html: str, params: dict[str, Any], entities: list[dict[str, Any]]
    ) -> None:
        message.text = text
        message.html = html
        message.parse_mode = params.get("parse_mode")
        message.entities = entities
        message.edited += 1
        message.edit_date = int(time.time())

    def _take_message_id(self, chat_id: int) -> int:
        """Message ids are sequential per private chat and shared by both sides, as in Telegram."""
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _chat_json(self, chat_id: int) -> dict[str, Any]:
        user = self.users.get(chat_id)
        chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": user["first_name"] if user else "Test"}
        if user and user.get("username"):
            chat["username"] = user["username"]
        return chat

    def _message_json(self, message: BotMessage) -> dict[str, Any]:
        """The Message object Telegram returns for a bot message."""
        body: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self.bot_user,
            "chat": self._chat_json(message.chat_id),
            "date": message.date,
        }
        text_key, entities_key = ("text", "entities") if message.kind == "text" else ("caption", "caption_entities")
        if message.text or message.kind == "text":
            body[text_key] = message.text
        if message.entities:
            body[entities_key] = copy.deepcopy(message.entities)
        if message.file is not None:
            stored = message.file
            if message.kind == "photo":
                body["photo"] = _photo_sizes(stored)
            else:
                document = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
                if stored.file_name:
                    document["file_name"] = stored.file_name
                if stored.mime_type:
                    document["mime_type"] = stored.mime_type
                document["file_size"] = stored.file_size
                body["document"] = document
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            body["reply_markup"] = copy.deepcopy(message.reply_markup)
        if message.edit_date is not None:
            body["edit_date"] = message.edit_date
        return body

    def _user(self, user_id: int) -> dict[str, Any]:
        return self.users.get(user_id) or self.add_user(user_id)

    def _queue_user_message(self, user: dict[str, Any], fields: dict[str, Any]) -> int:
        chat_id = user["id"]
        message_id = self._take_message_id(chat_id)
        message = {
            "message_id": message_id,
            "from": dict(user),
            "chat": self._chat_json(chat_id),
            "date": int(time.time()),
            **fields,
        }
        self._user_messages[(chat_id, message_id)] = message
        self.send_update({"message": message})
        return message_id

    def _queue_member_change(self, chat_id: int, *, old: str, new: str) -> None:
        user = self._user(chat_id)
        bot = {key: self.bot_user[key] for key in ("id", "is_bot", "first_name", "username")}
        new_member: dict[str, Any] = {"status": new, "user": bot}
        if new == "kicked":
            new_member["until_date"] = 0
        old_member: dict[str, Any] = {"status": old, "user": bot}
        if old == "kicked":
            old_member["until_date"] = 0
        self.send_update(
            {
                "my_chat_member": {
                    "chat": self._chat_json(chat_id),
                    "from": user,
                    "date": int(time.time()),
                    "old_chat_member": old_member,
                    "new_chat_member": new_member,
                }
            }
        )


# --------------------------------------------------------------------------------------------------------------------
# Wire helpers
# --------------------------------------------------------------------------------------------------------------------


async def _read_form(request: web.Request) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    """Query string and form/multipart body as strings, with file parts split off."""
    raw: dict[str, str] = dict(request.query)
    files: dict[str, UploadedFile] = {}
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, FileField):
            try:
                content = value.file.read()
            finally:
                value.file.close()
            files[key] = UploadedFile(key, value.filename, value.content_type, content)
        elif isinstance(value, (bytes, bytearray)):
            raw[key] = bytes(value).decode("utf-8", "replace")
        else:
            raw[key] = value
    return raw, files


def _decode_params(raw: dict[str, str]) -> dict[str, Any]:
    """Undo aiogram's encoding: JSON for ints, bools and objects, raw strings for everything else."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _JSON_FIELDS:
            try:
                params[key] = json.loads(value)
            except ValueError:
                raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from None
        elif key in _SCALAR_FIELDS:
            try:
                decoded = json.loads(value)
            except ValueError:
                decoded = value
            params[key] = decoded if isinstance(decoded, (int, bool)) else value
        else:
            params[key] = value
    return params


def _photo_sizes(stored: StoredFile) -> list[dict[str, Any]]:
    return [
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": 1280,
            "height": 960,
            "file_size": stored.file_size,
        }
    ]


def _fake_content(file_name: str) -> bytes:
    lower = file_name.lower()
    if lower.endswith(".pdf"):
        return b"%PDF-1.4\n% stand-in fake document\n%%EOF\n"
    if lower.endswith((".xlsx", ".docx", ".zip")):
        return b"PK\x03\x04 stand-in fake archive"
    return b"stand-in fake file content\n"
