"""Every item kind of the 2025 table answered through Telegram (the stand-in, the real
dispatcher, ZICHA_CAMPAIGN=samr-2025-national): yes/no and single/multiple choice as
buttons, numbers and dates typed, an attachment that waits for a file; hostile input
refused with a clear message and nothing stored; ``relevant`` items that come and go with
an earlier answer; last year's answer offered as 与去年相同 for the same question."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlite_utils

from bot.config import Settings
from bot.core.checklist import Checklist, load_checklist
from bot.core.interview import Choice, FollowUp, RectStatus
from bot.selfcheck import Workspace, open_workspace
from bot.telegram.app import load_checklist as configured_checklist
from bot.telegram.callbacks import AnswerCb, CarryCb, PickCb
from storage.answers import answer_history, evidence_for
from storage.institutions import Institution
from tests.conftest import REPO
from tests.harness import Chat, invite, read_db, running_bot
from tests.standin import BotMessage, TelegramStandin

USER = 5301
CAMPAIGN = "samr-2025-national"
TODAY = dt.date(2025, 6, 1)


def table() -> Checklist:
    """The 2025 national table as ZICHA_CAMPAIGN runs it (its campaign id and deadline)."""
    return configured_checklist(Settings(_env_file=None, zicha_campaign=CAMPAIGN))  # type: ignore[call-arg]


def stored(db_path: Path, item_id: str) -> list[dict]:
    db = read_db(db_path)
    return list(db.query("SELECT a.* FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id "
                         "WHERE s.checklist_id = ? AND a.item_id = ?", [CAMPAIGN, item_id]))  # fmt: skip


def history(db_path: Path, item_id: str) -> list[dict]:
    db = read_db(db_path)
    sc = next(db.query("SELECT id FROM selfchecks WHERE checklist_id = ?", [CAMPAIGN]))["id"]
    return answer_history(db, sc, item_id)


async def join(chat: Chat, code: str) -> BotMessage:
    screen = await chat.say(f"/start {code}")
    assert "此邀请对应以下机构" in screen.text
    await chat.press("是，这是我的机构")
    return chat.current()


def pick_data(message: BotMessage) -> PickCb:
    data = next(d for row in message.buttons for _t, d in row if d and d.startswith(PickCb.__prefix__ + ":"))
    return PickCb.unpack(data)


def answer_everything(ws: Workspace, *, by: int, until: str | None = None, skip: frozenset[str] = frozenset()) -> None:
    """Answer the items shown, in order, up to (not including) ``until``, each as a user would."""
    for item in ws.interview.items:
        if item.id == until:
            return
        if item.id in skip or not ws.interview.shown(item, ws.answers()):
            continue
        rev = ws.answer(item.id).rev if ws.answer(item.id) else 0
        if item.kind == "confirm":
            ws.record_choice(item.id, Choice.YES, by=by, expected_rev=rev)
        elif item.kind == "text":
            ws.record_text(item.id, "王五", by=by)
        elif item.kind == "compliance":
            ws.record_choice(item.id, Choice.COMPLIANT, by=by, expected_rev=rev)
        elif item.kind in ("select_one", "select_multiple"):
            ws.record_options(item.id, [item.options[0].id], by=by, expected_rev=rev)
        elif item.kind == "attachment":
            ws.record_attachment(item.id, by=by, kind="document", file_id="f1", file_unique_id="u1", file_name="cma.pdf")
        elif item.kind == "yes_no":
            ws.record_typed(item.id, "否", by=by)
        elif item.kind == "number":
            ws.record_typed(item.id, "12", by=by)
        else:
            ws.record_typed(item.id, "2027-06-30", by=by)


async def test_every_new_kind_is_answered_in_telegram_and_hostile_input_stores_nothing(
    tg: TelegramStandin, db_path: Path, motor_lab: Institution
) -> None:
    code = invite(db_path, motor_lab.id)
    async with running_bot(tg, db_path, zicha_campaign=CAMPAIGN):
        chat = Chat(tg, USER)
        screen = await join(chat, code)
        assert "本机构信息" in screen.text
        await chat.press("是，信息无误")
        await chat.say("王五")
        screen = await chat.say("质量负责人")

        # multiple choice: toggles, a forged option number, then 完成
        assert "本机构持有的资质证书" in screen.text and "请选择所有符合的选项，然后点击“完成”。" in screen.text
        _answer, screen = await chat.press("☐ 检验检测机构资质认定证书（CMA）")
        assert "☑ 检验检测机构资质认定证书（CMA）" in screen.button_texts and "已选：检验检测机构资质认定证书（CMA）" in screen.text
        _answer, screen = await chat.press("☐ CNAS 实验室认可证书")
        assert stored(db_path, "header-certs") == []  # toggling stores nothing
        genuine = pick_data(screen)
        forged = PickCb(sc=genuine.sc, item=genuine.item, fp=genuine.fp, rev=genuine.rev, option=7).pack()
        answer = await chat.press_data(forged, screen)
        assert answer.text == "本项没有该选项。未保存任何内容。"
        answer = await chat.press_data(forged.rsplit(":", 1)[0] + ":cma", screen)  # not a number: does not unpack
        assert answer.text == "此按钮已失效。"
        assert stored(db_path, "header-certs") == []
        _answer, screen = await chat.press("✔ 完成")
        [certs] = stored(db_path, "header-certs")
        assert (certs["value"], certs["text"]) == ("selected", "cma cnas")

        # date: an impossible one is refused, a Chinese form is read
        assert "资质认定证书有效期截止日期" in screen.text and "请输入日期，如 2025-06-30（年-月-日）。" in screen.text
        mark = tg.mark()
        screen = await chat.say("2025-02-30")
        assert "日期“2025-02-30”不存在，请核对月份和日期。 未保存任何内容。" in chat.replies_since(mark)
        assert stored(db_path, "header-cma-expiry") == [] and "资质认定证书有效期截止日期" in screen.text
        screen = await chat.say("2027年6月30日")
        assert [r["text"] for r in stored(db_path, "header-cma-expiry")] == ["2027-06-30"]

        # attachment: typed text is refused; a document is kept as evidence and answers the item
        assert "请上传现行有效的资质认定证书扫描件" in screen.text and "文字答复不能代替" in screen.text
        mark = tg.mark()
        screen = await chat.say("证书见附件")
        assert "本项需要上传文件，请以照片或文件形式发送，文字答复不能代替。 未保存任何内容。" in chat.replies_since(mark)
        assert stored(db_path, "header-cma-scan") == []
        mark = tg.mark()
        screen = await chat.send("document", file_name="CMA证书.pdf")
        assert "已保存：已上传文件：CMA证书.pdf" in chat.replies_since(mark)
        [scan] = stored(db_path, "header-cma-scan")
        assert (scan["value"], scan["text"]) == ("file", "CMA证书.pdf")
        assert [e["file_name"] for e in evidence_for(read_db(db_path), scan["selfcheck_id"], "header-cma-scan")] == ["CMA证书.pdf"]

        # number: out of range and not a number are refused; full-width digits and the unit are read
        assert "本机构在岗检验检测人员人数" in screen.text and "请输入数字，范围 1～100,000 人。" in screen.text
        for typed, told in (("0", "数值不能小于 1 人。"), ("十二", "“十二”不是数字"), ("1e9", "数值不能大于 100,000 人。")):
            mark = tg.mark()
            screen = await chat.say(typed)
            assert any(told in reply for reply in chat.replies_since(mark)), (typed, chat.replies_since(mark))
            assert stored(db_path, "header-staff") == []
        screen = await chat.say("１２０ 人")
        assert [r["text"] for r in stored(db_path, "header-staff")] == ["120"]

        # yes/no as buttons
        assert "多个场所" in screen.text and {"是", "否"} <= set(screen.button_texts)
        _answer, screen = await chat.press("否")
        assert [r["value"] for r in stored(db_path, "header-sites")] == ["negative"]
        assert "第 9/" in screen.text  # on to the first compliance item

        # one history row per stored answer, none for the refusals
        for item_id in ("header-certs", "header-cma-expiry", "header-cma-scan", "header-staff", "header-sites"):
            rows = history(db_path, item_id)
            assert len(rows) == 1 and rows[0]["changed_by"] == USER, item_id

        # the answers read back on the question and in the progress
        _answer, screen = await chat.press("◀ 上一项")
        assert screen.text.endswith("当前答案：否") and "✅ 否" in screen.button_texts
        progress = await chat.say("/progress")
        assert "进度：8/" in progress.text


async def test_an_item_appears_and_disappears_as_the_answer_it_depends_on_changes(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, motor_lab: Institution
) -> None:
    checklist = table()
    ws = open_workspace(db, checklist, motor_lab)
    answer_everything(ws, by=USER, skip=frozenset({"header-sites"}))
    shown = [i for i in ws.interview.items if i.id != "system-10"]
    code = invite(db_path, motor_lab.id)
    async with running_bot(tg, db_path, zicha_campaign=CAMPAIGN):
        chat = Chat(tg, USER)
        screen = await join(chat, code)
        # system-10 (every site audited) is hidden while header-sites is unanswered: only it is open
        assert "多个场所" in screen.text
        _answer, screen = await chat.press("是")
        assert "每个场所的检验检测活动均纳入同一管理体系" in screen.text
        assert f"/{len(shown) + 1} 项" in screen.text
        _answer, screen = await chat.press("符合")
        assert "自查已完成" in screen.text and f"已作答项目：{len(shown) + 1}" in screen.text
        assert [r["value"] for r in stored(db_path, "system-10")] == ["compliant"]

        # back to header-sites through the contents; "否" hides system-10 again
        _answer, contents = await chat.press("📋 目录")
        section_button = next(t for t in contents.button_texts if "机构基本信息" in t)
        _answer, section = await chat.press(section_button, contents)
        sites_button = next(t for t in section.button_texts if t.startswith("✅ 8."))
        _answer, sites_screen = await chat.press(sites_button, section)
        sc, fp = pick_or_answer(sites_screen)
        _answer, screen = await chat.press("否", sites_screen)
        assert "自查已完成" in screen.text and f"已作答项目：{len(shown)}" in screen.text
        # its answer is kept (and its history), not counted
        assert [r["value"] for r in stored(db_path, "system-10")] == ["compliant"]
        assert len(history(db_path, "system-10")) == 1
        progress = await chat.say("/progress")
        assert f"进度：{len(shown)}/{len(shown)} 项" in progress.text
        # an answer button of the hidden item (forged onto the live screen) stores nothing
        forged = AnswerCb(sc=sc, item="system-10", fp=fp, rev=1, choice=Choice.NONCOMPLIANT).pack()
        answer = await chat.press_data(forged, screen)
        assert answer.text == "根据前面的答复，本项不适用。未保存任何内容。"
        assert [r["value"] for r in stored(db_path, "system-10")] == ["compliant"]
        assert len(history(db_path, "system-10")) == 1


async def test_last_years_answer_is_offered_for_the_same_question_and_recorded_afresh(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, motor_lab: Institution
) -> None:
    ws23 = rectified_in_2023(db, motor_lab)
    before = ws23.answer("lawful-01")
    # 2025: everything answered up to lawful-01
    ws = open_workspace(db, table(), motor_lab)
    answer_everything(ws, by=USER, until="lawful-01")
    code = invite(db_path, motor_lab.id)
    async with running_bot(tg, db_path, zicha_campaign=CAMPAIGN):
        chat = Chat(tg, USER)
        screen = await join(chat, code)
        assert "上一年度自查答复\n2023：不符合 · 已完成整改" in screen.text
        assert "↺ 与去年相同" in screen.button_texts
        assert stored(db_path, "lawful-01") == []  # shown, never carried silently
        _answer, screen = await chat.press("↺ 与去年相同")
        [now] = stored(db_path, "lawful-01")
        assert (now["value"], now["problem"], now["measure"], now["rect_status"]) == ("noncompliant", "证书过期", "已换证", "done")
        assert now["answered_by"] == USER and now["rev"] == 1
        [row] = history(db_path, "lawful-01")
        assert row["changed_by"] == USER and row["old"] is None and row["new"]["value"] == "noncompliant"
        assert ws23.answer("lawful-01") == before  # last year's stays as it was
        # lawful-02 was not answered in 2023: no carry-over, and a forged press stores nothing
        assert "lawful" not in screen.text and "与去年相同" not in "".join(screen.button_texts)
        genuine = pick_or_answer(screen)
        forged = CarryCb(sc=genuine[0], item="lawful-02", fp=genuine[1], rev=0).pack()
        answer_ = await chat.press_data(forged, screen)
        assert answer_.text == "该项目不能选择这个答案。"
        assert stored(db_path, "lawful-02") == []


def rectified_in_2023(db: sqlite_utils.Database, institution: Institution) -> Workspace:
    """The 2023 self-check of ``institution`` in which lawful-01 was non-compliant and has
    been rectified: last year's answer the 2025 table offers as 与去年相同."""
    ws23 = open_workspace(db, load_checklist(REPO / "checklists" / "samr-2023-national.toml"), institution)
    ws23.record_choice("lawful-01", Choice.NONCOMPLIANT, by=1, expected_rev=0)
    ws23.record_followup("lawful-01", FollowUp.PROBLEM, "证书过期", by=1, today=dt.date(2023, 10, 9))
    answer = ws23.record_followup("lawful-01", FollowUp.MEASURE, "已换证", by=1, today=dt.date(2023, 10, 9))
    ws23.record_rect_status("lawful-01", RectStatus.DONE, by=1, expected_rev=answer.rev)
    return ws23


