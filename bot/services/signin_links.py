"""A web person's personal sign-in link sent again by e-mail, when they ask for it on the
web page ``/link`` (they lost the link, or it expired), without the operator.

The page answers every address alike, whether anyone has it or not, so it tells a stranger
nothing about who joined. What a stranger can do with someone else's address is bounded:
each person gets at most one such e-mail every ``ASK_EVERY`` (counted in the database, so a
restart or a second web process does not reset it), older links keep working (so typing
someone's address cannot lock them out), and the page itself is limited per client address.
"""

from __future__ import annotations

import datetime as dt

import sqlite_utils
from aiogram.utils.i18n import I18n

from bot.i18n import normalize_locale
from bot.mail import signin_email
from storage import outbox
from storage.web import create_link, web_members_by_email

ASK_EVERY = dt.timedelta(minutes=15)
PEOPLE_PER_ADDRESS = 5  # one address typed reaches at most this many people (colleagues may share one)


class _AlreadySent(Exception):
    """This person had their e-mail of this spell already: the new link is rolled back."""


def send_new_links(
    db: sqlite_utils.Database, i18n: I18n, *, email: str, base_url: str, default_locale: str, now: dt.datetime
) -> int:
    """A new sign-in link e-mailed (through the outbox) to every member who joined on the
    web with ``email``; returns how many were queued, for the log only."""
    spell = int(now.timestamp() // ASK_EVERY.total_seconds())
    queued = 0
    for person in web_members_by_email(db, email, limit=PEOPLE_PER_ADDRESS):
        try:
            with db.atomic():  # the link and its e-mail, or neither
                link = f"{base_url}/s/{create_link(db, person['id'])}"
                with i18n.context(), i18n.use_locale(normalize_locale(person["language"], default_locale)):
                    subject, text = signin_email(person["name"], person["institution"], link, asked_again=True)
                row = outbox.enqueue_email(
                    db, kind="signin_link", user_id=person["id"], email=person["email"], subject=subject, text=text,
                    dedup_key=f"signin-asked:{person['id']}:{spell}",
                )  # fmt: skip
                if row is None:
                    raise _AlreadySent
        except _AlreadySent:
            continue
        queued += 1
    return queued
