"""Exports, /status and digests off the bot's interpreter (issue 14): the national workbook
is built in the report worker process, which opens the database itself, and is the same
workbook; /status and /overdue computed there read exactly as computed in the bot; the
answers of a workbook are read in index order, with no sort of every answer."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from openpyxl import load_workbook

from bot.config import load_settings
from bot.conversation.actions import ShowOverdue, ShowStatus
from bot.conversation.engine import Actor, Conversation
from bot.conversation.screens import Screen
from bot.core.checklist import Checklist
from bot.core.scope import Scope
from bot.i18n import build_i18n
from bot.reports import jobs
from bot.reports.excel import write_export
from storage.conversations import SQLiteStates
from storage.institutions import Institution, upsert_institutions
from storage.regulators import add_regulator
from storage.reports import answers_in_scope_plan
from tests.conftest import roster_row
from tests.regulator_fixture import build_fixture

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
AFTER = dt.datetime(2023, 10, 28, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def stop_worker() -> Iterator[None]:
    yield
    jobs.shutdown()


def _cells(path: Path) -> dict[str, list[tuple[object, ...]]]:
    wb = load_workbook(path)
    try:
        for sheet in wb.worksheets:
            for row in sheet.iter_rows():
                assert all(cell.data_type != "f" for cell in row), sheet.title
        return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in wb.worksheets}
    finally:
        wb.close()


def test_the_workbook_is_built_in_another_process_and_is_the_same_workbook(
    db: sqlite_utils.Database, checklist: Checklist, tmp_path: Path
) -> None:
    build_fixture(db, checklist)
    here = write_export(db, checklist, Scope(national=True), AFTER, tmp_path / "here.xlsx")

    async def in_worker() -> tuple[int, str]:
        pid = await jobs.run(os.getpid)
        made = await jobs.run(
            jobs.export_workbook, str(tmp_path / "zicha.db"), checklist, Scope(national=True), AFTER,
            str(tmp_path / "there.xlsx"),
        )  # fmt: skip
        return pid, made

    pid, there = asyncio.run(in_worker())
    assert pid != os.getpid()
    assert there == str(tmp_path / "there.xlsx")
    mine, theirs = _cells(here), _cells(Path(there))
    assert theirs == mine
    assert len(theirs["答案 Answers"]) > 3  # a header and the fixture's self-checks


def _niceness() -> int:
    return os.nice(0)


def _niceness_of_a_workbook_and_after() -> tuple[int, int, int]:
    return os.nice(0), jobs.in_background(_niceness), os.nice(0)


def _policy() -> int:
    return os.sched_getscheduler(0)


def _policy_of_a_workbook_its_child_and_after() -> tuple[int, int, int, int]:
    def in_the_thread() -> tuple[int, int]:
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"], capture_output=True, text=True, check=True
        )
        return _policy(), int(child.stdout)

    before = _policy()
    writing, child = jobs.in_background(in_the_thread)
    return before, writing, child, _policy()


def test_workbooks_are_written_at_a_lower_priority_than_the_bot_and_status() -> None:
    """A workbook is background work: when it and the bot want the same core the scheduler
    favours the bot (issue 14: presses keep their pace during an export). Only the thread
    writing it is lowered: the worker itself, which answers /status, is not."""

    async def in_worker() -> tuple[int, int, int]:
        return await jobs.run(_niceness_of_a_workbook_and_after)

    try:
        before, writing, after = asyncio.run(in_worker())
    finally:
        jobs.shutdown()
    assert before == after == os.nice(0)
    assert writing == min(before + jobs.WORKBOOK_NICE, 19)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_workbooks_run_only_on_cores_nothing_else_wants() -> None:
    """The workbook's thread, and the writer child it starts, run under SCHED_IDLE (a press
    preempts them at once: issue 14, answer steps during an export keep their pace); the
    worker's own thread, which answers /status, stays as it was."""

    async def in_worker() -> tuple[int, int, int, int]:
        return await jobs.run(_policy_of_a_workbook_its_child_and_after)

    try:
        before, writing, child, after = asyncio.run(in_worker())
    finally:
        jobs.shutdown()
    assert before == after == os.sched_getscheduler(0) != os.SCHED_IDLE
    assert writing == child == os.SCHED_IDLE
    with pytest.raises(ZeroDivisionError):  # an exception reaches the caller
        jobs.in_background(divmod, 1, 0)


