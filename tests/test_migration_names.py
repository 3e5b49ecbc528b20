"""Migrations are named for what they do; databases that recorded the old names keep working.

sqlite-utils records every applied migration by name in ``_sqlite_migrations``: renaming a
shipped migration without ``storage.migrations.RENAMED`` would run it again (and fail on
its CREATE TABLE) on every existing database.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from storage import migrations as m
from storage.db import open_db

FIXTURE = Path(__file__).parent / "data" / "zicha-75a41b5.db.gz"
"""A database created by main at 75a41b5 (before the rename) with one institution, the
``Lab`` with USCC ``X``; journal mode DELETE so it is one file."""


# Migrations written after tests/data/zicha-75a41b5.db.gz was made: they run on it, once.
ADDED_SINCE_FIXTURE = [
    "m010_web_people_sessions_and_email", "m011_campaigns_and_selfcheck_campaign", "m012_web_evidence_files",
    "m013_selfchecks_reminders_and_digests_per_campaign", "m014_selfcheck_answer_counters",
    "m015_status_report_indexes", "m016_names_without_controls", "m017_send_backs",
    "m018_inspection_samples", "m019_web_people_by_email", "m020_evidence_removed",
]


def _applied(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    return [(r["name"], r["applied_at"]) for r in db[Migrations.migrations_table].rows_where(order_by="rowid")]


def test_every_migration_is_named_for_what_it_does() -> None:
    names = [migration.name for migration in m.migrations._migrations]
    assert all(re.fullmatch(r"m\d{3}_[a-z0-9_]+", n) for n in names), names
    assert not any("issue" in n for n in names)
    assert set(m.RENAMED.values()) <= set(names)
    assert not set(m.RENAMED) & set(names)


def test_a_database_created_by_main_opens_without_running_anything_again(tmp_path: Path) -> None:
    path = tmp_path / "zicha.db"
    with gzip.open(FIXTURE) as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    before = sqlite_utils.Database(path)
    old = _applied(before)
    assert "m_issue4_outbox_reminders" in [name for name, _ in old]
    schema = before.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    before.close()

    db = open_db(path)  # would fail with "table outbox already exists" if m005 ran again
    after = _applied(db)
    assert [name for name, _ in after] == [migration.name for migration in m.migrations._migrations]
    # the same records, renamed; after them only the migrations added since the fixture was made
    assert [stamp for _, stamp in after[: len(old)]] == [stamp for _, stamp in old]
    assert [m.RENAMED.get(name, name) for name, _ in old] == [name for name, _ in after[: len(old)]]
    assert [name for name, _ in after[len(old) :]] == ADDED_SINCE_FIXTURE
    now = {(kind, name) for kind, name, _ in db.execute("SELECT type, name, sql FROM sqlite_master").fetchall()}
    assert {(kind, name) for kind, name, _ in schema} <= now  # nothing of the old schema is lost
    assert [(r["uscc"], r["name"]) for r in db["institutions"].rows] == [("X", "Lab")]
    db.close()
    assert _applied(open_db(path)) == after  # and again: nothing to do


def test_old_names_recorded_by_running_the_old_migration_set_are_adopted(tmp_path: Path) -> None:
    """The same, built here: the shipped functions registered under the names main gave them."""
    old_names = {new: old for old, new in m.RENAMED.items()}
    shipped = Migrations(m.migrations.name)
    for migration in m.migrations._migrations:
        shipped(name=old_names.get(migration.name, migration.name))(migration.fn)
    path = tmp_path / "zicha.db"
    db = sqlite_utils.Database(path)
    shipped.apply(db)
    db["users"].insert({"telegram_id": 7, "first_name": "Li", "created_at": "t", "updated_at": "t"})
    recorded = _applied(db)
    db.close()

    db = open_db(path)
    assert len(_applied(db)) == len(recorded)
    assert {name for name, _ in _applied(db)} == {migration.name for migration in m.migrations._migrations}
    assert m.adopt_renamed(db) == 0
    assert db["users"].get(7)["first_name"] == "Li"
    db.close()


def test_adopting_leaves_a_record_alone_when_the_new_name_is_already_there(tmp_path: Path) -> None:
    db = open_db(tmp_path / "zicha.db")
    table = db[Migrations.migrations_table]
    table.insert({"migration_set": "zicha", "name": "m_issue6_heartbeat", "applied_at": "x"})
    assert m.adopt_renamed(db) == 0  # m007_heartbeat is recorded: the stray old name stays as it is
    assert [r["name"] for r in table.rows_where("name LIKE '%heartbeat'", order_by="rowid")] == [
        "m007_heartbeat",
        "m_issue6_heartbeat",
    ]
    db.close()


def test_names_stored_with_control_characters_are_cleaned_once_by_the_migration(tmp_path: Path) -> None:
    """Names that came in before they were cleaned where they enter: m016 cleans them at
    rest, and leaves every other name as it was."""
    path = tmp_path / "zicha.db"
    with gzip.open(FIXTURE) as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    before = sqlite_utils.Database(path)
    before["users"].insert_all([
        {"telegram_id": 7, "first_name": "\u202e小王\x1b[2J", "created_at": "t", "updated_at": "t"},
        {"telegram_id": 8, "first_name": "李 四", "created_at": "t", "updated_at": "t"},
    ])  # fmt: skip
    before.execute("UPDATE institutions SET name = ?, contact_name = ? WHERE uscc = 'X'", ["Lab\x9b31m", "张\x07三"])
    before.conn.commit()
    before.close()
    db = open_db(path)
    assert db["users"].get(7)["first_name"] == "小王[2J" and db["users"].get(8)["first_name"] == "李 四"
    [lab] = list(db["institutions"].rows)
    assert (lab["name"], lab["contact_name"]) == ("Lab31m", "张三")
    db.close()
