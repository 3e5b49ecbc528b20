"""What a user can do, whatever the channel: plain frozen dataclasses.

Every action that changes an answer carries the self-check id, the checklist fingerprint
and the revision the user saw (the engine refuses a forged, foreign or stale one), and
``origin``: the token of the screen it was taken on (the Telegram message id; a web form's
hidden field), compared with the live screen to recognise presses on old screens.

``to_fields`` / ``from_fields`` give every action a flat ``{name: str}`` form, for HTML
forms and the like; the Telegram adapter packs the same actions into CallbackData.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, ClassVar

from bot.core.interview import Choice, RectStatus


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


class PledgeAction(StrEnum):
    START = "start"  # from the summary: preview and ask for the signer's name
    ROLE = "role"  # the signer's role was chosen
    CONFIRM = "sign"  # the explicit confirmation: sign now
    CANCEL = "cancel"
    PDF = "pdf"  # send the signed PDF again
    REVISE = "rev"  # ask whether to void the signature and revise
    REVISE_OK = "revok"  # yes: void it


@dataclass(frozen=True)
class Action:
    kind: ClassVar[str] = ""
    origin: int | None = None

    def to_fields(self) -> dict[str, str]:
        """The action as flat form fields (``origin`` is left to the form's screen token)."""
        out = {"kind": self.kind}
        for f in fields(self):
            if f.name == "origin":
                continue
            out[f.name] = str(getattr(self, f.name))
        return out

    def at(self, origin: int | None) -> Action:
        """The same action, taken on the screen ``origin``."""
        return replace(self, origin=origin)


@dataclass(frozen=True)
class Choose(Action):
    """Choose ``choice`` on ``item`` of self-check ``sc`` seen at revision ``rev``."""

    kind: ClassVar[str] = "choose"
    sc: int = 0
    item: str = ""
    fp: str = ""
    rev: int = 0
    choice: Choice = Choice.COMPLIANT


@dataclass(frozen=True)
class SetRect(Action):
    """The rectification status of a non-compliant answer."""

    kind: ClassVar[str] = "rect"
    sc: int = 0
    item: str = ""
    fp: str = ""
    rev: int = 0
    status: RectStatus = RectStatus.DONE


@dataclass(frozen=True)
class Pick(Action):
    """Press option number ``option`` (0-based, in the item's list) of a choice item: a
    single choice is saved; a multiple choice toggles it in the selection on screen."""

    kind: ClassVar[str] = "pick"
    sc: int = 0
    item: str = ""
    fp: str = ""
    rev: int = 0
    option: int = 0


@dataclass(frozen=True)
class PickDone(Action):
    """完成 under a multiple choice: save the options selected on screen."""

    kind: ClassVar[str] = "pickdone"
    sc: int = 0
    item: str = ""
    fp: str = ""
    rev: int = 0


@dataclass(frozen=True)
class SameAsLastYear(Action):
    """与去年相同: answer as the institution did in the earlier campaign's same question
    (a fresh answer, with its own history)."""

    kind: ClassVar[str] = "carry"
    sc: int = 0
    item: str = ""
    fp: str = ""
    rev: int = 0


@dataclass(frozen=True)
class Navigate(Action):
    kind: ClassVar[str] = "nav"
    action: NavAction = NavAction.CONTINUE
    sc: int = 0
    item: str = ""
    page: int = 0


@dataclass(frozen=True)
class OpenSection(Action):
    kind: ClassVar[str] = "section"
    sc: int = 0
    section: str = ""


@dataclass(frozen=True)
class TypeText(Action):
    """A typed message: the answer of a text item, or the follow-up being awaited."""

    kind: ClassVar[str] = "text"
    text: str | None = None
    html: str | None = None  # the same text as safe markup with the user's formatting, if the channel has it


@dataclass(frozen=True)
class SendFile(Action):
    """A file sent as evidence (``ref``: the channel's handle to fetch it later)."""

    kind: ClassVar[str] = "file"
    file_kind: str = "document"  # "photo" or "document"
    ref: str = ""
    unique_ref: str = ""
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None


@dataclass(frozen=True)
class ShowEvidence(Action):
    """The evidence files of ``item``: listed, page ``page``, each with a button to remove it."""

    kind: ClassVar[str] = "evidence"
    sc: int = 0
    item: str = ""
    page: int = 0

    @property
    def button_key(self) -> str:
        return f"evidence:{self.page}"


@dataclass(frozen=True)
class RemoveEvidence(Action):
    """Remove evidence file ``ev`` of ``item``: asks first; ``sure``: the confirmation."""

    kind: ClassVar[str] = "unevidence"
    sc: int = 0
    item: str = ""
    ev: int = 0
    sure: bool = False

    @property
    def button_key(self) -> str:
        return f"evidence:{'remove' if self.sure else 'ask'}:{self.ev}"


@dataclass(frozen=True)
class Unsupported(Action):
    """Something the conversation cannot read (a sticker, a voice message...)."""

    kind: ClassVar[str] = "unsupported"


@dataclass(frozen=True)
class Resume(Action):
    """/start and "where am I": the screen the user is on. ``again``: repeat the current item."""

    kind: ClassVar[str] = "resume"
    again: bool = False
    signing: bool = False  # show the signing step the user is on, if any (after /language)


@dataclass(frozen=True)
class ShowProgress(Action):
    kind: ClassVar[str] = "progress"


@dataclass(frozen=True)
class ShowReview(Action):
    kind: ClassVar[str] = "review"


@dataclass(frozen=True)
class ShowPledge(Action):
    """/pledge: the signed state and its PDF, or the way to signing."""

    kind: ClassVar[str] = "pledge_status"


@dataclass(frozen=True)
class ShowCampaigns(Action):
    """/campaign: the campaigns the user's institution may open, to choose one."""

    kind: ClassVar[str] = "campaigns"


@dataclass(frozen=True)
class PickCampaign(Action):
    """Work on campaign ``campaign`` from now on (remembered for the user)."""

    kind: ClassVar[str] = "pick_campaign"
    campaign: str = ""

    @property
    def button_key(self) -> str:
        return f"campaign:{self.campaign}"  # one per campaign on the choice screen


@dataclass(frozen=True)
class DeskAction(Action):
    """What a regulator does on their desk (bot/conversation/desk.py). Every one is checked
    against the regulator's scope as it is now, never trusted from a button: a forged id
    selects only within the scope. (A field common to all of them, such as a campaign id,
    belongs here.)"""


@dataclass(frozen=True)
class ShowStatus(DeskAction):
    """A regulator's /status: the totals of their scope (in ``campaign``; empty: the first
    open campaign of their scope)."""

    kind: ClassVar[str] = "status"
    campaign: str = ""


@dataclass(frozen=True)
class ShowOverdue(DeskAction):
    """A regulator's /overdue, a page of the institutions past the deadline."""

    kind: ClassVar[str] = "overdue"
    page: int = 0
    campaign: str = ""


@dataclass(frozen=True)
class FindInstitution(DeskAction):
    """/institution QUERY: a USCC or part of a name."""

    kind: ClassVar[str] = "find_institution"
    query: str = ""


@dataclass(frozen=True)
class ShowInstitution(DeskAction):
    """One institution in detail (a search result's button)."""

    kind: ClassVar[str] = "institution"
    id: int = 0


@dataclass(frozen=True)
class ShowStaff(DeskAction):
    """The staff bound to an institution, each with a removal button."""

    kind: ClassVar[str] = "staff"
    id: int = 0


@dataclass(frozen=True)
class RemoveStaff(DeskAction):
    """Remove ``member`` from institution ``id``: ``ok=False`` asks first, ``ok=True`` removes."""

    kind: ClassVar[str] = "remove_staff"
    id: int = 0
    member: int = 0
    ok: bool = False


@dataclass(frozen=True)
class RequestExport(DeskAction):
    """/export: the Excel workbook of the scope (made by ``Desk.export``, in a worker thread)."""

    kind: ClassVar[str] = "export"


@dataclass(frozen=True)
class StartBroadcast(DeskAction):
    """/broadcast [CAMPAIGN]: ask for the message to send to every staff member in scope
    (with ``campaign``: only the staff of institutions that campaign covers)."""

    kind: ClassVar[str] = "broadcast"
    campaign: str = ""


@dataclass(frozen=True)
class CancelBroadcast(DeskAction):
    """/cancel while a broadcast is being written or previewed."""

    kind: ClassVar[str] = "broadcast_cancel"


@dataclass(frozen=True)
class DecideBroadcast(DeskAction):
    """Send (``send``) or cancel the broadcast of the preview ``preview``."""

    kind: ClassVar[str] = "broadcast_decide"
    preview: str = ""
    send: bool = False


@dataclass(frozen=True)
class StartSendBack(DeskAction):
    """Send the signed submission ``sub`` of institution ``id`` back for rework (退回整改):
    asks for the reason (the next typed text), then for a confirmation."""

    kind: ClassVar[str] = "send_back"
    id: int = 0
    sub: int = 0


@dataclass(frozen=True)
class DecideSendBack(DeskAction):
    """Send back (``send``) or keep the submission of the send-back preview ``preview``."""

    kind: ClassVar[str] = "send_back_decide"
    preview: str = ""
    send: bool = False


@dataclass(frozen=True)
class ShowSample(DeskAction):
    """/sample: the inspection sample of the regulator's scope in ``campaign`` (empty: the
    first open one), page ``page`` of the institutions drawn; none drawn yet: the way to draw."""

    kind: ClassVar[str] = "sample"
    campaign: str = ""
    page: int = 0


@dataclass(frozen=True)
class DrawSample(DeskAction):
    """Draw the sample of ``campaign`` for the regulator's scope: without ``preview`` asks
    for a confirmation, with the preview's id draws (once)."""

    kind: ClassVar[str] = "sample_draw"
    campaign: str = ""
    preview: str = ""


@dataclass(frozen=True)
class ShowPick(DeskAction):
    """Institution ``id`` of sample ``sample``: its inspection result, and the buttons to record one."""

    kind: ClassVar[str] = "sample_pick"
    sample: int = 0
    id: int = 0


@dataclass(frozen=True)
class RecordResult(DeskAction):
    """Record ``result`` (``bot.core.sampling.InspectionResult``) for institution ``id`` of sample ``sample``."""

    kind: ClassVar[str] = "sample_result"
    sample: int = 0
    id: int = 0
    result: str = ""


@dataclass(frozen=True)
class StartFindings(DeskAction):
    """Ask for the findings (typed next) of institution ``id`` of sample ``sample``."""

    kind: ClassVar[str] = "sample_findings"
    sample: int = 0
    id: int = 0


@dataclass(frozen=True)
class SampleWorkbook(DeskAction):
    """The workbook of sample ``sample``: who was drawn, the results, the figures, the seed."""

    kind: ClassVar[str] = "sample_workbook"
    sample: int = 0


REGULATOR_ACTIONS: tuple[type[DeskAction], ...] = (
    ShowStatus, ShowOverdue, FindInstitution, ShowInstitution, ShowStaff, RemoveStaff, RequestExport,
    StartBroadcast, CancelBroadcast, DecideBroadcast, StartSendBack, DecideSendBack,
    ShowSample, DrawSample, ShowPick, RecordResult, StartFindings, SampleWorkbook,
)  # fmt: skip


@dataclass(frozen=True)
class PledgeStep(Action):
    """A step of signing the pledge (handled by the pledge flow)."""

    kind: ClassVar[str] = "pledge"
    action: PledgeAction = PledgeAction.START
    sc: int = 0
    sub: int = 0
    role: str = ""
    h: str = ""


ALL_ACTIONS: tuple[type[Action], ...] = (Choose, SetRect, Pick, PickDone, SameAsLastYear, Navigate, OpenSection, TypeText, SendFile, ShowEvidence, RemoveEvidence, Unsupported, Resume, ShowProgress, ShowReview, ShowPledge, PledgeStep, ShowCampaigns, PickCampaign, *REGULATOR_ACTIONS)
ACTIONS: dict[str, type[Action]] = {cls.kind: cls for cls in ALL_ACTIONS}


MAX_ID = 2**63 - 1
"""Ids reach SQLite, whose integers are 64-bit: an id beyond is forged."""


def sane_ids(*ids: int) -> bool:
    """Whether every id is one SQLite can hold and a row can have (above 0)."""
    return all(0 < i <= MAX_ID for i in ids)


class BadAction(ValueError):
    """Form fields that do not make an action (forged or truncated)."""


def from_fields(form: dict[str, Any], origin: int | None = None) -> Action:
    """The action named by flat form fields (see ``Action.to_fields``); BadAction otherwise."""
    cls = ACTIONS.get(str(form.get("kind", "")))
    if cls is None:
        raise BadAction("unknown action")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "origin" or f.name not in form:
            continue
        raw = form[f.name]
        default = f.default
        try:
            if isinstance(default, StrEnum):
                values[f.name] = type(default)(raw)
            elif isinstance(default, bool):
                values[f.name] = str(raw).lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                value = int(raw)
                if not 0 <= value <= MAX_ID:
                    raise BadAction(f.name)
                values[f.name] = value
            else:
                values[f.name] = None if raw is None else str(raw)
        except ValueError as exc:
            raise BadAction(f.name) from exc
    return cls(origin=origin, **values)
