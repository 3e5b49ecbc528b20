"""Benchmark: ONE ANSWER STEP through the web adapter against the Telegram adapter, in the
same run, on the same database file.

* ``telegram``: ``bench/answer_step.py``'s ``ZichaRunner`` — a press on "符合" fed to Zicha's
  real dispatcher through the null session (no network), the answer recorded, the message
  edited to the next question, the state kept, the callback answered.
* ``web``: a staff member of a second institution (on the same database) pressing "符合"
  in the web chat: an HTTP POST to ``/chat`` with the button's form (session cookie, CSRF
  token and screen token included) through aiohttp's client to the real web app on a local
  socket, the engine's step, the 303 redirect, and the GET that renders the next question's
  page (the whole page, read by the client). So the web figure includes two HTTP requests,
  the session and CSRF checks, the page's second trip to the engine (POST-redirect-GET) and
  the jinja2 rendering; the Telegram figure includes aiogram's update parsing and the null
  session's serialisation.

Both walk the compliance items (the header items answered up front) and start over when
the checklist is done; rounds alternate which adapter goes first. Run from the repository
root, with the ``bench`` extra installed (answer_step.py needs aiogram-dialog):

    python bench/web_step.py [--steps N] [--rounds R] [--json] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import html
import json
import os
import platform
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from bench.answer_step import NOW, ZichaRunner, run_batch, summarize  # noqa: E402
from bot.core.interview import Choice  # noqa: E402
from bot.core.roster import RosterRow  # noqa: E402
from bot.core.uscc import make_uscc  # noqa: E402
from bot.i18n import build_i18n  # noqa: E402
from bot.web.app import build_web_app  # noqa: E402
from bot.web.security import COOKIE  # noqa: E402
from storage import web as web_store  # noqa: E402
from storage.answers import get_or_create_selfcheck, save_answer  # noqa: E402
from storage.institutions import bind_member, create_invite, get_institution_by_uscc, upsert_institutions  # noqa: E402

_BUTTON = re.compile(r'name="act" value="([^"]*)" data-key="compliant"')
_ORIGIN = re.compile(r'name="origin" value="(\d+)"')
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


class WebRunner:
    """The web chat of a second institution on the Telegram runner's database."""

    name = "web"

    def __init__(self, telegram: ZichaRunner) -> None:
        self.db = telegram.db
        self.checklist = telegram.checklist
        row = RosterRow(
            line=3, name="食品检验二所", uscc=make_uscc("91110108MA0100003"), cma_cert="230000000003", province="广东",
            level="national", fields=("food",), contact_name="王五", contact_phone="010-82262723",
        )  # fmt: skip
        upsert_institutions(self.db, [row])
        institution = get_institution_by_uscc(self.db, row.uscc)
        assert institution is not None
        self.user_id = web_store.create_web_user(self.db, "测试", None, "zh_CN")
        bind_member(self.db, self.user_id, create_invite(self.db, institution.id), "测试")
        self.selfcheck = get_or_create_selfcheck(self.db, institution.id, self.checklist)
        items = telegram.interview.items
        self.header = [i for i in items if i.kind != "compliance"]
        self.compliance = [i for i in items if i.kind == "compliance"]
        for item in self.header:
            value = Choice.YES if item.kind == "confirm" else Choice.TEXT
            text = None if item.kind == "confirm" else ("李四" if "person" in item.id else "010-82262722")
            save_answer(self.db, self.selfcheck.id, item.id, by=self.user_id, value=value, text=text)
        self.token, _ = web_store.create_session(self.db, user_id=self.user_id, lifetime=dt.timedelta(days=1))
        app = build_web_app(telegram.settings.model_copy(update={"zicha_web_secure_cookies": False}), self.db, self.checklist,
                            build_i18n("zh_CN"), clock=lambda: NOW)  # fmt: skip
        self.client = TestClient(TestServer(app))
        self.page = ""
        self.form: dict[str, str] = {}
        self.cycles = 0
        self.answered_in_cycle = 0
        self.marks: list[int] = []
        self.cpu_ns = 0

    async def start(self) -> None:
        await self.client.start_server()
        self.client.session.cookie_jar.update_cookies({COOKIE: self.token})
        self.page = await (await self.client.get("/chat")).text()

    def reset(self) -> None:
        ids = [i.id for i in self.compliance]
        marks = ",".join("?" for _ in ids)
        with self.db.atomic():
            self.db.execute(f"DELETE FROM answers WHERE selfcheck_id = ? AND item_id IN ({marks})", [self.selfcheck.id, *ids])
            self.db.execute(f"DELETE FROM answer_history WHERE selfcheck_id = ? AND item_id IN ({marks})", [self.selfcheck.id, *ids])
            self.db.execute("UPDATE selfchecks SET status = 'in_progress', completed_at = NULL WHERE id = ?", [self.selfcheck.id])

    async def prepare(self) -> None:
        button = _BUTTON.search(self.page)
        if button is None:  # the summary: every item answered, start over
            done = self.db.execute("SELECT COUNT(*) FROM answers WHERE selfcheck_id = ?", [self.selfcheck.id]).fetchone()[0]
            assert done == len(self.header) + len(self.compliance), f"only {done} answers stored"
            if self.answered_in_cycle:
                assert self.answered_in_cycle == len(self.compliance), self.answered_in_cycle
                self.cycles += 1
            self.reset()
            self.page = await (await self.client.get("/chat")).text()
            self.answered_in_cycle = 0
            button = _BUTTON.search(self.page)
            assert button is not None, self.page[:2000]
        origin, csrf = _ORIGIN.search(self.page), _CSRF.search(self.page)
        assert origin and csrf
        self.form = {"csrf": csrf[1], "origin": origin[1], "act": html.unescape(button[1])}
        self.answered_in_cycle += 1

    async def step(self) -> int:
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        response = await self.client.post("/chat", data=self.form)  # 303, followed: the GET of the next page
        self.page = await response.text()
        t1 = time.perf_counter_ns()
        self.cpu_ns = time.thread_time_ns() - c0
        self.marks = [t0, t1]
        self.status = response.status
        return t1 - t0

    def check_last(self) -> None:
        assert self.status == 200 and "已保存" in self.page, self.page[:2000]

    def longest_blocking(self) -> int:
        return self.marks[1] - self.marks[0]

    def session_time(self) -> int:
        return 0

    class _Session:
        calls = 2  # two HTTP requests per step

    session = _Session()


