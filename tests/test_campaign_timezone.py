"""A campaign's dates are days where it runs: its own ``timezone`` (as its reminders count
them), not the server's. A deployment whose ZICHA_TIMEZONE is UTC runs a campaign dated in
China time: it opens at midnight in Beijing, and its deadline passes at midnight there, for
the staff's campaign list, /status, the overdue list and the digest alike."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlite_utils

from bot.campaign_runtime import CampaignRegistry
from bot.core.campaigns import load_campaign
from bot.core.checklist import Checklist
from bot.core.scope import Scope
from bot.reports.status import build_status, past_deadline
from storage.institutions import Institution

UTC = dt.timezone.utc
CAMPAIGN = """[campaign]
id = "nat-tz"
year = 2023
title.zh_CN = "国家级自查（时区）"
title.en = "National self-check (time zone)"
checklist = "samr-2023-national"
opens = 2023-09-01
deadline = 2023-10-27
closes = 2023-12-31
{timezone}
[campaign.coverage]
level = "national"
"""


def _registry(tmp_path: Path, checklist: Checklist, timezone: str | None) -> CampaignRegistry:
    path = tmp_path / "nat-tz.toml"
    path.write_text(CAMPAIGN.format(timezone=f'timezone = "{timezone}"' if timezone else ""), encoding="utf-8")
    campaign = load_campaign(path, today=dt.date(2023, 9, 1))
    return CampaignRegistry([campaign], {checklist.id: checklist}, default_tz="UTC")


def test_a_campaign_in_china_time_opens_and_closes_at_midnight_in_beijing_on_a_utc_server(
    tmp_path: Path, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    registry = _registry(tmp_path, checklist, "Asia/Shanghai")
    before = dt.datetime(2023, 8, 31, 15, 59, tzinfo=UTC)  # 23:59 in Beijing, 31 August
    opened = dt.datetime(2023, 8, 31, 16, 0, tzinfo=UTC)  # 00:00 in Beijing, 1 September
    assert registry.for_institution(db, motor_lab, before) == []
    (run,) = registry.for_institution(db, motor_lab, opened)
    assert run.open and run.id == "nat-tz"
    closing = dt.datetime(2023, 12, 31, 16, 0, tzinfo=UTC)  # 1 January in Beijing: closed
    assert [r.open for r in registry.runs(db, closing)] == [False]

    table = registry.checklists["nat-tz"]
    assert table.timezone == "Asia/Shanghai"
    last_minute = dt.datetime(2023, 10, 27, 15, 59, tzinfo=UTC)
    passed = dt.datetime(2023, 10, 27, 16, 0, tzinfo=UTC)  # still 27 October in UTC
    assert not past_deadline(table, last_minute) and past_deadline(table, passed)
    report = build_status(db, table, Scope(national=True), passed)
    assert report.past_deadline and report.totals.overdue == report.totals.total >= 1  # motor_lab has not signed


def test_a_campaign_without_a_timezone_counts_days_in_the_deployments(
    tmp_path: Path, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    registry = _registry(tmp_path, checklist, None)
    assert registry.checklists["nat-tz"].timezone is None
    assert registry.for_institution(db, motor_lab, dt.datetime(2023, 8, 31, 23, 59, tzinfo=UTC)) == []
    assert [r.open for r in registry.for_institution(db, motor_lab, dt.datetime(2023, 9, 1, 0, 0, tzinfo=UTC))] == [True]
    table = registry.checklists["nat-tz"]
    assert not past_deadline(table, dt.datetime(2023, 10, 27, 23, 59, tzinfo=UTC))
    assert past_deadline(table, dt.datetime(2023, 10, 28, 0, 0, tzinfo=UTC))
    # a day given as a day (the CLI's --today) is taken as it is
    assert [r.open for r in registry.runs(db, dt.date(2023, 9, 1))] == [True]
