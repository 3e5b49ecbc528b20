"""Cross-cutting concerns for every update: the user's language and their institution."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sqlite_utils
from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n.middleware import I18nMiddleware

from bot.i18n import locale_from_telegram, normalize_locale
from storage.institutions import get_membership, get_user_language
from storage.regulators import get_regulator


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
