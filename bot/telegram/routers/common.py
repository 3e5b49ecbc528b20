"""Commands for everyone: /start (with or without an invite code), /help, /language.

What they do — who may use Zicha, joining, the language — is the conversation engine's
(``bot.conversation.onboarding``); here they are decoded and the outcome rendered.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message

from bot.conversation.engine import Actor, Conversation
from bot.conversation.onboarding import AskLanguage, ShowHelp, Start, help_text, not_invited_text
from bot.telegram.conversation import EngineContext, deliver

__all__ = ["build_router", "help_text", "not_invited_text"]


async def cmd_start(message: Message, command: CommandObject, conversation: Conversation, actor: Actor) -> None:
    """/start: where the user is; /start CODE: the invite's institution, to confirm."""
    await deliver(message, conversation.handle(actor, Start(code=command.args)), conversation, actor)


async def cmd_help(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, ShowHelp()), conversation, actor)


async def cmd_language(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, AskLanguage()), conversation, actor)


def build_router() -> Router:
    router = Router(name="common")
    anyone = EngineContext(audience="anyone")
    router.message.register(cmd_start, CommandStart(), anyone)
    router.message.register(cmd_help, Command("help"), anyone)
    router.message.register(cmd_language, Command("language"), anyone)
    # The language buttons and the staff invite's confirmation are routed by bot.telegram.routers.presses.
    return router
