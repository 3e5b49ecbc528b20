"""Every item kind of the 2025 table answered in the browser, as in Telegram
(tests/test_e2e_item_kinds.py): multiple choice as buttons toggled then 完成, a date and a
number typed, an attachment answered by an upload, yes/no as buttons, and last year's answer
taken with 与去年相同; forged and hostile forms store nothing. A web-only institution must be
able to finish every shipped table, or it cannot sign."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import sqlite_utils

from bot.selfcheck import open_workspace
from storage.answers import answer_history, evidence_for
from storage.institutions import Institution, create_invite
from tests.test_e2e_item_kinds import CAMPAIGN, answer_everything, rectified_in_2023, table
from tests.test_web_chat import PDF, WebPerson
from tests.web_support import csrf_of, web_client


def stored(db: sqlite_utils.Database, item_id: str) -> list[dict]:
    return list(db.query("SELECT a.* FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id "
                         "WHERE s.checklist_id = ? AND a.item_id = ?", [CAMPAIGN, item_id]))  # fmt: skip


def _db_path(db: sqlite_utils.Database) -> Path:
    return Path(next(db.query("PRAGMA database_list"))["file"])


def _position(page: str) -> int:
    match = re.search(r"第 (\d+)/\d+ 项", page)
    assert match, "no item on the page"
    return int(match[1])


async def test_every_new_kind_is_answered_in_the_browser_and_forged_forms_store_nothing(
    db: sqlite_utils.Database, motor_lab: Institution
) -> None:
    client = await web_client(db, table(), _db_path(db), zicha_campaign=CAMPAIGN)
    try:
        person = WebPerson(client)
        await person.join(create_invite(db, motor_lab.id))
        page = await person.open()
        assert "本机构信息" in page
        await person.press("yes")
        await person.type("王五")
        page = await person.type("质量负责人")

        # multiple choice: big buttons toggled, nothing stored until 完成; a forged option number is refused
        assert "本机构持有的资质证书" in page and person.kind() == "question"
        assert 'class="big" name="act"' in page and 'data-key="pick:done"' in page
        page = await person.press("pick:0")
        assert "☑ 检验检测机构资质认定证书（CMA）" in page
        page = await person.press("pick:1")
        assert stored(db, "header-certs") == []  # toggling stores nothing
        forged = person.buttons()["pick:0"].replace("option=0", "option=7")
        assert forged != person.buttons()["pick:0"]
        page = await person.post({"csrf": csrf_of(page), "origin": person.origin(), "act": forged})
        assert person.status == 200 and "本项没有该选项。未保存任何内容。" in page
        assert stored(db, "header-certs") == []
        await person.press("pick:done")
        [certs] = stored(db, "header-certs")
        assert (certs["value"], certs["text"]) == ("selected", "cma cnas")

        # date: typed, an impossible one refused
        page = await person.type("2025-02-30")
        assert "日期“2025-02-30”不存在" in page and stored(db, "header-cma-expiry") == []
        page = await person.type("2027年6月30日")
        assert [r["text"] for r in stored(db, "header-cma-expiry")] == ["2027-06-30"]

        # attachment: the page offers an upload (and no text box); a file of another type stores nothing
        assert "请上传现行有效的资质认定证书扫描件" in page
        assert 'type="file"' in page and "本项要求上传的文件：照片或 PDF 文件" in page and 'id="reply"' not in page
        await person.upload(b"MZ\x90\x00 not a document", name="cert.exe", content_type="application/pdf")
        assert person.status == 415 and stored(db, "header-cma-scan") == []
        await person.open()
        page = await person.upload(PDF, name="CMA证书.pdf", content_type="application/pdf")
        assert "已保存：已上传文件：CMA证书.pdf" in page
        [scan] = stored(db, "header-cma-scan")
        assert (scan["value"], scan["text"]) == ("file", "CMA证书.pdf")
        assert [e["file_name"] for e in evidence_for(db, scan["selfcheck_id"], "header-cma-scan")] == ["CMA证书.pdf"]

        # number, then yes/no as buttons
        page = await person.type("十二")
        assert "“十二”不是数字" in page and stored(db, "header-staff") == []
        page = await person.type("１２０ 人")
        assert [r["text"] for r in stored(db, "header-staff")] == ["120"]
        assert "多个场所" in page and 'class="big choice choice-negative"' in page
        page = await person.press("negative")
        assert [r["value"] for r in stored(db, "header-sites")] == ["negative"]
        assert _position(page) == 9  # on to the first compliance item

        # one history row per stored answer, none for the refusals
        sc = scan["selfcheck_id"]
        for item_id in ("header-certs", "header-cma-expiry", "header-cma-scan", "header-staff", "header-sites"):
            assert len(answer_history(db, sc, item_id)) == 1, item_id
    finally:
        await client.close()


async def test_last_years_answer_is_taken_in_the_browser_and_a_forged_one_is_refused(
    db: sqlite_utils.Database, motor_lab: Institution
) -> None:
    rectified_in_2023(db, motor_lab)
    answer_everything(open_workspace(db, table(), motor_lab), by=1, until="lawful-01")
    client = await web_client(db, table(), _db_path(db), zicha_campaign=CAMPAIGN)
    try:
        person = WebPerson(client)
        await person.join(create_invite(db, motor_lab.id))
        page = await person.open()
        assert "2023：不符合 · 已完成整改" in page and "↺ 与去年相同" in page
        assert stored(db, "lawful-01") == []  # shown, never carried silently
        carry = person.buttons()["carry"]
        page = await person.press("carry")
        [now] = stored(db, "lawful-01")
        assert (now["value"], now["problem"], now["measure"], now["rect_status"]) == ("noncompliant", "证书过期", "已换证", "done")
        assert now["rev"] == 1 and now["answered_by"] < 0  # the web person's id
        # lawful-02 was not answered in 2023: no button, and last year's button forged onto it stores nothing
        assert "与去年相同" not in page
        forged = carry.replace("item=lawful-01", "item=lawful-02")
        assert forged != carry and urlencode({"item": "lawful-02"}) in forged
        page = await person.post({"csrf": csrf_of(page), "origin": person.origin(), "act": forged})
        assert person.status == 200 and "该项目不能选择这个答案。" in page
        assert stored(db, "lawful-02") == []
    finally:
        await client.close()
