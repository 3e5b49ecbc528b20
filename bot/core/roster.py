"""Read and validate a regulator's roster of institutions (CSV or XLSX).

The roster is all-or-nothing: if any row is bad, ``RosterError`` lists every
problem (with the line a person sees in Excel or a text editor) and nothing is
imported. A half-imported roster would leave institutions without invite codes
and nobody would notice until the deadline.

Messages come in Chinese and English: the clerk fixing the spreadsheet reads
Chinese, logs and tests use English.

Excel traps handled here, because regulators' rosters come from Excel:

* CSVs saved by Excel in China are GBK (read as GB18030, its superset), or
  UTF-8 with a BOM;
* numbers typed into cells (certificate numbers, phone numbers, all-digit
  credit codes) come back as int/float and are turned back into text without
  ".0"; when such a cell is invalid the message says to format the column as
  text, since Excel drops leading zeros and keeps only 15 significant digits.
"""

from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.core.fields import all_fields, resolve_field
from bot.core.interview import without_controls
from bot.core.spreadsheet import starts_like_formula, strip_invisible
from bot.core.uscc import InvalidUSCC, validate_uscc

# The sheet of a workbook the import reads when there is one of this name (Zicha's own export
# has it among others); any other workbook: its first sheet.
ROSTER_SHEET = "名册 Roster"

ROSTER_COLUMNS: tuple[str, ...] = (
    "name",
    "uscc",
    "cma_cert",
    "province",
    "level",
    "fields",
    "contact_name",
    "contact_phone",
)
# The contact columns may be left out of the file entirely: many rosters are
# exported from registers that do not hold a contact person.
REQUIRED_COLUMNS: tuple[str, ...] = ROSTER_COLUMNS[:6]

COLUMN_ZH: dict[str, str] = {
    "name": "机构名称",
    "uscc": "统一社会信用代码",
    "cma_cert": "资质认定证书编号",
    "province": "省份",
    "level": "级别",
    "fields": "领域",
    "contact_name": "联系人",
    "contact_phone": "联系电话",
}

LEVELS: tuple[str, ...] = ("national", "provincial")
_LEVEL_ALIASES: dict[str, str] = {
    "national": "national",
    "provincial": "provincial",
    "国家级": "national",
    "省级": "provincial",
}

MAX_NAME = 200
MAX_CONTACT_NAME = 50
CMA_CERT_DIGITS = 12

# (short canonical name, official full name). The 31 provincial-level divisions
# of mainland China plus 新疆生产建设兵团, which the market regulator treats as
# a provincial-level supervisor of its own.
PROVINCES: tuple[tuple[str, str], ...] = (
    ("北京", "北京市"),
    ("天津", "天津市"),
    ("河北", "河北省"),
    ("山西", "山西省"),
    ("内蒙古", "内蒙古自治区"),
    ("辽宁", "辽宁省"),
    ("吉林", "吉林省"),
    ("黑龙江", "黑龙江省"),
    ("上海", "上海市"),
    ("江苏", "江苏省"),
    ("浙江", "浙江省"),
    ("安徽", "安徽省"),
    ("福建", "福建省"),
    ("江西", "江西省"),
    ("山东", "山东省"),
    ("河南", "河南省"),
    ("湖北", "湖北省"),
    ("湖南", "湖南省"),
    ("广东", "广东省"),
    ("广西", "广西壮族自治区"),
    ("海南", "海南省"),
    ("重庆", "重庆市"),
    ("四川", "四川省"),
    ("贵州", "贵州省"),
    ("云南", "云南省"),
    ("西藏", "西藏自治区"),
    ("陕西", "陕西省"),
    ("甘肃", "甘肃省"),
    ("青海", "青海省"),
    ("宁夏", "宁夏回族自治区"),
    ("新疆", "新疆维吾尔自治区"),
    ("新疆生产建设兵团", "新疆生产建设兵团"),
)
PROVINCE_NAMES: tuple[str, ...] = tuple(short for short, _ in PROVINCES)


