"""The regulator's desk for the "双随机、一公开" inspection sample (/sample): which screen
follows which action, and what is allowed. The desk (``bot.conversation.desk.Desk``) hands
it every sample action and the findings typed in its step.

Every action is checked against the regulator's scope as it is now: a sample is the
regulator's only if it was drawn for exactly their scope in one of their campaigns, and an
institution of it only while their scope holds it. The draw's confirmation and the findings
step live in the conversation state (``SAMPLE_DRAW``, ``FINDINGS``); any other sample screen
ends both, so an old confirmation draws nothing and text typed later is never taken for
another institution's findings. The getters here gather; ``bot.conversation.sample_views``
renders (pure); ``bot.services.sampling`` draws and records.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import sqlite_utils

from bot.campaign_runtime import CampaignRegistry, Running
from bot.conversation import campaign_screens as cs
from bot.conversation import sample_views as samples
from bot.conversation.actions import (
    Action,
    CancelBroadcast,
    DrawSample,
    RecordResult,
    SampleWorkbook,
    ShowPick,
    ShowSample,
    StartFindings,
    TypeText,
    sane_ids,
)
from bot.conversation.screens import Outcome, Screen
from bot.conversation.state import ConversationState, StateStore
from bot.conversation.text import _
from bot.core.checklist import Checklist
from bot.core.interview import InvalidInput, clean_text
from bot.core.sampling import MAX_FINDINGS, InspectionResult
from bot.services.sampling import AlreadyDrawn, draw_sample, pool, quotas_apply, record
from storage.regulators import Regulator
from storage.samples import Sample, SamplePick, get_sample, picks_of, samples_for

log = logging.getLogger(__name__)

# Step names are stored in the database (the Telegram channel's FSM names): never rename one.
FINDINGS = "Sample:findings"  # the findings of one institution of a sample: waiting for the text
FINDINGS_OF = "sample_findings"  # state data: {"sample": id, "id": institution}
SAMPLE_DRAW = "sample_draw"  # state data: {"campaign": id, "preview": id} of the draw being confirmed
SAMPLE_ACTIONS = (ShowSample, DrawSample, ShowPick, RecordResult, StartFindings, SampleWorkbook)


def named(screen: Screen, run: Running | None, locale: str) -> Screen:
    """A screen of one campaign with its name on top (no change when the deployment runs one)."""
    if run is None or not screen.blocks:
        return screen
    return replace(screen, blocks=(cs.campaign_line(run, locale) + "\n" + screen.blocks[0], *screen.blocks[1:]))


class DeskActor(Protocol):
    """Who acts (the engine's ``Actor`` is one)."""

    @property
    def key(self) -> str: ...
    @property
    def locale(self) -> str: ...


class Desk(Protocol):
    """What the sample's flows use of the regulator's desk (``bot.conversation.desk.Desk``)."""

    db: sqlite_utils.Database
    states: StateStore
    settings: Any
    clock: Callable[[], dt.datetime]
    campaigns: CampaignRegistry | None
    checklist: Checklist

    def campaign_for(self, regulator: Regulator, wanted: str) -> tuple[Checklist, Running | None, list[Running]] | Outcome: ...
    def scope_campaign(self, regulator: Regulator, campaign_id: str) -> Running | None: ...


class SampleDesk:
    """The inspection sample's flows, one per desk (``Desk.samples``)."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def handle(self, actor: DeskActor, regulator: Regulator, action: Action) -> Outcome:
        """/sample and its buttons: the sample of the regulator's scope in a campaign (or the
        way to draw it), one institution drawn, its result, the workbook. Any of them but
        "write the findings" and the draw's confirmation ends a findings step or a draw
        being confirmed, so text typed later is never taken for another institution's
        findings, and an old confirmation draws nothing."""
        state = self.desk.states.load(actor.key)
        outcome = self.step(actor, regulator, action, state)
        keeps = isinstance(action, StartFindings) or (isinstance(action, DrawSample) and not action.preview)
        pending = state.step == FINDINGS or state.data.get(FINDINGS_OF) or state.data.get(SAMPLE_DRAW)
        if outcome.state is None and not keeps and pending:
            step = None if state.step == FINDINGS else state.step
            outcome.state = ConversationState(step, {**state.data, FINDINGS_OF: None, SAMPLE_DRAW: None})
        return outcome

    def step(self, actor: DeskActor, regulator: Regulator, action: Action, state: ConversationState) -> Outcome:
        tz, locale = self.desk.settings.tz, actor.locale
        if isinstance(action, ShowSample | DrawSample):
            picked = self.desk.campaign_for(regulator, action.campaign)
            if isinstance(picked, Outcome):
                return picked
            checklist, run, _runs = picked
            drawn = samples_for(self.desk.db, checklist.campaign_key, regulator.scope)
            campaign = run.id if run is not None else ""
            if drawn:
                sample = drawn[-1]
                notice = samples.already_drawn_text() if isinstance(action, DrawSample) else None
                page = action.page if isinstance(action, ShowSample) else 0
                screen = samples.sample_screen(sample, picks_of(self.desk.db, sample.id, regulator.scope), page, campaign, locale, tz)
                return Outcome(named(screen, run, locale), notice=notice)
            if not checklist.sample_quotas:
                return Outcome(named(samples.no_quotas_screen(), run, locale))
            if not quotas_apply(checklist, regulator.scope):
                screen = samples.not_your_plan_screen(regulator.scope, checklist.sample_quotas, checklist.sample_basis, locale)
                return Outcome(named(screen, run, locale))
            if isinstance(action, ShowSample):
                screen = samples.not_drawn_screen(regulator.scope, campaign, checklist.sample_quotas, checklist.sample_basis, locale)
                return Outcome(named(screen, run, locale))
            return self.draw(actor, regulator, action, checklist, run, state)
        own = self.own_sample(regulator, getattr(action, "sample", 0))
        if own is None:
            return Outcome(notice=samples.sample_stale_text(), alert=True)
        sample = own
        campaign = sample.campaign_id if self.desk.campaigns is not None else ""
        picks = picks_of(self.desk.db, sample.id, regulator.scope)
        if isinstance(action, SampleWorkbook):
            from bot.reports.sample_workbook import sample_workbook  # the writer, loaded when first asked for

            return Outcome(samples.workbook_attachment(sample, sample_workbook(sample, picks, tz), locale))
        assert isinstance(action, ShowPick | RecordResult | StartFindings)
        found = next(((n, p) for n, p in enumerate(picks) if p.institution_id == action.id), None)
        if found is None:
            return Outcome(notice=samples.sample_stale_text(), alert=True)
        index, pick = found
        page = index // samples.PICKS_PAGE_SIZE  # of the institutions the regulator's scope holds now
        if isinstance(action, ShowPick):
            return Outcome(samples.pick_screen(sample, pick, campaign, page, locale))
        if isinstance(action, StartFindings):
            if pick.result is None:
                return Outcome(notice=samples.sample_stale_text())
            screen = samples.findings_prompt_screen(pick, MAX_FINDINGS)
            return Outcome(screen, state=state.moved(FINDINGS, **{FINDINGS_OF: {"sample": sample.id, "id": pick.institution_id}}))
        try:
            result = InspectionResult(action.result)
        except ValueError:
            return Outcome(notice=samples.sample_stale_text())
        record(
            self.desk.db, sample, pick.institution_id, result, findings=None, inspected_on=self.desk.clock().date(),
            by=f"regulator:{regulator.telegram_id}",
        )  # fmt: skip
        recorded = self.pick_of(regulator, sample, pick.institution_id) or pick
        done = samples.recorded_text(recorded)
        return Outcome(samples.pick_screen(sample, recorded, campaign, page, locale, done=done), notice=_("Recorded."))

    def draw(
        self, actor: DeskActor, regulator: Regulator, action: DrawSample, checklist: Checklist, run: Running | None, state: ConversationState
    ) -> Outcome:
        """The draw's confirmation (a preview id kept in the conversation), then the draw, once."""
        campaign = run.id if run is not None else ""
        pending = state.data.get(SAMPLE_DRAW)
        if not action.preview:
            preview = secrets.token_hex(6)
            size = len(pool(self.desk.db, checklist, regulator.scope))
            screen = samples.confirm_draw_screen(regulator.scope, campaign, checklist.sample_quotas, size, preview, actor.locale)
            kept = ConversationState(state.step, {**state.data, SAMPLE_DRAW: {"campaign": campaign, "preview": preview}})
            return Outcome(named(screen, run, actor.locale), state=kept)
        if not isinstance(pending, dict) or pending.get("preview") != action.preview or pending.get("campaign") != campaign:
            return Outcome(notice=samples.sample_stale_text())
        cleared = ConversationState(state.step, {**state.data, SAMPLE_DRAW: None})
        self.desk.states.save(actor.key, cleared)  # one draw per confirmation, whatever is pressed next
        try:
            sample, _result = draw_sample(self.desk.db, checklist, regulator.scope, drawn_by=f"regulator:{regulator.telegram_id}")
        except AlreadyDrawn as exc:  # by the operator's CLI a moment ago
            sample = exc.sample
            screen = samples.sample_screen(sample, picks_of(self.desk.db, sample.id, regulator.scope), 0, campaign, actor.locale, self.desk.settings.tz)
            return Outcome(named(screen, run, actor.locale), notice=samples.already_drawn_text(), state=cleared)
        log.info(
            "inspection sample drawn",
            extra={"event": "sample_drawn", "sample": sample.id, "campaign": checklist.campaign_key, "by": regulator.telegram_id},
        )
        screen = samples.sample_screen(sample, picks_of(self.desk.db, sample.id, regulator.scope), 0, campaign, actor.locale, self.desk.settings.tz)
        return Outcome(named(screen, run, actor.locale), notice=_("Drawn."), state=cleared)

    def own_sample(self, regulator: Regulator, sample_id: int) -> Sample | None:
        """A sample drawn for the regulator's scope as it is now, of one of their campaigns."""
        sample = get_sample(self.desk.db, sample_id) if sane_ids(sample_id) else None
        if sample is None or sample.scope.to_json() != regulator.scope.to_json():
            return None
        if self.desk.campaigns is not None:
            return sample if self.desk.scope_campaign(regulator, sample.campaign_id) is not None else None
        return sample if sample.campaign_id == self.desk.checklist.campaign_key else None

    def pick_of(self, regulator: Regulator, sample: Sample, institution_id: int) -> SamplePick | None:
        return next((p for p in picks_of(self.desk.db, sample.id, regulator.scope) if p.institution_id == institution_id), None)

    def page_of_pick(self, regulator: Regulator, sample: Sample, institution_id: int) -> int:
        """The page of the sample's list (of the institutions the scope holds now) an institution is on."""
        ids = [p.institution_id for p in picks_of(self.desk.db, sample.id, regulator.scope)]
        return ids.index(institution_id) // samples.PICKS_PAGE_SIZE if institution_id in ids else 0

    def findings(self, actor: DeskActor, regulator: Regulator, action: Action) -> Outcome:
        """The findings typed for one institution of a sample (or /cancel)."""
        state = self.desk.states.load(actor.key)
        target = state.data.get(FINDINGS_OF)
        cleared = ConversationState(None, {**state.data, FINDINGS_OF: None})
        if isinstance(action, CancelBroadcast) or not isinstance(target, dict):
            return Outcome(Screen("sample:cancelled", (samples.findings_cancelled_text(),)), state=cleared)
        if not isinstance(action, TypeText) or action.text is None:
            return Outcome(messages=[samples.findings_not_text()])
        try:
            text = clean_text(action.text, MAX_FINDINGS)
        except InvalidInput as exc:
            if exc.code == "too_long":
                return Outcome(messages=[samples.findings_too_long(len(action.text.strip()), MAX_FINDINGS)])
            return Outcome(messages=[samples.findings_not_text()])
        sample = self.own_sample(regulator, int(target.get("sample") or 0))
        pick = self.pick_of(regulator, sample, int(target.get("id") or 0)) if sample is not None else None
        if sample is None or pick is None or pick.result is None:
            return Outcome(messages=[samples.sample_stale_text()], state=cleared)
        day = dt.date.fromisoformat(pick.inspected_on) if pick.inspected_on else self.desk.clock().date()
        record(
            self.desk.db, sample, pick.institution_id, InspectionResult(pick.result), findings=text, inspected_on=day,
            by=f"regulator:{regulator.telegram_id}",
        )  # fmt: skip
        recorded = self.pick_of(regulator, sample, pick.institution_id) or pick
        campaign = sample.campaign_id if self.desk.campaigns is not None else ""
        page = self.page_of_pick(regulator, sample, pick.institution_id)
        screen = samples.pick_screen(sample, recorded, campaign, page, actor.locale, done=samples.recorded_text(recorded))
        return Outcome(screen, state=cleared)


__all__ = ["FINDINGS", "SAMPLE_ACTIONS", "SampleDesk"]
