"""The Telegram channel of the conversation engine (``bot.conversation``).

Decoding: every button of the engine is a CallbackData factory here (``PACKERS``), and
``decode`` is the one place a press is routed by its prefix to an engine action.
Rendering: ``deliver`` shows an ``Outcome`` — the notice as the press's answer, messages
before the screen, the screen edited in place for a press (a new message for typed input)
— and then lets the engine keep the state with the shown message's id as the live token.
``EngineContext`` is the filter that hands a handler its ``conversation`` and ``actor``
(aiogram's ``examples/context_addition_from_filter.py``), so no handler builds them.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram.exceptions import ClientDecodeError, TelegramAPIError
from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, User
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.conversation.actions import (
    REGULATOR_ACTIONS,
    Action,
    Choose,
    Navigate,
    OpenSection,
    PickCampaign,
    PledgeStep,
    SendFile,
    SetRect,
    ShowOverdue,
    ShowStatus,
)
from bot.conversation.engine import Actor, Conversation
from bot.conversation.screens import Outcome, Screen
from bot.telegram.callbacks import (
    AnswerCb,
    CampaignCb,
    NavCb,
    OverduePageCb,
    PledgeCb,
    RectCb,
    SectionCb,
    StatusCampaignCb,
)
from bot.telegram.screen import edit_or_send
from bot.telegram.views import View
from storage.fsm import storage_key_text
from storage.institutions import Institution
from storage.pledges import Submission
from storage.regulators import Regulator

log = logging.getLogger(__name__)


def _answer(a: Choose) -> CallbackData:
    return AnswerCb(sc=a.sc, item=a.item, fp=a.fp, rev=a.rev, choice=a.choice)


def _rect(a: SetRect) -> CallbackData:
    return RectCb(sc=a.sc, item=a.item, fp=a.fp, rev=a.rev, status=a.status)


def _nav(a: Navigate) -> CallbackData:
    return NavCb(action=a.action, sc=a.sc, item=a.item, page=a.page)


def _section(a: OpenSection) -> CallbackData:
    return SectionCb(sc=a.sc, section=a.section)


def _pledge(a: PledgeStep) -> CallbackData:
    return PledgeCb(action=a.action, sc=a.sc, sub=a.sub, role=a.role, h=a.h)


def _overdue(a: ShowOverdue) -> CallbackData:
    return OverduePageCb(page=a.page, campaign=a.campaign)


def _campaign(a: PickCampaign) -> CallbackData:
    return CampaignCb(campaign=a.campaign)


def _status(a: ShowStatus) -> CallbackData:
    return StatusCampaignCb(campaign=a.campaign)


PACKERS: dict[type[Action], Any] = {
    Choose: _answer, SetRect: _rect, Navigate: _nav, OpenSection: _section, PledgeStep: _pledge, ShowOverdue: _overdue,
    PickCampaign: _campaign, ShowStatus: _status,
}  # fmt: skip


def pack(action: Action) -> str:
    """The callback data of an engine action (≤ 64 bytes, checked by aiogram)."""
    return str(PACKERS[type(action)](action).pack())


def _unpack(data: str) -> Action | None:
    prefix = data.split(":", 1)[0]
    if prefix == AnswerCb.__prefix__:
        a = AnswerCb.unpack(data)
        return Choose(sc=a.sc, item=a.item, fp=a.fp, rev=a.rev, choice=a.choice)
    if prefix == RectCb.__prefix__:
        r = RectCb.unpack(data)
        return SetRect(sc=r.sc, item=r.item, fp=r.fp, rev=r.rev, status=r.status)
    if prefix == NavCb.__prefix__:
        n = NavCb.unpack(data)
        return Navigate(action=n.action, sc=n.sc, item=n.item, page=n.page)
    if prefix == SectionCb.__prefix__:
        s = SectionCb.unpack(data)
        return OpenSection(sc=s.sc, section=s.section)
    if prefix == OverduePageCb.__prefix__:
        o = OverduePageCb.unpack(data)
        return ShowOverdue(page=o.page, campaign=o.campaign)
    if prefix == CampaignCb.__prefix__:
        return PickCampaign(campaign=CampaignCb.unpack(data).campaign)
    if prefix == StatusCampaignCb.__prefix__:
        return ShowStatus(campaign=StatusCampaignCb.unpack(data).campaign)
    if prefix == PledgeCb.__prefix__:
        p = PledgeCb.unpack(data)
        return PledgeStep(action=p.action, sc=p.sc, sub=p.sub, role=p.role, h=p.h)
    return None


def decode(query: CallbackQuery) -> Action | None:
    """The engine action of a press, routed by prefix; None for data that is not one of
    the engine's or does not unpack (range-checked ids, unknown enums: forged data)."""
    try:
        action = _unpack(query.data or "")
    except (ValueError, TypeError):
        return None
    message = query.message
    return action.at(message.message_id) if action is not None and message is not None else action


