"""Staff see the evidence files of an item and remove one sent by mistake: in Telegram
(the stand-in, the real bot) and in the browser (the real aiohttp app), where the files sent
on the web can also be downloaded — by the institution's own staff only."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import sqlite_utils

from bot.core.checklist import Checklist
from bot.telegram.callbacks import EvidenceRemoveCb
from storage.institutions import Institution, create_invite
from tests.harness import Chat, invite, read_db, running_bot
from tests.standin import TelegramStandin
from tests.test_web_chat import PDF, PNG, WebPerson, answer_everything
from tests.web_support import csrf_of, web_client

USER = 5301


def _db_path(db: sqlite_utils.Database) -> Path:
    return Path(next(db.query("PRAGMA database_list"))["file"])


def _evidence(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT id, item_id, kind, file_id, file_name FROM evidence ORDER BY id"))


async def _to_item_four_with_two_files(person: WebPerson) -> None:
    """From the first screen to item 4, non-compliant, with a photo and a PDF as its
    evidence, its rectification done; then back on item 4's question."""
    await person.open()
    await person.press("yes")
    await person.type("王五")
    await person.type("13812345678")
    assert "第 4/44 项" in person.page
    await person.press("noncompliant")
    await person.upload(PNG, "现场.png")
    await person.upload(PDF, "记录<b>x</b>.pdf", "application/pdf")
    await person.type("记录缺失")
    await person.type("补充记录")
    await person.press("rect:done")
    await person.press("nav:prev")
    assert person.kind() == "question" and "第 4/44 项" in person.page


