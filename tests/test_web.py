"""The web chat (issue 11): joining with an invite, personal links, sessions, and every
hostile input we could think of, through the real aiohttp app and a real HTTP client."""

from __future__ import annotations

import asyncio
import html
import io
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlite_utils

from bot.core.checklist import Checklist
from bot.web.security import SlidingWindow
from storage import web as store
from storage.institutions import Institution, create_invite, get_invite, get_membership, remove_member, revoke_invite
from tests.web_support import csrf_of, link_of, web_client

EVIL = '<script>alert("x")</script><b>张三</b>'


def _db_path(db: sqlite_utils.Database) -> Path:
    return Path(next(db.query("PRAGMA database_list"))["file"])


async def _join(client, code: str, name: str = "王芳", email: str = "") -> str:
    page = await (await client.get(f"/j/{code}")).text()
    await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"})
    response = await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "name", "name": name, "email": email})
    assert response.status == 200, await response.text()
    return await response.text()


def _web_users(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT telegram_id, first_name, email, channel FROM users WHERE channel = 'web'"))


async def test_join_with_invite_then_sign_in_again_with_the_personal_link(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id, max_uses=3)
    client = await web_client(db, checklist, _db_path(db))
    try:
        page = await (await client.get(f"/j/{code}", headers={"Accept-Language": "zh-CN"})).text()
        assert motor_lab.name in page and motor_lab.uscc in page
        assert "否" in page and "中文" in page  # Chinese first
        joined = await _join(client, code, name=EVIL, email="wang@example.com")
        assert "<script>" not in joined and html.escape(EVIL, quote=False) in joined.replace("&#34;", '"')
        link = link_of(joined)
        assert urlsplit(link).netloc == "zicha.test" and urlsplit(link).path.startswith("/s/")
        (person,) = _web_users(db)
        assert person["telegram_id"] < 0 and person["first_name"] == EVIL and person["email"] == "wang@example.com"
        assert get_membership(db, person["telegram_id"]).id == motor_lab.id  # a real member
        assert get_invite(db, code)["uses"] == 1
        # the link is stored hashed only, and its e-mail waits in the outbox
        assert not list(db.query("SELECT 1 FROM web_links WHERE token_sha256 = ?", [urlsplit(link).path[3:]]))
        (mail,) = list(db.query("SELECT channel, email_to, text, status FROM outbox"))
        assert mail["channel"] == "email" and mail["email_to"] == "wang@example.com" and link in mail["text"]
        landing = await (await client.get("/")).text()
        assert motor_lab.name in landing and "<script>" not in landing

        fresh = await web_client(db, checklist, _db_path(db))
        try:
            assert (await fresh.get("/")).status == 401  # no session: nothing but join/sign-in/verify
            signin = await (await fresh.get(urlsplit(link).path)).text()
            response = await fresh.post(urlsplit(link).path, data={"csrf": csrf_of(signin)}, allow_redirects=False)
            assert response.status == 303 and response.headers["Location"] == "/"
            landing = await (await fresh.get("/")).text()
            assert motor_lab.uscc in landing
            progress = list(db.query("SELECT count(*) AS n FROM selfchecks WHERE institution_id = ?", [motor_lab.id]))
            assert progress[0]["n"] == 1  # the landing read the institution's workspace
            # signing out ends the session
            await fresh.post("/signout", data={"csrf": csrf_of(landing)})
            assert (await fresh.get("/")).status == 401
        finally:
            await fresh.close()
    finally:
        await client.close()


async def test_security_headers_and_cookie_flags(db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_web_secure_cookies=True)
    try:
        response = await client.get(f"/j/{code}")
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "camera=()" in response.headers["Permissions-Policy"]
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
        assert "<script" not in (await response.text())  # no inline script, no script at all
    finally:
        await client.close()


async def test_missing_or_wrong_csrf_is_refused_and_nothing_is_stored(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en")
    try:
        page = await (await client.get(f"/j/{code}", headers={"Accept-Language": "en"})).text()
        await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"})
        for data in ({"step": "name", "name": "X"}, {"csrf": "forged", "step": "name", "name": "X"}):
            response = await client.post(f"/j/{code}", data=data, headers={"Accept-Language": "en"})
            assert response.status == 403
            assert "This form has expired" in await response.text()
        assert _web_users(db) == [] and get_invite(db, code)["uses"] == 0
    finally:
        await client.close()


async def test_a_replayed_join_form_creates_nobody_twice(db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db))
    try:
        page = await (await client.get(f"/j/{code}")).text()
        await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"})
        form = {"csrf": csrf_of(page), "step": "name", "name": "王芳"}
        assert (await client.post(f"/j/{code}", data=form)).status == 200
        # the same form again: the old session is gone (a new one was issued at sign-in)
        old_cookie_replay = await client.post(f"/j/{code}", data=form)
        assert old_cookie_replay.status in (403, 409)
        assert len(_web_users(db)) == 1 and get_invite(db, code)["uses"] == 1
    finally:
        await client.close()


async def test_revoked_link_and_removal_cut_access_at_once(db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en")
    try:
        link = urlsplit(link_of(await _join(client, code))).path
        (person,) = _web_users(db)
        assert (await client.get("/")).status == 200
        store.revoke_links(db, person["telegram_id"])  # also ends their sessions
        assert (await client.get("/")).status == 401
        response = await client.get(link, headers={"Accept-Language": "en"})
        assert response.status == 404 and "This sign-in link does not work" in await response.text()

        # a second person, removed by the operator: their open session dies on the next request
        second = await web_client(db, checklist, _db_path(db), zicha_locale="en")
        try:
            await _join(second, code, name="李雷")
            other = next(p for p in _web_users(db) if p["first_name"] == "李雷")
            assert (await second.get("/")).status == 200
            remove_member(db, motor_lab.id, other["telegram_id"], removed_by="cli")
            assert list(db.query("SELECT 1 FROM web_sessions WHERE user_id = ?", [other["telegram_id"]])) == []
            assert (await second.get("/")).status == 401
        finally:
            await second.close()
    finally:
        await client.close()


async def test_revoked_and_used_up_invites_are_refused(db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution) -> None:
    code = create_invite(db, motor_lab.id, max_uses=1)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en")
    try:
        page = await (await client.get(f"/j/{code}")).text()
        await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"})
        revoke_invite(db, code)  # withdrawn between the confirmation and the name
        response = await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "name", "name": "王芳"})
        assert response.status == 410 and "withdrawn" in await response.text()
        assert _web_users(db) == []
    finally:
        await client.close()