def file_of(message: Message) -> SendFile:
    """The engine's form of a photo (its largest size) or a document."""
    if message.photo:
        photo = message.photo[-1]
        return SendFile(file_kind="photo", ref=photo.file_id, unique_ref=photo.file_unique_id, mime_type="image/jpeg", file_size=photo.file_size)
    d = message.document
    assert d is not None
    return SendFile(ref=d.file_id, unique_ref=d.file_unique_id, file_name=d.file_name, mime_type=d.mime_type, file_size=d.file_size)


def markup(screen: Screen) -> InlineKeyboardMarkup | None:
    # Built directly rather than with InlineKeyboardBuilder: its as_markup() deep-copies
    # every button, which was a sixth of the cost of an answer step.
    if not screen.rows:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=b.label, callback_data=pack(b.action)) for b in row] for row in screen.rows]
    )


def view(screen: Screen) -> View:
    return View(screen.text, markup(screen))


async def deliver(
    event: Message | CallbackQuery,
    outcome: Outcome,
    conversation: Conversation,
    actor: Actor,
    callback_answer: CallbackAnswer | None = None,
) -> None:
    """Show ``outcome`` on Telegram, then keep the conversation state (one write)."""
    if outcome.notice is not None:
        if isinstance(event, CallbackQuery) and callback_answer is not None:
            callback_answer.text = outcome.notice
            callback_answer.show_alert = outcome.alert
        else:
            outcome.messages.insert(0, outcome.notice)
    target = event.message if isinstance(event, CallbackQuery) else event
    for text in outcome.messages:
        if isinstance(target, Message):
            await target.answer(text)
    if outcome.screen is None:
        if outcome.pdf is not None:
            await send_pdf(event, conversation, actor, outcome.pdf)
        return
    if isinstance(event, CallbackQuery):
        sent = await edit_or_send(event, view(outcome.screen))
    else:
        shown = view(outcome.screen)
        sent = await event.answer(shown.text, reply_markup=shown.markup)
    conversation.shown(actor, outcome, sent.message_id)
    if outcome.pdf is not None:
        await send_pdf(event, conversation, actor, outcome.pdf)


async def send_pdf(event: Message | CallbackQuery, conversation: Conversation, actor: Actor, submission: Submission) -> bool:
    """The signed PDF as a document (made and kept first if needed), or why not."""
    bot = event.bot
    assert bot is not None
    made = await conversation.pledge_pdf(actor, submission)
    if isinstance(made, str):
        await bot.send_message(actor.user_id, made)
        return False
    try:
        await bot.send_document(actor.user_id, BufferedInputFile(made.content, filename=made.name), caption=made.caption)
    except (TelegramAPIError, ClientDecodeError) as exc:  # network trouble; the console chat cannot show files
        log.warning("could not send the pledge PDF of submission %s: %s", submission.id, type(exc).__name__)
        await bot.send_message(actor.user_id, _("The signed PDF is kept with the submission but could not be sent just now. Send /pledge to try again."))
        return False
    return True


def actor_of(
    user: User, institution: Institution | None, locale: str, state: FSMContext, regulator: Regulator | None = None
) -> Actor:
    name = user.full_name + (f" @{user.username}" if user.username else "")
    return Actor(user.id, institution, locale, storage_key_text(state.key), name, regulator)


class IsStaff(Filter):
    """Admits updates from users bound to an institution (see MembershipMiddleware)."""

    async def __call__(self, event: Any, institution: Institution | None = None) -> bool:
        return institution is not None


class EngineContext(Filter):
    """Admits the engine's audience — staff (a user bound to an institution, see
    MembershipMiddleware) or, with ``audience="regulator"``, regulators — and gives the
    handler ``conversation`` and ``actor``; with ``decode_press``, also the press's
    ``action`` if it is one of that audience's (any other press is left to other routers)."""

    def __init__(self, *, audience: str = "staff", decode_press: bool = False) -> None:
        self.regulators = audience == "regulator"
        self.decode_press = decode_press

    async def __call__(
        self,
        event: Message | CallbackQuery,
        conversation: Conversation,
        state: FSMContext,
        locale: str,
        institution: Institution | None = None,
        regulator: Regulator | None = None,
        event_from_user: User | None = None,
    ) -> bool | dict[str, Any]:
        if event_from_user is None or (regulator if self.regulators else institution) is None:
            return False
        found: dict[str, Any] = {"actor": actor_of(event_from_user, institution, locale, state, regulator)}
        if self.decode_press:
            assert isinstance(event, CallbackQuery)
            action = decode(event)
            if action is None or isinstance(action, REGULATOR_ACTIONS) is not self.regulators:
                return False
            found["action"] = action
        return found
