"""The conversation: which screen follows which action, and what is allowed.

``Conversation`` is built once per deployment (database, checklist, clock, settings,
translations, where states are kept). A channel turns what the user did into an
``Action``, calls ``handle(actor, action)``, shows the ``Outcome`` and then calls
``shown(actor, outcome, token)`` so the state (and the token of the live screen) is kept —
one write per shown screen. The guards live here, once, for every channel:

* membership: an actor with no institution is refused (``Actor.institution``);
* scope: a button naming another self-check or an item that does not apply;
* staleness: a checklist that changed (fingerprint), a press on an old screen (origin),
  a revision that moved on (a colleague saved meanwhile);
* frozen: a signed self-check is read-only until revised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import sqlite_utils

from bot.conversation import render
from bot.conversation import state as st
from bot.conversation.actions import (
    Action,
    Choose,
    Navigate,
    NavAction,
    OpenSection,
    Resume,
    SendFile,
    SetRect,
    ShowProgress,
    ShowReview,
    TypeText,
    Unsupported,
)
from bot.conversation.render import Facts
from bot.conversation.screens import Outcome, Screen
from bot.conversation.state import ConversationState, StateStore
from bot.conversation.text import _, use_gettext
from bot.core.checklist import Checklist, Item
from bot.core.interview import Answer, Choice, FollowUp, InvalidInput, RectStatus, next_followup
from bot.core.uploads import UploadLimits, UploadRefused
from bot.selfcheck import Frozen, NotAllowed, Workspace, open_workspace
from storage.answers import StaleAnswer
from storage.institutions import Institution

Clock = Callable[[], dt.datetime]

FOLLOWUP_STEPS = {
    FollowUp.PROBLEM: st.PROBLEM,
    FollowUp.MEASURE: st.MEASURE,
    FollowUp.STATUS: st.STATUS,
    FollowUp.TARGET_DATE: st.TARGET_DATE,
    FollowUp.CORRECTION: st.CORRECTION,
}
STEP_FOLLOWUPS = {step: followup for followup, step in FOLLOWUP_STEPS.items()}
TYPED_FOLLOWUP_STEPS = (st.PROBLEM, st.MEASURE, st.TARGET_DATE, st.CORRECTION)


class Catalog(Protocol):
    """Translations: aiogram's ``I18n`` is one."""

    def gettext(self, singular: str, plural: str | None = None, n: int = 1, locale: str | None = None) -> str:
        """``singular`` in ``locale``."""


@dataclass(frozen=True)
class Actor:
    """Who acts: their user id, their institution (None: not a member), their locale, and
    ``key``: where their conversation state is kept (the channel's conversation key)."""

    user_id: int
    institution: Institution | None
    locale: str
    key: str


