"""Every button press, routed by its callback prefix in one table.

``routes()`` names, for each prefix, the one handler that takes it and the factory its
data must unpack with. Each handler is registered with a ``Route`` filter that admits its
own prefix only, and the "no longer valid" answer (``fallback.on_unknown_button``) with
``Unrouted``, which admits exactly what no route takes (an unknown prefix, or data that
does not unpack: forged). The filters exclude each other, so no press depends on the order
of handlers or routers. A press outside a private chat (on a message in a group) is taken
here too, by ``private.PressOutsidePrivateChat``: it gets the notice to write to the bot
privately and nothing else. So every press is routed in this one router, which the
dispatcher asks first (a press then visits no other router).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Router
from aiogram.enums import ChatType
from aiogram.filters import Filter
from aiogram.types import CallbackQuery
from aiogram.utils.callback_answer import CallbackAnswer

from bot.conversation.engine import Actor, Conversation
from bot.telegram.callbacks import RegulatorJoinCb
from bot.telegram.conversation import BY_PREFIX, CODECS, Action, Codec, EngineContext, deliver
from bot.telegram.routers import fallback, onboarding, private
from storage.db import release_handed


async def on_press(
    query: CallbackQuery, conversation: Conversation, actor: Actor, action: Action, callback_answer: CallbackAnswer
) -> None:
    """Every engine button — answers, statuses, navigation, sections, the pledge's steps,
    the regulator's pages, institutions, staff and broadcasts: the engine decides."""
    outcome = await conversation.handle_off_loop(actor, action)
    # The engine committed the press's transaction (begun with the membership read); should
    # it not have taken it over, it ends here, before anything is sent.
    release_handed(conversation.db)
    await deliver(query, outcome, conversation, actor, callback_answer)


@dataclass(frozen=True)
class Press:
    """The handler of one prefix; ``unpack``: the data to hand it (raises if forged)."""

    handler: Callable[..., Awaitable[Any]]
    unpack: Callable[[str], dict[str, Any]]
    context: tuple[Filter, ...] = ()


def _engine(codec: Codec) -> Callable[[str], dict[str, Any]]:
    return lambda data: {"action": codec.unpack(data)}


def routes() -> dict[str, Press]:
    """Prefix → its one handler. The engine's buttons all go to ``on_press``."""
    anyone = EngineContext(audience="anyone")
    # The engine's first: an answer is the press that happens most (the filters exclude each
    # other, so this order is only about speed).
    table = {codec.prefix: Press(on_press, _engine(codec), (anyone,)) for codec in CODECS}
    # Joining as a regulator also sets the regulator's command menu, a Telegram feature.
    join = BY_PREFIX[RegulatorJoinCb.__prefix__]
    table[join.prefix] = Press(onboarding.on_regulator_join, _engine(join), (anyone,))
    return table


def _in_private_chat(query: CallbackQuery) -> bool:
    return query.message is not None and query.message.chat.type == ChatType.PRIVATE


class Route(Filter):
    """Admits a press with this prefix whose data unpacks, and hands over what it unpacks to."""

    def __init__(self, prefix: str, press: Press) -> None:
        self.prefix = prefix
        self.press = press

    async def __call__(
        self, query: CallbackQuery, decoded_press: tuple[str, Action | None] | None = None
    ) -> bool | dict[str, Any]:
        data = query.data or ""
        if not _in_private_chat(query) or data.split(":", 1)[0] != self.prefix:
            return False
        if decoded_press is not None and decoded_press[0] == data:
            # unpacked already by the membership middleware (``middlewares.decoded_press``;
            # every press here is an engine codec's, as ``decode_data`` unpacks them)
            if decoded_press[1] is None:
                return False
            found: dict[str, Any] = {"action": decoded_press[1]}
        else:
            try:
                found = self.press.unpack(data)
            except (ValueError, TypeError):
                return False
        if "action" in found and query.message is not None:
            found["action"] = found["action"].at(query.message.message_id)
        return found


class Unrouted(Filter):
    """Admits a press (in a private chat) that no route takes."""

    def __init__(self, table: dict[str, Press]) -> None:
        self.table = table

    async def __call__(self, query: CallbackQuery) -> bool:
        if not _in_private_chat(query):
            return False
        data = query.data or ""
        press = self.table.get(data.split(":", 1)[0])
        if press is None:
            return True
        try:
            press.unpack(data)
        except (ValueError, TypeError):
            return True
        return False


def build_router() -> Router:
    router = Router(name="presses")
    table = routes()
    # Outside a private chat: the notice only (every route and Unrouted admit private chats only).
    router.callback_query.register(private.on_group_press, private.PressOutsidePrivateChat())
    for prefix, press in table.items():
        router.callback_query.register(press.handler, Route(prefix, press), *press.context)
    router.callback_query.register(fallback.on_unknown_button, Unrouted(table))
    return router
