"""Regulators on Telegram: /status, /overdue, /institution, /export, /sample, /broadcast,
the reason of a send-back for rework and an inspection's findings — decoded
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

import sqlite_utils
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.types import BotCommand, BotCommandScopeChat, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.conversation.actions import (
    CancelBroadcast,
    FindInstitution,
    ShowOverdue,
    ShowSample,
    ShowStatus,
    StartBroadcast,
    TypeText,
    Unsupported,
)
from bot.conversation.desk import BROADCAST_STEPS, FINDINGS, SEND_BACK_STEPS, TYPING_STEPS
from bot.conversation.desk_views import regulator_help_text
from bot.conversation.engine import Actor, Conversation
from bot.telegram.callbacks import InstitutionCb, OverduePageCb, RegulatorJoinCb, StaffCb, StaffRemoveCb
from bot.telegram.commands import bot_commands
from bot.telegram.conversation import EngineContext, deliver
from storage.institutions import get_membership, get_user_language
from storage.regulators import list_regulators

log = logging.getLogger(__name__)

# --- commands in the menu ------------------------------------------------------------

REGULATOR_COMMANDS = ("status", "overdue", "institution", "export", "sample", "verify", "broadcast", "language")


def regulator_commands(i18n: I18n, locale: str) -> list[BotCommand]:
    with i18n.context(), i18n.use_locale(locale):
        descriptions = {
            "status": _("Completion in your scope"),
            "overdue": _("Institutions past the deadline"),
            "institution": _("Look up an institution: USCC or name"),
            "export": _("Excel workbook of your scope"),
            "sample": _("Inspection sample (双随机): draw it, record results"),
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
    await deliver(message, await conversation.handle_off_loop(actor, ShowStatus()), conversation, actor)


async def cmd_overdue(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, await conversation.handle_off_loop(actor, ShowOverdue()), conversation, actor)


async def cmd_institution(message: Message, command: CommandObject, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, FindInstitution(query=command.args or "")), conversation, actor)


async def cmd_export(message: Message, command: CommandObject, conversation: Conversation, actor: Actor) -> None:
    """/export [CAMPAIGN]: the workbook is made in the report worker; "preparing" is shown first."""
    async with aclosing(conversation.desk.export(actor, command.args or "")) as steps:
        async for outcome in steps:
            await deliver(message, outcome, conversation, actor)


async def cmd_broadcast(message: Message, command: CommandObject, conversation: Conversation, actor: Actor) -> None:
    """/broadcast [CAMPAIGN]: everyone in scope, or the staff that campaign covers."""
    action = StartBroadcast(campaign=(command.args or "").strip())
    await deliver(message, conversation.handle(actor, action), conversation, actor)


async def cmd_sample(message: Message, command: CommandObject, conversation: Conversation, actor: Actor) -> None:
    """/sample [CAMPAIGN]: the inspection sample of the regulator's scope."""
    action = ShowSample(campaign=(command.args or "").strip())
    await deliver(message, conversation.handle(actor, action), conversation, actor)


async def cmd_cancel(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, CancelBroadcast()), conversation, actor)


async def on_typed(message: Message, conversation: Conversation, actor: Actor) -> None:
    """A broadcast's text, with the regulator's formatting (``html_text`` escapes every typed
    character), or the reason of a send-back (its plain text)."""
    typed = TypeText(text=message.text, html=message.html_text)
    await deliver(message, conversation.handle(actor, typed), conversation, actor)


async def on_not_typed(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, Unsupported()), conversation, actor)


def build_router() -> Router:
    router = Router(name="regulator")
    desk = EngineContext(audience="regulator")
    router.message.register(cmd_status, Command("status"), desk)
    router.message.register(cmd_overdue, Command("overdue"), desk)
    router.message.register(cmd_institution, Command("institution"), desk)
    router.message.register(cmd_export, Command("export"), desk)
    router.message.register(cmd_broadcast, Command("broadcast"), desk)
    router.message.register(cmd_sample, Command("sample"), desk)
    router.message.register(cmd_cancel, Command("cancel"), StateFilter(*BROADCAST_STEPS, *SEND_BACK_STEPS, FINDINGS), desk)
    # typed text while writing a broadcast or the reason of a send-back
    router.message.register(on_typed, StateFilter(*TYPING_STEPS), F.text & ~F.text.startswith("/"), desk)
    router.message.register(on_not_typed, StateFilter(*TYPING_STEPS), ~F.text, desk)
    # A regulator's other text (with no institution) gets their help from the fallback router.
    router.startup.register(register_all_regulator_commands)
    return router


__all__ = ["InstitutionCb", "OverduePageCb", "RegulatorJoinCb", "StaffCb", "StaffRemoveCb", "build_router", "regulator_help_text"]