class Step:
    """One action in hand: the actor's workspace, read once, and their state."""

    def __init__(self, conversation: Conversation, actor: Actor, institution: Institution) -> None:
        self.c = conversation
        self.actor = actor
        self.ws: Workspace = open_workspace(conversation.db, conversation.checklist, institution)
        self.state: ConversationState = conversation.states.load(actor.key)

    def facts(self) -> Facts:
        ws = self.ws
        return Facts(ws.checklist, ws.interview, ws.institution, ws.selfcheck.id, ws.answers(), ws.progress(), self.actor.locale)

    def current_item(self) -> Item | None:
        item_id = self.state.item
        if item_id is not None and self.ws.interview.applies(item_id):
            return self.ws.checklist.item(item_id)
        return None

    # --- screens -----------------------------------------------------------------------

    def item(self, item: Item, *, guide: bool = False, **extra: Any) -> Outcome:
        answer = self.ws.answer(item.id)
        evidence = self.ws.evidence_count(item.id) if answer is not None and answer.value is Choice.NONCOMPLIANT else 0
        screen = render.question_screen(self.facts(), item, answer, guide=guide, evidence=evidence)
        state = self.state.moved(st.QUESTION, **{st.ITEM: item.id, st.GUIDE: guide, st.EDIT: False, st.REV: [item.id, screen.rev]})
        return Outcome(screen, live=True, state=state, **extra)

    def summary(self, **extra: Any) -> Outcome:
        now = self.c.clock()
        screen = render.summary_screen(self.facts(), self.ws.submission(), now)
        return Outcome(screen, live=True, state=self.state.moved(st.QUESTION, **{st.ITEM: None, st.EDIT: False}), **extra)

    def followup(self, item: Item, followup: FollowUp, answer: Answer, *, editing: bool, **extra: Any) -> Outcome:
        screen = render.followup_screen(self.facts(), item, followup, answer, self.c.clock().date(), editing=editing)
        state = self.state.moved(FOLLOWUP_STEPS[followup], **{st.ITEM: item.id, st.EDIT: editing, st.REV: [item.id, answer.rev]})
        return Outcome(screen, live=True, state=state, **extra)

    def passive(self, screen: Screen, **extra: Any) -> Outcome:
        """A screen whose buttons only navigate: the live question stays live."""
        return Outcome(screen, **extra)

    def next_open(self, after: str | None, **extra: Any) -> Outcome:
        item = self.ws.interview.next_open(self.ws.answers(), after=after)
        return self.summary(**extra) if item is None else self.item(item, **extra)

    def continue_after(self, item: Item, answer: Answer, *, after: FollowUp | None, editing: bool, **extra: Any) -> Outcome:
        """After a stored step: the next follow-up of this answer, or the next open item."""
        step = next_followup(answer, after, editing=editing)
        if step is not None:
            return self.followup(item, step, answer, editing=editing, **extra)
        return self.next_open(item.id, **extra)

    def resume(self, *, again: bool = False, **extra: Any) -> Outcome:
        """Continue where the user is (/start and every "Continue" button): the follow-up
        question they were answering, else the first open item from the one they are on
        (``Interview.resume_point``), else the summary. With ``again``, their current item
        is shown even if it is answered (to repeat the question they are looking at)."""
        followup = STEP_FOLLOWUPS.get(self.state.step or "")
        current = self.current_item()
        if followup is not None and current is not None:
            answer = self.ws.answer(current.id)
            if answer is not None and answer.value is expected_choice(followup):
                return self.followup(current, followup, answer, editing=self.state.editing, **extra)
        item = current if again and current is not None else self.ws.interview.resume_point(self.ws.answers(), self.state.item)
        if item is None:
            return self.summary(**extra)
        return self.item(item, guide=again and self.state.guide, **extra)

    def frozen(self, exc: Frozen) -> str:
        return render.frozen_text(exc.submission, self.actor.locale, self.c.clock().tzinfo)

    # --- guards ------------------------------------------------------------------------

    def guard(self, sc: int, item_id: str | None) -> Item | None | Outcome:
        """An Outcome (a notice) if a button names another institution's self-check or an
        item that does not apply; otherwise the item (or None when no item is named)."""
        if sc != self.ws.selfcheck.id:
            return Outcome(notice=_("This button does not belong to your institution's self-check."), alert=True)
        if not item_id:
            return None
        if not self.ws.interview.applies(item_id):
            return Outcome(notice=_("This item is not part of your self-check."))
        return self.ws.checklist.item(item_id)

    def stale(self, action: Choose | SetRect) -> Outcome | None:
        """A notice if an answer button is stale: an older checklist, an old screen."""
        if action.fp != self.ws.checklist.fingerprint:
            return Outcome(notice=_("The checklist has been updated since this message. Please use the latest question."))
        if action.origin is None or self.state.live != action.origin:
            return Outcome(notice=_("This message is out of date. Please use the latest question below."))
        return None

    # --- actions -----------------------------------------------------------------------

    def choose(self, action: Choose) -> Outcome:
        item = self.guard(action.sc, action.item)
        if not isinstance(item, Item):
            return item if isinstance(item, Outcome) else Outcome()
        refused = self.stale(action)
        if refused is not None:
            return refused
        previous = self.ws.answer(item.id)
        try:
            answer = self.ws.record_choice(item.id, action.choice, by=self.actor.user_id, expected_rev=action.rev)
        except StaleAnswer:
            return self.item(item, notice=_("This item was changed in the meantime. Here is its current answer."))
        except Frozen as exc:  # signed: read-only until revised (see the pledge flow)
            return self.summary(notice=self.frozen(exc), alert=True)
        except NotAllowed:
            return Outcome(notice=_("This answer is not available for this item."))
        saved = _("Saved: {answer}").format(answer=render.choice_label(answer.value))
        # Choosing the same follow-up answer again re-opens its details for editing.
        editing = previous is not None and previous.value is answer.value
        return self.continue_after(item, answer, after=None, editing=editing, notice=saved)

    def set_rect(self, action: SetRect) -> Outcome:
        item = self.guard(action.sc, action.item)
        if not isinstance(item, Item):
            return item if isinstance(item, Outcome) else Outcome()
        refused = self.stale(action)
        if refused is not None:
            return refused
        try:
            answer = self.ws.record_rect_status(item.id, action.status, by=self.actor.user_id, expected_rev=action.rev)
        except StaleAnswer:
            return self.item(item, notice=_("This item was changed in the meantime. Here is its current answer."))
        except Frozen as exc:
            return self.summary(notice=self.frozen(exc), alert=True)
        except NotAllowed:
            return Outcome(notice=_("This answer is not available for this item."))
        saved = _("Saved: {answer}").format(answer=render.rect_label(action.status))
        return self.continue_after(item, answer, after=FollowUp.STATUS, editing=self.state.editing, notice=saved)

    def type_text(self, action: TypeText) -> Outcome:
        if self.state.step in TYPED_FOLLOWUP_STEPS:
            return self.type_followup(action)
        if self.state.step == st.QUESTION:
            return self.type_answer(action)
        # Typed with no question waiting for text: show where they are.
        return self.resume(again=True, messages=[_("Here is where you are in the self-check:")])

    def type_followup(self, action: TypeText) -> Outcome:
        item = self.current_item()
        if item is None:
            return self.resume()
        followup = STEP_FOLLOWUPS[self.state.step or ""]
        editing = self.state.editing
        try:
            answer = self.ws.record_followup(
                item.id, followup, action.text, by=self.actor.user_id, today=self.c.clock().date(),
                expected_rev=self.state.shown_rev(item.id),
            )  # fmt: skip
        except StaleAnswer as exc:
            # A colleague saved this item after the prompt was shown: theirs stands.
            told = [render.stale_typed_text(self.facts(), item, followup, exc.current)]
            current = exc.current
            if (
                current is not None
                and current.value is expected_choice(followup)
                and (followup is not FollowUp.TARGET_DATE or current.rect_status is RectStatus.IN_PROGRESS)
            ):
                return self.followup(item, followup, current, editing=editing, messages=told)
            return self.item(item, messages=told)
        except InvalidInput as exc:
            told = [render.invalid_input_text(exc, self.actor.locale, self.c.clock().date())]
            current = self.ws.answer(item.id)
            if current is None:
                return Outcome(messages=told)
            return self.followup(item, followup, current, editing=editing, messages=told)
        except Frozen as exc:
            return self.summary(messages=[self.frozen(exc)])
        except NotAllowed:
            # The answer was changed (by a colleague) so this detail no longer belongs to it.
            return self.item(item, messages=[_("This item was changed in the meantime. Here is its current answer.")])
        told = [render.correction_recorded_text(answer)] if followup is FollowUp.CORRECTION else []
        return self.continue_after(item, answer, after=followup, editing=editing, messages=told)

    def type_answer(self, action: TypeText) -> Outcome:
        item = self.current_item()
        if item is None or item.kind != "text":
            return self.resume(again=True, messages=[_("Please answer with the buttons under the question. Here it is again:")])
        try:
            answer = self.ws.record_text(item.id, action.text, by=self.actor.user_id, expected_rev=self.state.shown_rev(item.id))
        except StaleAnswer as exc:
            return self.item(item, messages=[render.stale_typed_text(self.facts(), item, None, exc.current)])
        except Frozen as exc:
            return self.summary(messages=[self.frozen(exc)])
        except InvalidInput as exc:
            return self.item(item, messages=[render.invalid_input_text(exc, self.actor.locale, self.c.clock().date(), item)])
        return self.continue_after(item, answer, after=None, editing=False)

    def send_file(self, action: SendFile) -> Outcome:
        item = self.current_item()
        answer = self.ws.answer(item.id) if item is not None else None
        if item is None or answer is None or answer.value is not Choice.NONCOMPLIANT:
            return Outcome(messages=[_("Files are accepted only as evidence for a non-compliant item. Nothing was saved.")])
        signed = self.ws.submission()
        if signed is not None:  # read-only while signed; add_evidence would raise Frozen
            return Outcome(messages=[self.frozen(Frozen(signed))])
        file: dict[str, Any] = {"kind": action.file_kind, "file_id": action.ref, "file_unique_id": action.unique_ref}
        if action.file_kind == "document":
            file["file_name"] = action.file_name
        file.update(mime_type=action.mime_type, file_size=action.file_size)
        try:
            self.ws.add_evidence(item.id, by=self.actor.user_id, limits=UploadLimits.from_settings(self.c.settings), **file)
        except UploadRefused as exc:
            told = render.upload_refused_text(exc, self.actor.locale, self.ws.interview.position(item.id))
        else:
            told = _("Evidence saved for item {number} ({count} file(s) so far).").format(
                number=self.ws.interview.position(item.id), count=self.ws.evidence_count(item.id)
            )
        followup = STEP_FOLLOWUPS.get(self.state.step or "")
        if followup is not None:
            return self.followup(item, followup, answer, editing=self.state.editing, messages=[told])
        return self.item(item, messages=[told])

    def navigate(self, action: Navigate) -> Outcome:
        item = self.guard(action.sc, action.item)
        if isinstance(item, Outcome):
            return item
        nav = action.action
        if item is None:
            if nav is NavAction.TOC:
                return self.passive(render.contents_screen(self.facts()))
            if nav is NavAction.REVIEW:
                return self.passive(render.review_screen(self.facts(), action.page))
            if nav is NavAction.SUMMARY:
                return self.summary()
            if nav is NavAction.CONTINUE:  # from /progress, the contents, review, a reminder, "cannot sign yet"
                return self.resume()
            return Outcome(notice=_("This button is no longer valid."))
        if nav is NavAction.PREV:
            previous = self.ws.interview.previous(item.id)
            return Outcome(notice=_("This is the first item.")) if previous is None else self.item(previous)
        if nav is NavAction.SKIP:
            following = self.ws.interview.skip_target(self.ws.answers(), item.id)
            return Outcome(notice=_("This is the last item.")) if following is None else self.item(following)
        if nav is NavAction.GUIDE:
            return self.item(item, guide=not self.state.guide)
        if nav is NavAction.KEEP:
            followup = STEP_FOLLOWUPS.get(self.state.step or "")
            answer = self.ws.answer(item.id)
            if followup is None or answer is None or self.state.item != item.id:
                return Outcome(notice=_("This button is no longer valid."))
            return self.continue_after(item, answer, after=followup, editing=True)
        if nav in (NavAction.TOC, NavAction.REVIEW, NavAction.SUMMARY, NavAction.CONTINUE):
            return self.navigate(Navigate(action=nav, sc=action.sc, page=action.page, origin=action.origin))
        return self.item(item)  # OPEN

    def open_section(self, action: OpenSection) -> Outcome:
        refused = self.guard(action.sc, None)
        if isinstance(refused, Outcome):
            return refused
        if not self.ws.interview.section_items(action.section):
            return Outcome(notice=_("This section is not part of your self-check."))
        return self.passive(render.section_screen(self.facts(), action.section))