def _province_lookup() -> dict[str, str]:
    table: dict[str, str] = {}
    for short, full in PROVINCES:
        table[short] = short
        table[full] = short
        # Informal forms people write: 广东省 for a province is the full name, but
        # 广西自治区 / 宁夏自治区 drop the ethnic name; accept the bare suffix too.
        if full.endswith("自治区"):
            table[short + "自治区"] = short
    table["兵团"] = "新疆生产建设兵团"
    table["新疆兵团"] = "新疆生产建设兵团"
    return table


_PROVINCE_LOOKUP = _province_lookup()


def resolve_province(name: str) -> str | None:
    """The canonical short name (广东, 北京, 新疆生产建设兵团 …) for any accepted spelling; None if unknown."""
    return _PROVINCE_LOOKUP.get("".join(unicodedata.normalize("NFKC", name).split()))

_FIELD_SEPARATORS = re.compile(r"[;；、,，]")
_MOBILE = r"1[3-9]\d-?\d{4}-?\d{4}"
_EXTENSION = r"(?:(?:-|转|分机|ext\.?|x|#)\d{1,6})?"
# Domestic landlines need the leading 0 of the area code; after +86 / 0086 it is
# usually dropped (+86 10 …), so it is optional there.
_PHONE_RE = re.compile(
    rf"(?:{_MOBILE}|\(?0\d{{2,3}}\)?-?\d{{7,8}}{_EXTENSION}"
    rf"|(?:\+|00)86-?(?:{_MOBILE}|\(?0?\d{{2,3}}\)?-?\d{{7,8}}{_EXTENSION}))",
    re.IGNORECASE,
)
# How Excel writes a long number it has turned into a float: 9.14403E+17.
_SCIENTIFIC_RE = re.compile(r"\d(?:\.\d+)?E\+\d+", re.IGNORECASE)
# Text starting with = + - @ (also full-width, or behind invisible characters: see
# bot/core/spreadsheet.py) is run as a formula when a CSV is opened in Excel (CSV
# injection). No institution or person is named like that, so refuse it here rather
# than exporting it later.


@dataclass(frozen=True)
class RosterRow:
    line: int  # line as a person sees it (header = line 1); for XLSX the sheet row
    name: str
    uscc: str
    cma_cert: str
    province: str  # short canonical name, e.g. "广东", "新疆生产建设兵团"
    level: str  # "national" or "provincial"
    fields: tuple[str, ...]  # field ids, deduplicated, in the order given
    contact_name: str
    contact_phone: str


@dataclass(frozen=True)
class RosterProblem:
    line: int  # 0 = the file as a whole (unreadable, wrong type, no rows)
    column: str | None  # an entry of ROSTER_COLUMNS, or None for a whole row / file
    message_zh: str
    message_en: str

    def describe(self, locale: str = "en") -> str:
        zh = locale.startswith("zh")
        message = self.message_zh if zh else self.message_en
        if zh:
            where = f"第{self.line}行" if self.line else ""
            if self.column:
                where += ("，" if where else "") + COLUMN_ZH.get(self.column, self.column)
            return f"{where}：{message}" if where else message
        where = f"line {self.line}" if self.line else ""
        if self.column:
            where += (", " if where else "") + self.column
        return f"{where}: {message}" if where else message


class RosterError(ValueError):
    """The roster has problems; nothing from it may be imported."""

    def __init__(self, problems: Sequence[RosterProblem]) -> None:
        self.problems: list[RosterProblem] = list(problems)
        super().__init__(self.describe("en"))

    def describe(self, locale: str = "en") -> str:
        """One line per problem, in Chinese for a ``zh*`` locale, else English."""
        return "\n".join(p.describe(locale) for p in self.problems)

    def __str__(self) -> str:
        return self.describe("en")


