"""Conversation states of the engine (``bot/conversation``), in the ``fsm`` table.

The rows are the ones aiogram's FSM storage (storage/fsm.py) reads and writes, under the
same keys, so the Telegram flows that still use FSMContext (onboarding, the pledge, the
regulators') and the engine see one state per conversation. Step and data are written in
one statement: one commit per shown screen.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from bot.conversation.state import ConversationState
from storage.db import transaction, utcnow
from storage.readahead import NOT_READ, ReadAhead

_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` with one encoder made once."""


class SQLiteStates:
    """``read_ahead``: shared with the deployment's ``storage.fsm.SQLiteStorage``, whose
    rows the membership lookup reads ahead for each update."""

    def __init__(self, db: sqlite_utils.Database, read_ahead: ReadAhead | None = None) -> None:
        self.db = db
        self.read_ahead = read_ahead or ReadAhead()

    def load(self, key: str) -> ConversationState:
        row: Any = self.read_ahead.get(key)
        if row is NOT_READ:
            row = self.db.execute("SELECT state, data FROM fsm WHERE key = ?", [key]).fetchone()
        if row is None:
            return ConversationState()
        return ConversationState(row[0], json.loads(row[1]) if row[1] else {})

    def save(self, key: str, state: ConversationState) -> None:
        payload = _to_json(state.data)
        self.read_ahead.forget(key)
        with transaction(self.db):  # part of a press's transaction when there is one
            self.db.execute(
                "INSERT INTO fsm (key, state, data, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET state = excluded.state, data = excluded.data, "
                "updated_at = excluded.updated_at",
                [key, state.step, payload, utcnow()],
            )