def expected_choice(followup: FollowUp) -> Choice:
    """The answer a follow-up belongs to."""
    return Choice.NO if followup is FollowUp.CORRECTION else Choice.NONCOMPLIANT


class Conversation:
    """The engine, one per deployment."""

    def __init__(
        self,
        *,
        db: sqlite_utils.Database,
        checklist: Checklist,
        settings: Any,
        clock: Clock,
        states: StateStore,
        catalog: Catalog | None = None,
    ) -> None:
        self.db = db
        self.checklist = checklist
        self.settings = settings
        self.clock = clock
        self.states = states
        self.catalog = catalog

    @contextmanager
    def _speaking(self, locale: str) -> Iterator[None]:
        catalog = self.catalog
        if catalog is None:
            yield
            return
        with use_gettext(lambda message: catalog.gettext(message, locale=locale)):
            yield

    def workspace(self, institution: Institution) -> Workspace:
        return open_workspace(self.db, self.checklist, institution)

    def screen_for(self, actor: Actor, *, again: bool = False) -> Outcome:
        """Where the actor is: the screen /start shows."""
        return self.handle(actor, Resume(again=again))

    def handle(self, actor: Actor, action: Action) -> Outcome:
        """What ``action`` leads to. Answers are committed before this returns; the
        conversation state is kept by ``shown`` once the screen is on the user's side."""
        with self._speaking(actor.locale):
            if actor.institution is None:
                return Outcome(notice=_("Only invited staff can use these buttons. Send /start for help."), alert=True)
            step = Step(self, actor, actor.institution)
            return self._dispatch(step, action)

    def _dispatch(self, step: Step, action: Action) -> Outcome:
        if isinstance(action, Choose):
            return step.choose(action)
        if isinstance(action, SetRect):
            return step.set_rect(action)
        if isinstance(action, Navigate):
            return step.navigate(action)
        if isinstance(action, OpenSection):
            return step.open_section(action)
        if isinstance(action, TypeText):
            return step.type_text(action)
        if isinstance(action, SendFile):
            return step.send_file(action)
        if isinstance(action, Unsupported):
            told = _("Sorry, I can only read text messages, button presses, and photos or documents as evidence.")
            return step.resume(again=True, messages=[told])
        if isinstance(action, Resume):
            return step.resume(again=action.again)
        if isinstance(action, ShowProgress):
            return step.passive(render.progress_screen(step.facts()))
        if isinstance(action, ShowReview):
            return step.passive(render.review_screen(step.facts()))
        return Outcome(notice=_("This button is no longer valid."))

    def summary(self, actor: Actor) -> Outcome:
        """The completion summary (the pledge flow returns to it)."""
        assert actor.institution is not None
        with self._speaking(actor.locale):
            return Step(self, actor, actor.institution).summary()

    def revised(self, actor: Actor) -> Outcome:
        """After the signature was voided: the review, with no item on screen."""
        assert actor.institution is not None
        with self._speaking(actor.locale):
            step = Step(self, actor, actor.institution)
            state = step.state.moved(st.QUESTION, **{st.ITEM: None, st.EDIT: False})
            return Outcome(render.review_screen(step.facts()), state=state)

    def shown(self, actor: Actor, outcome: Outcome, live: Any = None) -> None:
        """The outcome's screen is shown: keep its state, and ``live`` as the token of the
        screen whose answer buttons are current (if the outcome says so). One write."""
        state = outcome.state
        if state is None:
            return
        if outcome.live and live is not None:
            state.data[st.LIVE] = live
        self.states.save(actor.key, state)
