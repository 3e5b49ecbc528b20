"""Benchmark: exports, /status and digests beside the bot's answer steps (issue 14).

On the national fixture (``bench/national_fixture.py``), in one process with an event loop:

* **lag probe**: a task that sleeps 1 ms and records how late it wakes; its worst lateness
  is the longest stretch the event loop was blocked (no update handled meanwhile).
* ``/status`` as a regulator's press runs it: ``Conversation.handle`` on the loop (before)
  and ``Conversation.handle_off_loop`` (the report worker process, now): wall time and the
  longest loop block.
* the digest's figures and text alone (``build_digest`` and ``render_digest`` for one
  national regulator), on the loop and in the report worker process: wall time and the
  longest loop block;
* the daily digest (text, workbook and chart for one national regulator), in a worker
  thread (before) and in the report worker process (now): wall time and longest block.
* the national workbook (``/export``) in a thread (before) and in the worker process (now):
  wall and CPU seconds of the writer, and its peak resident memory above the worker's
  baseline; and Zicha answer steps (``bench/answer_step.py``'s runner, ``normal``) measured
  while the export runs against the same number of steps without it, alternating.

    python bench/national_fixture.py -o bench-national.db
    python bench/offload.py --db bench-national.db [--steps 400] [--json]

The machine's other load shows in the wall times; CPU seconds and the ratios of
alternating rounds are less affected.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for entry in (str(REPO), str(REPO / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2023, 10, 28, 8, 30, tzinfo=SHANGHAI)  # after the deadline
REGULATOR = 424242


class LagProbe:
    """Wakes every ``tick`` seconds; ``worst`` is the largest lateness seen (s)."""

    def __init__(self, tick: float = 0.001) -> None:
        self.tick = tick
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(self.tick)
            self.worst = max(self.worst, time.perf_counter() - t0 - self.tick)

    def __enter__(self) -> LagProbe:
        self.worst = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def _worker_stats() -> dict[str, float]:
    """In the worker: its CPU seconds so far (those of the workbook's writer child, once
    waited for, included) and peak RSS (MB; the writer child's own peak is measured by
    bench/export.py).

    The peak is VmHWM, not ``ru_maxrss``: Linux carries ``ru_maxrss`` across ``exec``, so a
    spawned worker starts with its parent's resident size at the fork (this process's,
    hundreds of MB after the export in a thread), while VmHWM belongs to the new image
    (``bot.reports.xlsx_writer.memory_mb``)."""
    from bot.reports.xlsx_writer import memory_mb

    usage, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime
    return {"cpu_s": cpu, "maxrss_mb": memory_mb("VmHWM:")}


def _worker_rss() -> float:
    """In the worker: its resident memory now (MB)."""
    from bot.reports.xlsx_writer import memory_mb

    return memory_mb("VmRSS:")


def _digest_text(db_path: str, checklist: Any, regulator: int, now: dt.datetime, locale: str) -> str:
    """The digest's figures and text alone (no workbook, no chart), as ``queue_digests``
    builds them for one regulator; in the worker, on its own connection."""
    from bot.i18n import build_i18n
    from bot.services.digests import build_digest, render_digest
    from storage.db import open_db
    from storage.regulators import get_regulator

    db = open_db(db_path, migrate=False)
    try:
        found = get_regulator(db, regulator)
        assert found is not None
        digest = build_digest(db, checklist, regulator, found.scope, now, "daily")
        return render_digest(db, checklist, build_i18n(locale), digest, locale)[0]
    finally:
        db.close()


def _import_writer() -> None:
    import bot.reports.excel  # noqa: F401
    import storage.db  # noqa: F401


async def timed(coro_fn: Any) -> dict[str, float]:
    with LagProbe() as probe:
        # The probe asleep before the work starts: work that never yields (on the loop)
        # then shows as one block as long as itself, not as nothing.
        await asyncio.sleep(0.003)
        t0 = time.perf_counter()
        await coro_fn()
        wall = time.perf_counter() - t0
        await asyncio.sleep(0.005)
    return {"wall_s": round(wall, 3), "longest_block_ms": round(probe.worst * 1000, 1)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from national_fixture import bench_checklist  # type: ignore[import-not-found]

    from bot.config import load_settings
    from bot.conversation.actions import ShowStatus
    from bot.conversation.engine import Actor, Conversation
    from bot.core.scope import Scope
    from bot.i18n import build_i18n
    from bot.reports import jobs
    from bot.reports.excel import write_export
    from bot.services.digests import queue_digests, queue_digests_in_worker
    from storage.conversations import SQLiteStates
    from storage.db import open_db
    from storage.regulators import add_regulator, remove_regulator

    db_path = str(args.db)
    checklist = bench_checklist()
    db = open_db(db_path)
    db.execute("SELECT COUNT(*) FROM answers").fetchone()  # a warm page cache, as a running bot has
    regulator = add_regulator(db, REGULATOR, Scope(national=True), "全国")
    settings = load_settings(_env_file=None, bot_token="42:bench", zicha_db=Path(db_path))
    i18n = build_i18n("zh_CN")
    conversation = Conversation(
        db=db, checklist=checklist, settings=settings, clock=lambda: NOW, states=SQLiteStates(db), catalog=i18n
    )
    actor = Actor(REGULATOR, None, "zh_CN", "bench:regulator", regulator=regulator)
    out = Path(tempfile.mkdtemp(prefix="zicha-offload-"))
    results: dict[str, Any] = {"institutions": db.execute("SELECT COUNT(*) FROM institutions").fetchone()[0]}
    await jobs.run(os.getpid)  # the worker started (as after the first report of a running bot)

    async def status_on_loop() -> None:
        conversation.handle(actor, ShowStatus())

    async def status_off_loop() -> None:
        await conversation.handle_off_loop(actor, ShowStatus())

    async def with_cpu(fn: Any, in_worker: bool) -> dict[str, float]:
        """``timed`` plus the CPU seconds of whoever did the work: this process (on the
        loop) or the worker (read before and after, untimed). Less affected than wall
        time by the machine's other load."""
        before = (await jobs.run(_worker_stats))["cpu_s"] if in_worker else time.process_time()
        result = await timed(fn)
        after = (await jobs.run(_worker_stats))["cpu_s"] if in_worker else time.process_time()
        return result | {"cpu_s": round(after - before, 3)}

    def best(runs: list[dict[str, float]]) -> dict[str, Any]:
        return min(runs, key=lambda r: r["wall_s"]) | {"min_cpu_s": min(r["cpu_s"] for r in runs), "runs": runs}

    for name, fn in (("status_on_loop", status_on_loop), ("status_off_loop", status_off_loop)):
        results[name] = best([await with_cpu(fn, name.endswith("off_loop")) for _ in range(args.repeat)])

    # The digest's figures and text (what a regulator reads; the workbook is measured
    # below): on the loop (as if nothing were offloaded) and in the report worker.
    async def digest_text_on_loop() -> None:
        _digest_text(db_path, checklist, REGULATOR, NOW, "zh_CN")

    async def digest_text_process() -> None:
        await jobs.run(_digest_text, db_path, checklist, REGULATOR, NOW, "zh_CN")

    if not args.skip_digest:
        await jobs.run(_import_writer)  # the worker's imports done, as in a running bot
        for name, fn in (("digest_text_on_loop", digest_text_on_loop), ("digest_text_process", digest_text_process)):
            results[name] = best([await with_cpu(fn, name.endswith("process")) for _ in range(args.repeat)])

    def digest_in_thread() -> None:
        conn = open_db(db_path, migrate=False)
        try:
            queue_digests(conn, checklist, i18n, now=NOW, directory=out / "t", default_locale="zh_CN", only=REGULATOR, force_kind="daily")
        finally:
            conn.close()

    async def digest_thread() -> None:
        await asyncio.to_thread(digest_in_thread)

    async def digest_process() -> None:
        await jobs.run(queue_digests_in_worker, db_path, checklist, NOW, str(out / "p"), "zh_CN", REGULATOR, "daily")

    def reset_digests() -> None:
        db.execute("DELETE FROM outbox WHERE chat_id = ?", [REGULATOR])
        db.execute("DELETE FROM digest_snapshots WHERE regulator_id = ?", [REGULATOR])
        db.conn.commit()

    if not args.skip_digest and not args.digest_text_only:
        for name, fn in (("digest_thread", digest_thread), ("digest_process", digest_process)):
            reset_digests()
            results[name] = await timed(fn)
        reset_digests()

    # the export, in a thread and in the worker process
    def export_in_thread() -> None:
        conn = open_db(db_path, migrate=False)
        try:
            write_export(conn, checklist, Scope(national=True), NOW, out / "thread.xlsx")
        finally:
            conn.close()

    async def export_thread() -> None:
        await asyncio.to_thread(export_in_thread)

    async def export_process() -> None:
        # a fresh worker, its baseline taken with the writer's modules imported; stopping the
        # old one waits for its exit, off the loop (the bot does that only when it stops)
        await asyncio.to_thread(jobs.shutdown)
        await jobs.run(_import_writer)
        base = await jobs.run(_worker_rss)
        before = await jobs.run(_worker_stats)
        await jobs.run(jobs.export_workbook, db_path, checklist, Scope(national=True), NOW, str(out / "process.xlsx"))
        after = await jobs.run(_worker_stats)
        results["export_process_cpu_s"] = round(after["cpu_s"] - before["cpu_s"], 2)
        results["export_process_baseline_mb"] = round(base, 1)
        results["export_process_peak_above_baseline_mb"] = round(after["maxrss_mb"] - base, 1)

    if not args.skip_thread_export:
        c0 = time.process_time()
        results["export_thread"] = await timed(export_thread)
        results["export_thread"]["process_cpu_s"] = round(time.process_time() - c0, 2)
    if not args.skip_export:
        results["export_process"] = await timed(export_process)
        results["export_xlsx_mb"] = round((out / "process.xlsx").stat().st_size / 1e6, 2)

    # answer steps with and without an export running in the worker process
    if args.steps and not args.skip_export:
        from answer_step import ZichaRunner  # type: ignore[import-not-found]  # bench/ is on sys.path

        runner = ZichaRunner(Path(tempfile.mkdtemp(prefix="zicha-steps-")), "normal")
        await runner.start()
        for _ in range(50):
            await runner.prepare()
            await runner.step()
        quiet: list[int] = []
        busy: list[int] = []
        for round_no in range(args.rounds):
            for with_export in ((False, True) if round_no % 2 == 0 else (True, False)):
                export: asyncio.Task[Any] | None = None
                if with_export:
                    export = asyncio.get_running_loop().create_task(
                        jobs.run(jobs.export_workbook, db_path, checklist, Scope(national=True), NOW, str(out / "busy.xlsx"))
                    )
                    await asyncio.sleep(1.0)  # the worker is writing
                target = busy if with_export else quiet
                for _ in range(args.steps // args.rounds):
                    await runner.prepare()
                    target.append(await runner.step())
                    if export is not None and export.done():
                        break
                if export is not None:
                    await export
        runner.checkpointer.stop()

        def summary(ns: list[int]) -> dict[str, float]:
            return {"steps": len(ns), "p50_us": round(statistics.median(ns) / 1000), "mean_us": round(statistics.fmean(ns) / 1000)}

        results["steps_without_export"] = summary(quiet)
        results["steps_during_export"] = summary(busy)
        results["steps_p50_ratio"] = round(statistics.median(busy) / statistics.median(quiet), 3)
        results["steps_mean_ratio"] = round(statistics.fmean(busy) / statistics.fmean(quiet), 3)

    remove_regulator(db, REGULATOR)
    db.close()
    jobs.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=Path("bench-national.db"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400, help="answer steps with and without an export (0: skip)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--skip-digest", action="store_true")
    parser.add_argument("--digest-text-only", action="store_true", help="the digest's figures and text, not its workbook")
    parser.add_argument("--skip-thread-export", action="store_true")
    parser.add_argument("--skip-export", action="store_true", help="no export in the worker (bench/export.py measures it)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.db.exists():
        sys.exit(f"{args.db} not found: run python bench/national_fixture.py -o {args.db} first")
    load = os.getloadavg()
    started = time.perf_counter()
    results = asyncio.run(main_async(args))
    results["load_before"] = [round(x, 2) for x in load]
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    results["bench_s"] = round(time.perf_counter() - started, 1)
    results["threads_at_end"] = threading.active_count()
    print(json.dumps(results, ensure_ascii=False, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
