"""Regulators on Telegram: /status, /overdue, /institution, /export, /broadcast — decoded
into the regulator actions of the conversation engine (``bot.conversation.desk``), which
checks every one against the regulator's scope as it is now and decides what follows; the
handlers here only decode and render. Their buttons are routed with every other press by
``bot.telegram.routers.presses``.

Also here: the regulator commands in the menu, and joining as a regulator (``/start CODE``
with a regulator invite, handled by the onboarding router, which calls
``offer_regulator_invite`` and ``on_regulator_join`` here).
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from html import escape

import sqlite_utils
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, Filter, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BotCommand, BotCommandScopeChat, CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.conversation.actions import (
    CancelBroadcast,
    FindInstitution,
    ShowOverdue,
    ShowStatus,
    StartBroadcast,
    TypeText,
    Unsupported,
)
from bot.conversation.desk import BROADCAST_STEPS, COMPOSE
from bot.conversation.desk_views import regulator_help_text
from bot.conversation.engine import Actor, Conversation
from bot.telegram.callbacks import InstitutionCb, OverduePageCb, StaffCb, StaffRemoveCb
from bot.telegram.commands import bot_commands
from bot.telegram.conversation import EngineContext, deliver
from bot.telegram.screen import edit_or_send
from bot.telegram.views import View
from storage.institutions import Institution, get_membership, get_user_language
from storage.regulators import Regulator, RegulatorInvite, list_regulators, redeem_regulator_invite

log = logging.getLogger(__name__)

PENDING_REGULATOR_CODE = "regjoin"


class RegulatorJoinCb(CallbackData, prefix="rgj"):
    confirm: bool


class RegulatorJoin(StatesGroup):
    confirm = State()


class IsRegulatorOnly(Filter):
    """A regulator who is not also staff of an institution (their /start and /help are ours)."""

    async def __call__(
        self, event: TelegramObject, regulator: Regulator | None = None, institution: Institution | None = None
    ) -> bool:
        return regulator is not None and institution is None


# --- commands in the menu ------------------------------------------------------------

REGULATOR_COMMANDS = ("status", "overdue", "institution", "export", "verify", "broadcast", "language")


def regulator_commands(i18n: I18n, locale: str) -> list[BotCommand]:
    with i18n.context(), i18n.use_locale(locale):
        descriptions = {
            "status": _("Completion in your scope"),
            "overdue": _("Institutions past the deadline"),
            "institution": _("Look up an institution: USCC or name"),
            "export": _("Excel workbook of your scope"),
            "verify": _("Check a signed pledge by its verification code"),
            "broadcast": _("Message every institution in your scope"),
            "language": _("Language: 中文 / English"),
        }
    return [BotCommand(command=c, description=descriptions[c]) for c in REGULATOR_COMMANDS]


async def set_regulator_commands(
    bot: Bot, i18n: I18n, chat_id: int, locale: str, *, also_staff: bool = False
) -> None:
    """The regulator commands in this regulator's own menu (a per-chat command scope, so
    staff never see them; a regulator who is also staff keeps the staff commands too).
    Best effort: the menu is a convenience."""
    commands = regulator_commands(i18n, locale)
    if also_staff:
        names = {c.command for c in commands}
        commands = [c for c in bot_commands(i18n, locale) if c.command not in names] + commands
    try:
        await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id=chat_id))
    except TelegramAPIError as exc:
        log.warning("could not set the regulator commands for chat %s: %s", chat_id, type(exc).__name__)


async def register_all_regulator_commands(bot: Bot, db: sqlite_utils.Database, i18n: I18n) -> None:
    """At start: every regulator (also those added with ``zicha regulator add``) gets the menu."""
    for regulator in list_regulators(db):
        locale = get_user_language(db, regulator.telegram_id) or i18n.default_locale
        also_staff = get_membership(db, regulator.telegram_id) is not None
        await set_regulator_commands(bot, i18n, regulator.telegram_id, locale, also_staff=also_staff)


# --- handlers: decode, then render what the engine decides ------------------------------------


async def cmd_status(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, ShowStatus()), conversation, actor)


async def cmd_overdue(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, ShowOverdue()), conversation, actor)


async def cmd_institution(message: Message, command: CommandObject, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, FindInstitution(query=command.args or "")), conversation, actor)


async def cmd_export(message: Message, conversation: Conversation, actor: Actor) -> None:
    """The workbook is made in a worker thread; "preparing" is shown first."""
    async with aclosing(conversation.desk.export(actor)) as steps:
        async for outcome in steps:
            await deliver(message, outcome, conversation, actor)


async def cmd_broadcast(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, StartBroadcast()), conversation, actor)


async def cmd_cancel(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, CancelBroadcast()), conversation, actor)


async def on_broadcast_text(message: Message, conversation: Conversation, actor: Actor) -> None:
    """The broadcast's text, with the regulator's formatting (``html_text`` escapes every typed character)."""
    typed = TypeText(text=message.text, html=message.html_text)
    await deliver(message, conversation.handle(actor, typed), conversation, actor)


async def on_broadcast_not_text(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, Unsupported()), conversation, actor)


async def on_regulator_text(message: Message) -> None:
    """A regulator with no institution sent /start or /help."""
    await message.answer(regulator_help_text())


# --- joining as a regulator (called from the onboarding router) --------------------------


def regulator_invite_view(invite: RegulatorInvite, locale: str) -> View:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Yes, I am this regulator"), callback_data=RegulatorJoinCb(confirm=True))
    builder.button(text=_("No"), callback_data=RegulatorJoinCb(confirm=False))
    markup: InlineKeyboardMarkup = builder.as_markup()
    text = _(
        "This is a <b>regulator</b> invite. It gives access to the self-check status of the institutions in:\n"
        "<b>{scope}</b>\n\nAccept it only if you work for this authority."
    ).format(scope=escape(invite.scope.describe(locale)))
    return View(text, markup)


async def offer_regulator_invite(message: Message, invite: RegulatorInvite, state: FSMContext, locale: str) -> None:
    await state.set_state(RegulatorJoin.confirm)
    await state.update_data({PENDING_REGULATOR_CODE: invite.code})
    view = regulator_invite_view(invite, locale)
    await message.answer(view.text, reply_markup=view.markup)


async def on_regulator_join(
    query: CallbackQuery,
    callback_data: RegulatorJoinCb,
    db: sqlite_utils.Database,
    state: FSMContext,
    i18n: I18n,
    locale: str,
    callback_answer: CallbackAnswer,
) -> None:
    code = (await state.get_data()).get(PENDING_REGULATOR_CODE)
    if await state.get_state() != RegulatorJoin.confirm.state or not isinstance(code, str):
        callback_answer.text = _("This button is no longer valid.")
        return
    await state.update_data({PENDING_REGULATOR_CODE: None})
    await state.set_state(None)
    if not callback_data.confirm:
        await edit_or_send(query, View(_("Nothing was changed.")))
        return
    regulator = redeem_regulator_invite(db, code, query.from_user.id)
    if regulator is None:
        await edit_or_send(query, View(_("This invite can no longer be used. Please ask for a new one.")))
        return
    callback_answer.text = _("Welcome!")
    await edit_or_send(
        query,
        View(
            _("You are now a regulator for {scope}.").format(scope=escape(regulator.scope.describe(locale)))
            + "\n\n"
            + regulator_help_text()
        ),
    )
    assert query.bot is not None
    also_staff = get_membership(db, query.from_user.id) is not None
    await set_regulator_commands(query.bot, i18n, query.from_user.id, locale, also_staff=also_staff)


def build_router() -> Router:
    router = Router(name="regulator")
    desk = EngineContext(audience="regulator")
    router.message.register(cmd_status, Command("status"), desk)
    router.message.register(cmd_overdue, Command("overdue"), desk)
    router.message.register(cmd_institution, Command("institution"), desk)
    router.message.register(cmd_export, Command("export"), desk)
    router.message.register(cmd_broadcast, Command("broadcast"), desk)
    router.message.register(cmd_cancel, Command("cancel"), StateFilter(*BROADCAST_STEPS), desk)
    router.message.register(on_broadcast_text, StateFilter(COMPOSE), F.text & ~F.text.startswith("/"), desk)
    router.message.register(on_broadcast_not_text, StateFilter(COMPOSE), ~F.text, desk)
    # A regulator's other text (with no institution) gets their help from the fallback router.
    router.startup.register(register_all_regulator_commands)
    return router


__all__ = ["InstitutionCb", "OverduePageCb", "RegulatorJoinCb", "StaffCb", "StaffRemoveCb", "build_router", "regulator_help_text"]
