"""Heavy reports in a separate process, so the bot keeps answering while they run.

A national workbook is millions of cells, and /status or a digest at 54,000 institutions
is half a second of Python: in a worker *thread* they hold the GIL and every button press
waits (measured: answer steps 3× slower for the 40 s of an export). Here they run in one
worker process (``spawn``: a fresh interpreter, no copy of the bot's state or its open
connections) that opens the database itself, read-only in effect, and gives back only
what the bot needs: a file's path, a small report.

The functions take the checklist (and its scope) as parameters, never a global, so a
campaign can be passed the same way. A database ``":memory:"`` (tests, the console
demo) cannot be opened from another process: then the work runs in a thread on the
caller's connection, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from bot.core.checklist import Checklist
from bot.core.scope import Scope

T = TypeVar("T")

# A workbook being written (an export, a digest) is background work and a button press is
# not. Its thread runs under SCHED_IDLE where Linux allows it: it gets a core only when no
# other work wants it, and a press preempts it at once, so presses keep their pace during an
# export (issue 14). On an idle core, the usual case, it is written at full speed anyway.
# Its writer child (bot.reports.xlsx_writer) inherits the policy. Where SCHED_IDLE is not
# available (not Linux) the nice value below lowers it instead: the scheduler then gives the
# bot about ten times the workbook's share. Only the thread writing it is lowered (both are
# per thread on Linux), not the worker: /status, which a regulator waits for, keeps the
# bot's priority. (Under SCHED_IDLE a machine kept fully busy by other work would hold the
# workbook back: the bot's own users come first.)
WORKBOOK_NICE = 10


def in_background(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a thread of its own at a workbook's priority (``lower_priority``);
    waits for it and returns its result or raises its exception. ``fn`` opens its own
    database connection (a connection belongs to the thread that opened it)."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        lower_priority()
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - not swallowed: raised again in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=work, name="zicha-workbook")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def lower_priority() -> None:
    """This thread (and any process it starts) to a workbook's priority: SCHED_IDLE, and
    ``WORKBOOK_NICE`` (what counts where SCHED_IDLE is not available). Either may be
    refused (a sandbox): the workbook is then written at the bot's priority."""
    with contextlib.suppress(OSError, AttributeError):  # not allowed, or no os.nice
        os.nice(WORKBOOK_NICE)
    with contextlib.suppress(OSError, AttributeError):  # not allowed, or not Linux
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        return _pool


def _exit_with_parent(parent: int) -> None:
    """In the worker: exit once the bot's process is gone. A bot that was killed (SIGKILL,
    out of memory) never tells its worker to stop, and the worker would wait for work
    forever, holding its memory and the database open; the next bot starts its own."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="zicha-parent-watch", daemon=True).start()


def shutdown() -> None:
    """Stop the worker process (at the bot's shutdown; a later job starts a new one)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def warm_up() -> None:
    """Start the worker now and load what its jobs need, without waiting for it: a fresh
    interpreter spends seconds importing the writer, the reports and matplotlib, which
    the first /export or daily digest would otherwise wait for. Called by ``zicha run``;
    a worker that never gets a job costs only its memory."""
    _executor().submit(_load_report_modules)


def _load_report_modules() -> None:
    # the writer, the reports and matplotlib's figure code (the chart's font is looked up
    # with the first chart: its warning, if no CJK font, belongs to that digest's log)
    import matplotlib.figure  # noqa: F401 - imported for its load time

    from bot.reports import chart, excel, status  # noqa: F401


def in_memory(db_path: str | os.PathLike[str]) -> bool:
    return str(db_path) == ":memory:"


async def run(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the worker process (``fn`` a module-level function, arguments and
    result picklable). A worker that died (killed, out of memory) is replaced once."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_executor(), fn, *args)
    except BrokenProcessPool:
        shutdown()
        return await loop.run_in_executor(_executor(), fn, *args)


def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """The same from a thread or a command (no event loop): waits for the worker."""
    return _executor().submit(fn, *args).result()


# --- the jobs (run in the worker; each opens the database itself) ---------------------------


def export_workbook(db_path: str, checklist: Checklist, scope: Scope, now: dt.datetime, path: str) -> str:
    """Write the workbook of ``scope`` to ``path`` (at a workbook's priority); returns ``path``."""
    return in_background(_write_workbook, db_path, checklist, scope, now, path)


def _write_workbook(db_path: str, checklist: Checklist, scope: Scope, now: dt.datetime, path: str) -> str:
    from bot.reports.excel import write_export
    from storage.db import open_db, read_snapshot

    db = open_db(db_path, migrate=False)
    try:
        with read_snapshot(db):  # every sheet of one state of the database (WAL: no writer waits)
            write_export(db, checklist, scope, now, Path(path))
    finally:
        db.close()
    return path


def status_report(
    db_path: str, checklist: Checklist, scope: Scope, now: dt.datetime, overdue_page: tuple[int, int] | None = None
) -> tuple[Any, int]:
    """/status and /overdue of ``scope``: the report's figures (``status_figures``, no
    institutions), with the overdue institutions of ``overdue_page`` (page, page size)
    for /overdue, so little comes back through the pipe; and the number of institutions
    with details to correct. The report's checklist is the caller's, not sent back."""
    from bot.reports.items import confirm_item_ids
    from bot.reports.status import overdue_window, status_figures
    from storage.db import open_db, read_snapshot
    from storage.reports import pending_corrections

    db = open_db(db_path, migrate=False)
    try:
        with read_snapshot(db):  # the page of names agrees with the figures
            report = status_figures(db, checklist, scope, now)
            if overdue_page is not None:
                report = overdue_window(db, checklist, report, now, *overdue_page)
            corrections = pending_corrections(db, checklist.campaign_key, confirm_item_ids(checklist), scope)
    finally:
        db.close()
    report.checklist = None  # type: ignore[assignment]  # put back by the caller
    return report, len({c.institution_id for c in corrections})
