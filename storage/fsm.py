"""aiogram FSM storage in the application's SQLite database.

Conversation state lives next to the answers, so a restart (or a crash) resumes every
conversation where it was. Data is JSON, never pickle; the key uses every
``StorageKey`` field so topics, business connections and scenes never collide; each
write is its own short transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlite_utils
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey

from storage.db import utcnow
from storage.readahead import NOT_READ, ReadAhead


def storage_key_text(key: StorageKey) -> str:
    parts = (
        key.bot_id,
        key.chat_id,
        key.user_id,
        "" if key.thread_id is None else key.thread_id,
        key.business_connection_id or "",
        key.destiny,
    )
    return ":".join(str(p) for p in parts)


class SQLiteStorage(BaseStorage):
    def __init__(self, db: sqlite_utils.Database, read_ahead: ReadAhead | None = None) -> None:
        self.db = db
        self.read_ahead = read_ahead or ReadAhead()

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        self.read_ahead.forget(storage_key_text(key))
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO fsm (key, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                [storage_key_text(key), value, utcnow()],
            )

    async def get_state(self, key: StorageKey) -> str | None:
        text = storage_key_text(key)
        ahead = self.read_ahead.get(text)
        if ahead is not NOT_READ:
            return ahead[0] if ahead is not None else None
        row = self.db.execute("SELECT state FROM fsm WHERE key = ?", [text]).fetchone()
        return row[0] if row else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        # An empty dict replaces the data but keeps the state: clearing data is not
        # clearing the conversation.
        payload = json.dumps(dict(data), ensure_ascii=False, separators=(",", ":"))
        self.read_ahead.forget(storage_key_text(key))
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO fsm (key, data, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                [storage_key_text(key), payload, utcnow()],
            )

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        text = storage_key_text(key)
        ahead = self.read_ahead.get(text)
        if ahead is not NOT_READ:
            return json.loads(ahead[1]) if ahead is not None else {}
        row = self.db.execute("SELECT data FROM fsm WHERE key = ?", [text]).fetchone()
        return json.loads(row[0]) if row else {}

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        # Read-modify-write inside one transaction, unlike the base class.
        self.read_ahead.forget(storage_key_text(key))  # read inside the transaction
        with self.db.atomic():
            current = await self.get_data(key)
            current.update(data)
            await self.set_data(key, current)
        return dict(current)

    async def close(self) -> None:
        # The connection belongs to the application, which closes it on shutdown.
        return None
