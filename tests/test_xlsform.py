"""Tables authored in a spreadsheet: `zicha checklist import|export` (issue 9)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

from bot.cli import cli
from bot.core.checklist import ChecklistError, load_checklist, load_checklists
from bot.core.xlsform import (
    CHOICES_COLUMNS,
    SETTINGS_COLUMNS,
    SURVEY_COLUMNS,
    WorkbookError,
    export_workbook,
    import_workbook,
    same_checklist,
)
from bot.resources import data_dir

SHIPPED = load_checklists(data_dir("checklists"))


@pytest.mark.parametrize("checklist_id", sorted(SHIPPED))
def test_export_then_import_gives_the_identical_checklist(checklist_id: str, tmp_path: Path) -> None:
    original = SHIPPED[checklist_id]
    runner = CliRunner()
    exported = runner.invoke(cli, ["checklist", "export", checklist_id, str(tmp_path / "t.xlsx")])
    assert exported.exit_code == 0, exported.output
    imported = runner.invoke(cli, ["checklist", "import", str(tmp_path / "t.xlsx"), "-o", str(tmp_path / "t.toml")])
    assert imported.exit_code == 0, imported.output
    assert f"{len(original.items)} items, valid" in imported.output
    again = load_checklist(tmp_path / "t.toml")
    assert same_checklist(original, again)
    # The header comment (Zicha's version, not the official annex) travels too.
    assert (tmp_path / "t.toml").read_text(encoding="utf-8").splitlines()[0] == Path(original.path).read_text(encoding="utf-8").splitlines()[0]


def test_the_shipped_template_imports_to_its_example(tmp_path: Path) -> None:
    _, loaded = import_workbook(data_dir("checklists") / "template.xlsx")
    assert same_checklist(loaded, load_checklist(data_dir("checklists") / "examples" / "template.toml"))
    assert {i.kind for i in loaded.items} >= {"compliance", "confirm", "text", "yes_no", "number", "date", "select_one", "select_multiple", "attachment"}


def _workbook(path: Path, survey: list[list[object]], choices: list[list[object]] | None = None, settings: list[object] | None = None) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "settings"
    ws.append(list(SETTINGS_COLUMNS))
    ws.append(settings or ["t-2026", "1", "2026", "2026-08-31", "测试", "测试表", "Test table", ""])
    sv = wb.create_sheet("survey")
    sv.append(list(SURVEY_COLUMNS))
    for row in survey:
        sv.append(row)
    ch = wb.create_sheet("choices")
    ch.append(list(CHOICES_COLUMNS))
    for row in choices or []:
        ch.append(row)
    wb.save(path)
    return path


def _row(**values: object) -> list[object]:
    return [values.get(c.replace("::", "_"), "") for c in SURVEY_COLUMNS]


def test_import_lists_every_problem_by_sheet_row_and_column_and_writes_nothing(tmp_path: Path) -> None:
    book = _workbook(
        tmp_path / "bad.xlsx",
        [
            _row(type="begin_group", id="main", text_zh_CN="主要", text_en="Main"),
            _row(type="compliance", id="ok-01", text_zh_CN="问", text_en="Q", basis="order39:2021:6"),  # row 3: fine
            _row(type="complience", id="bad-01", text_zh_CN="问", text_en="Q"),  # row 4
            _row(type="compliance", id="Bad 02", text_zh_CN="问", text_en="Q", basis="order39:2021:99"),  # row 5
            _row(type="number", id="num-01", text_zh_CN="数", text_en="N", min="ten", fields="food; astrology"),  # row 6
            _row(type="select_one colours", id="pick-01", text_zh_CN="选", text_en="Pick"),  # row 7
            _row(type="text", id="ok-01", text_zh_CN="", text_en="T", relevant="${later} = 'x'"),  # row 8
            _row(type="end_group"),
        ],
        choices=[["levels", "a", "甲", ""]],  # row 2: label::en empty
    )
    result = CliRunner().invoke(cli, ["checklist", "import", str(book), "-o", str(tmp_path / "out.toml")])
    assert result.exit_code == 1
    out = result.output
    expected = [
        "choices, row 2, column D: label::en is empty",
        "survey, row 4, column A: unknown type 'complience' (did you mean 'compliance'?)",
        "survey, row 5, column B: id 'Bad 02' must match",
        "survey, row 5, column G: citation 'order39:2021:99': the 2021 edition of 'order39' has no article '99'",
        "survey, row 6, column J: unknown field 'astrology'",
        "survey, row 6, column R: min must be a number, got 'ten'",
        "survey, row 7, column A: no list 'colours' in the choices sheet (lists: levels)",
        "survey, row 8, column B: id 'ok-01' is already used in row 3",
        "survey, row 8, column C: the question text is required in both languages",
        "survey, row 8, column K: ${later} is not an earlier item",
    ]
    for line in expected:
        assert line in out, (line, out)
    assert f"{len(expected)} problem(s); nothing was written" in out
    assert not (tmp_path / "out.toml").exists()


def test_a_control_character_or_a_column_given_twice_is_named_at_its_cell(tmp_path: Path) -> None:
    """A DEL pasted into a cell was reported as invalid TOML at a line of a file the user
    never sees; a column given twice was read from the last one without a word."""
    book = _workbook(
        tmp_path / "bad.xlsx",
        [
            _row(type="begin_group", id="main", text_zh_CN="主要", text_en="Main"),
            _row(type="compliance", id="ok-01", text_zh_CN="问\x7f题", text_en="Q\x9b", basis="order39:2021:6"),  # row 3
            _row(type="end_group"),
        ],
    )
    wb = load_workbook(book)
    wb["survey"].cell(1, len(SURVEY_COLUMNS) + 1).value = "text::en"
    wb.save(book)
    with pytest.raises(WorkbookError) as refused:
        import_workbook(book)
    text_zh, text_en = (get_column_letter(SURVEY_COLUMNS.index(c) + 1) for c in ("text::zh_CN", "text::en"))
    assert [str(p) for p in refused.value.problems] == [
        f"survey, row 1, column {get_column_letter(len(SURVEY_COLUMNS) + 1)}: column 'text::en' is already column {text_en}",
        f"survey, row 3, column {text_zh}: text::zh_CN holds a control character (U+007F); retype the cell",
        f"survey, row 3, column {text_en}: text::en holds a control character (U+009B); retype the cell",
    ]


def test_import_reads_every_row_whatever_dimensions_the_sheets_declare(tmp_path: Path) -> None:
    """Some tools write a sheet's <dimension> smaller than what it holds; openpyxl's
    read-only mode trusted it, and a table lost its later items without a word."""
    original = SHIPPED["samr-2025-national"]
    export_workbook(original, tmp_path / "t.xlsx")
    with zipfile.ZipFile(tmp_path / "t.xlsx") as zin, zipfile.ZipFile(tmp_path / "small.xlsx", "w") as zout:
        declared = 0
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                data, n = re.subn(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:B2"/>', data)
                declared += n
            zout.writestr(info, data)
    assert declared == 3  # settings, survey, choices
    _text, loaded = import_workbook(tmp_path / "small.xlsx")
    assert len(loaded.items) == len(original.items) and same_checklist(original, loaded)


@pytest.mark.parametrize("bound", ["nan", "inf", "-Infinity"])
def test_a_bound_that_is_not_a_finite_number_is_refused_at_its_cell(bound: str, tmp_path: Path) -> None:
    """float() reads "nan": a NaN minimum passed every check, and every number typed for the
    item then crashed its comparison (decimal.InvalidOperation) instead of being answered."""
    export_workbook(SHIPPED["samr-2025-national"], tmp_path / "t.xlsx")
    book = load_workbook(tmp_path / "t.xlsx")
    survey = book["survey"]
    header = [c.value for c in survey[1]]
    row = next(r for r in range(2, survey.max_row + 1) if survey.cell(r, header.index("id") + 1).value == "header-staff")
    survey.cell(row, header.index("min") + 1).value = bound
    book.save(tmp_path / "t.xlsx")
    with pytest.raises(WorkbookError) as refused:
        import_workbook(tmp_path / "t.xlsx")
    column = get_column_letter(header.index("min") + 1)
    assert f"survey, row {row}, column {column}: min must be a number, got {bound!r}" in str(refused.value)
    # the same bound written in TOML (where nan and inf are valid) is refused when it loads
    toml = Path(SHIPPED["samr-2025-national"].path).read_text(encoding="utf-8")
    assert "min = 1\n" in toml
    (tmp_path / "t.toml").write_text(toml.replace("min = 1\n", f"min = {bound.lower().replace('infinity', 'inf')}\n", 1), encoding="utf-8")
    with pytest.raises(ChecklistError):
        load_checklist(tmp_path / "t.toml")


def test_import_reports_missing_sheets_and_unknown_columns(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.title = "survey"
    wb.active.append(["type", "id", "text::zh", "text::en"])
    wb.save(tmp_path / "b.xlsx")
    result = CliRunner().invoke(cli, ["checklist", "import", str(tmp_path / "b.xlsx")])
    assert result.exit_code == 1
    assert "settings: the workbook has no sheet 'settings'" in result.output
    assert "survey, row 1, column C: unknown column 'text::zh' (did you mean 'text::zh_CN'?)" in result.output
    not_a_workbook = tmp_path / "x.xlsx"
    not_a_workbook.write_text("hello", encoding="utf-8")
    result = CliRunner().invoke(cli, ["checklist", "import", str(not_a_workbook)])
    assert result.exit_code == 1 and "cannot open it as an .xlsx workbook" in result.output


def test_a_text_starting_with_equals_is_exported_as_text_not_a_formula(tmp_path: Path) -> None:
    original = SHIPPED["gd-2025-provincial"]
    path = tmp_path / "gd.toml"
    path.write_text(Path(original.path).read_text(encoding="utf-8").replace('text.en = "Type of institution."', 'text.en = "=HYPERLINK(\\"http://x\\")"'), encoding="utf-8")
    export_workbook(load_checklist(path), tmp_path / "gd.xlsx")
    cells = [c for row in load_workbook(tmp_path / "gd.xlsx")["survey"].iter_rows() for c in row if c.value and str(c.value).startswith("=")]
    assert cells and all(c.data_type == "s" for c in cells)
    _, again = import_workbook(tmp_path / "gd.xlsx")
    assert again.item("header-type").text.en == '=HYPERLINK("http://x")'


def test_import_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    export_workbook(SHIPPED["gd-2025-provincial"], tmp_path / "gd.xlsx")
    target = tmp_path / "gd.toml"
    target.write_text("keep", encoding="utf-8")
    result = CliRunner().invoke(cli, ["checklist", "import", str(tmp_path / "gd.xlsx"), "-o", str(target)])
    assert result.exit_code != 0 and "exists; pass --force" in result.output
    assert target.read_text(encoding="utf-8") == "keep"


def test_export_refuses_to_overwrite_without_force_and_writes_only_a_workbook(tmp_path: Path) -> None:
    """`zicha checklist export x.toml x.toml` put a workbook where the checklist was."""
    source = tmp_path / "gd.toml"
    source.write_text(Path(SHIPPED["gd-2025-provincial"].path).read_text(encoding="utf-8"), encoding="utf-8")
    before = source.read_bytes()
    onto_itself = CliRunner().invoke(cli, ["checklist", "export", str(source), str(source)])
    assert onto_itself.exit_code == 1 and "the workbook's name must end in .xlsx" in onto_itself.output
    assert source.read_bytes() == before
    table = tmp_path / "gd.xlsx"
    assert CliRunner().invoke(cli, ["checklist", "export", str(source), str(table)]).exit_code == 0
    again = CliRunner().invoke(cli, ["checklist", "export", str(source), str(table)])
    assert again.exit_code == 1 and "exists; pass --force" in again.output
    assert CliRunner().invoke(cli, ["checklist", "export", str(source), str(table), "--force"]).exit_code == 0
    missing = CliRunner().invoke(cli, ["checklist", "export", str(source), str(tmp_path / "no" / "such" / "t.xlsx")])
    assert missing.exit_code == 1 and "cannot write" in missing.output and "Traceback" not in missing.output
