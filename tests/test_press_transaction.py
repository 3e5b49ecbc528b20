"""One transaction a press (issue 14): the answer, its history, the self-check's counters
and the conversation state commit together, once; the revision is checked by the write
itself; the counters kept on the self-check row always equal a count of its answers."""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo

import pytest
import sqlite_utils

from bot.config import load_settings
from bot.conversation import state as st
from bot.conversation.actions import Choose, NavAction, Navigate, TypeText
from bot.conversation.engine import Actor, Conversation
from bot.conversation.screens import Outcome
from bot.core.checklist import Checklist
from bot.core.interview import Choice, Interview, RectStatus
from bot.i18n import build_i18n
from bot.selfcheck import Workspace, open_workspace
from storage import answers as answer_store
from storage import pledges as pledge_store
from storage.answers import StaleAnswer, counters, recount, save_answer
from storage.conversations import SQLiteStates
from storage.db import open_db
from storage.institutions import Institution, ensure_user

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
USER = 5252
NOW = dt.datetime(2023, 10, 9, 10, 0, tzinfo=TZ)
MESSAGE = 777  # the Telegram message the screens are edited in


def _conversation(db: sqlite_utils.Database, checklist: Checklist) -> Conversation:
    return Conversation(
        db=db, checklist=checklist, settings=load_settings(_env_file=None), clock=lambda: NOW,
        states=SQLiteStates(db), catalog=build_i18n("zh_CN"),
    )  # fmt: skip


def _press(conversation: Conversation, actor: Actor, outcome: Outcome, predicate: object) -> tuple[Outcome, list[str]]:
    """Press the first button matching ``predicate`` on ``outcome``'s screen, as Telegram
    does (the screen edited in the same message), tracing every statement."""
    assert outcome.screen is not None
    action = next(b.action for b in outcome.screen.buttons() if predicate(b.action))  # type: ignore[operator]
    log: list[str] = []
    conversation.db.conn.set_trace_callback(log.append)
    try:
        after = conversation.handle(actor, action.at(MESSAGE))
        conversation.shown(actor, after, MESSAGE)
    finally:
        conversation.db.conn.set_trace_callback(None)
    return after, log


def _commits(log: list[str]) -> int:
    return sum(1 for q in log if q.strip().upper().startswith(("COMMIT", "END")))


