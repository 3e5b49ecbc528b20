"""The conversation: which screen follows which action, and what is allowed.

``Conversation`` is built once per deployment (database, checklist, clock, settings,
translations, where states are kept). A channel turns what the user did into an
``Action``, calls ``handle(actor, action)``, shows the ``Outcome`` and then calls
``shown(actor, outcome, token)`` so the state (and the token of the live screen) is kept —
one write per shown screen. The guards live here, once, for every channel:

* membership: an actor with no institution is refused, but for onboarding (``/start``, joining
  with an invite code, the language, ``/verify``: ``bot.conversation.onboarding``);
* scope: a button naming another self-check or an item that does not apply;
* staleness: a checklist that changed (fingerprint), a press on an old screen (origin),
  a revision that moved on (a colleague saved meanwhile);
* frozen: a signed self-check is read-only until revised.

For a web form adapter: render ``Screen.blocks`` (safe markup) and one submit button per
``Button`` (name ``Button.key``, value ``Action.to_fields()``), keep the token passed to
``shown`` in a hidden field, and read a post back with ``actions.from_fields(form,
origin=token)``; typed text is ``TypeText``, an upload ``SendFile`` (and
``receive_paper`` once signed).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any, Protocol

import sqlite_utils

from bot.campaign_runtime import CampaignRegistry, Running
from bot.conversation import campaign_screens as cs
from bot.conversation import evidence_screens as es
from bot.conversation import onboarding, render
from bot.conversation import pledge_screens as ps
from bot.conversation import state as st
from bot.conversation.actions import (
    REGULATOR_ACTIONS,
    Action,
    Choose,
    NavAction,
    Navigate,
    OpenSection,
    Pick,
    PickCampaign,
    PickDone,
    PledgeAction,
    PledgeStep,
    RemoveEvidence,
    Resume,
    SameAsLastYear,
    SendFile,
    SetRect,
    ShowCampaigns,
    ShowEvidence,
    ShowOverdue,
    ShowPledge,
    ShowProgress,
    ShowReview,
    ShowStatus,
    TypeText,
    Unsupported,
)
from bot.conversation.actor import Actor
from bot.conversation.desk import Desk
from bot.conversation.render import Facts
from bot.conversation.screens import Attachment, Outcome, Screen
from bot.conversation.state import ConversationState, StateStore
from bot.conversation.text import _, use_gettext
from bot.core.checklist import CHOICE_KINDS, Checklist, Item
from bot.core.interview import Answer, Choice, FollowUp, InvalidInput, RectStatus, clean_text, next_followup
from bot.core.uploads import UploadLimits, UploadRefused
from bot.pledge import document as doc
from bot.pledge.fonts import FontMissing
from bot.pledge.signing import SigningError, SigningSettings, ensure_default_keys, identity
from bot.pledge.submit import (
    AlreadySigned,
    ContentChanged,
    NotReady,
    build_content,
    missing_items,
    pdf_file_name,
    produce_pdf,
    sign,
)
from bot.pledge.text import pledge_for
from bot.selfcheck import CampaignClosed, Frozen, NotAllowed, Workspace, open_workspace
from storage import pledges as pledge_store
from storage.answers import StaleAnswer
from storage.db import transaction
from storage.institutions import Institution, members_of
from storage.pledges import Submission

Clock = Callable[[], dt.datetime]
# The largest paper-pledge file taken (Telegram lets bots download files up to 20 MB; a
# phone photo or a scanned page is far less).
MAX_PAPER_BYTES = 20 * 1024 * 1024
log = logging.getLogger(__name__)

FOLLOWUP_STEPS = {
    FollowUp.PROBLEM: st.PROBLEM,
    FollowUp.MEASURE: st.MEASURE,
    FollowUp.STATUS: st.STATUS,
    FollowUp.TARGET_DATE: st.TARGET_DATE,
    FollowUp.CORRECTION: st.CORRECTION,
}
STEP_FOLLOWUPS = {step: followup for followup, step in FOLLOWUP_STEPS.items()}
TYPED_FOLLOWUP_STEPS = (st.PROBLEM, st.MEASURE, st.TARGET_DATE, st.CORRECTION)
EVIDENCE_ANSWERS = (Choice.NONCOMPLIANT, Choice.FILE)
"""Answers whose item keeps evidence files (listed, and removable, from its question)."""
BUTTONS_ONLY = ("compliance", "confirm")
"""Item kinds answered with buttons only (typed text is refused for them)."""


def _is_press(action: Action) -> bool:
    """An answer button pressed on a screen: one transaction with the state it leads to."""
    return isinstance(action, (Choose, SetRect)) and action.origin is not None


class Catalog(Protocol):
    """Translations: aiogram's ``I18n`` is one."""

    def gettext(self, singular: str, plural: str | None = None, n: int = 1, locale: str | None = None) -> str:
        """``singular`` in ``locale``."""


