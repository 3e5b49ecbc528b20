"""BEFORE, for ``bench/export.py`` only: the workbook writer as it was before the switch to
rustpy-xlsxwriter (XlsxWriter, ``constant_memory``), frozen verbatim from
``bot/reports/excel.py`` at commit 6fbea86 so the benchmark can measure both in the same
run. Not used by the bot; XlsxWriter comes with the ``bench`` extra.

What does not depend on the writer (labels, sheet names, formats, ``cell_text``, times,
item notes) is imported from the bot's module, so the benchmark compares the writers and
nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from decimal import Decimal, InvalidOperation
from pathlib import Path

import sqlite_utils
from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from bot.core.checklist import Checklist, Item
from bot.core.fields import all_fields, field_label
from bot.core.interview import Answer, Choice, Interview
from bot.core.roster import ROSTER_COLUMNS
from bot.core.scope import Scope
from bot.reports.excel import (
    CONTACT_TITLES,
    RECT_LABEL,
    SENT_BACK_COLUMN,
    SHEET_ANSWERS,
    SHEET_INSTITUTIONS,
    SHEET_RECTIFICATION,
    SHEET_ROSTER,
    SHEET_STATISTICS,
    STATUS_LABEL,
    VALUE_LABEL,
    _date,
    _item_note,
    cell_text,
    local_time,
    sent_back_cells,
    tz_label,
)
from bot.reports.items import CONTACT_ITEM_IDS, checklist_numbers, confirm_item_ids, item_heading
from bot.reports.status import (
    build_status,
    noncompliant_counts_by_section,
    progress_by_selfcheck,
)
from bot.reports.xlsx_writer import DATE_FORMAT, DATETIME_FORMAT
from storage.reports import (
    answers_in_scope,
    pending_corrections,
    rectifications_in_scope,
    roster_in_scope,
    staff_counts,
    text_answers,
)


class _When:
    """A date-time or a date for a cell: written with its number format."""

    __slots__ = ("value",)

    def __init__(self, value: dt.datetime | dt.date) -> None:
        self.value = value


class _Book:
    """The workbook and its three formats (bold header, date-time, date)."""

    def __init__(self, path: Path) -> None:
        self.wb = Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "tmpdir": str(path.parent),
            },
        )
        self.bold = self.wb.add_format({"bold": True})
        self.datetime = self.wb.add_format({"num_format": DATETIME_FORMAT})
        self.date = self.wb.add_format({"num_format": DATE_FORMAT})

    def sheet(self, title: str, header: list[str | tuple[str, str]], widths: list[int] | None = None) -> _Sheet:
        return _Sheet(self, self.wb.add_worksheet(title), header, widths)


class _Sheet:
    """A sheet written top to bottom (``constant_memory``) whose string cells are always
    strings (never formulas).

    A header entry is a title, or (title, comment) for a header cell with a comment."""

    def __init__(
        self, book: _Book, ws: Worksheet, header: list[str | tuple[str, str]], widths: list[int] | None = None
    ) -> None:
        self.ws = ws
        self.book = book
        self.next_row = 0
        for i, width in enumerate(widths or []):
            ws.set_column(i, i, width)
        ws.freeze_panes(1, 0)
        for col, entry in enumerate(header):
            title, note = (entry, None) if isinstance(entry, str) else entry
            ws.write_string(0, col, title, book.bold)
            if note:
                ws.write_comment(0, col, note, {"author": "Zicha", "width": 320, "height": 160})
        self.next_row = 1

    def when(self, value: dt.datetime | dt.date | None) -> object:
        """A date-time (or date) cell with its number format; None stays empty."""
        return None if value is None else _When(value)

    def trusted_row(self, values: list[object]) -> None:
        """Values written here (fixed labels, numbers, None, cells already neutralised)
        cannot start a formula: written as they are."""
        row = self.next_row
        self.next_row += 1
        ws = self.ws
        for col, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, str):
                if value:
                    ws.write_string(row, col, value)
            elif isinstance(value, bool):
                ws.write_boolean(row, col, value)
            elif isinstance(value, (int, float)):
                ws.write_number(row, col, value)
            elif isinstance(value, _When):
                when = value.value
                fmt: Format = self.book.datetime if isinstance(when, dt.datetime) else self.book.date
                ws.write_datetime(row, col, when, fmt)
            else:
                ws.write_string(row, col, str(cell_text(str(value))))

    def row(self, values: list[object]) -> None:
        self.trusted_row([_safe_cell(value) for value in values])


def _safe_cell(value: object) -> object:
    """``cell_text`` of the value. XlsxWriter writes it as a string cell in any case
    (``strings_to_formulas`` is off); the apostrophe is for whoever edits the cell later
    or reads the file with another program."""
    return cell_text(value)


def write_export(
    db: sqlite_utils.Database,
    checklist: Checklist,
    scope: Scope,
    now: dt.datetime,
    path: str | os.PathLike[str],
) -> Path:
    """Write the workbook for ``scope`` to ``path`` (atomically: a temporary file renamed)."""
    path = Path(path)
    tz = now.tzinfo
    zone = tz_label(now)
    report = build_status(db, checklist, scope, now)
    progress = progress_by_selfcheck(db, checklist, scope, report.institutions)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    book = _Book(tmp)

    # 1. roster: exactly the import columns
    roster = book.sheet(SHEET_ROSTER, list(ROSTER_COLUMNS), [40, 22, 16, 10, 12, 30, 12, 16])
    for row in roster_in_scope(db, scope):
        values: list[object] = list(row)
        values[5] = ";".join(json.loads(row.fields))
        roster.row(values)

    # 2. institutions with status and progress, the self-check contact and corrections
    contact_ids = [item_id for item_id in CONTACT_ITEM_IDS if checklist.has_item(item_id)]
    contact_titles = [CONTACT_TITLES[item_id] for item_id in contact_ids]
    contacts = text_answers(db, checklist.campaign_key, contact_ids, scope)
    corrections: dict[int, list[str]] = {}
    for c in pending_corrections(db, checklist.campaign_key, confirm_item_ids(checklist), scope):
        stamp = local_time(c.updated_at, tz)
        corrections.setdefault(c.institution_id, []).append(
            c.text + (f"（{stamp:%Y-%m-%d %H:%M} 提交）" if stamp else "")
        )
    sent_back = sent_back_cells(db, checklist, scope, tz)
    inst = book.sheet(
        SHEET_INSTITUTIONS,
        [
            "机构名称 Name",
            "统一社会信用代码 USCC",
            "省份 Province",
            "领域 Fields",
            "状态 Status",
            "已完成项 Items done",
            "适用项 Items",
            "完成率 Progress %",
            "不符合项 Non-compliant",
            "未完成整改 Open rectifications",
            "逾期 Overdue",
            f"签署时间 Signed at ({zone})",
            "已绑定人员 Staff bound",
            *contact_titles,
            (
                "信息更正 Details to correct",
                "本机构人员认为名册中的机构信息有误，并填写了正确信息（自查表第1项答“否”）。"
                "请核对后更正名册（zicha roster import），机构人员随后重新确认。\n"
                "Staff say the roster's details of their institution are wrong and typed the correct ones. "
                "Check them, correct the roster (zicha roster import); staff then confirm the details again.",
            ),
            SENT_BACK_COLUMN,
        ],
        [40, 22, 10, 30, 16, 10, 10, 10, 10, 12, 8, 18, 10, *[14] * len(contact_titles), 50, 50],
    )
    staff = staff_counts(db, scope)
    for i in report.institutions:
        p = progress.get(i.selfcheck_id) if i.selfcheck_id is not None else None
        inst.row(
            [
                i.name,
                i.uscc,
                i.province,
                "、".join(field_label(f, "zh_CN") for f in i.fields),
                STATUS_LABEL[i.status],
                p.done if p else 0,
                p.total if p else _total_for(checklist, i.fields),
                p.percent if p else 0,
                p.noncompliant if p else 0,
                p.open_rectifications if p else 0,
                "是" if i.overdue else "",
                inst.when(local_time(i.signed_at, tz)),
                staff.get(i.id, 0),
                *[contacts.get(i.id, {}).get(item_id, "") for item_id in contact_ids],
                "；".join(corrections.get(i.id, [])),
                sent_back.get(i.id),
            ]
        )

    # 3. answers matrix
    items = list(checklist.items)
    column = {item.id: n for n, item in enumerate(items)}
    numbers = checklist_numbers(checklist)
    answers = book.sheet(
        SHEET_ANSWERS,
        [
            "机构名称 Name",
            "统一社会信用代码 USCC",
            "省份 Province",
            *[(item_heading(numbers[item.id], item), _item_note(numbers[item.id], item)) for item in items],
        ],
        [40, 22, 10, *[16] * len(items)],
    )
    by_sc = {i.selfcheck_id: i for i in report.institutions if i.selfcheck_id is not None}
    conditional = any(item.relevant is not None for item in items)
    current: int | None = None
    cells: list[object | None] = []
    stored: dict[str, Answer] = {}

    def flush() -> None:
        if current is not None and current in by_sc:  # (not: an institution the campaign no longer covers)
            owner = by_sc[current]
            if conditional:  # an item hidden by an earlier answer: its answer is kept, not reported
                interview = Interview(checklist, owner.fields)
                for item in items:
                    if item.relevant is not None and not interview.shown(item, stored):
                        cells[column[item.id]] = None
            # the first three cells are roster text (neutralised), the rest fixed labels or
            # cells already neutralised
            answers.trusted_row([*(_safe_cell(v) for v in (owner.name, owner.uscc, owner.province)), *cells])

    for sc, item_id, value, typed in answers_in_scope(db, checklist.campaign_key, scope):
        if sc != current:
            flush()
            current = sc
            cells = [None] * len(items)
            stored = {}
        if sc in by_sc and item_id in column:
            item = checklist.item(item_id)
            stored[item_id] = Answer(item_id, Choice(value), typed)
            cells[column[item_id]] = answer_cell(answers, item, value, typed)
    flush()

    # 4. rectification list
    rect = book.sheet(
        SHEET_RECTIFICATION,
        [
            "机构名称 Name",
            "统一社会信用代码 USCC",
            "省份 Province",
            "序号 Item No.",
            "自查内容 Item text",
            "存在问题 Problem",
            "整改措施 Measure",
            "整改状态 Status",
            "计划完成日期 Target date",
            f"更新时间 Updated ({zone})",
        ],
        [40, 22, 10, 10, 50, 40, 40, 16, 14, 18],
    )
    for name, uscc, province, item_id, problem, measure, rect_status, target, updated, *_ in rectifications_in_scope(
        db, checklist.campaign_key, scope
    ):
        text = checklist.item(item_id).text.zh_CN if checklist.has_item(item_id) else ""
        rect.row(
            [
                name,
                uscc,
                province,
                numbers.get(item_id, item_id),
                text,
                problem or "",
                measure or "",
                RECT_LABEL.get(rect_status or "", "未填写 Not given"),
                rect.when(_date(target)),
                rect.when(local_time(updated, tz)),
            ]
        )

    # 5. statistics by field (Annex 3 in spirit)
    sections = list(checklist.sections)
    by_section, with_nc = noncompliant_counts_by_section(db, checklist, scope)
    stats = book.sheet(
        SHEET_STATISTICS,
        [
            "领域 Field",
            "机构数 Institutions",
            "未开始 Not started",
            "进行中 In progress",
            "已完成自查 Finished",
            "已签署承诺 Signed",
            "逾期 Overdue",
            "存在不符合的机构 With non-conformities",
            "不符合项合计 Non-conformities",
            *[f"{s.title.zh_CN} {s.title.en}" for s in sections],
        ],
        [30, 10, 10, 10, 10, 10, 10, 14, 12],
    )
    order = [f.id for f in all_fields() if f.id in report.by_field]
    for f in order:
        tally = report.by_field[f]
        counts = by_section.get(f) or Counter[str]()
        stats.row(
            [
                f"{field_label(f, 'zh_CN')} {field_label(f, 'en')}",
                tally.total,
                tally.not_started,
                tally.in_progress,
                tally.completed,
                tally.signed,
                tally.overdue,
                with_nc.get(f, 0),
                sum(counts.values()),
                *[counts.get(s.id, 0) for s in sections],
            ]
        )
    t = report.totals
    stats.row(["合计（机构去重） Total (institutions counted once)", t.total, t.not_started, t.in_progress, t.completed, t.signed, t.overdue])
    inst.ws.activate()  # open on the institutions sheet; the roster stays first for import
    try:
        book.wb.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def answer_cell(sheet: _Sheet, item: Item, value: str, typed: str | None) -> object:
    """One answer as a cell: a label, a number, a date, the chosen options' labels, or
    typed text (user text: neutralised cell by cell)."""
    if value == "number" and typed:
        try:
            number = Decimal(typed)
        except InvalidOperation:
            return _safe_cell(typed)
        return int(number) if number == number.to_integral_value() and abs(number) < 2**53 else float(number)
    if value == "date" and typed:
        return sheet.when(_date(typed))
    if value == "selected" and typed:
        chosen = set(typed.split())
        return _safe_cell("、".join(o.label.zh_CN for o in item.options if o.id in chosen))
    if value == "file":
        return _safe_cell("已上传 " + (typed if typed and typed != "photo" else "照片"))
    if value == "text" and typed:
        return _safe_cell(typed)
    return VALUE_LABEL.get(value)


def _total_for(checklist: Checklist, fields: tuple[str, ...]) -> int:
    return len(checklist.applicable_items(fields))
