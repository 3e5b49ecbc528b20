"""Status, digests and the Excel export for a scope, against a multi-province fixture."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlite_utils
from openpyxl import load_workbook

from bot.core.checklist import Checklist
from bot.core.interview import Interview
from bot.core.roster import ROSTER_COLUMNS, read_roster
from bot.core.scope import Scope
from bot.reports.excel import (
    SHEET_ANSWERS,
    SHEET_INSTITUTIONS,
    SHEET_RECTIFICATION,
    SHEET_ROSTER,
    SHEET_STATISTICS,
    cell_text,
    write_export,
)
from bot.reports.status import Status, build_status, find_institutions, top_noncompliant_items
from storage.answers import load_answers
from tests.regulator_fixture import INJECTION, Fixture, build_fixture

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DURING = dt.datetime(2023, 10, 9, 9, 0, tzinfo=SHANGHAI)
AFTER = dt.datetime(2023, 10, 28, 8, 30, tzinfo=SHANGHAI)
GUANGDONG = Scope.parse("province:广东")


@pytest.fixture
def fx(db: sqlite_utils.Database, checklist: Checklist) -> Fixture:
    return build_fixture(db, checklist)


def test_status_counts_each_state_once_and_by_province(db: sqlite_utils.Database, checklist: Checklist, fx: Fixture) -> None:
    report = build_status(db, checklist, Scope(national=True), DURING)
    t = report.totals
    assert (t.total, t.signed, t.finished, t.in_progress, t.not_started, t.overdue) == (7, 2, 1, 2, 2, 0)
    assert {p: tl.total for p, tl in report.by_province.items()} == {"广东": 3, "北京": 2, "浙江": 2}
    assert report.by_province["北京"].signed == 1 and report.by_province["北京"].not_started == 1
    # food: gd_signed, gd_finished, bj_none, zj_progress
    assert report.by_field["food"].total == 4 and report.by_field["food"].completed == 2
    status = {i.id: i.status for i in report.institutions}
    assert status[fx.ids["zj_empty"]] is Status.NOT_STARTED  # a self-check without answers
    assert status[fx.ids["gd_finished"]] is Status.FINISHED


def test_overdue_after_the_deadline_day_only(db: sqlite_utils.Database, checklist: Checklist, fx: Fixture) -> None:
    assert checklist.deadline == dt.date(2023, 10, 27)
    on_the_day = dt.datetime(2023, 10, 27, 23, 59, tzinfo=SHANGHAI)
    assert build_status(db, checklist, Scope(national=True), on_the_day).totals.overdue == 0
    report = build_status(db, checklist, Scope(national=True), AFTER)
    assert report.totals.overdue == 5
    assert {i.id for i in report.overdue} == {fx.ids[k] for k in ("gd_finished", "gd_progress", "bj_none", "zj_progress", "zj_empty")}


def test_a_provincial_scope_sees_its_province_only(db: sqlite_utils.Database, checklist: Checklist, fx: Fixture) -> None:
    report = build_status(db, checklist, GUANGDONG, AFTER)
    assert {i.province for i in report.institutions} == {"广东"}
    assert report.totals.total == 3 and set(report.by_province) == {"广东"}
    assert find_institutions(db, GUANGDONG, fx.usccs["bj_signed"]) == []
    assert find_institutions(db, GUANGDONG, "北京") == []
    assert [r["id"] for r in find_institutions(db, GUANGDONG, fx.usccs["gd_signed"].lower())] == [fx.ids["gd_signed"]]
    assert len(find_institutions(db, GUANGDONG, "某检测")) == 3
    assert find_institutions(db, GUANGDONG, "%") == []  # LIKE wildcards are literal
    top = dict(top_noncompliant_items(db, checklist, GUANGDONG))
    assert sum(top.values()) == 3  # gd_finished 2 + gd_progress 1; 浙江's is not counted


def test_a_field_scope_narrows_within_the_province(db: sqlite_utils.Database, checklist: Checklist, fx: Fixture) -> None:
    report = build_status(db, checklist, Scope.parse("province:广东;fields:motor-vehicle"), DURING)
    assert {i.id for i in report.institutions} == {fx.ids["gd_finished"], fx.ids["gd_progress"]}
    assert set(report.by_field) == {"motor-vehicle"}


def test_the_workbook_opens_and_its_figures_match_the_database(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture, tmp_path: Path
) -> None:
    path = write_export(db, checklist, Scope(national=True), AFTER, tmp_path / "all.xlsx")
    wb = load_workbook(path, read_only=True)
    assert wb.sheetnames == [SHEET_INSTITUTIONS, SHEET_ANSWERS, SHEET_RECTIFICATION, SHEET_STATISTICS, SHEET_ROSTER]
    assert wb.active is not None and wb.active.title == SHEET_INSTITUTIONS  # what a regulator sees first
    inst = list(wb[SHEET_INSTITUTIONS].iter_rows(values_only=True))
    header, rows = inst[0], inst[1:]
    assert len(rows) == 7
    by_uscc = {r[1]: dict(zip(header, r, strict=True)) for r in rows}
    finished = by_uscc[fx.usccs["gd_finished"]]
    assert finished["状态 Status"] == "已完成 Finished" and finished["逾期 Overdue"] == "是"
    assert finished["不符合项 Non-compliant"] == 2 and finished["未完成整改 Open rectifications"] == 1
    # progress as the interview computes it from the stored answers
    sc_rows = db.execute("SELECT id, institution_id FROM selfchecks").fetchall()
    from storage.institutions import get_institution

    for sc, iid in sc_rows:
        institution = get_institution(db, iid)
        assert institution is not None
        progress = Interview(checklist, institution.fields).progress(load_answers(db, sc))
        row = by_uscc[institution.uscc]
        assert (row["已完成项 Items done"], row["适用项 Items"]) == (progress.done, progress.total)
        assert row["不符合项 Non-compliant"] == len(progress.noncompliant)
    assert by_uscc[fx.usccs["bj_signed"]]["状态 Status"] == "已签署 Signed"
    assert by_uscc[fx.usccs["bj_none"]]["已完成项 Items done"] == 0
    assert all(r["已绑定人员 Staff bound"] == 1 for r in by_uscc.values())

    answers = list(wb[SHEET_ANSWERS].iter_rows(values_only=True))
    assert len(answers) - 1 == db.execute(
        "SELECT COUNT(DISTINCT selfcheck_id) FROM answers"
    ).fetchone()[0]
    nc_cells = sum(1 for r in answers[1:] for v in r[3:] if v == "不符合")
    assert nc_cells == db.execute("SELECT COUNT(*) FROM answers WHERE value = 'noncompliant'").fetchone()[0] == 4

    rect = list(wb[SHEET_RECTIFICATION].iter_rows(values_only=True))[1:]
    assert len(rect) == 4
    stats = {r[0]: r for r in list(wb[SHEET_STATISTICS].iter_rows(values_only=True))[1:]}
    food = stats["食品检验 Food"]
    # institutions, not started, in progress, finished (incl. signed), signed, overdue, with NC, NC count
    assert food[1:9] == (4, 1, 1, 2, 1, 3, 2, 3)  # gd_finished 2 + zj_progress 1
    total = next(r for k, r in stats.items() if k.startswith("合计"))
    assert total[1:7] == (7, 2, 2, 3, 2, 5)
    wb.close()


def test_the_roster_sheet_round_trips_through_the_importer(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture, tmp_path: Path
) -> None:
    path = write_export(db, checklist, Scope(national=True), DURING, tmp_path / "all.xlsx")
    wb = load_workbook(path, read_only=True)
    assert next(wb[SHEET_ROSTER].iter_rows(values_only=True)) == ROSTER_COLUMNS
    wb.close()
    rows = read_roster(path)
    from storage.institutions import list_institutions

    expected = {(i.uscc, i.name, i.cma_cert, i.province, i.level, i.fields, i.contact_name, i.contact_phone) for i in list_institutions(db)}
    assert {(r.uscc, r.name, r.cma_cert, r.province, r.level, r.fields, r.contact_name, r.contact_phone) for r in rows} == expected


def test_a_provincial_workbook_holds_only_that_province(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture, tmp_path: Path
) -> None:
    path = write_export(db, checklist, GUANGDONG, AFTER, tmp_path / "gd.xlsx")
    wb = load_workbook(path, read_only=True)
    others = {fx.usccs[k] for k in fx.usccs if not k.startswith("gd")} | {fx.names[k] for k in fx.names if not k.startswith("gd")}
    for sheet in wb.worksheets:
        for row in sheet.iter_rows(values_only=True):
            assert not others & {str(v) for v in row}, (sheet.title, row)
            assert "北京" not in row and "浙江" not in row
    assert len(list(wb[SHEET_INSTITUTIONS].iter_rows())) == 4
    wb.close()


def test_user_text_never_becomes_a_formula(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture, tmp_path: Path
) -> None:
    assert cell_text("=1+2") == "'=1+2" and cell_text("+1") == "'+1" and cell_text("-1") == "'-1"
    assert cell_text("@SUM(A1)") == "'@SUM(A1)" and cell_text("\tx") == "'\tx" and cell_text("\rx") == "'\rx"
    assert cell_text("正常") == "正常" and cell_text(3) == 3
    path = write_export(db, checklist, Scope(national=True), AFTER, tmp_path / "all.xlsx")
    wb = load_workbook(path)  # not read-only: data_type is reliable here
    seen = set()
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(("=", "+", "-", "@", "\t", "\r")), (sheet.title, cell.value)
                    seen.add(cell.value)
    assert "'" + INJECTION in seen and "'@SUM(A1)" in seen and "'+设备未校准" in seen and "'-送检" in seen
    assert "'\t人员不足" in seen
    wb.close()