class Step:
    """One action in hand: the actor's workspace, read once, and their state."""

    def __init__(
        self, conversation: Conversation, actor: Actor, institution: Institution, run: Running | None = None
    ) -> None:
        self.c = conversation
        self.actor = actor
        # ``run``: the actor's current campaign when the deployment runs several; its
        # checklist (with the campaign's id, deadline, pledge) is the one they answer.
        self.run = run
        checklist = conversation.checklist if run is None else run.checklist
        read_only = run is not None and not run.open
        self.ws: Workspace = open_workspace(conversation.db, checklist, institution, read_only=read_only)
        self.state: ConversationState = conversation.states.load(actor.key)

    def facts(self) -> Facts:
        ws = self.ws
        return Facts(ws.checklist, ws.interview, ws.institution, ws.selfcheck.id, ws.answers(), ws.progress(), self.actor.locale)

    def current_item(self) -> Item | None:
        item_id = self.state.item
        if self.state.following:  # the first open item from there on (the one on screen)
            return self.ws.interview.resume_point(self.ws.answers(), item_id)
        if item_id is not None and self.ws.interview.applies(item_id):
            return self.ws.checklist.item(item_id)
        return None

    # --- screens -----------------------------------------------------------------------

    def item(
        self, item: Item, *, guide: bool = False, selection: list[str] | None = None, follow: bool = False, **extra: Any
    ) -> Outcome:
        """The question of ``item``; ``selection``: the options of a multiple choice
        toggled on screen (else those saved). ``follow``: ``item`` is the next open item
        after an answer (``next_open``); if it takes button answers only, the state says so
        (``ConversationState.following``) and, if it said so already and still leads to
        ``item``, it stays as it is: a press from one such question to the next writes no state."""
        answer = self.ws.answer(item.id)
        evidence = self.ws.evidence_count(item.id) if answer is not None and answer.value in EVIDENCE_ANSWERS else 0
        earlier = self.ws.earlier_answer(item)
        if item.kind == "select_multiple" and selection is None:
            selection = (answer.text or "").split() if answer is not None and answer.value is Choice.SELECTED else []
        screen = render.question_screen(
            self.facts(), item, answer, guide=guide, evidence=evidence, earlier=earlier, selection=selection
        )
        follow = follow and item.kind in BUTTONS_ONLY and not guide and selection is None
        if follow and self.follows_to(item.id):
            return Outcome(screen, live=True, state=self.state.moved(st.QUESTION), **extra)
        data: dict[str, Any] = {st.ITEM: item.id, st.GUIDE: guide, st.EDIT: False, st.REV: [item.id, screen.rev]}
        data[st.SELECTION] = [item.id, selection] if selection is not None else None
        data[st.FOLLOW] = follow
        return Outcome(screen, live=True, state=self.state.moved(st.QUESTION, **data), **extra)

    def follows_to(self, item_id: str | None) -> bool:
        """The state follows the interview (with nothing else on screen: no guide, no
        selection) and leads to item ``item_id`` now; to None: to the summary (no item open)."""
        state = self.state
        if not state.following or state.guide or state.editing or state.data.get(st.SELECTION) is not None:
            return False
        # the progress counted for this step (kept from step to step) has the open items in order
        current = self.ws.interview.resume_point_in(self.ws.progress(), state.item)
        return (current.id if current is not None else None) == item_id

    def summary(self, **extra: Any) -> Outcome:
        now = self.c.clock()
        submission = self.ws.submission()
        sent_back = self.ws.waiting_send_back() if submission is None else None
        screen = render.summary_screen(self.facts(), submission, now, sent_back=sent_back)
        if self.follows_to(None):  # the press that completed the interview: its state leads here already
            return Outcome(screen, live=True, state=self.state.moved(st.QUESTION), **extra)
        state = self.state.moved(st.QUESTION, **{st.ITEM: None, st.EDIT: False, st.FOLLOW: False})
        return Outcome(screen, live=True, state=state, **extra)

    def followup(self, item: Item, followup: FollowUp, answer: Answer, *, editing: bool, **extra: Any) -> Outcome:
        screen = render.followup_screen(self.facts(), item, followup, answer, self.c.clock().date(), editing=editing)
        changes = {st.ITEM: item.id, st.EDIT: editing, st.REV: [item.id, answer.rev], st.FOLLOW: False}
        return Outcome(screen, live=True, state=self.state.moved(FOLLOWUP_STEPS[followup], **changes), **extra)

    def passive(self, screen: Screen, **extra: Any) -> Outcome:
        """A screen whose buttons only navigate: the live question stays live."""
        return Outcome(screen, **extra)

    def next_open(self, after: str | None, **extra: Any) -> Outcome:
        item = self.ws.interview.next_open(self.ws.answers(), after=after)
        return self.summary(**extra) if item is None else self.item(item, follow=True, **extra)

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
        if again and current is not None:  # as it was on screen: the options toggled so far kept
            return self.item(current, guide=self.state.guide, selection=self.state.selection(current.id), **extra)
        # the first open item from the one they are on: the state can follow the interview
        # from there (a press from it to the next button question then writes no state)
        item = self.ws.interview.resume_point(self.ws.answers(), self.state.item)
        if item is None:
            return self.summary(**extra)
        return self.item(item, follow=True, **extra)

    def frozen(self, exc: Frozen) -> str:
        if isinstance(exc, CampaignClosed) or exc.submission is None:
            return cs.closed_text(self.run)
        return render.frozen_text(exc.submission, self.actor.locale, self.c.clock().tzinfo)

    # --- guards ------------------------------------------------------------------------

    def guard(self, sc: int, item_id: str | None) -> Item | Outcome | None:
        """An Outcome (a notice) if a button names another institution's self-check or an
        item that does not apply; otherwise the item (or None when no item is named)."""
        if sc != self.ws.selfcheck.id:
            return Outcome(notice=_("This button does not belong to your institution's self-check."), alert=True)
        if not item_id:
            return None
        if not self.ws.interview.applies(item_id):
            return Outcome(notice=_("This item is not part of your self-check."))
        return self.ws.checklist.item(item_id)

    def answerable(self, sc: int, item_id: str, action: Choose | SetRect | Pick | PickDone | SameAsLastYear) -> Item | Outcome:
        """The item an answer button is about, or the notice refusing it (foreign, stale,
        or hidden by an earlier answer). Nothing is stored on a refusal."""
        item = self.guard(sc, item_id)
        if not isinstance(item, Item):
            return item if isinstance(item, Outcome) else Outcome()
        refused = self.stale(action)
        if refused is not None:
            return refused
        if not self.ws.interview.shown(item, self.ws.answers()):
            return Outcome(notice=_("This item does not apply, given an earlier answer. Nothing was saved."))
        return item

    def stale(self, action: Choose | SetRect | Pick | PickDone | SameAsLastYear) -> Outcome | None:
        """A notice if an answer button is stale: an older checklist, an old screen."""
        if action.fp != self.ws.checklist.fingerprint:
            return Outcome(notice=_("The checklist has been updated since this message. Please use the latest question."))
        if not self.is_live(action):
            return Outcome(notice=_("This message is out of date. Please use the latest question below."))
        return None

    # --- actions -----------------------------------------------------------------------

    def choose(self, action: Choose) -> Outcome:
        item = self.answerable(action.sc, action.item, action)
        if isinstance(item, Outcome):
            return item
        previous = self.ws.answer(item.id)
        try:
            answer = self.ws.record_choice(item.id, action.choice, by=self.actor.user_id, expected_rev=action.rev)
        except StaleAnswer:
            return self.item(item, notice=_("This item was changed in the meantime. Here is its current answer."))
        except Frozen as exc:  # signed: read-only until revised (see the pledge flow)
            return self.summary(notice=self.frozen(exc), alert=True)
        except NotAllowed:
            return Outcome(notice=_("This answer is not available for this item."))
        saved = _("Saved: {answer}").format(answer=render.answer_text(item, answer, self.actor.locale))
        # Choosing the same follow-up answer again re-opens its details for editing.
        editing = previous is not None and previous.value is answer.value
        return self.continue_after(item, answer, after=None, editing=editing, notice=saved)

    def saved(self, item: Item, answer: Answer, **extra: Any) -> Outcome:
        """After a new answer of a picked or carried kind: its follow-ups, or the next item."""
        notice = _("Saved: {answer}").format(answer=render.answer_text(item, answer, self.actor.locale))
        return self.continue_after(item, answer, after=None, editing=False, notice=notice, **extra)

    def pick(self, action: Pick) -> Outcome:
        """An option pressed: saved (single choice) or toggled on screen (multiple choice).
        A forged option number is refused and nothing is stored."""
        item = self.answerable(action.sc, action.item, action)
        if isinstance(item, Outcome):
            return item
        if item.kind not in CHOICE_KINDS or not 0 <= action.option < len(item.options):
            return Outcome(notice=_("This option is not available for this item. Nothing was saved."), alert=True)
        option = item.options[action.option].id
        if item.kind == "select_multiple":
            chosen = self.state.selection(item.id)
            if chosen is None:
                current = self.ws.answer(item.id)
                chosen = (current.text or "").split() if current is not None and current.value is Choice.SELECTED else []
            chosen = [o for o in chosen if o != option] if option in chosen else [*chosen, option]
            ordered = [o.id for o in item.options if o.id in chosen]
            return self.item(item, guide=self.state.guide, selection=ordered)
        return self.record(item, lambda: self.ws.record_options(item.id, [option], by=self.actor.user_id, expected_rev=action.rev))

    def pick_done(self, action: PickDone) -> Outcome:
        item = self.answerable(action.sc, action.item, action)
        if isinstance(item, Outcome):
            return item
        if item.kind != "select_multiple":
            return Outcome(notice=_("This button is no longer valid."))
        chosen = self.state.selection(item.id) or []
        if not chosen:
            return Outcome(notice=_("Choose at least one option, then press Done. Nothing was saved."), alert=True)
        return self.record(item, lambda: self.ws.record_options(item.id, chosen, by=self.actor.user_id, expected_rev=action.rev))

    def same_as_last_year(self, action: SameAsLastYear) -> Outcome:
        """与去年相同: a fresh answer equal to last year's, with its own history."""
        item = self.answerable(action.sc, action.item, action)
        if isinstance(item, Outcome):
            return item
        by = self.actor.user_id
        return self.record(item, lambda: self.ws.record_same_as_last_year(item.id, by=by, expected_rev=action.rev))

    def record(self, item: Item, write: Callable[[], Answer]) -> Outcome:
        """Run one answer write of a pressed button, turning its refusals into notices."""
        try:
            answer = write()
        except StaleAnswer:
            return self.item(item, notice=_("This item was changed in the meantime. Here is its current answer."))
        except Frozen as exc:
            return self.summary(notice=self.frozen(exc), alert=True)
        except (NotAllowed, InvalidInput):
            return Outcome(notice=_("This answer is not available for this item."))
        return self.saved(item, answer)

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
        if self.state.step == st.SIGN_NAME:
            return self.type_signer(action)
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
        if item is None or item.kind in BUTTONS_ONLY:
            return self.resume(again=True, messages=[_("Please answer with the buttons under the question. Here it is again:")])
        if self.state.following:
            # The question on screen takes buttons, but the interview has moved on since
            # (a colleague answered it): the text answers nothing that was asked. Show
            # where they are; that question is then the one on screen.
            return self.resume(again=True, messages=[_("Here is where you are in the self-check:")])
        if not self.ws.interview.shown(item, self.ws.answers()):
            return self.resume(messages=[_("This item does not apply, given an earlier answer. Nothing was saved.")])
        if item.kind != "text":
            return self.type_kind(item, action)
        try:
            answer = self.ws.record_text(item.id, action.text, by=self.actor.user_id, expected_rev=self.state.shown_rev(item.id))
        except StaleAnswer as exc:
            return self.item(item, messages=[render.stale_typed_text(self.facts(), item, None, exc.current)])
        except Frozen as exc:
            return self.summary(messages=[self.frozen(exc)])
        except InvalidInput as exc:
            return self.item(item, messages=[render.invalid_input_text(exc, self.actor.locale, self.c.clock().date(), item)])
        return self.continue_after(item, answer, after=None, editing=False)

    def type_kind(self, item: Item, action: TypeText) -> Outcome:
        """A typed answer of a number, date, yes/no or choice item (or, refused, of an
        attachment item): validated for its kind; refused with the reason, nothing stored."""
        try:
            answer = self.ws.record_typed(item.id, action.text, by=self.actor.user_id, expected_rev=self.state.shown_rev(item.id))
        except StaleAnswer as exc:
            return self.item(item, messages=[render.stale_typed_text(self.facts(), item, None, exc.current)])
        except Frozen as exc:
            return self.summary(messages=[self.frozen(exc)])
        except InvalidInput as exc:
            refused = [render.kind_invalid_text(exc, item, self.actor.locale)]
            return self.item(item, guide=self.state.guide, selection=self.state.selection(item.id), messages=refused)
        told = _("Saved: {answer}").format(answer=escape(render.answer_text(item, answer, self.actor.locale)))
        return self.continue_after(item, answer, after=None, editing=False, messages=[told])

    def send_attachment(self, item: Item, action: SendFile) -> Outcome:
        """The file an attachment item waits for, through the evidence upload path and its limits."""
        if not self.ws.interview.shown(item, self.ws.answers()):
            return self.resume(messages=[_("This item does not apply, given an earlier answer. Nothing was saved.")])
        file: dict[str, Any] = {"kind": action.file_kind, "file_id": action.ref, "file_unique_id": action.unique_ref}
        if action.file_kind == "document":
            file["file_name"] = action.file_name
        file.update(mime_type=action.mime_type, file_size=action.file_size)
        try:
            answer = self.ws.record_attachment(item.id, by=self.actor.user_id, limits=UploadLimits.from_settings(self.c.settings), **file)
        except UploadRefused as exc:
            return self.item(item, messages=[render.upload_refused_text(exc, self.actor.locale, self.ws.interview.position(item.id))])
        except Frozen as exc:
            return self.summary(messages=[self.frozen(exc)])
        told = _("Saved: {answer}").format(answer=escape(render.answer_text(item, answer, self.actor.locale)))
        return self.continue_after(item, answer, after=None, editing=False, messages=[told])

    def send_file(self, action: SendFile) -> Outcome:
        item = self.current_item()
        if item is not None and item.kind == "attachment" and self.state.step == st.QUESTION:
            return self.send_attachment(item, action)
        answer = self.ws.answer(item.id) if item is not None else None
        if item is None or answer is None or answer.value is not Choice.NONCOMPLIANT:
            return Outcome(messages=[_("Files are accepted only as evidence for a non-compliant item. Nothing was saved.")])
        if self.ws.read_only:
            return Outcome(messages=[cs.closed_text(self.run)])
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

    # --- evidence files ----------------------------------------------------------------

    def evidence_locked(self) -> str:
        """Why the evidence cannot be changed now ("" when it can): closed, or signed."""
        if self.ws.read_only:
            return cs.closed_text(self.run)
        signed = self.ws.submission()
        return self.frozen(Frozen(signed)) if signed is not None else ""

    def evidence(self, item: Item, page: int = 0, **extra: Any) -> Outcome:
        """The list of the item's files; passive: the question's answer buttons stay live."""
        names = {int(m["telegram_id"]): str(m["first_name"] or "") for m in members_of(self.c.db, self.ws.institution.id)}
        why_not = self.evidence_locked()
        screen = es.evidence_screen(
            self.facts(), item, self.ws.evidence(item.id), names, page, self.c.settings.tz, can_remove=not why_not, why_not=why_not,
            answer_file=item.kind == "attachment",
        )
        return self.passive(screen, **extra)

    def show_evidence(self, action: ShowEvidence) -> Outcome:
        item = self.guard(action.sc, action.item)
        if not isinstance(item, Item):
            return item if isinstance(item, Outcome) else Outcome()
        return self.evidence(item, action.page)

    def remove_evidence(self, action: RemoveEvidence) -> Outcome:
        """Ask, then remove one file. A file not (or no longer) among the item's — removed
        by a colleague meanwhile, another item's, forged — changes nothing."""
        item = self.guard(action.sc, action.item)
        if not isinstance(item, Item):
            return item if isinstance(item, Outcome) else Outcome()
        rows = self.ws.evidence(item.id)
        number = next((n for n, row in enumerate(rows, 1) if row["id"] == action.ev), None)
        if number is None:
            return self.evidence(item, notice=_("This file is no longer among the evidence of this item."))
        why_not = self.evidence_locked()
        if why_not:
            return self.evidence(item, notice=why_not, alert=True)
        if not action.sure:
            names = {int(m["telegram_id"]): str(m["first_name"] or "") for m in members_of(self.c.db, self.ws.institution.id)}
            return self.passive(es.remove_screen(self.facts(), item, rows[number - 1], number, names, self.c.settings.tz))
        try:
            removed = self.ws.remove_evidence(item.id, action.ev, by=self.actor.user_id)
        except Frozen as exc:
            return self.evidence(item, notice=self.frozen(exc), alert=True)
        except NotAllowed:
            told = _("This is the only file of this item's answer. Send the right file first, then remove this one.")
            return self.evidence(item, notice=told, alert=True)
        if removed is None:
            return self.evidence(item, notice=_("This file is no longer among the evidence of this item."))
        told = _("Removed: file {number} ({name}).").format(number=number, name=es.file_label(removed))
        return self.evidence(item, (number - 1) // es.PAGE_SIZE, notice=told)

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
            previous = self.ws.interview.previous(item.id, self.ws.answers())
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
        if not self.ws.interview.shown(item, self.ws.answers()):
            return Outcome(notice=_("This item does not apply, given an earlier answer."))
        return self.item(item)  # OPEN

    def open_section(self, action: OpenSection) -> Outcome:
        refused = self.guard(action.sc, None)
        if isinstance(refused, Outcome):
            return refused
        if not self.ws.interview.section_items(action.section):
            return Outcome(notice=_("This section is not part of your self-check."))
        return self.passive(render.section_screen(self.facts(), action.section))

    # --- the signed pledge ---------------------------------------------------------------

    def signed(self, submission: Submission, **extra: Any) -> Outcome:
        screen = ps.signed_screen(self.facts(), submission, self.c.settings.tz)
        return Outcome(screen, state=self.state.moved(st.SIGNED), **extra)

    def offer(self, **extra: Any) -> Outcome:
        """The first step: refusal with what is missing, the signed state, or the pledge and
        the question who signs."""
        signed = self.ws.submission()
        if signed is not None:
            return self.signed(signed, **extra)
        missing = missing_items(self.ws)
        if missing:
            return self.passive(ps.missing_screen(self.facts(), missing), **extra)
        body = build_content(self.ws, self.actor.locale, "", "legal_representative")
        text = pledge_for(self.ws.checklist).text(self.actor.locale)
        state = self.state.moved(st.SIGN_NAME, **{st.SIGNER: None, st.ROLE: None})
        return Outcome(ps.name_screen(self.facts(), body["totals"], text), live=True, state=state, **extra)

    def confirm_screen(self, name: str, role: str, **extra: Any) -> Outcome:
        body = build_content(self.ws, self.actor.locale, name, role)
        screen = ps.confirm_screen(self.facts(), name, role, body["totals"], doc.digest(body)[:16])
        return Outcome(screen, live=True, state=self.state.moved(st.SIGN_CONFIRM, **{st.ROLE: role}), **extra)

    def signing_step(self) -> Outcome | None:
        """The signing step the user is on, shown again (after /language); None when not signing."""
        name, role = self.state.data.get(st.SIGNER), self.state.data.get(st.ROLE)
        step = self.state.step
        if step == st.SIGNED:
            submission = self.ws.submission()
            return None if submission is None else self.signed(submission)
        if step == st.SIGN_NAME:
            return self.offer()
        if step == st.SIGN_ROLE and isinstance(name, str):
            return Outcome(ps.role_screen(self.facts(), name), live=True, state=self.state.moved(st.SIGN_ROLE))
        if step == st.SIGN_CONFIRM and isinstance(name, str) and isinstance(role, str):
            return self.confirm_screen(name, role)
        return None

    def type_signer(self, action: TypeText) -> Outcome:
        try:
            name = clean_text(action.text, doc.SIGNER_NAME_MAX)
        except InvalidInput as exc:
            if exc.code == "too_long":
                told = _("A name may have at most {limit} characters. Please type it again.").format(limit=doc.SIGNER_NAME_MAX)
            else:
                told = _("Please type the signer's name as text.")
            return Outcome(messages=[told])
        state = self.state.moved(st.SIGN_ROLE, **{st.SIGNER: name})
        return Outcome(ps.role_screen(self.facts(), name), live=True, state=state)

    def own_current(self, action: PledgeStep) -> Submission | Outcome:
        """The current submission the button is about, or a notice."""
        current = self.ws.submission()
        if current is None or current.id != action.sub:
            return Outcome(notice=_("This signed pledge is no longer current."))
        return current

    def pledge_step(self, action: PledgeStep) -> Outcome:
        refused = self.guard(action.sc, None)
        if isinstance(refused, Outcome):
            return refused
        step = action.action
        if self.ws.read_only and step not in (PledgeAction.PDF, PledgeAction.CANCEL):
            submission = self.ws.submission()
            if submission is not None:
                return self.signed(submission, notice=cs.closed_text(self.run), alert=True)
            return self.summary(notice=cs.closed_text(self.run), alert=True)
        if step is PledgeAction.START:
            return self.offer()
        if step is PledgeAction.CANCEL:
            return self.summary()
        if step is PledgeAction.ROLE:
            name = self.state.data.get(st.SIGNER)
            if self.state.step != st.SIGN_ROLE or not isinstance(name, str) or action.role not in doc.ROLES or not self.is_live(action):
                return Outcome(notice=_("This button is no longer valid."))
            return self.confirm_screen(name, action.role)
        if step is PledgeAction.CONFIRM:
            return self.confirm(action)
        current = self.own_current(action)
        if isinstance(current, Outcome):
            return current
        if step is PledgeAction.PDF:
            return Outcome(notice=_("Sending the PDF…"), pdf=current)
        if step is PledgeAction.REVISE:
            return self.passive(ps.revise_screen(self.facts(), current, self.c.settings.tz))
        if step is PledgeAction.REVISE_OK:
            if not pledge_store.supersede(self.c.db, current.id, by=self.actor.user_id):
                return Outcome(notice=_("This signed pledge is no longer current."))
            state = self.state.moved(st.QUESTION, **{st.ITEM: None, st.EDIT: False})
            screen = render.review_screen(self.facts())
            return Outcome(screen, notice=_("The signature is void. You can change the answers now."), state=state)
        return Outcome(notice=_("This button is no longer valid."))

    def confirm(self, action: PledgeStep) -> Outcome:
        name, role = self.state.data.get(st.SIGNER), self.state.data.get(st.ROLE)
        already = self.ws.submission()
        if already is not None:
            return self.signed(already, notice=_("The pledge is already signed."))
        if self.state.step != st.SIGN_CONFIRM or not isinstance(name, str) or not isinstance(role, str) or not self.is_live(action):
            return Outcome(notice=_("This button is no longer valid."))
        try:
            submission = sign(
                self.ws, locale=self.actor.locale, signer_name=name, signer_role=role, by=self.actor.user_id,
                by_name=self.actor.name, expected_digest=action.h,
            )  # fmt: skip
        except AlreadySigned as exc:
            return self.signed(exc.submission, notice=_("The pledge is already signed."))
        except NotReady as exc:
            screen = ps.missing_screen(self.facts(), exc.missing)
            return Outcome(screen, notice=_("The pledge cannot be signed yet."), state=self.state.moved(st.QUESTION))
        except ContentChanged:
            return self.confirm_screen(name, role, notice=_("The answers were changed in the meantime. Please check them and confirm again."))
        return self.signed(submission, notice=_("Signed."), pdf=submission)

    def show_pledge(self) -> Outcome:
        submission = self.ws.submission()
        if submission is None:
            return self.offer()
        return self.signed(submission, pdf=submission)

    def is_live(self, action: Action) -> bool:
        return action.origin is not None and self.state.live == action.origin


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
        campaigns: CampaignRegistry | None = None,
    ) -> None:
        """``checklist``: the one table of a single-campaign deployment (and the default);
        ``campaigns``: the registry of a deployment that runs several at once, from which
        each actor answers the checklist of their current campaign."""
        self.db = db
        self.checklist = checklist
        self.campaigns = campaigns
        self.settings = settings
        self.clock = clock
        self.states = states
        self.catalog = catalog
        # The regulator flows (bot/conversation/desk.py); ``desk.outbox`` is set once the outbox runs.
        self.desk = Desk(
            db=db, checklist=checklist, settings=settings, clock=clock, states=states, catalog=catalog, speaking=self._speaking,
            campaigns=campaigns,
        )

    def _speaking(self, locale: str) -> contextlib.AbstractContextManager[None]:
        catalog = self.catalog
        if catalog is None:
            return contextlib.nullcontext()
        return use_gettext(lambda message: catalog.gettext(message, locale=locale), key=(catalog, locale))

    def speaking(self, locale: str) -> contextlib.AbstractContextManager[None]:
        """The engine's strings (``bot.conversation.text._``) in ``locale``, for a channel's own lines too."""
        return self._speaking(locale)

    def workspace(self, institution: Institution, run: Running | None = None) -> Workspace:
        checklist = self.checklist if run is None else run.checklist
        return open_workspace(self.db, checklist, institution, read_only=run is not None and not run.open)

    def current_campaign(self, actor: Actor) -> tuple[Running | None, list[Running]]:
        """(the actor's current campaign, every campaign they may open); (None, []) when the
        deployment runs one checklist."""
        if actor.institution is None:
            return None, []
        return self.campaign_of(actor.user_id, actor.institution)

    def campaign_of(self, user_id: int, institution: Institution) -> tuple[Running | None, list[Running]]:
        if self.campaigns is None:
            return None, []
        return self.campaigns.current(self.db, user_id, institution, self.clock())

    def checklist_for(self, actor: Actor) -> Checklist | None:
        """The checklist the actor answers now (None: they must choose a campaign first)."""
        if self.campaigns is None:
            return self.checklist
        run, _available = self.current_campaign(actor)
        return None if run is None else run.checklist

    def _staff(self, actor: Actor, action: Action) -> Outcome:
        """Staff of a deployment with several campaigns: the choice (at /start when two
        cover them and none is chosen yet, and with /campaign), then their campaign's step."""
        assert actor.institution is not None
        run, available = self.current_campaign(actor)
        if isinstance(action, PickCampaign):
            picked = next((r for r in available if r.id == action.campaign), None)
            if picked is None:
                return Outcome(notice=_("This campaign is not open to your institution."), alert=True)
            assert self.campaigns is not None
            self.campaigns.choose(self.db, actor.user_id, picked.id)
            step = Step(self, actor, actor.institution, picked)
            # The state's item was another campaign's: start from this one's first open item.
            step.state = step.state.moved(st.QUESTION, **{st.ITEM: None, st.EDIT: False})
            return step.resume(messages=[cs.working_on(picked, actor.locale)])
        if not available:
            return Outcome(cs.no_campaign_screen())
        if run is None or isinstance(action, ShowCampaigns):
            return Outcome(cs.choice_screen(available, run.id if run else None, actor.locale))
        outcome = self._act(actor, Step(self, actor, actor.institution, run), action)
        screen = outcome.screen
        if isinstance(action, ShowProgress) and screen is not None and screen.blocks and len(available) > 1:
            # two campaigns may share a table (and its title): say whose progress this is
            blocks = (cs.campaign_line(run, actor.locale) + "\n" + screen.blocks[0], *screen.blocks[1:])
            outcome.screen = dataclasses.replace(screen, blocks=blocks)
        return outcome

    def screen_for(self, actor: Actor, *, again: bool = False) -> Outcome:
        """Where the actor is: the screen /start shows."""
        return self.handle(actor, Resume(again=again))

    def handle(self, actor: Actor, action: Action) -> Outcome:
        """What ``action`` leads to. Answers are committed before this returns; the
        conversation state is kept by ``shown`` once the screen is on the user's side."""
        with self._speaking(actor.locale):
            if isinstance(action, REGULATOR_ACTIONS) or self.desk.claims(actor, action):
                return self.desk.handle(actor, action)
            if actor.institution is None or isinstance(action, onboarding.ACTIONS):
                return onboarding.handle(self, actor, action)  # /start, joining, the language, /verify
            # A press's transaction begins before its step reads the self-check, so what the
            # step read (answers, the signature) is what the write finds (``_press``).
            with transaction(self.db) if _is_press(action) else contextlib.nullcontext():
                if self.campaigns is not None:
                    return self._staff(actor, action)
                return self._act(actor, Step(self, actor, actor.institution), action)

    def _act(self, actor: Actor, step: Step, action: Action) -> Outcome:
        """A staff action on ``step``: a press on an answer button in one transaction with the
        state it leads to (``_press``), anything else dispatched."""
        if _is_press(action):
            assert isinstance(action, (Choose, SetRect))
            return self._press(actor, step, action)
        return self._dispatch(step, action)

    def _press(self, actor: Actor, step: Step, action: Choose | SetRect) -> Outcome:
        """An answer button pressed on screen ``action.origin``: the answer, its history,
        the self-check's counters and the conversation state commit together, once. The
        next screen is expected where the press was (a press edits its message in place),
        so the state is kept with that token as the live one; ``shown`` writes again only
        if the screen ends up elsewhere."""
        with transaction(self.db):
            outcome = self._dispatch(step, action)
            state = outcome.state
            if state is not None and outcome.live and outcome.screen is not None:
                state.data[st.LIVE] = action.origin
                if state.step != step.state.step or state.data != step.state.data:  # else: stored as it is
                    self.states.save(actor.key, state)
                outcome.kept = action.origin
        return outcome

    def _dispatch(self, step: Step, action: Action) -> Outcome:
        if isinstance(action, Choose):
            return step.choose(action)
        if isinstance(action, SetRect):
            return step.set_rect(action)
        if isinstance(action, Pick):
            return step.pick(action)
        if isinstance(action, PickDone):
            return step.pick_done(action)
        if isinstance(action, SameAsLastYear):
            return step.same_as_last_year(action)
        if isinstance(action, Navigate):
            return step.navigate(action)
        if isinstance(action, OpenSection):
            return step.open_section(action)
        if isinstance(action, TypeText):
            return step.type_text(action)
        if isinstance(action, SendFile):
            return step.send_file(action)
        if isinstance(action, ShowEvidence):
            return step.show_evidence(action)
        if isinstance(action, RemoveEvidence):
            return step.remove_evidence(action)
        if isinstance(action, Unsupported):
            told = _("Sorry, I can only read text messages, button presses, and photos or documents as evidence.")
            return step.resume(again=True, messages=[told])
        if isinstance(action, PledgeStep):
            return step.pledge_step(action)
        if isinstance(action, ShowPledge):
            return step.show_pledge()
        if isinstance(action, Resume):
            again = step.signing_step() if action.signing else None
            return again if again is not None else step.resume(again=action.again)
        if isinstance(action, ShowProgress):
            return step.passive(render.progress_screen(step.facts()))
        if isinstance(action, (ShowCampaigns, PickCampaign)):  # one checklist: nothing to choose
            return Outcome(notice=_("This deployment runs one self-check; there is no campaign to choose."))
        if isinstance(action, ShowReview):
            return step.passive(render.review_screen(step.facts()))
        return Outcome(notice=_("This button is no longer valid."))

    def resume_from(self, actor: Actor, state: ConversationState) -> Outcome:
        """Where ``actor`` is, from ``state`` (about to be kept, not yet stored: just joined)."""
        assert actor.institution is not None
        run = None
        if self.campaigns is not None:
            run, available = self.current_campaign(actor)
            if run is None:  # several campaigns cover them: they choose first
                return Outcome(cs.choice_screen(available, None, actor.locale) if available else cs.no_campaign_screen())
        step = Step(self, actor, actor.institution, run)
        step.state = state
        return step.resume()

    async def handle_off_loop(self, actor: Actor, action: Action) -> Outcome:
        """``handle``, with a regulator's report (/status, /overdue) computed in the report
        worker process (``Desk.handle_off_loop``), so no one else's press waits for it."""
        if isinstance(action, ShowStatus | ShowOverdue) and actor.regulator is not None:
            return await self.desk.handle_off_loop(actor, action)
        return self.handle(actor, action)

    def summary(self, actor: Actor) -> Outcome:
        """The completion summary (the pledge flow returns to it)."""
        assert actor.institution is not None
        with self._speaking(actor.locale):
            run, _available = self.current_campaign(actor)
            return Step(self, actor, actor.institution, run).summary()

    def signing_identity(self) -> Any:
        """The signing identity; the default self-signed pair is created on first use when
        none is configured (a configured one that is missing is an error, said when signing)."""
        ident = identity(SigningSettings(zicha_db=self.settings.zicha_db), db_path=self.settings.zicha_db)
        if ensure_default_keys(ident):
            log.warning("Created a self-signed signing key for pledges: %s (certificate %s)", ident.key, ident.cert)
        return ident

    async def pledge_pdf(self, actor: Actor, submission: Submission) -> Attachment | str:
        """The signed PDF of ``submission`` (made in a worker thread and kept the first
        time), or why it cannot be made, in the actor's language."""
        with self._speaking(actor.locale):
            row = pledge_store.get_pdf(self.db, submission.id)
            if row is None:
                document = submission.document
                try:
                    # the deployment's catalog is aiogram's I18n (bot/telegram/app.py wires it); the engine names only its Protocol
                    content = await asyncio.to_thread(produce_pdf, document, self.catalog, self.settings.tz, self.signing_identity())  # type: ignore[arg-type]
                except FontMissing:
                    return _("The PDF cannot be produced: no Chinese font is installed on the server. The signature is recorded; please ask the operator to install fonts-noto-cjk, then send /pledge.")
                except SigningError as exc:
                    log.error("cannot sign the pledge PDF: %s", exc)
                    return _("The PDF cannot be signed: the server's signing key is not usable. The signature is recorded; please ask the operator, then send /pledge.")
                pledge_store.save_pdf(self.db, submission.id, content, pdf_file_name(document))
                row = pledge_store.get_pdf(self.db, submission.id)
                assert row is not None
            caption = ps.pdf_caption(submission, actor.locale, self.settings.tz)
            return Attachment(pdf_file_name(submission.document), bytes(row["content"]), caption)

    async def receive_paper(self, actor: Actor, file: SendFile, fetch: Callable[[], Awaitable[bytes | str]]) -> Outcome:
        """A scan or photo of the paper pledge (signed and sealed), kept with the current
        submission. ``fetch`` gets the file's bytes from the channel (or the channel's own
        words for why it could not); it is called only once the limits allow the file."""
        assert actor.institution is not None
        with self._speaking(actor.locale):
            run, _available = self.current_campaign(actor)
            ws = self.workspace(actor.institution, run)
            if ws.read_only:
                return Outcome(messages=[cs.closed_text(run)])
            submission = ws.submission()
            not_signed = _("The pledge is not signed (any more), so the file was not attached. Send /pledge to see where things stand.")
            if submission is None:
                return Outcome(messages=[not_signed])
            if file.file_size is not None and file.file_size > MAX_PAPER_BYTES:
                return Outcome(messages=[_("This file is too large (over 20 MB). Please send a smaller scan or a photo.")])
            limits = UploadLimits.from_settings(self.settings)
            try:
                ws.check_paper_pledge(submission, file.file_size, limits)  # before fetching it
            except UploadRefused as exc:
                return Outcome(messages=[render.upload_refused_text(exc, actor.locale)])
            content = await fetch()
            if isinstance(content, str):
                return Outcome(messages=[content])
            current = ws.submission()
            if current is None or current.id != submission.id:  # revised while fetching
                return Outcome(messages=[not_signed])
            try:
                ws.add_paper_pledge(
                    submission, content, by=actor.user_id, limits=limits, file_name=file.file_name, mime_type=file.mime_type,
                    telegram_file_id=file.ref, file_unique_id=file.unique_ref,
                )  # fmt: skip
            except UploadRefused as exc:  # the real size, or a colleague's file that arrived meanwhile
                return Outcome(messages=[render.upload_refused_text(exc, actor.locale)])
            count = len(pledge_store.paper_pledges(self.db, submission.id))
            told = _("The paper pledge was attached to the signed submission {code} ({count} file(s) so far).").format(
                code=doc.format_code(submission.verification_code), count=count
            )
            return Outcome(messages=[told])

    def shown(self, actor: Actor, outcome: Outcome, live: Any = None) -> None:
        """The outcome's screen is shown: keep its state, and ``live`` as the token of the
        screen whose answer buttons are current (if the outcome says so). One write."""
        state = outcome.state
        if state is None:
            return
        if outcome.kept is not None and outcome.live and live == outcome.kept:
            return  # kept with the press (``_press``), under this very token
        if outcome.live and live is not None:
            state.data[st.LIVE] = live
        self.states.save(actor.key, state)
