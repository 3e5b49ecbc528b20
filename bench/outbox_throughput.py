"""Outbox throughput: N recipients against the stand-in enforcing Telegram's flood limits.

Zicha's outbox (bot/delivery/outbox.py, default settings: 30 msg/s, 1 request in flight) and an existing
aiogram broadcast library (aiogram-broadcaster, given its best settings: a 1/30 s interval and its
opt-in retry_after handler) each send one message to every recipient through a fresh stand-in that
answers 429 with retry_after past 30 msg/s (token bucket, burst 10) or 1 msg/s per chat, plus a
spontaneous flood wait (429, retry_after 1) every 2,500th message, as Telegram sometimes does.

Measured from the stand-in's log, not from what either sender believes: achieved rate of successful
sends (first to last) as a fraction of 30/s, recipients who got nothing (losses), recipients who got
it more than once (duplicates), 429s received.

    python bench/outbox_throughput.py                  # 10,000 recipients, both senders (~12 min)
    python bench/outbox_throughput.py -n 600 --only zicha
    python bench/outbox_throughput.py --only library-defaults   # no interval, no retry_after handler

aiogram-broadcaster is not a dependency of Zicha: ``pip install aiogram-broadcaster`` to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.enums import ParseMode

from bot.delivery.outbox import OutboxLimits, OutboxSender
from storage import outbox
from storage.db import open_db
from tests.standin import ApiError, TelegramStandin

LIMIT = 30.0
FIRST_CHAT = 10_000_000
TEXT = "📢 <b>Message from your regulator</b> (广东省市场监管局)\n\n请于 10 月 27 日前完成自查并签署承诺书。"


class SpontaneousFlood:
    """Every ``every``-th send answers 429 retry_after 1, whatever the rate."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.seen = 0

    def __call__(self, method: str, params: dict[str, Any]) -> ApiError | None:
        if method != "sendMessage":
            return None
        self.seen += 1
        if self.every and self.seen % self.every == 0:
            return ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
        return None


async def standin(n: int, flood_every: int) -> TelegramStandin:
    tg = TelegramStandin()
    await tg.start()
    for k in range(n):
        tg.add_user(FIRST_CHAT + k)
    tg.enforce_rate_limits(global_rate=LIMIT, global_burst=10, chat_rate=1, chat_burst=1)
    tg.add_interceptor(SpontaneousFlood(flood_every))
    return tg


def bot_for(tg: TelegramStandin) -> Bot:
    return Bot(tg.token, session=AiohttpSession(api=tg.api_server), default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def measure(tg: TelegramStandin, n: int, wall: float) -> dict[str, Any]:
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
        "seconds": round(span, 1),
        "wall_seconds": round(wall, 1),
        "rate": round(rate, 2),
        "fraction_of_limit": round(rate / LIMIT, 3),
    }


async def run_zicha(n: int, flood_every: int) -> dict[str, Any]:
    tg = await standin(n, flood_every)
    bot = bot_for(tg)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "bench.db")
        with db.atomic():
            for k in range(n):
                outbox.enqueue(db, kind="broadcast", chat_id=FIRST_CHAT + k, text=TEXT)
        sender = OutboxSender(bot, db, limits=OutboxLimits())  # the defaults `zicha run` uses
        started = time.monotonic()
        await sender.drain()
        wall = time.monotonic() - started
        result = measure(tg, n, wall)
        result["outbox"] = {k: v for k, v in outbox.backlog(db).items() if v}
        db.close()
    await bot.session.close()
    await tg.stop()
    return result


async def run_library(n: int, flood_every: int, *, tuned: bool = True) -> dict[str, Any]:
    from aiogram_broadcaster import Broadcaster
    from aiogram_broadcaster.contents import TextContent
    from aiogram_broadcaster.intervals import SimpleInterval
    from aiogram_broadcaster.utils.retry_after_handler import setup_retry_after_handler

    tg = await standin(n, flood_every)
    bot = bot_for(tg)
    broadcaster = Broadcaster(bot)
    if tuned:  # its best settings: the opt-in flood-wait handler and a 1/30 s interval
        setup_retry_after_handler(broadcaster.event)
    mailer = await broadcaster.create_mailer(
        chats=[FIRST_CHAT + k for k in range(n)],
        content=TextContent(text=TEXT),
        interval=SimpleInterval(interval=1 / LIMIT) if tuned else None,
    )
    started = time.monotonic()
    await mailer.start()
    wall = time.monotonic() - started
    result = measure(tg, n, wall)
    await bot.session.close()
    await tg.stop()
    return result


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        ("Achieved rate (msg/s)", "rate"),
        ("Fraction of the 30/s limit", "fraction_of_limit"),
        ("Delivered exactly once", "delivered_once"),
        ("Losses (got nothing)", "losses"),
        ("Duplicates (got it twice or more)", "duplicates"),
        ("429 answers received", "http_429"),
        ("Requests made", "requests"),
        ("First to last delivery (s)", "seconds"),
    ]
    names = list(results)
    out = ["| | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for label, key in rows:
        out.append(f"| {label} | " + " | ".join(str(results[name][key]) for name in names) + " |")
    return "\n".join(out)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--recipients", type=int, default=10_000)
    parser.add_argument("--flood-every", type=int, default=2_500, help="a spontaneous 429 every Nth send (0: none)")
    parser.add_argument("--only", choices=["zicha", "library", "library-defaults"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    results: dict[str, dict[str, Any]] = {}
    if args.only in (None, "zicha"):
        results["Zicha outbox"] = await run_zicha(args.recipients, args.flood_every)
        print("zicha:", json.dumps(results["Zicha outbox"]), flush=True)
    if args.only in (None, "library"):
        results["aiogram-broadcaster 0.6.8"] = await run_library(args.recipients, args.flood_every)
        print("library:", json.dumps(results["aiogram-broadcaster 0.6.8"]), flush=True)
    if args.only in (None, "library-defaults"):
        name = "aiogram-broadcaster 0.6.8, defaults"
        results[name] = await run_library(args.recipients, args.flood_every, tuned=False)
        print("library defaults:", json.dumps(results[name]), flush=True)
    print(f"\n{args.recipients} recipients, stand-in enforcing {LIMIT:.0f} msg/s (burst 10) and 1 msg/s per chat, "
          f"a spontaneous 429 every {args.flood_every} sends; Python {platform.python_version()}\n")  # fmt: skip
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
