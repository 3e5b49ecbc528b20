"""E-mail for web-only staff (issue 11): reminders reach them through the outbox, by SMTP
(a local aiosmtpd server started here), once per person and reminder, with a personal link."""

from __future__ import annotations

import datetime as dt
import email
import socket
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit

import sqlite_utils
from aiosmtpd.controller import Controller

from bot.core.checklist import Checklist
from bot.i18n import build_i18n
from bot.mail import Mailer
from bot.outbox import OutboxLimits, OutboxSender
from bot.reminders import sweep
from bot.core.schedule import load_schedule
from storage import web as store
from storage.db import query_rows
from storage.institutions import Institution, create_invite
from tests.conftest import REPO
from tests.web_support import csrf_of, link_of, web_client

SHIPPED = load_schedule(REPO / "checklists" / "campaigns", "samr-2023-national", default_deadline=None, default_tz="UTC")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


async def test_a_web_person_gets_each_reminder_once_by_email_with_a_working_link(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, tmp_path: Path
) -> None:
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        code = create_invite(db, motor_lab.id)
        client = await web_client(db, checklist, tmp_path / "zicha.db")
        try:
            page = await (await client.get(f"/j/{code}")).text()
            await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"})
            joined = await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "name", "name": "王芳", "email": "wang@example.com"})
            link_of(await joined.text())
        finally:
            await client.close()
        (person,) = query_rows(db, "SELECT telegram_id FROM users WHERE channel = 'web'")
        mailer = Mailer(host="127.0.0.1", port=port, sender="zicha@example.org", starttls=False, rate=100, public_url="http://zicha.test")
        i18n = build_i18n("zh_CN")
        now = dt.datetime(2023, 10, 20, 10, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai"))
        for _ in range(3):  # sweeps overlap, the sender restarts: still once
            sweep(db, checklist, SHIPPED, i18n, now, default_locale="zh_CN")
            sender = OutboxSender(None, db, limits=OutboxLimits(rate=100), mailer=mailer, idle_poll=0.01)  # type: ignore[arg-type]
            await sender.drain(timeout=30)
        subjects = [m["Subject"] for m in inbox.messages]
        assert len(inbox.messages) == 2, subjects  # the sign-in link, then one reminder
        reminder = inbox.messages[1]
        body = reminder.get_payload(decode=True).decode("utf-8")
        assert reminder["To"] == "wang@example.com" and motor_lab.name in body and "<b>" not in body
        assert len({m["Message-ID"] for m in inbox.messages}) == 2
        link = next(line for line in body.splitlines() if line.startswith("http://zicha.test/s/"))
        assert store.user_of_link(db, urlsplit(link).path[3:]) == person["telegram_id"]
        rows = query_rows(db, "SELECT channel, status FROM outbox ORDER BY id")
        assert rows == [{"channel": "email", "status": "sent"}] * 2
    finally:
        smtp.stop()