class _CellProblem(Exception):
    """Internal: a validator's bilingual complaint about one cell."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en


# --- cells -------------------------------------------------------------------


def _cell_text(value: object) -> tuple[str, bool]:
    """(text, was_a_number) for a cell from either format.

    Whole floats lose their ".0" (Excel stores every number as a float); the
    flag lets validators explain that a number cell may have lost digits.
    """
    if value is None:
        return "", False
    if isinstance(value, bool):  # bool is an int subclass; keep it out of the number path
        return str(value), False
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value)), True
        return repr(value), True
    return str(value).strip(), False


def _number_hint(text: str, was_number: bool) -> tuple[str, str]:
    """Extra advice when a bad cell is probably Excel's doing, else empty strings."""
    if was_number or _SCIENTIFIC_RE.fullmatch(text):
        return (
            "（该单元格被 Excel 当作数字，可能丢失了开头的0或末尾数字；请将该列设为文本格式后重新填写）",
            " (the cell holds a number, so Excel may have dropped leading zeros or trailing digits;"
            " format the column as text and re-enter it)",
        )
    return "", ""


def _collapse(text: str) -> str:
    # Alt+Enter line breaks and doubled spaces inside a name are layout, not content;
    # a zero-width space or byte-order mark at either end is a copy-and-paste leftover;
    # control characters (ESC, CSI a terminal acts on) and bidirectional overrides are no
    # part of any name.
    return strip_invisible(" ".join(without_controls(text).split()))


# --- per-column validators ---------------------------------------------------


def _check_name(text: str, column: str, limit: int, required: bool) -> str:
    name = _collapse(text)
    if not name:
        if required:
            raise _CellProblem("不能为空", f"{column} is empty")
        return ""
    if len(name) > limit:
        raise _CellProblem(
            f"过长：{len(name)}个字符，最多{limit}个",
            f"too long: {len(name)} characters, at most {limit}",
        )
    if starts_like_formula(name):
        raise _CellProblem(
            "不能以 = + - @（含全角＝＋－＠）开头（会被 Excel 当作公式）",
            "must not start with = + - @ or their full-width forms ＝ ＋ － ＠ (Excel would run it as a formula)",
        )
    return name


def _check_uscc(text: str, was_number: bool) -> str:
    try:
        return validate_uscc(text)
    except InvalidUSCC as err:
        hint_zh, hint_en = _number_hint(text, was_number)
        raise _CellProblem(err.reason_zh + hint_zh, err.reason_en + hint_en) from None


def _check_cma_cert(text: str, was_number: bool) -> str:
    # Only "12 digits" is checked: the layout (year, authority, field, ministry,
    # serial) comes from an unverified source, and rejecting a real certificate
    # would block an institution from the self-check.
    cert = "".join(unicodedata.normalize("NFKC", text).split())
    if not cert:
        raise _CellProblem("不能为空", "cma_cert is empty")
    if not (cert.isascii() and cert.isdigit() and len(cert) == CMA_CERT_DIGITS):
        hint_zh, hint_en = _number_hint(cert, was_number)
        raise _CellProblem(
            f"应为12位数字，实际为“{cert}”（{len(cert)}个字符）{hint_zh}",
            f'must be 12 digits, got "{cert}" ({len(cert)} characters){hint_en}',
        )
    return cert


def _check_province(text: str) -> str:
    key = "".join(unicodedata.normalize("NFKC", text).split())
    if not key:
        raise _CellProblem("不能为空", "province is empty")
    short = _PROVINCE_LOOKUP.get(key)
    if short is None:
        raise _CellProblem(
            f"无法识别的省份“{key}”：应为内地31个省级行政区之一或新疆生产建设兵团（如“广东”或“广东省”）",
            f'unknown province "{key}": expected one of the 31 provincial-level divisions of mainland China'
            " or 新疆生产建设兵团, e.g. 广东 or 广东省",
        )
    return short


def _check_level(text: str) -> str:
    key = text.strip().lower()
    if not key:
        raise _CellProblem("不能为空", "level is empty")
    level = _LEVEL_ALIASES.get(key)
    if level is None:
        raise _CellProblem(
            f"无法识别的级别“{text.strip()}”：应为“国家级”或“省级”",
            f'unknown level "{text.strip()}": expected national or provincial (国家级 / 省级)',
        )
    return level


