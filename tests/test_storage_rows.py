"""The storage functions that took over the SQL of reports, services, ops and the CLI
return typed, frozen rows, and give the same answers the old inline queries gave."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sqlite_utils

from bot.core.checklist import Checklist
from bot.core.scope import Scope
from storage import heartbeat, maintenance, recipients, reminders
from storage import reports as store
from storage.answers import get_or_create_selfcheck
from storage.institutions import (
    Institution,
    UserName,
    bind_member,
    create_invite,
    get_user_name,
    set_user_language,
)
from storage.outbox import mark_unreachable
from storage.scope import scope_where

GUANGDONG = Scope(provinces=frozenset({"广东"}))


def _join(db: sqlite_utils.Database, lab: Institution, telegram_id: int, name: str) -> None:
    code = create_invite(db, lab.id)
    bind_member(db, telegram_id, code, first_name=name, username=f"u{telegram_id}")


def test_recipients_are_typed_and_follow_scope_and_blocking(
    db: sqlite_utils.Database, motor_lab: Institution, food_lab: Institution, checklist: Checklist
) -> None:
    _join(db, motor_lab, 1, "北京甲")
    _join(db, food_lab, 2, "广东乙")
    _join(db, food_lab, 3, "广东丙")
    set_user_language(db, 3, "en", first_name="广东丙")
    mark_unreachable(db, 2, "Forbidden: bot was blocked by the user")

    reach = recipients.members_in_scope(db, GUANGDONG)
    assert reach == [
        recipients.Recipient(2, food_lab.id, None, True),
        recipients.Recipient(3, food_lab.id, "en", False),
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        reach[0].unreachable = False  # type: ignore[misc]
    # reminders skip the blocked, whatever the scope
    assert [r.telegram_id for r in recipients.unfinished_members(db, checklist.id)] == [1, 3]
    assert get_user_name(db, 3) == UserName("广东丙", None)  # set_user_language's ensure_user: no username
    assert get_user_name(db, 1) == UserName("北京甲", "u1")
    assert get_user_name(db, 99) is None


def test_a_reminder_is_claimed_once(db: sqlite_utils.Database, food_lab: Institution) -> None:
    _join(db, food_lab, 2, "广东乙")
    args = {"telegram_id": 2, "campaign_id": "c", "checklist_id": "t", "reminder": "d-3", "institution_id": food_lab.id}
    assert reminders.claim(db, **args) is True  # type: ignore[arg-type]
    assert reminders.claim(db, **args) is False  # type: ignore[arg-type]
    reminders.link_outbox(db, telegram_id=2, campaign_id="c", reminder="d-3", outbox_id=None)
    assert reminders.reminded(db, "c", "d-3") == {2}
    assert reminders.reminded(db, "c", "d-1") == set()


def test_scope_where_selects_what_covers_selects(
    db: sqlite_utils.Database, motor_lab: Institution, food_lab: Institution
) -> None:
    for scope in (Scope(national=True), GUANGDONG, Scope(national=True, fields=frozenset({"motor-vehicle"}))):
        where, params = scope_where(scope, "i")
        names = {r["name"] for r in db.query(f"SELECT name FROM institutions i WHERE {where}", params)}
        assert names == {lab.name for lab in (motor_lab, food_lab) if scope.covers(lab.province, lab.fields)}


def test_status_rows_and_search_are_typed(
    db: sqlite_utils.Database, motor_lab: Institution, food_lab: Institution, checklist: Checklist
) -> None:
    sc = get_or_create_selfcheck(db, food_lab.id, checklist)
    rows = store.status_rows(db, checklist.id, Scope(national=True))
    by_id = {r.id: r for r in rows}
    assert by_id[food_lab.id].selfcheck_id == sc.id and not by_id[food_lab.id].answered
    assert by_id[motor_lab.id].selfcheck_id is None
    assert store.status_rows(db, checklist.id, GUANGDONG, only=motor_lab.id) == []
    assert store.find_in_scope(db, GUANGDONG, "食品", 10) == [
        store.InstitutionMatch(food_lab.id, food_lab.uscc, food_lab.name, "广东")
    ]
    assert store.find_in_scope(db, GUANGDONG, "机动车", 10) == []
    assert store.in_scope(db, GUANGDONG, food_lab.id) and not store.in_scope(db, GUANGDONG, motor_lab.id)


def test_heartbeat_rows_are_typed(db: sqlite_utils.Database, tmp_path: Path) -> None:
    assert heartbeat.bot_heartbeat(db) is None
    heartbeat.beat(db, pid=42, mode="polling", now="2026-12-01T10:00:00+00:00", scheduler="running")
    row = heartbeat.bot_heartbeat(db)
    assert row == heartbeat.HeartbeatRow(42, "polling", "2026-12-01T10:00:00+00:00", None, "running")
    assert heartbeat.running_bot_in_file(tmp_path / "zicha.db") == row
    heartbeat.mark_stopped(db, pid=41, now="x", scheduler="stopped")  # another process: left alone
    assert heartbeat.running_bot_in_file(tmp_path / "zicha.db") == row
    heartbeat.mark_stopped(db, pid=42, now="2026-12-01T10:05:00+00:00", scheduler="stopped")
    assert heartbeat.running_bot_in_file(tmp_path / "zicha.db") is None
    assert heartbeat.running_bot_in_file(tmp_path / "missing.db") is None


def test_a_copy_is_one_intact_file(db: sqlite_utils.Database, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    tables = maintenance.copy_file(tmp_path / "zicha.db", copy)
    checked = maintenance.check_file(copy)
    assert checked.integrity == ("ok",) and {"institutions", "answers", "_sqlite_migrations"} <= checked.tables
    assert tables == len(checked.tables) == maintenance.table_count(db)
    assert maintenance.quick_check(db) == "ok"
    assert not (tmp_path / "copy.db-wal").exists()
