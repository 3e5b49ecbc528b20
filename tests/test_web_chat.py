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
from storage.institutions import Institution, create_invite
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

    async def open(self) -> str:
        response = await self.client.get("/chat")
        self.status, self.page = response.status, await response.text()
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
        assert person.kind() == "followup-target_date" and 'type="date"' in person.page
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
        # revising: its warning, then the signature is void and the answers open again
        await person.open()
        await person.press("pledge:rev")
        assert person.kind() == "pledge-revise"
        await person.press("pledge:revok")
        assert person.kind() == "review"
        assert next(iter(db.query("SELECT superseded_at FROM submissions")))["superseded_at"] is not None
    finally:
        await client.close()
