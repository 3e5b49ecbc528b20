"""How regulators' reports name checklist items: by number and a short text, the way
staff and the signed pledge refer to them ("4. 本机构资质认定证书在有效期内"), never by
the internal id (``lawful-01``).
"""

from __future__ import annotations

import re

from bot.core.checklist import Checklist, Item

# The first clause of an item is its gist: Chinese items state the requirement before
# "；", English ones before ";"; the rest is cut to the width of a column header.
_CLAUSE_END = re.compile(r"[；;。]")
SHORT_LIMIT = {"zh": 24, "en": 60}
# The self-check contact typed by staff in the header items (the roster's contact may be
# someone else). Reports show them when the checklist has these items.
CONTACT_ITEM_IDS = ("header-person", "header-phone")


def clip(text: str, limit: int) -> str:
    """Plain text cut to ``limit`` characters, "…" marking the cut (before escaping): a
    name or a typed text where a message has room for only so much."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_text(text: str, locale: str = "zh_CN") -> str:
    """The first clause of ``text``, cut to a column header's width with "…"."""
    limit = SHORT_LIMIT["zh" if locale.startswith("zh") else "en"]
    text = " ".join(text.split())
    match = _CLAUSE_END.search(text)
    first = text[: match.start()] if match and match.start() > 0 else text.rstrip("。.")
    return clip(first, limit)


def checklist_numbers(checklist: Checklist) -> dict[str, int]:
    """Item id → its number in the checklist (1-based, file order). Staff whose fields
    have every item see the same numbers; field items are numbered after the general ones."""
    return {item.id: n for n, item in enumerate(checklist.items, start=1)}


def item_heading(number: int, item: Item, locale: str = "zh_CN") -> str:
    """"4. 本机构资质认定证书在有效期内"."""
    return f"{number}. {short_text(item.text.get(locale), locale)}"


def confirm_item_ids(checklist: Checklist) -> list[str]:
    """The items where staff confirm the roster's details (a "no" carries a correction)."""
    return [item.id for item in checklist.items if item.kind == "confirm"]
