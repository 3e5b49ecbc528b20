"""The regulator's Excel workbook (rustpy-xlsxwriter, streamed so a national scope stays small).

Sheets, in order (the workbook opens on the first):

1. ``机构 Institutions``    status, progress, non-compliances, open rectifications, overdue.
   The self-check contact (name and phone as typed in the self-check) and the
   corrections of the institution's details that staff asked for (信息更正).
2. ``答案 Answers``         institutions × items: 符合 / 不符合 / 不适用 / 是 / 否, and
                            the typed text of text items. Item columns are headed by the
                            item's number and a short text ("4. 本机构资质认定证书…"),
                            the full text and the item id in the header cell's comment.
3. ``整改 Rectification``   every non-compliant answer with problem, measure, status, date.
4. ``统计 Statistics``      by field, in the spirit of Annex 3 (监督检查信息统计表).
5. ``名册 Roster``          the roster import columns exactly (``ROSTER_COLUMNS``), so the
                            file can be read back with ``zicha roster import`` (which reads
                            the sheet of this name, ``ROSTER_SHEET``, wherever it is).

Headers are Chinese first with the English after them. Times are real date-time cells
in the time zone of ``now`` (ZICHA_TIMEZONE, named in the header), dates real date
cells. Every cell that holds text a user or a roster typed goes through ``cell_text``:
text starting with = + - @ (or a tab or carriage return) gets a leading apostrophe and
is written as a string, never as a formula.

The writer is rustpy-xlsxwriter (rust_xlsxwriter behind an XlsxWriter-like API; issue 14:
the XML and its compression of a national workbook take about 4 s of CPU instead of most of
a minute of pure Python), driven by ``bot.reports.xlsx_writer``. Each sheet is handed over
as an iterator of rows and written in its constant-memory mode (rows go to a temporary file
as they come), one sheet after the other, so memory stays flat at 54,000 institutions. For
a large scope on a machine of two cores or more, a child process writes while this one
reads the database and makes the rows (``CHILD_WRITER_FROM``). It writes every ``str`` as a
string cell: never a formula, a link or a number. The files open in openpyxl with no
formula cells (tests check it). It has no call to choose the sheet a workbook opens on (it
opens on the first, hence the order above). Its header comments are Excel notes, which
start with their author in bold ("Zicha:"), as notes typed in Excel do; and it writes every
number as a double (12 reads back as 12.0).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

import sqlite_utils

from bot.core.checklist import Checklist, Item
from bot.core.fields import all_fields, field_label
from bot.core.interview import Answer, Choice, Interview, referenced_items
from bot.core.roster import ROSTER_COLUMNS, ROSTER_SHEET
from bot.core.scope import Scope
from bot.core.spreadsheet import starts_like_formula
from bot.reports.items import CONTACT_ITEM_IDS, checklist_numbers, confirm_item_ids, item_heading
from bot.reports.status import (
    SectionTally,
    Status,
    build_status,
    noncompliant_counts_by_section,
    progress_by_selfcheck,
)
from bot.reports.xlsx_writer import Sheet, write_sheets, write_sheets_in_child
from storage.reports import (
    answer_sheet_rows,
    pending_corrections,
    rectifications_in_scope,
    roster_in_scope,
    staff_counts,
    text_answers,
)
from storage.sendbacks import waiting_by_institution

# Excel refuses control characters other than tab, newline and carriage return in cells.
_ILLEGAL = {c: None for c in range(32) if c not in (9, 10, 13)}

STATUS_LABEL = {
    Status.NOT_STARTED: "未开始 Not started",
    Status.IN_PROGRESS: "进行中 In progress",
    Status.FINISHED: "已完成 Finished",
    Status.SIGNED: "已签署 Signed",
}
VALUE_LABEL = {
    "compliant": "符合",
    "noncompliant": "不符合",
    "na": "不适用",
    "yes": "是",
    "no": "否",
    "text": "已填",  # only if the typed text is missing; otherwise the text itself is shown
    "affirmative": "是",
    "negative": "否",
}
RECT_LABEL = {"done": "已整改 Rectified", "in_progress": "整改中 In progress"}

SHEET_ROSTER = ROSTER_SHEET
SHEET_INSTITUTIONS = "机构 Institutions"
SHEET_ANSWERS = "答案 Answers"
SHEET_RECTIFICATION = "整改 Rectification"
SHEET_STATISTICS = "统计 Statistics"

# From this many institutions in scope a child process writes the workbook (its start, about
# a tenth of a second, is less than what writing beside the reading saves: bench/export.py),
# if the process may use CHILD_WRITER_CPUS cores or more. On one core the two processes
# would only take turns. On two, the workbook's processes run at idle priority
# (``jobs.lower_priority``) and take the bot's core only while it has nothing to do: answer
# steps measured 0.99-1.02 times their pace without an export, in three alternating runs
# against the one-process workbook (1.00-1.01), while the export and the digest with its
# workbook each took about 2 s less (bench/offload.py).
CHILD_WRITER_FROM = 2000
CHILD_WRITER_CPUS = 2


def usable_cpus() -> int:
    """The cores this process may run on (its affinity, where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1

# Headers of the self-check contact columns (see CONTACT_ITEM_IDS).
CONTACT_TITLES = {"header-person": "自查负责人 Self-check contact", "header-phone": "联系电话 Contact phone"}


def cell_text(value: object) -> object:
    """A value safe to put in a cell or a CSV field: user text cannot become a formula.

    The one neutraliser for everything Zicha writes for a spreadsheet (this workbook and
    ``zicha invites --format csv``). Text that ``starts_like_formula`` — = + - @, their
    full-width and small forms, behind invisible characters, or a tab / CR / LF — gets a
    leading apostrophe; nothing else is changed except characters Excel refuses.
    """
    if not isinstance(value, str):
        return value
    text = value.translate(_ILLEGAL) if _HAS_ILLEGAL(value) else value
    if text and _plain_start(text[0]):
        return text
    if starts_like_formula(text):
        text = "'" + text
    return text


_HAS_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]").search


