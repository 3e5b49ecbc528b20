"""Telegram's my_chat_member updates, which say when a user blocks the bot (mark
unreachable) or unblocks it (reachable again), so broadcasts and reminders know.

A regulator's broadcast itself — /broadcast, write, preview, confirm — is the conversation
engine's (``bot.conversation.desk``); its commands and typed text reach it through the
regulator router, its buttons (``BroadcastCb``) through ``bot.telegram.routers.presses``.
"""

from __future__ import annotations

import sqlite_utils
from aiogram import Router
from aiogram.types import ChatMemberUpdated

from bot.telegram.callbacks import BroadcastAction, BroadcastCb
from storage import outbox


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
    return router


__all__ = ["BroadcastAction", "BroadcastCb", "build_router"]
