"""Translations (gettext catalogs in ``locales/``) and locale-aware formatting (Babel).

Catalogs are compiled ``.mo`` files committed next to their ``.po`` sources; a test
checks they are up to date, so an installed package never needs a build step.
"""

from __future__ import annotations

from aiogram.utils.i18n import I18n

from bot.config import SUPPORTED_LOCALES
from bot.conversation import text as conversation_text
from bot.core.locales import babel_locale, format_date, format_datetime, format_number
from bot.resources import data_dir

DOMAIN = "messages"


def build_i18n(default_locale: str = "zh_CN") -> I18n:
    i18n = I18n(path=data_dir("locales"), default_locale=default_locale, domain=DOMAIN)
    # The engine's strings outside an engine call (views of other flows use its blocks)
    # follow the locale of aiogram's context, like every other string.
    conversation_text.install(i18n.gettext)
    return i18n


def locale_from_telegram(language_code: str | None, default: str) -> str:
    """Map Telegram's IETF tag (``zh-hans``, ``en-US`` …) to one of our locales."""
    code = (language_code or "").lower()
    if code.startswith("zh"):
        return "zh_CN"
    if code.startswith("en"):
        return "en"
    return default


def normalize_locale(value: str | None, default: str) -> str:
    return value if value in SUPPORTED_LOCALES else default


# Locale-aware formatting lives channel-free in bot.core.locales; re-exported for callers here.

__all__ = ["DOMAIN", "babel_locale", "build_i18n", "format_date", "format_datetime", "format_number", "locale_from_telegram", "normalize_locale"]
