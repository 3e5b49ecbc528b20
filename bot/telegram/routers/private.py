"""Zicha talks to people one to one. This router is the first to see a message, and takes
every message that is not from a person in a private chat with the bot, so no other router
(staff, regulators, onboarding) ever sees one; button presses are all routed by the press
router (``presses``), which takes a press outside a private chat with ``PressOutsidePrivateChat``
and ``on_group_press`` from here:

* in a group or supergroup, a command (``/start``, ``/progress``…) or a press on a button
  gets a short notice to write to the bot privately, and nothing else: no institution's
  name, USCC, certificate number or progress is ever posted where others read it;
* other group messages, and messages without a sender (``sender_chat`` only: a channel's
  post forwarded into a group, an anonymous admin) are taken and dropped; channel posts are
  not even asked for.
"""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.enums import ChatType
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _


def private_chat_text() -> str:
    return _("Zicha works only in a private chat. Please open a chat with the bot and send /start there.")


class NotFromAPerson(Filter):
    """True for a message Zicha must not act on as a person's: outside a private chat, or
    with no sender (``from``) at all."""

    async def __call__(self, message: Message) -> bool:
        return message.chat.type != ChatType.PRIVATE or message.from_user is None or message.from_user.is_bot


class PressOutsidePrivateChat(Filter):
    """A button on a message outside a private chat (or on an inline message, without one)."""

    async def __call__(self, query: CallbackQuery) -> bool:
        return query.message is None or query.message.chat.type != ChatType.PRIVATE


async def on_group_message(message: Message, **_: Any) -> None:
    text = message.text or message.caption or ""
    if message.from_user is not None and message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP) and text.startswith("/"):
        await message.answer(private_chat_text())


async def on_group_press(query: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    callback_answer.text = private_chat_text()
    callback_answer.show_alert = True


def build_router() -> Router:
    router = Router(name="private-only")
    router.message.register(on_group_message, NotFromAPerson())
    # No handler for channel posts or edits: they are not even asked from Telegram
    # (allowed_updates), and when one comes anyway nobody acts on it.
    return router
