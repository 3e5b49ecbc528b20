"""Hardening of the web chat (issue 11, "Security as for any web form" and "Getting in"):
no session row for a visitor who only looks, joins that do not count as guesses, sign-in
links that expire (and the CLI that lists and re-issues them), sessions that end, and a
server that a slow client cannot hold."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlite_utils
from aiohttp import web
from click.testing import CliRunner

from bot.cli import cli
from bot.core.checklist import Checklist
from bot.i18n import build_i18n
from bot.web.app import CTX, build_web_app, start_web
from bot.web.security import FORM_COOKIE, FormTokens
from storage import web as store
from storage.institutions import Institution, create_invite, get_invite
from tests.web_support import csrf_of, link_of, web_client, web_settings


def _db_path(db: sqlite_utils.Database) -> Path:
    return Path(next(db.query("PRAGMA database_list"))["file"])


def _web_users(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT telegram_id, first_name, email FROM users WHERE channel = 'web'"))


def _sessions(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT token_sha256, user_id, data FROM web_sessions ORDER BY token_sha256"))


async def _join(client, code: str, name: str = "王芳", email: str = "", headers: dict | None = None) -> str:
    page = await (await client.get(f"/j/{code}", headers=headers)).text()
    confirm = await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"}, headers=headers)
    assert confirm.status == 200, await confirm.text()
    response = await client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "name", "name": name, "email": email}, headers=headers)
    assert response.status == 200, await response.text()
    return await response.text()


# --- 1. anonymous pages store nothing; their forms still carry a token and refuse a bad one


async def test_two_hundred_anonymous_visits_store_no_session_and_forms_still_refuse_a_bad_token(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id, max_uses=5)
    person = store.create_web_user(db, "李雷", None, "zh_CN")
    from storage.institutions import bind_member

    bind_member(db, person, code, first_name="李雷")
    link = "/s/" + store.create_link(db, person)
    store.create_session(db, user_id=person, lifetime=dt.timedelta(hours=1))  # someone signed in already
    before = _sessions(db)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en", zicha_web_guess_limit=1000)
    try:
        pages = ["/verify", f"/j/{code}", link, "/", "/signed-out", "/j/NOSUCHCODE0000000000", "/s/" + "x" * 43, "/nowhere"]
        statuses: dict[str, set[int]] = {}
        for n in range(200):  # a crawler: no cookies kept from one request to the next
            client.session.cookie_jar.clear()
            path = pages[n % len(pages)]
            response = await client.get(path)
            statuses.setdefault(path, set()).add(response.status)
            if response.status == 200:
                assert 'name="csrf"' in await response.text()  # a token on every form all the same
        assert statuses["/verify"] == {200} and statuses[f"/j/{code}"] == {200} and statuses[link] == {200}
        assert statuses["/"] == {401}
        assert _sessions(db) == before, "a look stores no session"

        # the forms of an anonymous page still work, with the token of that page
        client.session.cookie_jar.clear()
        page = await (await client.get("/verify")).text()
        assert (await client.post("/verify", data={"csrf": csrf_of(page), "code": "ABCD-EFGH"})).status == 404
        switched = await client.post("/lang", data={"csrf": csrf_of(page), "lang": "zh_CN", "next": "/verify"})
        assert switched.status == 200 and 'lang="zh-CN"' in await switched.text()  # the language, in a cookie
        assert _sessions(db) == before, "verifying a code or switching the language needs no session"

        # ... and refuse a missing, forged, foreign or stale one, storing nothing
        page = await (await client.get(f"/j/{code}")).text()
        token = csrf_of(page)
        other = FormTokens(dt.timedelta(hours=1))  # another process's key: a form opened before a restart
        nonce = client.session.cookie_jar.filter_cookies(client.make_url("/"))[FORM_COOKIE].value
        for data in (
            {"step": "confirm", "answer": "yes"},
            {"csrf": "forged", "step": "confirm", "answer": "yes"},
            {"csrf": token[:-2] + "xx", "step": "confirm", "answer": "yes"},
            {"csrf": other.token(nonce), "step": "confirm", "answer": "yes"},
        ):
            response = await client.post(f"/j/{code}", data=data)
            assert response.status == 403 and "此表单已失效。" in await response.text()  # in the language chosen
        stranger = await web_client(db, checklist, _db_path(db), zicha_locale="en")
        try:  # the right token, but without the cookie it was made for
            response = await stranger.post(f"/j/{code}", data={"csrf": token, "step": "confirm", "answer": "yes"})
            assert response.status == 403
        finally:
            await stranger.close()
        old = FormTokens(dt.timedelta(hours=1), key=client.app[CTX].form_tokens.key, clock=lambda: 0.0)
        response = await client.post(f"/j/{code}", data={"csrf": old.token(nonce), "step": "confirm", "answer": "yes"})
        assert response.status == 403, "a token older than an hour is refused"
        assert _sessions(db) == before and len(_web_users(db)) == 1 and get_invite(db, code)["uses"] == 1

        # confirming the invite is what starts a session; the page's token goes on working
        joined = await _join(client, code, name="王芳")
        assert "王芳" in joined and len(_sessions(db)) == len(before) + 1
        (new,) = [s for s in _sessions(db) if s not in before]
        assert new["user_id"] is not None and new["user_id"] < 0 and '"zh_CN"' in new["data"]  # the language kept
    finally:
        await client.close()


async def test_an_anonymous_language_switch_is_a_cookie_and_survives_into_the_session(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN")
    try:
        page = await (await client.get(f"/j/{code}")).text()
        assert "是，这是我的机构" in page or "中文" in page
        for _ in range(50):
            response = await client.post("/lang", data={"csrf": csrf_of(page), "lang": "en", "next": f"/j/{code}"}, allow_redirects=False)
            assert response.status == 303 and response.headers["Location"] == f"/j/{code}"
        assert store.count_sessions(db) == 0, "fifty switches, no row"
        english = await (await client.get(f"/j/{code}")).text()
        assert 'lang="en"' in english
        await _join(client, code)  # the join starts the session, in the language chosen before
        (person,) = _web_users(db)
        assert next(db.query("SELECT language FROM users WHERE telegram_id = ?", [person["telegram_id"]]))["language"] == "en"
        assert 'lang="en"' in await (await client.get("/")).text()
    finally:
        await client.close()


# --- 2. joins are no guesses; wrong codes are, and are refused politely past the limit


async def test_joins_do_not_count_as_guesses_and_a_thousand_wrong_codes_are_refused_politely(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id, max_uses=20)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en", zicha_web_guess_limit=3)
    try:
        office = {"X-Forwarded-For": "198.51.100.1"}  # the whole lab behind one address
        for n in range(8):
            client.session.cookie_jar.clear()
            await _join(client, code, name=f"同事{n}", headers=office)
        assert len(_web_users(db)) == 8 and get_invite(db, code)["uses"] == 8

        sessions, users = store.count_sessions(db), _web_users(db)
        guesser = {"X-Forwarded-For": "203.0.113.9"}
        statuses = []
        for n in range(1000):
            client.session.cookie_jar.clear()
            lang = "zh-CN" if n % 2 else "en"
            response = await client.get(f"/j/WRONG{n:015d}", headers=guesser | {"Accept-Language": lang})
            statuses.append(response.status)
        assert statuses[:3] == [404] * 3 and set(statuses[3:]) == {429}
        assert int(response.headers["Retry-After"]) == 15 * 60
        text = await response.text()
        assert "尝试次数过多。" in text and "请等待一刻钟后" in text  # zh_CN, said politely
        english = await client.get("/j/WRONG", headers=guesser | {"Accept-Language": "en"})
        assert english.status == 429 and "Too many attempts." in await english.text()
        # a wrong code posted is a guess too, and stores nothing
        page = await (await client.get(f"/j/{code}", headers=office)).text()
        posted = await client.post("/j/WRONG000000000000001", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"}, headers=guesser)
        assert posted.status == 429
        assert store.count_sessions(db) == sessions and _web_users(db) == users and get_invite(db, code)["uses"] == 8

        # the right code, from another address, after all those wrong ones: still works
        client.session.cookie_jar.clear()
        joined = await _join(client, code, name="后来者", headers={"X-Forwarded-For": "198.51.100.2"})
        assert "后来者" in joined and get_invite(db, code)["uses"] == 9
    finally:
        await client.close()


# --- 3. personal links expire; the CLI lists and re-issues them; sessions end


async def test_an_expired_sign_in_link_says_how_to_get_a_new_one_and_stores_nothing(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en", zicha_web_link_days=30, zicha_web_guess_limit=2)
    try:
        link = urlsplit(link_of(await _join(client, code))).path
        (person,) = _web_users(db)
        fresh = await web_client(db, checklist, _db_path(db), zicha_locale="en", zicha_web_link_days=30, zicha_web_guess_limit=2)
        try:
            page = await (await fresh.get(link)).text()
            assert "Sign in" in page or "sign in" in page.lower()
            made = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=31)).isoformat(timespec="microseconds")
            db.execute("UPDATE web_links SET created_at = ?", [made])
            db.conn.commit()
            before = _sessions(db)
            for lang, words in (("en", ("This sign-in link has expired.", "30 days", "quality manager or your regulator")),
                                ("zh-CN", ("此登录链接已过期。", "30 天", "质量负责人或监管部门"))):  # fmt: skip
                response = await fresh.get(link, headers={"Accept-Language": lang})
                text = await response.text()
                assert response.status == 410 and all(w in text for w in words), text
            response = await fresh.post(link, data={"csrf": csrf_of(page)}, allow_redirects=False)
            assert response.status == 410 and "has expired" in await response.text()
            assert _sessions(db) == before and store.links_of(db, person["telegram_id"])[0]["used_at"] is None
            for _ in range(5):  # an expired link is a real one: no guess, never "too many"
                assert (await fresh.get(link)).status == 410
            assert (await fresh.get("/")).status == 401
        finally:
            await fresh.close()
    finally:
        await client.close()
    # the default is 90 days: the same link, 31 days old, works there
    default = await web_client(db, checklist, _db_path(db), zicha_locale="en")
    try:
        assert (await default.get(link)).status == 200
    finally:
        await default.close()


def test_cli_lists_and_reissues_a_web_persons_link(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.institutions import bind_member

    code = create_invite(db, motor_lab.id)
    person = store.create_web_user(db, "王芳", "wang@example.com", "zh_CN")
    bind_member(db, person, code, first_name="王芳")
    old = store.create_link(db, person)
    store.create_session(db, user_id=person, lifetime=dt.timedelta(hours=1))
    made = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=100)).isoformat(timespec="microseconds")
    db.execute("UPDATE web_links SET created_at = ?", [made])
    db.conn.commit()
    monkeypatch.setenv("ZICHA_DB", str(_db_path(db)))
    monkeypatch.setenv("ZICHA_PUBLIC_URL", "https://zicha.example.org")
    monkeypatch.delenv("ZICHA_WEB_LINK_DAYS", raising=False)

    listed = CliRunner().invoke(cli, ["web-links", str(person)])
    assert listed.exit_code == 0, listed.output
    assert f"Sign-in links of web person {person} (王芳)" in listed.output
    assert re.search(r"#1  made \d{4}-\d\d-\d\d \d\d:\d\d  never used  expired \d{4}-", listed.output), listed.output

    reissued = CliRunner().invoke(cli, ["web-reissue", str(person)])
    assert reissued.exit_code == 0, reissued.output
    lines = reissued.output.splitlines()
    assert lines[0] == f"New sign-in link of web person {person} (王芳), works for 90 days:"
    new = lines[1]
    assert new.startswith("https://zicha.example.org/s/") and len(new) > 40
    assert lines[2] == "1 older link(s) revoked. Also e-mailed to wang@example.com (through the outbox)."
    assert store.user_of_link(db, old) is None and store.count_sessions(db) == 0
    token = urlsplit(new).path[3:]
    assert store.user_of_link(db, token, max_age=dt.timedelta(days=90)) == person
    (mail,) = list(db.query("SELECT channel, email_to, subject, text FROM outbox"))
    assert mail["email_to"] == "wang@example.com" and new in mail["text"] and "登录链接" in mail["subject"]

    again = CliRunner().invoke(cli, ["web-links", str(person)]).output
    assert "revoked" in again and "works until" in again
    wrong = CliRunner().invoke(cli, ["web-reissue", "4242"])
    assert wrong.exit_code == 1 and "not a person who joined on the web" in wrong.output
    monkeypatch.delenv("ZICHA_PUBLIC_URL")
    unset = CliRunner().invoke(cli, ["web-reissue", str(person)])
    assert unset.exit_code == 1 and "Set ZICHA_PUBLIC_URL" in unset.output
    assert len(store.links_of(db, person)) == 2, "nothing made without a public address"


async def test_the_reissued_link_signs_in_and_sessions_end_at_their_absolute_end(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="en", zicha_web_session_max_hours=2)
    try:
        await _join(client, code)
        (person,) = _web_users(db)
        token = store.create_link(db, person["telegram_id"])
        client.session.cookie_jar.clear()
        page = await (await client.get(f"/s/{token}")).text()
        response = await client.post(f"/s/{token}", data={"csrf": csrf_of(page)}, allow_redirects=False)
        assert response.status == 303
        cookie = response.cookies["zicha_session"]
        assert cookie["max-age"] == str(2 * 3600) and cookie["httponly"]
        assert (await client.get("/")).status == 200
        rows = list(db.query("SELECT * FROM web_sessions WHERE user_id = ? ORDER BY created_at", [person["telegram_id"]]))
        assert len(rows) == 2  # the one from joining (its cookie dropped above) and this one
        row = rows[-1]
        lifetime = dt.datetime.fromisoformat(row["expires_at"]) - dt.datetime.fromisoformat(row["created_at"])
        assert lifetime == dt.timedelta(hours=2)
        past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)).isoformat(timespec="microseconds")
        db.execute("UPDATE web_sessions SET expires_at = ? WHERE token_sha256 = ?", [past, row["token_sha256"]])
        db.conn.commit()  # its absolute end, however active it was
        response = await client.get("/", headers={"Accept-Language": "en"})
        assert response.status == 401 and "Please sign in first." in await response.text()
        assert "zicha_session=\"\"" in response.headers.get("Set-Cookie", "") or 'zicha_session=""' in str(response.cookies)
        assert store.count_sessions(db) == 1, "the ended session is deleted"
    finally:
        await client.close()


# --- 4. a slow client cannot hold a connection; bodies are bounded


async def _serve(db: sqlite_utils.Database, checklist: Checklist, **overrides: object) -> tuple[web.AppRunner, int]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = web_settings(_db_path(db), zicha_web_port=port, **overrides)
    app = build_web_app(settings, db, checklist, build_i18n(settings.zicha_locale))
    return await start_web(app, "127.0.0.1", port), port


async def _trickle_until_closed(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, chunk: bytes) -> bytes:
    """Send ``chunk`` a byte at a time, slowly, until the server closes the connection;
    returns what it answered."""
    answer = b""
    for byte in chunk * 100:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            break
        try:
            data = await asyncio.wait_for(reader.read(65536), 0.2)
        except TimeoutError:
            continue
        if not data:
            break
        answer += data
        if answer.endswith(b"</html>\n") or answer.endswith(b"</html>"):
            rest = await asyncio.wait_for(reader.read(), 20)  # closed after a second of lingering
            return answer + rest
    return answer


async def test_a_slow_loris_client_is_cut_off_in_headers_and_in_the_body(db: sqlite_utils.Database, checklist: Checklist) -> None:
    runner, port = await _serve(
        db, checklist, zicha_web_idle_timeout_seconds=1, zicha_web_body_timeout_seconds=1, zicha_web_max_body_mb=1, zicha_locale="en"
    )
    try:
        # headers that never end
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /verify HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = await asyncio.wait_for(_trickle_until_closed(writer, reader, b"X-Slow: a\r\n"), 30)
        assert answer == b"", "closed without an answer: no request was ever complete"
        writer.close()

        # a complete request, then a body that trickles in
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100000\r\n\r\ncsrf="
        )
        answer = await asyncio.wait_for(_trickle_until_closed(writer, reader, b"a"), 30)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"The form took too long to arrive." in answer and b"Connection: close" in answer
        writer.close()

        # a body over the limit is refused as soon as the limit is passed, not read to its end
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 500000000\r\n\r\n"
        )
        answer = b""
        for _ in range(20):  # 20 MiB at most, of the 500 MB announced
            writer.write(b"a" * (1024 * 1024))
            try:
                await writer.drain()
                answer += await asyncio.wait_for(reader.read(65536), 0.05)
            except (TimeoutError, ConnectionError):
                pass
            if answer:
                break
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        writer.close()

        # the server still serves everyone else
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        assert answer.startswith(b"HTTP/1.1 200") and b'"ok"' in answer
        writer.close()
    finally:
        await runner.cleanup()
    assert store.count_sessions(db) == 0
