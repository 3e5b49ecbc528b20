"""The conversation engine with no channel at all: a whole self-check (non-compliant items
with follow-ups and evidence, a text item, a confirm item corrected), stale and forged
presses, a signed self-check that refuses changes, and the state surviving a new engine."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest
import sqlite_utils

from bot.config import load_settings
from bot.conversation.actions import (
    Choose,
    NavAction,
    Navigate,
    OpenSection,
    PledgeAction,
    PledgeStep,
    Resume,
    SendFile,
    SetRect,
    TypeText,
    from_fields,
)
from bot.conversation.engine import Actor, Conversation
from bot.conversation.screens import Expect, Outcome, Screen
from bot.core.checklist import Checklist
from bot.core.interview import Choice, RectStatus
from bot.i18n import build_i18n
from bot.pledge.submit import sign
from storage import answers as answer_store
from storage.conversations import SQLiteStates
from storage.institutions import Institution, ensure_user

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
USER = 5151
NOW = dt.datetime(2023, 10, 9, 10, 0, tzinfo=TZ)


class Channel:
    """The least a channel does: keep the live screen's token and pass it back with presses."""

    def __init__(self, conversation: Conversation, actor: Actor) -> None:
        self.conversation = conversation
        self.actor = actor
        self.token = 0
        self.screen: Screen | None = None
        self.notices: list[str] = []
        self.messages: list[str] = []

    def show(self, outcome: Outcome) -> Outcome:
        if outcome.notice:
            self.notices.append(outcome.notice)
        self.messages += outcome.messages
        if outcome.screen is not None:
            self.token += 1
            self.screen = outcome.screen
        self.conversation.shown(self.actor, outcome, self.token)
        return outcome

    def do(self, action: object) -> Outcome:
        return self.show(self.conversation.handle(self.actor, action.at(self.token)))  # type: ignore[attr-defined]

    def key(self, key: str) -> Outcome:
        assert self.screen is not None
        button = self.screen.button(key)
        assert button is not None, [b.key for b in self.screen.buttons()]
        return self.do(button.action)

    def press(self, predicate: object) -> Outcome:
        assert self.screen is not None
        matches = [b.action for b in self.screen.buttons() if predicate(b.action)]  # type: ignore[operator]
        assert matches, [b.label for b in self.screen.buttons()]
        return self.do(matches[0])


def choose(choice: Choice) -> object:
    return lambda a: isinstance(a, Choose) and a.choice is choice


def build(db: sqlite_utils.Database, checklist: Checklist, institution: Institution, locale: str = "zh_CN") -> Channel:
    conversation = Conversation(
        db=db, checklist=checklist, settings=load_settings(_env_file=None), clock=lambda: NOW,
        states=SQLiteStates(db), catalog=build_i18n("zh_CN"),
    )  # fmt: skip
    ensure_user(db, USER, "张三")
    return Channel(conversation, Actor(USER, institution, locale, f"test:{USER}"))


@pytest.fixture
def channel(db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution) -> Channel:
    return build(db, checklist, motor_lab)


