"""Every inline button's data, as CallbackData factories (≤ 64 bytes each).

Buttons that change an answer carry the self-check id, the checklist fingerprint and
the revision the user saw, so a forged, foreign or stale press is recognised and
changes nothing.

Every number decoded from callback data is range-checked here, once, for every router:
``Id`` (database ids and revisions, which SQLite stores as signed 64-bit integers) and
``Page``. Data outside the range does not unpack, so the press matches no handler and
gets the fallback router's "no longer valid" notice instead of reaching SQL.
"""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from bot.conversation.actions import NavAction, PledgeAction
from bot.core.interview import Choice, RectStatus

SQLITE_MAX_INT = 2**63 - 1
MAX_PAGE = 10_000

Id = Annotated[int, Field(ge=0, le=SQLITE_MAX_INT)]
"""A database id or a revision from callback data: what SQLite can store, never negative."""
Page = Annotated[int, Field(ge=0, le=MAX_PAGE)]
"""A page number from callback data."""


class AnswerCb(CallbackData, prefix="a"):
    sc: Id
    item: str
    fp: str
    rev: Id
    choice: Choice


class RectCb(CallbackData, prefix="r"):
    sc: Id
    item: str
    fp: str
    rev: Id
    status: RectStatus


class NavCb(CallbackData, prefix="n"):
    action: NavAction
    sc: Id
    item: str = ""
    page: Page = 0


class SectionCb(CallbackData, prefix="s"):
    sc: Id
    section: str


class LangCb(CallbackData, prefix="l"):
    locale: str


class JoinCb(CallbackData, prefix="j"):
    confirm: bool


class PledgeCb(CallbackData, prefix="p"):
    action: PledgeAction
    sc: Id
    sub: Id = 0  # the submission a PDF/revise button is about
    role: str = ""
    h: str = ""  # digest prefix of the previewed content (CONFIRM)


class OverduePageCb(CallbackData, prefix="rgo"):
    page: Page
    campaign: str = ""


class CampaignCb(CallbackData, prefix="cp"):
    """Staff: work on this campaign."""

    campaign: str


class StatusCampaignCb(CallbackData, prefix="rgc"):
    """A regulator: /status of this campaign."""

    campaign: str


__all__ = ["AnswerCb", "CampaignCb", "Id", "JoinCb", "LangCb", "NavAction", "NavCb", "OverduePageCb", "Page", "PledgeAction", "PledgeCb", "RectCb", "SectionCb", "StatusCampaignCb"]