@functools.cache
def _plain_start(char: str) -> bool:
    """True if text starting with ``char`` cannot start a formula whatever follows: the
    character is not a formula sign (in any of its forms), nor something
    ``starts_like_formula`` looks past (invisible characters, spaces) or refuses
    (tab, CR, LF). A workbook neutralises a few million cells; most start with a letter,
    a digit or a Chinese character, and this answers for them once per character."""
    return char not in " \u3000\u00a0" and not starts_like_formula(char) and not starts_like_formula(char + "=")


def local_time(stored: str | None, tz: dt.tzinfo | None) -> dt.datetime | None:
    """A stored UTC ISO timestamp as a naive local date-time for a cell (Excel has no
    time zones; the header names the zone), to the second."""
    if not stored:
        return None
    try:
        moment = dt.datetime.fromisoformat(stored)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(tz).replace(tzinfo=None, microsecond=0)


def tz_label(now: dt.datetime) -> str:
    """The zone's name for headers: "Asia/Shanghai", else its offset ("UTC+08:00")."""
    key = getattr(now.tzinfo, "key", None)
    if key:
        return str(key)
    offset = now.utcoffset() or dt.timedelta(0)
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _safe_cell(value: object) -> object:
    """``cell_text`` of the value, and anything that is not a string, number, boolean or
    date as its neutralised text. rustpy-xlsxwriter writes every string as a string cell
    in any case (never a formula, a link or a number); the apostrophe is for whoever edits
    the cell later or reads the file with another program."""
    if value is None or isinstance(value, (str, int, float, dt.date)):
        return cell_text(value)
    return cell_text(str(value))


