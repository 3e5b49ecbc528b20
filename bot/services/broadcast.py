"""Broadcasts: a regulator's message to every bound staff member in their scope, through
the outbox, with a delivery report when the last recipient is done.

The message is sent as HTML. From Telegram, the regulator's text arrives as entities and
is rendered by aiogram (``Message.html_text``), which escapes everything the user typed; from
the command line the text is plain and escaped with ``html.escape``. Either way nothing a
regulator writes can break Telegram's HTML parsing, and formatting made in Telegram
(bold, links) is kept.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Protocol

import sqlite_utils

from bot.config import SUPPORTED_LOCALES
from bot.conversation.text import _, use_gettext
from bot.core.checklist import Checklist
from bot.core.scope import Scope
from storage import outbox
from storage.institutions import get_institution, get_user_language
from storage.recipients import members_in_scope

BROADCAST_KIND = "broadcast"
REPORT_KIND = "report"
# Telegram's limit is 4,096 characters; the header takes a line or two.
MAX_BROADCAST_LENGTH = 3800


class Catalog(Protocol):
    """Translations by locale (aiogram's ``I18n`` is one): each recipient gets their own."""

    def gettext(self, singular: str, plural: str | None = None, n: int = 1, locale: str | None = None) -> str:
        """``singular`` in ``locale``."""


def normalize_locale(value: str | None, default: str) -> str:
    """(``bot.i18n.normalize_locale``, which is aiogram's side of the house.)"""
    return value if value in SUPPORTED_LOCALES else default


def in_locale(catalog: Catalog, locale: str) -> Any:
    """The engine's strings in ``locale`` (for one recipient's message)."""
    return use_gettext(lambda message: catalog.gettext(message, locale=locale))


@dataclass(frozen=True)
class Audience:
    members: list[int]
    languages: dict[int, str | None]
    institutions: int
    unreachable: int

    @property
    def total(self) -> int:
        return len(self.members)


def audience(db: sqlite_utils.Database, scope: Scope, campaign: Checklist | None = None) -> Audience:
    """Bound staff of the institutions in ``scope`` (and, with ``campaign``, covered by that
    campaign: a campaign's checklist, ``Checklist.for_campaign``); ``unreachable`` of them
    answered 403 before."""
    rows = members_in_scope(db, scope)
    if campaign is not None and campaign.coverage is not None:
        covered: dict[int, bool] = {}
        for r in rows:
            if r.institution_id not in covered:
                inst = get_institution(db, r.institution_id)
                covered[r.institution_id] = inst is not None and campaign.covers(inst.level, inst.province, inst.fields)
        rows = [r for r in rows if covered[r.institution_id]]
    return Audience(
        members=[r.telegram_id for r in rows],
        languages={r.telegram_id: r.language for r in rows},
        institutions=len({r.institution_id for r in rows}),
        unreachable=sum(1 for r in rows if r.unreachable),
    )


def compose(body_html: str, sender: str) -> str:
    """The message recipients see (call inside the recipients' locale): a header naming the
    regulator, then the body. ``body_html`` must already be safe HTML."""
    header = _("📢 <b>Message from your regulator</b> ({sender})").format(sender=html.escape(sender))
    return f"{header}\n\n{body_html}"


def create_broadcast(
    db: sqlite_utils.Database,
    i18n: Catalog,
    *,
    scope: Scope,
    body_html: str,
    sender: str,
    created_by: int | None,
    report_chat_id: int | None,
    default_locale: str,
    dedup: str | None = None,
    campaign: Checklist | None = None,
) -> tuple[int, int]:
    """Queue the broadcast for everyone in scope, all or nothing; returns (batch id, recipients).

    Each recipient gets the header in their own language. ``dedup`` (e.g. the id of the
    preview a regulator confirmed) makes a repeated confirm queue nothing new. ``campaign``:
    only the staff of institutions that campaign covers.
    """
    reach = audience(db, scope, campaign)
    texts: dict[str, str] = {}
    with db.atomic():
        batch_id = outbox.new_batch(
            db, kind=BROADCAST_KIND, created_by=created_by, text=body_html,
            scope=scope.to_text() + (f";campaign:{campaign.campaign_key}" if campaign is not None else ""),
            report_chat_id=report_chat_id,
        )  # fmt: skip
        queued = 0
        for chat_id in reach.members:
            locale = normalize_locale(reach.languages.get(chat_id), default_locale)
            if locale not in texts:
                with in_locale(i18n, locale):
                    texts[locale] = compose(body_html, sender)
            key = f"broadcast:{dedup}:{chat_id}" if dedup else None
            if outbox.enqueue(
                db, kind=BROADCAST_KIND, chat_id=chat_id, text=texts[locale], batch_id=batch_id, dedup_key=key
            ):
                queued += 1
        queued -= outbox.fail_former_members(db, batch_id)  # removed while the audience was read
    return batch_id, queued


def report_text(counts: dict[str, int]) -> str:
    """The delivery report (call inside the regulator's locale)."""
    return _(
        "📬 <b>Broadcast delivered</b>\nDelivered: {sent}\nBlocked the bot: {blocked}\nFailed: {failed}\nTotal: {total}"
    ).format(sent=counts["sent"], blocked=counts["blocked"], failed=counts["failed"], total=counts["total"])


def queue_report(
    db: sqlite_utils.Database, i18n: Catalog, batch: dict[str, Any], counts: dict[str, int], default_locale: str
) -> int | None:
    """Queue the report of a finished batch to whoever asked for it (not held by quiet hours)."""
    chat_id = batch.get("report_chat_id")
    if chat_id is None:
        return None
    locale = normalize_locale(get_user_language(db, int(chat_id)), default_locale)
    with in_locale(i18n, locale):
        text = report_text(counts)
    return outbox.enqueue(
        db, kind=REPORT_KIND, chat_id=int(chat_id),
        text=text, quiet=False, dedup_key=f"report:{batch['id']}",
    )  # fmt: skip
