"""Several campaigns at once: which ones run, which an institution answers, which a user
is working on, and which a regulator sees.

A deployment that lists several campaigns (``ZICHA_CAMPAIGN=a,b``) builds one
``CampaignRegistry``; the conversation engine, reminders, digests, /status and the
exports ask it for "the checklist of this campaign" — the campaign's table with its id,
deadline, pledge and coverage attached (``Checklist.for_campaign``), so every service
that takes a checklist works per campaign without knowing about the others.

Open means: opened (not closed with ``zicha campaign close``) and today between its
opens and closes dates. A campaign that is not open stays readable (answers, signed
submission, PDF) for the institutions that have a self-check in it, and read-only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from bot.core.campaigns import Campaign, scope_meets
from bot.core.checklist import Checklist
from bot.core.scope import Scope
from storage import campaigns as campaign_store
from storage.answers import find_selfcheck
from storage.institutions import Institution


@dataclass(frozen=True)
class Running:
    """One campaign as it runs today: its definition, its checklist, whether it is open."""

    campaign: Campaign
    checklist: Checklist
    open: bool  # answers can be changed (for staff: and the campaign covers their institution)
    # False: open, but it no longer covers this institution (its province or fields changed
    # in the roster): the self-check it has there stays readable, not changeable.
    covers: bool = True

    @property
    def id(self) -> str:
        return self.campaign.id

    def title(self, locale: str) -> str:
        return self.campaign.title.get(locale)


class CampaignRegistry:
    """The campaigns a deployment runs, by id (their order is the order shown)."""

    def __init__(
        self, campaigns: Iterable[Campaign], checklists: dict[str, Checklist], *, default_tz: str = "Asia/Shanghai"
    ) -> None:
        """``default_tz``: the time zone of a campaign that names none (ZICHA_TIMEZONE)."""
        self.campaigns: dict[str, Campaign] = {c.id: c for c in campaigns}
        self.default_tz = default_tz
        self.checklists: dict[str, Checklist] = {}
        for campaign in self.campaigns.values():
            if campaign.checklist_id not in checklists:
                raise ValueError(f"campaign {campaign.id!r}: no checklist with id {campaign.checklist_id!r}")
            self.checklists[campaign.id] = campaign.applied_to(checklists[campaign.checklist_id])

    def ensure_stored(self, db: sqlite_utils.Database) -> None:
        """A campaigns row for each (as ``zicha campaign open`` would), so choices and
        self-checks can refer to it; a campaign closed by the operator stays closed."""
        for campaign in self.campaigns.values():
            if campaign_store.get_campaign(db, campaign.id) is None:
                campaign_store.open_campaign(db, campaign)

    def checklist(self, campaign_id: str) -> Checklist | None:
        return self.checklists.get(campaign_id)

    def day_of(self, campaign: Campaign, when: dt.date | dt.datetime) -> dt.date:
        """The day ``when`` is where the campaign runs (its own time zone): a moment is
        placed there; a day (the CLI's ``--today``) is taken as it is."""
        return campaign.local_day(when, self.default_tz) if isinstance(when, dt.datetime) else when

    def runs(self, db: sqlite_utils.Database, today: dt.date | dt.datetime) -> list[Running]:
        """Every campaign: national first, then newest first, broad before field-specific, by id.
        ``today``: now (each campaign open by the day it is in its own time zone), or a day."""
        closed = campaign_store.closed_campaign_ids(db)
        found = [
            Running(c, self.checklists[c.id], c.id not in closed and c.is_open_on(self.day_of(c, today)))
            for c in self.campaigns.values()
        ]
        return sorted(
            found,
            key=lambda r: (
                r.campaign.coverage.level != "national",
                -r.campaign.year,
                bool(r.campaign.coverage.fields),
                r.id,
            ),
        )

    def for_institution(self, db: sqlite_utils.Database, institution: Institution, today: dt.date | dt.datetime) -> list[Running]:
        """What the institution's staff may open: the open campaigns that cover it, then the
        others in which it has a self-check, read-only: closed ones, and open ones that no
        longer cover it (``covers=False``: the roster changed its province or fields after
        it answered, and a signed pledge among them must stay within reach)."""
        result = []
        for run in self.runs(db, today):
            covered = run.campaign.coverage.covers(institution.level, institution.province, institution.fields)
            if run.open and covered:
                result.append(run)
            elif find_selfcheck(db, institution.id, run.id) is not None:
                result.append(run if not run.open else dataclasses.replace(run, open=False, covers=False))
        return sorted(result, key=lambda r: not r.open)

    def current(
        self, db: sqlite_utils.Database, user_id: int, institution: Institution, today: dt.date | dt.datetime
    ) -> tuple[Running | None, list[Running]]:
        """(the campaign the user works on, every campaign they may open). The stored choice
        if it is still available; else the only open one (or the only one at all); else
        None (they must choose)."""
        available = self.for_institution(db, institution, today)
        chosen = campaign_store.current_campaign(db, user_id)
        for run in available:
            if run.id == chosen:
                return run, available
        open_ones = [r for r in available if r.open]
        if len(open_ones) == 1:
            return open_ones[0], available
        if not open_ones and len(available) == 1:  # only a closed one left: read it
            return available[0], available
        return None, available

    def choose(self, db: sqlite_utils.Database, user_id: int, campaign_id: str) -> None:
        self.ensure_stored(db)
        campaign_store.choose_campaign(db, user_id, campaign_id)

    def for_scope(
        self, db: sqlite_utils.Database, scope: Scope, today: dt.date | dt.datetime, *, open_only: bool = False
    ) -> list[Running]:
        """The campaigns a regulator with ``scope`` sees: open ones first."""
        runs = [
            r for r in self.runs(db, today) if scope_meets(scope, r.campaign.coverage) and (r.open or not open_only)
        ]
        return sorted(runs, key=lambda r: not r.open)

    def open_checklists(self, db: sqlite_utils.Database, today: dt.date | dt.datetime) -> list[Checklist]:
        return [r.checklist for r in self.runs(db, today) if r.open]
