"""What the user sees of the flows outside the conversation engine (joining, the language
choice) and the Telegram form of a screen (``View``: HTML text and its inline keyboard).

The interview's screens and the pure text helpers live in ``bot.conversation.render``;
they are re-exported here for the other Telegram flows. Every piece of data is escaped
with ``html.escape`` before it is placed in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.conversation.render import (
    MAX_LIST_CHARS,
    REVIEW_PAGE_SIZE,
    answer_block,
    choice_label,
    correction_recorded_text,
    example_date,
    institution_block,
    invalid_input_text,
    level_label,
    megabytes,
    progress_bar,
    rect_label,
    upload_refused_text,
)
from bot.telegram.callbacks import JoinCb, LangCb
from storage.institutions import Institution


@dataclass(frozen=True)
class View:
    text: str
    markup: InlineKeyboardMarkup | None = None


def join_view(institution: Institution, locale: str) -> View:
    text = (
        _("This invite is for the following institution:")
        + "\n\n"
        + institution_block(institution, locale)
        + "\n\n"
        + _("Do you work for this institution and will you answer its self-check on its behalf?")
    )
    kb = InlineKeyboardBuilder()
    kb.button(text=_("Yes, that is my institution"), callback_data=JoinCb(confirm=True))
    kb.button(text=_("No"), callback_data=JoinCb(confirm=False))
    kb.adjust(1)
    return View(text, kb.as_markup())


def language_view() -> View:
    kb = InlineKeyboardBuilder()
    kb.button(text="中文", callback_data=LangCb(locale="zh_CN"))
    kb.button(text="English", callback_data=LangCb(locale="en"))
    return View(_("Choose your language:"), kb.as_markup())


__all__ = [
    "MAX_LIST_CHARS", "REVIEW_PAGE_SIZE", "View", "answer_block", "choice_label", "correction_recorded_text", "escape",
    "example_date", "institution_block", "invalid_input_text", "join_view", "language_view", "level_label", "megabytes",
    "progress_bar", "rect_label", "upload_refused_text",
]
