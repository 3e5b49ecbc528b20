"""Checklists authored in a spreadsheet: an XLSForm-like workbook to and from checklist TOML.

Workbook layout (documented with every column in ``checklists/README.md``):

- ``settings``: one header row and one row: ``id, version, campaign, deadline, source,
  title::zh_CN, title::en, header`` (``header``: the comment put at the top of the TOML).
- ``survey``: one row per item, sections opened by a ``begin_group`` row (its ``id`` and
  ``text::…`` are the section's id and title) and closed by ``end_group``. Columns: ``type``
  (compliance, confirm, text, yes_no, number, date, ``select_one LIST``, ``select_multiple
  LIST``, attachment), ``id``, ``text::zh_CN``, ``text::en``, ``guidance::zh_CN``,
  ``guidance::en``, ``basis`` (citations ``regulation:edition:article`` separated by ``;``),
  ``basis::zh_CN``, ``basis::en`` (a basis in words, when no citation fits), ``fields``
  (field ids separated by ``;``), ``relevant``, ``required``, ``allow_na``, ``pattern``,
  ``pattern_hint::zh_CN``, ``pattern_hint::en``, ``max_length``, ``min``, ``max``, ``unit::zh_CN``, ``unit::en``, ``same_as``.
- ``choices``: ``list_name, id, label::zh_CN, label::en``, one row per option.

:func:`import_workbook` checks every cell it can on its own and reports *every* problem
with its sheet, row and column; only then does it build the TOML and run the checklist
loader on it (whose problem, if any, is traced back to the item's row).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core import checklist as cl
from bot.core import fields as fields_registry
from bot.core import regulations
from bot.core.conditions import ConditionError, parse_condition

SETTINGS_COLUMNS = ("id", "version", "campaign", "deadline", "source", "title::zh_CN", "title::en", "header")
SURVEY_COLUMNS = (
    "type", "id", "text::zh_CN", "text::en", "guidance::zh_CN", "guidance::en", "basis", "basis::zh_CN",
    "basis::en", "fields", "relevant", "required", "allow_na", "pattern", "pattern_hint::zh_CN",
    "pattern_hint::en", "max_length", "min", "max",
    "unit::zh_CN", "unit::en", "same_as",
)
CHOICES_COLUMNS = ("list_name", "id", "label::zh_CN", "label::en")
ITEM_TYPES = ("compliance", "confirm", "text", "yes_no", "number", "date", "attachment")
LIST_TYPES = ("select_one", "select_multiple")
_TRUE = {"true", "yes", "1", "是", "y"}
_FALSE = {"false", "no", "0", "否", "n", ""}


@dataclass(frozen=True)
class Problem:
    sheet: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.sheet
        if self.row is not None:
            where += f", row {self.row}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class WorkbookError(ValueError):
    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


# Invisible characters no text of a table may hold (a line break or a tab may: they are
# layout): TOML would refuse some in the file written from the workbook, far from the cell.
_CONTROL_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


class _Sheet:
    def __init__(self, wb: Any, name: str, columns: tuple[str, ...], problems: list[Problem], required: bool = True):
        self.name = name
        self.rows: list[tuple[int, dict[str, Any]]] = []
        if name not in wb.sheetnames:
            if required:
                problems.append(Problem(name, None, None, f"the workbook has no sheet {name!r} (sheets: {', '.join(wb.sheetnames)})"))
            return
        ws = wb[name]
        # A sheet may declare smaller dimensions than it holds (some tools write them wrong);
        # read-only mode would trust them and silently leave rows or columns out.
        ws.reset_dimensions()
        header: list[str] = []
        for r, values in enumerate(ws.iter_rows(values_only=True), start=1):
            if not header:
                header = [_cell(v) for v in values]
                first: dict[str, int] = {}
                for c, title in enumerate(header, start=1):
                    if title and title not in columns:
                        import difflib

                        close = difflib.get_close_matches(title, columns, n=1, cutoff=0.75)
                        hint = f" (did you mean {close[0]!r}?)" if close else ""
                        problems.append(Problem(name, 1, _letter(c), f"unknown column {title!r}{hint}"))
                    elif title in first:  # which one would count? neither is taken silently
                        problems.append(Problem(name, 1, _letter(c), f"column {title!r} is already column {_letter(first[title])}"))
                    elif title:
                        first[title] = c
                self.letters = {t: _letter(c) for t, c in first.items()}
                continue
            row = {header[i]: v for i, v in enumerate(values) if i < len(header) and first.get(header[i]) == i + 1}
            if all(_cell(v) == "" for v in row.values()):
                continue
            for column, value in row.items():
                if isinstance(value, str) and (control := _CONTROL_CHAR.search(value)):
                    problems.append(Problem(
                        name, r, self.letter(column),
                        f"{column} holds a control character (U+{ord(control.group()):04X}); retype the cell",
                    ))  # fmt: skip
            self.rows.append((r, row))
        if not header:
            problems.append(Problem(name, 1, None, "the sheet is empty (the first row names the columns)"))
            self.letters = {}

    def letter(self, column: str) -> str:
        return getattr(self, "letters", {}).get(column, column)


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index)


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _toml_string(str(value))


def import_workbook(path: str | os.PathLike[str]) -> tuple[str, cl.Checklist]:
    """The checklist TOML text built from the workbook at ``path``, and the checklist it
    loads as; WorkbookError listing every problem by sheet, row and column."""
    from openpyxl import load_workbook

    shown = os.fspath(path)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a file that is not a workbook
        raise WorkbookError(shown, [Problem("workbook", None, None, f"cannot open it as an .xlsx workbook: {exc}")]) from None
    problems: list[Problem] = []
    settings = _Sheet(wb, "settings", SETTINGS_COLUMNS, problems)
    survey = _Sheet(wb, "survey", SURVEY_COLUMNS, problems)
    choices = _Sheet(wb, "choices", CHOICES_COLUMNS, problems, required=False)
    wb.close()

    lists = _choices(choices, problems)
    head_lines, head = _settings(settings, problems)
    sections, rows_by_item = _survey(survey, lists, problems)
    if problems:
        raise WorkbookError(shown, problems)

    text = _render_toml(head_lines, head, sections, shown)
    # Anything the cell checks did not catch (the loader's own rules), traced to its row.
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / f"{head['id']}.toml"
        file.write_text(text, encoding="utf-8")
        try:
            loaded = cl.load_checklist(file)
        except cl.ChecklistError as exc:
            row = rows_by_item.get(exc.item_id or "")
            raise WorkbookError(shown, [Problem("survey" if row else "settings", row, None, exc.reason)]) from None
    return text, loaded


def _choices(sheet: _Sheet, problems: list[Problem]) -> dict[str, list[tuple[int, dict[str, str]]]]:
    lists: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for r, row in sheet.rows:
        values = {k: _cell(v) for k, v in row.items()}
        for column in CHOICES_COLUMNS:
            if not values.get(column):
                problems.append(Problem("choices", r, sheet.letter(column), f"{column} is empty"))
        option_id = values.get("id", "")
        if option_id and not cl.ID_RE.fullmatch(option_id):
            problems.append(Problem("choices", r, sheet.letter("id"), f"option id {option_id!r} must match {cl.ID_RULE}"))
        name = values.get("list_name", "")
        if name:
            if any(v["id"] == option_id for _, v in lists.get(name, [])):
                problems.append(Problem("choices", r, sheet.letter("id"), f"option {option_id!r} is listed twice in {name!r}"))
            lists.setdefault(name, []).append((r, values))
    return lists


def _settings(sheet: _Sheet, problems: list[Problem]) -> tuple[list[str], dict[str, Any]]:
    if not sheet.rows:
        if getattr(sheet, "letters", None) is not None:
            problems.append(Problem("settings", 2, None, "the settings row (id, version, …) is missing"))
        return [], {"id": "x"}
    if len(sheet.rows) > 1:
        problems.append(Problem("settings", sheet.rows[1][0], None, "only one settings row is read; remove the others"))
    r, row = sheet.rows[0]
    values = {k: _cell(v) for k, v in row.items()}
    for column in ("id", "version", "campaign", "source", "title::zh_CN", "title::en"):
        if not values.get(column):
            problems.append(Problem("settings", r, sheet.letter(column), f"{column} is required"))
    if values.get("id") and not cl.ID_RE.fullmatch(values["id"]):
        problems.append(Problem("settings", r, sheet.letter("id"), f"id must match {cl.ID_RULE}"))
    head: dict[str, Any] = {k: values.get(k, "") for k in ("id", "version", "campaign", "source")}
    head["title"] = (values.get("title::zh_CN", ""), values.get("title::en", ""))
    if values.get("deadline"):
        try:
            head["deadline"] = dt.date.fromisoformat(values["deadline"])
        except ValueError:
            problems.append(Problem("settings", r, sheet.letter("deadline"), f"deadline {values['deadline']!r} is not a date YYYY-MM-DD"))
    header = [line.rstrip() for line in values.get("header", "").splitlines()]
    return header, head


def _bool(value: str, sheet: _Sheet, r: int, column: str, problems: list[Problem]) -> bool | None:
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    problems.append(Problem("survey", r, sheet.letter(column), f"{column} must be true or false, got {value!r}"))
    return None


def _number(value: Any, sheet: _Sheet, r: int, column: str, problems: list[Problem]) -> float | int | None:
    if isinstance(value, bool):
        problems.append(Problem("survey", r, sheet.letter(column), f"{column} must be a number"))
        return None
    try:
        if isinstance(value, (int, float)):
            number: float | int = value
        else:
            text = _cell(value)
            number = int(text) if text.lstrip("-").isdigit() else float(text)
        if not math.isfinite(number):  # float() reads "nan" and "inf"
            raise ValueError(number)
        return number
    except ValueError:
        problems.append(Problem("survey", r, sheet.letter(column), f"{column} must be a number, got {_cell(value)!r}"))
        return None


def _survey(
    sheet: _Sheet, lists: dict[str, list[tuple[int, dict[str, str]]]], problems: list[Problem]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    sections: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    rows_by_item: dict[str, int] = {}
    seen_sections: dict[str, int] = {}
    known_fields = fields_registry.field_ids()
    for r, row in sheet.rows:
        raw = dict(row)
        values = {k: _cell(v) for k, v in raw.items()}
        kind = " ".join(values.get("type", "").split())
        letter = sheet.letter

        def bad(column: str, message: str, r: int = r, letter: Callable[[str], str] = letter) -> None:
            problems.append(Problem("survey", r, letter(column), message))

        if kind in ("begin_group", "begin group"):
            if current is not None:
                bad("type", "groups cannot be nested: close the previous one with end_group first")
            sid = values.get("id", "")
            if not cl.ID_RE.fullmatch(sid):
                bad("id", f"section id {sid!r} must match {cl.ID_RULE}")
            elif sid in seen_sections:
                bad("id", f"section id {sid!r} is already used in row {seen_sections[sid]}")
            seen_sections[sid] = r
            for column in ("text::zh_CN", "text::en"):
                if not values.get(column):
                    bad(column, f"the section title {column} is required")
            current = {"id": sid, "title": (values.get("text::zh_CN", ""), values.get("text::en", "")), "items": [], "row": r}
            sections.append(current)
            continue
        if kind in ("end_group", "end group"):
            if current is None:
                bad("type", "end_group without a begin_group")
            elif not current["items"]:
                bad("type", f"section {current['id']!r} has no items")
            current = None
            continue
        if current is None:
            bad("type", "an item must be inside a group (a begin_group row before it)")
            continue
        base, _, list_name = kind.partition(" ")
        if base in LIST_TYPES:
            if not list_name:
                bad("type", f"{base} needs a list name, e.g. '{base} levels'")
            elif list_name not in lists:
                bad("type", f"no list {list_name!r} in the choices sheet" + (f" (lists: {', '.join(sorted(lists))})" if lists else ""))
        elif base not in ITEM_TYPES or list_name:
            import difflib

            close = difflib.get_close_matches(base, ITEM_TYPES + LIST_TYPES, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            bad("type", f"unknown type {kind!r}{hint}")
            continue
        item_id = values.get("id", "")
        if not cl.ID_RE.fullmatch(item_id):
            bad("id", f"id {item_id!r} must match {cl.ID_RULE}")
        elif item_id in rows_by_item:
            bad("id", f"id {item_id!r} is already used in row {rows_by_item[item_id]}")
        rows_by_item.setdefault(item_id, r)
        item: dict[str, Any] = {"id": item_id, "kind": base}
        for key in ("text", "guidance", "basis", "unit", "pattern_hint"):
            zh, en = values.get(f"{key}::zh_CN", ""), values.get(f"{key}::en", "")
            if key == "text" and (not zh or not en):
                bad("text::zh_CN" if not zh else "text::en", "the question text is required in both languages")
            elif (zh or en) and key != "text":
                if not zh or not en:
                    bad(f"{key}::zh_CN" if not zh else f"{key}::en", f"{key} must be given in both languages")
                item[key] = (zh, en)
            elif key == "text":
                item[key] = (zh, en)
        if values.get("basis"):
            cites = [c.strip() for c in values["basis"].replace("\n", ";").split(";") if c.strip()]
            for cite in cites:
                try:
                    regulations.check_citation(cite)
                except regulations.RegulationError as exc:
                    bad("basis", str(exc))
            item["cites"] = cites
        if base == "compliance" and "cites" not in item and "basis" not in item:
            bad("basis", "a compliance item needs a basis: citations (regulation:edition:article) or basis::zh_CN/en")
        if values.get("fields"):
            ids = [f.strip() for f in values["fields"].replace("，", ";").replace(",", ";").split(";") if f.strip()]
            for field_id in ids:
                if field_id not in known_fields:
                    bad("fields", f"unknown field {field_id!r} (see checklists/fields.toml)")
            item["fields"] = ids
        if values.get("relevant"):
            try:
                condition = parse_condition(values["relevant"])
            except ConditionError as exc:
                bad("relevant", str(exc))
            else:
                for ref in sorted(condition.refs):
                    if ref not in rows_by_item or ref == item_id:
                        bad("relevant", f"${{{ref}}} is not an earlier item")
                item["relevant"] = values["relevant"]
        for column in ("required", "allow_na"):
            if values.get(column):
                flag = _bool(values[column], sheet, r, column, problems)
                if flag is not None and not (column == "required" and flag):
                    item[column] = flag
        if values.get("pattern"):
            item["pattern"] = values["pattern"]
        for column in ("max_length", "min", "max"):
            if values.get(column):
                number = _number(raw.get(column), sheet, r, column, problems)
                if number is not None:
                    if column == "max_length" and (not isinstance(number, int) and not float(number).is_integer()):
                        bad(column, "max_length must be a whole number")
                    item[column] = int(number) if column == "max_length" else number
        if values.get("same_as"):
            item["same_as"] = values["same_as"]
        if base in LIST_TYPES and list_name in lists:
            item["options"] = [(v["id"], v.get("label::zh_CN", ""), v.get("label::en", "")) for _, v in lists[list_name]]
        current["items"].append(item)
    if current is not None:
        problems.append(Problem("survey", current["row"], sheet.letter("type"), f"group {current['id']!r} has no end_group"))
    if not sections and getattr(sheet, "letters", {}):
        problems.append(Problem("survey", None, None, "no begin_group … end_group section with items"))
    return sections, rows_by_item


def _loc(prefix: str, pair: tuple[str, str]) -> str:
    return f"{prefix}.zh_CN = {_toml_string(pair[0])}\n{prefix}.en = {_toml_string(pair[1])}\n"


def _render_toml(header: list[str], head: dict[str, Any], sections: list[dict[str, Any]], source: str) -> str:
    out: list[str] = []
    for line in header:
        out.append(f"# {line}".rstrip() + "\n")
    out.append(f"# Generated by `zicha checklist import` from {Path(source).name}; edit the workbook, not this file.\n\n")
    out.append("[checklist]\n")
    for key in ("id", "version", "campaign"):
        out.append(f"{key} = {_toml_string(head[key])}\n")
    if "deadline" in head:
        out.append(f"deadline = {_toml_string(head['deadline'].isoformat())}\n")
    out.append(f"source = {_toml_string(head['source'])}\n")
    out.append(_loc("title", head["title"]))
    for section in sections:
        out.append(f"\n[[sections]]\nid = {_toml_string(section['id'])}\n")
        out.append(_loc("title", section["title"]))
        for item in section["items"]:
            out.append(f"\n[[sections.items]]\nid = {_toml_string(item['id'])}\nkind = {_toml_string(item['kind'])}\n")
            for key in ("text", "guidance", "basis", "unit", "pattern_hint"):
                if key in item:
                    out.append(_loc(key, item[key]))
            for key in ("cites", "fields", "relevant", "required", "allow_na", "pattern", "max_length", "min", "max", "same_as"):
                if key in item:
                    out.append(f"{key} = {_toml_value(item[key])}\n")
            for option_id, zh, en in item.get("options", []):
                out.append(
                    f"[[sections.items.options]]\nid = {_toml_string(option_id)}\n"
                    f"label.zh_CN = {_toml_string(zh)}\nlabel.en = {_toml_string(en)}\n"
                )
    return "".join(out)


def export_workbook(checklist: cl.Checklist, path: str | os.PathLike[str], header: Iterable[str] = ()) -> None:
    """Write ``checklist`` as a workbook that :func:`import_workbook` reads back to the same checklist."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new workbook always has its first sheet
    ws.title = "settings"
    ws.append(list(SETTINGS_COLUMNS))
    ws.append([
        checklist.id, checklist.version, checklist.campaign,
        checklist.deadline.isoformat() if checklist.deadline else "", checklist.source,
        checklist.title.zh_CN, checklist.title.en, "\n".join(header),
    ])  # fmt: skip
    survey = wb.create_sheet("survey")
    survey.append(list(SURVEY_COLUMNS))
    choices = wb.create_sheet("choices")
    choices.append(list(CHOICES_COLUMNS))
    for section in checklist.sections:
        survey.append(["begin_group", section.id, section.title.zh_CN, section.title.en])
        for item in section.items:
            row: dict[str, Any] = {"type": item.kind, "id": item.id, "text::zh_CN": item.text.zh_CN, "text::en": item.text.en}
            if item.kind in LIST_TYPES:
                row["type"] = f"{item.kind} {item.id}"
                for option in item.options:
                    choices.append([item.id, option.id, option.label.zh_CN, option.label.en])
            if item.guidance:
                row["guidance::zh_CN"], row["guidance::en"] = item.guidance.zh_CN, item.guidance.en
            if item.cites:
                row["basis"] = "; ".join(str(c) for c in item.cites)
                rendered = (regulations.render_citations(item.cites, "zh_CN"), regulations.render_citations(item.cites, "en"))
                explicit = item.basis is not None and (item.basis.zh_CN, item.basis.en) != rendered
            else:
                explicit = item.basis is not None
            if explicit and item.basis is not None:
                row["basis::zh_CN"], row["basis::en"] = item.basis.zh_CN, item.basis.en
            if item.fields:
                row["fields"] = "; ".join(sorted(item.fields))
            if item.relevant is not None:
                row["relevant"] = item.relevant.source
            if not item.required:
                row["required"] = "false"
            if item.allow_na:
                row["allow_na"] = "true"
            if item.pattern:
                row["pattern"] = item.pattern
            hint = getattr(item, "pattern_hint", None)
            if hint is not None:
                row["pattern_hint::zh_CN"], row["pattern_hint::en"] = hint.zh_CN, hint.en
            if item.kind == "text":
                row["max_length"] = item.max_length
            for key, value in (("min", item.minimum), ("max", item.maximum)):
                if value is not None:
                    row[key] = int(value) if float(value).is_integer() else value
            if item.unit:
                row["unit::zh_CN"], row["unit::en"] = item.unit.zh_CN, item.unit.en
            if item.same_as:
                row["same_as"] = item.same_as
            survey.append([row.get(c, "") for c in SURVEY_COLUMNS])
        survey.append(["end_group"])
    for sheet in wb.worksheets:
        for row_cells in sheet.iter_rows(min_row=2):
            for cell in row_cells:
                # A text that starts with "=" is text, never a formula.
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for column in sheet.columns:
            letter = get_column_letter(column[0].column or 1)
            sheet.column_dimensions[letter].width = 14 if letter in ("A", "B") else 30
    wb.save(path)


def same_checklist(a: cl.Checklist, b: cl.Checklist) -> bool:
    """True if two checklists ask the same questions in the same way (path and file hash aside)."""
    key = lambda c: (c.id, c.version, c.title, c.campaign, c.deadline, c.source, c.sections)  # noqa: E731
    return key(a) == key(b)
