"""Whatever no other router took: stale or forged buttons, and messages from people who
are not (yet) staff of an institution. Registered last."""

from __future__ import annotations

import logging
from collections import OrderedDict

from aiogram import Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, ErrorEvent, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.conversation.desk_views import regulator_help_text
from bot.conversation.engine import Conversation
from bot.telegram.conversation import actor_of
from bot.telegram.routers.common import not_invited_text
from bot.telegram.routers.interview import show_where
from storage.institutions import Institution
from storage.regulators import Regulator

log = logging.getLogger(__name__)


async def on_unknown_button(
    query: CallbackQuery,
    institution: Institution | None,
    callback_answer: CallbackAnswer,
    regulator: Regulator | None = None,
) -> None:
    if institution is None and regulator is None:
        callback_answer.text = _("Only invited staff can use these buttons. Send /start for help.")
        callback_answer.show_alert = True
    else:
        callback_answer.text = _("This button is no longer valid.")


async def on_other_message(
    message: Message,
    institution: Institution | None,
    state: FSMContext,
    locale: str,
    conversation: Conversation,
    regulator: Regulator | None = None,
) -> None:
    if institution is None and regulator is not None and message.text:
        await message.answer(regulator_help_text())  # a regulator's text that is not a command of theirs
        return
    if institution is None or message.from_user is None:
        await message.answer(not_invited_text())
        return
    await message.answer(_("Here is where you are in the self-check:"))
    await show_where(message, conversation, actor_of(message.from_user, institution, locale, state), again=True)


TOLD_MEMORY = 1000
"""How many failed updates ``on_error`` remembers having told the user about."""


async def on_error(event: ErrorEvent, told: OrderedDict[int, None] | None = None) -> None:
    """An unexpected failure: log it with the update id (no message text: it may be
    personal) and tell the user plainly that what they saved before is safe.

    ``told``: updates already told about. A write the database refused is answered non-2xx
    in webhook mode, so Telegram sends the same update again, maybe many times while the
    disk is read-only: the user is told once, not at every retry."""
    update = event.update
    log.exception("update %s failed: %s", update.update_id, type(event.exception).__name__, exc_info=event.exception)
    if told is not None:
        if update.update_id in told:
            return
        told[update.update_id] = None
        while len(told) > TOLD_MEMORY:
            told.popitem(last=False)
    text = _("Sorry, something went wrong on our side. Your saved answers are safe; please try again or send /start.")
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(text, show_alert=True)
        except Exception:  # noqa: BLE001 - the query may already be answered; the message below still goes out
            log.debug("could not answer callback query %s", update.callback_query.id)
        return
    if update.message is not None:
        await update.message.answer(text)


def build_router() -> Router:
    router = Router(name="fallback")
    # on_unknown_button answers presses nobody takes, from bot.telegram.routers.presses.
    router.message.register(on_other_message)
    told: OrderedDict[int, None] = OrderedDict()

    async def on_error_once(event: ErrorEvent) -> None:
        await on_error(event, told)

    router.errors.register(on_error_once)
    return router
