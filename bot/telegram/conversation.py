"""The Telegram channel of the conversation engine (``bot.conversation``).

Decoding: every button of the engine is a CallbackData factory here (``CODECS``), and
``decode`` is the one place a press is routed by its prefix to an engine action.
Rendering: ``deliver`` shows an ``Outcome`` — the notice as the press's answer, messages
before the screen, the screen edited in place for a press (a new message for typed input)
— and then lets the engine keep the state with the shown message's id as the live token.
``EngineContext`` is the filter that hands a handler its ``conversation`` and ``actor``
(aiogram's ``examples/context_addition_from_filter.py``), so no handler builds them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from aiogram.exceptions import ClientDecodeError, TelegramAPIError
from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, User
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.conversation.actions import (
    Action,
    Choose,
    DecideBroadcast,
    DecideSendBack,
    DrawSample,
    Navigate,
    OpenSection,
    Pick,
    PickCampaign,
    PickDone,
    PledgeStep,
    RecordResult,
    RemoveEvidence,
    RemoveStaff,
    SameAsLastYear,
    SampleWorkbook,
    SendFile,
    SetRect,
    ShowEvidence,
    ShowInstitution,
    ShowOverdue,
    ShowPick,
    ShowSample,
    ShowStaff,
    ShowStatus,
    StartFindings,
    StartSendBack,
)
from bot.conversation.engine import Actor, Conversation
from bot.conversation.onboarding import ChooseLanguage, Join, JoinRegulator
from bot.conversation.screens import Attachment, Button, Outcome, Screen
from bot.core.interview import without_controls
from bot.telegram.callbacks import (
    AnswerCb,
    BroadcastAction,
    BroadcastCb,
    CampaignCb,
    CarryCb,
    EvidenceCb,
    EvidenceRemoveCb,
    InstitutionCb,
    JoinCb,
    LangCb,
    NavCb,
    OverduePageCb,
    PickCb,
    PickDoneCb,
    PledgeCb,
    RectCb,
    RegulatorJoinCb,
    SampleCb,
    SampleDrawCb,
    SampleFindingsCb,
    SamplePickCb,
    SampleResultCb,
    SampleWorkbookCb,
    SectionCb,
    SendBackCb,
    SendBackDecideCb,
    StaffCb,
    StaffRemoveCb,
    StatusCampaignCb,
)
from bot.telegram.screen import edit_or_send
from bot.telegram.views import View
from storage.fsm import storage_key_text
from storage.institutions import Institution
from storage.pledges import Submission
from storage.regulators import Regulator

log = logging.getLogger(__name__)


CALLBACK_DATA_LIMIT = 64
"""Telegram's limit on callback data, in bytes (so at most as many characters): longer
data is no button's, whatever it unpacks to."""


class Codec:
    """One engine action and the CallbackData factory its buttons are packed with. The
    fields of both have the same names unless ``to_data`` / ``to_action`` say otherwise."""

    __slots__ = ("action", "factory", "names", "prefix", "to_action", "to_data")

    def __init__(
        self,
        factory: type[CallbackData],
        action: type[Action],
        to_data: Callable[[Any], CallbackData] | None = None,
        to_action: Callable[[Any], Action] | None = None,
    ) -> None:
        self.factory = factory
        self.action = action
        self.to_data = to_data
        self.to_action = to_action
        self.prefix = str(factory.__prefix__)
        self.names = tuple(factory.model_fields)  # read once: pydantic builds this mapping on every access

    def pack(self, action: Action) -> str:
        if self.to_data is not None:
            return str(self.to_data(action).pack())
        return str(self.factory(**{name: getattr(action, name) for name in self.names}).pack())

    def unpack(self, data: str) -> Action:
        """The action of ``data`` (ValueError/TypeError when it does not unpack: forged)."""
        if len(data) > CALLBACK_DATA_LIMIT:
            raise ValueError("callback data longer than Telegram allows")
        unpacked = self.factory.unpack(data)
        if self.to_action is not None:
            return self.to_action(unpacked)
        return self.action(**{name: getattr(unpacked, name) for name in self.names})


def _broadcast_data(a: DecideBroadcast) -> CallbackData:
    return BroadcastCb(action=BroadcastAction.SEND if a.send else BroadcastAction.CANCEL, preview=a.preview)


def _broadcast_action(b: BroadcastCb) -> Action:
    return DecideBroadcast(preview=b.preview, send=b.action is BroadcastAction.SEND)


CODECS = (
    Codec(AnswerCb, Choose),
    Codec(RectCb, SetRect),
    Codec(PickCb, Pick),
    Codec(PickDoneCb, PickDone),
    Codec(CarryCb, SameAsLastYear),
    Codec(NavCb, Navigate),
    Codec(SectionCb, OpenSection),
    Codec(EvidenceCb, ShowEvidence),
    Codec(EvidenceRemoveCb, RemoveEvidence),
    Codec(PledgeCb, PledgeStep),
    Codec(OverduePageCb, ShowOverdue),
    Codec(StatusCampaignCb, ShowStatus),
    Codec(CampaignCb, PickCampaign),
    Codec(InstitutionCb, ShowInstitution),
    Codec(StaffCb, ShowStaff),
    Codec(StaffRemoveCb, RemoveStaff),
    Codec(BroadcastCb, DecideBroadcast, _broadcast_data, _broadcast_action),
    Codec(SendBackCb, StartSendBack),
    Codec(SendBackDecideCb, DecideSendBack),
    Codec(SampleCb, ShowSample),
    Codec(SampleDrawCb, DrawSample),
    Codec(SamplePickCb, ShowPick),
    Codec(SampleResultCb, RecordResult),
    Codec(SampleFindingsCb, StartFindings),
    Codec(SampleWorkbookCb, SampleWorkbook),
    Codec(JoinCb, Join),
    Codec(RegulatorJoinCb, JoinRegulator),
    Codec(LangCb, ChooseLanguage),
)
"""Every button of the engine: the one place an action meets its callback data."""
BY_PREFIX = {codec.prefix: codec for codec in CODECS}
BY_ACTION = {codec.action: codec for codec in CODECS}


