"""The bot process is killed (SIGKILL) mid-interview and started again: the user
continues at the same place and nothing they answered is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from bot.core.checklist import Checklist
from storage.institutions import Institution
from tests.harness import BotProcess, Chat, invite, read_db
from tests.standin import TelegramStandin

pytestmark = pytest.mark.slow  # kills, restarts or builds: `pytest -m "not slow"` skips it

USER = 4242


async def restart(bot: BotProcess, tg: TelegramStandin) -> None:
    """Start the bot again and wait for the new process's first poll: the killed one's
    long poll may still look open to the stand-in."""
    mark = tg.mark()
    bot.start()
    await tg.wait_call("getUpdates", after=mark, timeout=30)


async def test_killed_mid_interview_the_user_continues_where_they_were(
    db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with TelegramStandin() as tg:
        bot = BotProcess(tg, db_path)
        bot.start()
        try:
            chat = Chat(tg, USER)
            await tg.wait_polling(timeout=30)
            await chat.join_and_give_contact(code)
            _, screen = await chat.press("符合")
            assert "第 5/" in screen.text
            bot.kill()

            # The answer was committed before the user saw the next question.
            answered = {r["item_id"]: r["value"] for r in read_db(db_path)["answers"].rows}
            assert len(answered) == 4

            await restart(bot, tg)
            screen = await chat.say("/start")
            assert "第 5/" in screen.text, "continues at the same item"
            await chat.press("不符合", screen)
            bot.kill()  # killed while the user is in the middle of the follow-up questions

            await restart(bot, tg)
            screen = await chat.say("设备校准证书过期")  # typed into the follow-up it was asking
            assert "已采取或计划采取哪些整改措施" in screen.text
            assert "问题：设备校准证书过期" in screen.text
        finally:
            log = bot.stop()
        assert "Traceback" not in log, log
        assert tg.token not in log, "the token must never be logged"
        # each of the three starts froze what it built before serving (bot.ops.lifecycle)
        assert log.count("Start-up objects kept out of garbage collection") == 3, log
    rows = {r["item_id"]: r for r in read_db(db_path)["answers"].rows}
    assert len(rows) == 5
    assert next(r for r in rows.values() if r["value"] == "noncompliant")["problem"] == "设备校准证书过期"
