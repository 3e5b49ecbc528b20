"""Sending a signed self-check back for rework (退回整改): what the regulator's confirmation
does, channel-neutral. The submission is superseded with the reason recorded, and every
staff member of the institution is told, in their own language, through the outbox (a
web person by e-mail), all in one transaction: either the signature is void and everyone
will be told, or nothing happened."""

from __future__ import annotations

import html

import sqlite_utils

from bot.conversation.text import _
from bot.core.checklist import Checklist
from bot.core.interview import InvalidInput, clean_text
from bot.services.broadcast import Catalog, in_locale, normalize_locale
from storage import outbox
from storage.institutions import Institution, get_user_language, members_of
from storage.sendbacks import SendBack, send_back

SEND_BACK_KIND = "send_back"
MAX_REASON = 1000
"""Characters of a reason: what must be rectified, in a few sentences (the staff's notice
and the summary screen show it in full, within one Telegram message)."""


def reason_text(raw: str | None) -> str:
    """The reason as typed, cleaned (control characters dropped, spaces trimmed);
    InvalidInput when it is empty or longer than ``MAX_REASON``."""
    return clean_text(raw, MAX_REASON)


def notice_text(institution: Institution, checklist: Checklist, reason: str, sender: str, locale: str) -> str:
    """The staff's notice (call inside their locale)."""
    return _(
        "↩️ <b>Your self-check was sent back for rework</b>\n"
        "{sender} sent back the signed self-check of {name} ({title}); its signature is void.\n\n"
        "<b>What to rectify:</b> {reason}\n\n"
        "Please rectify, change the answers concerned and sign the pledge again. Send /start to continue."
    ).format(
        sender=html.escape(sender), name=html.escape(institution.name), title=html.escape(checklist.title.get(locale)),
        reason=html.escape(reason),
    )


def send_back_submission(
    db: sqlite_utils.Database,
    catalog: Catalog,
    *,
    submission_id: int,
    institution: Institution,
    checklist: Checklist,
    reason: str,
    sender: str,
    by: int,
    default_locale: str,
) -> tuple[SendBack, int] | None:
    """Void the current submission ``submission_id`` for rework and queue the staff's
    notices; (the send-back, staff told), or None if it is no longer current (nothing
    written, nobody told)."""
    with db.atomic():
        done = send_back(db, submission_id, reason=reason, by=by, by_label=sender)
        if done is None:
            return None
        told = 0
        texts: dict[str, str] = {}
        for member in members_of(db, institution.id):
            chat_id = int(member["telegram_id"])
            locale = normalize_locale(get_user_language(db, chat_id), default_locale)
            if locale not in texts:
                with in_locale(catalog, locale):
                    texts[locale] = notice_text(institution, checklist, reason, sender, locale)
            if outbox.enqueue(db, kind=SEND_BACK_KIND, chat_id=chat_id, text=texts[locale], dedup_key=f"send_back:{done.id}:{chat_id}"):
                told += 1
    return done, told


__all__ = ["MAX_REASON", "SEND_BACK_KIND", "InvalidInput", "notice_text", "reason_text", "send_back_submission"]
