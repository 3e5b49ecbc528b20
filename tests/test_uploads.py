"""Uploads through Telegram (the stand-in): evidence files are bounded per item and per
institution, paper-pledge files per submission and per institution, each refusal says
the limit and what to do and keeps what was stored; a paper pledge whose download meets
a 502 or a dropped connection is retried, then the user is told plainly to send again."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from bot.core.checklist import Checklist
from bot.pledge.submit import sign
from bot.telegram.callbacks import NavAction, NavCb
from bot.telegram.routers import pledge as pledge_router
from storage.institutions import Institution
from tests.harness import Chat, invite, read_db, running_bot
from tests.pledge_support import fill
from tests.standin import TelegramStandin

USER, COLLEAGUE = 9501, 9502
KEPT = "该文件未保存，此前发送的文件均已保留。"


async def join(chat: Chat, code: str) -> None:
    await chat.say(f"/start {code}")
    await chat.press("是，这是我的机构")


def evidence(db_path: Path, item_id: str | None = None) -> list[dict[str, object]]:
    rows = read_db(db_path)["evidence"].rows
    return [r for r in rows if item_id is None or r["item_id"] == item_id]


def paper(db_path: Path) -> list[dict[str, object]]:
    return list(read_db(db_path)["submission_files"].rows_where("kind = 'paper_pledge'", order_by="id"))


async def upload(chat: Chat, kind: str, **kwargs: Any) -> str:
    """Send evidence; wait for the screen shown after it; return the notice before it."""
    mark = chat.tg.mark()
    await chat.send(kind, **kwargs)
    return chat.replies_since(mark)[0]


def no_errors(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_evidence_is_bounded_per_item_and_per_institution(
    tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, food_lab: Institution,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setenv("ZICHA_UPLOAD_ITEM_FILES", "2")
    monkeypatch.setenv("ZICHA_UPLOAD_ITEM_MB", "1")
    monkeypatch.setenv("ZICHA_UPLOAD_INSTITUTION_FILES", "3")
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    ws = fill(db, checklist, food_lab, by=USER, leave=0)
    compliance = [i for i in ws.interview.items if i.kind == "compliance"]
    first, second = compliance[1], compliance[5]  # the two non-compliant items
    first_no, second_no = ws.interview.position(first.id), ws.interview.position(second.id)
    async with running_bot(tg, db_path):
        chat, colleague = Chat(tg, USER), Chat(tg, COLLEAGUE)
        await join(chat, code)
        await join(colleague, code)
        await chat.press_data(NavCb(action=NavAction.OPEN, sc=ws.selfcheck.id, item=first.id).pack(), chat.current())
        for n in (1, 2):
            assert f"（目前共 {n} 份）" in await upload(chat, "photo")
        # A third file for the same item: refused, saying the limit and what to do.
        refused = await upload(chat, "document", file_name="third.pdf")
        assert f"第 {first_no} 项已有 2 个证明材料文件" in refused and KEPT in refused and "问题描述" in refused
        assert len(evidence(db_path, first.id)) == 2

        # Bytes per item: a 1.5 MB file for the other item is over its 1 MB.
        await colleague.press_data(NavCb(action=NavAction.OPEN, sc=ws.selfcheck.id, item=second.id).pack(), colleague.current())
        big = await upload(colleague, "document", file_name="scan.pdf", content=b"%PDF" + b"x" * 1_500_000)
        assert f"第 {second_no} 项的证明材料超过单项上限 1 MB" in big and KEPT in big
        assert f"已为第 {second_no} 项保存证明材料（目前共 1 份）" in await upload(colleague, "photo")
        assert len(evidence(db_path, second.id)) == 1

        # The institution's 3 files are reached (2 + 1): a colleague's next one is refused too.
        over = await upload(colleague, "photo")
        assert "本机构上传的文件已达上限：共 3 个文件" in over and KEPT in over
        assert len(evidence(db_path)) == 3
        # The conversation goes on: the screen is shown again and typing still works.
        assert colleague.current().buttons
        assert not tg.unanswered()
    no_errors(caplog)


def signed_lab(db: sqlite_utils.Database, checklist: Checklist, lab: Institution) -> int:
    ws = fill(db, checklist, lab, by=USER, leave=0)
    return sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=USER, by_name="张三").id


async def test_paper_pledges_are_bounded_per_submission(
    tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, food_lab: Institution,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setenv("ZICHA_UPLOAD_SUBMISSION_FILES", "2")
    monkeypatch.setenv("ZICHA_UPLOAD_SUBMISSION_MB", "1")
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    submission = signed_lab(db, checklist, food_lab)
    scan = b"%PDF-1.4 scan " + b"s" * 600_000
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER)
        await join(chat, code)
        attached = await chat.send("document", screen=False, file_name="pledge.pdf", content=scan)
        assert "（目前共 1 个文件）" in attached.text
        downloads = len(tg.calls("downloadFile"))
        # A second 0.6 MB scan would make 1.2 MB: refused before it is even downloaded.
        too_big = await chat.send("document", screen=False, file_name="again.pdf", content=scan)
        assert "纸质承诺书文件总量超过上限 1 MB" in too_big.text and KEPT in too_big.text
        assert len(tg.calls("downloadFile")) == downloads
        await chat.send("photo", screen=False)
        third = await chat.send("photo", screen=False)
        assert "已有 2 个纸质承诺书文件，已达上限" in third.text and "一份清晰" in third.text
        assert not tg.unanswered()
    rows = paper(db_path)
    assert len(rows) == 2 and all(r["submission_id"] == submission for r in rows)
    assert rows[0]["sha256"] == hashlib.sha256(scan).hexdigest() and rows[0]["content"] == scan
    no_errors(caplog)


async def test_paper_pledges_count_towards_the_institution(
    tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, food_lab: Institution,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("ZICHA_UPLOAD_INSTITUTION_MB", "0.5")
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    signed_lab(db, checklist, food_lab)
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER)
        await join(chat, code)
        # The declared size passes, the downloaded one is checked again before it is kept.
        await chat.send("document", screen=False, file_name="a.pdf", content=b"%PDF" + b"a" * 400_000)
        over = await chat.send("document", screen=False, file_name="b.pdf", content=b"%PDF" + b"b" * 200_000)
        assert "本机构上传的文件已达上限" in over.text and "0.5 MB" in over.text
    assert len(paper(db_path)) == 1


async def test_a_paper_pledge_download_is_retried_then_the_user_is_told_to_send_again(
    tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, food_lab: Institution,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setattr(pledge_router, "DOWNLOAD_BACKOFF", 0.01, raising=False)  # fast retries
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    signed_lab(db, checklist, food_lab)
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER)
        await join(chat, code)
        # Two 502s from the file endpoint, then it works: attached once.
        fault = tg.fail_downloads(2, status=502)
        attached = await chat.send("photo", screen=False, content=b"\xff\xd8 first scan \xff\xd9")
        assert fault.remaining == 0 and "（目前共 1 个文件）" in attached.text
        assert len(paper(db_path)) == 1
        # A dropped connection, then it works.
        dropped = tg.fail_downloads(1, disconnect=True)
        await chat.send("photo", screen=False, content=b"\xff\xd8 second scan \xff\xd9")
        assert dropped.remaining == 0 and len(paper(db_path)) == 2
        # The file endpoint keeps failing: after 3 attempts the user is told plainly.
        mark = tg.mark()
        down = tg.fail_downloads(10, status=502)
        failed = await chat.send("photo", screen=False, content=b"\xff\xd8 third scan \xff\xd9")
        assert down.hits == 3 and "已尝试 3 次" in failed.text and "没有任何内容丢失" in failed.text
        assert len(tg.calls("downloadFile", after=mark)) == 3
        assert len(paper(db_path)) == 2  # nothing half-stored, nothing lost
        down.times = down.hits  # the endpoint is back: sending again works
        again = await chat.send("photo", screen=False, content=b"\xff\xd8 third scan \xff\xd9")
        assert "（目前共 3 个文件）" in again.text
        assert not tg.unanswered()
    assert [r["content"] for r in paper(db_path)][-1] == b"\xff\xd8 third scan \xff\xd9"
    no_errors(caplog)
    assert "Sorry, something went wrong" not in caplog.text
