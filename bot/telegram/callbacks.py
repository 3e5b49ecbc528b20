"""Every inline button's data, as CallbackData factories (≤ 64 bytes each).

Buttons that change an answer carry the self-check id, the checklist fingerprint and
the revision the user saw, so a forged, foreign or stale press is recognised and
changes nothing.
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData

from bot.core.interview import Choice, RectStatus


class AnswerCb(CallbackData, prefix="a"):
    sc: int
    item: str
    fp: str
    rev: int
    choice: Choice


class RectCb(CallbackData, prefix="r"):
    sc: int
    item: str
    fp: str
    rev: int
    status: RectStatus


class NavAction(StrEnum):
    OPEN = "open"  # show an item (from the contents, review or a reminder)
    PREV = "prev"
    SKIP = "skip"
    GUIDE = "guide"  # show or hide the guidance of the item
    TOC = "toc"
    REVIEW = "review"
    SUMMARY = "summary"
    CONTINUE = "cont"  # go to the next open item
    KEEP = "keep"  # while editing follow-ups: keep the current value, go to the next step


class NavCb(CallbackData, prefix="n"):
    action: NavAction
    sc: int
    item: str = ""
    page: int = 0


class SectionCb(CallbackData, prefix="s"):
    sc: int
    section: str


class LangCb(CallbackData, prefix="l"):
    locale: str


class JoinCb(CallbackData, prefix="j"):
    confirm: bool