async def main_async(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    telegram = ZichaRunner(tmp, "full")
    web = WebRunner(telegram)
    await web.start()
    runners: dict[str, Any] = {"telegram": telegram, "web": web}
    times: dict[str, list[int]] = {n: [] for n in runners}
    cpu: dict[str, list[int]] = {n: [] for n in runners}
    for runner in runners.values():  # warm-up, not recorded
        await run_batch(runner, args.warmup, [], [], [], [])
    per_round = max(1, args.steps // args.rounds)
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    for r in range(args.rounds):
        for name in (["telegram", "web"] if r % 2 == 0 else ["web", "telegram"]):
            gc.collect()
            telegram.checkpointer.checkpoint()
            await run_batch(runners[name], per_round, times[name], [], [], [], cpu[name])
    wall = time.perf_counter() - t_start
    telegram.checkpointer.stop()
    await web.client.close()
    bots = {}
    for name in runners:
        s: dict[str, Any] = summarize(times[name])
        c = summarize(cpu[name])
        s["cpu"] = {"mean_us": c["mean_us"], "p50_us": c["p50_us"], "p99_us": c["p99_us"]}
        bots[name] = s
    return {
        "pinned_to_cpu": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "aiohttp": aiohttp.__version__,
            "sqlite": sqlite3.sqlite_version,
        },
        "steps_per_adapter": per_round * args.rounds,
        "rounds": args.rounds,
        "wall_s": wall,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "cycles_completed": {"telegram": telegram.cycles, "web": web.cycles},
        "bots": bots,
        "web_vs_telegram": {
            "p50": bots["web"]["p50_us"] / bots["telegram"]["p50_us"],
            "mean": bots["web"]["mean_us"] / bots["telegram"]["mean_us"],
            "cpu_p50": bots["web"]["cpu"]["p50_us"] / bots["telegram"]["cpu"]["p50_us"],
        },
    }


def print_table(r: dict[str, Any]) -> None:
    print(f"steps per adapter: {r['steps_per_adapter']} in {r['rounds']} alternating rounds, wall {r['wall_s']:.1f} s, "
          f"load {r['loadavg_before'][0]:.2f} -> {r['loadavg_after'][0]:.2f}")  # fmt: skip
    print(f"{'adapter':<10} {'p50 µs':>9} {'p95 µs':>9} {'p99 µs':>9} {'mean µs':>9} {'steps/s':>8} {'cpu p50 µs':>11}")
    for name, s in r["bots"].items():
        print(f"{name:<10} {s['p50_us']:>9.0f} {s['p95_us']:>9.0f} {s['p99_us']:>9.0f} {s['mean_us']:>9.0f} "
              f"{s['steps_per_s']:>8.0f} {s['cpu']['p50_us']:>11.0f}")  # fmt: skip
    ratio = r["web_vs_telegram"]
    print(f"web / telegram: p50 {ratio['p50']:.2f}x, mean {ratio['mean']:.2f}x, cpu p50 {ratio['cpu_p50']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600, help="timed steps per adapter")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to CPU 0")
    args = parser.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # as answer_step.py: one core, client and server on the same loop
    with tempfile.TemporaryDirectory(prefix="zicha-web-bench-") as tmp:
        result = asyncio.run(main_async(args, Path(tmp)))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
