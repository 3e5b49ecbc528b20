"""ZICHA_DURABILITY (full by default: an acknowledged answer is on disk) and WAL checkpoints
in the background: the setting reaches the connection, the WAL stays bounded while the bot
runs with SQLite's own checkpoints off, and shutdown and `zicha backup` leave every answer
in the database file."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from bot.cli import _open_db, cli
from bot.config import load_settings
from storage.checkpoint import WalCheckpointer
from storage.institutions import Institution
from tests.harness import BotProcess, Chat, invite, read_db, running_bot
from tests.standin import TelegramStandin

USER = 6161


def test_durability_defaults_to_full_and_reaches_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZICHA_DURABILITY", raising=False)
    monkeypatch.setenv("ZICHA_DB", str(tmp_path / "zicha.db"))
    settings = load_settings(_env_file=None)
    assert settings.zicha_durability == "full"
    with _open_db(settings) as db:  # what every zicha command, `zicha run` included, opens
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for value, level in (("normal", 1), (" Normal ", 1), ("FULL", 2)):
        monkeypatch.setenv("ZICHA_DURABILITY", value)
        with _open_db(load_settings(_env_file=None)) as db:
            assert db.execute("PRAGMA synchronous").fetchone()[0] == level, value


def test_a_wrong_durability_stops_the_command_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZICHA_DB", str(tmp_path / "zicha.db"))
    monkeypatch.setenv("ZICHA_DURABILITY", "fast")
    result = CliRunner().invoke(cli, ["backup", str(tmp_path / "copy.db")])
    assert result.exit_code != 0
    assert "Configuration problem: ZICHA_DURABILITY: must be full or normal, got 'fast'" in result.output
    assert not (tmp_path / "zicha.db").exists(), "nothing was opened"


async def onboard(chat: Chat, code: str) -> None:
    await chat.join_and_give_contact(code)


async def checkpoint_after(checkpointer: WalCheckpointer, runs: int, timeout: float = 15) -> None:
    """Wait for a background checkpoint, begun after ``runs`` were done, that copied the whole WAL."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last = checkpointer.last
        if checkpointer.runs > runs + 1 and last is not None and not last.busy and last.checkpointed == last.wal_frames:
            return
        if loop.time() > deadline:
            raise AssertionError(f"no complete background checkpoint: {checkpointer.runs} runs, last {last}")
        await asyncio.sleep(0.02)


