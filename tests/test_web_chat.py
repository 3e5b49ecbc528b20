"""The self-check in the browser (issue 11): the web adapter of the conversation engine,
driven through the real aiohttp app with a real HTTP client — join with an invite, answer
every item (non-compliances with their follow-ups, evidence, an edited answer), sign,
download the PDF and verify it — and every hostile form we could think of."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from pathlib import Path

import sqlite_utils
from aiohttp import FormData

from bot.core.checklist import Checklist
from storage import web as store
from storage.institutions import Institution, create_invite, remove_member
from tests.web_support import csrf_of, link_of, web_client

EVIL = '<script>alert("x")</script><b>张三</b>'
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF = b"%PDF-1.4\n" + b"0" * 300
SOON = (dt.date.today() + dt.timedelta(days=40)).isoformat()  # the web app's clock is the real one
_BUTTON = re.compile(r'name="act" value="([^"]*)" data-key="([^"]*)"')
_ORIGIN = re.compile(r'name="origin" value="(\d+)"')


def _db_path(db: sqlite_utils.Database) -> Path:
    return Path(next(db.query("PRAGMA database_list"))["file"])


class WebPerson:
    """One person in the web chat: reads the page's buttons and forms like a browser."""

    def __init__(self, client) -> None:
        self.client = client
        self.page = ""
        self.status = 0

    async def join(self, code: str, name: str = "王芳") -> str:
        page = await (await self.client.get(f"/j/{code}", headers={"Accept-Language": "zh-CN"})).text()
        await self.client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"})
        joined = await self.client.post(f"/j/{code}", data={"csrf": csrf_of(page), "step": "name", "name": name, "email": ""})
        assert joined.status == 200, await joined.text()
        return await joined.text()

    def _check(self) -> None:
        # whatever anyone typed, no page carries it as markup (the only script is the app's own file)
        assert self.page.count("<script") == self.page.count('<script src="/static/chat.js" defer></script>')
        assert "<b>张三" not in self.page and "<img" not in self.page

    async def open(self) -> str:
        response = await self.client.get("/chat")
        self.status, self.page = response.status, await response.text()
        self._check()
        return self.page

    def buttons(self) -> dict[str, str]:
        return {key: html.unescape(value) for value, key in _BUTTON.findall(self.page)}

    def origin(self) -> str:
        match = _ORIGIN.search(self.page)
        assert match, "no form on the page"
        return match[1]

    def kind(self) -> str:
        match = re.search(r'id="screen" class|class="bubble bot screen kind-([a-z_-]+)"', self.page)
        assert match and match[1], "no screen on the page"
        return match[1]

    async def post(self, data: dict[str, str] | FormData) -> str:
        response = await self.client.post("/chat", data=data)
        self.status, self.page = response.status, await response.text()
        self._check()
        return self.page

    async def press(self, key: str) -> str:
        buttons = self.buttons()
        assert key in buttons, f"no button {key!r} on the page: {sorted(buttons)}"
        return await self.post({"csrf": csrf_of(self.page), "origin": self.origin(), "act": buttons[key]})

    async def type(self, text: str) -> str:
        return await self.post({"csrf": csrf_of(self.page), "origin": self.origin(), "kind": "text", "text": text})

    async def upload(self, content: bytes, name: str = "photo.png", content_type: str = "image/png") -> str:
        form = FormData()
        form.add_field("csrf", csrf_of(self.page))
        form.add_field("origin", self.origin())
        form.add_field("kind", "file")
        form.add_field("file", io.BytesIO(content), filename=name, content_type=content_type)
        return await self.post(form)


