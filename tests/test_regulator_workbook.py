"""What a regulator is shown, and what reaches them (issue 13, items 14 and 15): a
correction typed by staff for item 1 is acknowledged and appears in /institution,
/status, the digest and the workbook; the workbook names items by number and short
text, holds real local date-times and the self-check contact; /institution lists items
by number."""

from __future__ import annotations

import datetime as dt
import io
import zoneinfo
from pathlib import Path

import pytest
import sqlite_utils
from openpyxl import load_workbook

from bot.core.checklist import Checklist
from bot.core.interview import Choice, FollowUp, Interview
from bot.core.scope import Scope
from bot.i18n import build_i18n
from bot.reports.excel import SHEET_ANSWERS, SHEET_INSTITUTIONS, SHEET_RECTIFICATION, write_export
from bot.reports.items import checklist_numbers, item_heading, short_text
from bot.selfcheck import open_workspace
from bot.services.digests import build_digest, render_digest
from storage.db import open_db
from storage.institutions import Institution, bind_member, create_invite
from storage.regulators import add_regulator
from tests.harness import Chat, invite, read_db, running_bot
from tests.regulator_fixture import Fixture, build_fixture
from tests.standin import BotMessage, TelegramStandin

STAFF = 5101
REGULATOR = 9301
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
AFTER = dt.datetime(2023, 10, 28, 9, 0, tzinfo=SHANGHAI)
CORRECTION = "机构名称应为：广东省食品检验所有限公司 <B&R>"


async def reply(chat: Chat, text: str) -> str:
    return (await chat.say(text, screen=False)).text


