"""Red-team findings on the web chat (issue 11), each through the real aiohttp app and a real
HTTP client: every test failed before its fix."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import sqlite_utils
from multidict import CIMultiDict

from bot.core.checklist import Checklist
from storage.institutions import Institution, create_invite, get_invite
from tests.web_support import csrf_of, web_client


def _db_path(db: sqlite_utils.Database) -> Path:
    return Path(next(db.query("PRAGMA database_list"))["file"])


async def _join(client, code: str, name: str = "王芳", email: str = "", headers=None):
    page = await (await client.get(f"/j/{code}", headers=headers)).text()
    await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"}, headers=headers)
    response = await client.post(
        f"/j/{code}", data={"csrf": csrf_of(page), "step": "name", "name": name, "email": email}, headers=headers
    )
    return response.status, await response.text()


async def test_the_language_switch_never_redirects_off_site_even_with_control_characters(db: sqlite_utils.Database, checklist: Checklist) -> None:
    """/lang's "next" guard checks "//" before yarl strips tab/CR/LF, so "/\\t/evil.com" becomes Location //evil.com (open redirect)."""
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en")
    try:
        csrf = csrf_of(await (await client.get("/verify")).text())
        for nxt in ("/\t/evil.example", "/\n/evil.example", "/\r/evil.example"):
            response = await client.post("/lang", data={"csrf": csrf, "lang": "en", "next": nxt}, allow_redirects=False)
            assert response.status == 303
            location = response.headers["Location"]
            assert not location.startswith("//") and urlsplit(location).netloc == "", (nxt, location)
    finally:
        await client.close()


async def test_the_guess_limit_counts_the_proxys_address_whatever_header_lines_the_client_adds(
    db: sqlite_utils.Database, checklist: Checklist
) -> None:
    """client_address reads only the first X-Forwarded-For line, so behind a proxy that appends its own line (HAProxy) the client picks its key and the per-address limit never bites."""
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en", zicha_web_guess_limit=5)
    try:
        statuses = []
        for n in range(10):  # the client's forged line first, the proxy's real one (7.7.7.7) last
            headers = CIMultiDict([("X-Forwarded-For", f"198.51.100.{n}"), ("X-Forwarded-For", "7.7.7.7")])
            response = await client.get(f"/j/not-a-code-{n}!", headers=headers)  # distinct codes: only the address counts
            statuses.append(response.status)
        assert statuses == [404] * 5 + [429] * 5
    finally:
        await client.close()


async def test_the_emailed_signin_link_never_takes_its_host_from_the_request(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    """Without ZICHA_PUBLIC_URL (`zicha web` allows it) the sign-in e-mail's link is built from the Host header: anyone with an invite can have Zicha mail any address a link to their own site."""
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en", zicha_public_url=None)
    try:
        _status, _page = await _join(client, code, name="王芳", email="victim@example.com", headers={"Host": "evil.example"})
        (mail,) = list(db.query("SELECT text FROM outbox WHERE email_to = 'victim@example.com'")) or [{"text": ""}]
        assert "evil.example" not in mail["text"]
    finally:
        await client.close()


async def test_an_email_address_that_names_further_recipients_is_refused(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    """The e-mail check lets ',' into the local part, so "admin,me@example.com" is accepted and the To header addresses a second, relay-local mailbox ("admin")."""
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en")
    try:
        status, page = await _join(client, code, name="王芳", email="admin,me@example.com", headers={"Accept-Language": "en"})
        assert status == 400 and "does not look like an e-mail address" in page
        assert list(db.query("SELECT 1 FROM users WHERE channel = 'web'")) == []
        assert list(db.query("SELECT 1 FROM outbox")) == [] and get_invite(db, code)["uses"] == 0
    finally:
        await client.close()


async def test_a_name_is_stored_on_one_line_so_it_cannot_forge_lines_in_mail(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    """clean_text keeps CR/LF, so a web name like "王芳\\r\\n\\r\\nYour link expired: http://evil" is stored and printed as extra lines in the sign-in e-mail and `zicha staff list`."""
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en")
    try:
        forged = "王芳,\r\n\r\nYour link expired, use http://evil.example"
        await _join(client, code, name=forged, email="wang@example.com")
        names = [row["first_name"] for row in db.query("SELECT first_name FROM users WHERE channel = 'web'")]
        assert all("\n" not in name and "\r" not in name for name in names), names
        texts = [row["text"] for row in db.query("SELECT text FROM outbox")]
        assert not any(line.startswith("Your link expired") for text in texts for line in text.splitlines())
    finally:
        await client.close()


async def test_a_malformed_multipart_body_is_refused_without_a_traceback(
    db: sqlite_utils.Database, checklist: Checklist, caplog
) -> None:
    """A broken multipart body makes request.post() raise InvalidHeader (not ValueError), so any anonymous client gets the 500 page and an ERROR traceback in the log at will."""
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en")
    try:
        with caplog.at_level("ERROR", logger="zicha.web"):
            response = await client.post(
                "/verify", data=b"--zz\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=zz"}
            )
        assert 400 <= response.status < 500, response.status
        assert not [r for r in caplog.records if r.levelname == "ERROR"]
    finally:
        await client.close()
