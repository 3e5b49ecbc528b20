"""Regulator accounts: a Telegram user with a scope of institutions they may see."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from bot.core.scope import Scope
from storage.db import query_one, query_rows, utcnow


@dataclass(frozen=True)
class Regulator:
    telegram_id: int
    name: str
    scope: Scope
    added_at: str


def _regulator(row: dict[str, object]) -> Regulator:
    return Regulator(
        telegram_id=int(row["telegram_id"]),  # type: ignore[arg-type]
        name=str(row["name"]),
        scope=Scope.from_json(str(row["scope"])),
        added_at=str(row["added_at"]),
    )


def add_regulator(db: sqlite_utils.Database, telegram_id: int, scope: Scope, name: str = "") -> Regulator:
    """Add a regulator, or change the scope and name of an existing one."""
    with db.atomic():
        db.execute(
            "INSERT INTO regulators (telegram_id, name, scope, added_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(telegram_id) DO UPDATE SET name = excluded.name, scope = excluded.scope",
            [telegram_id, name, scope.to_json(), utcnow()],
        )
    regulator = get_regulator(db, telegram_id)
    assert regulator is not None
    return regulator


def get_regulator(db: sqlite_utils.Database, telegram_id: int) -> Regulator | None:
    row = query_one(db, "SELECT * FROM regulators WHERE telegram_id = ?", [telegram_id])
    return _regulator(row) if row else None


def list_regulators(db: sqlite_utils.Database) -> list[Regulator]:
    return [_regulator(r) for r in query_rows(db, "SELECT * FROM regulators ORDER BY added_at, telegram_id")]


def remove_regulator(db: sqlite_utils.Database, telegram_id: int) -> bool:
    with db.atomic():
        cursor = db.execute("DELETE FROM regulators WHERE telegram_id = ?", [telegram_id])
    return cursor.rowcount == 1