async def answer_everything(person: WebPerson, *, noncompliant: tuple[int, ...] = (), today_plus: str = "") -> None:
    """Answer from the current screen to the summary: compliant (or yes), the text items typed,
    the items at the positions in ``noncompliant`` non-compliant with all their follow-ups."""
    for _ in range(200):
        kind = person.kind()
        if kind == "summary":
            return
        buttons = person.buttons()
        if kind == "question":
            position = int(re.search(r"第 (\d+)/\d+ 项", person.page)[1])
            if "compliant" in buttons:
                await person.press("noncompliant" if position in noncompliant else "compliant")
            elif "yes" in buttons:
                await person.press("yes")
            else:
                await person.type("13812345678" if "电话" in person.page else "王五")
        elif kind == "followup-problem":
            await person.type(f"问题 {EVIL}")
        elif kind == "followup-measure":
            await person.type(f"措施 {EVIL}")
        elif kind == "followup-status":
            await person.press("rect:in_progress")
        elif kind == "followup-target_date":
            await person.type(today_plus or SOON)
        else:
            raise AssertionError(f"unexpected screen {kind}")
    raise AssertionError("never reached the summary")


def _answers(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT item_id, value, problem, measure, rect_status, rev, answered_by FROM answers ORDER BY item_id"))


async def test_the_whole_self_check_in_the_browser_sign_download_and_verify(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN")
    try:
        person = WebPerson(client)
        landing = await person.join(code, name="王芳")
        assert link_of(landing)
        start = await (await client.get("/")).text()
        assert 'href="/chat"' in start
        page = await person.open()
        # the first item: its section, "第 1/44 项", a progress bar, the question, big answer buttons
        assert person.status == 200 and "第 1/44 项" in page and "<progress" in page
        assert person.kind() == "question" and {"yes", "no", "nav:toc", "nav:review"} <= set(person.buttons())
        # guidance on demand
        assert "💡 " in page and "nav:guide" in person.buttons()
        await person.press("nav:guide")
        assert "隐藏说明" in page or "nav:guide" in person.buttons()
        await person.press("yes")
        assert "第 2/44 项" in person.page and "已保存" in person.page  # the notice of the step
        # a text item: typed, escaped when shown back
        await person.type(EVIL)
        assert "<script>" not in person.page and "&lt;script&gt;" in person.page
        # previous, then skip: the engine's navigation
        await person.press("nav:prev")
        assert "第 2/44 项" in person.page and "&lt;script&gt;" in person.page
        await person.press("nav:skip")
        assert "第 3/44 项" in person.page
        await person.type("13812345678")
        # the contents and a section, then back
        await person.press("nav:toc")
        assert person.kind() == "contents"
        assert await person.open() and person.kind() == "contents"  # a reload shows the same page
        section = next(k for k in person.buttons() if k.startswith("section:"))
        await person.press(section)
        assert person.kind() == "section"
        await person.press("nav:toc")
        await person.press("nav:cont")
        assert person.kind() == "question" and "第 4/44 项" in person.page
        # a non-compliance: the problem, with evidence, then the measure, status and date
        await person.press("noncompliant")
        assert person.kind() == "followup-problem" and 'type="file"' in person.page and 'accept="image/*,application/pdf"' in person.page
        await person.upload(PNG)
        assert "已为第 4 项保存证明材料（目前共 1 份）" in person.page and 'id="said">📎 photo.png<' in person.page
        assert person.kind() == "followup-problem"
        await person.type("记录缺失 <img src=x onerror=alert(1)>")
        assert "<img" not in person.page
        await person.type("补充记录")
        await person.press("rect:in_progress")
        assert person.kind() == "followup-target_date" and 'class="date"' in person.page
        await person.type(SOON)
        assert person.kind() == "question" and "第 5/44 项" in person.page
        # an edited answer: back to item 4, compliant instead
        await person.press("nav:prev")
        await person.press("compliant")
        await answer_everything(person, noncompliant=(8, 15))
        assert person.kind() == "summary"
        stored = {a["item_id"]: a for a in _answers(db)}
        assert stored["lawful-01"]["value"] == "compliant" and stored["lawful-01"]["rev"] >= 2
        assert all(a["answered_by"] < 0 for a in stored.values())  # the web person
        (evidence,) = list(db.query("SELECT item_id, kind, file_id, mime_type, file_size FROM evidence"))
        assert evidence["item_id"] == "lawful-01" and evidence["file_id"].startswith("web:") and evidence["file_size"] == len(PNG)
        assert next(iter(db.query("SELECT content FROM web_files")))["content"] == PNG
        noncompliant = [a for a in stored.values() if a["value"] == "noncompliant"]
        assert len(noncompliant) == 2 and all(a["problem"].startswith("问题 <script>") for a in noncompliant)
        # review, then sign: the name, the role, the explicit confirmation
        await person.press("nav:review")
        assert person.kind() == "review"
        await person.press("nav:cont")
        assert person.kind() == "summary"
        await person.press("pledge:start")
        assert person.kind() == "pledge-name"
        await person.type(EVIL)
        assert person.kind() == "pledge-role" and "<script>" not in person.page
        await person.press("pledge:role:legal_representative")
        assert person.kind() == "pledge-confirm"
        await person.press("pledge:sign")
        assert person.kind() == "pledge-signed" and 'id="pdf-link"' in person.page
        url = re.search(r'id="pdf-link" href="([^"]+)"', person.page)[1]
        pdf = await client.get(url)
        assert pdf.status == 200 and pdf.headers["Content-Type"] == "application/pdf"
        assert pdf.headers["Content-Disposition"].startswith("attachment;")
        content = await pdf.read()
        assert content.startswith(b"%PDF-")
        # the PDF again from the signed page's button: straight to a fresh download link
        await person.press("pledge:pdf")
        assert 'id="pdf-link"' in person.page
        # verified at /verify, as anyone holding the paper would
        page = await (await client.get("/verify")).text()
        form = FormData()
        form.add_field("csrf", csrf_of(page))
        form.add_field("pdf", io.BytesIO(content), filename="pledge.pdf", content_type="application/pdf")
        verdict = await (await client.post("/verify", data=form)).text()
        assert "result valid" in verdict
        # the scan of the signed and sealed paper pledge, uploaded on the signed page
        await person.open()
        assert person.kind() == "pledge-signed" and 'id="file"' in person.page
        await person.upload(PDF, name="纸质承诺书.pdf", content_type="application/pdf")
        assert "纸质承诺书已附加到已签署的提交" in person.page
        (paper,) = list(db.query("SELECT content FROM submission_files WHERE kind = 'paper_pledge'"))
        assert paper["content"] == PDF
        # revising: its warning, then the signature is void and the answers open again
        await person.open()
        await person.press("pledge:rev")
        assert person.kind() == "pledge-revise"
        await person.press("pledge:revok")
        assert person.kind() == "review"
        assert next(iter(db.query("SELECT superseded_at FROM submissions")))["superseded_at"] is not None
    finally:
        await client.close()


async def test_colleagues_in_telegram_and_in_the_browser_see_each_others_answers_at_once(
    tg, db_path: Path, db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution
) -> None:
    from tests.harness import Chat, running_bot
    from tests.test_e2e_interview import join as tg_join

    code = create_invite(db, food_lab.id, max_uses=5)
    async with running_bot(tg, db_path):
        client = await web_client(db, checklist, db_path, zicha_locale="zh_CN")
        try:
            alice, bob = Chat(tg, 6101, "Alice"), WebPerson(client)
            alice_screen = await tg_join(alice, code)
            await bob.join(code, name="Bob")
            await bob.open()
            assert "第 1/" in bob.page
            # Alice confirms item 1 in Telegram; Bob's old page of item 1 is stale: he is told, nothing changes
            _, alice_screen = await alice.press("是，信息无误", alice_screen)
            await bob.press("no")
            assert "该项目刚刚已被修改，以下是当前答案。" in bob.page and "当前答案：<b>是，信息无误</b>" in bob.page
            # Bob answers item 2 in the browser; Alice, typing on her item-2 screen, sees his answer at once
            await bob.press("nav:skip")
            assert "第 2/" in bob.page
            await bob.type("王五")
            assert "第 3/" in bob.page
            mark = tg.mark()
            await alice.say("李四")
            told = "\n".join(alice.replies_since(mark))
            assert "同事已保存第 2 项" in told and "王五" in told, told
            # Alice answers item 3 in Telegram while Bob has it open: his typed answer is refused, hers shown
            alice_screen = await alice.say("/start")
            assert "第 3/" in alice_screen.text
            alice_screen = await alice.say("13812345678")
            await bob.type("13900000000")
            assert "您输入期间，同事已保存第 3 项" in bob.page and "13812345678" in bob.page
            # a reload shows the item with Alice's answer; on to the next one
            await bob.open()
            assert "第 3/" in bob.page and "当前答案：<b>13812345678</b>" in bob.page
            await bob.press("nav:skip")
            assert "第 4/" in bob.page
            await bob.press("compliant")
            progress = await alice.say("/progress")
            assert "4/" in progress.text  # four items done, whoever answered them
        finally:
            await client.close()
    rows = {r["item_id"]: r for r in db.query("SELECT item_id, value, text, answered_by FROM answers")}
    items = [i.id for i in checklist.items]
    assert rows[items[0]]["value"] == "yes" and rows[items[0]]["answered_by"] == 6101
    assert rows[items[1]]["text"] == "王五" and rows[items[1]]["answered_by"] < 0
    assert rows[items[2]]["text"] == "13812345678" and rows[items[2]]["answered_by"] == 6101
    assert len(rows) == 4 and rows[items[3]]["answered_by"] < 0


async def _member_on_item(db: sqlite_utils.Database, checklist: Checklist, institution: Institution, **overrides):
    """A web member of ``institution`` on the page of item 4 (a compliance item), and its client."""
    client = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN", **overrides)
    person = WebPerson(client)
    await person.join(create_invite(db, institution.id, max_uses=5))
    await person.open()
    await person.press("yes")
    await person.type("王五")
    await person.type("13812345678")
    assert "第 4/" in person.page
    return client, person


def _snapshot(db: sqlite_utils.Database) -> tuple:
    return (
        [tuple(r.values()) for r in db.query("SELECT item_id, value, rev, problem FROM answers ORDER BY item_id")],
        db.execute("SELECT count(*) FROM answer_history").fetchone()[0],
        db.execute("SELECT count(*) FROM evidence").fetchone()[0],
        db.execute("SELECT count(*) FROM web_files").fetchone()[0],
    )


async def test_forged_foreign_stale_and_replayed_forms_are_refused_with_a_clear_page_and_nothing_stored(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, food_lab: Institution
) -> None:
    from bot.selfcheck import open_workspace

    foreign = open_workspace(db, checklist, food_lab).selfcheck.id
    motor = open_workspace(db, checklist, motor_lab)
    not_ours = next(i.id for i in checklist.items if not motor.interview.applies(i.id))
    client, person = await _member_on_item(db, checklist, motor_lab)
    try:
        before = _snapshot(db)
        compliant = person.buttons()["compliant"]
        token = person.origin()

        async def send(act: str, origin: str = token) -> str:
            return await person.post({"csrf": csrf_of(person.page), "origin": origin, "act": act})

        # another institution's self-check
        await send(compliant.replace(f"sc={motor.selfcheck.id}", f"sc={foreign}"))
        assert person.status == 200 and "此按钮不属于本机构的自查。" in person.page
        # an item that is not part of this self-check
        await send(re.sub(r"item=[^&]+", f"item={not_ours}", compliant), person.origin())
        assert "该项目不在本机构的自查范围内。" in person.page
        # an old revision (as if the page were from before a colleague's save)
        await send(compliant.replace("rev=0", "rev=7"), person.origin())
        assert "该项目刚刚已被修改" in person.page
        # a checklist that changed meanwhile
        await send(re.sub(r"fp=[^&]+", "fp=00000000", compliant), person.origin())
        assert "自查表在这条消息之后已更新" in person.page
        # an old page's form (its token is no longer the live one)
        await send(compliant, origin="12345")
        assert "此消息已过期，请使用下方最新的问题。" in person.page
        # forms that are not actions at all, or not the web's: a clear 400 page
        # and a button value longer than any button's, or with more fields: not read, not kept
        # in the session as the view to show again (it was, and read back on every request)
        padded = f"kind=pledge&action=rev&sc={motor.selfcheck.id}&sub=0&role=" + "r" * 100_000
        many = compliant + "".join(f"&x{n}=1" for n in range(20))
        for act in ("kind=status", "kind=choose&sc=abc", "kind=nope", "kind=choose&choice=maybe", "kind=file", padded, many):
            await person.open()
            await send(act, person.origin())
            assert person.status == 400 and "无法读取此表单" in person.page, act[:40]
        assert max(len(r["data"]) for r in db.query("SELECT data FROM web_sessions")) < 5_000
        # missing or wrong CSRF token
        await person.open()
        for data in ({"origin": person.origin(), "act": compliant}, {"csrf": "forged", "origin": person.origin(), "act": compliant}):
            response = await client.post("/chat", data=data)
            assert response.status == 403 and "此表单已失效" in await response.text()
        assert _snapshot(db) == before
        # the real press works once; the same form again is a replay, refused
        await person.open()
        form = {"csrf": csrf_of(person.page), "origin": person.origin(), "act": person.buttons()["noncompliant"]}
        await person.post(form)
        assert person.kind() == "followup-problem"
        after_one = _snapshot(db)
        await person.post(form)
        assert "此消息已过期" in person.page and _snapshot(db) == after_one
    finally:
        await client.close()


async def test_html_in_every_text_field_is_shown_escaped_on_every_page(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    client, person = await _member_on_item(db, checklist, motor_lab)
    try:
        await person.press("nav:prev")
        await person.type(EVIL)  # a text item's answer (refused by its pattern: shown back escaped)
        await person.press("nav:prev")
        await person.type(EVIL)  # the name item
        assert "&lt;script&gt;" in person.page
        await person.press("nav:skip")
        await person.press("nav:skip")
        await person.press("noncompliant")
        await person.type(EVIL)  # the problem
        await person.type(EVIL)  # the measure
        await person.press("rect:in_progress")
        await person.type(EVIL)  # the target date: refused, nothing stored
        assert person.kind() == "followup-target_date"
        await person.open()
        await person.press(next(k for k in person.buttons() if k.startswith("nav:open:")))
        assert "当前答案" in person.page
        for page in ("nav:review", "nav:toc"):
            await person.open()
            await person.press(page)
        await client.get("/")  # the overview
        landing = await (await client.get("/")).text()
        assert "<script" not in landing
        row = next(iter(db.query("SELECT problem, measure, target_date FROM answers WHERE value = 'noncompliant'")))
        assert row["problem"] == EVIL and row["measure"] == EVIL and row["target_date"] is None
    finally:
        await client.close()


async def test_uploads_of_the_wrong_type_too_large_or_over_the_limit_are_refused_and_nothing_is_kept(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    client, person = await _member_on_item(db, checklist, motor_lab, zicha_web_max_body_mb=1, zicha_upload_item_files=1)
    try:
        await person.press("noncompliant")
        before = _snapshot(db)
        # a program named like a photo: told by its bytes, refused
        await person.upload(b"MZ\x90\x00" + b"\x00" * 100, name="photo.png", content_type="image/png")
        assert person.status == 415 and "此类文件不能作为证明材料保存" in person.page
        await person.open()
        await person.upload(b"<html><script>alert(1)</script></html>", name="x.pdf", content_type="application/pdf")
        assert person.status == 415
        # larger than a request may be
        await person.open()
        await person.upload(b"\xff\xd8\xff" + b"\x00" * (2 * 1024 * 1024), name="big.jpg", content_type="image/jpeg")
        assert person.status == 413 and "文件过大" in person.page
        # an empty file
        await person.open()
        await person.upload(b"", name="empty.png")
        assert _snapshot(db) == before
        # one file per item allowed here: the first is kept, the second refused by the engine's limit
        await person.open()
        await person.upload(PDF, name="报告.pdf", content_type="application/pdf")
        assert "（目前共 1 份）" in person.page
        await person.upload(PNG)
        assert "这个文件未保存" in person.page or "未保存" in person.page
        assert db.execute("SELECT count(*) FROM evidence").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM web_files").fetchone()[0] == 1
        (kept,) = list(db.query("SELECT e.file_name, e.mime_type, e.kind FROM evidence e"))
        assert kept == {"file_name": "报告.pdf", "mime_type": "application/pdf", "kind": "document"}
    finally:
        await client.close()


async def test_removed_members_revoked_links_and_other_sessions_get_nothing(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    from urllib.parse import urlsplit

    code = create_invite(db, motor_lab.id, max_uses=5)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN")
    other = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN")
    try:
        person = WebPerson(client)
        link_of(await person.join(code))
        await person.open()
        await person.press("yes")
        (user,) = list(db.query("SELECT telegram_id FROM users WHERE channel = 'web'"))
        # a colleague's session cannot use another session's PDF link (keys live in the session)
        colleague = WebPerson(other)
        mate_link = link_of(await colleague.join(code, name="李雷"))
        response = await other.get("/chat/pdf/" + "A" * 32)
        assert response.status == 404 and "此下载链接无效" in await response.text()
        # removed: the open page and its forms stop working at once
        form = {"csrf": csrf_of(person.page), "origin": person.origin(), "kind": "text", "text": "王五"}
        before = _snapshot(db)
        remove_member(db, motor_lab.id, user["telegram_id"], removed_by="test")
        # (removal ends their sessions, so the form's token is no longer one: refused before any handler)
        response = await client.post("/chat", data=form)
        assert response.status == 403 and "此表单已失效" in await response.text()
        page = await client.get("/chat")
        assert page.status == 401 and "请先登录" in await page.text()
        assert _snapshot(db) == before
        # a revoked sign-in link signs nobody in, and ends the sessions it opened
        await colleague.open()
        (_, mate) = [r["telegram_id"] for r in db.query("SELECT telegram_id FROM users WHERE channel = 'web' ORDER BY telegram_id DESC")]
        store.revoke_links(db, mate)
        assert (await other.get("/chat")).status == 401
        signin = await other.get(urlsplit(mate_link).path)
        assert signin.status == 404 and "此登录链接无效" in await signin.text()
        response = await other.post("/chat", data={"csrf": csrf_of(colleague.page), "origin": colleague.origin(), "kind": "text", "text": "王五"})
        assert response.status == 403 and _snapshot(db) == before
    finally:
        await client.close()
        await other.close()


async def test_the_language_switch_redraws_the_screen_the_person_is_on(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    client, person = await _member_on_item(db, checklist, motor_lab)
    try:
        await person.press("noncompliant")
        assert person.kind() == "followup-problem" and "请用一条消息描述发现的问题" in person.page
        response = await client.post("/lang", data={"csrf": csrf_of(person.page), "lang": "en", "next": "/chat"})
        page = await response.text()
        assert response.status == 200 and '<html lang="en">' in page
        assert "Item 4/44" in page and "Please describe the problem you found" in page and "Evidence: a photo or a PDF document" in page
        person.page = page
        await person.type("Records missing")
        assert person.kind() == "followup-measure" and "What rectification measure" in person.page
        await client.post("/lang", data={"csrf": csrf_of(person.page), "lang": "zh_CN", "next": "/chat"})
        assert "整改措施" in await person.open()
    finally:
        await client.close()