async def test_html_in_every_text_field_is_escaped(db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db))
    try:
        page = await (await client.get(f"/j/{code}")).text()
        await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"})
        bad_email = await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "name", "name": EVIL, "email": EVIL})
        text = await bad_email.text()
        assert bad_email.status == 400 and "<script>" not in text and "&lt;script&gt;" in text
        verify = await client.post("/verify", data={"csrf": csrf_of(page), "code": EVIL})
        text = await verify.text()
        assert verify.status == 404 and "<script>" not in text and "&lt;script&gt;" in text
        lang = await client.post("/lang", data={"csrf": csrf_of(page), "lang": "en", "next": "//evil.example/"}, allow_redirects=False)
        assert lang.headers["Location"] == "/"  # no open redirect
        assert _web_users(db) == []
    finally:
        await client.close()


async def test_a_thousand_wrong_invite_codes_from_one_address(db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en", zicha_web_guess_limit=20)
    try:
        statuses = []
        for n in range(1000):
            response = await client.get(f"/j/WRONG{n:015d}", headers={"Accept-Language": "en"})
            statuses.append(response.status)
        assert statuses[:20] == [404] * 20 and set(statuses[20:]) == {429}
        assert "Too many attempts" in await response.text()
        # even the right code is refused from that address for now, and nothing was stored
        assert (await client.get(f"/j/{code}")).status == 429
        assert store.count_sessions(db) == 0 and _web_users(db) == [] and get_invite(db, code)["uses"] == 0
    finally:
        await client.close()


def test_the_sliding_window_is_bounded() -> None:
    now = [0.0]
    window = SlidingWindow(3, 10, max_keys=100, clock=lambda: now[0])
    for key in range(1000):
        window.hit(f"k{key}")
    assert len(window._events) == 100
    for _ in range(5):
        window.hit("a")
    assert window.blocked("a") and len(window._events["a"]) == 3
    now[0] = 11
    assert not window.blocked("a")


async def test_verify_refuses_oversized_and_wrong_type_uploads(db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution) -> None:
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en", zicha_web_max_body_mb=1)
    try:
        page = await (await client.get("/verify")).text()
        csrf = csrf_of(page)
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("csrf", csrf)
        form.add_field("pdf", io.BytesIO(b"%PDF-" + b"0" * (2 * 1024 * 1024)), filename="big.pdf", content_type="application/pdf")
        big = await client.post("/verify", data=form)
        assert big.status == 413 and "too large" in await big.text()
        form = aiohttp.FormData()
        form.add_field("csrf", csrf)
        form.add_field("pdf", io.BytesIO(b"<html><script>x</script>"), filename="x.pdf", content_type="application/pdf")
        wrong = await client.post("/verify", data=form)
        assert wrong.status == 415 and "not a PDF" in await wrong.text()
        empty = await client.post("/verify", data={"csrf": csrf})
        assert empty.status == 400
    finally:
        await client.close()


async def test_verify_checks_pdfs_a_bounded_number_of_times_and_shows_no_internals(
    db: sqlite_utils.Database, checklist: Checklist, tmp_path: Path
) -> None:
    """Anyone may post PDFs to /verify: each is a signature check in a thread, so they are
    limited per address like wrong codes (their own count); and the page never shows the
    operator's details: no signing key yet here, so no check is possible, and the page says
    so without the certificate's or the database's path."""
    import aiohttp

    client = await web_client(db, checklist, _db_path(db), zicha_locale="en", zicha_web_pdf_check_limit=3)

    async def post_pdf(content: bytes) -> tuple[int, str]:
        page = await (await client.get("/verify")).text()
        form = aiohttp.FormData()
        form.add_field("csrf", csrf_of(page))
        form.add_field("pdf", io.BytesIO(content), filename="x.pdf", content_type="application/pdf")
        response = await client.post("/verify", data=form)
        return response.status, await response.text()

    try:
        for _ in range(3):
            status, text = await post_pdf(b"%PDF-1.7 not really")
            assert status == 503 and "cannot be checked here at the moment" in text
            assert str(tmp_path) not in text and "zicha keys" not in text and "ZICHA_" not in text
        status, text = await post_pdf(b"%PDF-1.7 not really")
        assert status == 429
        # typed codes have their own count: still answered
        page = await (await client.get("/verify")).text()
        typed = await client.post("/verify", data={"csrf": csrf_of(page), "code": "ABCD-EFGH"})
        assert typed.status == 404
    finally:
        await client.close()


def test_cli_prints_web_links_and_revokes_a_web_persons_links(
    db: sqlite_utils.Database, motor_lab: Institution, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from bot.cli import cli
    from storage.institutions import bind_member

    code = create_invite(db, motor_lab.id)
    monkeypatch.setenv("ZICHA_DB", str(_db_path(db)))
    monkeypatch.setenv("ZICHA_PUBLIC_URL", "https://zicha.example.org/")
    result = CliRunner().invoke(cli, ["invites", "--bot-username", "zicha_bot"])
    assert result.exit_code == 0, result.output
    assert f"https://t.me/zicha_bot?start={code}  https://zicha.example.org/j/{code}" in result.output
    csv_out = CliRunner().invoke(cli, ["invites", "--format", "csv", "--bot-username", "zicha_bot"]).output
    assert csv_out.splitlines()[0] == "uscc,name,code,link,web_link"

    person = store.create_web_user(db, "王芳", None, "zh_CN")
    bind_member(db, person, code, first_name="王芳")
    token = store.create_link(db, person)
    store.create_session(db, user_id=person, lifetime=__import__("datetime").timedelta(hours=1))
    staff = CliRunner().invoke(cli, ["staff", "list", motor_lab.uscc])
    assert str(person) in staff.output and "王芳" in staff.output
    revoked = CliRunner().invoke(cli, ["web-revoke", str(person)])
    assert revoked.exit_code == 0, revoked.output
    assert "Revoked 1 sign-in link(s)" in revoked.output
    assert store.user_of_link(db, token) is None and store.count_sessions(db) == 0
    assert get_membership(db, person) is not None  # still a member: only the links are gone
    wrong = CliRunner().invoke(cli, ["web-revoke", "12345"])
    assert wrong.exit_code == 1 and "not a person who joined on the web" in wrong.output


async def test_verify_a_signed_pdf_valid_altered_superseded_like_zicha_verify(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, tmp_path: Path
) -> None:
    import zoneinfo

    import aiohttp

    from bot.i18n import build_i18n
    from bot.pledge.document import format_code
    from bot.pledge.signing import SigningSettings, identity, init_keys
    from bot.pledge.submit import produce_pdf, sign
    from storage.pledges import supersede
    from tests.pledge_support import fill

    ident = identity(SigningSettings(zicha_db=_db_path(db)), db_path=_db_path(db))
    init_keys(ident)
    ws = fill(db, checklist, motor_lab, by=4242, leave=0)
    submission = sign(ws, locale="zh_CN", signer_name="张三<b>", signer_role="legal_representative", by=4242, by_name="t")
    pdf = await asyncio.to_thread(produce_pdf, submission.document, build_i18n("zh_CN"), zoneinfo.ZoneInfo("Asia/Shanghai"), ident)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en")

    async def check(data: bytes) -> tuple[int, str]:
        page = await (await client.get("/verify", headers={"Accept-Language": "en"})).text()
        form = aiohttp.FormData()
        form.add_field("csrf", csrf_of(page))
        form.add_field("pdf", io.BytesIO(data), filename="pledge.pdf", content_type="application/pdf")
        response = await client.post("/verify", data=form, headers={"Accept-Language": "en"})
        return response.status, await response.text()

    try:
        status, text = await check(pdf)
        assert status == 200 and "Valid: this is the current signed submission" in text
        # what the paper says, to compare; not zicha verify's words for the operator (ids, paths)
        assert motor_lab.name in text and "张三&lt;b&gt;" in text and format_code(submission.verification_code) in text
        assert "submission #" not in text and "sha256" not in text and "Technical details" not in text
        altered = pdf.replace(b"/Producer", b"/Producex", 1) if b"/Producer" in pdf else pdf[:-200] + b"0" * 200
        status, text = await check(altered)
        assert "Not valid" in text and "signature is missing or damaged" in text and motor_lab.name not in text
        page = await (await client.get("/verify")).text()
        by_code = await (await client.post("/verify", data={"csrf": csrf_of(page), "code": submission.verification_code.lower()})).text()
        assert "This code belongs to the current signed submission" in by_code and "张三&lt;b&gt;" in by_code
        supersede(db, submission.id, by=4242)
        status, text = await check(pdf)
        assert "Superseded" in text and motor_lab.name in text
        assert "4242" not in text and "Telegram ID" not in text  # who revised it stays with the operator
    finally:
        await client.close()


async def test_sessions_expire_when_idle_and_at_their_absolute_end(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    import datetime as dt

    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_web_session_idle_minutes=30)
    try:
        await _join(client, code)
        assert (await client.get("/")).status == 200
        old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=31)).isoformat(timespec="microseconds")
        db.execute("UPDATE web_sessions SET seen_at = ?", [old])  # half an hour without a request
        db.conn.commit()
        assert (await client.get("/")).status == 401
        assert store.count_sessions(db) == 0
    finally:
        await client.close()
    _token, live = store.create_session(db, user_id=None, lifetime=dt.timedelta(hours=1))
    _token2, ended = store.create_session(db, user_id=None, lifetime=dt.timedelta(hours=1))
    db.execute("UPDATE web_sessions SET expires_at = ? WHERE token_sha256 = ?", [old, ended.token_sha256])
    db.conn.commit()
    assert store.load_session(db, _token2, idle=dt.timedelta(hours=2)) is None  # past its absolute end
    db.execute("UPDATE web_sessions SET seen_at = ? WHERE token_sha256 = ?", [old, live.token_sha256])
    db.conn.commit()
    assert store.purge_expired_sessions(db, idle=dt.timedelta(minutes=30)) == 1
    assert store.count_sessions(db) == 0


