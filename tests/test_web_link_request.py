"""A web person who lost their personal sign-in link has a new one e-mailed from the page
``/link`` (without the operator): through the real aiohttp app, the outbox sender and a
local SMTP server; the page tells a stranger nothing, and nothing a stranger types there
locks anyone out or floods their mailbox."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlite_utils
from aiosmtpd.controller import Controller

from bot.core.checklist import Checklist
from bot.delivery.outbox import OutboxLimits, OutboxSender
from bot.mail import Mailer
from storage import web as store
from storage.institutions import Institution, create_invite, remove_member
from tests.web_support import csrf_of, link_of, web_client

SMTP = {"zicha_smtp_host": "127.0.0.1", "zicha_smtp_from": "zicha@example.org", "zicha_locale": "en"}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def bodies(self) -> list[str]:
        return [m.get_payload(decode=True).decode("utf-8") for m in self.messages]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _db_path(db: sqlite_utils.Database) -> Path:
    return Path(next(db.query("PRAGMA database_list"))["file"])


async def _deliver(db: sqlite_utils.Database, port: int) -> None:
    mailer = Mailer(host="127.0.0.1", port=port, sender="zicha@example.org", starttls=False, rate=100, public_url="http://zicha.test")
    sender = OutboxSender(None, db, limits=OutboxLimits(rate=100), mailer=mailer, idle_poll=0.01)  # type: ignore[arg-type]
    await sender.drain(timeout=30)


async def _join(client, code: str, name: str, mail: str) -> str:
    page = await (await client.get(f"/j/{code}")).text()
    await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"})
    joined = await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "name", "name": name, "email": mail})
    return urlsplit(link_of(await joined.text())).path


async def _ask(client, typed: str) -> tuple[int, str]:
    page = await (await client.get("/link")).text()
    response = await client.post("/link", data={"csrf": csrf_of(page), "email": typed})
    return response.status, await response.text()


def _asked_rows(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT chat_id, email_to, status FROM outbox WHERE dedup_key LIKE 'signin-asked:%' ORDER BY id"))


async def _signs_in(db: sqlite_utils.Database, checklist: Checklist, path: str) -> bool:
    client = await web_client(db, checklist, _db_path(db), **SMTP)
    try:
        page = await client.get(path)
        if page.status != 200:
            return False
        response = await client.post(path, data={"csrf": csrf_of(await page.text())}, allow_redirects=False)
        return response.status == 303 and (await client.get("/")).status == 200
    finally:
        await client.close()


async def test_a_person_who_lost_their_link_gets_a_new_one_by_email_and_the_old_one_still_works(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    code = create_invite(db, motor_lab.id, max_uses=5)
    client = await web_client(db, checklist, _db_path(db), **SMTP)
    try:
        old_link = await _join(client, code, "王芳", "Wang.Fang@Example.com")
        await _deliver(db, port)
        assert len(inbox.messages) == 1  # the link of the join

        # A signed-out visitor finds the way from the page they land on.
        await client.post("/signout", data={"csrf": csrf_of(await (await client.get("/")).text())})
        assert 'href="/link"' in await (await client.get("/signed-out")).text()
        assert 'href="/link"' in await (await client.get("/s/" + "x" * 43)).text()  # a link that does not work

        status, page = await _ask(client, "  wang.fang@example.COM ")  # any case, spaces around
        assert status == 200 and 'id="link-sent"' in page and "wang.fang@example.COM" in page
        await _deliver(db, port)
        assert len(inbox.messages) == 2
        mail = inbox.messages[1]
        body = inbox.bodies()[1]
        assert mail["To"] == "Wang.Fang@Example.com" and motor_lab.name in mail["Subject"]
        assert "asked for a new sign-in link" in body and "The links you had before keep working." in body
        new_link = urlsplit(next(line for line in body.splitlines() if line.startswith("http://zicha.test/s/"))).path
        assert new_link != old_link
        (person,) = list(db.query("SELECT telegram_id FROM users WHERE channel = 'web'"))
        assert store.user_of_link(db, new_link[3:]) == person["telegram_id"]
        assert await _signs_in(db, checklist, new_link)
        assert await _signs_in(db, checklist, old_link)  # typing an address locks nobody out
    finally:
        await client.close()


async def test_the_page_says_the_same_for_an_address_nobody_has_and_sends_nothing(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    code = create_invite(db, motor_lab.id, max_uses=5)
    client = await web_client(db, checklist, _db_path(db), **SMTP)
    try:
        await _join(client, code, "王芳", "wang@example.com")
        await _join(client, code, "李雷", "")  # joined without an address
        _, known = await _ask(client, "wang@example.com")
        _, unknown = await _ask(client, "nobody@example.com")
        assert known.replace("wang@example.com", "X") == unknown.replace("nobody@example.com", "X")
        await _deliver(db, port)
        assert [m["To"] for m in inbox.messages] == ["wang@example.com", "wang@example.com"]  # the join's, then the new one
    finally:
        await client.close()


async def test_one_new_link_a_quarter_of_an_hour_per_person_even_across_a_restart(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    code = create_invite(db, motor_lab.id, max_uses=5)
    client = await web_client(db, checklist, _db_path(db), **SMTP)
    try:
        await _join(client, code, "王芳", "shared@example.com")
        await _join(client, code, "李雷", "shared@example.com")  # colleagues sharing an office address
        links_before = db.execute("SELECT count(*) FROM web_links").fetchone()[0]
        assert (await _ask(client, "shared@example.com"))[0] == 200
        assert (await _ask(client, "SHARED@example.com"))[0] == 200
    finally:
        await client.close()
    restarted = await web_client(db, checklist, _db_path(db), **SMTP)  # a new process: nothing in memory
    try:
        status, page = await _ask(restarted, "shared@example.com")
        assert status == 200 and 'id="link-sent"' in page
    finally:
        await restarted.close()
    rows = _asked_rows(db)
    assert sorted(r["chat_id"] for r in rows) == sorted(r["telegram_id"] for r in db.query("SELECT telegram_id FROM users WHERE channel = 'web'"))
    assert db.execute("SELECT count(*) FROM web_links").fetchone()[0] == links_before + 2  # no link made without its e-mail
    await _deliver(db, port)
    assert len(inbox.messages) == 4  # two joins, one new link each


async def test_a_removed_member_gets_no_link_and_cannot_sign_in_with_an_old_one(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, smtp: tuple[Inbox, int]
) -> None:
    _inbox, _port = smtp
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), **SMTP)
    try:
        old_link = await _join(client, code, "王芳", "wang@example.com")
        (person,) = list(db.query("SELECT telegram_id FROM users WHERE channel = 'web'"))
        remove_member(db, motor_lab.id, person["telegram_id"], removed_by="cli")
        status, page = await _ask(client, "wang@example.com")
        assert status == 200 and 'id="link-sent"' in page  # the same words: nothing told
        assert _asked_rows(db) == []
        assert not await _signs_in(db, checklist, old_link)
    finally:
        await client.close()


@pytest.mark.parametrize(
    "typed",
    ["", "wang", "wang@example", "a,b@example.com", "wang@example.com\nBcc: x@evil.test", "x" * 250 + "@example.com", "<b>x</b>@example.com"],
)
async def test_what_is_not_an_email_address_gets_a_polite_message_and_nothing_is_queued(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, typed: str
) -> None:
    client = await web_client(db, checklist, _db_path(db), **SMTP)
    try:
        status, page = await _ask(client, typed)
        assert status == 400 and "That does not look like an e-mail address" in page
        assert "<b>x</b>" not in page  # what was typed comes back escaped
        assert list(db.query("SELECT 1 FROM outbox")) == []
    finally:
        await client.close()


async def test_a_server_that_sends_no_email_says_whom_to_ask_instead(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en")
    try:
        page = await (await client.get("/link")).text()
        assert "This server does not send e-mail" in page and 'name="email"' not in page
        response = await client.post("/link", data={"csrf": csrf_of(await (await client.get("/verify")).text()), "email": "wang@example.com"})
        assert response.status == 404 and list(db.query("SELECT 1 FROM outbox")) == []
    finally:
        await client.close()


async def test_asking_is_limited_per_client_address_and_needs_the_form_token(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    client = await web_client(db, checklist, _db_path(db), **SMTP)
    try:
        assert (await client.post("/link", data={"email": "wang@example.com"})).status == 403  # no CSRF token
        statuses = [(await _ask(client, f"n{i}@example.com"))[0] for i in range(7)]
        assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    finally:
        await client.close()


async def test_the_page_is_in_chinese_first(db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution) -> None:
    client = await web_client(db, checklist, _db_path(db), zicha_smtp_host="127.0.0.1", zicha_smtp_from="zicha@example.org")
    try:
        page = await (await client.get("/link", headers={"Accept-Language": "zh-CN"})).text()
        assert "登录链接" in page and "Lost your" not in page
    finally:
        await client.close()


async def test_a_person_whose_links_the_operator_revoked_gets_no_new_one(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), **SMTP)
    try:
        await _join(client, code, "王芳", "wang@example.com")
        (person,) = list(db.query("SELECT telegram_id FROM users WHERE channel = 'web'"))
        store.revoke_links(db, person["telegram_id"])  # zicha web-revoke: on purpose
        status, page = await _ask(client, "wang@example.com")
        assert status == 200 and 'id="link-sent"' in page  # the same words: nothing told
        assert _asked_rows(db) == []
    finally:
        await client.close()