def _check_fields(text: str) -> tuple[tuple[str, ...], list[_CellProblem]]:
    """Field ids, plus one problem per unknown name so each can be fixed."""
    names = [part.strip() for part in _FIELD_SEPARATORS.split(text)]
    names = [n for n in names if n]
    if not names:
        return (), [_CellProblem("不能为空", "fields is empty")]
    ids: list[str] = []
    problems: list[_CellProblem] = []
    for name in names:
        field_id = resolve_field(name)
        if field_id is None:
            known_zh = "、".join(f.zh_CN for f in all_fields())
            known_en = ", ".join(f.id for f in all_fields())
            problems.append(
                _CellProblem(
                    f"无法识别的领域“{name}”（可用：{known_zh}）",
                    f'unknown field "{name}" (known: {known_en})',
                )
            )
        elif field_id not in ids:
            ids.append(field_id)
    return tuple(ids), problems


def _check_phone(text: str, was_number: bool) -> str:
    phone = "".join(unicodedata.normalize("NFKC", text).split())
    if not phone:
        return ""
    if not _PHONE_RE.fullmatch(phone):
        hint_zh, hint_en = _number_hint(phone, was_number)
        raise _CellProblem(
            f"“{phone}”不像中国电话号码（手机如13912345678，座机如010-12345678，可带+86或分机号；只填一个号码）{hint_zh}",
            f'"{phone}" does not look like a Chinese phone number (mobile like 13912345678, landline like'
            f" 010-12345678, optional +86 or extension; one number only){hint_en}",
        )
    return phone


# --- header ------------------------------------------------------------------


def _header_key(text: str) -> str:
    # Templates often mark required columns with "*" and Excel users type
    # "Contact Name" or "contact-name"; all of these mean the same column.
    key = unicodedata.normalize("NFKC", text).strip().strip("*").strip().lower()
    return re.sub(r"[\s\-]+", "_", key)


_HEADER_ALIASES: dict[str, str] = {}
for _column in ROSTER_COLUMNS:
    _HEADER_ALIASES[_column] = _column
    _HEADER_ALIASES[_header_key(COLUMN_ZH[_column])] = _column


def _map_header(header: Sequence[object], header_line: int) -> tuple[dict[str, int], list[RosterProblem]]:
    """Column name → index; unknown headers (序号, 备注 …) are ignored on purpose."""
    index: dict[str, int] = {}
    problems: list[RosterProblem] = []
    for i, cell in enumerate(header):
        text, _ = _cell_text(cell)
        column = _HEADER_ALIASES.get(_header_key(text))
        if column is None:
            continue
        if column in index:
            problems.append(
                RosterProblem(
                    header_line,
                    column,
                    f"列“{COLUMN_ZH[column]}”出现了两次（第{index[column] + 1}列和第{i + 1}列）",
                    f"column appears twice (columns {index[column] + 1} and {i + 1})",
                )
            )
            continue
        index[column] = i
    for column in REQUIRED_COLUMNS:
        if column not in index:
            problems.append(
                RosterProblem(
                    header_line,
                    column,
                    f"缺少列“{COLUMN_ZH[column]}”（{column}）；第一行必须是表头",
                    f'missing column "{column}" ({COLUMN_ZH[column]}); the first row must be the header',
                )
            )
    return index, problems


# --- rows --------------------------------------------------------------------


