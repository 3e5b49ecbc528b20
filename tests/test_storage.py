"""The database: migrations, answers with history, invites and membership."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from bot.core.checklist import Checklist
from bot.core.interview import Choice, RectStatus
from storage import answers as store
from storage.db import DatabaseError, open_db
from storage.institutions import (
    Institution,
    InviteError,
    InviteProblem,
    bind_member,
    create_invite,
    ensure_invites,
    get_membership,
    list_invites,
    revoke_invite,
    upsert_institutions,
)
from storage.migrations import migrations
from tests.conftest import roster_row


def test_database_is_created_in_wal_mode_and_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "z.db"
    db = open_db(path)
    assert db.journal_mode == "wal"
    tables = set(db.table_names())
    assert {"institutions", "invites", "members", "selfchecks", "answers", "answer_history", "fsm"} <= tables
    db.close()
    again = open_db(path)
    applied = [r["name"] for r in again["_sqlite_migrations"].rows]
    assert applied == [m.name for m in migrations._migrations]
    assert len(set(applied)) == len(applied)
    again.close()


def test_open_db_names_the_problem_when_the_folder_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="does not exist"):
        open_db(tmp_path / "missing" / "z.db")


def test_open_db_rejects_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "z.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="Cannot use the database file"):
        open_db(path)


def test_reimporting_a_roster_updates_instead_of_duplicating(db: sqlite_utils.Database) -> None:
    row = roster_row("旧名称", 7, ("food",))
    assert upsert_institutions(db, [row]) == (1, 0)
    renamed = roster_row("新名称", 7, ("food", "water-supply"))
    assert upsert_institutions(db, [renamed]) == (0, 1)
    rows = list(db["institutions"].rows)
    assert len(rows) == 1 and rows[0]["name"] == "新名称"


def test_answers_keep_a_history_of_every_change(db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution) -> None:
    sc = store.get_or_create_selfcheck(db, food_lab.id, checklist)
    item = "lawful-01" if checklist.has_item("lawful-01") else checklist.items[3].id
    first = store.save_answer(db, sc.id, item, by=11, expected_rev=0, value=Choice.NONCOMPLIANT)
    assert first.rev == 1 and not first.is_complete
    store.save_answer(db, sc.id, item, by=11, problem="记录缺失")
    store.save_answer(db, sc.id, item, by=12, measure="补录并培训")
    done = store.save_answer(db, sc.id, item, by=12, rect_status=RectStatus.IN_PROGRESS)
    assert done.pending_followup is not None
    dated = store.save_answer(db, sc.id, item, by=12, target_date=dt.date(2023, 11, 30))
    assert dated.is_complete and dated.rev == 5
    changed = store.save_answer(db, sc.id, item, by=13, expected_rev=5, value=Choice.COMPLIANT)
    assert changed.problem is None and changed.is_complete
    history = store.answer_history(db, sc.id, item)
    assert [h["rev"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert history[0]["old"] is None and history[0]["new"]["value"] == "noncompliant"
    assert history[-1]["old"]["problem"] == "记录缺失" and history[-1]["new"]["value"] == "compliant"
    assert history[-1]["changed_by"] == 13


def test_the_known_answers_fingerprint_follows_every_write_as_stored(
    db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution
) -> None:
    """The answers kept on a connection carry the fingerprint of the stored ones after each
    write made on it (worked out from the one before: an answer added, an answer changed)."""
    sc = store.get_or_create_selfcheck(db, food_lab.id, checklist)

    def stored() -> str:
        return str(db.execute("SELECT " + store.ANSWERS_FINGERPRINT.format(selfcheck="?"), [sc.id]).fetchone()[0])

    known = store.known_answers(db)
    known.keep(sc.id, stored(), {})
    first, second = checklist.items[3].id, checklist.items[4].id
    store.save_answer(db, sc.id, first, by=1, value=Choice.COMPLIANT)
    store.save_answer(db, sc.id, second, by=1, value=Choice.NONCOMPLIANT)
    store.save_answer(db, sc.id, second, by=1, problem="记录缺失")
    store.save_answer(db, sc.id, first, by=2, value=Choice.NA)
    assert known.fingerprint(sc.id) == stored() == store.answers_fingerprint(store.load_answers(db, sc.id))
    assert known.get(sc.id, stored()) == store.load_answers(db, sc.id)


def test_answers_read_again_are_the_same_objects_and_written_ones_are_not_kept_for_that(
    db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution
) -> None:
    """Rows read before give the same frozen answers (the row cache); an answer just written
    is a row never read, so writing as a press does (the answer it replaces known, not read
    again) does not fill that cache."""
    sc = store.get_or_create_selfcheck(db, food_lab.id, checklist)
    item_id = checklist.items[3].id
    store.save_answer(db, sc.id, item_id, by=1, value=Choice.COMPLIANT)
    first = store.load_answers(db, sc.id)
    assert store.load_answers(db, sc.id)[item_id] is first[item_id]
    kept = store._answer_of.cache_info().currsize
    answer = first[item_id]
    for n in range(5):
        answer = store.save_answer(db, sc.id, item_id, by=1, current=answer, value=Choice.NONCOMPLIANT, problem=f"问题 {n}")
    assert store._answer_of.cache_info().currsize == kept
    assert store.load_answers(db, sc.id)[item_id] == answer and answer.problem == "问题 4" and answer.rev == 6
def test_a_stale_revision_writes_nothing(db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution) -> None:
    sc = store.get_or_create_selfcheck(db, food_lab.id, checklist)
    item = checklist.items[3].id
    store.save_answer(db, sc.id, item, by=1, expected_rev=0, value=Choice.COMPLIANT)
    with pytest.raises(store.StaleAnswer) as caught:
        store.save_answer(db, sc.id, item, by=2, expected_rev=0, value=Choice.NONCOMPLIANT)
    assert caught.value.current is not None and caught.value.current.value is Choice.COMPLIANT
    assert store.get_answer(db, sc.id, item).value is Choice.COMPLIANT
    assert len(store.answer_history(db, sc.id, item)) == 1


def test_an_unchanged_answer_writes_no_history(db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution) -> None:
    sc = store.get_or_create_selfcheck(db, food_lab.id, checklist)
    item = checklist.items[3].id
    store.save_answer(db, sc.id, item, by=1, value=Choice.COMPLIANT)
    again = store.save_answer(db, sc.id, item, by=1, expected_rev=1, value=Choice.COMPLIANT)
    assert again.rev == 1
    assert len(store.answer_history(db, sc.id, item)) == 1


def test_an_answer_is_committed_when_save_returns(tmp_path: Path, checklist: Checklist) -> None:
    db = open_db(tmp_path / "z.db")
    upsert_institutions(db, [roster_row("甲", 1, ("food",))])
    sc = store.get_or_create_selfcheck(db, 1, checklist)
    store.save_answer(db, sc.id, checklist.items[3].id, by=1, value=Choice.COMPLIANT)
    # A second connection (another process) sees it at once: nothing waits in an open transaction.
    other = sqlite3.connect(tmp_path / "z.db")
    assert other.execute("SELECT value FROM answers").fetchall() == [("compliant",)]
    other.close()
    assert not db.conn.in_transaction
    db.close()


def test_invites_admit_a_bounded_number_of_staff_and_can_be_revoked(db: sqlite_utils.Database, food_lab: Institution) -> None:
    code = create_invite(db, food_lab.id, max_uses=2)
    assert bind_member(db, 101, code).id == food_lab.id
    assert bind_member(db, 101, code).id == food_lab.id  # the same person again spends nothing
    bind_member(db, 102, code)
    with pytest.raises(InviteError) as caught:
        bind_member(db, 103, code)
    assert caught.value.problem is InviteProblem.USED_UP
    assert get_membership(db, 103) is None
    other = create_invite(db, food_lab.id)
    assert revoke_invite(db, other)
    with pytest.raises(InviteError) as caught:
        bind_member(db, 104, other)
    assert caught.value.problem is InviteProblem.REVOKED
    with pytest.raises(InviteError) as caught:
        bind_member(db, 105, "0" * 20)
    assert caught.value.problem is InviteProblem.UNKNOWN


def test_every_institution_gets_one_usable_invite(db: sqlite_utils.Database) -> None:
    upsert_institutions(db, [roster_row("甲", 1, ("food",)), roster_row("乙", 2, ("food",))])
    assert ensure_invites(db) == 2
    assert ensure_invites(db) == 0
    assert {r["name"] for r in list_invites(db)} == {"甲", "乙"}
