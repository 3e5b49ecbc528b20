"""The regulator's desk: which screen follows which regulator action, and what is allowed.

Every action is checked against the regulator's account and scope as they are now (read
for every update), never against anything a button carries: a forged page or id selects
only within the scope, and an institution outside it is answered exactly like one that
does not exist. Broadcasts keep their draft in the conversation state (steps
``Broadcast:compose`` and ``Broadcast:confirm``, the same rows as every conversation), and
each preview has an id that its buttons carry, so a forged, repeated or old press queues
nothing.

Getters here gather the data; ``bot.conversation.regulator`` and
``bot.conversation.desk_views`` render it (pure). The engine (``Conversation``) builds one
``Desk`` and hands it every ``DeskAction``, and the typed text or files of a regulator who
is writing a broadcast (``claims``). The workbook (``export``) is slow (a national one is
~40 s of CPU): it is an async generator of outcomes, made in a worker thread, one at a time
per regulator.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import tempfile
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils

from bot.campaign_runtime import CampaignRegistry, Running
from bot.conversation import campaign_screens as cs
from bot.conversation import desk_views as views
from bot.conversation import regulator as reports
from bot.conversation.actions import (
    Action,
    CancelBroadcast,
    DecideBroadcast,
    DecideSendBack,
    DeskAction,
    FindInstitution,
    RemoveStaff,
    RequestExport,
    SendFile,
    ShowInstitution,
    ShowOverdue,
    ShowStaff,
    ShowStatus,
    StartBroadcast,
    StartSendBack,
    TypeText,
    Unsupported,
    sane_ids,
)
from bot.conversation.sample_desk import FINDINGS, SAMPLE_ACTIONS, SampleDesk
from bot.conversation.screens import Outcome, Screen
from bot.conversation.state import ConversationState, StateStore
from bot.conversation.text import _
from bot.core.checklist import Checklist
from bot.core.interview import Interview, InvalidInput
from bot.reports import jobs
from bot.reports.items import CONTACT_ITEM_IDS, confirm_item_ids
from bot.reports.status import institution_in_scope, institution_statuses, overdue_window, status_figures
from bot.services.broadcast import MAX_BROADCAST_LENGTH, Catalog, audience, compose, create_broadcast
from bot.services.sendback import MAX_REASON, reason_text, send_back_submission
from bot.services.sendback import audience as send_back_audience
from storage.answers import get_selfcheck, load_answers
from storage.db import read_snapshot
from storage.institutions import Institution, get_institution, members_of, remove_member
from storage.pledges import Submission, current_for_institution, get_submission
from storage.regulators import Regulator
from storage.reports import find_in_scope, pending_corrections
from storage.sendbacks import send_backs_of, waiting_send_back

log = logging.getLogger(__name__)

# Step names are stored in the database (the Telegram channel's FSM names): never rename one.
COMPOSE = "Broadcast:compose"  # waiting for the text to broadcast
CONFIRM = "Broadcast:confirm"  # preview shown, waiting for send / cancel
BROADCAST_STEPS = (COMPOSE, CONFIRM)
DRAFT = "broadcast"  # state data: {"preview": id, "body": safe HTML}
CAMPAIGN = "broadcast_campaign"  # state data: the campaign a broadcast is limited to (None: all in scope)
REASON = "SendBack:reason"  # a signed self-check is being sent back: waiting for the reason
SEND_BACK_CONFIRM = "SendBack:confirm"  # its preview shown, waiting for send / cancel (or another reason)
SEND_BACK_STEPS = (REASON, SEND_BACK_CONFIRM)
SEND_BACK = "send_back"  # state data: {"id": institution, "sub": submission, "preview": id, "reason": text}
TYPING_STEPS = (COMPOSE, *SEND_BACK_STEPS, FINDINGS)
"""The steps in which a regulator's typed text is the desk's (``claims``)."""

SEARCH_LIMIT = 10
MAX_QUERY = 100


class DeskActor(Protocol):
    """Who acts (the engine's ``Actor`` is one)."""

    @property
    def user_id(self) -> int: ...
    @property
    def institution(self) -> Institution | None: ...
    @property
    def regulator(self) -> Regulator | None: ...
    @property
    def locale(self) -> str: ...
    @property
    def key(self) -> str: ...


class Outbox(Protocol):
    """The running outbox, once there is one (``bot.delivery.scheduler.Background``)."""

    def wake(self) -> None:
        """Look for due rows now."""

    def quiet_now(self) -> str | None:
        """The quiet hours (as text) if they hold bulk messages right now, else None."""


def write_workbook(db: Any, checklist: Checklist, scope: Any, now: dt.datetime) -> bytes:
    """The workbook of ``scope`` on ``db``, the bot's own connection: for a database in
    memory, which the report worker cannot open (call in a thread)."""
    from bot.reports.excel import write_export  # the writer: loaded when the first workbook is asked for

    with tempfile.TemporaryDirectory(prefix="zicha-export-") as tmp:
        path = Path(tmp) / "export.xlsx"
        write_export(db, checklist, scope, now, path)
        return path.read_bytes()


def in_campaign(screen: Screen, run: Running | None, runs: list[Running], locale: str) -> Screen:
    """A regulator's screen of one campaign: its name on top, its own pages, and a button
    for each other campaign of their scope (no change when the deployment runs one)."""
    if run is None:
        return screen
    rows = tuple(
        tuple(replace(b, action=replace(b.action, campaign=run.id)) if isinstance(b.action, ShowOverdue) else b for b in row)
        for row in screen.rows
    )
    blocks = (cs.campaign_line(run, locale) + "\n" + screen.blocks[0], *screen.blocks[1:]) if screen.blocks else screen.blocks
    switch = cs.regulator_campaign_rows(runs, run.id, locale, overdue=screen.kind == "overdue")
    return replace(screen, blocks=blocks, rows=rows + switch)


class Desk:
    """The regulator flows, one per deployment (built by the engine)."""

    def __init__(
        self,
        *,
        db: sqlite_utils.Database,
        checklist: Checklist,
        settings: Any,
        clock: Callable[[], dt.datetime],
        states: StateStore,
        catalog: Catalog | None,
        speaking: Callable[[str], AbstractContextManager[None]],
        campaigns: CampaignRegistry | None = None,
    ) -> None:
        self.db = db
        self.checklist = checklist
        self.settings = settings
        self.clock = clock
        self.states = states
        self.catalog = catalog
        self.speaking = speaking
        self.campaigns = campaigns  # several campaigns at once: a regulator picks one
        self.outbox: Outbox | None = None
        self.exporting: set[int] = set()  # regulators whose workbook is being made
        self.workbook: Callable[[Any, Checklist, Any, dt.datetime], bytes] = write_workbook
        self.samples = SampleDesk(self)  # /sample: the inspection sample's flows

    # --- routing ---------------------------------------------------------------------------

    def claims(self, actor: DeskActor, action: Action) -> bool:
        """Whether ``action`` (typed text, a file) belongs to a broadcast being written or to
        the reason of a send-back."""
        if actor.regulator is None or not isinstance(action, TypeText | SendFile | Unsupported):
            return False
        return self.states.load(actor.key).step in TYPING_STEPS

    def handle(self, actor: DeskActor, action: Action) -> Outcome:
        regulator = actor.regulator
        if regulator is None:
            if actor.institution is None:
                return Outcome(notice=_("Only invited staff can use these buttons. Send /start for help."), alert=True)
            return Outcome(notice=_("This button is no longer valid."))
        if isinstance(action, ShowStatus | ShowOverdue):
            picked = self.campaign_for(regulator, action.campaign)
            if isinstance(picked, Outcome):
                return picked
            checklist, run, runs = picked
            now = self.clock()
            with read_snapshot(self.db):  # the page of names agrees with the figures
                report = status_figures(self.db, checklist, regulator.scope, now)
                if isinstance(action, ShowOverdue):
                    report = overdue_window(self.db, checklist, report, now, action.page, reports.OVERDUE_PAGE_SIZE)
            if isinstance(action, ShowOverdue):
                return Outcome(in_campaign(reports.overdue_screen(report, action.page, actor.locale), run, runs, actor.locale))
            corrections = pending_corrections(self.db, checklist.campaign_key, confirm_item_ids(checklist), regulator.scope)
            screen = reports.status_screen(report, actor.locale, corrections=len({c.institution_id for c in corrections}))
            return Outcome(in_campaign(screen, run, runs, actor.locale))
        if isinstance(action, FindInstitution):
            return self.find(regulator, action.query, actor.locale)
        if isinstance(action, ShowInstitution):
            facts = self.institution_facts(regulator, action.id, actor.locale)
            if facts is None:
                return Outcome(notice=views.not_found_text())
            return Outcome(views.institution_screen(facts, actor.locale, self.settings.tz), fresh=True)
        if isinstance(action, ShowStaff):
            institution = self.institution_for(regulator, action.id)
            if institution is None:
                return Outcome(notice=views.not_found_text())
            return Outcome(views.staff_screen(institution, members_of(self.db, institution.id), actor.locale, self.settings.tz))
        if isinstance(action, RemoveStaff):
            return self.remove_staff(regulator, action, actor.locale)
        if isinstance(action, StartSendBack | DecideSendBack):
            return self.send_back(actor, regulator, action)
        if isinstance(action, SAMPLE_ACTIONS):
            return self.samples.handle(actor, regulator, action)
        typed_or_cancel = isinstance(action, TypeText | SendFile | Unsupported | CancelBroadcast)
        step = self.states.load(actor.key).step if typed_or_cancel else None
        if step in SEND_BACK_STEPS:  # the reason, /cancel
            return self.send_back(actor, regulator, action)
        if step == FINDINGS:
            return self.samples.findings(actor, regulator, action)
        if isinstance(action, StartBroadcast | CancelBroadcast | DecideBroadcast | TypeText | SendFile | Unsupported):
            return self.broadcast(actor, regulator, action)
        return Outcome(notice=_("This button is no longer valid."))  # RequestExport: see export()

    async def handle_off_loop(self, actor: DeskActor, action: ShowStatus | ShowOverdue) -> Outcome:
        """/status and /overdue with the report (its figures counted in SQL, a fifth of a
        second at 54,000 institutions) computed in the report worker process
        (``bot.reports.jobs``), so no one else's press waits for it. A database in
        memory: ``handle`` itself."""
        regulator = actor.regulator
        db_path = getattr(self.settings, "zicha_db", ":memory:")
        if regulator is None or jobs.in_memory(db_path):
            with self.speaking(actor.locale):
                return self.handle(actor, action)
        with self.speaking(actor.locale):
            picked = self.campaign_for(regulator, action.campaign)
        if isinstance(picked, Outcome):
            return picked
        checklist, run, runs = picked
        page = (action.page, reports.OVERDUE_PAGE_SIZE) if isinstance(action, ShowOverdue) else None
        report, corrections = await jobs.run(jobs.status_report, str(db_path), checklist, regulator.scope, self.clock(), page)
        report.checklist = checklist
        with self.speaking(actor.locale):
            if isinstance(action, ShowOverdue):
                screen = reports.overdue_screen(report, action.page, actor.locale)
            else:
                screen = reports.status_screen(report, actor.locale, corrections=corrections)
            return Outcome(in_campaign(screen, run, runs, actor.locale))

    def campaign_for(self, regulator: Regulator, wanted: str) -> tuple[Checklist, Running | None, list[Running]] | Outcome:
        """The checklist a regulator's report is of: the deployment's one, or with several
        campaigns ``wanted`` (empty: the first open one of their scope), with every campaign
        of their scope for the buttons that switch."""
        if self.campaigns is None:
            return self.checklist, None, []
        runs = self.scope_campaigns(regulator)
        run = next((r for r in runs if r.id == wanted), None) if wanted else (runs[0] if runs else None)
        if run is None:
            if wanted:
                return Outcome(notice=_("This campaign is not in your scope."), alert=True)
            return Outcome(Screen("status", (_("No self-check campaign concerns your scope."),)))
        return run.checklist, run, runs

    def scope_campaigns(self, regulator: Regulator, *, open_only: bool = False) -> list[Running]:
        """The campaigns of the regulator's scope, open ones first (none: one checklist)."""
        if self.campaigns is None:
            return []
        return self.campaigns.for_scope(self.db, regulator.scope, self.clock(), open_only=open_only)

    def scope_campaign(self, regulator: Regulator, campaign_id: str) -> Running | None:
        """A campaign of the regulator's scope (open or closed), by id; None for any other."""
        return next((r for r in self.scope_campaigns(regulator) if r.id == campaign_id), None)

    # --- status and institutions -------------------------------------------------------------

    def find(self, regulator: Regulator, query: str, locale: str) -> Outcome:
        text = query.strip()
        if not text:
            return Outcome(views.institution_usage_screen())
        if len(text) > MAX_QUERY:
            return Outcome(views.not_found_screen())
        rows = find_in_scope(self.db, regulator.scope, text, SEARCH_LIMIT + 1)
        exact = [r for r in rows if r.uscc == text.upper()]
        if len(rows) == 1 or exact:
            facts = self.institution_facts(regulator, (exact or rows)[0].id, locale)
            return Outcome(views.not_found_screen() if facts is None else views.institution_screen(facts, locale, self.settings.tz))
        if not rows:
            return Outcome(views.not_found_screen())
        return Outcome(views.search_results_screen(rows[:SEARCH_LIMIT], more=len(rows) > SEARCH_LIMIT))

    def institution_for(self, regulator: Regulator, institution_id: int) -> Institution | None:
        """The institution if it is in the regulator's scope as it is now, else None (forged,
        foreign or out-of-range ids look exactly like ones that do not exist)."""
        if not sane_ids(institution_id) or not institution_in_scope(self.db, regulator.scope, institution_id):
            return None
        return get_institution(self.db, institution_id)

    def institution_facts(self, regulator: Regulator, institution_id: int, locale: str = "zh_CN") -> views.InstitutionFacts | None:
        institution = self.institution_for(regulator, institution_id)
        if institution is None:
            return None
        checklist, campaign, open_now = self.checklist, "", True
        if self.campaigns is not None:  # several: the first of the scope that covers it (open ones first)
            runs = self.scope_campaigns(regulator)
            run = next((r for r in runs if r.checklist.covers(institution.level, institution.province, institution.fields)), None)
            if run is not None:
                checklist, campaign, open_now = run.checklist, cs.campaign_line(run, locale), run.open
        rows = institution_statuses(self.db, checklist, regulator.scope, self.clock(), only=institution.id)
        if not rows:
            return None
        status = rows[0]
        interview = Interview(checklist, institution.fields)
        answers = load_answers(self.db, status.selfcheck_id) if status.selfcheck_id is not None else {}
        contact = [text for i in CONTACT_ITEM_IDS if i in answers and (text := answers[i].text)]
        progress = interview.progress(answers)
        noncompliant = [(interview.position(item.id), item, answers[item.id]) for item in progress.noncompliant]
        # the scope was checked above: the corrections of this one institution
        corrections = pending_corrections(
            self.db, checklist.campaign_key, confirm_item_ids(checklist), regulator.scope, institution_id=institution.id
        )
        submission = current_for_institution(self.db, institution.id, checklist.campaign_key)
        sent_back = send_backs_of(self.db, status.selfcheck_id) if status.selfcheck_id is not None else []
        waiting = status.selfcheck_id is not None and waiting_send_back(self.db, status.selfcheck_id) is not None
        return views.InstitutionFacts(
            institution, status, members_of(self.db, institution.id), contact, progress.done, progress.total,
            noncompliant, corrections, campaign, submission, sent_back, waiting, can_send_back=open_now,
        )  # fmt: skip

    def remove_staff(self, regulator: Regulator, action: RemoveStaff, locale: str) -> Outcome:
        institution = self.institution_for(regulator, action.id)
        if institution is None or action.member == 0 or not sane_ids(abs(action.member)):  # web people: negative
            return Outcome(notice=views.not_found_text())
        tz = self.settings.tz
        member = next((m for m in members_of(self.db, institution.id) if m["telegram_id"] == action.member), None)
        if member is None:
            screen = views.staff_screen(institution, members_of(self.db, institution.id), locale, tz)
            return Outcome(screen, notice=views.no_longer_member_text())
        if not action.ok:
            return Outcome(views.confirm_removal_screen(institution, member))
        removed = remove_member(self.db, institution.id, member["telegram_id"], removed_by=f"regulator:{regulator.telegram_id}")
        log.info(
            "staff member removed by a regulator",
            extra={"event": "member_removed", "institution": institution.id, "by": regulator.telegram_id},
        )
        notice = _("Removed.") if removed else views.no_longer_member_text()
        done = views.removed_text(institution, member)
        return Outcome(views.staff_screen(institution, members_of(self.db, institution.id), locale, tz, done=done), notice=notice)

    # --- sending a signed self-check back for rework (退回整改) ----------------------------

    def send_back_target(
        self, regulator: Regulator, institution_id: int, submission_id: int
    ) -> tuple[Institution, Submission, Checklist] | Outcome:
        """The institution (in the regulator's scope as it is now), its submission (current,
        of that institution, in a campaign of the scope still open to changes) and the
        campaign's checklist; else the notice saying why nothing can be sent back."""
        institution = self.institution_for(regulator, institution_id)
        if institution is None or not sane_ids(submission_id):
            return Outcome(notice=views.not_found_text(), alert=True)
        submission = get_submission(self.db, submission_id)
        selfcheck = get_selfcheck(self.db, submission.selfcheck_id) if submission is not None else None
        if submission is None or selfcheck is None or submission.institution_id != institution.id:
            return Outcome(notice=views.not_found_text(), alert=True)
        checklist = self.checklist
        if self.campaigns is not None:
            run = self.scope_campaign(regulator, selfcheck.campaign_id or "")
            if run is None:
                return Outcome(notice=views.not_found_text(), alert=True)
            if not run.open:
                return Outcome(notice=views.send_back_closed_text(), alert=True)
            checklist = run.checklist
        elif selfcheck.campaign_id != checklist.campaign_key:
            return Outcome(notice=views.not_found_text(), alert=True)
        if not checklist.covers(institution.level, institution.province, institution.fields):  # its staff could not change it
            return Outcome(notice=views.send_back_closed_text(), alert=True)
        if not submission.current:
            return Outcome(notice=views.send_back_not_signed_text(), alert=True)
        return institution, submission, checklist

    def send_back(self, actor: DeskActor, regulator: Regulator, action: Action) -> Outcome:
        """Send back for rework: the button asks for the reason, the reason typed shows a
        preview, its confirmation voids the signature and tells the staff. Every step
        re-checks the scope and the submission; a preview's buttons carry its id, so an old
        or repeated press does nothing."""
        state = self.states.load(actor.key)
        draft = state.data.get(SEND_BACK)
        tz = self.settings.tz
        if isinstance(action, StartSendBack):
            target = self.send_back_target(regulator, action.id, action.sub)
            if isinstance(target, Outcome):
                return target
            institution, submission, _checklist = target
            preview = secrets.token_hex(6)
            draft = {"id": institution.id, "sub": submission.id, "preview": preview, "reason": None}
            screen = views.send_back_reason_screen(institution, submission, preview, MAX_REASON, actor.locale, tz)
            return Outcome(screen, state=state.moved(REASON, **{SEND_BACK: draft}))
        if state.step not in SEND_BACK_STEPS or not isinstance(draft, dict):
            return Outcome(notice=views.send_back_stale_text())
        cleared = ConversationState(None, {**state.data, SEND_BACK: None})
        if isinstance(action, CancelBroadcast):  # /cancel
            return Outcome(Screen("send_back:cancelled", (views.send_back_cancelled_text(),)), state=cleared)
        if isinstance(action, DecideSendBack):
            if not action.preview or draft.get("preview") != action.preview:
                return Outcome(notice=views.send_back_stale_text())
            self.states.save(actor.key, cleared)  # one decision per preview, whatever is pressed next
            if not action.send or not isinstance(draft.get("reason"), str):
                told = views.send_back_cancelled_text()
                return Outcome(Screen("send_back:cancelled", (told,)), notice=told, state=cleared)
            return self.sent_back(actor, regulator, draft, cleared)
        if not isinstance(action, TypeText) or action.text is None:
            return Outcome(messages=[views.send_back_reason_not_text()])
        try:
            reason = reason_text(action.text)
        except InvalidInput as exc:
            if exc.code == "too_long":
                return Outcome(messages=[views.send_back_reason_too_long(len(action.text.strip()), MAX_REASON)])
            return Outcome(messages=[views.send_back_reason_not_text()])
        target = self.send_back_target(regulator, int(draft.get("id") or 0), int(draft.get("sub") or 0))
        if isinstance(target, Outcome):  # revised, or out of scope, since the button
            return Outcome(messages=[target.notice or views.send_back_stale_text()], state=cleared)
        institution, submission, _checklist = target
        preview = secrets.token_hex(6)
        reached, unreachable = send_back_audience(self.db, institution.id)
        screen = views.send_back_preview_screen(institution, submission, reason, reached, unreachable, preview, actor.locale, tz)
        draft = {**draft, "preview": preview, "reason": reason}
        return Outcome(screen, state=state.moved(SEND_BACK_CONFIRM, **{SEND_BACK: draft}))

    def sent_back(self, actor: DeskActor, regulator: Regulator, draft: dict[str, Any], cleared: ConversationState) -> Outcome:
        target = self.send_back_target(regulator, int(draft.get("id") or 0), int(draft.get("sub") or 0))
        if isinstance(target, Outcome):
            return target
        institution, submission, checklist = target
        catalog = self.catalog
        assert catalog is not None, "send-backs need the deployment's translations"
        done = send_back_submission(
            self.db, catalog, submission_id=submission.id, institution=institution, checklist=checklist,
            reason=str(draft["reason"]), sender=self.sender_label(regulator, actor.locale), by=regulator.telegram_id,
            default_locale=self.settings.zicha_locale,
        )  # fmt: skip
        if done is None:  # its staff revised it a moment ago
            return Outcome(notice=views.send_back_not_signed_text(), alert=True, state=cleared)
        _row, told = done
        log.info(
            "submission sent back for rework",
            extra={"event": "send_back", "institution": institution.id, "submission": submission.id, "by": regulator.telegram_id},
        )
        if self.outbox is not None:
            self.outbox.wake()
        facts = self.institution_facts(regulator, institution.id, actor.locale)
        done_text = views.send_back_done_text(institution, told)
        if facts is None:
            return Outcome(Screen("send_back:done", (done_text,)), notice=_("Sent back."), state=cleared)
        screen = views.institution_screen(facts, actor.locale, self.settings.tz, done=done_text)
        return Outcome(screen, notice=_("Sent back."), state=cleared)

    # --- the workbook ----------------------------------------------------------------------

    async def export(self, actor: DeskActor, campaign: str = "") -> AsyncGenerator[Outcome, None]:
        """/export: "preparing", then the workbook of the scope as an attachment (one at a
        time per regulator; a second request meanwhile is told to wait). With several
        campaigns: one workbook for each open one of the scope, or for ``campaign`` only."""
        regulator = actor.regulator
        if regulator is None:
            with self.speaking(actor.locale):
                yield self.handle(actor, RequestExport())
            return
        if regulator.telegram_id in self.exporting:
            with self.speaking(actor.locale):
                yield Outcome(messages=[views.still_preparing_text()])
            return
        with self.speaking(actor.locale):
            targets = self.export_targets(regulator, campaign.strip())
            if isinstance(targets, Outcome):
                yield targets
                return
        self.exporting.add(regulator.telegram_id)
        try:
            with self.speaking(actor.locale):
                preparing = Outcome(messages=[views.preparing_text()])
            yield preparing
            now = self.clock()
            for checklist, run in targets:
                content = await self.workbook_of(regulator, checklist, now)
                with self.speaking(actor.locale):
                    done = Outcome(views.workbook_screen(regulator.scope, now.date(), content, actor.locale, run))
                yield done
        finally:
            self.exporting.discard(regulator.telegram_id)

    def export_targets(self, regulator: Regulator, wanted: str) -> list[tuple[Checklist, Running | None]] | Outcome:
        if self.campaigns is None:
            return [(self.checklist, None)]
        if wanted:
            run = self.scope_campaign(regulator, wanted)
            runs = [run] if run is not None else []
        else:
            runs = self.scope_campaigns(regulator, open_only=True)
        if not runs:
            return Outcome(messages=[_("No such campaign in your scope. Send /status to see the campaigns.")])
        return [(r.checklist, r) for r in runs]

    async def workbook_of(self, regulator: Regulator, checklist: Checklist, now: dt.datetime) -> bytes:
        """The workbook of the regulator's scope, made in the report worker process (a national
        one is millions of cells: in a thread it would slow every press); a database in memory
        cannot be opened there (nor by a connection of its own: that would be another, empty
        database), so it is made in a thread on the bot's connection."""
        db_path = getattr(self.settings, "zicha_db", ":memory:")
        if jobs.in_memory(db_path):
            return await asyncio.to_thread(self.workbook, self.db, checklist, regulator.scope, now)
        with tempfile.TemporaryDirectory(prefix="zicha-export-") as tmp:
            path = Path(tmp) / "export.xlsx"
            await jobs.run(jobs.export_workbook, str(db_path), checklist, regulator.scope, now, str(path))
            return path.read_bytes()

    # --- broadcasts ------------------------------------------------------------------------

    def sender_label(self, regulator: Regulator, locale: str) -> str:
        return regulator.name or regulator.scope.describe(locale)

    def broadcast(self, actor: DeskActor, regulator: Regulator, action: Action) -> Outcome:
        state = self.states.load(actor.key)
        if isinstance(action, StartBroadcast):
            wanted = action.campaign.strip()
            run = self.scope_campaign(regulator, wanted) if wanted else None
            if wanted and run is None:
                return Outcome(messages=[_("No such campaign in your scope. Send /status to see the campaigns.")])
            screen = views.compose_screen(regulator.scope, actor.locale)
            if run is not None:
                screen = replace(screen, blocks=(cs.campaign_line(run, actor.locale) + "\n" + screen.blocks[0],))
            draft = {DRAFT: None, CAMPAIGN: run.id if run is not None else None}
            return Outcome(screen, state=state.moved(COMPOSE, **draft))
        if isinstance(action, CancelBroadcast):
            return Outcome(Screen("broadcast:cancelled", (views.cancelled_text(),)), state=self.cleared(state))
        if isinstance(action, DecideBroadcast):
            return self.decide(actor, regulator, state, action)
        if state.step != COMPOSE:
            return Outcome(notice=_("This button is no longer valid."))
        if not isinstance(action, TypeText) or action.text is None:
            return Outcome(messages=[views.not_text_text()])
        plain = action.text
        if len(plain) > MAX_BROADCAST_LENGTH:
            return Outcome(messages=[views.too_long_text(len(plain), MAX_BROADCAST_LENGTH)])
        body = action.html if action.html is not None else escape(plain)  # safe markup either way
        campaign = self.broadcast_checklist(regulator, state)
        if isinstance(campaign, Outcome):
            return campaign
        reach = audience(self.db, regulator.scope, campaign)
        if reach.total == 0:
            return Outcome(Screen("broadcast:nobody", (views.nobody_text(regulator.scope, actor.locale),)), state=self.cleared(state))
        preview = secrets.token_hex(6)
        screen = views.preview_screen(preview, reach.total, reach.institutions, reach.unreachable, regulator.scope, actor.locale)
        shown = compose(body, self.sender_label(regulator, actor.locale))
        return Outcome(screen, messages=[shown], state=state.moved(CONFIRM, **{DRAFT: {"preview": preview, "body": body}}))

    def cleared(self, state: ConversationState) -> ConversationState:
        """No broadcast step any more (what else the conversation keeps stays)."""
        return ConversationState(None, {**state.data, DRAFT: None, CAMPAIGN: None})

    def broadcast_checklist(self, regulator: Regulator, state: ConversationState) -> Checklist | Outcome | None:
        """The campaign (its checklist) the broadcast being written is limited to, re-checked
        against the scope as it is now (gone from it: the broadcast is called off, never
        widened to everyone); None: everyone in scope."""
        campaign_id = state.data.get(CAMPAIGN)
        if not isinstance(campaign_id, str):
            return None
        run = self.scope_campaign(regulator, campaign_id)
        if run is None:
            told = _("No such campaign in your scope. Send /status to see the campaigns.")
            return Outcome(Screen("broadcast:cancelled", (told,)), state=self.cleared(state))
        return run.checklist

    def decide(self, actor: DeskActor, regulator: Regulator, state: ConversationState, action: DecideBroadcast) -> Outcome:
        draft = state.data.get(DRAFT)
        if not isinstance(draft, dict) or not action.preview or draft.get("preview") != action.preview:
            return Outcome(notice=views.stale_preview_text())
        cleared = self.cleared(state)
        self.states.save(actor.key, cleared)  # one confirm per preview, whatever is pressed next
        if not action.send:
            return Outcome(Screen("broadcast:cancelled", (views.cancelled_text(),)), notice=views.cancelled_text(), state=cleared)
        catalog = self.catalog
        assert catalog is not None, "broadcasts need the deployment's translations"
        campaign = self.broadcast_checklist(regulator, state)
        if isinstance(campaign, Outcome):
            return campaign
        batch_id, queued = create_broadcast(
            self.db, catalog, scope=regulator.scope, body_html=str(draft["body"]),
            sender=self.sender_label(regulator, actor.locale), created_by=regulator.telegram_id,
            report_chat_id=regulator.telegram_id, default_locale=self.settings.zicha_locale, dedup=str(draft["preview"]),
            campaign=campaign,
        )  # fmt: skip
        quiet = None
        if self.outbox is not None:
            self.outbox.wake()
            quiet = self.outbox.quiet_now()
        return Outcome(views.queued_screen(batch_id, queued, quiet), notice=_("Queued."), state=cleared)


__all__ = ["BROADCAST_STEPS", "COMPOSE", "CONFIRM", "FINDINGS", "SEND_BACK_STEPS", "TYPING_STEPS", "Desk", "DeskAction", "Outbox"]