def _safe(values: Iterable[object]) -> list[object]:
    """``_safe_cell`` of each value, with the common case inline (a national workbook
    neutralises a few million cells): text whose first character cannot start a formula
    and that holds no character Excel refuses is returned as it is."""
    out: list[object] = []
    for v in values:
        if type(v) is str:
            out.append(v if not v or (_plain_start(v[0]) and not _HAS_ILLEGAL(v)) else cell_text(v))
        elif type(v) in _AS_THEY_ARE:
            out.append(v)
        else:
            out.append(_safe_cell(v))
    return out


# values a cell takes as they are (``_safe_cell`` returns them unchanged)
_AS_THEY_ARE = frozenset({type(None), int, float, bool, dt.date, dt.datetime})


SENT_BACK_COLUMN = (
    "退回整改 Sent back for rework",
    "监管部门已将已签署的自查表退回整改、机构尚未重新签署的：退回时间、退回部门和整改要求。\n"
    "A regulator sent the signed self-check back for rework and it is not signed again yet: "
    "when, by whom, and what to rectify.",
)
"""The institutions sheet's column of send-backs waiting for rework (title, header comment)."""


def sent_back_cells(db: sqlite_utils.Database, checklist: Checklist, scope: Scope, tz: dt.tzinfo | None) -> dict[int, str]:
    """Institution id → its cell in ``SENT_BACK_COLUMN``: when (local time), by whom, what to rectify."""
    cells: dict[int, str] = {}
    for institution_id, back in waiting_by_institution(db, checklist.campaign_key, scope).items():
        stamp = local_time(back.sent_at, tz)
        cells[institution_id] = (f"{stamp:%Y-%m-%d %H:%M} " if stamp else "") + f"{back.sent_by_label}：{back.reason}"
    return cells