def pick_or_answer(message: BotMessage) -> tuple[int, str]:
    """(self-check id, fingerprint) read from the first answer button of a screen."""
    data = next(d for row in message.buttons for _t, d in row if d and d.startswith(AnswerCb.__prefix__ + ":"))
    a = AnswerCb.unpack(data)
    return a.sc, a.fp


async def test_an_attachment_item_keeps_to_the_upload_limits(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, motor_lab: Institution
) -> None:
    ws = open_workspace(db, table(), motor_lab)
    answer_everything(ws, by=USER, until="header-cma-scan")
    code = invite(db_path, motor_lab.id)
    async with running_bot(tg, db_path, zicha_campaign=CAMPAIGN, zicha_upload_item_files=1):
        chat = Chat(tg, USER)
        screen = await join(chat, code)
        assert "请上传现行有效的资质认定证书扫描件" in screen.text
        screen = await chat.send("photo")
        assert "本机构在岗检验检测人员人数" in screen.text
        _answer, screen = await chat.press("◀ 上一项")
        assert "当前答案：已上传文件：照片" in screen.text
        mark = tg.mark()
        screen = await chat.send("document", file_name="新证书.pdf")
        told = chat.replies_since(mark)
        assert any("第 6 项已有 1 个证明材料文件" in t and "该文件未保存" in t for t in told), told
        [scan] = stored(db_path, "header-cma-scan")
        assert (scan["value"], scan["text"]) == ("file", "photo")
        assert len(evidence_for(read_db(db_path), scan["selfcheck_id"], "header-cma-scan")) == 1
        assert len(history(db_path, "header-cma-scan")) == 1
