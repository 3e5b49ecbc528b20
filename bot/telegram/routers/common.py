"""Commands for everyone: /help, /language, and /start without an invite code."""

from __future__ import annotations

import sqlite_utils
from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import SUPPORTED_LOCALES, Settings
from bot.conversation.engine import Conversation
from bot.core.checklist import Checklist
from bot.telegram import views
from bot.telegram.callbacks import LangCb
from bot.telegram.conversation import actor_of
from bot.telegram.routers.interview import show_where
from bot.telegram.screen import edit_or_send
from storage.institutions import Institution, set_user_language


def not_invited_text() -> str:
    return _(
        "Zicha guides staff of inspection and testing institutions through the annual self-check "
        "required by their market-regulation authority.\n\n"
        "Only invited staff can use it. Please open the invite link your regulator sent you, or send "
        "/start followed by your invite code, for example:\n<code>/start ABCD-EFGH-JKMN-PQRS-TVWX</code>\n\n"
        "If you have no invite, please ask the authority that supervises your institution."
    )


def help_text() -> str:
    return _(
        "<b>How Zicha works</b>\n"
        "Each self-check item is one question. Answer with the buttons: Compliant, Non-compliant "
        "or Not applicable. For a non-compliant item, describe the problem and the rectification. "
        "Every answer is saved at once; you can stop and continue at any time, and colleagues of "
        "your institution see the same answers.\n\n"
        "/start — continue where you left off\n"
        "/progress — how far your institution has got\n"
        "/review — unanswered and non-compliant items; change any answer\n"
        "/pledge — your signed pledge summary (PDF), once signed\n"
        "/language — 中文 / English\n"
        "/help — this message"
    )


async def cmd_start(
    message: Message,
    institution: Institution | None,
    state: FSMContext,
    locale: str,
    conversation: Conversation,
) -> None:
    if institution is None or message.from_user is None:
        await message.answer(not_invited_text())
        return
    await show_where(message, conversation, actor_of(message.from_user, institution, locale, state))


async def cmd_help(message: Message, institution: Institution | None) -> None:
    await message.answer(help_text() if institution is not None else not_invited_text())


async def cmd_language(message: Message) -> None:
    view = views.language_view()
    await message.answer(view.text, reply_markup=view.markup)


async def on_language(
    query: CallbackQuery,
    callback_data: LangCb,
    db: sqlite_utils.Database,
    checklist: Checklist,
    institution: Institution | None,
    state: FSMContext,
    settings: Settings,
    conversation: Conversation,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    """Set the language, then show the screen the user was on again, in that language."""
    locale = callback_data.locale
    if locale not in SUPPORTED_LOCALES:
        callback_answer.text = _("This button is no longer valid.")
        return
    set_user_language(db, query.from_user.id, locale, query.from_user.first_name)
    with i18n.use_locale(locale):
        text = _("Language set to English.") if locale == "en" else _("Language set to Chinese.")
        callback_answer.text = text
        if institution is None:
            await edit_or_send(query, views.View(text + "\n" + _("Send /start to continue.")))
            return
        confirmation = await edit_or_send(query, views.View(text))
        actor = actor_of(query.from_user, institution, locale, state)
        await show_where(confirmation, conversation, actor, again=True, signing=True)


def build_router() -> Router:
    router = Router(name="common")
    router.message.register(cmd_start, CommandStart(deep_link=False))
    router.message.register(cmd_help, Command("help"))
    router.message.register(cmd_language, Command("language"))
    # on_language (LangCb) is routed by bot.telegram.routers.presses.
    return router
