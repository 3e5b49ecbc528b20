from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from bot.core.roster import (
    PROVINCE_NAMES,
    ROSTER_COLUMNS,
    RosterError,
    RosterProblem,
    RosterRow,
    parse_roster_rows,
    read_roster,
    write_roster_csv,
)
from bot.core.uscc import make_uscc

USCC_A = "91110108MA01A2B32G"
USCC_B = "124400004556873123"
USCC_C = "91310115MA1K4Q7N24"
BAD_CHECK = "91110108MA01A2B32H"  # expected G

EN_HEADER = ",".join(ROSTER_COLUMNS)
ZH_HEADER = "机构名称,统一社会信用代码,资质认定证书编号,省份,级别,领域,联系人,联系电话"

ROW_A = f"北京某某检测技术有限公司,{USCC_A},231100001234,北京,national,food;motor-vehicle,张三,13912345678"
ROW_B = f"广东省某检验院,{USCC_B},230019001234,广东省,provincial,食品检验、建材,李四,020-87654321"


def write_csv(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "roster.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(tmp_path: Path, rows: list[list[Any]], name: str = "roster.xlsx") -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for r, values in enumerate(rows, start=1):
        for c, value in enumerate(values, start=1):
            if value is not None:
                sheet.cell(row=r, column=c, value=value)
    path = tmp_path / name
    workbook.save(path)
    return path


def problems_of(path: Path) -> list[RosterProblem]:
    with pytest.raises(RosterError) as exc:
        read_roster(path)
    return exc.value.problems


def where(problems: list[RosterProblem]) -> list[tuple[int, str | None]]:
    return [(p.line, p.column) for p in problems]


# --- reading good files --------------------------------------------------------


def test_reads_utf8_csv_with_english_headers(tmp_path: Path) -> None:
    rows = read_roster(write_csv(tmp_path, f"{EN_HEADER}\n{ROW_A}\n{ROW_B}\n"))
    assert rows == [
        RosterRow(
            line=2,
            name="北京某某检测技术有限公司",
            uscc=USCC_A,
            cma_cert="231100001234",
            province="北京",
            level="national",
            fields=("food", "motor-vehicle"),
            contact_name="张三",
            contact_phone="13912345678",
        ),
        RosterRow(
            line=3,
            name="广东省某检验院",
            uscc=USCC_B,
            cma_cert="230019001234",
            province="广东",
            level="provincial",
            fields=("food", "building-materials"),
            contact_name="李四",
            contact_phone="020-87654321",
        ),
    ]


def test_reads_utf8_csv_with_bom(tmp_path: Path) -> None:
    # Excel's "CSV UTF-8" puts a BOM before the first header, which must not spoil "name".
    rows = read_roster(write_csv(tmp_path, f"{EN_HEADER}\r\n{ROW_A}\r\n", encoding="utf-8-sig"))
    assert [r.uscc for r in rows] == [USCC_A]


def test_reads_gbk_csv_with_chinese_headers(tmp_path: Path) -> None:
    # What Excel in mainland China writes for plain "CSV".
    rows = read_roster(write_csv(tmp_path, f"{ZH_HEADER}\r\n{ROW_A}\r\n{ROW_B}\r\n", encoding="gbk"))
    assert [(r.name, r.province) for r in rows] == [("北京某某检测技术有限公司", "北京"), ("广东省某检验院", "广东")]


def test_reads_uppercase_extension(tmp_path: Path) -> None:
    assert len(read_roster(write_csv(tmp_path, f"{EN_HEADER}\n{ROW_A}\n", name="ROSTER.CSV"))) == 1


def test_headers_are_case_insensitive_order_free_and_extra_columns_ignored(tmp_path: Path) -> None:
    header = " Level ,序号, USCC,Name ,fields,province,CMA_Cert,备注"
    row = f"国家级,1,{USCC_A},某机构,食品,广西壮族自治区,231100001234,无"
    rows = read_roster(write_csv(tmp_path, f"{header}\n{row}\n"))
    assert rows[0].level == "national"
    assert rows[0].province == "广西"
    # Contact columns are optional in the header.
    assert rows[0].contact_name == "" and rows[0].contact_phone == ""


def test_whitespace_is_stripped_everywhere(tmp_path: Path) -> None:
    row = f"  某机构  , {USCC_A.lower()} , 231100001234 , 北京 , national , food ; ppe , 张三 , 139 1234 5678 "
    rows = read_roster(write_csv(tmp_path, f"{EN_HEADER}\n{row}\n"))
    assert rows[0].name == "某机构"
    assert rows[0].uscc == USCC_A
    assert rows[0].fields == ("food", "ppe")
    assert rows[0].contact_phone == "13912345678"


def test_fields_are_deduplicated_in_given_order_with_all_separators() -> None:
    header = list(ROSTER_COLUMNS)
    cells = ["某机构", USCC_A, "231100001234", "北京", "national", "机动车；食品、food;机动车检验;", "", ""]
    rows = parse_roster_rows(header, [(2, cells)])
    assert rows[0].fields == ("motor-vehicle", "food")


def test_blank_rows_are_skipped_and_lines_count_them(tmp_path: Path) -> None:
    text = f"{EN_HEADER}\n\n{ROW_A}\n,,,,,,,\n{ROW_B}\n"
    rows = read_roster(write_csv(tmp_path, text))
    assert [r.line for r in rows] == [3, 5]


def test_multiline_quoted_cell_keeps_later_line_numbers_right(tmp_path: Path) -> None:
    row = f'"某检测\n中心",{USCC_A},231100001234,北京,national,food,,'
    text = f"{EN_HEADER}\n{row}\n{ROW_B.replace('广东省某检验院', 'X').replace('020-87654321', 'bad')}\n"
    problems = problems_of(write_csv(tmp_path, text))
    assert where(problems) == [(4, "contact_phone")]


def test_multiline_name_is_collapsed_to_one_line(tmp_path: Path) -> None:
    row = f'"某检测\n中心",{USCC_A},231100001234,北京,national,food,,'
    rows = read_roster(write_csv(tmp_path, f"{EN_HEADER}\n{row}\n"))
    assert rows[0].name == "某检测 中心"


def test_control_characters_and_bidirectional_overrides_are_no_part_of_a_name() -> None:
    """ESC and CSI sequences would act on the operator's terminal when `zicha` prints the
    name; an override would print it reversed in the pledge and the workbook."""
    header = list(ROSTER_COLUMNS)
    cells = ["检测\x1b]0;pwned\x07\x1b[2J中心\u202eXYZ\x9b", USCC_A, "231100001234", "北京", "national", "food", "张\x1b三", ""]
    rows = parse_roster_rows(header, [(2, cells)])
    assert rows[0].name == "检测]0;pwned[2J中心XYZ" and rows[0].contact_name == "张三"


def test_reads_xlsx_with_numbers_typed_into_cells(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        [
            list(ROSTER_COLUMNS),
            ["某机构", USCC_A, 231100001234, "内蒙古", "省级", "食品", "张三", 13912345678],
            [],  # blank sheet row 3 is skipped
            ["另一机构", USCC_C, 231100005678.0, "上海市", "国家级", "其他", None, 13812345678.0],
        ],
    )
    rows = read_roster(path)
    assert [r.line for r in rows] == [2, 4]
    assert rows[0].cma_cert == "231100001234"
    assert rows[0].contact_phone == "13912345678"
    assert rows[0].province == "内蒙古"
    assert rows[1].cma_cert == "231100005678"  # float from Excel, no ".0"
    assert rows[1].contact_phone == "13812345678"
    assert rows[1].contact_name == ""


def test_xlsx_with_chinese_headers_and_header_not_on_row_one(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        [
            [],
            ZH_HEADER.split(","),
            ["某机构", USCC_A, "231100001234", "新疆生产建设兵团", "省级", "食品", "", ""],
            ["某机构2", BAD_CHECK, "231100001234", "兵团", "省级", "食品", "", ""],
        ],
    )
    problems = problems_of(path)
    assert where(problems) == [(4, "uscc")]


def test_xlsx_problem_lines_are_sheet_rows(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path,
        [
            list(ROSTER_COLUMNS),
            ["某机构", USCC_A, "231100001234", "北京", "national", "food"],
            [],
            [],
            ["某机构2", USCC_B, "231100001234", "火星", "national", "food"],
        ],
    )
    assert where(problems_of(path)) == [(5, "province")]


def test_xlsx_number_cell_that_lost_a_leading_zero_gets_an_excel_hint(tmp_path: Path) -> None:
    # A certificate number 012345678901 typed as a number comes back as 12345678901.
    path = write_xlsx(
        tmp_path,
        [list(ROSTER_COLUMNS), ["某机构", USCC_A, 12345678901, "北京", "national", "food"]],
    )
    (problem,) = problems_of(path)
    assert problem.column == "cma_cert"
    assert "format the column as text" in problem.message_en
    assert "文本格式" in problem.message_zh


def test_all_digit_uscc_stored_as_excel_number_is_explained(tmp_path: Path) -> None:
    # 18 digits do not survive a float: Excel keeps 15 significant digits.
    code = "914403001922038216"
    path = write_xlsx(
        tmp_path,
        [list(ROSTER_COLUMNS), ["某机构", float(code), "231100001234", "北京", "national", "food"]],
    )
    (problem,) = problems_of(path)
    assert problem.column == "uscc"
    assert "format the column as text" in problem.message_en


def test_scientific_notation_in_csv_is_explained(tmp_path: Path) -> None:
    row = "某机构,9.14403E+17,231100001234,北京,national,food,,"
    (problem,) = problems_of(write_csv(tmp_path, f"{EN_HEADER}\n{row}\n"))
    assert problem.column == "uscc"
    assert "Excel" in problem.message_en


# --- bad rows ------------------------------------------------------------------


GOOD = ["某机构", USCC_A, "231100001234", "北京", "national", "food", "张三", "13912345678"]


def with_cell(column: str, value: str) -> list[str]:
    cells = list(GOOD)
    cells[ROSTER_COLUMNS.index(column)] = value
    return cells


@pytest.mark.parametrize(
    "column,value,fragment",
    [
        ("name", "", "name is empty"),
        ("name", "检" * 201, "too long: 201 characters"),
        ("name", "=HYPERLINK(\"x\")", "formula"),
        ("uscc", "", "empty"),
        ("uscc", USCC_A[:-1], "wrong length: 17 characters"),
        ("uscc", "91110108MAO1A2B32G", '"O" at position 11'),
        ("uscc", BAD_CHECK, "wrong check digit (expected G)"),
        ("cma_cert", "", "cma_cert is empty"),
        ("cma_cert", "23110000123", "must be 12 digits"),
        ("cma_cert", "23110000123A", "must be 12 digits"),
        ("province", "", "province is empty"),
        ("province", "香港", 'unknown province "香港"'),
        ("province", "广州", 'unknown province "广州"'),
        ("level", "", "level is empty"),
        ("level", "市级", 'unknown level "市级"'),
        ("fields", "", "fields is empty"),
        ("fields", "航天", 'unknown field "航天"'),
        ("contact_name", "张" * 51, "too long: 51 characters, at most 50"),
        ("contact_phone", "12345", "does not look like a Chinese phone number"),
        ("contact_phone", "13912345678/13812345678", "does not look like a Chinese phone number"),
    ],
)
def test_each_kind_of_bad_cell_is_reported_with_line_and_column(column: str, value: str, fragment: str) -> None:
    with pytest.raises(RosterError) as exc:
        parse_roster_rows(list(ROSTER_COLUMNS), [(7, with_cell(column, value))])
    (problem,) = exc.value.problems
    assert (problem.line, problem.column) == (7, column)
    assert fragment in problem.message_en
    assert problem.message_zh  # every problem has a Chinese message too


def test_all_problems_in_a_file_are_reported_at_once(tmp_path: Path) -> None:
    lines = [
        EN_HEADER,
        ROW_A,  # line 2: good
        f"机构乙,{BAD_CHECK},231100001234,北京,national,food,,",  # line 3
        f",{USCC_B},1234,广东,provincial,food,,",  # line 4: two problems
        f"机构丁,{USCC_C},231100001234,火星,county,rockets;food,,not-a-phone",  # line 5: four problems
        f"机构戊,{USCC_A},231100001234,北京,national,food,,",  # line 6: duplicate of line 2
    ]
    problems = problems_of(write_csv(tmp_path, "\n".join(lines) + "\n"))
    assert where(problems) == [
        (3, "uscc"),
        (4, "name"),
        (4, "cma_cert"),
        (5, "province"),
        (5, "level"),
        (5, "fields"),
        (5, "contact_phone"),
        (6, "uscc"),
    ]


def test_one_bad_row_means_nothing_is_imported(tmp_path: Path) -> None:
    text = f"{EN_HEADER}\n{ROW_A}\n{ROW_B}\n机构,{BAD_CHECK},231100001234,北京,national,food,,\n"
    with pytest.raises(RosterError) as exc:
        read_roster(write_csv(tmp_path, text))
    assert len(exc.value.problems) == 1


def test_error_text_has_one_line_per_problem(tmp_path: Path) -> None:
    text = f"{EN_HEADER}\n{ROW_A}\n{ROW_B}\n机构,{BAD_CHECK},231100001234,北京,national,航天,,\n"
    with pytest.raises(RosterError) as exc:
        read_roster(write_csv(tmp_path, text))
    assert str(exc.value).splitlines() == [
        "line 4, uscc: wrong check digit (expected G)",
        exc.value.problems[1].describe("en"),
    ]
    assert str(exc.value).splitlines()[1].startswith('line 4, fields: unknown field "航天"')
    assert exc.value.describe("zh_CN").splitlines()[0] == "第4行，统一社会信用代码：校验码错误（应为G）"


def test_unknown_fields_are_each_named() -> None:
    with pytest.raises(RosterError) as exc:
        parse_roster_rows(list(ROSTER_COLUMNS), [(2, with_cell("fields", "航天；食品；火箭"))])
    assert ['"航天"' in p.message_en or '"火箭"' in p.message_en for p in exc.value.problems] == [True, True]
    assert "航天" in exc.value.problems[0].message_zh


def test_duplicate_uscc_names_the_earlier_line(tmp_path: Path) -> None:
    text = f"{EN_HEADER}\n{ROW_A}\n{ROW_B}\n{ROW_A.replace('北京某某', '重复')}\n"
    (problem,) = problems_of(write_csv(tmp_path, text))
    assert (problem.line, problem.column) == (4, "uscc")
    assert "line 2" in problem.message_en
    assert "第2行" in problem.message_zh


def test_duplicate_uscc_is_detected_after_normalisation() -> None:
    with pytest.raises(RosterError) as exc:
        parse_roster_rows(list(ROSTER_COLUMNS), [(2, GOOD), (3, with_cell("uscc", " " + USCC_A.lower()))])
    assert where(exc.value.problems) == [(3, "uscc")]


def test_missing_required_column_is_one_problem_on_line_1(tmp_path: Path) -> None:
    header = "name,uscc,province,level,fields"
    text = f"{header}\n某机构,{USCC_A},北京,national,food\n机构2,{USCC_B},广东,national,food\n"
    (problem,) = problems_of(write_csv(tmp_path, text))
    assert (problem.line, problem.column) == (1, "cma_cert")
    assert "missing column" in problem.message_en
    assert "资质认定证书编号" in problem.message_zh


def test_missing_column_does_not_hide_problems_in_other_columns(tmp_path: Path) -> None:
    header = "name,uscc,province,level,fields"
    text = f"{header}\n某机构,{BAD_CHECK},北京,national,food\n"
    assert where(problems_of(write_csv(tmp_path, text))) == [(1, "cma_cert"), (2, "uscc")]


def test_duplicate_header_column_is_reported(tmp_path: Path) -> None:
    text = f"{EN_HEADER},统一社会信用代码\n{ROW_A},{USCC_B}\n"
    problems = problems_of(write_csv(tmp_path, text))
    assert where(problems) == [(1, "uscc")]
    assert "columns 2 and 9" in problems[0].message_en


@pytest.mark.parametrize("text", ["", "\n\n", "\ufeff", ",,,\n"])
def test_empty_file_reports_no_rows(tmp_path: Path, text: str) -> None:
    (problem,) = problems_of(write_csv(tmp_path, text))
    assert "no rows" in problem.message_en


def test_header_only_reports_no_rows(tmp_path: Path) -> None:
    (problem,) = problems_of(write_csv(tmp_path, f"{EN_HEADER}\n\n"))
    assert problem.message_en.startswith("no rows")
    assert str(RosterError([problem])) == problem.message_en  # file-level: no "line 0"


def test_empty_xlsx_reports_no_rows(tmp_path: Path) -> None:
    (problem,) = problems_of(write_xlsx(tmp_path, []))
    assert "no rows" in problem.message_en


# --- values accepted -----------------------------------------------------------


@pytest.mark.parametrize(
    "given,canonical",
    [
        ("广东", "广东"),
        ("广东省", "广东"),
        ("北京", "北京"),
        ("北京市", "北京"),
        ("内蒙古", "内蒙古"),
        ("内蒙古自治区", "内蒙古"),
        ("广西", "广西"),
        ("广西壮族自治区", "广西"),
        ("广西自治区", "广西"),
        ("宁夏回族自治区", "宁夏"),
        ("新疆维吾尔自治区", "新疆"),
        ("西藏自治区", "西藏"),
        ("重庆市", "重庆"),
        ("黑龙江省", "黑龙江"),
        ("新疆生产建设兵团", "新疆生产建设兵团"),
        (" 陕西省 ", "陕西"),
    ],
)
def test_province_forms_normalise_to_short_name(given: str, canonical: str) -> None:
    rows = parse_roster_rows(list(ROSTER_COLUMNS), [(2, with_cell("province", given))])
    assert rows[0].province == canonical


def test_province_table_has_31_divisions_plus_the_corps() -> None:
    assert len(PROVINCE_NAMES) == 32 == len(set(PROVINCE_NAMES))
    assert "新疆生产建设兵团" in PROVINCE_NAMES
    assert not {"香港", "澳门", "台湾"} & set(PROVINCE_NAMES)


@pytest.mark.parametrize(
    "given,level",
    [("national", "national"), ("National", "national"), ("国家级", "national"), ("省级", "provincial"), ("PROVINCIAL", "provincial")],
)
def test_level_forms(given: str, level: str) -> None:
    assert parse_roster_rows(list(ROSTER_COLUMNS), [(2, with_cell("level", given))])[0].level == level


@pytest.mark.parametrize(
    "phone",
    [
        "",
        "13912345678",
        "139-1234-5678",
        "+8613912345678",
        "+86 139 1234 5678",
        "010-12345678",
        "01012345678",
        "0755-1234567",
        "(010)12345678",
        "010-12345678-8001",
        "010-12345678转8001",
        "+86-10-12345678",
        "0086 755 12345678",
        "０２０－８７６５４３２１",  # full-width from a Chinese IME
    ],
)
def test_phone_forms_accepted(phone: str) -> None:
    assert parse_roster_rows(list(ROSTER_COLUMNS), [(2, with_cell("contact_phone", phone))])


@pytest.mark.parametrize(
    "phone", ["12345678901", "1391234567", "139123456789", "12345678", "010-123456", "tel:13912345678", "13912345678x"]
)
def test_phone_forms_rejected(phone: str) -> None:
    with pytest.raises(RosterError):
        parse_roster_rows(list(ROSTER_COLUMNS), [(2, with_cell("contact_phone", phone))])


# --- file types ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["roster.txt", "roster.xls", "roster", "roster.ods"])
def test_other_extensions_are_rejected_clearly(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(f"{EN_HEADER}\n{ROW_A}\n", encoding="utf-8")
    (problem,) = problems_of(path)
    assert problem.line == 0
    assert ".xlsx" in problem.message_en and ".xlsx" in problem.message_zh


def test_xlsx_saved_as_csv_is_recognised(tmp_path: Path) -> None:
    xlsx = write_xlsx(tmp_path, [list(ROSTER_COLUMNS)])
    csv_path = tmp_path / "roster.csv"
    csv_path.write_bytes(xlsx.read_bytes())
    (problem,) = problems_of(csv_path)
    assert "rename it to .xlsx" in problem.message_en


def test_corrupt_xlsx_is_a_roster_error(tmp_path: Path) -> None:
    path = tmp_path / "roster.xlsx"
    path.write_bytes(b"not a zip at all")
    (problem,) = problems_of(path)
    assert "cannot read the Excel file" in problem.message_en


def test_undecodable_csv_is_a_roster_error(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(b"name,uscc\n\x80\xff\xfe\x81\n")
    (problem,) = problems_of(path)
    assert "cannot decode" in problem.message_en


def test_utf16_tab_separated_export_is_read(tmp_path: Path) -> None:
    # Excel's "Unicode text" export.
    text = "\t".join(ROSTER_COLUMNS) + "\r\n" + ROW_A.replace(",", "\t") + "\r\n"
    rows = read_roster(write_csv(tmp_path, text, encoding="utf-16"))
    assert rows[0].uscc == USCC_A


def test_missing_file_is_not_a_roster_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_roster(tmp_path / "absent.csv")


# --- writing -------------------------------------------------------------------


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    original = read_roster(write_csv(tmp_path, f"{ZH_HEADER}\n{ROW_A}\n{ROW_B}\n", name="in.csv"))
    tricky = dataclasses.replace(original[0], line=4, name='某"检测", 中心', uscc=USCC_C, contact_phone="")
    rows = [*original, tricky]
    out = tmp_path / "out.csv"
    with out.open("w", encoding="utf-8", newline="") as f:
        write_roster_csv(rows, f)
    assert read_roster(out) == rows


def test_written_csv_has_english_header_and_semicolon_fields() -> None:
    rows = parse_roster_rows(list(ROSTER_COLUMNS), [(2, GOOD), (3, with_cell("uscc", USCC_B))])
    rows = [dataclasses.replace(rows[0], fields=("food", "ppe")), rows[1]]
    buffer = io.StringIO(newline="")
    write_roster_csv(rows, buffer)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == EN_HEADER
    assert lines[1] == f"某机构,{USCC_A},231100001234,北京,national,food;ppe,张三,13912345678"


def test_large_generated_roster_is_read_in_order(tmp_path: Path) -> None:
    # Demo-sized data built with make_uscc: every code distinct and valid.
    lines = [EN_HEADER]
    for i in range(500):
        code = make_uscc(f"91440106MA{i:07d}")
        lines.append(f"机构{i},{code},2319{i:08d},广东,provincial,food,,")
    rows = read_roster(write_csv(tmp_path, "\n".join(lines)))
    assert [r.line for r in rows] == list(range(2, 502))
    assert len({r.uscc for r in rows}) == 500
