"""The Telegram form of a screen (``View``: HTML text and its inline keyboard). Joining and
the language choice are the engine's screens (``bot.conversation.onboarding``).

The interview's screens and the pure text helpers live in ``bot.conversation.render``;
they are re-exported here for the other Telegram flows. Every piece of data is escaped
with ``html.escape`` before it is placed in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from aiogram.types import InlineKeyboardMarkup

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


@dataclass(frozen=True)
class View:
    text: str
    markup: InlineKeyboardMarkup | None = None


__all__ = [
    "MAX_LIST_CHARS", "REVIEW_PAGE_SIZE", "View", "answer_block", "choice_label", "correction_recorded_text", "escape",
    "example_date", "institution_block", "invalid_input_text", "level_label", "megabytes",
    "progress_bar", "rect_label", "upload_refused_text",
]
