"""SIGKILL `zicha run` while it e-mails reminders to 300 web-only staff (a local aiosmtpd
server), start it again: every person has the reminder exactly once (one Message-ID each;
at most the one message in flight at the kill goes over the wire twice, with the same
Message-ID), the Telegram colleague gets it in Telegram, and the web chat runs in the same
process."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import threading
import urllib.request
import zoneinfo
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from bot.core.checklist import load_checklist
from bot.core.schedule import load_schedule
from bot.i18n import build_i18n
from bot.services.reminders import sweep
from storage import web as store
from storage.db import open_db
from storage.institutions import bind_member, create_invite, get_institution_by_uscc, upsert_institutions
from tests.conftest import REPO, SHIPPED_CHECKLIST, roster_row
from tests.harness import BotProcess, free_port
from tests.standin import TelegramStandin

PEOPLE = 300
TELEGRAM_COLLEAGUE = 777_001
_SCHEDULE = load_schedule(REPO / "checklists" / "campaigns", "samr-2023-national", default_deadline=None, default_tz="UTC")
assert _SCHEDULE is not None  # the shipped campaign has its schedule file
SHIPPED = _SCHEDULE


class Inbox:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


@pytest.fixture
async def tg() -> AsyncIterator[TelegramStandin]:
    async with TelegramStandin() as standin:
        yield standin


async def test_a_killed_email_run_resumes_and_every_person_has_the_reminder_once(tg: TelegramStandin, tmp_path: Path) -> None:
    db_path = tmp_path / "zicha.db"
    db = open_db(db_path)
    row = roster_row("网页检测有限公司", 7, ("food",))
    upsert_institutions(db, [row])
    institution = get_institution_by_uscc(db, row.uscc)
    assert institution is not None
    code = create_invite(db, institution.id, max_uses=PEOPLE + 1)
    people = {}
    for n in range(PEOPLE):
        person = store.create_web_user(db, f"员工{n}", f"staff{n}@example.org", "zh_CN")
        bind_member(db, person, code, first_name=f"员工{n}")
        people[f"staff{n}@example.org"] = person
    bind_member(db, TELEGRAM_COLLEAGUE, code, first_name="电报同事")
    now = dt.datetime(2023, 10, 20, 10, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai"))
    queued = sweep(db, load_checklist(SHIPPED_CHECKLIST), SHIPPED, build_i18n("zh_CN"), now, default_locale="zh_CN")
    assert len(queued) == PEOPLE + 1
    db.close()
    tg.add_user(TELEGRAM_COLLEAGUE)

    inbox = Inbox()
    smtp_port, web_port = free_port(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    schedule = tmp_path / "schedule.toml"
    schedule.write_text('[campaign]\nquiet_hours = "00:00-00:00"\n', encoding="utf-8")
    bot = BotProcess(tg, db_path)
    bot.env.update(
        {
            "ZICHA_SCHEDULE": str(schedule), "ZICHA_OUTBOX_RATE": "1000",
            "ZICHA_SMTP_HOST": "127.0.0.1", "ZICHA_SMTP_PORT": str(smtp_port), "ZICHA_SMTP_FROM": "zicha@example.org",
            "ZICHA_SMTP_STARTTLS": "false", "ZICHA_EMAIL_RATE": "60",
            "ZICHA_PUBLIC_URL": "http://zicha.test", "ZICHA_WEB_PORT": str(web_port), "ZICHA_WEB_SECURE_COOKIES": "false",
        }
    )  # fmt: skip
    try:
        bot.start()
        for _ in range(600):
            if inbox.count() >= 60:
                break
            await asyncio.sleep(0.05)
        # the web chat is served by the same process
        health = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{web_port}/health", timeout=5).read())
        assert b"ok" in health
        bot.kill()
        before = inbox.count()
        assert 0 < before < PEOPLE, "all e-mails went out before the kill: raise PEOPLE"
        bot.start()
        for _ in range(1200):
            if len({m["Message-ID"] for m in inbox.messages}) >= PEOPLE:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # nothing more should arrive
    finally:
        log = bot.stop()
        smtp.stop()
    per_person = Counter(m["To"] for m in inbox.messages)
    ids_per_person = {to: {m["Message-ID"] for m in inbox.messages if m["To"] == to} for to in per_person}
    assert set(per_person) == set(people), f"{len(set(people) - set(per_person))} never got it\n{log[-3000:]}"
    assert all(len(ids) == 1 for ids in ids_per_person.values())  # exactly once, as a mail system counts
    assert len(inbox.messages) <= PEOPLE + 1  # at most the one in flight at the kill went twice
    assert [c for c in tg.calls("sendMessage") if c.params.get("chat_id") == TELEGRAM_COLLEAGUE]
    db = open_db(db_path)
    try:
        statuses = Counter((r[0], r[1]) for r in db.execute("SELECT channel, status FROM outbox"))
        assert statuses == Counter({("email", "sent"): PEOPLE, ("telegram", "sent"): 1})
    finally:
        db.close()
