"""Startup failures said in one sentence: what is wrong and what to fix, never a traceback."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)
from aiogram.types import User


class StartupError(RuntimeError):
    """Zicha cannot start; the message is one sentence for the operator."""


async def connect(bot: Bot, api_url: str) -> User:
    """``getMe``, with the usual ways it fails turned into a plain sentence."""
    try:
        return await bot.get_me()
    except (TelegramUnauthorizedError, TelegramNotFound):
        # A token Telegram does not know answers 401 (and 404 from some Bot API servers).
        raise StartupError(
            "Telegram rejected BOT_TOKEN (401 Unauthorized): copy the bot's current token from @BotFather "
            "(/mybots → API Token) into BOT_TOKEN."
        ) from None
    except TelegramNetworkError:
        raise StartupError(
            f"Cannot reach the Telegram Bot API at {api_url}: check this server's network, firewall or proxy, "
            "or TELEGRAM_API_URL."
        ) from None
    except TelegramAPIError as exc:
        raise StartupError(
            f"The Telegram Bot API at {api_url} refused to start the bot ({type(exc).__name__}: {exc.message}); "
            "try again later or check TELEGRAM_API_URL."
        ) from None
