"""Putting a view on the user's screen.

Button presses edit the message they came from, so the chat does not fill up with
questions; typed answers get a fresh message below them. For the engine's screens the id
of the message that carries the live answer buttons is kept by the engine
(``Conversation.shown``), so answer buttons on any older message are recognised as stale;
``show`` does the same for the flows still on FSMContext (joining).
"""

from __future__ import annotations

from typing import Any

from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.telegram.views import View

CURRENT_MESSAGE = "msg"


async def edit_or_send(query: CallbackQuery, view: View) -> Message:
    """Edit the message the pressed button belongs to; send a new one if that is impossible
    (message too old, deleted, or not a text message)."""
    message = query.message
    if isinstance(message, Message):
        try:
            edited = await message.edit_text(view.text, reply_markup=view.markup)
        except TelegramBadRequest as exc:
            if "message is not modified" in exc.message:
                return message
            if "message to edit not found" not in exc.message and "can't be edited" not in exc.message:
                raise
        else:
            return edited if isinstance(edited, Message) else message
    assert query.from_user is not None
    bot = query.bot
    assert bot is not None
    return await bot.send_message(query.from_user.id, view.text, reply_markup=view.markup)


async def show(
    event: Message | CallbackQuery,
    view: View,
    state: FSMContext,
    *,
    live: bool = True,
    data: dict[str, Any] | None = None,
) -> Message:
    """Show ``view``: edit in place for a button press, reply for a message. ``live`` marks
    the shown message as the one whose answer buttons are current; ``data`` is stored with
    it in the same write (one commit per screen)."""
    if isinstance(event, CallbackQuery):
        sent = await edit_or_send(event, view)
    else:
        sent = await event.answer(view.text, reply_markup=view.markup)
    changes = dict(data or {})
    if live:
        changes[CURRENT_MESSAGE] = sent.message_id
    if changes:
        await state.update_data(changes)
    return sent
