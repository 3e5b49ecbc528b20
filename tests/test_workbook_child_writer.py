"""The regulator's workbook written by a child process (issue 14): the rows are made in the
process that reads the database, a child writes them. The file is the same, cell by cell, as
the one the process writes itself; an error on either side leaves no file, neither at the
target nor half-written beside it, and no child behind."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from openpyxl import load_workbook

from bot.core.checklist import Checklist
from bot.core.scope import Scope
from bot.reports import excel
from bot.reports.xlsx_writer import BATCH_ROWS, Sheet, WriterFailed, write_sheets_in_child
from storage.answers import get_or_create_selfcheck, save_answer
from storage.institutions import get_institution
from tests.regulator_fixture import build_fixture

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2023, 10, 28, 9, 0, tzinfo=SHANGHAI)


def _cells(path: Path) -> dict[str, list[list[tuple[Any, str, str]]]]:
    """Every sheet's cells: value, type, number format."""
    wb = load_workbook(path)
    sheets = {
        ws.title: [[(c.value, c.data_type, c.number_format) for c in row] for row in ws.iter_rows()]
        for ws in wb.worksheets
    }
    assert wb.active is not None
    sheets["(opens on)"] = [[(wb.active.title, "", "")]]
    wb.close()
    return sheets


def test_the_child_writes_the_same_workbook_as_this_process(
    db: sqlite_utils.Database, checklist: Checklist, tmp_path: Path
) -> None:
    fx = build_fixture(db, checklist)
    institution = get_institution(db, fx.ids["zj_progress"])
    assert institution is not None
    sc = get_or_create_selfcheck(db, institution.id, checklist).id
    save_answer(db, sc, "header-person", by=1, value="text", text="=cmd|' /C calc'!A0")
    here = excel.write_export(db, checklist, Scope(national=True), NOW, tmp_path / "here.xlsx", in_child=False)
    child = excel.write_export(db, checklist, Scope(national=True), NOW, tmp_path / "child.xlsx", in_child=True)
    written_here, written_by_child = _cells(here), _cells(child)
    assert written_by_child == written_here
    assert written_here[excel.SHEET_INSTITUTIONS][0][0][0] == "机构名称 Name"
    assert all(len(rows) > 1 for title, rows in written_here.items() if title != "(opens on)")  # header and rows
    texts = [v for rows in written_by_child.values() for row in rows for v, kind, _ in row if kind == "s"]
    assert "'=cmd|' /C calc'!A0" in texts and not any(
        kind == "f" for rows in written_by_child.values() for row in rows for _, kind, _ in row
    )
    assert not list(tmp_path.glob("*.part"))


