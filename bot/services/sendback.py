"""Sending a signed self-check back for rework (退回整改): what the regulator's confirmation
does, channel-neutral. The submission is superseded with the reason recorded, and every
staff member of the institution is told, in their own language, through the outbox (a
web person by e-mail), all in one transaction: either the signature is void and everyone
will be told, or nothing happened."""

from __future__ import annotations

import html
from typing import Any

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


def can_be_told(db: sqlite_utils.Database, member: dict[str, Any]) -> bool:
    """Whether a staff member's notice can reach them: in Telegram, they have not blocked the
    bot; in the web chat, they gave an e-mail address."""
    if member.get("channel") == "web":
        return bool(member.get("email"))
    return not outbox.is_unreachable(db, int(member["telegram_id"]))


def audience(db: sqlite_utils.Database, institution_id: int) -> tuple[int, int]:
    """(staff who will be told, staff who cannot be reached) of an institution."""
    members = members_of(db, institution_id)
    told = sum(1 for m in members if can_be_told(db, m))
    return told, len(members) - told


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
    notices (every member gets a row, so the outbox's records are complete); (the
    send-back, staff whose notice can reach them), or None if it is no longer current
    (nothing written, nobody told)."""
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
            queued = outbox.enqueue(db, kind=SEND_BACK_KIND, chat_id=chat_id, text=texts[locale], dedup_key=f"send_back:{done.id}:{chat_id}")
            if queued and can_be_told(db, member):
                told += 1
    return done, told


__all__ = ["MAX_REASON", "SEND_BACK_KIND", "InvalidInput", "notice_text", "reason_text", "send_back_submission"]
