"""Stored campaigns: which are open or closed, and the self-checks that belong to them.

The definition of a campaign is a file (bot/core/campaigns.py); ``zicha campaign open``
stores it here, ``close`` marks it closed. A closed campaign stays readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from bot.core.campaigns import Campaign
from storage.db import utcnow


@dataclass(frozen=True)
class StoredCampaign:
    id: str
    year: int
    title_zh: str
    title_en: str
    checklist_id: str
    pledge_id: str | None
    level: str
    provinces: tuple[str, ...]
    fields: tuple[str, ...]
    opens_on: str | None
    closes_on: str | None
    deadline: str | None
    editions: tuple[str, ...]
    status: str
    opened_at: str
    closed_at: str | None
    selfchecks: int = 0


def _stored(row: dict[str, Any]) -> StoredCampaign:
    return StoredCampaign(
        id=row["id"],
        year=row["year"],
        title_zh=row["title_zh"],
        title_en=row["title_en"],
        checklist_id=row["checklist_id"],
        pledge_id=row["pledge_id"],
        level=row["level"],
        provinces=tuple(json.loads(row["provinces"])),
        fields=tuple(json.loads(row["fields"])),
        opens_on=row["opens_on"],
        closes_on=row["closes_on"],
        deadline=row["deadline"],
        editions=tuple(json.loads(row["editions"])),
        status=row["status"],
        opened_at=row["opened_at"],
        closed_at=row["closed_at"],
        selfchecks=row.get("selfchecks", 0) or 0,
    )


_SELECT = (
    "SELECT c.*, (SELECT count(*) FROM selfchecks s WHERE s.campaign_id = c.id) AS selfchecks FROM campaigns c"
)


def list_campaigns(db: sqlite_utils.Database) -> list[StoredCampaign]:
    return [_stored(r) for r in list(db.query(_SELECT + " ORDER BY c.year, c.id"))]


def get_campaign(db: sqlite_utils.Database, campaign_id: str) -> StoredCampaign | None:
    row = next(db.query(_SELECT + " WHERE c.id = ?", [campaign_id]), None)
    return _stored(row) if row else None


def closed_campaign_ids(db: sqlite_utils.Database) -> set[str]:
    return {r["id"] for r in list(db.query("SELECT id FROM campaigns WHERE status = 'closed'"))}


def open_campaign(db: sqlite_utils.Database, campaign: Campaign) -> StoredCampaign:
    """Store ``campaign`` as open (again), with its definition as it reads today."""
    now = utcnow()
    values = [
        campaign.year,
        campaign.title.zh_CN,
        campaign.title.en,
        campaign.checklist_id,
        campaign.pledge_id,
        campaign.coverage.level,
        json.dumps(sorted(campaign.coverage.provinces), ensure_ascii=False),
        json.dumps(sorted(campaign.coverage.fields)),
        campaign.opens.isoformat(),
        campaign.closes.isoformat() if campaign.closes else None,
        campaign.deadline.isoformat() if campaign.deadline else None,
        json.dumps(list(campaign.editions)),
    ]
    with db.atomic():
        if next(db.query("SELECT 1 FROM campaigns WHERE id = ?", [campaign.id]), None) is None:
            db.execute(
                "INSERT INTO campaigns (year, title_zh, title_en, checklist_id, pledge_id, level, provinces, fields, "
                "opens_on, closes_on, deadline, editions, id, status, opened_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                [*values, campaign.id, now, now],
            )
        else:
            db.execute(
                "UPDATE campaigns SET year = ?, title_zh = ?, title_en = ?, checklist_id = ?, pledge_id = ?, level = ?, "
                "provinces = ?, fields = ?, opens_on = ?, closes_on = ?, deadline = ?, editions = ?, "
                "status = 'open', closed_at = NULL, updated_at = ? WHERE id = ?",
                [*values, now, campaign.id],
            )
    stored = get_campaign(db, campaign.id)
    assert stored is not None
    return stored


def close_campaign(db: sqlite_utils.Database, campaign_id: str) -> StoredCampaign | None:
    """Mark a campaign closed (its answers, submissions and exports stay); None if unknown."""
    now = utcnow()
    with db.atomic():
        db.execute(
            "UPDATE campaigns SET status = 'closed', closed_at = coalesce(closed_at, ?), updated_at = ? WHERE id = ?",
            [now, now, campaign_id],
        )
    return get_campaign(db, campaign_id)


def ensure_campaign_row(db: sqlite_utils.Database, campaign_id: str, checklist_id: str, year: int, title: str) -> None:
    """A campaign row for self-checks whose campaign was never opened with the CLI (a
    deployment's own checklist, a test); the operator can ``zicha campaign open`` it later."""
    now = utcnow()
    db.execute(
        "INSERT OR IGNORE INTO campaigns (id, year, title_zh, title_en, checklist_id, status, opened_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, 'open', ?, ?)",
        [campaign_id, year, title, title, checklist_id, now, now],
    )


def current_campaign(db: sqlite_utils.Database, user_id: int) -> str | None:
    """The campaign a user last chose to work on (kept across restarts), if any."""
    row = db.execute("SELECT campaign_id FROM user_campaigns WHERE telegram_id = ?", [user_id]).fetchone()
    return str(row[0]) if row else None


def choose_campaign(db: sqlite_utils.Database, user_id: int, campaign_id: str) -> None:
    """Remember the campaign a user works on (a row in ``campaigns`` must exist)."""
    with db.atomic():
        db.execute(
            "INSERT INTO user_campaigns (telegram_id, campaign_id, chosen_at) VALUES (?, ?, ?) "
            "ON CONFLICT(telegram_id) DO UPDATE SET campaign_id = excluded.campaign_id, chosen_at = excluded.chosen_at",
            [user_id, campaign_id, utcnow()],
        )