def test_status_and_overdue_computed_in_the_worker_read_as_in_the_bot(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("ZICHA_DB", str(tmp_path / "zicha.db"))
    upsert_institutions(db, [roster_row(f"检测中心{n}", 10 + n, ("food",), province="广东") for n in range(20)])
    after = dt.datetime(2023, 11, 1, 9, 0, tzinfo=SHANGHAI)
    conversation = Conversation(
        db=db, checklist=checklist, settings=load_settings(_env_file=None), clock=lambda: after,
        states=SQLiteStates(db), catalog=build_i18n("zh_CN"),
    )  # fmt: skip
    national = Actor(77, None, "zh_CN", "test:77", regulator=add_regulator(db, 77, Scope.parse("national")))
    staff = Actor(79, motor_lab, "zh_CN", "test:79")

    async def both() -> list[tuple[Screen | None, Screen | None]]:
        pairs = []
        for actor, action in ((national, ShowStatus()), (national, ShowOverdue()), (national, ShowOverdue(page=1)),
                              (staff, ShowStatus())):  # fmt: skip
            off = await conversation.handle_off_loop(actor, action)
            pairs.append((off.screen, conversation.handle(actor, action).screen))
        return pairs

    pairs = asyncio.run(both())
    status, overdue = pairs[0][0], pairs[1][0]
    assert status is not None and "机构数：21" in status.text and "逾期：21" in status.text
    assert overdue is not None and "第 1/2 页" in overdue.text
    for off, on in pairs:
        assert off == on
    assert pairs[3][0] is None  # staff are not regulators, in the worker or not


@pytest.mark.parametrize("scope", ["national", "广东", "province:广东; fields:food"])
def test_the_answers_of_a_workbook_are_read_in_index_order(db: sqlite_utils.Database, checklist: Checklist, scope: str) -> None:
    build_fixture(db, checklist)
    db.execute("ANALYZE")  # the statistics a grown database has
    plan = answers_in_scope_plan(db, checklist.id, Scope.parse(scope))
    assert not any("TEMP B-TREE" in step for step in plan), plan



REPORT_MODULES = ("bot.reports.excel", "bot.reports.chart", "matplotlib.figure")


def test_warming_up_starts_the_worker_with_the_report_modules_loaded_before_the_first_job() -> None:
    from tests import worker_probe

    assert jobs.run_sync(worker_probe.loaded, REPORT_MODULES)[1] is False, "a cold worker has none of them"
    jobs.shutdown()
    jobs.warm_up()  # returns at once: the worker loads them meanwhile
    worker_pid, loaded = jobs.run_sync(worker_probe.loaded, REPORT_MODULES)  # one worker: runs after the warm-up
    assert worker_pid != os.getpid() and loaded


KILLED_PARENT = """
import sys, time
from bot.reports import jobs
from tests import worker_probe
jobs.warm_up()
print(jobs.run_sync(worker_probe.loaded, ())[0], flush=True)
time.sleep(120)
"""


def test_a_worker_whose_bot_was_killed_exits_instead_of_lingering_with_the_database_open() -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    bot = subprocess.Popen([sys.executable, "-c", KILLED_PARENT], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert bot.stdout is not None
        worker = int(bot.stdout.readline())
        os.kill(worker, 0)  # alive while its bot is
        bot.send_signal(signal.SIGKILL)  # no shutdown: nobody tells the worker to stop
        bot.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            raise AssertionError("the worker outlived its killed bot")
    finally:
        bot.kill()
        bot.wait()
        bot.stdout.close()
