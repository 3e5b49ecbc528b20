"""The answers of the new kinds where they leave the chat: the signed pledge's PDF and the
regulator's workbook; an item hidden by an earlier answer is neither signed nor reported.
Carry-over only for questions declared the same (same id, or an explicit ``same_as``).
The new buttons fit Telegram's 64 bytes."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import openpyxl
import pytest
import sqlite_utils

from bot.conversation.actions import Pick, PickDone, SameAsLastYear
from bot.core.checklist import load_checklist
from bot.core.interview import Choice, FollowUp, RectStatus
from bot.core.scope import Scope
from bot.i18n import build_i18n
from bot.pledge.render import render_pdf
from bot.pledge.submit import sign
from bot.reports.excel import SHEET_ANSWERS, SHEET_INSTITUTIONS, write_export
from bot.selfcheck import NotAllowed, Workspace, open_workspace
from bot.telegram.conversation import pack
from storage.answers import answer_history
from storage.institutions import Institution
from tests.conftest import REPO
from tests.pledge_support import flat, needs_poppler, pdf_text
from tests.test_e2e_item_kinds import answer_everything, table

USER = 5401
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def answered_2025(db: sqlite_utils.Database, institution: Institution) -> Workspace:
    """The 2025 table answered in full; system-10 answered while header-sites said 是,
    then hidden by 否 (its answer kept)."""
    ws = open_workspace(db, table(), institution)
    answer_everything(ws, by=USER)
    ws.record_typed("header-sites", "是", by=USER)
    ws.record_choice("system-10", Choice.NONCOMPLIANT, by=USER, expected_rev=0)
    ws.record_followup("system-10", FollowUp.PROBLEM, "分场所未纳入内审", by=USER, today=dt.date(2025, 6, 1))
    ws.record_typed("header-sites", "否", by=USER)
    assert ws.progress().finished and ws.answer("system-10") is not None
    return ws


@needs_poppler
def test_the_pledge_pdf_prints_every_kind_and_leaves_out_the_hidden_item(
    db: sqlite_utils.Database, motor_lab: Institution, tmp_path: Path
) -> None:
    ws = answered_2025(db, motor_lab)
    document = sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=USER, by_name="t").document
    by_id = {i["id"]: i for i in document["items"]}
    assert "system-10" not in by_id  # hidden: not signed
    assert by_id["header-staff"]["shown"] == "12 人" and by_id["header-certs"]["shown"] == "检验检测机构资质认定证书（CMA）"
    assert document["totals"]["items"] == len(document["items"])
    assert document["totals"]["noncompliant"] == 0  # the hidden non-compliance is not counted
    text = flat(pdf_text(render_pdf(document, build_i18n("zh_CN"), SHANGHAI), tmp_path))
    for shown in ("检验检测机构资质认定证书（CMA）", "12人", "2027年6月30日", "已上传文件：cma.pdf"):
        assert shown in text, shown
    assert "分场所未纳入内审" not in text and "每个场所的检验检测活动" not in text
    # the sum rule holds with the new kinds counted as information items
    totals = document["totals"]
    assert totals["items"] == totals["information"] + totals["compliant"] + totals["noncompliant"] + totals["not_applicable"]


@pytest.mark.parametrize("in_child", [False, True], ids=["here", "writer_child"])
def test_the_workbook_has_numbers_dates_options_files_and_no_hidden_answer(
    db: sqlite_utils.Database, motor_lab: Institution, tmp_path: Path, in_child: bool
) -> None:
    ws = answered_2025(db, motor_lab)
    checklist = ws.checklist
    # the same cells whether this process writes the file or a writer child does
    now = dt.datetime(2025, 6, 2, 9, tzinfo=SHANGHAI)
    path = write_export(db, checklist, Scope(national=True), now, tmp_path / "x.xlsx", in_child=in_child)
    sheet = openpyxl.load_workbook(path)[SHEET_ANSWERS]
    rows = list(sheet.iter_rows(values_only=True))
    row = rows[1]
    cell = {item.id: row[3 + n] for n, item in enumerate(checklist.items)}
    # a number cell, not the text "12" (rust_xlsxwriter writes every number as a double,
    # "12.0", which is what Excel stores anyway; openpyxl reads it back as a float)
    assert cell["header-staff"] == 12 and isinstance(cell["header-staff"], int | float)
    assert cell["header-cma-expiry"] == dt.datetime(2027, 6, 30)
    assert cell["header-certs"] == "检验检测机构资质认定证书（CMA）"
    assert cell["header-cma-scan"] == "已上传 cma.pdf"
    assert cell["header-sites"] == "否"
    assert cell["system-10"] is None  # hidden by 否: kept in the database, not reported
    # the institutions sheet counts what staff count: the hidden item is neither applicable nor done
    institutions = list(openpyxl.load_workbook(path)[SHEET_INSTITUTIONS].iter_rows(values_only=True))
    done, total, percent, noncompliant = institutions[1][5:9]
    assert (done, total, percent, noncompliant) == (ws.progress().total, ws.progress().total, 100, 0)
    comment = sheet.cell(row=1, column=4 + [i.id for i in checklist.items].index("header-staff")).comment
    assert comment is not None and "单位 Unit: 人 / people" in comment.text


SAME_AS_TABLE = """
[checklist]
id = "prov-2026"
version = "1"
campaign = "2026"
source = "test"
title.zh_CN = "2026 省级自查"
title.en = "2026 provincial self-check"

