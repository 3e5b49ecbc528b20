"""The staff commands of the bot's menu, in both languages (the regulators' are added per
chat by the regulator router)."""

from __future__ import annotations

from aiogram.types import BotCommand
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

BOT_COMMANDS = ("start", "progress", "review", "pledge", "language", "help")


def bot_commands(i18n: I18n, locale: str) -> list[BotCommand]:
    with i18n.context(), i18n.use_locale(locale):
        descriptions = {
            "start": _("Continue the self-check"),
            "progress": _("Show your institution's progress"),
            "review": _("Unanswered and non-compliant items"),
            "pledge": _("Your signed pledge summary (PDF)"),
            "language": _("Language: 中文 / English"),
            "help": _("How Zicha works"),
        }
    return [BotCommand(command=c, description=descriptions[c]) for c in BOT_COMMANDS]


__all__ = ["BOT_COMMANDS", "bot_commands"]
