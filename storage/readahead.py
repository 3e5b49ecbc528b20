"""The ``fsm`` rows read ahead for the updates in hand (no aiogram here: the engine's
states, ``storage.conversations``, share them with the Telegram channel's FSM storage)."""

from __future__ import annotations

from typing import Any

FsmRow = tuple[str | None, str]
"""A conversation's row: (state, data as JSON)."""


class ReadAhead:
    """The ``fsm`` rows read ahead for the updates in hand, by key: the membership lookup
    reads the sender's row in the same statement (``storage.regulators.who_is``), so
    aiogram's FSM storage (``storage.fsm``) and the engine's states
    (``storage.conversations``) need not read it twice more. An entry lives while its update is handled (the middleware
    that primes it forgets it afterwards) and is forgotten at every write of its key, so a
    read after a write (or after a rolled-back one) goes to the database again. Every
    write of the ``fsm`` table goes through ``storage.fsm`` and ``storage.conversations``."""

    def __init__(self) -> None:
        self._rows: dict[str, FsmRow | None] = {}

    def prime(self, key: str, row: FsmRow | None) -> None:
        """``row``: as read now (None: there is no row for ``key``)."""
        self._rows[key] = row

    def get(self, key: str) -> Any:
        """The row read ahead, None if there is none, ``NOT_READ`` if not read ahead."""
        return self._rows.get(key, NOT_READ)

    def forget(self, key: str) -> None:
        self._rows.pop(key, None)


NOT_READ = object()
