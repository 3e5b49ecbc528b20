"""Outbox throughput: N recipients against a stand-in enforcing a strict sliding-window limit.

The stand-in (tests/standin.py, ``enforce_sliding_window``) answers 429 with ``retry_after`` to any
send that would put more than 30 sends into any 1-second window, or more than 1 into any 1-second
window of one chat: the strictest reading of Telegram's limits, with no credit for a quiet moment
before as a token bucket gives. Each request also takes a seeded random 0-``--jitter-ms`` ms to
"arrive" (is counted that much after it was sent), as on a real network.

Three runs, each with a fresh stand-in and database, the same recipients and the same message:

* **Zicha outbox**: bot/outbox.py with the defaults ``zicha run`` uses (30 msg/s, 1 s per chat,
  1 request in flight);
* **baseline**: the same sender with main's pacing before issue 12 (slots exactly 1/30 s apart, a
  slot missed by jitter caught up, per-chat spacing from the request's start), verbatim below;
* **crash**: the Zicha outbox in a child process, SIGKILLed ``--crashes`` times while sending and
  started again (it resumes from the database, as ``zicha run`` does).

Every figure is counted from the stand-in's log, not from what a sender believes: achieved rate of
successful sends (first to last), recipients who got nothing (losses), recipients who got it more
than once (duplicates), 429s, and the most sends the stand-in saw in any 1-second window.

    python bench/outbox_throughput.py                 # 1,000 recipients, all three runs (~2.5 min)
    python bench/outbox_throughput.py -n 2000         # as in BENCHMARKS.md (~5 min)
    python bench/outbox_throughput.py -n 300 --only zicha
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiogram import Bot  # noqa: E402
from aiogram.client.default import DefaultBotProperties  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402
from aiogram.enums import ParseMode  # noqa: E402

from bot.outbox import OutboxLimits, OutboxSender  # noqa: E402
from storage import outbox  # noqa: E402
from storage.db import open_db  # noqa: E402
from tests.standin import SlidingWindowEnforcer, TelegramStandin  # noqa: E402

LIMIT = 30
FIRST_CHAT = 10_000_000
TEXT = "📢 <b>Message from your regulator</b> (广东省市场监管局)\n\n请于 10 月 27 日前完成自查并签署承诺书。"


class MainPacing:
    """``RateLimiter`` of bot/outbox.py on main before issue 12 (commit 7b23272), verbatim but for
    the two lines that adapt it to this branch's interface (``interactive``, ``release``)."""

    def __init__(self, rate: float, chat_interval: float) -> None:
        self.interval = 1.0 / rate
        self.chat_interval = chat_interval
        self._next = 0.0
        self._paused_until = 0.0
        self._chat_next: dict[int, float] = {}
        self._lock = asyncio.Lock()

    @staticmethod
    def _time() -> float:
        return asyncio.get_running_loop().time()

    def chat_ready(self, chat_id: int) -> bool:
        return self._chat_next.get(chat_id, 0.0) <= self._time()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._time() + seconds)

    @property
    def paused(self) -> bool:
        return self._paused_until > self._time()

    async def acquire(self, chat_id: int, *, interactive: bool = False) -> None:
        async with self._lock:
            while True:
                now = self._time()
                ready = max(self._next, self._paused_until, self._chat_next.get(chat_id, 0.0))
                if ready <= now:
                    break
                await asyncio.sleep(ready - now)
            slot = self._next if self._next >= now - self.interval / 2 else now
            self._next = slot + self.interval
            self._chat_next[chat_id] = now + self.chat_interval

    def release(self, ticket: None, *, sent: bool = True) -> None:
        pass


async def standin(n: int, jitter_ms: float, seed: int) -> tuple[TelegramStandin, SlidingWindowEnforcer]:
    tg = TelegramStandin()
    await tg.start()
    for k in range(n):
        tg.add_user(FIRST_CHAT + k)
    enforcer = tg.enforce_sliding_window(global_limit=LIMIT, window=1.0, chat_limit=1, chat_window=1.0)
    rng = random.Random(seed)
    tg.request_delay = lambda method, params: rng.uniform(0, jitter_ms / 1000)
    return tg, enforcer


def bot_for(base_url: str, token: str) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(base_url))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def enqueue_all(db_path: Path, n: int) -> None:
    db = open_db(db_path)
    with db.atomic():
        for k in range(n):
            outbox.enqueue(db, kind="broadcast", chat_id=FIRST_CHAT + k, text=TEXT, quiet=False)
    db.close()


def busiest_second(starts: list[float]) -> int:
    """The most sends in any 1-second window (start, start + 1)."""
    best, lo = 0, 0
    for hi, t in enumerate(starts):
        while starts[lo] <= t - 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def measure(tg: TelegramStandin, enforcer: SlidingWindowEnforcer, n: int, wall: float) -> dict[str, Any]:
    sends = tg.calls("sendMessage")
    ok = [c for c in sends if c.ok]
    got = Counter(int(c.params["chat_id"]) for c in ok)
    span = ok[-1].started - ok[0].started if len(ok) > 1 else 0.0
    rate = (len(ok) - 1) / span if span else 0.0
    return {
        "recipients": n,
        "delivered_once": sum(1 for k in range(n) if got[FIRST_CHAT + k] == 1),
        "losses": sum(1 for k in range(n) if got[FIRST_CHAT + k] == 0),
        "duplicates": sum(1 for v in got.values() if v > 1),
        "requests": len(sends),
        "http_429": sum(1 for c in sends if c.status == 429),
        "busiest_second": busiest_second(sorted(c.started for c in ok)),
        "seconds": round(span, 1),
        "wall_seconds": round(wall, 1),
        "rate": round(rate, 2),
        "fraction_of_limit": round(rate / LIMIT, 3),
        "refused_by_limit": enforcer.rejected,
    }


