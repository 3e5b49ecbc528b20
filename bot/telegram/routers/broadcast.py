"""Regulators broadcast to the staff in their scope: /broadcast, write, preview, confirm.

The preview names the number of recipients; confirming queues one outbox row per
recipient (bot/services/broadcast.py) and the regulator later gets a delivery report. Buttons carry
the id of the preview they belong to, kept in the conversation state: a forged, repeated
or old press queues nothing, and only regulators reach these handlers at all.

Also here: Telegram's my_chat_member updates, which say when a user blocks the bot
(mark unreachable) or unblocks it (reachable again).
"""

from __future__ import annotations

import html
import secrets
from enum import StrEnum
from typing import Any

import sqlite_utils
from aiogram import F, Router
from aiogram.filters import Command, Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, ChatMemberUpdated, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.services.broadcast import MAX_BROADCAST_LENGTH, audience, compose, create_broadcast
from storage import outbox
from storage.regulators import Regulator


class Broadcast(StatesGroup):
    compose = State()  # waiting for the text to broadcast
    confirm = State()  # preview shown, waiting for send / cancel


class BroadcastAction(StrEnum):
    SEND = "send"
    CANCEL = "cancel"


class BroadcastCb(CallbackData, prefix="b"):
    action: BroadcastAction
    preview: str  # the preview's id, as kept in the conversation state


class IsRegulator(Filter):
    async def __call__(self, event: Any, regulator: Regulator | None = None) -> bool:
        return regulator is not None


def _sender_label(regulator: Regulator, locale: str) -> str:
    return regulator.name or regulator.scope.describe(locale)


async def cmd_broadcast(message: Message, regulator: Regulator, state: FSMContext, locale: str) -> None:
    await state.set_state(Broadcast.compose)
    await state.update_data(broadcast=None)
    await message.answer(
        _(
            "Write the message for all staff in your scope ({scope}). You will see a preview and the number of "
            "recipients before anything is sent. /cancel to stop."
        ).format(scope=html.escape(regulator.scope.describe(locale)))
    )


async def cmd_cancel(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer(_("Broadcast cancelled. Nothing was sent."))


async def on_text(
    message: Message, regulator: Regulator, state: FSMContext, db: sqlite_utils.Database, locale: str
) -> None:
    plain = message.text or ""
    if len(plain) > MAX_BROADCAST_LENGTH:
        await message.answer(
            _("This message is {length} characters long; a broadcast can have at most {limit}. Please shorten it.").format(
                length=len(plain), limit=MAX_BROADCAST_LENGTH
            )
        )
        return
    body = message.html_text  # the regulator's formatting, with every typed character escaped
    reach = audience(db, regulator.scope)
    if reach.total == 0:
        await state.clear()
        await message.answer(
            _("No staff in your scope ({scope}) have joined Zicha yet, so there is nobody to send to.").format(
                scope=html.escape(regulator.scope.describe(locale))
            )
        )
        return
    preview_id = secrets.token_hex(6)
    await state.set_state(Broadcast.confirm)
    await state.update_data(broadcast={"preview": preview_id, "body": body})
    summary = _(
        "<b>Preview</b> — recipients: {total} staff of {institutions} institution(s) in {scope}."
    ).format(total=reach.total, institutions=reach.institutions, scope=html.escape(regulator.scope.describe(locale)))
    if reach.unreachable:
        summary += "\n" + _("{count} of them have blocked the bot and will not receive it.").format(count=reach.unreachable)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("Send to {total}").format(total=reach.total),
                    callback_data=BroadcastCb(action=BroadcastAction.SEND, preview=preview_id).pack(),
                ),
                InlineKeyboardButton(
                    text=_("Cancel"), callback_data=BroadcastCb(action=BroadcastAction.CANCEL, preview=preview_id).pack()
                ),
            ]
        ]
    )
    await message.answer(compose(body, _sender_label(regulator, locale)))
    await message.answer(summary, reply_markup=keyboard)


async def on_not_text(message: Message) -> None:
    await message.answer(_("Please send the broadcast as a text message, or /cancel."))


async def on_button(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    regulator: Regulator,
    state: FSMContext,
    db: sqlite_utils.Database,
    i18n: I18n,
    locale: str,
    callback_answer: CallbackAnswer,
    background: Any = None,
) -> None:
    draft = (await state.get_data()).get("broadcast")
    if not isinstance(draft, dict) or draft.get("preview") != callback_data.preview:
        callback_answer.text = _("This preview is no longer valid. Send /broadcast to start again.")
        return
    await state.clear()  # one confirm per preview, whatever is pressed next
    if callback_data.action is BroadcastAction.CANCEL:
        callback_answer.text = _("Broadcast cancelled. Nothing was sent.")
        if isinstance(query.message, Message):
            await query.message.edit_text(_("Broadcast cancelled. Nothing was sent."))
        return
    batch_id, queued = create_broadcast(
        db,
        i18n,
        scope=regulator.scope,
        body_html=str(draft["body"]),
        sender=_sender_label(regulator, locale),
        created_by=regulator.telegram_id,
        report_chat_id=regulator.telegram_id,
        default_locale=i18n.default_locale,
        dedup=str(draft["preview"]),
    )
    if background is not None:
        background.wake()
    callback_answer.text = _("Queued.")
    text = _("Broadcast #{batch} queued for {count} recipient(s). You will get a delivery report when it is done.").format(
        batch=batch_id, count=queued
    )
    sender = getattr(background, "sender", None)
    quiet = getattr(sender, "quiet", None)
    if quiet is not None and quiet.active(sender.clock()):
        text += "\n" + _("Quiet hours ({hours}): it goes out when they end.").format(hours=quiet.describe())
    if isinstance(query.message, Message):
        await query.message.edit_text(text)


async def on_member_update(event: ChatMemberUpdated, db: sqlite_utils.Database) -> None:
    """A private chat's user blocked (kicked) or unblocked the bot."""
    if event.chat.type != "private":
        return
    status = event.new_chat_member.status
    if status == "kicked":
        outbox.mark_unreachable(db, event.chat.id, "blocked the bot (my_chat_member)")
    elif status == "member":
        outbox.clear_unreachable(db, event.chat.id)


def build_router() -> Router:
    router = Router(name="broadcast")
    router.my_chat_member.register(on_member_update)
    regulators = Router(name="broadcast-regulators")
    regulators.message.filter(IsRegulator())
    regulators.callback_query.filter(IsRegulator())
    regulators.message.register(cmd_broadcast, Command("broadcast"))
    regulators.message.register(cmd_cancel, Command("cancel"), Broadcast.compose)
    regulators.message.register(cmd_cancel, Command("cancel"), Broadcast.confirm)
    regulators.message.register(on_text, Broadcast.compose, F.text & ~F.text.startswith("/"))
    regulators.message.register(on_not_text, Broadcast.compose, ~F.text)
    regulators.callback_query.register(on_button, BroadcastCb.filter())
    router.include_router(regulators)
    return router
