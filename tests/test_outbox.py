"""The outbox: persistent rows, sent within Telegram's limits by the stand-in's reckoning,
with 429, 403, 400 and 5xx injected."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlite_utils
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.enums import ParseMode

from bot.core.schedule import QuietHours
from bot.delivery.outbox import OutboxLimits, OutboxSender
from storage import outbox
from tests.standin import TelegramStandin

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
FAST = OutboxLimits(rate=400, chat_interval=0.05, concurrency=1, max_attempts=3, backoff=0.01)


class MovingClock:
    """Wall-clock time that starts where the test says and runs at real speed."""

    def __init__(self, start: dt.datetime) -> None:
        self.start = start
        self._t0 = dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.start + (dt.datetime.now(dt.timezone.utc) - self._t0)

    def jump(self, to: dt.datetime) -> None:
        self.start, self._t0 = to, dt.datetime.now(dt.timezone.utc)


@pytest.fixture
async def bot(tg: TelegramStandin) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=tg.api_server)
    b = Bot(tg.token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    yield b
    await session.close()


def delivered(tg: TelegramStandin, text: str | None = None) -> Counter[int]:
    return Counter(
        int(c.params["chat_id"])
        for c in tg.calls()
        if c.ok and c.method in ("sendMessage", "sendDocument") and (text is None or text in str(c.params.get("text", "")))
    )


def test_enqueue_is_idempotent_with_a_dedup_key_and_counts_by_status(db: sqlite_utils.Database) -> None:
    batch = outbox.new_batch(db, kind="broadcast", report_chat_id=9)
    first = outbox.enqueue(db, kind="broadcast", chat_id=1, text="hi", batch_id=batch, dedup_key="k1")
    again = outbox.enqueue(db, kind="broadcast", chat_id=1, text="hi", batch_id=batch, dedup_key="k1")
    other = outbox.enqueue(db, kind="digest", chat_id=2, text="<b>x</b>")
    assert isinstance(first, int) and again is None and isinstance(other, int)
    assert outbox.backlog(db) == {"pending": 2, "sending": 0, "sent": 0, "blocked": 0, "failed": 0, "total": 2}
    assert outbox.batch_counts(db, batch)["total"] == 1
    with pytest.raises(ValueError):
        outbox.enqueue(db, kind="broadcast", chat_id=1, text="  ")
    # A crash while a row was 'sending' leaves it to be sent again.
    assert outbox.mark_sending(db, first)
    assert outbox.backlog(db)["sending"] == 1
    assert outbox.recover(db) == 1 and outbox.backlog(db)["pending"] == 2


async def test_every_message_once_within_limits_despite_429_403_400_and_5xx(
    tg: TelegramStandin, bot: Bot, db: sqlite_utils.Database
) -> None:
    enforcer = tg.enforce_rate_limits(global_rate=500, global_burst=5, chat_rate=20, chat_burst=1)
    good = list(range(1001, 1061))
    for chat in good:
        tg.add_user(chat)
    blocked, flaky, dead = 1002, 1003, 1004
    tg.block(blocked)
    tg.fail_next("sendMessage", 502, chat_id=flaky, times=2)  # transient: retried with backoff
    tg.fail_next("sendMessage", 500, chat_id=dead, times=10)  # never recovers: failed after max_attempts
    flood = tg.fail_next("sendMessage", 429, retry_after=1, times=1)  # a flood wait: everyone pauses
    unknown_chat = 999_999  # the stand-in answers 400 "chat not found"
    batch = outbox.new_batch(db, kind="broadcast")
    for chat in [*good, unknown_chat]:
        outbox.enqueue(db, kind="broadcast", chat_id=chat, text=f"通知 &lt;{chat}&gt;", batch_id=batch)
    # Two messages to the same chat are spaced by chat_interval (the enforcer allows no burst).
    outbox.enqueue(db, kind="broadcast", chat_id=1001, text="second", batch_id=batch)

    sender = OutboxSender(bot, db, limits=FAST)
    await sender.drain(timeout=20)

    counts = outbox.batch_counts(db, batch)
    assert counts == {"pending": 0, "sending": 0, "sent": 59, "blocked": 1, "failed": 2, "total": 62}
    got = delivered(tg)
    assert got[1001] == 2 and all(got[c] == 1 for c in good if c not in (1001, blocked, dead))
    assert got[blocked] == 0 and got[dead] == 0
    assert flood.remaining == 0 and enforcer.rejected == 0, "the sender paced itself below the stand-in's limits"
    rows = {r["chat_id"]: r for r in db["outbox"].rows_where("chat_id in (?, ?, ?, ?)", [blocked, flaky, dead, unknown_chat])}
    assert rows[blocked]["status"] == "blocked" and rows[blocked]["attempts"] == 1
    assert outbox.is_unreachable(db, blocked) and [u["chat_id"] for u in outbox.unreachable_chats(db)] == [blocked]
    assert rows[flaky]["status"] == "sent" and rows[flaky]["attempts"] == 3
    assert rows[dead]["status"] == "failed" and rows[dead]["attempts"] == 3 and "after 3 attempts" in rows[dead]["error"]
    assert rows[unknown_chat]["status"] == "failed" and "chat not found" in rows[unknown_chat]["error"]
    # The 429 was answered by a global pause, not counted as an attempt.
    flooded = next(c for c in tg.calls("sendMessage") if c.status == 429)
    after = [c for c in tg.calls("sendMessage") if c.started > flooded.time]
    assert after and min(c.started for c in after) >= flooded.time + 0.95
    flooded_row = db["outbox"].get(int(next(r["id"] for r in db["outbox"].rows_where("chat_id = ?", [flooded.params["chat_id"]]))))
    assert flooded_row["attempts"] == 1 and flooded_row["status"] == "sent"
    # Per-chat spacing: the two messages to 1001 are at least chat_interval apart.
    to_1001 = [c.started for c in tg.calls("sendMessage", chat_id=1001) if c.ok]
    assert to_1001[1] - to_1001[0] >= FAST.chat_interval * 0.9

    # A later message to the blocked chat is not even tried.
    mark = tg.mark()
    outbox.enqueue(db, kind="reminder", chat_id=blocked, text="again")
    await sender.drain(timeout=5)
    assert not tg.calls("sendMessage", after=mark) and outbox.backlog(db)["blocked"] == 2


async def test_the_global_rate_is_held(tg: TelegramStandin, bot: Bot, db: sqlite_utils.Database) -> None:
    enforcer = tg.enforce_rate_limits(global_rate=100, global_burst=2)
    for chat in range(2001, 2101):
        tg.add_user(chat)
        outbox.enqueue(db, kind="broadcast", chat_id=chat, text="hello")
    sender = OutboxSender(bot, db, limits=OutboxLimits(rate=100, chat_interval=1.0))
    await sender.drain(timeout=10)
    starts = [c.started for c in tg.calls("sendMessage") if c.ok]
    assert len(starts) == 100 and enforcer.rejected == 0
    elapsed = starts[-1] - starts[0]
    # Never faster than the limit; the upper bound only guards against a stalled sender (loaded CI machines).
    assert 0.95 <= elapsed <= 3.0, f"99 intervals at 100/s took {elapsed:.3f}s"


async def test_quiet_hours_hold_bulk_messages_but_not_reports(
    tg: TelegramStandin, bot: Bot, db: sqlite_utils.Database
) -> None:
    tg.add_user(3001)
    tg.add_user(3002)
    clock = MovingClock(dt.datetime(2023, 10, 20, 22, 30, tzinfo=SHANGHAI))
    quiet = QuietHours(dt.time(21), dt.time(8), dt.timezone(dt.timedelta(hours=8)))  # type: ignore[arg-type]
    outbox.enqueue(db, kind="broadcast", chat_id=3001, text="bulk")
    outbox.enqueue(db, kind="report", chat_id=3002, text="report", quiet=False)
    sender = OutboxSender(bot, db, limits=FAST, quiet=quiet, clock=clock)
    await sender._pass()
    await sender._finish_in_flight()
    assert delivered(tg) == Counter({3002: 1})
    clock.jump(dt.datetime(2023, 10, 21, 8, 0, 1, tzinfo=SHANGHAI))
    await sender.drain(timeout=5)
    assert delivered(tg) == Counter({3001: 1, 3002: 1})


async def test_documents_and_plain_text(tg: TelegramStandin, bot: Bot, db: sqlite_utils.Database, tmp_path: Path) -> None:
    tg.add_user(4001)
    report = tmp_path / "digest.xlsx"
    report.write_bytes(b"PK\x03\x04 fake workbook")
    outbox.enqueue(db, kind="digest", chat_id=4001, text="<b>日报</b>", document=report, filename="日报.xlsx")
    outbox.enqueue(db, kind="broadcast", chat_id=4001, text="a <b> & c", parse_mode=None)
    await OutboxSender(bot, db, limits=FAST).drain(timeout=5)
    doc, plain = (m for m in tg.messages(4001))
    assert doc.kind == "document" and doc.file is not None and doc.file.file_name == "日报.xlsx" and doc.text == "日报"
    assert plain.text == "a <b> & c"
    assert outbox.backlog(db)["sent"] == 2
