"""Before and beside the interview, whatever the channel: /start (with or without an invite
code) and /help, joining an institution or a regulator's desk with an invite code (checked,
then confirmed explicitly), choosing the language, and /verify for regulators.

``Conversation.handle`` hands these actions here, from anyone: a newcomer has no
institution yet. Joining keeps the pending code in the conversation state (step
``Join:confirm`` or ``RegulatorJoin:confirm``), so only the confirmation of the code shown
last can bind, and only once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from html import escape
from typing import Any, ClassVar, Protocol

import sqlite_utils

from bot.config import SUPPORTED_LOCALES
from bot.conversation import state as st
from bot.conversation.actions import (
    Action,
    Choose,
    Navigate,
    OpenSection,
    PledgeStep,
    RemoveEvidence,
    Resume,
    SetRect,
    ShowEvidence,
)
from bot.conversation.actor import Actor
from bot.conversation.desk_views import regulator_help_text
from bot.conversation.render import institution_block, role_label, totals_lines
from bot.conversation.screens import Button, Outcome, Screen
from bot.conversation.state import ConversationState, StateStore
from bot.conversation.text import _
from bot.core.invites import normalize_invite_code
from bot.core.locales import format_datetime
from bot.pledge import document as doc
from bot.reports.items import clip
from storage import pledges as pledge_store
from storage.institutions import (
    InviteError,
    InviteProblem,
    bind_member,
    check_invite,
    get_institution,
    set_user_language,
    user_label,
)
from storage.pledges import Submission
from storage.regulators import get_regulator_invite, redeem_regulator_invite
from storage.sendbacks import SendBack, send_back_of


class Conversation(Protocol):
    """What these flows need of the engine (``bot.conversation.engine.Conversation``)."""

    db: sqlite_utils.Database
    settings: Any
    states: StateStore

    def handle(self, actor: Actor, action: Action) -> Outcome: ...

    def resume_from(self, actor: Actor, state: ConversationState) -> Outcome: ...

    def speaking(self, locale: str) -> contextlib.AbstractContextManager[None]: ...

# Step names and data keys are stored (they are the FSM state names Telegram used): never rename one.
JOIN = "Join:confirm"  # a staff invite was checked; its institution is on screen, to confirm
REGULATOR_JOIN = "RegulatorJoin:confirm"  # a regulator invite was checked; its scope is on screen
PENDING_CODE = "join"
PENDING_REGULATOR_CODE = "regjoin"


# --- actions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Start(Action):
    """/start, with an invite code or without (then: where the user is, or who may use Zicha)."""

    kind: ClassVar[str] = "start"
    code: str | None = None


@dataclass(frozen=True)
class ShowHelp(Action):
    kind: ClassVar[str] = "help"


@dataclass(frozen=True)
class Join(Action):
    """The answer to "is this your institution?" under a staff invite."""

    kind: ClassVar[str] = "join"
    confirm: bool = False

    @property
    def button_key(self) -> str:
        return "join:yes" if self.confirm else "join:no"


@dataclass(frozen=True)
class JoinRegulator(Action):
    """The answer to "are you this regulator?" under a regulator invite."""

    kind: ClassVar[str] = "regulator_join"
    confirm: bool = False

    @property
    def button_key(self) -> str:
        return "regulator_join:yes" if self.confirm else "regulator_join:no"


@dataclass(frozen=True)
class AskLanguage(Action):
    """/language: the choice of languages."""

    kind: ClassVar[str] = "language_menu"


@dataclass(frozen=True)
class ChooseLanguage(Action):
    kind: ClassVar[str] = "language"
    locale: str = ""

    @property
    def button_key(self) -> str:
        return f"language:{self.locale}"


@dataclass(frozen=True)
class Verify(Action):
    """/verify CODE: a regulator checks a signed pledge by its verification code."""

    kind: ClassVar[str] = "verify"
    code: str | None = None


@dataclass(frozen=True)
class OtherCommand(Action):
    """A command this conversation does not know: staff see where they are."""

    kind: ClassVar[str] = "other_command"


ACTIONS = (Start, ShowHelp, Join, JoinRegulator, AskLanguage, ChooseLanguage, Verify, OtherCommand)
PRESSES = (Choose, SetRect, Navigate, OpenSection, PledgeStep, ShowEvidence, RemoveEvidence)  # buttons only staff are shown


# --- texts -------------------------------------------------------------------------------


def invite_problem_text(problem: InviteProblem) -> str:
    return {
        InviteProblem.UNKNOWN: _(
            "This invite code is not valid. Please check it, or ask your regulator for a new invite."
        ),
        InviteProblem.REVOKED: _("This invite has been withdrawn. Please ask your regulator for a new one."),
        InviteProblem.USED_UP: _(
            "This invite has already been used by as many staff as it allows. Please ask your regulator for another."
        ),
        InviteProblem.EXPIRED: _("This invite has expired. Please ask your regulator for a new one."),
    }[problem]


def not_invited_text() -> str:
    return _(
        "Zicha guides staff of inspection and testing institutions through the annual self-check "
        "required by their market-regulation authority.\n\n"
        "Only invited staff can use it. Please open the invite link your regulator sent you, or send "
        "/start followed by your invite code, for example:\n<code>/start ABCD-EFGH-JKMN-PQRS-TVWX</code>\n\n"
        "If you have no invite, please ask the authority that supervises your institution."
    )


def help_text() -> str:
    return _(
        "<b>How Zicha works</b>\n"
        "Each self-check item is one question. Answer with the buttons: Compliant, Non-compliant "
        "or Not applicable. For a non-compliant item, describe the problem and the rectification. "
        "Every answer is saved at once; you can stop and continue at any time, and colleagues of "
        "your institution see the same answers.\n\n"
        "/start — continue where you left off\n"
        "/progress — how far your institution has got\n"
        "/review — unanswered and non-compliant items; change any answer\n"
        "/pledge — your signed pledge summary (PDF), once signed\n"
        "/language — 中文 / English\n"
        "/help — this message"
    )


def verify_text(
    submission: Submission, institution: Any, later: Submission | None, signer_user: str, locale: str, tz: Any,
    sent_back: SendBack | None = None, signed_since: bool = False,
) -> str:
    """Who signed what, when, and whether it is still the current submission (``later``:
    the current one when a later signature replaced it; ``sent_back``: the regulator's
    send-back for rework that voided it; ``signed_since``: signed again after it, whether
    or not that signature stands)."""
    document = submission.document
    totals = document["totals"]
    if submission.current:
        state = "✅ " + _("This is the institution's current signed submission.")
    elif sent_back is not None:
        state = "⛔ " + _("Sent back for rework by {who} on {date}: {reason}").format(
            who=escape(sent_back.sent_by_label), date=format_datetime(sent_back.sent_at, locale, tz),
            reason=escape(clip(sent_back.reason, 300)),
        )  # fmt: skip
        if later is not None and later.current:
            state += "\n" + _("Signed again since: the current code is {code}.").format(code=doc.format_code(later.verification_code))
        elif signed_since:
            state += "\n" + _("Signed again since, and that signature was voided too: not signed now.")
        else:
            state += "\n" + _("Not signed again yet.")
    elif later is not None and later.current:
        state = "⛔ " + _("Superseded on {date}: the answers were revised and signed again (current code {code}).").format(
            date=format_datetime(submission.superseded_at or "", locale, tz), code=doc.format_code(later.verification_code)
        )
    else:
        state = "⛔ " + _("Superseded on {date}: the answers were revised and have not been signed again yet.").format(
            date=format_datetime(submission.superseded_at or "", locale, tz)
        )
    lines = [
        "<b>" + _("Signed pledge {code}").format(code=doc.format_code(submission.verification_code)) + "</b>",
        state,
        "",
        _("Institution: {name}").format(name=f"<b>{escape(institution.name)}</b>"),
        _("Unified social credit code: {uscc}").format(uscc=f"<code>{escape(institution.uscc)}</code>"),
        _("Signer: {name}").format(name=escape(submission.signer_name)) + " · " + escape(role_label(submission.signer_role)),
        _("Signed on {date}, confirmed in Telegram by {user}").format(
            date=format_datetime(submission.signed_at, locale, tz), user=escape(signer_user)
        ),
        _("Self-check table ID: {id}; version: {version}; pledge version: {pledge_version}").format(
            id=escape(document["checklist"]["id"]), version=escape(document["checklist"]["version"]),
            pledge_version=escape(submission.pledge_version),
        ),
        "",
        *totals_lines(totals, locale),
        "",
        _("SHA-256: {sha}").format(sha=f"<code>{submission.sha256}</code>"),
    ]  # fmt: skip
    return "\n".join(lines)


def note(kind: str, text: str) -> Screen:
    """A screen of text alone."""
    return Screen(kind, (text,))


def language_screen() -> Screen:
    buttons = (Button("中文", ChooseLanguage(locale="zh_CN")), Button("English", ChooseLanguage(locale="en")))
    return Screen("language", (_("Choose your language:"),), (buttons,))


# --- the flows -----------------------------------------------------------------------------


class Onboarding:
    """One action of someone who may not be staff (yet)."""

    def __init__(self, conversation: Conversation, actor: Actor) -> None:
        self.c = conversation
        self.actor = actor
        self.state: ConversationState = conversation.states.load(actor.key)

    def stranger(self) -> Outcome:
        """Typed to Zicha by someone who is not staff: who may use it (a regulator: their commands)."""
        return Outcome(note("help", regulator_help_text() if self.actor.regulator is not None else not_invited_text()))

    def start(self, action: Start) -> Outcome:
        if (action.code or "").strip():
            return self.invite(action.code or "")
        if self.actor.institution is None:
            return self.stranger()
        return self.c.handle(self.actor, Resume())

    def help(self) -> Outcome:
        return Outcome(note("help", help_text())) if self.actor.institution is not None else self.stranger()

    def invite(self, text: str) -> Outcome:
        """/start CODE: the institution (or the regulator's scope) the code admits to, to confirm."""
        code = normalize_invite_code(text)
        if code is None:
            return Outcome(note("invite", invite_problem_text(InviteProblem.UNKNOWN)))
        # Regulator invites share the code format; their scope is confirmed first.
        regulator_invite = get_regulator_invite(self.c.db, code)
        if regulator_invite is not None:
            if regulator_invite.problem is not None:
                return Outcome(note("invite", invite_problem_text(regulator_invite.problem)))
            text = _(
                "This is a <b>regulator</b> invite. It gives access to the self-check status of the institutions in:\n"
                "<b>{scope}</b>\n\nAccept it only if you work for this authority."
            ).format(scope=escape(regulator_invite.scope.describe(self.actor.locale)))
            rows = ((Button(_("Yes, I am this regulator"), JoinRegulator(confirm=True)),), (Button(_("No"), JoinRegulator(confirm=False)),))
            state = self.state.moved(REGULATOR_JOIN, **{PENDING_REGULATOR_CODE: code})
            return Outcome(Screen("regulator_invite", (text,), rows), state=state)
        try:
            invited = check_invite(self.c.db, code)
        except InviteError as exc:
            return Outcome(note("invite", invite_problem_text(exc.problem)))
        institution = self.actor.institution
        if institution is not None and institution.id == invited.id:
            already = _("You are already registered for {name}.").format(name=escape(invited.name))
            where = self.c.handle(self.actor, Resume())
            return replace(where, messages=[already, *where.messages])
        text = "\n\n".join((
            _("This invite is for the following institution:"),
            institution_block(invited, self.actor.locale),
            _("Do you work for this institution and will you answer its self-check on its behalf?"),
        ))  # fmt: skip
        rows = ((Button(_("Yes, that is my institution"), Join(confirm=True)),), (Button(_("No"), Join(confirm=False)),))
        return Outcome(Screen("invite", (text,), rows), state=self.state.moved(JOIN, **{PENDING_CODE: code}))

    def join(self, action: Join) -> Outcome:
        code = self.state.data.get(PENDING_CODE)
        if self.state.step != JOIN or not isinstance(code, str):
            return Outcome(notice=_("This button is no longer valid."))
        pending = self.state.moved(JOIN, **{PENDING_CODE: None})
        if not action.confirm:
            told = _("Nothing was changed. If the invite was meant for you, ask your regulator to check it.")
            return Outcome(note("invite", told), state=ConversationState(None, pending.data))
        actor = self.actor
        try:
            institution = bind_member(self.c.db, actor.user_id, code, actor.first_name, actor.username)
        except InviteError as exc:
            return Outcome(note("invite", invite_problem_text(exc.problem)), state=ConversationState(None, pending.data))
        welcome = _("You are now registered for {name}. Let's start the self-check.").format(name=escape(institution.name))
        joined = pending.moved(JOIN, **{st.ITEM: None})
        then = self.c.resume_from(replace(actor, institution=institution), joined)
        return Outcome(note("joined", welcome), notice=_("Welcome!"), state=joined, then=then)

    def join_regulator(self, action: JoinRegulator) -> Outcome:
        code = self.state.data.get(PENDING_REGULATOR_CODE)
        if self.state.step != REGULATOR_JOIN or not isinstance(code, str):
            return Outcome(notice=_("This button is no longer valid."))
        state = ConversationState(None, {**self.state.data, PENDING_REGULATOR_CODE: None})
        if not action.confirm:
            return Outcome(note("regulator_invite", _("Nothing was changed.")), state=state)
        regulator = redeem_regulator_invite(self.c.db, code, self.actor.user_id)
        if regulator is None:
            return Outcome(note("regulator_invite", _("This invite can no longer be used. Please ask for a new one.")), state=state)
        text = _("You are now a regulator for {scope}.").format(scope=escape(regulator.scope.describe(self.actor.locale)))
        return Outcome(note("regulator_joined", text + "\n\n" + regulator_help_text()), notice=_("Welcome!"), state=state)

    def choose_language(self, action: ChooseLanguage) -> Outcome:
        """Keep the language, then show the screen the user was on again, in that language."""
        locale = action.locale
        if locale not in SUPPORTED_LOCALES:
            return Outcome(notice=_("This button is no longer valid."))
        set_user_language(self.c.db, self.actor.user_id, locale, self.actor.first_name)
        actor = replace(self.actor, locale=locale)
        with self.c.speaking(locale):
            text = _("Language set to English.") if locale == "en" else _("Language set to Chinese.")
            if actor.institution is None:
                return Outcome(note("language", text + "\n" + _("Send /start to continue.")), notice=text)
            then = self.c.handle(actor, Resume(again=True, signing=True))
            return Outcome(note("language", text), notice=text, then=then)

    def verify(self, action: Verify) -> Outcome:
        """Who signed what, when, and whether it is still current — for a regulator whose
        scope covers the institution (any other code reads as unknown)."""
        regulator = self.actor.regulator
        if regulator is None:
            return Outcome(note("verify", _("Only regulator accounts can verify signed pledges.")))
        code = doc.normalize_code(action.code)
        if code is None:
            return Outcome(note("verify", _("Send /verify followed by the verification code printed on the pledge, for example: /verify ABCDE-12345")))
        db = self.c.db
        submission = pledge_store.submission_by_code(db, code)
        institution = get_institution(db, submission.institution_id) if submission is not None else None
        if submission is None or institution is None or not regulator.scope.covers(institution.province, institution.fields):
            return Outcome(note("verify", _("No signed pledge with the code {code} within your scope.").format(code=doc.format_code(code))))
        known = user_label(db, submission.signed_by)
        who = known if known is not None else submission.document["signed_by"]["name"]
        who += f" (Telegram ID {submission.signed_by})"
        later = pledge_store.later_submission(db, submission)
        current_later = pledge_store.current_submission(db, submission.selfcheck_id) if later is not None else None
        sent_back = send_back_of(db, submission.id) if not submission.current else None
        text = verify_text(
            submission, institution, current_later, who, self.actor.locale, self.c.settings.tz, sent_back, signed_since=later is not None
        )  # fmt: skip
        return Outcome(note("verify", text))


def handle(conversation: Conversation, actor: Actor, action: Action) -> Outcome:
    """An onboarding action (``ACTIONS``), or any other from someone who is not staff."""
    flow = Onboarding(conversation, actor)
    if isinstance(action, Start):
        return flow.start(action)
    if isinstance(action, ShowHelp):
        return flow.help()
    if isinstance(action, Join):
        return flow.join(action)
    if isinstance(action, JoinRegulator):
        return flow.join_regulator(action)
    if isinstance(action, AskLanguage):
        return Outcome(language_screen())
    if isinstance(action, ChooseLanguage):
        return flow.choose_language(action)
    if isinstance(action, Verify):
        return flow.verify(action)
    if isinstance(action, OtherCommand) and actor.institution is not None:
        where = conversation.handle(actor, Resume(again=True))
        return replace(where, messages=[_("Here is where you are in the self-check:"), *where.messages])
    if isinstance(action, PRESSES):  # a staff button pressed by someone who is not (any more) staff
        return Outcome(notice=_("Only invited staff can use these buttons. Send /start for help."), alert=True)
    return flow.stranger()
