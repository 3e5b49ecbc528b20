"""Reading updates one at a time, so that one Zicha cannot read does not stop the others.

aiogram parses a whole ``getUpdates`` answer as one ``list[Update]``: a single update its
models reject (say a poll from an older local ``telegram-bot-api`` server, without fields
aiogram 3.31 requires) fails the whole batch; the dispatcher then logs the error, quoting
the answer, and asks for the same batch again, forever. ``ZichaSession`` parses such an
answer update by update instead, skips (and logs, without its content) those it cannot
read, and moves the offset past them so Telegram stops sending them. The webhook server
does the same for the one update of a request (``bot.webhook``).
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import ClientDecodeError
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Update
from aiogram.types.update import UpdateTypeLookupError
from pydantic import ValidationError

log = logging.getLogger("zicha.updates")


def update_kind(raw: Any) -> str | None:
    """The update's type (``message``, ``poll``…), read from its keys: never its content."""
    if not isinstance(raw, dict):
        return type(raw).__name__
    return next((str(key) for key in raw if key != "update_id"), None)


def unreadable_reason(exc: Exception) -> str:
    """Where and why the models rejected an update: field paths and error kinds only, never
    the values (pydantic's own message quotes the input, which may be personal)."""
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors(include_url=False, include_input=False, include_context=False)[:5]:
            where = ".".join(str(part) for part in error.get("loc", ())) or "update"
            parts.append(f"{where}: {error.get('type', 'invalid')}")
        return "; ".join(parts)
    if isinstance(exc, UpdateTypeLookupError):
        return "a type this version does not know"
    return type(exc).__name__


def parse_update(raw: Any, bot: Bot | None = None) -> Update | None:
    """The update, or None (logged with its id, type and the reason) when it cannot be read."""
    try:
        update = Update.model_validate(raw, context={"bot": bot} if bot is not None else {})
        update.event_type  # noqa: B018 - raises for a type this aiogram does not know (a newer Bot API's)
        return update
    except (ValidationError, ValueError, TypeError, UpdateTypeLookupError) as exc:
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        log.warning(
            "update skipped: it cannot be read (%s)",
            unreadable_reason(exc),
            extra={
                "event": "update_skipped",
                "update_id": update_id if isinstance(update_id, int) else None,
                "update_type": update_kind(raw),
                "outcome": "unreadable",
            },
        )
        return None


def _is_get_updates(method: TelegramMethod[Any]) -> bool:
    return isinstance(method, GetUpdates)


class ZichaSession(AiohttpSession):
    """``AiohttpSession`` whose ``getUpdates`` skips the updates it cannot read."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.skipped_up_to = 0
        """The highest update_id skipped as unreadable: the next getUpdates confirms it."""

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        if isinstance(method, GetUpdates) and self.skipped_up_to and (method.offset or 0) <= self.skipped_up_to:
            # The dispatcher moves the offset past the updates it was given; a skipped update
            # at the end of a batch would otherwise be sent again, and skipped again, forever.
            method.offset = self.skipped_up_to + 1
        return await super().make_request(bot, method, timeout)

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        if not _is_get_updates(method):  # (not isinstance here: it would narrow away TelegramType)
            return super().check_response(bot, method, status_code, content)
        try:
            return super().check_response(bot, method, status_code, content)
        except ClientDecodeError as exc:
            if not isinstance(exc.original, ValidationError):
                # Not JSON at all: say so without quoting the body.
                raise ClientDecodeError(exc.message, ValueError("the answer is not JSON"), "<not shown>") from None
            data = exc.data
            if not (isinstance(data, dict) and data.get("ok") is True and isinstance(data.get("result"), list)):
                raise ClientDecodeError(exc.message, ValueError(unreadable_reason(exc.original)), "<not shown>") from None
        updates: list[Update] = []
        for raw in data["result"]:
            update = parse_update(raw, bot)
            if update is not None:
                updates.append(update)
                continue
            update_id = raw.get("update_id") if isinstance(raw, dict) else None
            if isinstance(update_id, int) and update_id > self.skipped_up_to:
                self.skipped_up_to = update_id
        # TelegramType is list[Update] here (the method is GetUpdates); mypy cannot know it
        return Response[list[Update]](ok=True, result=updates)  # type: ignore[return-value]
