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

from enum import StrEnum
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from bot.conversation.actions import NavAction, PledgeAction
from bot.core.interview import Choice, RectStatus

SQLITE_MAX_INT = 2**63 - 1
MAX_PAGE = 10_000

Id = Annotated[int, Field(ge=0, le=SQLITE_MAX_INT)]
"""A database id or a revision from callback data: what SQLite can store, never negative."""
PersonId = Annotated[int, Field(ge=-SQLITE_MAX_INT, le=SQLITE_MAX_INT)]
"""A person's id from callback data: a Telegram user's (positive) or a web person's
(negative, ``storage.web``)."""
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


class PickCb(CallbackData, prefix="o"):
    """An option of a choice item, by its number in the item's list (option ids can be
    as long as item ids; the number keeps the data within 64 bytes)."""

    sc: Id
    item: str
    fp: str
    rev: Id
    option: Page


class PickDoneCb(CallbackData, prefix="od"):
    sc: Id
    item: str
    fp: str
    rev: Id


class CarryCb(CallbackData, prefix="y"):
    """与去年相同."""

    sc: Id
    item: str
    fp: str
    rev: Id


class NavCb(CallbackData, prefix="n"):
    action: NavAction
    sc: Id
    item: str = ""
    page: Page = 0


class EvidenceCb(CallbackData, prefix="e"):
    """The evidence files of an item, a page of them."""

    sc: Id
    item: str
    page: Page = 0


class EvidenceRemoveCb(CallbackData, prefix="ex"):
    """Remove evidence file ``ev``: asks first; ``sure``: the confirmation."""

    sc: Id
    item: str
    ev: Id
    sure: bool = False


class SectionCb(CallbackData, prefix="s"):
    sc: Id
    section: str


class LangCb(CallbackData, prefix="l"):
    locale: str


class JoinCb(CallbackData, prefix="j"):
    confirm: bool


class RegulatorJoinCb(CallbackData, prefix="rgj"):
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


class InstitutionCb(CallbackData, prefix="rgi"):
    """One institution in detail (re-checked against the regulator's scope)."""

    id: Id


class StaffCb(CallbackData, prefix="rgs"):
    """Show the staff of an institution (re-checked against the regulator's scope)."""

    id: Id


class StaffRemoveCb(CallbackData, prefix="rgr"):
    """Remove one staff member: ``ok=False`` asks for confirmation, ``ok=True`` removes."""

    id: Id
    member: PersonId
    ok: bool = False


class SendBackCb(CallbackData, prefix="rgb"):
    """Send a signed submission back for rework: asks for the reason (re-checked against
    the regulator's scope and the submission being current)."""

    id: Id
    sub: Id


class SendBackDecideCb(CallbackData, prefix="rgk"):
    """Confirm (``send``) or call off the send-back of the preview ``preview``."""

    preview: str
    send: bool = False


class SampleCb(CallbackData, prefix="rsm"):
    """A page of the inspection sample of a campaign (the regulator's scope)."""

    campaign: str = ""
    page: Page = 0


class SampleDrawCb(CallbackData, prefix="rsd"):
    """Draw the sample: without ``preview`` asks first, with the preview's id draws."""

    campaign: str = ""
    preview: str = ""


class SamplePickCb(CallbackData, prefix="rsp"):
    """One institution of a sample (re-checked against the regulator's scope and the sample)."""

    sample: Id
    id: Id


class SampleResultCb(CallbackData, prefix="rsr"):
    """Record an inspection result (``bot.core.sampling.InspectionResult``'s value)."""

    sample: Id
    id: Id
    result: str


class SampleFindingsCb(CallbackData, prefix="rsf"):
    """Type the findings of one institution of a sample."""

    sample: Id
    id: Id


class SampleWorkbookCb(CallbackData, prefix="rsx"):
    """The workbook of a sample."""

    sample: Id


class BroadcastAction(StrEnum):
    SEND = "send"
    CANCEL = "cancel"


class BroadcastCb(CallbackData, prefix="b"):
    action: BroadcastAction
    preview: str  # the preview's id, as kept in the conversation state


class CampaignCb(CallbackData, prefix="cp"):
    """Staff: work on this campaign."""

    campaign: str


class StatusCampaignCb(CallbackData, prefix="rgc"):
    """A regulator: /status of this campaign."""

    campaign: str


__all__ = [
    "AnswerCb", "BroadcastAction", "BroadcastCb", "CampaignCb", "CarryCb", "Id", "InstitutionCb", "JoinCb", "LangCb", "NavAction",
    "NavCb", "OverduePageCb", "Page", "PickCb", "PickDoneCb", "PledgeAction", "PledgeCb", "RectCb", "RegulatorJoinCb",
    "SampleCb", "SampleDrawCb", "SampleFindingsCb", "SamplePickCb", "SampleResultCb", "SampleWorkbookCb",
    "SectionCb", "SendBackCb", "SendBackDecideCb", "StaffCb", "StaffRemoveCb", "StatusCampaignCb",
]