def write_export(
    db: sqlite_utils.Database,
    checklist: Checklist,
    scope: Scope,
    now: dt.datetime,
    path: str | os.PathLike[str],
    *,
    in_child: bool | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> Path:
    """Write the workbook for ``scope`` to ``path`` (atomically: a temporary file renamed).

    The rows are made here, in one read of the database; a child process writes them
    (``write_sheets_in_child``) if ``in_child``, by default for a scope of
    ``CHILD_WRITER_FROM`` institutions or more on a machine with a core to spare for it
    (``CHILD_WRITER_CPUS``). ``meanwhile``, other work of the caller's, is done while the
    child finishes the file (``write_sheets_in_child``), or in one process after it is
    written; if it fails, no workbook is left either."""
    path = Path(path)
    tz = now.tzinfo
    zone = tz_label(now)
    report = build_status(db, checklist, scope, now)
    progress = progress_by_selfcheck(db, checklist, scope, report.institutions)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")

    # 1. roster: exactly the import columns
    def roster_rows() -> Iterator[list[object]]:
        fields_text: dict[str, str] = {}  # stored JSON list → "a;b" (a few hundred distinct lists)
        for row in roster_in_scope(db, scope):
            values: list[object] = list(row)
            text = fields_text.get(row.fields)
            if text is None:
                text = fields_text[row.fields] = ";".join(json.loads(row.fields))
            values[5] = text
            yield _safe(values)

    roster = Sheet(SHEET_ROSTER, list(ROSTER_COLUMNS), [40, 22, 16, 10, 12, 30, 12, 16], roster_rows())

    # 2. institutions with status and progress, the self-check contact and corrections
    contact_ids = [item_id for item_id in CONTACT_ITEM_IDS if checklist.has_item(item_id)]
    contact_titles = [CONTACT_TITLES[item_id] for item_id in contact_ids]

    @functools.cache
    def _total_for(fields: tuple[str, ...]) -> int:  # (institutions without a self-check)
        return len(checklist.applicable_items(fields))

    def institution_rows() -> Iterator[list[object]]:
        contacts = text_answers(db, checklist.campaign_key, contact_ids, scope)
        corrections: dict[int, list[str]] = {}
        for c in pending_corrections(db, checklist.campaign_key, confirm_item_ids(checklist), scope):
            stamp = local_time(c.updated_at, tz)
            corrections.setdefault(c.institution_id, []).append(
                c.text + (f"（{stamp:%Y-%m-%d %H:%M} 提交）" if stamp else "")
            )
        staff = staff_counts(db, scope)
        sent_back = sent_back_cells(db, checklist, scope, tz)
        labels: dict[tuple[str, ...], str] = {}
        for i in report.institutions:
            fields = labels.get(i.fields)
            if fields is None:
                fields = labels[i.fields] = "、".join(field_label(f, "zh_CN") for f in i.fields)
            p = progress.get(i.selfcheck_id) if i.selfcheck_id is not None else None
            yield _safe(
                [
                    i.name,
                    i.uscc,
                    i.province,
                    fields,
                    STATUS_LABEL[i.status],
                    p.done if p else 0,
                    p.total if p else _total_for(i.fields),
                    p.percent if p else 0,
                    p.noncompliant if p else 0,
                    p.open_rectifications if p else 0,
                    "是" if i.overdue else "",
                    local_time(i.signed_at, tz),
                    staff.get(i.id, 0),
                    *[contacts.get(i.id, {}).get(item_id, "") for item_id in contact_ids],
                    "；".join(corrections.get(i.id, [])),
                    sent_back.get(i.id),  # None: no cell (most rows)
                ]
            )

    inst = Sheet(
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
        institution_rows(),
    )

    # 3. answers matrix
    items = list(checklist.items)
    column = {item.id: n for n, item in enumerate(items)}
    numbers = checklist_numbers(checklist)
    by_sc = {i.selfcheck_id: i for i in report.institutions if i.selfcheck_id is not None}
    conditional = any(item.relevant is not None for item in items)
    referenced = referenced_items(checklist)  # the answers whether an item is shown depends on
    interviews: dict[tuple[str, ...], Interview] = {}

    items_by_id = {item.id: item for item in items}
    item_ids = [item.id for item in items]
    # the cell of an answer without typed text depends on its value alone: one lookup
    # instead of a call per answer (two million at national scale)
    # (None, no answer, maps to no cell)
    untyped: dict[str | None, object] = (
        {value: answer_cell(items[0], value, None) for value in (*VALUE_LABEL, "file")} if items else {}
    )

    def answer_rows() -> Iterator[list[object]]:
        for sc, values_json, typed_json in answer_sheet_rows(db, checklist.campaign_key, scope):
            owner = by_sc.get(sc)
            if owner is None:  # an institution the campaign no longer covers
                continue
            values: dict[str, str] = json.loads(values_json)
            # both maps run in C: item → value → cell, None where there is no answer
            cells: list[object] = list(map(untyped.get, map(values.get, item_ids)))
            typed: list[list[str]] = json.loads(typed_json) if typed_json != "[]" else []
            for item_id, value, text in typed:
                col = column.get(item_id)
                if col is not None:
                    cells[col] = answer_cell(items_by_id[item_id], value, text)
            if conditional:  # an item hidden by an earlier answer: its answer is kept, not reported
                stored = {i: Answer(i, Choice(values[i])) for i in referenced if i in values}
                stored.update((i, Answer(i, Choice(v), t)) for i, v, t in typed if i in referenced)
                interview = interviews.get(owner.fields) or interviews.setdefault(
                    owner.fields, Interview(checklist, owner.fields)
                )
                for item in items:
                    if item.relevant is not None and not interview.shown(item, stored):
                        cells[column[item.id]] = None
            # the first three cells are roster text (neutralised), the rest fixed labels or
            # cells already neutralised
            yield [*_safe((owner.name, owner.uscc, owner.province)), *cells]

    answers = Sheet(
        SHEET_ANSWERS,
        [
            "机构名称 Name",
            "统一社会信用代码 USCC",
            "省份 Province",
            *[(item_heading(numbers[item.id], item), _item_note(numbers[item.id], item)) for item in items],
        ],
        [40, 22, 10, *[16] * len(items)],
        answer_rows(),
        frozenset(3 + n for n, item in enumerate(items) if item.kind == "date"),
    )

    # 4. rectification list; its answers are counted for the statistics sheet as they pass
    # (the non-compliant answers are those the statistics count: read once, not twice)
    item_cells = {item.id: _safe([numbers[item.id], item.text.zh_CN]) for item in items}
    section_tally = SectionTally(checklist, scope)
    counted: list[SectionTally] = []  # the tally, once every rectification row is made

    def rectification_rows() -> Iterator[list[object]]:
        for (
            name, uscc, province, item_id, problem, measure, rect_status, target, updated, institution_id, fields,
        ) in rectifications_in_scope(db, checklist.campaign_key, scope):  # fmt: skip
            section_tally.add(institution_id, fields, item_id)
            number, text = item_cells.get(item_id) or _safe([item_id, ""])  # an item no longer in the checklist
            yield [
                *_safe((name, uscc, province)),
                number,
                text,
                *_safe((problem or "", measure or "")),
                RECT_LABEL.get(rect_status or "", "未填写 Not given"),
                _date(target),
                local_time(updated, tz),
            ]
        counted.append(section_tally)

    rect = Sheet(
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
        rectification_rows(),
        frozenset({8}),
    )

    # 5. statistics by field (Annex 3 in spirit)

    def statistics_rows() -> Iterator[list[object]]:
        # counted with the rectification sheet, written before this one (else read here)
        by_section, with_nc = counted[0].result() if counted else noncompliant_counts_by_section(db, checklist, scope)
        for f in [f.id for f in all_fields() if f.id in report.by_field]:
            tally = report.by_field[f]
            counts = by_section.get(f) or Counter[str]()
            yield [
                f"{field_label(f, 'zh_CN')} {field_label(f, 'en')}",
                tally.total,
                tally.not_started,
                tally.in_progress,
                tally.completed,
                tally.signed,
                tally.overdue,
                with_nc.get(f, 0),
                sum(counts.values()),
                *[counts.get(s.id, 0) for s in checklist.sections],
            ]
        t = report.totals
        yield ["合计（机构去重） Total (institutions counted once)", t.total, t.not_started, t.in_progress, t.completed, t.signed, t.overdue]

    stats = Sheet(
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
            *[f"{s.title.zh_CN} {s.title.en}" for s in checklist.sections],
        ],
        [30, 10, 10, 10, 10, 10, 10, 14, 12],
        statistics_rows(),
    )

    try:
        # opens on the institutions; the roster, for `zicha roster import`, is found by its name
        sheets = [inst, answers, rect, stats, roster]
        if in_child is None:
            in_child = len(report.institutions) >= CHILD_WRITER_FROM and usable_cpus() >= CHILD_WRITER_CPUS
        if in_child:
            write_sheets_in_child(tmp, sheets, meanwhile)
        else:
            write_sheets(tmp, sheets)
            if meanwhile is not None:
                meanwhile()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def answer_cell(item: Item, value: str, typed: str | None) -> object:
    """One answer as a cell: a label, a number, a date, the chosen options' labels, or
    typed text (user text: neutralised cell by cell)."""
    if value == "number" and typed:
        try:
            number = Decimal(typed)
        except InvalidOperation:
            return _safe_cell(typed)
        return int(number) if number == number.to_integral_value() and abs(number) < 2**53 else float(number)
    if value == "date" and typed:
        return _date(typed)
    if value == "selected" and typed:
        chosen = set(typed.split())
        return _safe_cell("、".join(o.label.zh_CN for o in item.options if o.id in chosen))
    if value == "file":
        return _safe_cell("已上传 " + (typed if typed and typed != "photo" else "照片"))
    if value == "text" and typed:
        return _safe_cell(typed)
    return VALUE_LABEL.get(value)


def _item_note(number: int, item: Item) -> str:
    """The header comment of an item column: its full text in both languages and its id."""
    unit = f"\n\n单位 Unit: {item.unit.zh_CN} / {item.unit.en}" if item.unit is not None else ""
    return f"{number}. {item.text.zh_CN}\n\n{item.text.en}{unit}\n\n({item.id})"


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None