def parse_roster_rows(
    header: Sequence[object],
    rows: Iterable[tuple[int, Sequence[object]]],
    *,
    header_line: int = 1,
) -> list[RosterRow]:
    """Validate rows (``(line, cells)``) under ``header``; RosterError lists every problem.

    Shared by the CSV and XLSX readers. Cells may be str, int, float or None.
    Blank rows are skipped. ``header_line`` is where the header was found, for
    problems about columns.
    """
    index, problems = _map_header(header, header_line)
    result: list[RosterRow] = []
    first_line_of: dict[str, int] = {}
    saw_row = False

    for line, raw_cells in rows:
        cells = [_cell_text(c) for c in raw_cells]
        if not any(text for text, _ in cells):
            continue
        saw_row = True

        def cell(column: str) -> tuple[str, bool]:
            i = index.get(column)
            if i is None or i >= len(cells):
                return "", False
            return cells[i]

        row_problems: list[RosterProblem] = []
        values: dict[str, object] = {}

        def run(column: str, check: Callable[[], object]) -> None:
            # Only validate columns that exist: a missing column was already reported once.
            if column not in index and column in REQUIRED_COLUMNS:
                return
            try:
                values[column] = check()
            except _CellProblem as p:
                row_problems.append(RosterProblem(line, column, p.zh, p.en))

        name_text, _ = cell("name")
        run("name", lambda: _check_name(name_text, "name", MAX_NAME, required=True))
        uscc_text, uscc_num = cell("uscc")
        run("uscc", lambda: _check_uscc(uscc_text, uscc_num))
        cert_text, cert_num = cell("cma_cert")
        run("cma_cert", lambda: _check_cma_cert(cert_text, cert_num))
        run("province", lambda: _check_province(cell("province")[0]))
        run("level", lambda: _check_level(cell("level")[0]))
        field_ids: tuple[str, ...] = ()
        if "fields" in index:
            field_ids, field_problems = _check_fields(cell("fields")[0])
            row_problems.extend(RosterProblem(line, "fields", p.zh, p.en) for p in field_problems)
        contact_text, _ = cell("contact_name")
        run("contact_name", lambda: _check_name(contact_text, "contact_name", MAX_CONTACT_NAME, required=False))
        phone_text, phone_num = cell("contact_phone")
        run("contact_phone", lambda: _check_phone(phone_text, phone_num))

        uscc = values.get("uscc")
        if isinstance(uscc, str):
            earlier = first_line_of.get(uscc)
            if earlier is not None:
                row_problems.append(
                    RosterProblem(
                        line,
                        "uscc",
                        f"与第{earlier}行重复",
                        f"duplicate: same code as line {earlier}",
                    )
                )
            else:
                first_line_of[uscc] = line

        problems.extend(row_problems)
        if not row_problems and not problems:
            result.append(
                RosterRow(
                    line=line,
                    name=str(values["name"]),
                    uscc=str(values["uscc"]),
                    cma_cert=str(values["cma_cert"]),
                    province=str(values["province"]),
                    level=str(values["level"]),
                    fields=field_ids,
                    contact_name=str(values.get("contact_name", "")),
                    contact_phone=str(values.get("contact_phone", "")),
                )
            )

    if not saw_row:
        problems.append(RosterProblem(0, None, "没有数据行：表中没有任何机构", "no rows: the file lists no institutions"))
    if problems:
        raise RosterError(problems)
    return result


def _split_header(
    records: Iterable[tuple[int, Sequence[object]]],
) -> tuple[int, Sequence[object], Iterable[tuple[int, Sequence[object]]]] | None:
    """The first non-blank record is the header; None if there is none."""
    iterator = iter(records)
    for line, cells in iterator:
        if any(_cell_text(c)[0] for c in cells):
            return line, cells, iterator
    return None


def _parse_records(records: Iterable[tuple[int, Sequence[object]]]) -> list[RosterRow]:
    split = _split_header(records)
    if split is None:
        raise RosterError([RosterProblem(0, None, "文件为空：没有表头也没有数据行", "no rows: the file is empty")])
    header_line, header, rest = split
    return parse_roster_rows(header, rest, header_line=header_line)


# --- file formats ------------------------------------------------------------


def _file_problem(zh: str, en: str) -> RosterError:
    return RosterError([RosterProblem(0, None, zh, en)])


