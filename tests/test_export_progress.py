"""The progress the workbook and the digest show per institution (``progress_by_selfcheck``)
is worked out from the counters every self-check keeps, less the answers that do not count
(issue 14: the answers of the items everyone answers are not read). It must equal what staff
see themselves (``Interview.progress``) whatever the answers: to items of other fields, to
items an earlier answer hides, to items the checklist no longer has, after an institution's
fields changed, and after answers were changed back and forth. And a workbook is written
from one snapshot, so its sheets agree while presses go on."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from collections import Counter
from pathlib import Path

import pytest
import sqlite_utils
from openpyxl import load_workbook

import bot.reports.excel as excel
from bot.core.checklist import Checklist, load_checklist
from bot.core.fields import all_fields, field_label
from bot.core.interview import Interview
from bot.core.roster import RosterRow
from bot.core.scope import Scope
from bot.reports import jobs
from bot.reports.status import institution_statuses, noncompliant_counts_by_section, progress_by_selfcheck
from storage.answers import get_or_create_selfcheck, load_answers, save_answer
from storage.db import open_db
from storage.institutions import get_institution_by_uscc, upsert_institutions
from tests.conftest import roster_row
from tests.test_item_kinds import TABLE
from tests.test_progress_kept import _random_answer

NOW = dt.datetime(2025, 10, 9, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
FIELD_ITEMS = """
[[sections.items]]
id = "food-sampling"
kind = "compliance"
fields = ["food"]
cites = ["order163:2021:9"]
text.zh_CN = "食品抽样符合规定。"
text.en = "Food sampling follows the rules."

[[sections.items]]
id = "env-monitoring"
kind = "compliance"
fields = ["eco-environment"]
relevant = "${sites} = 'yes'"
cites = ["order163:2021:9"]
text.zh_CN = "各场所均已开展环境监测。"
text.en = "Every site is monitored."
"""
FIELDS = [("food",), ("eco-environment",), ("food", "eco-environment"), ()]


def _checklist(tmp_path: Path, text: str, name: str) -> Checklist:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return load_checklist(path)


def _answer_randomly(
    db: sqlite_utils.Database, checklist: Checklist, selfcheck_id: int, rng: random.Random, changes: int
) -> None:
    """Random answers to any item of ``checklist`` (of every field), changed back and
    forth, through ``save_answer`` as the bot writes them."""
    items = list(checklist.items)
    for n in range(changes):
        item = rng.choice(items)
        current = load_answers(db, selfcheck_id).get(item.id)
        answer = _random_answer(rng, item, n + 1)
        save_answer(
            db,
            selfcheck_id,
            item.id,
            by=1,
            expected_rev=current.rev if current else 0,
            value=answer.value,
            text=answer.text,
            problem=answer.problem,
            measure=answer.measure,
            rect_status=answer.rect_status,
            target_date=answer.target_date,
        )


def _twelve_answered(db: sqlite_utils.Database, checklist: Checklist, rng: random.Random, changes: int) -> list[RosterRow]:
    """Twelve institutions of the fields in ``FIELDS`` in turn, each self-check given
    ``changes`` random answers (``_answer_randomly``); their roster rows."""
    rows = [roster_row(f"检测机构{n}", n, FIELDS[n % len(FIELDS)]) for n in range(12)]
    upsert_institutions(db, rows)
    for row in rows:
        institution = get_institution_by_uscc(db, row.uscc)
        assert institution is not None
        _answer_randomly(db, checklist, get_or_create_selfcheck(db, institution.id, checklist).id, rng, changes)
    return rows


def _assert_progress_as_staff_see_it(db: sqlite_utils.Database, checklist: Checklist, scope: Scope) -> int:
    institutions = institution_statuses(db, checklist, scope, NOW)
    progress = progress_by_selfcheck(db, checklist, scope, institutions)
    compared = 0
    for inst in institutions:
        if inst.selfcheck_id is None:
            continue
        staff = Interview(checklist, inst.fields).progress(load_answers(db, inst.selfcheck_id))
        shown = progress[inst.selfcheck_id]
        assert (shown.done, shown.total, shown.noncompliant, shown.open_rectifications) == (
            staff.done,
            staff.total,
            len(staff.noncompliant),
            staff.open_rectifications,
        ), inst.name
        compared += 1
    return compared


@pytest.mark.parametrize("seed", range(3))
def test_workbook_progress_equals_what_staff_see_with_fields_conditions_and_removed_items(
    db: sqlite_utils.Database, tmp_path: Path, seed: int
) -> None:
    full = _checklist(tmp_path, TABLE + FIELD_ITEMS, "full")
    rows = _twelve_answered(db, full, random.Random(seed), 40)  # items of other fields answered too
    assert _assert_progress_as_staff_see_it(db, full, Scope(national=True)) == 12
    assert _assert_progress_as_staff_see_it(db, full, Scope(national=True, fields=frozenset({"food"}))) == 6

    # the roster moves some institutions to other fields: their old answers stay, not counted
    upsert_institutions(db, [dataclasses.replace(row, fields=FIELDS[(n + 1) % len(FIELDS)]) for n, row in enumerate(rows[:6])])
    assert _assert_progress_as_staff_see_it(db, full, Scope(national=True)) == 12

    # the campaign's table loses two items, one of them read by conditions (which go with it):
    # their answers no longer count, and the items those conditions hid are shown again
    shorter = _checklist(tmp_path, _without(TABLE + FIELD_ITEMS, {"sites", "food-sampling"}), "shorter")
    assert not shorter.has_item("sites") and shorter.item("site-count").relevant is None
    assert _assert_progress_as_staff_see_it(db, shorter, Scope(national=True)) == 12


def _without(text: str, item_ids: set[str]) -> str:
    """The checklist ``text`` without the items ``item_ids`` and the conditions reading them."""
    blocks = text.split("[[sections.items]]")
    kept = [blocks[0], *(b for b in blocks[1:] if not any(f'\nid = "{i}"' in b for i in item_ids))]
    lines = "[[sections.items]]".join(kept).splitlines()
    return "\n".join(line for line in lines if not any(f"${{{i}}}" in line for i in item_ids)) + "\n"


def test_a_press_during_an_export_is_in_every_sheet_of_the_workbook_or_in_none(
    db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report worker writes the whole workbook from one snapshot: a press committed by
    the bot while the institutions sheet is written is neither in the answers sheet nor in
    the institutions' progress (before, the sheets could disagree)."""
    upsert_institutions(db, [roster_row("检测机构甲", 1, ("food",))])
    institution = get_institution_by_uscc(db, roster_row("检测机构甲", 1, ("food",)).uscc)
    assert institution is not None
    selfcheck = get_or_create_selfcheck(db, institution.id, checklist)
    first, second = [item for item in checklist.items if item.kind == "compliance"][:2]
    save_answer(db, selfcheck.id, first.id, by=1, expected_rev=0, value="compliant")

    real = excel.answer_sheet_rows

    def a_press_meanwhile(*args: object) -> object:
        bot_connection = open_db(db_path, migrate=False)  # the bot, committing as it does
        save_answer(bot_connection, selfcheck.id, second.id, by=1, expected_rev=0, value="noncompliant")
        bot_connection.close()
        return real(*args)  # type: ignore[arg-type]

    db_path = tmp_path / "zicha.db"
    monkeypatch.setattr(excel, "answer_sheet_rows", a_press_meanwhile)
    out = tmp_path / "export.xlsx"
    jobs._write_workbook(str(db_path), checklist, Scope(national=True), NOW, str(out))

    wb = load_workbook(out, read_only=True)
    institutions = [row for row in wb["机构 Institutions"].iter_rows(values_only=True)]
    header, row = institutions[0], institutions[1]
    assert row[header.index("已完成项 Items done")] == 1 and row[header.index("不符合项 Non-compliant")] == 0
    answers = [row for row in wb["答案 Answers"].iter_rows(values_only=True)]
    assert "不符合" not in answers[1] and answers[1].count("符合") == 1
    assert load_answers(db, selfcheck.id)[second.id].value == "noncompliant"  # the press itself was saved