def test_a_whole_self_check_with_follow_ups_evidence_and_a_correction(channel: Channel, db: sqlite_utils.Database) -> None:
    ws = channel.conversation.workspace(channel.actor.institution)  # type: ignore[arg-type]
    compliance = [i.id for i in ws.interview.items if i.kind == "compliance"]
    open_one, done_one = compliance[0], compliance[2]
    channel.show(channel.conversation.screen_for(channel.actor))
    for _ in range(200):
        screen = channel.screen
        assert screen is not None
        if screen.kind == "summary":
            break
        if screen.kind == "question":
            item = ws.checklist.item(screen.item or "")
            if item.kind == "text":
                assert screen.expects is Expect.TEXT
                channel.do(TypeText(text="13812345678" if item.pattern else "王五"))
            elif item.kind == "confirm":
                outcome = channel.press(choose(Choice.NO))
                assert outcome.notice == "已保存：否，需要更正"
            elif item.id in (open_one, done_one):
                channel.press(choose(Choice.NONCOMPLIANT))
            else:
                channel.press(choose(Choice.COMPLIANT))
        elif screen.kind == "followup:problem":
            assert screen.expects is Expect.TEXT_OR_FILE
            evidence = SendFile(file_kind="photo", ref="f1", unique_ref="u1", mime_type="image/jpeg", file_size=1000)
            channel.do(evidence)
            assert "保存证明材料（目前共 1 份）" in channel.messages[-1] and channel.screen.kind == "followup:problem"
            channel.do(TypeText(text="记录<缺失> & 未归档"))
        elif screen.kind == "followup:measure":
            channel.do(TypeText(text="补充记录"))
        elif screen.kind == "followup:status":
            status = RectStatus.IN_PROGRESS if screen.item == open_one else RectStatus.DONE
            channel.press(lambda a, s=status: isinstance(a, SetRect) and a.status is s)
        elif screen.kind == "followup:target_date":
            channel.do(TypeText(text="昨天"))  # not a date: told why, asked again, nothing lost
            assert channel.screen.kind == "followup:target_date"
            channel.do(TypeText(text="2023-11-30"))
        elif screen.kind == "followup:correction":
            channel.do(TypeText(text="名称应为 <某某> 检测站"))
            assert "&lt;某某&gt;" in channel.messages[-1]  # typed text is escaped
        else:
            raise AssertionError(screen.kind)
    summary = channel.screen
    assert summary is not None and summary.kind == "summary"
    assert any(isinstance(b.action, PledgeStep) for b in summary.buttons())  # "sign the pledge" is offered
    assert "自查已完成" in summary.text and "不符合：2" in summary.text
    stored = answer_store.load_answers(db, ws.selfcheck.id)
    assert len(stored) == ws.interview.total and all(a.is_complete for a in stored.values())
    assert stored[open_one].rect_status is RectStatus.IN_PROGRESS and stored[open_one].target_date == dt.date(2023, 11, 30)
    assert stored[open_one].problem == "记录<缺失> & 未归档"
    assert stored[done_one].rect_status is RectStatus.DONE
    assert len(answer_store.evidence_for(db, ws.selfcheck.id, open_one)) == 1
    assert answer_store.get_selfcheck(db, ws.selfcheck.id).status == "completed"


def test_old_screens_other_institutions_and_changed_checklists_are_refused(channel: Channel, db: sqlite_utils.Database) -> None:
    channel.show(channel.conversation.screen_for(channel.actor))
    first = channel.screen
    assert first is not None and first.item is not None
    yes = next(b.action for b in first.buttons() if isinstance(b.action, Choose))
    stale = channel.conversation.handle(channel.actor, yes.at(channel.token - 1))  # a press on an older screen
    assert stale.notice == "此消息已过期，请使用下方最新的问题。" and stale.screen is None
    foreign = channel.conversation.handle(channel.actor, Navigate(action=NavAction.TOC, sc=999, origin=channel.token))
    assert foreign.alert and foreign.screen is None
    forged = channel.conversation.handle(channel.actor, OpenSection(sc=yes.sc, section="nope", origin=channel.token))
    assert forged.notice is not None and forged.screen is None
    assert answer_store.load_answers(db, yes.sc) == {}  # none of them wrote anything
    outsider = Actor(USER + 1, None, "zh_CN", "test:outsider")
    assert channel.conversation.handle(outsider, yes).alert


