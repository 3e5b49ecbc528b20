"""E-mail for web-only staff: reminders, broadcasts and sign-in links, sent by the outbox.

Standard library ``smtplib`` run in a worker thread (one message at a time, as the outbox
sends): no extra dependency, and STARTTLS/AUTH as every SMTP relay speaks them. Settings:
ZICHA_SMTP_HOST, ZICHA_SMTP_PORT, ZICHA_SMTP_USER, ZICHA_SMTP_PASSWORD, ZICHA_SMTP_FROM,
ZICHA_SMTP_STARTTLS; ZICHA_EMAIL_RATE paces them (its own limit, apart from Telegram's).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import sqlite_utils
from aiogram.utils.i18n import gettext as _

from storage import web as web_store


class PermanentMailError(Exception):
    """The relay refused this message for good (bad address): do not retry."""


@dataclass(frozen=True)
class Mailer:
    host: str
    port: int
    sender: str
    user: str | None = None
    password: str | None = None
    starttls: bool = True
    rate: float = 1.0
    public_url: str | None = None
    timeout: float = 30.0
    locale: str = "zh_CN"

    @classmethod
    def from_settings(cls, settings: Any) -> Mailer | None:
        if not settings.zicha_smtp_host or not settings.zicha_smtp_from:
            return None
        return cls(
            host=settings.zicha_smtp_host,
            port=settings.zicha_smtp_port,
            sender=settings.zicha_smtp_from,
            user=settings.zicha_smtp_user,
            password=settings.zicha_smtp_password.get_secret_value() if settings.zicha_smtp_password else None,
            starttls=settings.zicha_smtp_starttls,
            rate=settings.zicha_email_rate,
            public_url=settings.zicha_public_url,
            locale=settings.zicha_locale,
        )

    def compose(self, db: sqlite_utils.Database, row: dict[str, Any]) -> EmailMessage:
        """The message of an outbox row; rows queued ``with_link`` get a fresh personal link."""
        text = row["text"]
        if row["parse_mode"] == "link" and self.public_url:
            from bot.i18n import build_i18n, normalize_locale

            person = web_store.get_web_user(db, int(row["chat_id"]))
            locale = normalize_locale(person["language"] if person else None, self.locale)
            i18n = build_i18n(self.locale)
            with i18n.context(), i18n.use_locale(locale):
                intro = _("Open the self-check with your personal link (keep it to yourself):")
            token = web_store.create_link(db, int(row["chat_id"]))
            text += "\n\n" + intro + f"\n{self.public_url}/s/{token}\n"
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = row["email_to"]
        message["Subject"] = row["subject"] or text.strip().splitlines()[0][:120]
        # The same Message-ID for every attempt of a row: a re-send after a crash in flight is
        # recognisably the same message to the recipient's mail system.
        domain = self.sender.rpartition("@")[2].strip(">") or "zicha.invalid"
        message["Message-ID"] = f"<zicha-outbox-{row['id']}@{domain}>"
        message.set_content(text)
        return message

    def _send_now(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
            try:
                smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                raise PermanentMailError(f"recipient refused: {exc.recipients}") from exc

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._send_now, message)


def signin_email(name: str, institution: str, link: str, *, asked_again: bool = False) -> tuple[str, str]:
    """Subject and text of the e-mail with a person's sign-in link (call inside a locale).
    ``asked_again``: the person asked for a new one on the web page (their older links still
    work: anyone can type anyone's address there)."""
    subject = _("Your Zicha sign-in link: {institution}").format(institution=institution)
    intro = (
        _("Someone, probably you, asked for a new sign-in link to the self-check of {institution}.")
        if asked_again
        else _("You joined the self-check of {institution} on the web.")
    )
    text = "\n".join(
        [
            _("Hello {name},").format(name=name),
            "",
            intro.format(institution=institution),
            _("This is your personal sign-in link. Open it on any phone or computer to come back; keep it to yourself:"),
            link,
            "",
            _("If you did not ask for this, you can ignore this message.")
            + (" " + _("The links you had before keep working.") if asked_again else ""),
        ]
    )
    return subject, text