@pytest.mark.parametrize("scope", [Scope(national=True), Scope(national=True, fields=frozenset({"food"}))], ids=str)
def test_the_statistics_counted_with_the_rectification_sheet_equal_a_count_of_the_answers(
    db: sqlite_utils.Database, tmp_path: Path, scope: Scope
) -> None:
    """The statistics sheet's non-conformities are counted while the rectification sheet
    lists the same answers (one read, not two): per field, the institutions with one, their
    number and their number per section equal a count of the stored answers, an answer to
    an item the table no longer has left out of the statistics but listed for rectification."""
    full = _checklist(tmp_path, TABLE + FIELD_ITEMS, "full")
    _twelve_answered(db, full, random.Random(7), 60)
    shorter = _checklist(tmp_path, _without(TABLE + FIELD_ITEMS, {"food-sampling"}), "shorter")
    removed = db.execute("SELECT COUNT(*) FROM answers WHERE item_id = 'food-sampling' AND value = 'noncompliant'").fetchone()[0]
    assert removed > 0

    out = excel.write_export(db, shorter, scope, NOW, tmp_path / "stats.xlsx")
    by_section, with_nc = noncompliant_counts_by_section(db, shorter, scope)  # the answers read for it
    wb = load_workbook(out, read_only=True)
    stats = list(wb[excel.SHEET_STATISTICS].iter_rows(values_only=True))
    header, field_rows = stats[0], stats[1:-1]
    sections = list(shorter.sections)
    assert field_rows
    for cells in field_rows:
        field_id = next(f.id for f in all_fields() if cells[0] == f"{field_label(f.id, 'zh_CN')} {field_label(f.id, 'en')}")
        counts: Counter[str] = by_section.get(field_id, Counter())
        assert cells[header.index("存在不符合的机构 With non-conformities")] == with_nc.get(field_id, 0)
        assert cells[header.index("不符合项合计 Non-conformities")] == sum(counts.values())
        assert list(cells[9:]) == [counts.get(s.id, 0) for s in sections]
    assert any(cells[header.index("不符合项合计 Non-conformities")] for cells in field_rows)
    in_scope = {i.id for i in institution_statuses(db, shorter, scope, NOW)}
    listed = len(list(wb[excel.SHEET_RECTIFICATION].iter_rows(values_only=True))) - 1
    assert listed == db.execute(
        "SELECT COUNT(*) FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id "
        "WHERE a.value = 'noncompliant' AND s.institution_id IN (SELECT value FROM json_each(?))",
        [json.dumps(sorted(in_scope))],
    ).fetchone()[0]
    wb.close()
