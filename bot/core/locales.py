"""Locale-aware formatting with Babel: dates, times and numbers as a reader of the locale
expects them. Channel-free (the conversation engine and the reports use it)."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

from babel import Locale
from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.numbers import format_decimal


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
    return _format_number(type(value).__name__, value, locale)


@functools.lru_cache(maxsize=4096)
def _format_number(kind: str, value: int | float, locale: str) -> str:
    # A question's header formats its position, the total and the percentage on every
    # press (~40 µs each in Babel); the same few numbers recur, so they are formatted once.
    # ``kind`` keeps 1 and 1.0 apart (equal as keys, not always written alike).
    return format_decimal(value, locale=babel_locale(locale))
