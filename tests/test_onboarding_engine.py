"""Onboarding with no channel at all: /start with and without an invite code, joining an
institution (confirmed, declined, a stale confirmation, a used-up code, already a member),
joining as a regulator, /help, the language (the step the user is on shown again in it),
and /verify — driven through ``Conversation.handle`` as any channel drives it."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import sqlite_utils

from bot.config import load_settings
from bot.conversation import onboarding as ob
from bot.conversation import state as st
from bot.conversation.actions import Action, TypeText
from bot.conversation.engine import Actor, Conversation
from bot.conversation.screens import Outcome, Screen
from bot.core.checklist import Checklist
from bot.core.scope import Scope
from bot.i18n import build_i18n
from bot.pledge import document as doc
from storage.conversations import SQLiteStates
from storage.institutions import Institution, create_invite, get_membership, get_user_language
from storage.regulators import add_regulator, create_regulator_invite, get_regulator

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2023, 10, 9, 10, 0, tzinfo=TZ)


def engine(db: sqlite_utils.Database, tmp_path: Path | None = None) -> Conversation:
    settings = load_settings(_env_file=None, **({"zicha_db": tmp_path / "zicha.db"} if tmp_path else {}))
    return Conversation(
        db=db, checklist=_checklist(), settings=settings, clock=lambda: NOW, states=SQLiteStates(db),
        catalog=build_i18n("zh_CN"),
    )  # fmt: skip


def _checklist() -> Checklist:
    from bot.core.checklist import load_checklist
    from tests.conftest import SHIPPED_CHECKLIST

    return load_checklist(SHIPPED_CHECKLIST)


class Person:
    """A channel at its simplest: who the user is is read again for every action (as the
    Telegram middleware and the console do), screens get tokens, ``then`` is shown after."""

    def __init__(self, conversation: Conversation, user_id: int, locale: str = "zh_CN") -> None:
        self.c = conversation
        self.user_id = user_id
        self.locale = locale
        self.token = 0
        self.screens: list[Screen] = []
        self.notices: list[str] = []
        self.messages: list[str] = []

    @property
    def actor(self) -> Actor:
        db = self.c.db
        return Actor(self.user_id, get_membership(db, self.user_id), self.locale, f"test:{self.user_id}",
                     f"User {self.user_id}", get_regulator(db, self.user_id), f"User {self.user_id}")  # fmt: skip

    @property
    def screen(self) -> Screen:
        return self.screens[-1]

    def do(self, action: Action) -> Outcome:
        actor = self.actor
        outcome = self.c.handle(actor, action.at(self.token))
        self.show(outcome, actor)
        return outcome

    def show(self, outcome: Outcome, actor: Actor) -> None:
        if outcome.notice:
            self.notices.append(outcome.notice)
        self.messages += outcome.messages
        if outcome.screen is not None:
            self.token += 1
            self.screens.append(outcome.screen)
            self.c.shown(actor, outcome, self.token)
        if outcome.then is not None:
            self.show(outcome.then, actor)

    def key(self, key: str) -> Outcome:
        button = self.screen.button(key)
        assert button is not None, [b.key for b in self.screen.buttons()]
        return self.do(button.action)


def test_joining_with_an_invite_code(db: sqlite_utils.Database, motor_lab: Institution) -> None:
    conversation = engine(db)
    code = create_invite(db, motor_lab.id, max_uses=1)
    newcomer = Person(conversation, 4001)
    newcomer.do(ob.Start())
    assert "仅供受邀人员使用" in newcomer.screen.text and newcomer.screen.buttons() == []
    newcomer.do(TypeText(text="你好"))  # typed by someone who is not staff: the same explanation
    assert "仅供受邀人员使用" in newcomer.screen.text
    newcomer.do(ob.Start(code="not a code"))
    assert newcomer.screen.text == "邀请码无效。请核对，或向监管部门申请新的邀请。"
    # The code shows the institution (escaped), and nothing is bound before the explicit yes.
    newcomer.do(ob.Start(code=code.lower()))
    assert "机动车检测站有限公司" in newcomer.screen.text and [b.key for b in newcomer.screen.buttons()] == ["join:yes", "join:no"]
    assert get_membership(db, 4001) is None
    newcomer.key("join:no")
    assert newcomer.screen.text.startswith("未做任何更改") and get_membership(db, 4001) is None
    assert conversation.states.load("test:4001").step is None
    stale = conversation.handle(newcomer.actor, ob.Join(confirm=True))  # the old screen's yes
    assert stale.notice == "此按钮已失效。" and get_membership(db, 4001) is None
    newcomer.do(ob.Start(code=code))
    outcome = newcomer.key("join:yes")
    assert outcome.notice == "欢迎！" and "您已登记为 机动车检测站有限公司 的工作人员" in outcome.screen.text
    assert newcomer.screen.kind == "question" and "第 1/" in newcomer.screen.text  # then: the first item
    member = get_membership(db, 4001)
    assert member is not None and member.id == motor_lab.id
    kept = conversation.states.load("test:4001")
    assert kept.step == st.QUESTION and kept.data.get(ob.PENDING_CODE) is None and kept.live == newcomer.token
    # The code is spent; its holder is told so, and someone already bound sees where they are.
    other = Person(conversation, 4002)
    other.do(ob.Start(code=code))
    assert other.screen.text == "该邀请码的使用人数已满。请向监管部门申请新的邀请码。" and get_membership(db, 4002) is None
    newcomer.do(ob.Start(code=create_invite(db, motor_lab.id)))
    assert newcomer.messages[-1] == "您已经是 机动车检测站有限公司 的登记人员。" and newcomer.screen.kind == "question"
    newcomer.do(ob.ShowHelp())
    assert "/progress" in newcomer.screen.text


def test_joining_as_a_regulator_and_their_help(db: sqlite_utils.Database) -> None:
    conversation = engine(db)
    code = create_regulator_invite(db, Scope.parse("广东"))
    person = Person(conversation, 4101)
    person.do(ob.Start(code=code))
    assert "监管部门" in person.screen.text and "广东" in person.screen.text
    person.key("regulator_join:no")
    assert person.screen.text == "未作任何更改。" and get_regulator(db, 4101) is None
    assert conversation.handle(person.actor, ob.JoinRegulator(confirm=True)).notice == "此按钮已失效。"
    person.do(ob.Start(code=code))
    outcome = person.key("regulator_join:yes")
    regulator = get_regulator(db, 4101)
    assert outcome.notice == "欢迎！" and regulator is not None and regulator.scope.describe("zh_CN") == "广东"
    assert "/status" in person.screen.text
    for action in (ob.Start(), ob.ShowHelp(), TypeText(text="hello"), ob.OtherCommand()):
        person.do(action)
        assert person.screen.text.startswith("<b>自查助手（监管人员）</b>"), action


def test_the_language_is_kept_and_the_step_the_user_is_on_is_shown_again_in_it(
    db: sqlite_utils.Database, motor_lab: Institution, tmp_path: Path
) -> None:
    from tests.pledge_support import fill

    conversation = engine(db, tmp_path)
    fill(db, conversation.checklist, motor_lab, by=4201, leave=0)
    create = create_invite(db, motor_lab.id)
    staff = Person(conversation, 4201)
    staff.do(ob.Start(code=create))
    staff.key("join:yes")
    staff.key("pledge:start")
    staff.do(TypeText(text="张三"))
    assert staff.screen.kind == "pledge:role"
    staff.do(ob.AskLanguage())
    assert [b.key for b in staff.screen.buttons()] == ["language:zh_CN", "language:en"]
    refused = staff.do(ob.ChooseLanguage(locale="fr"))
    assert refused.notice == "此按钮已失效。" and get_user_language(db, 4201) is None
    outcome = staff.key("language:en")
    assert outcome.notice == "Language set to English." and get_user_language(db, 4201) == "en"
    assert staff.screens[-2].text == "Language set to English."
    assert staff.screen.kind == "pledge:role" and "张三" in staff.screen.text and "In which capacity" in staff.screen.text
    assert conversation.states.load("test:4201").step == st.SIGN_ROLE
    # Someone who is not staff is told to send /start, in the new language.
    stranger = Person(conversation, 4202)
    stranger.do(ob.AskLanguage())
    assert stranger.key("language:en").then is None
    assert stranger.screen.text == "Language set to English.\nSend /start to continue."


def test_verifying_a_signed_pledge_by_its_code(db: sqlite_utils.Database, motor_lab: Institution, tmp_path: Path) -> None:
    from bot.pledge.submit import sign
    from tests.pledge_support import fill

    conversation = engine(db, tmp_path)
    ws = fill(db, conversation.checklist, motor_lab, by=4301, leave=0)
    submission = sign(ws, locale="zh_CN", signer_name="张<三>", signer_role="legal_representative", by=4301, by_name="张三")
    code = doc.format_code(submission.verification_code)
    staff = Person(conversation, 4301)
    staff.do(ob.Verify(code=code))
    assert staff.screen.text == "只有监管部门账号可以核验已签署的承诺书。"
    add_regulator(db, 4302, Scope.parse("national"))
    national = Person(conversation, 4302)
    national.do(ob.Verify())
    assert national.screen.text.startswith("请发送 /verify 加承诺书上印的核验码")
    national.do(ob.Verify(code=code.lower()))
    text = national.screen.text
    assert f"已签署的承诺书（核验码 {code}）" in text and "✅" in text and "张&lt;三&gt;" in text and "机动车检测站有限公司" in text
    add_regulator(db, 4303, Scope.parse("广东"))  # the motor lab is in 北京: out of scope reads as unknown
    guangdong = Person(conversation, 4303)
    guangdong.do(ob.Verify(code=code))
    assert guangdong.screen.text == f"在您的监管范围内没有核验码为 {code} 的已签署承诺书。"
