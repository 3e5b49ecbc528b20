"""Formula injection through full-width and invisible prefixes (issue 12, defect 13):
``＝ ＋ － ＠``, and ``= + - @`` behind a zero-width space, a BOM or another invisible
(Cf) character, are treated like ``= + - @`` by the roster import, the workbook and the
invites CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from openpyxl import load_workbook

from bot.cli import cli
from bot.core.checklist import Checklist
from bot.core.interview import Choice, RectStatus
from bot.core.roster import ROSTER_COLUMNS
from bot.core.spreadsheet import starts_like_formula
from bot.core.uscc import make_uscc
from bot.reports.excel import cell_text
from storage.answers import get_or_create_selfcheck, save_answer
from storage.db import open_db
from storage.institutions import ensure_invites, upsert_institutions
from tests.conftest import roster_row
from tests.regulator_fixture import STAFF, build_fixture

DISGUISED = [
    "＝HYPERLINK(\"http://evil.example\",\"x\")",  # full-width equals sign
    "＋1+cmd|' /C calc'!A0",  # full-width plus
    "－2+3",  # full-width hyphen-minus
    "＠SUM(A1:A9)",  # full-width commercial at
    "\u200b=1+1",  # zero-width space before =
    "\ufeff+1",  # byte-order mark before +
    "\u2060\u200d@SUM(A1)",  # word joiner and zero-width joiner before @
    "\u200e-1",  # left-to-right mark before -
    "﹦1",  # small equals sign
    "−1",  # minus sign
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db_path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "ZICHA_TIMEZONE", "ZICHA_LOCALE", "ZICHA_BOT_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZICHA_DB", str(db_path))
    return db_path


@pytest.mark.parametrize("text", DISGUISED)
def test_disguised_formulas_are_recognised_and_neutralised(text: str) -> None:
    assert starts_like_formula(text)
    assert cell_text(text) == "'" + text


def test_ordinary_text_is_left_alone() -> None:
    for text in ("北京某检测有限公司", "a-b", "—", "（有限合伙）", "\u200b北京", "李-四", "", "13812345678"):
        assert not starts_like_formula(text) and cell_text(text) == text


def test_cell_text_answers_like_starts_like_formula_whatever_it_remembers() -> None:
    """``cell_text`` remembers, per first character, when nothing after it can make a
    formula (issue 14: millions of cells). The same first character then meets every kind
    of continuation, and the answer is always ``starts_like_formula``'s; characters Excel
    refuses are still taken out first."""
    firsts = ["北", "a", "1", "—", "（", "\u200b", "\ufeff", " ", "\u3000", "\u00a0", "\t", "\r", "\n", "＝", "﹦", "−", "=", "+", "-", "@"]
    rests = ["", "=1", "+1", "北京", "\u200b=1", " @x", "－2"]
    for _ in range(2):  # the second time from what it remembered
        for first in firsts:
            for rest in rests:
                text = first + rest
                expected = "'" + text if starts_like_formula(text) else text
                assert cell_text(text) == expected, repr(text)
    assert cell_text("\x00=1") == "'=1" and cell_text("a\x07b") == "ab" and cell_text(7) == 7


def test_roster_import_refuses_disguised_formulas_in_names(env: Path, tmp_path: Path) -> None:
    rows = [
        [name, make_uscc(f"91110108MA01{n:05d}"), f"2300000{n:05d}", "北京", "national", "food", contact, "13812345678"]
        for n, (name, contact) in enumerate([(d, "张三") for d in DISGUISED] + [("正常检测有限公司", "\u200b=王五")], start=1)
    ]
    path = tmp_path / "roster.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ROSTER_COLUMNS)
        writer.writerows(rows)
    result = CliRunner().invoke(cli, ["roster", "import", str(path)])
    assert result.exit_code == 1
    assert f"nothing imported, {len(DISGUISED) + 1} problem(s)" in result.output
    assert result.output.count("会被 Excel 当作公式") == len(DISGUISED) + 1
    assert open_db(env)["institutions"].count == 0


def test_an_invisible_character_around_a_name_is_dropped_on_import(env: Path, tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    row = ["\ufeff北京某检测有限公司\u200b", make_uscc("91110108MA0100001"), "230000000001", "北京", "national", "food", "", ""]
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([ROSTER_COLUMNS, row])
    result = CliRunner().invoke(cli, ["roster", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in open_db(env)["institutions"].rows] == ["北京某检测有限公司"]


def test_invites_csv_neutralises_disguised_names(env: Path) -> None:
    # Names stored before the import refused them (or by another tool) still leave safely.
    db = open_db(env)
    upsert_institutions(db, [roster_row(name, n, ("food",)) for n, name in enumerate(DISGUISED, start=1)])
    ensure_invites(db)
    db.close()
    result = CliRunner().invoke(cli, ["invites", "--format", "csv", "--bot-username", "zicha_bot"])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["name"] for r in table] == ["'" + name for name in DISGUISED]
    for row in table:
        assert row["link"] == f"https://t.me/zicha_bot?start={row['code']}"


def test_the_workbook_neutralises_disguised_formulas_typed_by_staff(
    env: Path, db: sqlite_utils.Database, checklist: Checklist, tmp_path: Path
) -> None:
    fx = build_fixture(db, checklist)
    upsert_institutions(db, [roster_row(DISGUISED[0], 90, ("food",), province="广东")])  # a stored name
    sc = get_or_create_selfcheck(db, fx.ids["gd_progress"], checklist).id
    item = fx.noncompliant["gd_progress"][0]
    save_answer(db, sc, item, by=STAFF + 3, value=Choice.NONCOMPLIANT, problem=DISGUISED[4],
                measure=DISGUISED[3], rect_status=RectStatus.DONE)  # fmt: skip
    out = tmp_path / "export.xlsx"
    (tmp_path / "a-file").write_text("", encoding="utf-8")  # a folder that cannot be made: a clear error, no traceback
    nowhere = CliRunner().invoke(cli, ["export", "--scope", "广东", "-o", str(tmp_path / "a-file" / "x.xlsx")])
    assert nowhere.exit_code == 1 and "cannot write" in nowhere.output and nowhere.exc_info[0] is SystemExit
    result = CliRunner().invoke(cli, ["export", "--scope", "广东", "-o", str(out)])
    assert result.exit_code == 0, result.output
    wb = load_workbook(out)
    seen: set[str] = set()
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not starts_like_formula(cell.value), (sheet.title, cell.coordinate, cell.value)
                    seen.add(cell.value)
    wb.close()
    assert {"'" + DISGUISED[4], "'" + DISGUISED[3], "'" + DISGUISED[0]} <= seen