async def test_web_staff_list_download_and_remove_an_evidence_file(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN")
    try:
        person = WebPerson(client)
        await person.join(code, name="王芳")
        await _to_item_four_with_two_files(person)
        assert "evidence:0" in person.buttons() and "证明材料（2）" in person.page
        await person.press("evidence:0")
        assert person.kind() == "evidence" and "共 2 份文件" in person.page and "王芳" in person.page
        assert "记录&lt;b&gt;x&lt;/b&gt;.pdf" in person.page  # a typed file name, escaped
        photo, pdf = _evidence(db)
        assert await person.open() and person.kind() == "evidence"  # a reload shows the same list

        # Download: the bytes as sent, as a download of the type they are.
        response = await client.get(f"/chat/evidence/{photo['id']}")
        assert response.status == 200 and await response.read() == PNG
        assert response.content_type == "image/png" and response.headers["Content-Disposition"].startswith("attachment;")
        assert "sandbox" in response.headers["Content-Security-Policy"]
        response = await client.get(f"/chat/evidence/{pdf['id']}")
        assert response.content_type == "application/pdf" and await response.read() == PDF
        assert response.headers["Content-Disposition"].endswith(".pdf")  # the type it is, whatever it was named

        # Remove the photo: asked first, then gone for everyone; the record of it is kept.
        await person.press(f"evidence:ask:{photo['id']}")
        assert person.kind() == "evidence-remove" and "无法恢复" in person.page
        await person.press(f"evidence:remove:{photo['id']}")
        assert person.kind() == "evidence" and "已删除：第 1 份文件（现场.png）" in person.page
        assert "共 1 份文件" in person.page
        assert [e["id"] for e in _evidence(db)] == [pdf["id"]]
        (removed,) = list(db.query("SELECT id, file_name, removed_by FROM evidence_removed"))
        (web_person,) = list(db.query("SELECT telegram_id FROM users WHERE channel = 'web'"))
        assert removed == {"id": photo["id"], "file_name": "现场.png", "removed_by": web_person["telegram_id"]}
        assert db.execute("SELECT count(*) FROM web_files WHERE ref = ?", [photo["file_id"]]).fetchone()[0] == 0
        assert (await client.get(f"/chat/evidence/{photo['id']}")).status == 404
        assert await person.open() and person.kind() == "evidence"  # a reload after removing removes nothing more

        # The item's question counts what is left; back to it from the list.
        await person.press("nav:open:lawful-01")
        assert "证明材料（1）" in person.page
    finally:
        await client.close()


async def test_a_stale_or_forged_removal_changes_nothing(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id, max_uses=2)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN")
    colleague_client = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN")
    try:
        person = WebPerson(client)
        await person.join(code, name="王芳")
        await _to_item_four_with_two_files(person)
        photo, pdf = _evidence(db)
        await person.press("evidence:0")
        await person.press(f"evidence:ask:{photo['id']}")
        # A colleague removes the same file meanwhile.
        colleague = WebPerson(colleague_client)
        await colleague.join(code, name="李雷")
        await colleague.open()
        sc = db.execute("SELECT id FROM selfchecks").fetchone()[0]
        removal = {"kind": "unevidence", "sc": str(sc), "item": "lawful-01", "ev": str(photo["id"]), "sure": "1"}
        await colleague.post({"csrf": csrf_of(colleague.page), "origin": colleague.origin(), "act": urlencode(removal)})
        assert [e["id"] for e in _evidence(db)] == [pdf["id"]]
        # The first person's confirmation now finds nothing to remove.
        await person.press(f"evidence:remove:{photo['id']}")
        assert "此文件已不在本项的证明材料中" in person.page and person.kind() == "evidence"
        # Forged: another item's file, another self-check, a file id that is no file.
        for forged in ({**removal, "ev": str(pdf["id"]), "item": "lawful-02"}, {**removal, "ev": str(pdf["id"]), "sc": str(sc + 1)},
                       {**removal, "ev": "999999"}, {**removal, "ev": "-1"}, {**removal, "ev": "9" * 30}):  # fmt: skip
            await person.open()
            await person.post({"csrf": csrf_of(person.page), "origin": person.origin(), "act": urlencode(forged)})
            assert person.status == 400 or "不属于" in person.page or "不在本项的证明材料中" in person.page, forged
        assert [e["id"] for e in _evidence(db)] == [pdf["id"]]
        assert db.execute("SELECT count(*) FROM evidence_removed").fetchone()[0] == 1
    finally:
        await client.close()
        await colleague_client.close()


async def test_only_the_institutions_own_staff_can_download_its_files(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, food_lab: Institution
) -> None:
    client = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN")
    stranger_client = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN")
    anonymous = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN")
    try:
        person = WebPerson(client)
        await person.join(create_invite(db, motor_lab.id), name="王芳")
        await _to_item_four_with_two_files(person)
        photo, _pdf = _evidence(db)
        stranger = WebPerson(stranger_client)
        await stranger.join(create_invite(db, food_lab.id), name="外人")
        refused = await stranger_client.get(f"/chat/evidence/{photo['id']}")
        assert refused.status == 404 and PNG not in await refused.read()
        assert (await anonymous.get(f"/chat/evidence/{photo['id']}")).status == 401
        for bogus in ("0", "abc", "9" * 40, "-3", "%C2%B2", "9999999999999999999"):
            assert (await client.get(f"/chat/evidence/{bogus}")).status == 404
    finally:
        for c in (client, stranger_client, anonymous):
            await c.close()


async def test_once_signed_the_files_are_listed_but_cannot_be_removed(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    code = create_invite(db, motor_lab.id)
    client = await web_client(db, checklist, _db_path(db), zicha_locale="zh_CN")
    try:
        person = WebPerson(client)
        await person.join(code, name="王芳")
        await _to_item_four_with_two_files(person)
        await person.press("nav:skip")
        await answer_everything(person)
        await person.press("pledge:start")
        await person.type("赵六")
        await person.press("pledge:role:legal_representative")
        await person.press("pledge:sign")
        assert db.execute("SELECT count(*) FROM submissions").fetchone()[0] == 1
        photo, _pdf = _evidence(db)
        sc = db.execute("SELECT id FROM selfchecks").fetchone()[0]
        await person.post({"csrf": csrf_of(person.page), "origin": person.origin(), "act": urlencode({"kind": "evidence", "sc": sc, "item": "lawful-01"})})
        assert person.kind() == "evidence" and "共 2 份文件" in person.page
        assert not [k for k in person.buttons() if k.startswith("evidence:ask")] and "答案已锁定" in person.page
        forged = {"kind": "unevidence", "sc": sc, "item": "lawful-01", "ev": photo["id"], "sure": "1"}
        await person.post({"csrf": csrf_of(person.page), "origin": person.origin(), "act": urlencode(forged)})
        assert 'id="notice">已于' in person.page and "答案已锁定" in person.page
        assert len(_evidence(db)) == 2 and db.execute("SELECT count(*) FROM evidence_removed").fetchone()[0] == 0
    finally:
        await client.close()


async def test_telegram_staff_list_and_remove_an_evidence_file(
    tg: TelegramStandin, db_path: Path, checklist: Checklist, motor_lab: Institution
) -> None:
    code = invite(db_path, motor_lab.id)
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER, first_name="李四")
        screen = await chat.join_and_give_contact(code)
        assert "第 4/44 项" in screen.text
        _, screen = await chat.press("不符合", screen)
        await chat.send("photo")
        screen = await chat.send("document", file_name="整改记录.pdf")
        screen = await chat.say("记录缺失")
        screen = await chat.say("补充记录")
        _, screen = await chat.press("已完成整改", screen)
        _, screen = await chat.press("◀ 上一项", screen)
        assert "第 4/44 项" in screen.text and "📎 证明材料（2）" in screen.button_texts
        _, listing = await chat.press("📎 证明材料（2）", screen)
        assert "共 2 份文件" in listing.text and "整改记录.pdf" in listing.text and "李四" in listing.text
        assert {"🗑 1", "🗑 2", "↩ 返回该项问题"} <= set(listing.button_texts)
        _, asking = await chat.press("🗑 2", listing)
        assert "无法恢复" in asking.text and "整改记录.pdf" in asking.text
        answer, after = await chat.press("🗑 是，删除", asking)
        assert answer.text == "已删除：第 2 份文件（整改记录.pdf）。"
        assert "共 1 份文件" in after.text and "🗑 2" not in after.button_texts
        db = read_db(db_path)
        assert [e["kind"] for e in db["evidence"].rows] == ["photo"]
        (removed,) = list(db["evidence_removed"].rows)
        assert removed["file_name"] == "整改记录.pdf" and removed["removed_by"] == USER
        # The same confirmation pressed again (an old message): nothing more is removed.
        again = await chat.press_data(EvidenceRemoveCb(sc=removed["selfcheck_id"], item=removed["item_id"], ev=removed["id"], sure=True).pack(), asking)
        assert again.text == "此文件已不在本项的证明材料中。"
        assert len(list(read_db(db_path)["evidence"].rows)) == 1
        _, question = await chat.press("↩ 返回该项问题", after)
        assert "📎 证明材料（1）" in question.button_texts


async def test_an_attachment_items_only_file_stays_and_its_answer_names_the_latest_one(
    db: sqlite_utils.Database, motor_lab: Institution
) -> None:
    from storage.answers import answer_history
    from tests.test_e2e_item_kinds import CAMPAIGN, table

    def scan() -> dict:
        (row,) = list(db.query("SELECT selfcheck_id, value, text, rev FROM answers WHERE item_id = 'header-cma-scan'"))
        return row

    client = await web_client(db, table(), _db_path(db), zicha_campaign=CAMPAIGN)
    try:
        person = WebPerson(client)
        await person.join(create_invite(db, motor_lab.id))
        await person.open()
        await person.press("yes")
        await person.type("王五")
        await person.type("质量负责人")
        await person.press("pick:0")
        await person.press("pick:done")
        await person.type("2027-06-30")
        await person.upload(PDF, name="旧证书.pdf", content_type="application/pdf")
        await person.press("nav:prev")
        assert "请上传现行有效的资质认定证书扫描件" in person.page and "evidence:0" in person.buttons()
        (old,) = _evidence(db)
        await person.press("evidence:0")
        assert not [k for k in person.buttons() if k.startswith("evidence:ask")] and "此文件就是本项的回答" in person.page
        forged = {"kind": "unevidence", "sc": scan()["selfcheck_id"], "item": "header-cma-scan", "ev": old["id"], "sure": "1"}
        await person.post({"csrf": csrf_of(person.page), "origin": person.origin(), "act": urlencode(forged)})
        assert "这是本项回答的唯一文件" in person.page and len(_evidence(db)) == 1  # the answer keeps its file
        await person.press("nav:open:header-cma-scan")
        await person.upload(PDF, name="新证书.pdf", content_type="application/pdf")
        assert scan()["text"] == "新证书.pdf"
        await person.press("nav:prev")
        await person.press("evidence:0")
        new = _evidence(db)[1]
        await person.press(f"evidence:ask:{new['id']}")
        before = scan()
        await person.press(f"evidence:remove:{new['id']}")
        assert "已删除：第 2 份文件（新证书.pdf）" in person.page
        after = scan()
        assert (after["value"], after["text"]) == ("file", "旧证书.pdf") and after["rev"] == before["rev"] + 1
        assert len(answer_history(db, after["selfcheck_id"], "header-cma-scan")) == 3  # 旧, 新, 旧 again
    finally:
        await client.close()


def test_a_removed_files_id_is_never_given_to_a_later_file(db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution) -> None:
    """The newest file removed, then another sent: it gets a new id, so an old "remove"
    button cannot reach it and its own removal is recorded apart."""
    from bot.core.interview import Choice
    from bot.selfcheck import open_workspace

    ws = open_workspace(db, checklist, motor_lab)
    item = next(i for i in ws.interview.items if i.kind == "compliance")
    ws.record_choice(item.id, Choice.NONCOMPLIANT, by=1, expected_rev=0)
    first = ws.add_evidence(item.id, by=1, kind="photo", file_id="f", file_unique_id="u")
    second = ws.add_evidence(item.id, by=1, kind="photo", file_id="f", file_unique_id="u")
    assert ws.remove_evidence(item.id, second, by=1) is not None
    third = ws.add_evidence(item.id, by=1, kind="photo", file_id="f", file_unique_id="u")
    assert third > second > first
    assert ws.remove_evidence(item.id, second, by=1) is None  # the old button: nothing
    assert ws.remove_evidence(item.id, third, by=1) is not None
    assert [r["id"] for r in db.query("SELECT id FROM evidence_removed ORDER BY id")] == [second, third]