def test_a_press_is_one_commit_with_the_answer_history_counters_and_state(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    ensure_user(db, USER, "张三")
    conversation = _conversation(db, checklist)
    actor = Actor(USER, motor_lab, "zh_CN", f"test:{USER}")
    ws = open_workspace(db, checklist, motor_lab)
    for item in ws.interview.items:  # the header items answered: the next screen is a compliance question
        if item.kind == "confirm":
            save_answer(db, ws.selfcheck.id, item.id, by=USER, value=Choice.YES)
        elif item.kind == "text":
            save_answer(db, ws.selfcheck.id, item.id, by=USER, value=Choice.TEXT, text="李四")
    compliance = [i for i in ws.interview.items if i.kind == "compliance"]
    first = compliance[0]
    outcome = conversation.screen_for(actor)
    conversation.shown(actor, outcome, MESSAGE)
    assert outcome.screen is not None and outcome.live

    after, log = _press(conversation, actor, outcome, lambda a: isinstance(a, Choose) and a.choice is Choice.COMPLIANT)
    assert _commits(log) == 1, log
    assert not any(q.startswith(("SAVEPOINT", "RELEASE")) for q in log), log
    assert after.notice == "已保存：符合"
    assert after.screen is not None and after.screen.text != outcome.screen.text  # the next question
    # what was committed: the answer, its history, the counters and the state, live on MESSAGE
    stored = answer_store.get_answer(db, ws.selfcheck.id, first.id)
    assert stored is not None and stored.value is Choice.COMPLIANT and stored.rev == 1
    assert [h["rev"] for h in answer_store.answer_history(db, ws.selfcheck.id, first.id)] == [1]
    assert counters(db, ws.selfcheck.id) == recount(db, ws.selfcheck.id)
    assert counters(db, ws.selfcheck.id).answered == len(ws.interview.items) - len(compliance) + 1
    # the state, as /start left it, follows the interview: it leads to the next question now
    state = SQLiteStates(db).load(actor.key)
    assert state.data[st.LIVE] == MESSAGE and state.following
    assert ws.interview.resume_point(open_workspace(db, checklist, motor_lab).answers(), state.item) == compliance[1]

    # 不符合, then its rectification status: each press one COMMIT again, the state's change in it
    after, log = _press(conversation, actor, after, lambda a: isinstance(a, Choose) and a.choice is Choice.NONCOMPLIANT)
    assert _commits(log) == 1 and any("INTO fsm" in q for q in log), log
    state = SQLiteStates(db).load(actor.key)
    assert state.item == compliance[1].id and not state.following and state.step != st.QUESTION
    assert counters(db, ws.selfcheck.id) == recount(db, ws.selfcheck.id)
    assert counters(db, ws.selfcheck.id).noncompliant == 1


def test_a_colleague_saving_first_makes_the_press_stale_and_nothing_is_written(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, db_path: object
) -> None:
    """The workspace read the answer; another process saves it before the press writes:
    the write's WHERE clause finds a newer revision, and nothing of the press is kept."""
    ws = open_workspace(db, checklist, motor_lab)
    item = next(i for i in ws.interview.items if i.kind == "compliance")
    save_answer(db, ws.selfcheck.id, item.id, by=USER, value=Choice.COMPLIANT)
    ws = open_workspace(db, checklist, motor_lab)  # a workspace reads the answers when it opens
    assert ws.answer(item.id) is not None  # read (and kept) by the workspace: rev 1
    other = open_db(db_path, migrate=False)  # type: ignore[arg-type]
    try:
        save_answer(other, ws.selfcheck.id, item.id, by=USER + 1, value=Choice.NA)
    finally:
        other.close()
    with pytest.raises(StaleAnswer) as raised:
        ws.record_choice(item.id, Choice.NONCOMPLIANT, by=USER, expected_rev=1)
    assert raised.value.current is not None and raised.value.current.value is Choice.NA
    stored = answer_store.get_answer(db, ws.selfcheck.id, item.id)
    assert stored is not None and stored.value is Choice.NA and stored.rev == 2
    assert [h["changed_by"] for h in answer_store.answer_history(db, ws.selfcheck.id, item.id)] == [USER, USER + 1]
    assert counters(db, ws.selfcheck.id) == recount(db, ws.selfcheck.id)
    # pressing the same answer the colleague replaced, with the old revision: stale too
    fresh = open_workspace(db, checklist, motor_lab)
    fresh._answers = {item.id: answer_store.get_answer(db, ws.selfcheck.id, item.id)}  # type: ignore[dict-item]
    fresh._answers[item.id] = ws.answers()[item.id]  # the old read, rev 1 (compliant)
    with pytest.raises(StaleAnswer):
        fresh.record_choice(item.id, Choice.COMPLIANT, by=USER, expected_rev=1)
    assert answer_store.get_answer(db, ws.selfcheck.id, item.id).value is Choice.NA


@pytest.mark.parametrize("seed", range(6))
def test_the_counters_always_equal_a_recount(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, food_lab: Institution, seed: int
) -> None:
    """Random answers, edits, follow-ups, value changes and stale writes (old revisions,
    old reads) on two self-checks: after every step the kept counters equal a recount."""
    rng = random.Random(seed)
    today = NOW.date()
    spaces = []
    for lab in (motor_lab, food_lab):
        ws = open_workspace(db, checklist, lab)
        items = [i for i in Interview(checklist, lab.fields).items if i.kind in ("compliance", "confirm")][:12]
        spaces.append((ws.selfcheck.id, items))
    stale = 0
    for _ in range(150):
        sc, items = rng.choice(spaces)
        item = rng.choice(items)
        current = answer_store.get_answer(db, sc, item.id)
        rev = current.rev if current else 0
        if rng.random() < 0.15:
            rev += rng.choice([-1, 1])  # an old message, or a forged one
        if item.kind == "confirm":
            choices = [Choice.YES, Choice.NO]
        else:
            choices = [Choice.COMPLIANT, Choice.NONCOMPLIANT] + ([Choice.NA] if item.allow_na else [])
        changes: dict[str, object] = {"value": rng.choice(choices)}
        if current is not None and rng.random() < 0.5:
            if current.value is Choice.NONCOMPLIANT:
                changes = rng.choice([
                    {"problem": rng.choice(["漏检", "", None])}, {"measure": rng.choice(["补检", None])},
                    {"rect_status": rng.choice(list(RectStatus))},
                    {"target_date": today + dt.timedelta(days=rng.randint(1, 30)), "rect_status": RectStatus.IN_PROGRESS},
                ])  # fmt: skip
            elif current.value is Choice.NO:
                changes = {"text": rng.choice(["名称应为甲", None, ""])}
        read: object = answer_store.UNKNOWN
        if rng.random() < 0.5:
            read = current  # as a workspace passes it...
            if current is not None and rng.random() < 0.2:
                save_answer(db, sc, item.id, by=USER + 1, value=rng.choice(choices))  # ...and a colleague overtakes it
        try:
            save_answer(db, sc, item.id, by=USER, expected_rev=rev, current=read, **changes)  # type: ignore[arg-type]
        except StaleAnswer:
            stale += 1
        except ValueError:
            pass  # details before a value: refused, nothing written
        for sc_id, _items in spaces:
            assert counters(db, sc_id) == recount(db, sc_id), (seed, item.id, changes)
    assert stale > 0
    kept = [counters(db, sc_id) for sc_id, _items in spaces]
    assert any(c is not None and c.answered > 0 for c in kept)


def _header_answered(db: sqlite_utils.Database, checklist: Checklist, lab: Institution) -> None:
    ws = open_workspace(db, checklist, lab)
    for item in ws.interview.items:
        if item.kind == "confirm":
            save_answer(db, ws.selfcheck.id, item.id, by=USER, value=Choice.YES)
        elif item.kind == "text":
            save_answer(db, ws.selfcheck.id, item.id, by=USER, value=Choice.TEXT, text="李四")


def test_a_press_reads_the_self_check_its_answers_and_signature_once_inside_its_transaction(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    """The self-check row, every answer and whether it is signed come in one statement,
    read after BEGIN IMMEDIATE (so the write finds what was read); with no other
    self-check of the institution, no earlier campaign's answer is looked up."""
    ensure_user(db, USER, "张三")
    _header_answered(db, checklist, motor_lab)
    conversation = _conversation(db, checklist)
    actor = Actor(USER, motor_lab, "zh_CN", f"test:{USER}")
    outcome = conversation.screen_for(actor)
    conversation.shown(actor, outcome, MESSAGE)
    after, log = _press(conversation, actor, outcome, lambda a: isinstance(a, Choose) and a.choice is Choice.COMPLIANT)
    assert after.notice == "已保存：符合"
    begin = next(n for n, q in enumerate(log) if q.startswith("BEGIN"))
    reads = [n for n, q in enumerate(log) if "FROM selfchecks" in q or "FROM answers" in q or "FROM submissions" in q]
    assert len(reads) == 1 and reads[0] > begin, log
    assert not [q for q in log if "FROM campaigns" in q or "JOIN campaigns" in q], "no earlier self-check to look in"
    assert _commits(log) == 1 and len(log) <= 8, log


def test_a_press_on_a_self_check_signed_meanwhile_is_refused_and_nothing_is_written(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, db_path: object
) -> None:
    """Signed (by another process) after the question was shown: the press's own read of
    the signature, inside its transaction, refuses it."""
    ensure_user(db, USER, "张三")
    _header_answered(db, checklist, motor_lab)
    conversation = _conversation(db, checklist)
    actor = Actor(USER, motor_lab, "zh_CN", f"test:{USER}")
    outcome = conversation.screen_for(actor)
    conversation.shown(actor, outcome, MESSAGE)
    ws = open_workspace(db, checklist, motor_lab)
    answered = len(ws.answers())
    other = open_db(db_path, migrate=False)  # type: ignore[arg-type]
    try:
        pledge_store.create_submission(
            other, selfcheck_id=ws.selfcheck.id, institution_id=motor_lab.id, pledge_id="p", pledge_version="1",
            signer_name="王五", signer_role="负责人", signed_by=USER, code="ABCD2345", seal=lambda _id, _at: "{}",
        )  # fmt: skip
    finally:
        other.close()
    after, _log = _press(conversation, actor, outcome, lambda a: isinstance(a, Choose) and a.choice is Choice.COMPLIANT)
    assert after.alert and after.notice is not None and "已保存" not in after.notice
    assert len(open_workspace(db, checklist, motor_lab).answers()) == answered
    assert counters(db, ws.selfcheck.id) == recount(db, ws.selfcheck.id)


def test_a_transaction_begun_ahead_is_committed_by_the_block_that_takes_it_over(tmp_path: object) -> None:
    """``begin_handed``: the first ``transaction`` block owns the transaction begun ahead
    (one BEGIN, one COMMIT); one nobody took over is ended by ``end_handed``, rolled back
    when the update failed."""
    from pathlib import Path

    from storage.db import begin_handed, current_write, end_handed, transaction

    path = Path(str(tmp_path)) / "handed.db"
    db = open_db(path)
    other = open_db(path, migrate=False)
    try:
        db.execute("CREATE TABLE t (x INTEGER)")
        log: list[str] = []
        db.conn.set_trace_callback(log.append)
        token = begin_handed(db)
        assert token is not None and current_write(db) is token
        assert begin_handed(db) is None  # inside one already: nothing begun
        with transaction(db):
            assert current_write(db) is token  # what was read ahead under it is still valid
            db.execute("INSERT INTO t VALUES (1)")
            with transaction(db):  # a nested block is part of it, as before
                db.execute("INSERT INTO t VALUES (2)")
        assert not db.conn.in_transaction
        end_handed(db, token)  # taken over and ended: nothing more
        db.conn.set_trace_callback(None)
        assert [q.split()[0] for q in log] == ["BEGIN", "INSERT", "INSERT", "COMMIT"]
        assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 2

        token = begin_handed(db)  # nobody takes it over: reads only, committed
        db.execute("SELECT count(*) FROM t").fetchone()
        end_handed(db, token)
        assert not db.conn.in_transaction and current_write(db) is None

        token = begin_handed(db)  # a failed update: what joined it is rolled back
        db.execute("INSERT INTO t VALUES (3)")
        end_handed(db, token, failed=True)
        assert not db.conn.in_transaction
        assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 2

        token = begin_handed(db)  # ended behind its back: the next block begins its own
        db.conn.commit()
        with transaction(db):
            db.execute("INSERT INTO t VALUES (4)")
        end_handed(db, token)
        assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 3
    finally:
        other.close()
        db.close()


def _header_given(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, *, skip_text: bool = False
) -> tuple[Conversation, Actor, Workspace]:
    """A staff member of ``motor_lab`` with the header answered (its typed items left open
    with ``skip_text``): their conversation, actor and workspace."""
    ensure_user(db, USER, "张三")
    conversation = _conversation(db, checklist)
    actor = Actor(USER, motor_lab, "zh_CN", f"test:{USER}")
    ws = open_workspace(db, checklist, motor_lab)
    _answer_header(db, ws, skip_text)
    return conversation, actor, ws


def _answer_header(db: sqlite_utils.Database, ws: object, skip_text: bool = False) -> None:
    for item in ws.interview.items:  # type: ignore[attr-defined]
        if item.kind == "confirm":
            save_answer(db, ws.selfcheck.id, item.id, by=USER, value=Choice.YES)  # type: ignore[attr-defined]
        elif item.kind == "text" and not skip_text:
            save_answer(db, ws.selfcheck.id, item.id, by=USER, value=Choice.TEXT, text="李四")  # type: ignore[attr-defined]


def test_pressing_from_one_button_question_to_the_next_writes_no_state_and_the_state_still_leads_there(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    """The state /start leaves on a button question (``following``) leads to the interview's
    first open item from the kept one on; each press onto the next such question leaves it
    as it is (no write of the conversation), and /start, a typed message and the next press
    all find the question on screen."""
    conversation, actor, ws = _header_given(db, checklist, motor_lab)
    compliance = [i for i in ws.interview.items if i.kind == "compliance"]
    outcome = conversation.screen_for(actor)
    conversation.shown(actor, outcome, MESSAGE)
    compliant = lambda a: isinstance(a, Choose) and a.choice is Choice.COMPLIANT  # noqa: E731
    kept = SQLiteStates(db).load(actor.key)
    assert kept.following and kept.item == compliance[0].id  # /start's state follows the interview already
    after = outcome
    for n in (1, 2, 3):
        after, log = _press(conversation, actor, after, compliant)
        assert after.notice == "已保存：符合" and after.screen is not None and after.screen.item == compliance[n].id
        # BEGIN, the self-check, the state (read with the membership through the dispatcher:
        # tests/test_press_reads.py), the answer, its history, the counters, COMMIT: no write of the state
        assert not any("INTO fsm" in q for q in log) and len(log) == 7, log
        assert _commits(log) == 1
        assert SQLiteStates(db).load(actor.key) == kept  # as it was
    # where the user is, from the state as kept: the question on screen
    again = conversation.screen_for(actor)
    assert again.screen is not None and again.screen.item == compliance[3].id
    typed = conversation.handle(actor, TypeText(text="好的"))
    assert typed.messages and "按钮" in typed.messages[0]  # "answer with the buttons", nothing stored
    assert answer_store.get_answer(db, ws.selfcheck.id, compliance[3].id) is None
    assert counters(db, ws.selfcheck.id) == recount(db, ws.selfcheck.id)


def test_text_typed_while_following_a_question_a_colleague_answered_answers_nothing_it_was_not_asked(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    """A colleague answers every question left after the one on screen; the first open item
    is now a typed one the user skipped (wrapping around). Text typed meanwhile is not taken
    as its answer: the user is shown where they are, and only text typed under that
    question is saved (checked against the revision it showed)."""
    conversation, actor, ws = _header_given(db, checklist, motor_lab, skip_text=True)
    typed_items = [i for i in ws.interview.items if i.kind == "text"]
    assert typed_items
    compliance = [i for i in ws.interview.items if i.kind == "compliance"]
    save_answer(db, ws.selfcheck.id, compliance[0].id, by=USER, value=Choice.COMPLIANT)
    start = Navigate(action=NavAction.OPEN, sc=ws.selfcheck.id, item=compliance[0].id).at(MESSAGE)
    outcome = conversation.handle(actor, start)
    conversation.shown(actor, outcome, MESSAGE)
    compliant = lambda a: isinstance(a, Choose) and a.choice is Choice.COMPLIANT  # noqa: E731
    after, _log = _press(conversation, actor, outcome, compliant)  # rev 1 -> 2, then compliance[1], following
    assert after.screen is not None and after.screen.item == compliance[1].id
    assert SQLiteStates(db).load(actor.key).following
    for item in compliance[1:]:
        save_answer(db, ws.selfcheck.id, item.id, by=USER + 1, value=Choice.COMPLIANT)
    told = conversation.handle(actor, TypeText(text="王五"))
    conversation.shown(actor, told, MESSAGE + 1)
    assert told.messages and told.messages[0] == "这是您当前的自查位置："
    assert told.screen is not None and told.screen.item == typed_items[0].id
    assert answer_store.get_answer(db, ws.selfcheck.id, typed_items[0].id) is None
    state = SQLiteStates(db).load(actor.key)
    assert not state.following and state.item == typed_items[0].id
    saved = conversation.handle(actor, TypeText(text="王五"))
    assert answer_store.get_answer(db, ws.selfcheck.id, typed_items[0].id).text == "王五"
    assert saved.screen is not None


def test_the_press_that_completes_the_self_check_reads_neither_the_self_check_nor_its_signature_again(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    """The last answer completes the self-check: its status is written (and returned by the
    same UPDATE), and the summary knows it is unsigned from the read the press began with."""
    conversation, actor, ws = _header_given(db, checklist, motor_lab)
    compliance = [i for i in ws.interview.items if i.kind == "compliance"]
    for item in compliance[:-1]:
        save_answer(db, ws.selfcheck.id, item.id, by=USER, value=Choice.COMPLIANT)
    outcome = conversation.screen_for(actor)
    assert outcome.screen is not None and outcome.screen.item == compliance[-1].id
    conversation.shown(actor, outcome, MESSAGE)
    after, log = _press(conversation, actor, outcome, lambda a: isinstance(a, Choose) and a.choice is Choice.COMPLIANT)
    assert answer_store.get_selfcheck(db, ws.selfcheck.id).status == "completed"
    assert after.screen is not None and after.screen.item is None  # the summary
    assert _commits(log) == 1
    assert not any("FROM submissions" in q and q.startswith("SELECT") for q in log), log
    assert sum(1 for q in log if "FROM selfchecks" in q) == 1, log  # the step's first read only
    assert counters(db, ws.selfcheck.id) == recount(db, ws.selfcheck.id)


def test_the_press_that_completes_the_interview_sets_the_status_with_the_counters_and_writes_no_state(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    """From /start to the summary with the buttons alone, no press writes the conversation;
    the last one marks the self-check completed in its counters' UPDATE (no statement of its
    own), and the state kept since /start leads to the summary. A colleague's answer that
    opens an item again makes it in progress, with its time of completion cleared."""
    conversation, actor, ws = _header_given(db, checklist, motor_lab)
    outcome = conversation.screen_for(actor)
    conversation.shown(actor, outcome, MESSAGE)
    kept = SQLiteStates(db).load(actor.key)
    compliant = lambda a: isinstance(a, Choose) and a.choice is Choice.COMPLIANT  # noqa: E731
    after, logs = outcome, []
    while after.screen is not None and after.screen.kind == "question":
        after, log = _press(conversation, actor, after, compliant)
        logs.append(log)
    assert after.screen is not None and after.screen.kind == "summary"
    assert len(logs) == len([i for i in ws.interview.items if i.kind == "compliance"])
    # BEGIN, the self-check, the state, the answer, its history, the counters (and status), COMMIT
    assert all(len(log) == 7 and _commits(log) == 1 and not any("INTO fsm" in q for q in log) for log in logs), logs
    assert any("RETURNING" in q for q in logs[-1]) and not any("RETURNING" in q for log in logs[:-1] for q in log)
    assert SQLiteStates(db).load(actor.key) == kept
    done = answer_store.get_selfcheck(db, ws.selfcheck.id)
    assert done is not None and done.status == "completed" and done.completed_at is not None
    assert counters(db, ws.selfcheck.id) == recount(db, ws.selfcheck.id)
    assert conversation.screen_for(actor).screen.kind == "summary"

    # a colleague answers an item 不符合 (its follow-ups open): in progress again
    colleague = open_workspace(db, checklist, motor_lab)
    item = next(i for i in ws.interview.items if i.kind == "compliance")
    colleague.record_choice(item.id, Choice.NONCOMPLIANT, by=USER + 1, expected_rev=1)
    reopened = answer_store.get_selfcheck(db, ws.selfcheck.id)
    assert reopened is not None and reopened.status == "in_progress" and reopened.completed_at is None
    assert colleague.selfcheck == reopened
    again = conversation.screen_for(actor)  # the state leads to the item open now
    assert again.screen is not None and again.screen.item == item.id


def test_a_status_set_with_the_counters_keeps_the_time_a_colleague_completed_it_first(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    ws = open_workspace(db, checklist, motor_lab)
    first, second = [i for i in ws.interview.items if i.kind == "compliance"][:2]
    answer_store.set_selfcheck_status(db, ws.selfcheck.id, "completed")
    completed = answer_store.get_selfcheck(db, ws.selfcheck.id)
    assert completed is not None and completed.completed_at is not None
    seen: list[str] = []

    def settle(answer: object) -> str:
        seen.append(answer.item_id)  # type: ignore[attr-defined]
        return "completed"

    saved, row = answer_store.save_answer_settled(db, ws.selfcheck.id, first.id, by=USER, settle=settle, value=Choice.NA)
    assert seen == [first.id] and saved.value is Choice.NA
    assert row == completed  # the time it was completed first, kept
    saved, row = answer_store.save_answer_settled(
        db, ws.selfcheck.id, second.id, by=USER, settle=lambda a: "in_progress", value=Choice.COMPLIANT
    )
    assert row is not None and row.status == "in_progress" and row.completed_at is None
    assert counters(db, ws.selfcheck.id) == recount(db, ws.selfcheck.id)
    # nothing to settle: the counters alone, no row returned
    assert answer_store.save_answer_settled(db, ws.selfcheck.id, second.id, by=USER, settle=lambda a: None, value=Choice.NA)[1] is None
    assert answer_store.get_selfcheck(db, ws.selfcheck.id).status == "in_progress"
