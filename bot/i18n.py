"""Translations (gettext catalogs in ``locales/``) and locale-aware formatting (Babel).

Catalogs are compiled ``.mo`` files committed next to their ``.po`` sources; a test
checks they are up to date, so an installed package never needs a build step.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

from aiogram.utils.i18n import I18n
from babel import Locale
from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.numbers import format_decimal

from bot.config import SUPPORTED_LOCALES
from bot.resources import data_dir

DOMAIN = "messages"


def build_i18n(default_locale: str = "zh_CN") -> I18n:
    return I18n(path=data_dir("locales"), default_locale=default_locale, domain=DOMAIN)


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


@functools.cache
def babel_locale(locale: str) -> Locale:
    """Parsed once per locale: Babel re-resolves a locale string on every call (about
    0.1 ms, because it has no zh_CN data file and searches its aliases), which was the
    largest single cost of showing a question."""
    return Locale.parse(locale)


def format_datetime(value: str | dt.datetime, locale: str, tz: zoneinfo.ZoneInfo) -> str:
    """A stored UTC timestamp shown in the deployment's time zone and the user's locale."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return _babel_datetime(moment.astimezone(tz), format="medium", locale=babel_locale(locale))


def format_date(value: dt.date, locale: str) -> str:
    return _babel_date(value, format="long", locale=babel_locale(locale))


def format_number(value: int | float, locale: str) -> str:
    return format_decimal(value, locale=babel_locale(locale))
