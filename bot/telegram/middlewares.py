"""Cross-cutting concerns for every update: the user's language and their institution."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import logging
from typing import Any

import sqlite_utils
from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, TelegramObject, User
from aiogram.utils.callback_answer import CallbackAnswer, CallbackAnswerMiddleware
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n.middleware import I18nMiddleware

from bot.i18n import locale_from_telegram, normalize_locale
from storage.institutions import get_membership, get_user_language
from storage.regulators import get_regulator

log = logging.getLogger(__name__)


class UserLanguageMiddleware(I18nMiddleware):
    """The language chosen with /language (kept in the users table, so clearing the
    conversation never forgets it), else Telegram's language, else the deployment's.

    The chosen locale is also put into handler data as ``locale`` for Babel formatting.
    """

    def __init__(self, i18n: I18n) -> None:
        super().__init__(i18n)

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user: User | None = data.get("event_from_user")
        default = self.i18n.default_locale
        locale = default
        if user is not None:
            db: sqlite_utils.Database = data["db"]
            chosen = get_user_language(db, user.id)
            locale = normalize_locale(chosen, "") or locale_from_telegram(user.language_code, default)
        data["locale"] = locale
        return locale


class MembershipMiddleware(BaseMiddleware):
    """Puts who the user is into handler data: ``institution`` (the one they are bound
    to, or None) and ``regulator`` (their regulator account, or None). Routers admit
    updates by these: staff routers need an institution, regulator routers a regulator.

    Both are read from the database for every update and never cached: a member removed
    (``zicha staff remove``, a regulator's button) or a regulator removed is refused from
    their very next update on."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        db: sqlite_utils.Database = data["db"]
        data["institution"] = get_membership(db, user.id) if user is not None else None
        data["regulator"] = get_regulator(db, user.id) if user is not None else None
        return await handler(event, data)


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
