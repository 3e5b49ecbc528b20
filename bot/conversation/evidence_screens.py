"""The evidence files of an item: the list (who sent what, when) with a button to remove
each, and the question before one is removed. Computed from the rows they show.

A file is removed when it was sent by mistake (the wrong photo, a page with personal
data): the record of it is kept (``evidence_removed``), its bytes kept on the web are not.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from html import escape
from typing import Any

from bot.conversation.actions import NavAction, Navigate, RemoveEvidence, ShowEvidence
from bot.conversation.render import Facts, header, megabytes
from bot.conversation.screens import Button, EvidenceFile, Screen
from bot.conversation.text import _
from bot.core.checklist import Item
from bot.core.locales import format_datetime, format_number
from bot.reports.items import clip

PAGE_SIZE = 10  # files listed (and remove buttons) per page: five to a row
NAME_SHOWN = 60  # characters of a file's name shown in the list


def file_label(row: dict[str, Any]) -> str:
    """The file's name as sent, or what it is: a photo has no name."""
    if row["kind"] == "photo" or not (row["file_name"] or "").strip():
        return _("Photo") if row["kind"] == "photo" else _("Document")
    return clip(" ".join(str(row["file_name"]).split()), NAME_SHOWN)


def size_text(size: int | None, locale: str) -> str:
    if size is None or size < 0:
        return ""
    if size < 1024 * 1024:
        return format_number(max(1, round(size / 1024)), locale) + " KB"
    return megabytes(size, locale)


def _line(number: int, row: dict[str, Any], names: dict[int, str], locale: str, tz: zoneinfo.ZoneInfo) -> str:
    icon = "🖼" if row["kind"] == "photo" else "📄"
    parts = [f"{format_number(number, locale)}. {icon} {escape(file_label(row))}"]
    size = size_text(row["file_size"], locale)
    if size:
        parts.append(size)
    who = names.get(int(row["uploaded_by"]))
    parts.append(escape(clip(who, 30)) if who else _("a former member"))
    parts.append(format_datetime(row["uploaded_at"], locale, tz))
    return " · ".join(parts)


def pages(count: int) -> int:
    return max(1, -(-count // PAGE_SIZE))


def evidence_screen(
    f: Facts, item: Item, rows: Sequence[dict[str, Any]], names: dict[int, str], page: int, tz: zoneinfo.ZoneInfo,
    *, can_remove: bool, why_not: str = "", answer_file: bool = False,
) -> Screen:  # fmt: skip
    """Page ``page`` of the item's files, numbered in the order sent. ``names``: who sent
    them, by user id; ``can_remove``: the self-check may be changed (else ``why_not``);
    ``answer_file``: the files are an attachment item's answer, whose only file stays."""
    if can_remove and answer_file and len(rows) == 1:
        can_remove, why_not = False, _("This file is the item's answer. To replace it, send the right file from the question.")
    locale, sc = f.locale, f.sc
    page = min(max(page, 0), pages(len(rows)) - 1)
    shown = list(enumerate(rows, 1))[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    parts = [
        "📎 <b>" + _("Evidence files · {item}").format(item=header(f, item)) + "</b>",
        escape(clip(item.text.get(locale), 200)),
        "",
    ]
    if not rows:
        parts.append(_("This item has no evidence files."))
    else:
        parts.append(_("{count} file(s):").format(count=format_number(len(rows), locale)))
        parts += [_line(n, row, names, locale, tz) for n, row in shown]
        if len(rows) > PAGE_SIZE:
            parts.append(
                _("Page {page} of {pages}").format(page=format_number(page + 1, locale), pages=format_number(pages(len(rows)), locale))
            )
        parts += ["", _("To remove a file sent by mistake, press its number.") if can_remove else why_not]
    rows_out: list[tuple[Button, ...]] = []
    if can_remove and shown:
        buttons = [Button(f"🗑 {n}", RemoveEvidence(sc=sc, item=item.id, ev=int(row["id"]))) for n, row in shown]
        rows_out += [tuple(buttons[i : i + 5]) for i in range(0, len(buttons), 5)]
    moves = []
    if page > 0:
        moves.append(Button("◀ " + _("Previous page"), ShowEvidence(sc=sc, item=item.id, page=page - 1)))
    if (page + 1) * PAGE_SIZE < len(rows):
        moves.append(Button(_("Next page") + " ▶", ShowEvidence(sc=sc, item=item.id, page=page + 1)))
    if moves:
        rows_out.append(tuple(moves))
    rows_out.append((Button("↩ " + _("Back to the question"), Navigate(action=NavAction.OPEN, sc=sc, item=item.id)),))
    files = tuple(EvidenceFile(int(row["id"]), n, file_label(row), str(row["file_id"])) for n, row in shown)
    return Screen("evidence", tuple(parts), tuple(rows_out), item=item.id, files=files)


def remove_screen(f: Facts, item: Item, row: dict[str, Any], number: int, names: dict[int, str], tz: zoneinfo.ZoneInfo) -> Screen:
    """Whether to remove file ``number`` of the item: it cannot be undone."""
    sc = f.sc
    parts = [
        "🗑 <b>" + _("Remove this evidence file? ({item})").format(item=header(f, item)) + "</b>",
        "",
        _line(number, row, names, f.locale, tz),
        "",
        _("It is removed from the self-check for everyone in your institution. This cannot be undone."),
    ]
    rows = (
        (
            Button("🗑 " + _("Yes, remove it"), RemoveEvidence(sc=sc, item=item.id, ev=int(row["id"]), sure=True)),
            Button(_("No, keep it"), ShowEvidence(sc=sc, item=item.id)),
        ),
    )
    files = (EvidenceFile(int(row["id"]), number, file_label(row), str(row["file_id"])),)
    return Screen("evidence:remove", tuple(parts), rows, item=item.id, files=files)