async def test_the_running_bot_checkpoints_in_the_background_and_keeps_the_wal_bounded(
    db: sqlite_utils.Database, tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    wal = Path(f"{db_path}-wal")
    code = invite(db_path, food_lab.id)
    async with TelegramStandin() as tg, running_bot(tg, db_path) as app:
        serving = app.db
        assert serving.execute("PRAGMA synchronous").fetchone()[0] == 2, "full by default"
        assert serving.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0, "no checkpoint inside a COMMIT"
        checkpointer = app.checkpointer
        assert checkpointer is not None and checkpointer.running
        checkpointer.interval = 0.05  # the thread reads it at every pass
        chat = Chat(tg, USER)
        await onboard(chat, code)
        await checkpoint_after(checkpointer, checkpointer.runs)
        assert checkpointer.last is not None
        high_water = checkpointer.last.wal_frames  # the largest WAL so far: onboarding's

        frames, sizes = [], []
        for _batch in range(5):
            for _ in range(5):
                answer, screen = await chat.press("符合")
                assert answer.text.startswith("已保存")
            await checkpoint_after(checkpointer, checkpointer.runs)
            assert checkpointer.last is not None
            frames.append(checkpointer.last.wal_frames)
            sizes.append(wal.stat().st_size)
        assert f"第 {4 + 25}/" in screen.text
        assert sum(1 for r in read_db(db_path)["answers"].rows if r["value"] == "compliant") == 25
        # Every batch wrote to a WAL started over after the checkpoint of the batch before:
        # its frames are the batch's own, not the sum of all batches, and the file stays at
        # the size of about one batch.
        page = serving.execute("PRAGMA page_size").fetchone()[0]
        assert max(frames) < sum(frames) / 2, frames
        assert max(sizes) <= 32 + (max(high_water, *frames) + 2) * (page + 24), (sizes, frames, high_water)
    assert not checkpointer.running, "stopped with the dispatcher"


async def test_backup_while_the_bot_runs_has_the_answers_still_in_the_wal(
    db: sqlite_utils.Database, tmp_path: Path, food_lab: Institution, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    monkeypatch.setenv("ZICHA_DB", str(db_path))
    monkeypatch.chdir(tmp_path)
    async with TelegramStandin() as tg, running_bot(tg, db_path) as app:
        assert app.checkpointer is not None
        app.checkpointer.interval = 3600  # no background checkpoint: the last answers are in the WAL only
        chat = Chat(tg, USER)
        await onboard(chat, code)
        for choice in ("符合", "符合"):
            answer, _ = await chat.press(choice)
            assert answer.text.startswith("已保存")
        result = CliRunner().invoke(cli, ["backup", str(tmp_path / "copy.db")])
        assert result.exit_code == 0, result.output
    copy = sqlite3.connect(tmp_path / "copy.db")
    try:
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "one self-contained file"
        values = [r[0] for r in copy.execute("SELECT value FROM answers ORDER BY answered_at, rowid")]
    finally:
        copy.close()
    assert values[-2:] == ["compliant", "compliant"] and len(values) == 5


@pytest.mark.slow
async def test_shutdown_checkpoints_every_answer_into_the_database_file(
    db: sqlite_utils.Database, tmp_path: Path, food_lab: Institution
) -> None:
    # The test keeps its own connection open (``db``), so the bot's close is not the last
    # one and SQLite would not checkpoint at close: only the bot's shutdown checkpoint can.
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with TelegramStandin() as tg:
        bot = BotProcess(tg, db_path)
        bot.env["ZICHA_DURABILITY"] = "normal"
        bot.start()
        try:
            chat = Chat(tg, USER)
            await tg.wait_polling(timeout=30)
            await onboard(chat, code)
            for choice in ("符合", "符合"):
                answer, screen = await chat.press(choice)
                assert answer.text.startswith("已保存")
            assert "第 6/" in screen.text
            assert db.execute("SELECT count(*) FROM answers").fetchone()[0] == 5
            bot.sigterm()
            assert await bot.exited() == 0
        finally:
            log = bot.stop()
    assert "synchronous=NORMAL, checkpoints in the background" in log, log
    assert "Traceback" not in log, log
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(db_path, alone / "zicha.db")  # the database file without its -wal
    copy = sqlite3.connect(alone / "zicha.db")
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        values = [r[0] for r in copy.execute("SELECT value FROM answers ORDER BY answered_at, rowid")]
    finally:
        copy.close()
    assert values[-2:] == ["compliant", "compliant"] and len(values) == 5


async def test_a_wal_past_its_size_limit_is_caught_up_between_updates_and_no_press_fails(
    db: sqlite_utils.Database, tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with TelegramStandin() as tg, running_bot(tg, db_path) as app:
        checkpointer = app.checkpointer
        assert checkpointer is not None
        checkpointer.size_limit = 1  # every WAL is "too large": each pass asks the loop to catch up
        checkpointer.interval = 0.01
        chat = Chat(tg, USER)
        await onboard(chat, code)
        for _ in range(12):
            answer, screen = await chat.press("符合")
            assert answer.text.startswith("已保存"), answer.text
        assert "第 16/" in screen.text
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while checkpointer.catch_ups == 0:  # the thread's next pass asks the loop to catch up
            assert loop.time() < deadline, "the serving connection never caught up"
            await asyncio.sleep(0.02)
        answer, _ = await chat.press("符合")  # and the bot still takes presses
        assert answer.text.startswith("已保存"), answer.text
    assert sum(1 for r in read_db(db_path)["answers"].rows if r["value"] == "compliant") == 13
