"""Staff working through the self-check, on Telegram: every update decoded into an action
of the conversation engine (``bot.conversation``) and its outcome rendered. What is
allowed, what is stale and which screen follows live in the engine, not here.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.types import CallbackQuery, Message

from bot.conversation.actions import Resume, ShowCampaigns, ShowProgress, ShowReview, TypeText, Unsupported
from bot.conversation.engine import TYPED_FOLLOWUP_STEPS, Actor, Conversation
from bot.conversation.state import INTERVIEW_STEPS, QUESTION, SIGN_NAME
from bot.telegram.conversation import EngineContext, deliver, file_of

TEXT = F.text & ~F.text.startswith("/")


async def cmd_progress(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, ShowProgress()), conversation, actor)


async def cmd_review(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, ShowReview()), conversation, actor)


async def cmd_campaign(message: Message, conversation: Conversation, actor: Actor) -> None:
    """/campaign: choose (or switch) the campaign to work on, when several cover the institution."""
    await deliver(message, conversation.handle(actor, ShowCampaigns()), conversation, actor)


async def on_text(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, TypeText(text=message.text)), conversation, actor)


async def on_evidence(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, file_of(message)), conversation, actor)


async def on_unsupported_content(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, Unsupported()), conversation, actor)


async def show_where(
    event: Message | CallbackQuery, conversation: Conversation, actor: Actor, *, again: bool = False, signing: bool = False
) -> None:
    """The screen the user is on (from /start, after joining, for anything unexpected;
    with ``signing``, the signing step they are on, after /language)."""
    await deliver(event, conversation.handle(actor, Resume(again=again, signing=signing)), conversation, actor)


def build_router() -> Router:
    router = Router(name="interview")
    staff = EngineContext()
    router.message.register(cmd_progress, Command("progress"), staff)
    router.message.register(cmd_review, Command("review"), staff)
    # Its buttons are routed with every other press by bot.telegram.routers.presses.
    router.message.register(cmd_campaign, Command("campaign"), staff)
    router.message.register(on_text, StateFilter(*TYPED_FOLLOWUP_STEPS, QUESTION, SIGN_NAME), TEXT, staff)
    router.message.register(on_evidence, StateFilter(*INTERVIEW_STEPS), F.photo | F.document, staff)
    router.message.register(on_unsupported_content, StateFilter(*INTERVIEW_STEPS), ~F.text, staff)
    return router