async def test_a_correction_of_item_1_is_acknowledged_and_reaches_the_regulator(
    tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    add_regulator(db, REGULATOR, Scope.parse("广东"), "广东省局")
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        staff = Chat(tg, STAFF)
        await staff.say(f"/start {code}")
        _, screen = await staff.press("是，这是我的机构")
        assert "第 1/" in screen.text
        _, prompt = await staff.press("否，需要更正", screen)
        assert "正确信息" in prompt.text or "更正" in prompt.text
        mark = tg.mark()
        screen = await staff.say(CORRECTION)
        replies = staff.replies_since(mark)
        ack = next(text for text in replies if text.startswith("已记录"))
        assert CORRECTION in ack  # shown back, escaped (the stand-in rejects bad HTML)
        assert "监管部门" in ack and "继续自查" in ack
        assert "第 2/" in screen.text  # and the self-check goes on
        await staff.say("王五")
        await staff.say("13812345678")

        regulator = Chat(tg, REGULATOR, first_name="监管", language_code="en")
        detail = await reply(regulator, f"/institution {food_lab.uscc}")
        assert "Details to correct" in detail and CORRECTION in detail
        assert "correct the roster" in detail
        assert "Self-check contact: 王五, 13812345678" in detail
        status = await reply(regulator, "/status")
        assert "Details to correct" in status and status.rstrip().count("workbook): 1") == 1

        mark = tg.mark()
        tg.send_text(REGULATOR, "/export", first_name="监管", language_code="en")

        def document() -> BotMessage | None:
            for call in tg.calls("sendDocument", after=mark, chat_id=REGULATOR):
                if call.ok and call.message is not None:
                    return call.message
            return None

        sent = await tg.wait_until(document, timeout=15, what="the workbook")
        assert sent.file is not None
        wb = load_workbook(io.BytesIO(sent.file.content))
        rows = list(wb[SHEET_INSTITUTIONS].iter_rows(values_only=True))
        header, row = rows[0], dict(zip(rows[0], rows[1], strict=True))
        assert "信息更正 Details to correct" in header
        assert row["信息更正 Details to correct"].startswith(CORRECTION + "（")  # with the time it was sent
        assert row["自查负责人 Self-check contact"] == "王五" and row["联系电话 Contact phone"] == "13812345678"
        wb.close()

    stored = read_db(db_path).execute(
        "SELECT value, text FROM answers WHERE item_id = 'header-details'"
    ).fetchall()
    assert stored == [("no", CORRECTION)]
    # the digest names it too, in plain text and in HTML
    conn = open_db(db_path)
    try:
        digest = build_digest(conn, checklist, REGULATOR, Scope.parse("广东"), AFTER)
        html, _x, _p = render_digest(conn, checklist, build_i18n("zh_CN"), digest, "zh_CN")
        plain, _x, _p = render_digest(conn, checklist, build_i18n("zh_CN"), digest, "zh_CN", html=False)
    finally:
        conn.close()
    assert [c.name for c in digest.corrections] == [food_lab.name]
    assert "<b>" in html and "<b>" not in plain
    assert "信息更正（1）\n以下机构人员反映名录中的本机构信息有误" in plain and f"• {food_lab.name} (广东)" in plain


@pytest.fixture
def fx(db: sqlite_utils.Database, checklist: Checklist) -> Fixture:
    return build_fixture(db, checklist)


def test_the_workbook_names_items_by_number_and_has_real_local_times_and_contacts(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture, tmp_path: Path
) -> None:
    path = write_export(db, checklist, Scope(national=True), AFTER, tmp_path / "all.xlsx")
    wb = load_workbook(path)  # not read-only: comments, number formats and data types
    numbers = checklist_numbers(checklist)

    answers = wb[SHEET_ANSWERS]
    header = [c.value for c in answers[1]]
    items = list(checklist.items)
    assert header[3:] == [item_heading(numbers[i.id], i) for i in items]
    first = items[3]  # lawful-01, the first compliance item
    assert header[3 + 3] == "4. 本机构资质认定证书在有效期内"
    assert not any(str(h).startswith(("lawful-", "header-", "data-")) for h in header)
    note = answers.cell(row=1, column=4 + 3).comment
    assert note is not None and first.text.zh_CN in note.text and first.text.en in note.text and first.id in note.text
    # the contact as typed, never "已填"
    values = [c.value for row in answers.iter_rows(min_row=2) for c in row]
    assert "已填" not in values
    person_col, phone_col = 3 + items.index(checklist.item("header-person")), 3 + items.index(checklist.item("header-phone"))
    typed = {(r[person_col].value, r[phone_col].value) for r in answers.iter_rows(min_row=2)}
    assert ("王五", "13812345678") in typed

    inst = wb[SHEET_INSTITUTIONS]
    head = [c.value for c in inst[1]]
    signed_col = head.index("签署时间 Signed at (Asia/Shanghai)")
    by_uscc = {r[1].value: r for r in inst.iter_rows(min_row=2)}
    signed = by_uscc[fx.usccs["gd_signed"]][signed_col]
    # stored as 2023-10-08T01:00:00+00:00: 09:00 in Shanghai, a real date-time cell
    assert signed.value == dt.datetime(2023, 10, 8, 9, 0) and signed.is_date
    assert signed.number_format == "yyyy-mm-dd hh:mm"
    assert by_uscc[fx.usccs["gd_finished"]][signed_col].value is None
    contact = head.index("自查负责人 Self-check contact")
    assert by_uscc[fx.usccs["gd_signed"]][contact].value == "王五"
    assert by_uscc[fx.usccs["gd_signed"]][contact + 1].value == "13812345678"
    assert by_uscc[fx.usccs["bj_none"]][contact].value is None  # not started: nothing typed

    rect = wb[SHEET_RECTIFICATION]
    rhead = [c.value for c in rect[1]]
    assert rhead[3] == "序号 Item No." and rhead[9] == "更新时间 Updated (Asia/Shanghai)"
    rows = list(rect.iter_rows(min_row=2))
    assert {r[3].value for r in rows} <= set(numbers.values())
    target = next(r[8] for r in rows if r[8].value is not None)
    assert target.value == dt.datetime(2023, 11, 30) and target.number_format == "yyyy-mm-dd"
    assert all(r[9].is_date and r[9].number_format == "yyyy-mm-dd hh:mm" for r in rows)
    # no formula anywhere, whatever was typed
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            assert all(cell.data_type != "f" for cell in row)
    wb.close()


def test_a_typed_contact_cannot_become_a_formula(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture, tmp_path: Path
) -> None:
    from storage.answers import get_or_create_selfcheck, save_answer
    from storage.institutions import get_institution

    institution = get_institution(db, fx.ids["zj_progress"])
    assert institution is not None
    sc = get_or_create_selfcheck(db, institution.id, checklist).id
    save_answer(db, sc, "header-person", by=1, value="text", text="=HYPERLINK(\"http://x\")")
    path = write_export(db, checklist, Scope(national=True), AFTER, tmp_path / "all.xlsx")
    wb = load_workbook(path)
    seen = [c for ws in (wb[SHEET_ANSWERS], wb[SHEET_INSTITUTIONS]) for row in ws.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in seen)
    assert sum(1 for c in seen if c.value == "'=HYPERLINK(\"http://x\")") == 2
    wb.close()


def test_short_texts_are_the_first_clause_cut_to_a_header() -> None:
    assert short_text("本机构资质认定证书在有效期内；证书需要延续的，在有效期届满3个月前提出申请。") == "本机构资质认定证书在有效期内"
    long = short_text("本机构未转让、出租、出借资质认定证书或标志，未伪造、变造、冒用资质认定证书或标志。")
    assert len(long) == 24 and long.endswith("…")
    assert short_text("Our CMA certificate is valid; renew it in time.", "en") == "Our CMA certificate is valid"


async def test_institution_lists_items_by_number_and_short_text(
    tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, fx: Fixture
) -> None:
    add_regulator(db, REGULATOR, Scope.parse("广东"), "广东省局")
    async with running_bot(tg, tmp_path / "zicha.db", clock=lambda: AFTER):
        regulator = Chat(tg, REGULATOR, first_name="监管", language_code="en")
        detail = await reply(regulator, f"/institution {fx.usccs['gd_finished']}")
    interview = Interview(checklist, ("food", "motor-vehicle"))
    for item_id in fx.noncompliant["gd_finished"]:
        item = checklist.item(item_id)
        assert item_id not in detail
        assert f"{interview.position(item_id)}. {short_text(item.text.en, 'en')}" in detail
    assert "Non-compliant items (2)" in detail and "+设备未校准" in detail


@pytest.mark.parametrize("in_child", [False, True], ids=["here", "in_child"])
def test_the_writer_keeps_strings_strings_even_unneutralised(tmp_path: Path, in_child: bool) -> None:
    """rustpy-xlsxwriter (issue 14) writes every ``str`` as a string cell: even a string
    that reached the writer without ``cell_text`` (a fixed label written as trusted) stays
    a string cell — no formula, no hyperlink, no number. Date columns get the date format,
    date-times the date-time format; header cells are bold, carry their comment, and the
    header row is frozen; a sheet without rows still has its header; the workbook opens on
    its first sheet. The same whether this process writes or a child process does."""
    from bot.reports.xlsx_writer import Sheet, write_sheets, write_sheets_in_child

    path = tmp_path / "raw.xlsx"
    rows: list[list[object]] = [
        ["=1+1", "http://evil.example", "123", "", None, 7, dt.date(2023, 11, 30), dt.datetime(2023, 11, 30, 9, 5)],
        ["=SUM(A1)", "+1", "-2", "@x"],
    ]
    header: list[str | tuple[str, str]] = ["A", ("B", "note"), "C", "D", "E", "F", "G", "H"]
    (write_sheets_in_child if in_child else write_sheets)(
        path,
        [
            Sheet("S", header, [10, 10], iter(rows), frozenset({6})),
            Sheet("Last", ["X"], [10], iter([])),
        ],
    )
    wb = load_workbook(path)
    assert wb.active is not None and wb.active.title == "S"
    assert [list(r) for r in wb["Last"].iter_rows(values_only=True)] == [["X"]]
    ws = wb["S"]
    first = list(ws[2])
    assert [c.value for c in first[:5]] == ["=1+1", "http://evil.example", "123", None, None]
    assert all(c.data_type == "s" for c in first[:3]) and all(c.hyperlink is None for c in first)
    assert first[5].value == 7 and first[6].value == dt.datetime(2023, 11, 30) and first[6].number_format == "yyyy-mm-dd"
    assert first[7].value == dt.datetime(2023, 11, 30, 9, 5) and first[7].number_format == "yyyy-mm-dd hh:mm"
    assert [c.value for c in ws[3]][:4] == ["=SUM(A1)", "+1", "-2", "@x"]
    assert all(c.data_type == "s" for c in list(ws[3])[:4])
    assert ws["B1"].comment is not None and ws["B1"].comment.text.endswith("note") and ws["A1"].font.b
    assert ws.freeze_panes == "A2" and ws.column_dimensions["A"].width > 10
    assert all(c.data_type != "f" for sheet in wb.worksheets for row in sheet.iter_rows() for c in row)
    wb.close()



async def test_the_institution_detail_fits_one_message_whatever_staff_typed(
    tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    """Staff choose their names and type the correction, the contact and every problem: at
    their longest (and markup-like), the regulator's /institution still arrives, as one
    message under Telegram's 4,096 characters, the list cut with a pointer to /export."""
    db_path = tmp_path / "zicha.db"
    add_regulator(db, REGULATOR, Scope.parse("广东"), "广东省局")
    for n in range(12):
        bind_member(db, STAFF + n, create_invite(db, food_lab.id), first_name="&<b>" * 16)
    today = dt.date(2023, 10, 9)
    longest = ("问题描述不实" * 170)[:1000]  # as long as a typed follow-up may be
    ws = open_workspace(db, checklist, food_lab)
    ws.record_choice("header-details", Choice.NO, by=STAFF, expected_rev=0)
    ws.record_followup("header-details", FollowUp.CORRECTION, longest, by=STAFF, today=today)
    ws.record_text("header-person", "王" * 50, by=STAFF)
    ws.record_text("header-phone", "13812345678", by=STAFF)
    noncompliant = [i for i in ws.interview.items if i.kind == "compliance"][:30]
    for item in noncompliant:
        ws.record_choice(item.id, Choice.NONCOMPLIANT, by=STAFF, expected_rev=0)
        ws.record_followup(item.id, FollowUp.PROBLEM, longest, by=STAFF, today=today)
    async with running_bot(tg, db_path, clock=lambda: AFTER):
        regulator = Chat(tg, REGULATOR, first_name="监管", language_code="en")
        mark = tg.mark()
        detail = await reply(regulator, f"/institution {food_lab.uscc}")
        sent = tg.calls("sendMessage", chat_id=REGULATOR, after=mark)
        assert len(sent) == 1 and sent[0].ok, [c.response for c in sent]
        assert len(detail) <= 4096
        assert detail.startswith(food_lab.name) and "Staff bound: 12 (&<b>" in detail
        # shown as typed (escaped once: the stand-in parsed the HTML back to the text), clipped
        assert "Details to correct" in detail and longest[:500] in detail and longest not in detail
        assert f"Non-compliant items ({len(noncompliant)})" in detail
        shown = detail.count("• ")
        assert 0 < shown < len(noncompliant) and f"… and {len(noncompliant) - shown} more (see /export)" in detail