def test_a_signed_self_check_is_read_only_and_a_restart_resumes_the_follow_up(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    channel = build(db, checklist, motor_lab)
    channel.show(channel.conversation.screen_for(channel.actor))
    ws = channel.conversation.workspace(motor_lab)
    first_compliance = next(i for i in ws.interview.items if i.kind == "compliance")
    channel.do(Navigate(action=NavAction.OPEN, sc=ws.selfcheck.id, item=first_compliance.id))
    channel.press(choose(Choice.NONCOMPLIANT))
    assert channel.screen is not None and channel.screen.kind == "followup:problem"
    # A new engine (a restart) finds the conversation where it was.
    again = build(db, checklist, motor_lab)
    resumed = again.conversation.screen_for(again.actor)
    assert resumed.screen is not None and resumed.screen.kind == "followup:problem"
    # Web-form round trip of an action.
    action = next(b.action for b in resumed.screen.buttons())
    assert from_fields(action.to_fields(), origin=5) == action.at(5)
    # Signed: every change is refused with the signature's date and code, nothing written.
    from tests.pledge_support import fill

    signed_ws = fill(db, checklist, motor_lab, by=USER, leave=0)
    submission = sign(signed_ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=USER, by_name="t")
    channel.show(channel.conversation.handle(channel.actor, Resume()))
    assert channel.screen is not None and channel.screen.kind == "summary"
    assert any(isinstance(b.action, PledgeStep) and b.action.sub == submission.id for b in channel.screen.buttons())
    before = answer_store.load_answers(db, ws.selfcheck.id)
    channel.do(Navigate(action=NavAction.OPEN, sc=ws.selfcheck.id, item=first_compliance.id))
    outcome = channel.press(choose(Choice.COMPLIANT))
    assert outcome.alert and submission.verification_code[:5] in (outcome.notice or "").replace("-", "") and "答案已锁定" in (outcome.notice or "") and channel.screen.kind == "summary"
    assert answer_store.load_answers(db, ws.selfcheck.id) == before


def test_a_pledge_signed_revised_and_signed_again_with_no_channel(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, tmp_path: Path
) -> None:
    from tests.pledge_support import fill

    fill(db, checklist, motor_lab, by=USER, leave=0)
    channel = build(db, checklist, motor_lab)
    channel.conversation.settings = load_settings(_env_file=None, zicha_db=tmp_path / "zicha.db")
    channel.show(channel.conversation.screen_for(channel.actor))
    assert channel.screen is not None and channel.screen.kind == "summary"
    channel.key("pledge:start")
    assert channel.screen.kind == "pledge:name" and channel.screen.expects is Expect.TEXT
    channel.do(TypeText(text="   "))  # no name: asked again, the step stays
    assert channel.messages[-1] == "请以文字输入签署人姓名。" and channel.screen.kind == "pledge:name"
    channel.do(TypeText(text="张<三>"))
    assert channel.screen.kind == "pledge:role" and "张&lt;三&gt;" in channel.screen.text
    role = next(b.action for b in channel.screen.buttons() if isinstance(b.action, PledgeStep) and b.action.role)
    stale = channel.conversation.handle(channel.actor, role.at(channel.token - 1))  # an older screen's button
    assert stale.notice == "此按钮已失效。" and stale.screen is None
    channel.do(role)
    assert channel.screen.kind == "pledge:confirm"
    outcome = channel.press(lambda a: isinstance(a, PledgeStep) and a.action.value == "sign")
    assert outcome.notice == "已签署。" and channel.screen.kind == "pledge:signed"
    first = outcome.pdf
    assert first is not None and first.signer_name == "张<三>" and first.current
    # Revise: the signature is voided, the answers open again, the review is shown.
    channel.press(lambda a: isinstance(a, PledgeStep) and a.action.value == "rev")
    assert channel.screen.kind == "pledge:revise"
    outcome = channel.press(lambda a: isinstance(a, PledgeStep) and a.action.value == "revok")
    assert channel.screen.kind == "review" and "作废" in (outcome.notice or "")
    from storage import pledges as pledge_store

    assert pledge_store.get_submission(db, first.id).current is False
    ws = channel.conversation.workspace(motor_lab)
    assert ws.submission() is None
    # An answer can change now; then the pledge is signed again, as a new submission.
    item = next(i for i in ws.interview.items if i.kind == "compliance" and ws.answer(i.id).value is Choice.COMPLIANT)
    channel.do(Navigate(action=NavAction.OPEN, sc=ws.selfcheck.id, item=item.id))
    channel.press(lambda a: isinstance(a, Choose) and a.choice is Choice.NA) if item.allow_na else channel.press(choose(Choice.COMPLIANT))
    channel.do(PledgeStep(action=PledgeAction.START, sc=ws.selfcheck.id))
    channel.do(TypeText(text="李四"))
    channel.key("pledge:role:top_manager")
    outcome = channel.press(lambda a: isinstance(a, PledgeStep) and a.action.value == "sign")
    second = outcome.pdf
    assert second is not None and second.id != first.id and second.signer_role == "top_manager"
    assert channel.conversation.workspace(motor_lab).submission() == second


async def test_the_paper_pledge_is_fetched_only_within_the_limits_and_kept(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    from storage import pledges as pledge_store
    from tests.pledge_support import fill

    channel = build(db, checklist, motor_lab)
    file = SendFile(ref="scan", unique_ref="u-scan", file_name="承诺书.pdf", mime_type="application/pdf", file_size=2000)
    fetched: list[str] = []

    async def fetch() -> bytes:
        fetched.append(file.ref)
        return b"%PDF-1.4 scan"

    unsigned = await channel.conversation.receive_paper(channel.actor, file, fetch)
    assert "未签署" in unsigned.messages[0] and fetched == []
    ws = fill(db, checklist, motor_lab, by=USER, leave=0)
    submission = sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=USER, by_name="t")
    huge = SendFile(ref="big", unique_ref="u-big", file_size=21 * 1024 * 1024)
    refused = await channel.conversation.receive_paper(channel.actor, huge, fetch)
    assert "20 MB" in refused.messages[0] and fetched == []  # refused before fetching anything

    async def not_delivered() -> str:
        return "the channel could not fetch it"

    failed = await channel.conversation.receive_paper(channel.actor, file, not_delivered)
    assert failed.messages == ["the channel could not fetch it"]
    kept = await channel.conversation.receive_paper(channel.actor, file, fetch)
    assert fetched == ["scan"] and "（目前共 1 个文件）" in kept.messages[0]
    assert len(pledge_store.paper_pledges(db, submission.id)) == 1


def test_the_engine_steps_are_the_stored_state_names_of_older_conversations() -> None:
    """Rows written before the engine (aiogram FSM states) resume under the engine."""
    from bot.conversation import state as st
    from bot.telegram.routers.pledge import Signing
    from bot.telegram.states import Interview

    assert [s.state for s in (Interview.question, Interview.problem, Interview.measure, Interview.status,
                              Interview.target_date, Interview.correction)] == list(st.INTERVIEW_STEPS)  # fmt: skip
    assert [s.state for s in (Signing.name, Signing.role, Signing.confirm, Signing.signed)] == list(st.SIGNING_STEPS)


def test_a_regulator_session_with_no_channel(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, food_lab: Institution
) -> None:
    """/status, then /overdue after the deadline, page by page, for a national regulator;
    a provincial one sees only their province; someone with no account is refused."""
    from bot.conversation.actions import ShowOverdue, ShowStatus
    from bot.core.scope import Scope
    from storage.institutions import upsert_institutions
    from storage.regulators import add_regulator
    from tests.conftest import roster_row
    from tests.pledge_support import fill

    upsert_institutions(db, [roster_row(f"检测中心{n}", 10 + n, ("food",), province="广东") for n in range(20)])
    fill(db, checklist, motor_lab, by=USER, leave=0)  # finished, not signed
    after = dt.datetime(2023, 11, 1, 9, 0, tzinfo=TZ)
    conversation = Conversation(
        db=db, checklist=checklist, settings=load_settings(_env_file=None), clock=lambda: after,
        states=SQLiteStates(db), catalog=build_i18n("zh_CN"),
    )  # fmt: skip
    national = Actor(77, None, "zh_CN", "test:77", regulator=add_regulator(db, 77, Scope.parse("national")))
    status = conversation.handle(national, ShowStatus()).screen
    assert status is not None and "机构数：22" in status.text and "已完成未签署：1" in status.text and "逾期：22" in status.text
    first = conversation.handle(national, ShowOverdue()).screen
    assert first is not None and "第 1/2 页" in first.text and [b.key for b in first.buttons()] == ["overdue:1"]
    second = conversation.handle(national, first.buttons()[0].action).screen
    assert second is not None and "第 2/2 页" in second.text
    assert conversation.handle(national, ShowOverdue(page=10_000)).screen.text == second.text
    guangdong = Actor(78, None, "zh_CN", "test:78", regulator=add_regulator(db, 78, Scope.parse("广东")))
    assert "机构数：21" in conversation.handle(guangdong, ShowStatus()).screen.text
    assert conversation.handle(Actor(79, motor_lab, "zh_CN", "test:79"), ShowStatus()).screen is None
