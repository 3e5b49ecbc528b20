"""Shared fixtures: a migrated database, the shipped checklist, a roster of institutions,
the Telegram stand-in (``tg``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlite_utils

from bot.core.checklist import Checklist, load_checklist
from bot.core.roster import RosterRow
from bot.core.uscc import make_uscc
from storage.db import open_db
from storage.institutions import Institution, get_institution_by_uscc, upsert_institutions
from tests.standin import TelegramStandin

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CHECKLIST = REPO / "checklists" / "samr-2023-national.toml"


def roster_row(name: str, serial: int, fields: tuple[str, ...], province: str = "北京") -> RosterRow:
    return RosterRow(
        line=serial + 1,
        name=name,
        uscc=make_uscc(f"91110108MA01{serial:05d}"),
        cma_cert=f"2300000{serial:05d}",
        province=province,
        level="national",
        fields=fields,
        contact_name="李四",
        contact_phone="010-82262722",
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(tmp_path / "zicha.db")
    yield database
    database.close()


@pytest.fixture
def db_path(db: sqlite_utils.Database, tmp_path: Path) -> Path:
    """The file of ``db``, for the bot and CLI processes a test starts on it."""
    return tmp_path / "zicha.db"


@pytest.fixture
async def tg() -> AsyncIterator[TelegramStandin]:
    """A fake Telegram Bot API server (tests/standin.py) for the real dispatcher to talk to."""
    async with TelegramStandin() as standin:
        yield standin


@pytest.fixture(scope="session")
def checklist() -> Checklist:
    return load_checklist(SHIPPED_CHECKLIST)


@pytest.fixture
def motor_lab(db: sqlite_utils.Database) -> Institution:
    """An institution inspecting motor vehicles (and nothing else)."""
    row = roster_row("机动车检测站有限公司", 1, ("motor-vehicle",))
    upsert_institutions(db, [row])
    institution = get_institution_by_uscc(db, row.uscc)
    assert institution is not None
    return institution


@pytest.fixture
def food_lab(db: sqlite_utils.Database) -> Institution:
    row = roster_row("食品检验所", 2, ("food",), province="广东")
    upsert_institutions(db, [row])
    institution = get_institution_by_uscc(db, row.uscc)
    assert institution is not None
    return institution