def _decode_csv(data: bytes) -> str:
    if data.startswith(b"PK\x03\x04"):
        # An .xlsx renamed to .csv (or saved with the wrong name) is a zip archive.
        raise _file_problem(
            "该文件实际是 Excel 工作簿（.xlsx），请将扩展名改为 .xlsx 后重新上传",
            "this is an Excel workbook (.xlsx) with a .csv name; rename it to .xlsx",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Excel's "Unicode text" export is UTF-16 with a BOM.
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data.decode("utf-8-sig")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Excel in mainland China saves "CSV" as GBK; GB18030 is its superset.
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise _file_problem(
            "无法识别文件编码：请另存为“CSV UTF-8”或 .xlsx",
            "cannot decode the file as UTF-8 or GB18030; save it as CSV UTF-8 or .xlsx",
        ) from None


def _csv_records(text: str) -> list[tuple[int, list[str]]]:
    first_line = text.split("\n", 1)[0]
    # Tab-separated files come from Excel's "Unicode text" export; ";" is not a
    # candidate because it separates fields inside a cell.
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    # A quoted cell may span lines; report the line the record starts on.
    start = 1
    try:
        for cells in reader:
            records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as err:
        raise RosterError(
            [RosterProblem(reader.line_num or start, None, f"CSV 格式错误：{err}", f"malformed CSV: {err}")]
        ) from None
    return records


def _read_csv(path: Path) -> list[RosterRow]:
    return _parse_records(_csv_records(_decode_csv(path.read_bytes())))


def _read_xlsx(path: Path) -> list[RosterRow]:
    # Imported lazily: openpyxl is heavy and only needed for this format.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError) as err:
        raise _file_problem(
            f"无法读取 Excel 文件：{err}",
            f"cannot read the Excel file: {err}",
        ) from None
    try:
        if not workbook.worksheets:
            raise _file_problem("文件为空：没有工作表", "no rows: the workbook has no sheet")
        sheet = workbook[ROSTER_SHEET] if ROSTER_SHEET in workbook.sheetnames else workbook.worksheets[0]
        # Files written by other tools sometimes declare wrong dimensions; read-only
        # mode trusts them unless reset, and would silently miss rows.
        sheet.reset_dimensions()
        # iter_rows starts at sheet row 1 and yields empty tuples for empty rows,
        # so the position is the row number a person sees in Excel.
        records = [(n, list(values)) for n, values in enumerate(sheet.iter_rows(values_only=True), start=1)]
    finally:
        # Read-only workbooks keep the file open until closed.
        workbook.close()
    return _parse_records(records)


def read_roster(path: str | os.PathLike[str]) -> list[RosterRow]:
    """Rows of a ``.csv`` or ``.xlsx`` roster (its ``名册 Roster`` sheet, else its first);
    RosterError if anything is wrong.

    OSError (e.g. a missing file) is not a roster problem and propagates.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix == ".xls":
        raise _file_problem(
            "不支持旧版 Excel 格式（.xls），请另存为 .xlsx 或 CSV",
            "old Excel format (.xls) is not supported; save it as .xlsx or CSV",
        )
    raise _file_problem(
        f"不支持的文件类型“{path.suffix or '（无扩展名）'}”：请上传 .xlsx 或 .csv 文件",
        f'unsupported file type "{path.suffix or "(none)"}": upload an .xlsx or .csv file',
    )


def write_roster_csv(rows: Iterable[RosterRow], fileobj: TextIO) -> None:
    """Write rows in the format read_roster reads (English header, ``;`` between fields).

    ``fileobj`` must be opened with ``newline=""``. Open it with encoding
    "utf-8-sig" if the file is meant for Excel, which otherwise guesses GBK.
    Note that Excel turns all-digit codes into numbers when it opens a CSV:
    edit rosters as .xlsx where possible.
    """
    writer = csv.writer(fileobj)
    writer.writerow(ROSTER_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.name,
                row.uscc,
                row.cma_cert,
                row.province,
                row.level,
                ";".join(row.fields),
                row.contact_name,
                row.contact_phone,
            ]
        )
