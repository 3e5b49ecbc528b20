"""Joining as a regulator on Telegram: the confirmation of a regulator invite, then the
regulator's own command menu (a Telegram feature). The invite itself — ``/start CODE``,
staff or regulator — is read by the engine (``bot.conversation.onboarding``) through the
common router's /start.
"""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import CallbackQuery
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n

from bot.conversation.engine import Actor, Conversation
from bot.conversation.onboarding import JoinRegulator, invite_problem_text
from bot.telegram.conversation import deliver
from bot.telegram.routers.regulator import set_regulator_commands
from storage.regulators import get_regulator

__all__ = ["build_router", "invite_problem_text"]


async def on_regulator_join(
    query: CallbackQuery,
    bot: Bot,
    i18n: I18n,
    conversation: Conversation,
    actor: Actor,
    action: JoinRegulator,
    callback_answer: CallbackAnswer,
) -> None:
    """The engine joins them; Telegram then shows the regulator's own command menu."""
    await deliver(query, conversation.handle(actor, action), conversation, actor, callback_answer)
    if action.confirm and get_regulator(conversation.db, actor.user_id) is not None:
        also_staff = actor.institution is not None
        await set_regulator_commands(bot, i18n, actor.user_id, actor.locale, also_staff=also_staff)


def build_router() -> Router:
    router = Router(name="onboarding")
    # on_regulator_join (RegulatorJoinCb) is routed by bot.telegram.routers.presses.
    return router