async def run_in_process(n: int, jitter_ms: float, seed: int, *, baseline: bool) -> dict[str, Any]:
    tg, enforcer = await standin(n, jitter_ms, seed)
    bot = bot_for(tg.base_url, tg.token)
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        enqueue_all(db_path, n)
        db = open_db(db_path)
        limits = OutboxLimits()  # the defaults `zicha run` uses
        limiter = MainPacing(limits.rate, limits.chat_interval) if baseline else None
        sender = OutboxSender(bot, db, limits=limits, limiter=limiter)  # type: ignore[arg-type]
        started = time.monotonic()
        await sender.drain()
        wall = time.monotonic() - started
        result = measure(tg, enforcer, n, wall)
        result["outbox"] = {k: v for k, v in outbox.backlog(db).items() if v}
        db.close()
    await bot.session.close()
    await tg.stop()
    return result


async def run_with_crashes(n: int, jitter_ms: float, seed: int, crashes: int) -> dict[str, Any]:
    tg, enforcer = await standin(n, jitter_ms, seed)
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        enqueue_all(db_path, n)
        command = [sys.executable, __file__, "--child", str(db_path), tg.base_url, tg.token]
        started = time.monotonic()
        for crash in range(crashes + 1):
            child = await asyncio.create_subprocess_exec(*command)
            if crash == crashes:
                await child.wait()
                break
            target = n * (crash + 1) // (crashes + 1)
            await tg.wait_until(
                lambda: sum(1 for c in tg.calls("sendMessage") if c.ok) >= target, timeout=n, what=f"{target} sends"
            )
            child.send_signal(signal.SIGKILL)
            await child.wait()
        wall = time.monotonic() - started
        result = measure(tg, enforcer, n, wall)
        result["crashes"] = crashes
        db = open_db(db_path)
        result["outbox"] = {k: v for k, v in outbox.backlog(db).items() if v}
        db.close()
    await tg.stop()
    return result


async def child(db_path: Path, base_url: str, token: str) -> None:
    """A sender as in `zicha run`: rows left 'sending' by the killed one are sent again."""
    db = open_db(db_path)
    recovered = outbox.recover(db)
    if recovered:
        print(f"child: resumed; {recovered} row(s) were in flight", file=sys.stderr, flush=True)
    bot = bot_for(base_url, token)
    await OutboxSender(bot, db, limits=OutboxLimits()).drain()
    await bot.session.close()
    db.close()


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        ("Achieved rate (msg/s)", "rate"),
        ("Fraction of the 30/s limit", "fraction_of_limit"),
        ("Delivered exactly once", "delivered_once"),
        ("Losses (got nothing)", "losses"),
        ("Duplicates (got it twice or more)", "duplicates"),
        ("429 answers received", "http_429"),
        ("Most sends in any 1-s window", "busiest_second"),
        ("Requests made", "requests"),
        ("First to last delivery (s)", "seconds"),
    ]
    names = list(results)
    out = ["| | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for label, key in rows:
        out.append(f"| {label} | " + " | ".join(str(results[name].get(key, "")) for name in names) + " |")
    return "\n".join(out)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--recipients", type=int, default=1_000)
    parser.add_argument("--jitter-ms", type=float, default=10.0, help="each request arrives 0..this many ms late")
    parser.add_argument("--crashes", type=int, default=2, help="SIGKILLs of the sender in the crash run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=["zicha", "baseline", "crash"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", nargs=3, metavar=("DB", "URL", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.child:
        await child(Path(args.child[0]), args.child[1], args.child[2])
        return
    n, jitter, seed = args.recipients, args.jitter_ms, args.seed
    results: dict[str, dict[str, Any]] = {}
    if args.only in (None, "zicha"):
        results["Zicha outbox"] = await run_in_process(n, jitter, seed, baseline=False)
        print("zicha:", json.dumps(results["Zicha outbox"]), flush=True)
    if args.only in (None, "baseline"):
        results["baseline: main's pacing"] = await run_in_process(n, jitter, seed, baseline=True)
        print("baseline:", json.dumps(results["baseline: main's pacing"]), flush=True)
    if args.only in (None, "crash"):
        name = f"Zicha outbox, {args.crashes} SIGKILLs"
        results[name] = await run_with_crashes(n, jitter, seed, args.crashes)
        print("crash:", json.dumps(results[name]), flush=True)
    print(f"\n{n} recipients, stand-in refusing more than {LIMIT} sends in any 1-s window or 1 per chat, "
          f"requests arriving 0-{jitter:g} ms late (seed {seed}); Python {platform.python_version()}\n")  # fmt: skip
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