def test_a_large_scope_is_written_by_a_child_where_a_core_is_to_spare(
    db: sqlite_utils.Database, checklist: Checklist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_fixture(db, checklist)
    used: list[str] = []

    def counted(path: Path, sheets: list[Sheet], meanwhile: Any = None) -> float:
        used.append("child")
        return write_sheets_in_child(path, sheets, meanwhile)

    monkeypatch.setattr(excel, "write_sheets_in_child", counted)
    monkeypatch.setattr(excel, "usable_cpus", lambda: 4)
    monkeypatch.setattr(excel, "CHILD_WRITER_FROM", 10**6)
    excel.write_export(db, checklist, Scope(national=True), NOW, tmp_path / "small.xlsx")
    assert used == []
    monkeypatch.setattr(excel, "CHILD_WRITER_FROM", 1)
    path = excel.write_export(db, checklist, Scope(national=True), NOW, tmp_path / "large.xlsx")
    assert used == ["child"] and load_workbook(path).sheetnames[0] == excel.SHEET_INSTITUTIONS
    # on two cores too (the workbook at idle priority leaves the bot's core to it)
    monkeypatch.setattr(excel, "usable_cpus", lambda: 2)
    excel.write_export(db, checklist, Scope(national=True), NOW, tmp_path / "two-cores.xlsx")
    assert used == ["child", "child"]
    # on one core the two processes would only take turns: the workbook is written in one
    monkeypatch.setattr(excel, "usable_cpus", lambda: 1)
    excel.write_export(db, checklist, Scope(national=True), NOW, tmp_path / "one-core.xlsx")
    assert used == ["child", "child"]


def _children() -> set[int]:
    """This process's living children (Linux: read from /proc)."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def test_an_error_making_the_rows_stops_the_child_and_leaves_no_file(tmp_path: Path) -> None:
    before = _children()

    def rows() -> object:
        yield ["first"]
        raise RuntimeError("the database went away")

    target = tmp_path / "book.xlsx"
    with pytest.raises(RuntimeError, match="went away"):
        write_sheets_in_child(target, [Sheet("S", ["A"], [10], rows())])  # type: ignore[arg-type]
    assert not target.exists() and _children() == before


def test_a_broken_pipe_of_the_rows_own_is_raised_not_taken_for_the_childs(tmp_path: Path) -> None:
    """A row maker that fails with ``BrokenPipeError`` (say, logging to a closed pipe) is
    an error making the rows, raised as it is; the child, not fed to the end, stops."""
    before = _children()

    def rows() -> object:
        yield ["first"]
        raise BrokenPipeError("stdout of the row maker")

    target = tmp_path / "book.xlsx"
    outcome: list[BaseException] = []

    def write() -> None:
        try:
            write_sheets_in_child(target, [Sheet("S", ["A"], [10], rows())])  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - examined below
            outcome.append(exc)

    worker = threading.Thread(target=write, daemon=True)
    worker.start()
    worker.join(timeout=60)  # before the fix this waited forever for the child's reply
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], BrokenPipeError)
    assert not target.exists() and _children() == before


def test_a_writer_killed_midway_is_reported_and_leaves_no_file(tmp_path: Path) -> None:
    """The child dies (out of memory, killed) while rows are still coming: the rows stop,
    the export fails with the child's exit, and nothing is left at the target."""
    before = _children()

    def rows() -> object:
        for n in range(BATCH_ROWS * 4):
            if n == BATCH_ROWS * 2:  # two batches sent: the child is writing
                for pid in _children() - before:
                    os.kill(pid, signal.SIGKILL)
            yield [n, "行"]

    target = tmp_path / "book.xlsx"
    with pytest.raises(WriterFailed, match="-9"):
        write_sheets_in_child(target, [Sheet("S", ["A", "B"], [10, 10], rows())])  # type: ignore[arg-type]
    assert not target.exists() and _children() == before


def test_a_failing_child_is_reported_and_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "book.xlsx"
    with pytest.raises(WriterFailed, match="repeated column titles"):
        write_sheets_in_child(target, [Sheet("S", ["A", "A"], [10], iter([[1, 2]] * 2000))])
    assert not target.exists()


def test_a_failed_export_leaves_neither_the_workbook_nor_its_part(
    db: sqlite_utils.Database, checklist: Checklist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_fixture(db, checklist)
    monkeypatch.setattr(excel, "roster_in_scope", lambda db, scope: iter([None]))  # a row the sheet cannot make
    with pytest.raises(TypeError):
        excel.write_export(db, checklist, Scope(national=True), NOW, tmp_path / "out" / "book.xlsx", in_child=True)
    assert list((tmp_path / "out").iterdir()) == []


def test_work_meanwhile_is_done_once_every_row_is_sent_while_the_child_finishes(tmp_path: Path) -> None:
    """The digest draws its chart while the child compresses the workbook: the caller's
    work runs once, after the last row was taken, and the file is complete when the call
    returns. (Whether the child is still at work by then is a matter of timing.)"""
    before = _children()
    sent: list[int] = []
    seen: list[int] = []

    def rows() -> object:
        for n in range(BATCH_ROWS * 3):
            sent.append(n)
            yield [n, "行"]

    def meanwhile() -> None:
        seen.append(len(sent))

    target = tmp_path / "book.xlsx"
    write_sheets_in_child(target, [Sheet("S", ["A", "B"], [10, 10], rows())], meanwhile)  # type: ignore[arg-type]
    assert seen == [BATCH_ROWS * 3]
    assert len(list(load_workbook(target)["S"].iter_rows())) == BATCH_ROWS * 3 + 1
    assert _children() == before


@pytest.mark.parametrize("in_child", [False, True], ids=["here", "writer_child"])
def test_work_meanwhile_that_fails_leaves_no_workbook_and_no_child(
    db: sqlite_utils.Database, checklist: Checklist, tmp_path: Path, in_child: bool
) -> None:
    build_fixture(db, checklist)
    before = _children()

    def meanwhile() -> None:
        raise RuntimeError("no font for the chart")

    with pytest.raises(RuntimeError, match="no font"):
        excel.write_export(
            db, checklist, Scope(national=True), NOW, tmp_path / "out" / "book.xlsx", in_child=in_child, meanwhile=meanwhile
        )
    assert list((tmp_path / "out").iterdir()) == [] and _children() == before


def test_a_writer_whose_parent_is_gone_exits_quietly(tmp_path: Path) -> None:
    """The parent killed midway (its pipes closed): the child stops with no file and
    without a traceback in the log for its reply that nobody reads."""
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-m", "bot.reports.xlsx_writer", str(tmp_path / "book.xlsx")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(excel.__file__).resolve().parents[2],
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    child.stdout.close()  # nobody reads the reply
    child.stdin.close()  # and no sheet comes
    assert child.wait(timeout=60) == 1
    assert child.stderr.read() == b"" and not (tmp_path / "book.xlsx").exists()
    child.stderr.close()