[[sections]]
id = "main"
title.zh_CN = "主要"
title.en = "Main"

[[sections.items]]
id = "cert-valid"
kind = "compliance"
same_as = "samr-2023-national:lawful-01"
basis.zh_CN = "依据"
basis.en = "Basis"
text.zh_CN = "资质认定证书在有效期内。"
text.en = "The CMA certificate is valid."

[[sections.items]]
id = "cert-again"
kind = "compliance"
basis.zh_CN = "依据"
basis.en = "Basis"
text.zh_CN = "资质认定证书在有效期内（未声明为同一问题）。"
text.en = "The CMA certificate is valid (not declared the same)."
"""


def test_carry_over_only_for_a_declared_same_question_and_a_fresh_answer_with_history(
    db: sqlite_utils.Database, motor_lab: Institution, tmp_path: Path
) -> None:
    old = open_workspace(db, load_checklist(REPO / "checklists" / "samr-2023-national.toml"), motor_lab)
    old.record_choice("lawful-01", Choice.NONCOMPLIANT, by=1, expected_rev=0)
    old.record_followup("lawful-01", FollowUp.PROBLEM, "证书过期", by=1, today=dt.date(2023, 10, 9))
    answer = old.record_followup("lawful-01", FollowUp.MEASURE, "已换证", by=1, today=dt.date(2023, 10, 9))
    old.record_rect_status("lawful-01", RectStatus.IN_PROGRESS, by=1, expected_rev=answer.rev)
    old.record_followup("lawful-01", FollowUp.TARGET_DATE, "2023-11-30", by=1, today=dt.date(2023, 10, 9))
    (tmp_path / "prov-2026.toml").write_text(SAME_AS_TABLE, encoding="utf-8")
    ws = open_workspace(db, load_checklist(tmp_path / "prov-2026.toml"), motor_lab)
    earlier = ws.earlier_answer(ws.checklist.item("cert-valid"))
    assert earlier is not None and earlier.year == 2023 and earlier.answer.problem == "证书过期"
    assert ws.earlier_answer(ws.checklist.item("cert-again")) is None  # same words, not declared the same
    with pytest.raises(NotAllowed):
        ws.record_same_as_last_year("cert-again", by=USER, expected_rev=0)
    carried = ws.record_same_as_last_year("cert-valid", by=USER, expected_rev=0)
    # a rectification still open last year is asked about again (status, then the date)
    assert (carried.value, carried.problem, carried.rect_status) == (Choice.NONCOMPLIANT, "证书过期", None)
    assert not carried.is_complete
    [row] = answer_history(db, ws.selfcheck.id, "cert-valid")
    assert row["changed_by"] == USER and row["new"]["problem"] == "证书过期"
    assert old.answer("lawful-01") is not None and old.answer("lawful-01").rect_status is RectStatus.IN_PROGRESS


def test_the_new_buttons_fit_in_64_bytes_with_the_longest_ids() -> None:
    item = "x" * 24  # the longest item id a checklist allows
    for action in (
        Pick(sc=9_999_999, item=item, fp="abcdef12", rev=99_999, option=99),
        PickDone(sc=9_999_999, item=item, fp="abcdef12", rev=99_999),
        SameAsLastYear(sc=9_999_999, item=item, fp="abcdef12", rev=99_999),
    ):
        assert len(pack(action).encode()) <= 64


def test_resuming_on_an_item_a_colleague_hid_goes_on_to_the_next_open_item(
    db: sqlite_utils.Database, motor_lab: Institution
) -> None:
    ws = open_workspace(db, table(), motor_lab)
    answer_everything(ws, by=USER, until="system-10")
    ws.record_typed("header-sites", "是", by=USER)
    assert ws.interview.resume_point(ws.answers(), "system-10").id == "system-10"
    ws.record_typed("header-sites", "否", by=USER)  # a colleague: system-10 is hidden now
    following = ws.interview.resume_point(ws.answers(), "system-10")
    assert following is not None and following.id == "system-11"


@needs_poppler
def test_a_chinese_text_answer_wraps_inside_its_column_of_the_pledge(db: sqlite_utils.Database, motor_lab: Institution) -> None:
    """Chinese has no spaces: an answer kept whole as if it were a code (a USCC, a phone
    number) ran over the next column of the pledge's table, 37 mm of text in a 24 mm cell."""
    import weasyprint

    from bot.pledge.render import render_html

    post = "质量负责人兼技术负责人兼授权签字人"
    ws = answered_2025(db, motor_lab)
    ws.record_text("header-post", post, by=USER)
    document = sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=USER, by_name="t").document
    laid_out = weasyprint.HTML(string=render_html(document, build_i18n("zh_CN"), SHANGHAI)).render()

    def boxes(box: object, cell: object = None):  # every text box with the table cell it is in
        cell = box if type(box).__name__ == "TableCellBox" else cell
        if type(box).__name__ == "TextBox":
            yield box, cell
        for child in getattr(box, "children", None) or []:
            yield from boxes(child, cell)

    parts = [(text, cell) for page in laid_out.pages for text, cell in boxes(page._page_box) if text.text and text.text in post]
    assert "".join(t.text for t, _ in parts) == post, [t.text for t, _ in parts]  # on more than one line
    for text, cell in parts:
        assert cell is not None
        right = cell.content_box_x() + cell.width
        assert text.position_x + text.width <= right + 0.5, (text.text, text.position_x + text.width, right)
