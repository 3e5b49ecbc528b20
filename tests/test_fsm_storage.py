"""aiogram FSM state and data survive in SQLite, keyed on every StorageKey field."""

from __future__ import annotations

from pathlib import Path

from aiogram.fsm.storage.base import StorageKey

from bot.telegram.states import Interview
from storage.db import open_db
from storage.fsm import SQLiteStorage


async def test_state_and_data_survive_reopening_the_database(tmp_path: Path) -> None:
    key = StorageKey(bot_id=42, chat_id=7, user_id=7)
    db = open_db(tmp_path / "z.db")
    storage = SQLiteStorage(db)
    await storage.set_state(key, Interview.problem)
    await storage.set_data(key, {"item": "lawful-01", "msg": 12, "text": "<b>&中文</b>"})
    db.close()
    reopened = SQLiteStorage(open_db(tmp_path / "z.db"))
    assert await reopened.get_state(key) == Interview.problem.state
    assert await reopened.get_data(key) == {"item": "lawful-01", "msg": 12, "text": "<b>&中文</b>"}
    reopened.db.close()


async def test_clearing_data_keeps_the_state_and_update_merges(tmp_path: Path) -> None:
    storage = SQLiteStorage(open_db(tmp_path / "z.db"))
    key = StorageKey(bot_id=1, chat_id=2, user_id=2)
    await storage.set_state(key, "Interview:question")
    await storage.set_data(key, {"a": 1})
    assert await storage.update_data(key, {"b": 2}) == {"a": 1, "b": 2}
    await storage.set_data(key, {})
    assert await storage.get_state(key) == "Interview:question"
    assert await storage.get_data(key) == {}
    await storage.set_state(key, None)
    assert await storage.get_state(key) is None
    storage.db.close()


async def test_keys_differing_in_any_field_do_not_collide(tmp_path: Path) -> None:
    storage = SQLiteStorage(open_db(tmp_path / "z.db"))
    keys = [
        StorageKey(bot_id=1, chat_id=2, user_id=3),
        StorageKey(bot_id=9, chat_id=2, user_id=3),
        StorageKey(bot_id=1, chat_id=2, user_id=3, thread_id=5),
        StorageKey(bot_id=1, chat_id=2, user_id=3, business_connection_id="bc"),
        StorageKey(bot_id=1, chat_id=2, user_id=3, destiny="scene"),
    ]
    for i, key in enumerate(keys):
        await storage.set_data(key, {"i": i})
    assert [(await storage.get_data(k))["i"] for k in keys] == list(range(len(keys)))
    storage.db.close()
