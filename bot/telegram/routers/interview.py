"""Staff working through the self-check: questions, answers, follow-ups, navigation.

Handlers translate Telegram events into calls on a ``Workspace`` and render the result.
Every answer is committed by the workspace before the next screen is sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlite_utils
from aiogram import F, Router
from aiogram.filters import Command, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.core.checklist import Checklist, Item
from bot.core.interview import Answer, Choice, FollowUp, InvalidInput, RectStatus, next_followup
from bot.core.uploads import UploadLimits, UploadRefused
from bot.selfcheck import Frozen, NotAllowed, Workspace, open_workspace
from bot.telegram import views
from bot.telegram.callbacks import AnswerCb, NavAction, NavCb, RectCb, SectionCb
from bot.telegram.pledge_views import frozen_text
from bot.telegram.screen import enter, is_current, show
from bot.telegram.states import Interview
from storage.answers import StaleAnswer
from storage.institutions import Institution

Clock = Callable[[], dt.datetime]


class IsStaff(Filter):
    """Admits updates from users bound to an institution (see MembershipMiddleware)."""

    async def __call__(self, event: Any, institution: Institution | None = None) -> bool:
        return institution is not None


FOLLOWUP_STATES = {
    FollowUp.PROBLEM: Interview.problem,
    FollowUp.MEASURE: Interview.measure,
    FollowUp.STATUS: Interview.status,
    FollowUp.TARGET_DATE: Interview.target_date,
    FollowUp.CORRECTION: Interview.correction,
}
STATE_FOLLOWUPS = {state.state: followup for followup, state in FOLLOWUP_STATES.items()}
TYPED_FOLLOWUP_STATES = (Interview.problem, Interview.measure, Interview.target_date, Interview.correction)
REV = "rev"
"""FSM data: [item id, revision of its answer] when its question or prompt was shown."""


def shown_rev(data: dict[str, Any], item_id: str) -> int | None:
    """The revision kept with the prompt of ``item_id`` (None if none was kept for it, as
    in a conversation from before revisions were kept: then the save is not checked)."""
    kept = data.get(REV)
    if isinstance(kept, list) and len(kept) == 2 and kept[0] == item_id:
        rev = kept[1]
        if isinstance(rev, int) and not isinstance(rev, bool):
            return rev
    return None


# --- presenting screens ------------------------------------------------------------


async def present_item(
    event: Message | CallbackQuery, ws: Workspace, item: Item, state: FSMContext, locale: str, *, guide: bool = False
) -> None:
    answer = ws.answer(item.id)
    evidence = ws.evidence_count(item.id) if answer is not None and answer.value is Choice.NONCOMPLIANT else 0
    view = views.question_view(ws, item, answer, ws.progress(), locale, guide=guide, evidence=evidence)
    await enter(state, Interview.question)
    # The revision shown: a typed answer is saved only if the item is still at it.
    rev = answer.rev if answer is not None else 0
    await show(event, view, state, data={"item": item.id, "guide": guide, "edit": False, REV: [item.id, rev]})


async def present_next(
    event: Message | CallbackQuery, ws: Workspace, state: FSMContext, locale: str, clock: Clock, after: str | None
) -> None:
    item = ws.interview.next_open(ws.answers(), after=after)
    if item is None:
        await present_summary(event, ws, state, locale, clock)
    else:
        await present_item(event, ws, item, state, locale)


async def present_summary(
    event: Message | CallbackQuery, ws: Workspace, state: FSMContext, locale: str, clock: Clock
) -> None:
    await enter(state, Interview.question)
    await show(event, views.summary_view(ws, ws.progress(), locale, clock()), state, data={"item": None, "edit": False})


async def present_followup(
    event: Message | CallbackQuery,
    ws: Workspace,
    item: Item,
    followup: FollowUp,
    answer: Answer,
    state: FSMContext,
    locale: str,
    clock: Clock,
    *,
    editing: bool,
) -> None:
    await enter(state, FOLLOWUP_STATES[followup])
    view = views.followup_view(ws, item, followup, answer, locale, clock().date(), editing=editing)
    await show(event, view, state, data={"item": item.id, "edit": editing, REV: [item.id, answer.rev]})


async def continue_after(
    event: Message | CallbackQuery,
    ws: Workspace,
    item: Item,
    answer: Answer,
    state: FSMContext,
    locale: str,
    clock: Clock,
    *,
    after: FollowUp | None,
    editing: bool,
) -> None:
    """After a stored step: the next follow-up of this answer, or the next open item."""
    step = next_followup(answer, after, editing=editing)
    if step is not None:
        await present_followup(event, ws, item, step, answer, state, locale, clock, editing=editing)
    else:
        await present_next(event, ws, state, locale, clock, after=item.id)


def workspace(db: sqlite_utils.Database, checklist: Checklist, institution: Institution) -> Workspace:
    return open_workspace(db, checklist, institution)


async def current_item(ws: Workspace, state: FSMContext) -> Item | None:
    item_id = (await state.get_data()).get("item")
    if isinstance(item_id, str) and ws.interview.applies(item_id):
        return ws.checklist.item(item_id)
    return None


async def resume(
    event: Message | CallbackQuery, ws: Workspace, state: FSMContext, locale: str, clock: Clock, *, again: bool = False
) -> None:
    """Continue where the user is (/start and every "Continue" button): the follow-up
    question they were answering, else the first open item from the one they are on
    (``Interview.resume_point``), else the summary. With ``again``, their current item is
    shown even if it is answered (to repeat the question they are looking at)."""
    data = await state.get_data()
    followup = STATE_FOLLOWUPS.get(await state.get_state() or "")
    current = await current_item(ws, state)
    if followup is not None and current is not None:
        answer = ws.answer(current.id)
        expected = Choice.NO if followup is FollowUp.CORRECTION else Choice.NONCOMPLIANT
        if answer is not None and answer.value is expected:
            await present_followup(event, ws, current, followup, answer, state, locale, clock, editing=bool(data.get("edit")))
            return
    item = current if again and current is not None else ws.interview.resume_point(ws.answers(), data.get("item"))
    if item is None:
        await present_summary(event, ws, state, locale, clock)
    else:
        await present_item(event, ws, item, state, locale, guide=again and bool(data.get("guide")))


# --- commands ------------------------------------------------------------------------


async def cmd_progress(
    message: Message, db: sqlite_utils.Database, checklist: Checklist, institution: Institution, locale: str
) -> None:
    ws = workspace(db, checklist, institution)
    view = views.progress_view(ws, ws.progress(), locale)
    await message.answer(view.text, reply_markup=view.markup)


async def cmd_review(
    message: Message, db: sqlite_utils.Database, checklist: Checklist, institution: Institution, locale: str
) -> None:
    ws = workspace(db, checklist, institution)
    view = views.review_view(ws, ws.progress(), locale)
    await message.answer(view.text, reply_markup=view.markup)


# --- guarding button presses ---------------------------------------------------------


def guard_selfcheck(ws: Workspace, sc: int, item_id: str | None, callback_answer: CallbackAnswer) -> Item | None | bool:
    """False (and a notice) if the button names another institution's self-check or an
    item that does not apply; otherwise the item (or None when no item is named)."""
    if sc != ws.selfcheck.id:
        callback_answer.text = _("This button does not belong to your institution's self-check.")
        callback_answer.show_alert = True
        return False
    if not item_id:
        return None
    if not ws.interview.applies(item_id):
        callback_answer.text = _("This item is not part of your self-check.")
        return False
    return ws.checklist.item(item_id)


async def stale_press(
    query: CallbackQuery, ws: Workspace, cb: AnswerCb | RectCb, state: FSMContext, callback_answer: CallbackAnswer
) -> bool:
    """True (and a short notice) if an answer button is stale: an old message, an older
    version of the checklist."""
    if cb.fp != ws.checklist.fingerprint:
        callback_answer.text = _("The checklist has been updated since this message. Please use the latest question.")
        return True
    if not await is_current(query, state):
        callback_answer.text = _("This message is out of date. Please use the latest question below.")
        return True
    return False


# --- answering -----------------------------------------------------------------------


async def on_answer(
    query: CallbackQuery,
    callback_data: AnswerCb,
    db: sqlite_utils.Database,
    checklist: Checklist,
    institution: Institution,
    state: FSMContext,
    locale: str,
    clock: Clock,
    callback_answer: CallbackAnswer,
) -> None:
    ws = workspace(db, checklist, institution)
    item = guard_selfcheck(ws, callback_data.sc, callback_data.item, callback_answer)
    if not isinstance(item, Item) or await stale_press(query, ws, callback_data, state, callback_answer):
        return
    previous = ws.answer(item.id)
    try:
        answer = ws.record_choice(item.id, callback_data.choice, by=query.from_user.id, expected_rev=callback_data.rev)
    except StaleAnswer:
        callback_answer.text = _("This item was changed in the meantime. Here is its current answer.")
        await present_item(query, ws, item, state, locale)
        return
    except Frozen as exc:  # signed: read-only until revised (see routers/pledge.py)
        callback_answer.text = frozen_text(exc.submission, locale, clock().tzinfo)
        callback_answer.show_alert = True
        await present_summary(query, ws, state, locale, clock)
        return
    except NotAllowed:
        callback_answer.text = _("This answer is not available for this item.")
        return
    callback_answer.text = _("Saved: {answer}").format(answer=views.choice_label(answer.value))
    # Choosing the same follow-up answer again re-opens its details for editing.
    editing = previous is not None and previous.value is answer.value
    await continue_after(query, ws, item, answer, state, locale, clock, after=None, editing=editing)


async def on_rect_status(
    query: CallbackQuery,
    callback_data: RectCb,
    db: sqlite_utils.Database,
    checklist: Checklist,
    institution: Institution,
    state: FSMContext,
    locale: str,
    clock: Clock,
    callback_answer: CallbackAnswer,
) -> None:
    ws = workspace(db, checklist, institution)
    item = guard_selfcheck(ws, callback_data.sc, callback_data.item, callback_answer)
    if not isinstance(item, Item) or await stale_press(query, ws, callback_data, state, callback_answer):
        return
    try:
        answer = ws.record_rect_status(item.id, callback_data.status, by=query.from_user.id, expected_rev=callback_data.rev)
    except StaleAnswer:
        callback_answer.text = _("This item was changed in the meantime. Here is its current answer.")
        await present_item(query, ws, item, state, locale)
        return
    except Frozen as exc:  # signed: read-only until revised (see routers/pledge.py)
        callback_answer.text = frozen_text(exc.submission, locale, clock().tzinfo)
        callback_answer.show_alert = True
        await present_summary(query, ws, state, locale, clock)
        return
    except NotAllowed:
        callback_answer.text = _("This answer is not available for this item.")
        return
    callback_answer.text = _("Saved: {answer}").format(answer=views.rect_label(callback_data.status))
    editing = bool((await state.get_data()).get("edit"))
    await continue_after(query, ws, item, answer, state, locale, clock, after=FollowUp.STATUS, editing=editing)


async def on_followup_text(
    message: Message,
    db: sqlite_utils.Database,
    checklist: Checklist,
    institution: Institution,
    state: FSMContext,
    locale: str,
    clock: Clock,
) -> None:
    ws = workspace(db, checklist, institution)
    item = await current_item(ws, state)
    current_state = await state.get_state()
    if item is None or current_state not in STATE_FOLLOWUPS:
        await resume(message, ws, state, locale, clock)
        return
    followup = STATE_FOLLOWUPS[current_state]
    data = await state.get_data()
    editing = bool(data.get("edit"))
    assert message.from_user is not None
    try:
        answer = ws.record_followup(
            item.id, followup, message.text, by=message.from_user.id, today=clock().date(), expected_rev=shown_rev(data, item.id)
        )
    except StaleAnswer as exc:
        # A colleague saved this item after the prompt was shown: theirs stands.
        await message.answer(views.stale_typed_text(ws, item, followup, exc.current, locale))
        current = exc.current
        expected = Choice.NO if followup is FollowUp.CORRECTION else Choice.NONCOMPLIANT
        if (
            current is not None
            and current.value is expected
            and (followup is not FollowUp.TARGET_DATE or current.rect_status is RectStatus.IN_PROGRESS)
        ):
            await present_followup(message, ws, item, followup, current, state, locale, clock, editing=editing)
        else:
            await present_item(message, ws, item, state, locale)
        return
    except InvalidInput as exc:
        await message.answer(views.invalid_input_text(exc, locale, clock().date()))
        current = ws.answer(item.id)
        if current is not None:
            await present_followup(message, ws, item, followup, current, state, locale, clock, editing=editing)
        return
    except Frozen as exc:
        await message.answer(frozen_text(exc.submission, locale, clock().tzinfo))
        await present_summary(message, ws, state, locale, clock)
        return
    except NotAllowed:
        # The answer was changed (by a colleague) so this detail no longer belongs to it.
        await message.answer(_("This item was changed in the meantime. Here is its current answer."))
        await present_item(message, ws, item, state, locale)
        return
    if followup is FollowUp.CORRECTION:
        await message.answer(views.correction_recorded_text(answer))
    await continue_after(message, ws, item, answer, state, locale, clock, after=followup, editing=editing)


async def on_question_text(
    message: Message,
    db: sqlite_utils.Database,
    checklist: Checklist,
    institution: Institution,
    state: FSMContext,
    locale: str,
    clock: Clock,
) -> None:
    ws = workspace(db, checklist, institution)
    item = await current_item(ws, state)
    assert message.from_user is not None
    if item is None or item.kind != "text":
        await message.answer(_("Please answer with the buttons under the question. Here it is again:"))
        await resume(message, ws, state, locale, clock, again=True)
        return
    try:
        answer = ws.record_text(item.id, message.text, by=message.from_user.id, expected_rev=shown_rev(await state.get_data(), item.id))
    except StaleAnswer as exc:
        await message.answer(views.stale_typed_text(ws, item, None, exc.current, locale))
        await present_item(message, ws, item, state, locale)
        return
    except Frozen as exc:
        await message.answer(frozen_text(exc.submission, locale, clock().tzinfo))
        await present_summary(message, ws, state, locale, clock)
        return
    except InvalidInput as exc:
        await message.answer(views.invalid_input_text(exc, locale, clock().date(), item))
        await present_item(message, ws, item, state, locale)
        return
    await continue_after(message, ws, item, answer, state, locale, clock, after=None, editing=False)


# --- evidence ------------------------------------------------------------------------


async def on_evidence(
    message: Message,
    db: sqlite_utils.Database,
    checklist: Checklist,
    institution: Institution,
    state: FSMContext,
    locale: str,
    clock: Clock,
    settings: Settings,
) -> None:
    ws = workspace(db, checklist, institution)
    item = await current_item(ws, state)
    answer = ws.answer(item.id) if item is not None else None
    assert message.from_user is not None
    if item is None or answer is None or answer.value is not Choice.NONCOMPLIANT:
        await message.answer(_("Files are accepted only as evidence for a non-compliant item. Nothing was saved."))
        return
    signed = ws.submission()
    if signed is not None:  # read-only while signed; add_evidence would raise Frozen
        await message.answer(frozen_text(signed, locale, clock().tzinfo))
        return
    limits = UploadLimits.from_settings(settings)
    try:
        if message.photo:
            photo = message.photo[-1]  # the largest size Telegram made
            ws.add_evidence(
                item.id,
                by=message.from_user.id,
                limits=limits,
                kind="photo",
                file_id=photo.file_id,
                file_unique_id=photo.file_unique_id,
                file_size=photo.file_size,
                mime_type="image/jpeg",
            )
        else:
            document = message.document
            assert document is not None
            ws.add_evidence(
                item.id,
                by=message.from_user.id,
                limits=limits,
                kind="document",
                file_id=document.file_id,
                file_unique_id=document.file_unique_id,
                file_name=document.file_name,
                mime_type=document.mime_type,
                file_size=document.file_size,
            )
    except UploadRefused as exc:
        await message.answer(views.upload_refused_text(exc, locale, ws.interview.position(item.id)))
    else:
        await message.answer(
            _("Evidence saved for item {number} ({count} file(s) so far).").format(
                number=ws.interview.position(item.id), count=ws.evidence_count(item.id)
            )
        )
    current_state = await state.get_state()
    followup = STATE_FOLLOWUPS.get(current_state or "")
    editing = bool((await state.get_data()).get("edit"))
    if followup is not None:
        await present_followup(message, ws, item, followup, answer, state, locale, clock, editing=editing)
    else:
        await present_item(message, ws, item, state, locale)


async def on_unsupported_content(
    message: Message,
    db: sqlite_utils.Database,
    checklist: Checklist,
    institution: Institution,
    state: FSMContext,
    locale: str,
    clock: Clock,
) -> None:
    await message.answer(_("Sorry, I can only read text messages, button presses, and photos or documents as evidence."))
    await resume(message, workspace(db, checklist, institution), state, locale, clock, again=True)


# --- navigation ----------------------------------------------------------------------


async def on_nav(
    query: CallbackQuery,
    callback_data: NavCb,
    db: sqlite_utils.Database,
    checklist: Checklist,
    institution: Institution,
    state: FSMContext,
    locale: str,
    clock: Clock,
    callback_answer: CallbackAnswer,
) -> None:
    ws = workspace(db, checklist, institution)
    item = guard_selfcheck(ws, callback_data.sc, callback_data.item, callback_answer)
    if item is False:
        return
    action = callback_data.action
    if action in (NavAction.OPEN, NavAction.PREV, NavAction.SKIP, NavAction.GUIDE, NavAction.KEEP) and item is None:
        callback_answer.text = _("This button is no longer valid.")
        return
    assert item is None or isinstance(item, Item)
    if action is NavAction.OPEN:
        assert item is not None
        await present_item(query, ws, item, state, locale)
    elif action is NavAction.PREV:
        assert item is not None
        previous = ws.interview.previous(item.id)
        if previous is None:
            callback_answer.text = _("This is the first item.")
        else:
            await present_item(query, ws, previous, state, locale)
    elif action is NavAction.SKIP:
        assert item is not None
        following = ws.interview.skip_target(ws.answers(), item.id)
        if following is None:
            callback_answer.text = _("This is the last item.")
        else:
            await present_item(query, ws, following, state, locale)
    elif action is NavAction.GUIDE:
        assert item is not None
        guide = not bool((await state.get_data()).get("guide"))
        await present_item(query, ws, item, state, locale, guide=guide)
    elif action is NavAction.KEEP:
        assert item is not None
        followup = STATE_FOLLOWUPS.get(await state.get_state() or "")
        answer = ws.answer(item.id)
        if followup is None or answer is None or (await state.get_data()).get("item") != item.id:
            callback_answer.text = _("This button is no longer valid.")
            return
        await continue_after(query, ws, item, answer, state, locale, clock, after=followup, editing=True)
    elif action is NavAction.TOC:
        await show(query, views.contents_view(ws, ws.progress(), locale), state, live=False)
    elif action is NavAction.REVIEW:
        await show(query, views.review_view(ws, ws.progress(), locale, callback_data.page), state, live=False)
    elif action is NavAction.SUMMARY:
        await present_summary(query, ws, state, locale, clock)
    elif action is NavAction.CONTINUE:  # from /progress, the contents, review, a reminder, "cannot sign yet"
        await resume(query, ws, state, locale, clock)


async def on_section(
    query: CallbackQuery,
    callback_data: SectionCb,
    db: sqlite_utils.Database,
    checklist: Checklist,
    institution: Institution,
    state: FSMContext,
    locale: str,
    callback_answer: CallbackAnswer,
) -> None:
    ws = workspace(db, checklist, institution)
    if guard_selfcheck(ws, callback_data.sc, None, callback_answer) is False:
        return
    if not ws.interview.section_items(callback_data.section):
        callback_answer.text = _("This section is not part of your self-check.")
        return
    await show(query, views.section_view(ws, callback_data.section, ws.answers(), locale), state, live=False)


def build_router() -> Router:
    router = Router(name="interview")
    router.message.filter(IsStaff())
    router.callback_query.filter(IsStaff())
    router.message.register(cmd_progress, Command("progress"))
    router.message.register(cmd_review, Command("review"))
    router.callback_query.register(on_answer, AnswerCb.filter())
    router.callback_query.register(on_rect_status, RectCb.filter())
    router.message.register(on_followup_text, StateFilter(*TYPED_FOLLOWUP_STATES), F.text & ~F.text.startswith("/"))
    router.message.register(on_question_text, Interview.question, F.text & ~F.text.startswith("/"))
    router.message.register(on_evidence, StateFilter(Interview), F.photo | F.document)
    router.message.register(on_unsupported_content, StateFilter(Interview), ~F.text)
    router.callback_query.register(on_nav, NavCb.filter())
    router.callback_query.register(on_section, SectionCb.filter())
    return router