async def test_the_landing_shows_what_colleagues_answered_in_telegram(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    from bot.core.interview import Choice
    from bot.selfcheck import open_workspace
    from storage.institutions import bind_member

    code = create_invite(db, motor_lab.id)
    bind_member(db, 5150, code, first_name="电报同事")  # a Telegram colleague of the same institution
    ws = open_workspace(db, checklist, motor_lab)
    compliance = [i for i in ws.interview.items if i.kind == "compliance"]
    ws.record_choice(compliance[0].id, Choice.COMPLIANT, by=5150, expected_rev=0)
    ws.record_choice(compliance[1].id, Choice.NA if compliance[1].allow_na else Choice.COMPLIANT, by=5150, expected_rev=0)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en")
    try:
        await _join(client, code)
        landing = await (await client.get("/", headers={"Accept-Language": "en"})).text()
        total = ws.progress().total
        assert f"2 of {total} items answered" in landing
        assert f'<progress max="{total}" value="2">' in landing
    finally:
        await client.close()


async def test_a_revoked_code_tried_from_many_addresses_is_limited_per_code(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id)
    revoke_invite(db, code)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en", zicha_web_guess_limit=5)
    try:
        statuses = []
        for n in range(8):  # each request from another address, as a proxy on this host says
            response = await client.get(f"/j/{code}", headers={"X-Forwarded-For": f"203.0.113.{n}"})
            statuses.append(response.status)
        assert statuses == [410] * 5 + [429] * 3
        assert store.count_sessions(db) == 0
    finally:
        await client.close()


def test_zicha_web_serves_alone_and_stops_on_sigterm(db: sqlite_utils.Database, tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"ZICHA_DB": str(_db_path(db)), "ZICHA_WEB_PORT": str(port), "ZICHA_LOG_FORMAT": "text"}
    env.pop("BOT_TOKEN", None)  # no Telegram needed
    process = subprocess.Popen([sys.executable, "-m", "bot", "web"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("zicha web did not start")
        assert b'"ok"' in body
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate()[0].decode()
    assert "web chat stopped" in output, output
