"""Cross-cutting concerns for every update: the user's language and their institution, one
answer per button press, and a per-user flood limit."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import sqlite_utils
from aiogram import BaseMiddleware, Dispatcher
from aiogram.dispatcher.flags import get_flag
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import CallbackQuery, TelegramObject, Update, User
from aiogram.utils.callback_answer import CallbackAnswer, CallbackAnswerMiddleware
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n.middleware import I18nMiddleware

from bot.conversation.actions import Action, Choose, SetRect
from bot.i18n import locale_from_telegram, normalize_locale
from bot.telegram.conversation import decode_data
from storage.answers import read_ahead_opened
from storage.db import begin_handed, end_handed
from storage.fsm import storage_key_text
from storage.institutions import get_user_language
from storage.readahead import ReadAhead
from storage.regulators import who_is

log = logging.getLogger(__name__)


def user_locale(db: sqlite_utils.Database, user: User, default: str, *, chosen: str | object | None = ...) -> str:
    """The language chosen with /language, else Telegram's, else the deployment's.
    ``chosen``: the stored choice if already read (MembershipMiddleware reads it)."""
    stored = get_user_language(db, user.id) if chosen is ... else chosen
    return normalize_locale(stored if isinstance(stored, str) else None, "") or locale_from_telegram(user.language_code, default)


class UserLanguageMiddleware(I18nMiddleware):
    """The language chosen with /language (kept in the users table, so clearing the
    conversation never forgets it), else Telegram's language, else the deployment's.

    The chosen locale is also put into handler data as ``locale`` for Babel formatting.
    """

    def __init__(self, i18n: I18n) -> None:
        super().__init__(i18n)

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        # I18nMiddleware.__call__, with the two context variables set directly rather than
        # through its two generator context managers (on every update).
        locale = await self.get_locale(event=event, data=data) or self.i18n.default_locale
        if self.i18n_key:
            data[self.i18n_key] = self.i18n
        if self.middleware_key:
            data[self.middleware_key] = self
        current = self.i18n.set_current(self.i18n)
        speaking = self.i18n.ctx_locale.set(locale)
        try:
            return await handler(event, data)
        finally:
            self.i18n.ctx_locale.reset(speaking)
            self.i18n.reset_current(current)

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user: User | None = data.get("event_from_user")
        default = self.i18n.default_locale
        locale = default
        if user is not None:
            locale = user_locale(data["db"], user, default, chosen=data.get("user_language", ...))
        data["locale"] = locale
        return locale


class MembershipMiddleware(BaseMiddleware):
    """Puts who the user is into handler data: ``institution`` (the one they are bound
    to, or None) and ``regulator`` (their regulator account, or None). Routers admit
    updates by these: staff routers need an institution, regulator routers a regulator.

    Both are read from the database for every update and never cached: a member removed
    (``zicha staff remove``, a regulator's button) or a regulator removed is refused from
    their very next update on.

    With ``read_ahead`` (the FSM storage's, and how the FSM middleware keys a conversation:
    ``fsm_key``), the conversation's row is read in the same statement and kept for this
    update only, so the FSM middleware and the engine do not read it again; this middleware
    then runs before the FSM middleware (``order_before_fsm``).

    A member's press on an answer button (one the engine commits in one transaction with its
    state: ``decoded_press``) begins that transaction here (``storage.db.begin_handed``),
    and the self-check the button names is read with the membership, in the same statement,
    for the engine's step: the read the press's write relies on is this one, under the
    write lock, and the engine's transaction takes it over and commits it before anything is
    sent. Nothing is awaited on the network in between (the filters and middlewares below
    decide in memory). A sender who turns out not to be a member ends it at once."""

    def __init__(self, read_ahead: ReadAhead | None = None, fsm_key: Callable[[dict[str, Any]], str | None] | None = None) -> None:
        self.read_ahead = read_ahead if fsm_key is not None else None
        self.fsm_key = fsm_key

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        db: sqlite_utils.Database = data["db"]
        if user is None:
            data["institution"] = data["regulator"] = None
            return await handler(event, data)
        key = self.fsm_key(data) if self.fsm_key is not None and self.read_ahead is not None else None
        ahead = (self.read_ahead, key) if self.read_ahead is not None and key is not None else None
        pressed = decoded_press(event)
        if pressed is not None:
            data[DECODED] = pressed  # for the press's route (``presses.Route``): unpacked once
        selfcheck = pressed[1].sc if pressed is not None and isinstance(pressed[1], Choose | SetRect) else None
        handed = begin_handed(db) if selfcheck is not None else None
        try:
            # one read for the three (and the language middleware's, ``user_language``), the
            # conversation's row, and for an answer press the self-check with its answers
            who = who_is(db, user.id, ahead, selfcheck if handed is not None else None)
            if who.institution is None:  # no staff step will take the transaction over
                end_handed(db, handed)
            data["institution"], data["regulator"], data["user_language"] = who.institution, who.regulator, who.language
            result = await handler(event, data)
        except BaseException:
            end_handed(db, handed, failed=True)
            raise
        finally:
            if ahead is not None:
                ahead[0].forget(ahead[1])
            read_ahead_opened(db, None)
        end_handed(db, handed)  # if the press reached no step of the engine's: only reads were made
        return result


DECODED = "decoded_press"
"""Handler data: (callback data, its engine action or None) of a press in a private chat."""


def decoded_press(event: TelegramObject) -> tuple[str, Action | None] | None:
    """For a press in a private chat: its data and the engine action it unpacks to (None:
    not the engine's, or forged). An answer button's action (``Choose``, ``SetRect``) is what
    ``bot.conversation.engine`` commits in one transaction with its state. None for any
    other update."""
    query = event.callback_query if isinstance(event, Update) else None
    if query is None or query.message is None or query.message.chat.type != ChatType.PRIVATE:
        return None
    data = query.data or ""
    return data, decode_data(data)


def order_before_fsm(dp: Dispatcher, membership: MembershipMiddleware) -> None:
    """Register ``membership`` as an outer update middleware and move aiogram's FSM
    middleware (registered by the Dispatcher itself, before any of ours) after every outer
    middleware registered so far, so the FSM middleware's read of the state finds the row
    the membership lookup read ahead. The FSM context is no outer middleware's concern."""
    dp.update.outer_middleware(membership)
    dp.update.outer_middleware.unregister(dp.fsm)
    dp.update.outer_middleware(dp.fsm)


def fsm_key_of(dp: Dispatcher) -> Callable[[dict[str, Any]], str | None]:
    """The key the FSM middleware gives the conversation of an update (``storage_key_text``)."""

    def key(data: dict[str, Any]) -> str | None:
        bot = data.get("bot")
        context = dp.fsm.resolve_event_context(bot, data) if bot is not None else None
        return storage_key_text(context.key) if context is not None else None

    return key


class OneCallbackAnswer(CallbackAnswerMiddleware):
    """aiogram's ``CallbackAnswerMiddleware`` answers every button press after its handler,
    even when the handler failed, with the handler's (empty) answer; Telegram takes only the
    first answer to a press, so the error handler's alert never reached the user. Here a
    failed handler leaves the answer to the error handler (``fallback.on_error``), which
    answers with the error text: one answer per press, carrying the error when there is one.

    An answer Telegram refuses because the press was already answered or is too old (an
    update Telegram sent again after a failed write) is logged, not raised."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, CallbackQuery):
            return await handler(event, data)
        callback_answer = data["callback_answer"] = self.construct_callback_answer(
            properties=get_flag(data, "callback_answer"),
        )
        if not callback_answer.disabled and callback_answer.answered:
            await self._answer_once(event, callback_answer)
        result = await handler(event, data)  # on an exception: no answer here, the error handler gives it
        if not callback_answer.disabled and not callback_answer.answered:
            await self._answer_once(event, callback_answer)
        return result

    async def _answer_once(self, event: CallbackQuery, callback_answer: CallbackAnswer) -> None:
        try:
            await self.answer(event, callback_answer)
        except TelegramBadRequest as exc:
            log.info("callback query %s not answered: %s", event.id, exc.message)


class UserThrottleMiddleware(BaseMiddleware):
    """One user's flood must not slow down everyone else (issue 12): a token bucket per user
    admits ``rate`` messages and button presses a second with a burst of ``burst``; what is
    beyond that is dropped before any work is done for it. The user is told once per
    ``notice_every`` seconds (a message, or the press's alert), not once per dropped update, and
    nothing is logged per dropped update. Other update types (membership changes...) pass.

    ``setup(dp)`` registers it as an outer middleware on ``dp.update`` (before the database
    lookups) that is active once the dispatcher starts on Telegram (polling or webhook: the
    startup hook); the terminal chat (``zicha chat``) feeds updates without starting it."""

    def __init__(
        self, i18n: I18n, *, rate: float, burst: int, notice_every: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.i18n = i18n
        self.clock = clock  # seconds; tests give a clock that does not run with the machine's load
        self.rate = rate
        self.burst = float(burst)
        self.notice_every = notice_every
        self._buckets: dict[int, tuple[float, float]] = {}  # user id -> (tokens, at)
        self._noticed: dict[int, float] = {}  # user id -> when last told
        self.dropped = 0
        self.active = False

    def setup(self, dp: Dispatcher) -> UserThrottleMiddleware:
        dp.update.outer_middleware(self)
        dp.startup.register(self._activate)
        return self

    async def _activate(self) -> None:
        self.active = True

    def _admit(self, user_id: int, now: float) -> bool:
        tokens, at = self._buckets.get(user_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        admitted = tokens >= 1.0
        self._buckets[user_id] = (tokens - 1.0 if admitted else tokens, now)
        if len(self._buckets) > 10_000:  # forget users whose bucket is full again
            full = (self.burst - 1.0) / self.rate
            self._buckets = {u: b for u, b in self._buckets.items() if now - b[1] < full}
            self._noticed = {u: t for u, t in self._noticed.items() if now - t < self.notice_every}
        return admitted

    @staticmethod
    def _throttled(event: TelegramObject) -> bool:
        """Messages, their edits and button presses; not membership changes and the like."""
        return isinstance(event, Update) and (
            event.message is not None or event.edited_message is not None or event.callback_query is not None
        )

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if not self.active or user is None or not self._throttled(event):
            return await handler(event, data)
        now = self.clock()
        if self._admit(user.id, now):
            return await handler(event, data)
        self.dropped += 1
        if now - self._noticed.get(user.id, -math.inf) >= self.notice_every:
            self._noticed[user.id] = now
            await self._tell(cast(Update, event), user, data)
        return None

    async def _tell(self, update: Update, user: User, data: dict[str, Any]) -> None:
        locale = user_locale(data["db"], user, self.i18n.default_locale)
        with self.i18n.context(), self.i18n.use_locale(locale):
            text = _(
                "You are sending messages faster than I can take them, so I am ignoring some for a moment. "
                "Please wait a few seconds, then go on: what you saved is safe."
            )
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(text, show_alert=True)
            elif update.message is not None:
                await update.message.answer(text, parse_mode=None)
        except TelegramAPIError as exc:  # the user is flooding: a failed notice is not worth a traceback
            log.info("throttle: could not tell user about the limit: %s", type(exc).__name__)