def pack(action: Action) -> str:
    """The callback data of an engine action (≤ 64 bytes, checked by aiogram)."""
    return BY_ACTION[type(action)].pack(action)


def decode_data(data: str) -> Action | None:
    """The engine action of callback data, by its prefix; None for data that is not one of
    the engine's or does not unpack (range-checked ids, unknown enums: forged data)."""
    if len(data) > CALLBACK_DATA_LIMIT:  # forged (and not to be kept by ``_decoded``)
        return None
    return _decoded(data)


@functools.lru_cache(maxsize=4096)
def _decoded(data: str) -> Action | None:
    # Kept for the 4,096 data seen last: a pydantic model and a dataclass made on every
    # press were a fortieth of an answer step, and the same data comes back (a question's
    # keyboard is the same for everyone answering it). Actions are frozen, data is short.
    codec = BY_PREFIX.get(data.split(":", 1)[0])
    if codec is None:
        return None
    try:
        return codec.unpack(data)
    except (ValueError, TypeError):
        return None


def decode(query: CallbackQuery) -> Action | None:
    """The engine action of a press, taken on the message it was pressed on."""
    action = decode_data(query.data or "")
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
    if not screen.rows:
        return None
    return _markup(screen.rows)


@functools.lru_cache(maxsize=2048)
def _markup(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup:
    # Keyed by the buttons themselves (frozen: label and action, so the self-check, item,
    # revision, fingerprint and language are all in the key): the keyboard of a question is
    # built once, not as seven pydantic buttons and seven packed callbacks on every press.
    # The markup is only read after this (serialised into each request), never changed.
    # Built directly rather than with InlineKeyboardBuilder: its as_markup() deep-copies
    # every button, which was a sixth of the cost of an answer step.
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=b.label, callback_data=pack(b.action)) for b in row] for row in rows]
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
    screen = outcome.screen
    for attachment in screen.attachments:
        await send_file(event, actor, attachment)
    if not screen.blocks:  # a file with its caption, and nothing else
        conversation.shown(actor, outcome)
        return
    if not outcome.live:  # no token to keep: the state is written before anything is sent
        conversation.shown(actor, outcome)
    shown = view(screen)
    if isinstance(event, CallbackQuery) and not outcome.fresh:
        sent = await edit_or_send(event, shown)
    elif isinstance(event, CallbackQuery):
        bot = event.bot
        assert bot is not None
        sent = await bot.send_message(actor.user_id, shown.text, reply_markup=shown.markup)
    else:
        sent = await event.answer(shown.text, reply_markup=shown.markup)
    if outcome.live:
        conversation.shown(actor, outcome, sent.message_id)
    if outcome.pdf is not None:
        await send_pdf(event, conversation, actor, outcome.pdf)
    if outcome.then is not None:  # a new message below the one just shown
        await deliver(sent, outcome.then, conversation, actor)


async def send_file(event: Message | CallbackQuery, actor: Actor, attachment: Attachment) -> None:
    """A file of the screen (a regulator's workbook), as a document."""
    bot = event.bot
    assert bot is not None
    document = BufferedInputFile(attachment.content, filename=attachment.name)
    await bot.send_document(actor.user_id, document, caption=attachment.caption or None)


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
    # as printed in the signed pledge ("confirmed in Telegram by"): without the controls and
    # bidirectional overrides Telegram allows in names
    name = without_controls(user.full_name) + (f" @{user.username}" if user.username else "")
    first_name = without_controls(user.first_name)
    return Actor(user.id, institution, locale, storage_key_text(state.key), name, regulator, first_name, user.username)


class IsStaff(Filter):
    """Admits updates from users bound to an institution (see MembershipMiddleware)."""

    async def __call__(self, event: Any, institution: Institution | None = None) -> bool:
        return institution is not None


class EngineContext(Filter):
    """Admits the engine's audience — ``"staff"`` (a user bound to an institution, see
    MembershipMiddleware), ``"regulator"`` (a regulator account) or ``"anyone"`` (a person:
    the engine itself refuses what they may not do) — and gives the handler
    ``conversation`` and ``actor`` (aiogram's ``examples/context_addition_from_filter.py``)."""

    def __init__(self, *, audience: str = "staff") -> None:
        if audience not in ("staff", "regulator", "anyone"):
            raise ValueError(audience)
        self.audience = audience

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
        if event_from_user is None:
            return False
        if (self.audience == "staff" and institution is None) or (self.audience == "regulator" and regulator is None):
            return False
        return {"actor": actor_of(event_from_user, institution, locale, state, regulator)}
