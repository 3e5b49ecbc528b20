"""SIGTERM (what systemd and Docker send) in the middle of an interview: the update in hand
is finished, nothing is lost or handled twice, and the user continues after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlite_utils

from storage.institutions import Institution
from tests.harness import BotProcess, Chat, free_port, invite, read_db
from tests.standin import TelegramStandin

pytestmark = pytest.mark.slow  # kills, restarts or builds: `pytest -m "not slow"` skips it

USER = 7373


async def until(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    """Poll a condition outside the stand-in (a child's log file) until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_sigterm_during_an_interview_finishes_the_update_in_hand_and_loses_nothing(
    db: sqlite_utils.Database, tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with TelegramStandin() as tg:
        bot = BotProcess(tg, db_path)
        bot.start()
        try:
            chat = Chat(tg, USER)
            await tg.wait_polling(timeout=30)
            screen = await chat.join_and_give_contact(code)
            assert "第 4/" in screen.text

            # Telegram is slow to show the next question: the bot is inside the handler when SIGTERM comes.
            hold = tg.hold("editMessageText")
            query = tg.press(USER, screen, text="符合")
            await hold.wait_arrived(timeout=10)
            bot.sigterm()
            await until(lambda: "waiting for 1 update(s) in hand" in bot.log(), "the bot to wait for the update")
            hold.release()
            answer = await tg.wait_answered(query, timeout=15)
            assert answer is not None, "the press was answered after SIGTERM: the handler ran to its end"
            assert await bot.exited() == 0
            assert tg.pending_updates == [], "the handled update was confirmed, so it is not sent again"

            db_now = read_db(db_path)
            assert db_now.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert db_now["answers"].count == 4
            heartbeat = next(db_now["heartbeat"].rows)
            assert heartbeat["stopped_at"] is not None, "a clean stop is recorded for zicha status"

            mark = tg.mark()
            bot.start()
            # A new long poll (wait_polling alone may see the old process's poll still held open by the server).
            await tg.wait_call("getUpdates", after=mark, timeout=30)
            screen = await chat.say("/start")
            assert "第 5/" in screen.text, "continues after the answer given during shutdown"
        finally:
            log = await asyncio.to_thread(bot.stop)  # the stand-in keeps answering while the bot stops
        assert "Traceback" not in log, log
        assert "CancelledError" not in log, log
        assert tg.token not in log
        assert "王五" not in log and "13812345678" not in log, "what users type is never logged"
        assert '"update_id": 6' in log and f'"institution_id": {food_lab.id}' in log
    history = read_db(db_path).execute("SELECT item_id, count(*) FROM answer_history GROUP BY item_id").fetchall()
    assert len(history) == 4 and all(n == 1 for _, n in history), "no update was handled twice"


async def test_zicha_run_webhook_serves_then_removes_the_webhook_on_sigterm(
    db: sqlite_utils.Database, tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    port = free_port()
    async with TelegramStandin() as tg:
        bot = BotProcess(tg, db_path)
        bot.use_webhook(port)
        bot.start()
        try:
            await tg.wait_call("setWebhook", timeout=30)
            assert tg.webhook is not None and tg.webhook["url"] == f"http://127.0.0.1:{port}/hook"
            chat = Chat(tg, USER)
            await chat.say(f"/start {code}")
            _, screen = await chat.press("是，这是我的机构")
            assert "第 1/" in screen.text
            bot.sigterm()
            assert await bot.exited() == 0
        finally:
            log = await asyncio.to_thread(bot.stop)
        assert tg.calls("deleteWebhook") and tg.webhook is None
        assert not tg.calls("getUpdates")
        assert "Traceback" not in log and tg.token not in log
        assert '"mode": "webhook"' in log
