"""Campaigns as data: which table, which pledge, when, for whom, under which regulations.

A campaign is one year's self-check run by SAMR (national) or a provincial bureau
(provincial). It is defined in ``checklists/campaigns/<id>.toml``, the schedule file format
of :mod:`bot.core.schedule` extended with the campaign's own keys::

    [campaign]
    id = "samr-2025-national"          # optional: the file name without .toml
    year = 2025
    title.zh_CN = "2025年度国家级资质认定检验检测机构自查"
    title.en = "2025 self-check of nationally accredited institutions"
    checklist = "samr-2025-national"
    pledge = "samr-2023-national"      # optional: a file in checklists/pledges/
    opens = 2025-06-01
    closes = 2025-10-31                # optional: after this day the campaign is read-only
    deadline = 2025-09-30
    regulations = ["order39:2025", "order163:2021"]   # editions in force; cites must use these
    # …plus the schedule keys: timezone, reminder_days, send_time, quiet_hours

    [campaign.coverage]
    level = "national"                 # or "provincial"
    provinces = []                     # optional: only institutions in these provinces
    fields = []                        # optional: only institutions working in one of these fields

Instead of fixed dates a campaign may give ``opens_in_days``, ``deadline_in_days`` and
``closes_in_days`` relative to today (the demo campaign does, so it never goes stale).
Whether a campaign is open or closed is stored (``zicha campaign open`` / ``close``); this
module decides what a definition says and whom it covers. No I/O beyond reading files.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core import fields as fields_registry
from bot.core import regulations
from bot.core.checklist import Checklist, Localized
from bot.core.schedule import CAMPAIGN_ONLY_KEYS, CampaignSchedule, parse_schedule

SCHEDULE_KEYS = frozenset({"checklist", "deadline", "timezone", "reminder_days", "send_time", "quiet_hours"})
CAMPAIGN_KEYS = CAMPAIGN_ONLY_KEYS
_COVERAGE_KEYS = frozenset({"level", "provinces", "fields"})
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
LEVELS = ("national", "provincial")


class CampaignError(ValueError):
    """A campaign file that cannot be used; the message names the file, the key and why."""


@dataclass(frozen=True)
class Coverage:
    level: str  # national | provincial
    provinces: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()

    def covers(self, level: str, province: str, institution_fields: Iterable[str]) -> bool:
        if level != self.level:
            return False
        if self.provinces and province not in self.provinces:
            return False
        return not self.fields or not self.fields.isdisjoint(institution_fields)


@dataclass(frozen=True)
class Campaign:
    id: str
    year: int
    title: Localized
    checklist_id: str
    pledge_id: str | None
    opens: dt.date
    closes: dt.date | None
    deadline: dt.date | None
    coverage: Coverage
    editions: tuple[str, ...] = ()  # "regulation:edition" in force
    demo: bool = False
    schedule_table: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    path: str = ""

    def is_open_on(self, day: dt.date) -> bool:
        return self.opens <= day and (self.closes is None or day <= self.closes)

    def overdue_on(self, day: dt.date) -> bool:
        return self.deadline is not None and day > self.deadline

    def schedule(self, default_tz: str) -> CampaignSchedule | None:
        table = dict(self.schedule_table)
        if self.deadline is not None:
            table["deadline"] = self.deadline
        return parse_schedule(
            table, checklist_id=self.checklist_id, default_deadline=self.deadline, default_tz=default_tz, source=self.path
        )

    def check_checklist(self, checklist: Checklist) -> None:
        """CampaignError if the checklist is not this campaign's or cites an edition not in force."""
        if checklist.id != self.checklist_id:
            raise CampaignError(f"{self.path}: checklist {checklist.id!r} is not this campaign's ({self.checklist_id!r})")
        if not self.editions:
            return
        for item in checklist.items:
            for cite in item.cites:
                edition = f"{cite.regulation}:{cite.edition}"
                if edition not in self.editions:
                    raise CampaignError(
                        f"{self.path}: item {item.id!r} of {checklist.id!r} cites {cite} but the campaign's editions "
                        f"in force are {', '.join(self.editions)}"
                    )


def _fail(path: str, reason: str) -> CampaignError:
    return CampaignError(f"{path}: {reason}")


def _date(value: Any, key: str, path: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail(path, f"{key}: expected a date YYYY-MM-DD, got {value!r}")


def _days(value: Any, key: str, path: str) -> int:
    if type(value) is not int or not -3660 <= value <= 3660:
        raise _fail(path, f"{key}: expected a whole number of days, got {value!r}")
    return value


def _localized(value: Any, key: str, path: str) -> Localized:
    if not isinstance(value, dict) or set(value) != {"zh_CN", "en"} or not all(
        isinstance(v, str) and v.strip() for v in value.values()
    ):
        raise _fail(path, f"{key} must have non-empty zh_CN and en")
    return Localized(value["zh_CN"].strip(), value["en"].strip())


def parse_campaign(table: dict[str, Any], *, path: str, default_id: str, today: dt.date) -> Campaign:
    for key in table:
        if key not in CAMPAIGN_KEYS | SCHEDULE_KEYS:
            close = difflib.get_close_matches(key, sorted(CAMPAIGN_KEYS | SCHEDULE_KEYS), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(path, f"unknown key {key!r}{hint}")
    campaign_id = table.get("id", default_id)
    if not isinstance(campaign_id, str) or not _ID.fullmatch(campaign_id):
        raise _fail(path, f"id must match ^[a-z0-9][a-z0-9-]{{0,39}}$, got {campaign_id!r}")
    checklist_id = table.get("checklist")
    if not isinstance(checklist_id, str) or not checklist_id:
        raise _fail(path, "checklist is required (the id of a checklist file)")
    year = table.get("year")
    if type(year) is not int or not 2000 <= year <= 2100:
        raise _fail(path, f"year must be a year such as 2025, got {year!r}")
    title = _localized(table.get("title"), "title", path)
    pledge = table.get("pledge")
    if pledge is not None and (not isinstance(pledge, str) or not pledge):
        raise _fail(path, "pledge must be the id of a file in checklists/pledges/")

    def when(key: str, required: bool) -> dt.date | None:
        relative = f"{key}_in_days"
        if key in table and relative in table:
            raise _fail(path, f"give {key} or {relative}, not both")
        if relative in table:
            return today + dt.timedelta(days=_days(table[relative], relative, path))
        if key in table:
            return _date(table[key], key, path)
        if required:
            raise _fail(path, f"{key} (or {relative}) is required")
        return None

    opens = when("opens", True)
    assert opens is not None
    closes = when("closes", False)
    deadline = when("deadline", False)
    if closes is not None and closes < opens:
        raise _fail(path, f"closes ({closes}) is before opens ({opens})")
    if deadline is not None and (deadline < opens or (closes is not None and deadline > closes)):
        raise _fail(path, f"deadline ({deadline}) must lie between opens and closes")

    raw_cov = table.get("coverage", {"level": "national"})
    if not isinstance(raw_cov, dict):
        raise _fail(path, "coverage must be a table ([campaign.coverage])")
    for key in raw_cov:
        if key not in _COVERAGE_KEYS:
            raise _fail(path, f"coverage: unknown key {key!r} (allowed: level, provinces, fields)")
    level = raw_cov.get("level")
    if level not in LEVELS:
        raise _fail(path, f"coverage.level must be national or provincial, got {level!r}")
    provinces = raw_cov.get("provinces", [])
    field_ids = raw_cov.get("fields", [])
    if not isinstance(provinces, list) or not all(isinstance(p, str) for p in provinces):
        raise _fail(path, "coverage.provinces must be a list of province names")
    from bot.core.roster import resolve_province

    resolved_provinces = set()
    for name in provinces:
        province = resolve_province(name)
        if province is None:
            raise _fail(path, f"coverage.provinces: unknown province {name!r}")
        resolved_provinces.add(province)
    if not isinstance(field_ids, list) or not all(isinstance(f, str) for f in field_ids):
        raise _fail(path, "coverage.fields must be a list of field ids")
    resolved_fields = set()
    for name in field_ids:
        field_id = fields_registry.resolve_field(name)
        if field_id is None:
            raise _fail(path, f"coverage.fields: unknown field {name!r} (see checklists/fields.toml)")
        resolved_fields.add(field_id)

    editions = table.get("regulations", [])
    if not isinstance(editions, list) or not all(isinstance(e, str) for e in editions):
        raise _fail(path, 'regulations must be a list of editions such as "order39:2021"')
    for edition in editions:
        try:
            cite = regulations.check_citation(edition)
        except regulations.RegulationError as exc:
            raise _fail(path, f"regulations: {exc}") from None
        if cite.article is not None:
            raise _fail(path, f"regulations: {edition!r} names an article; list editions (regulation:edition)")
    demo = table.get("demo", False)
    if not isinstance(demo, bool):
        raise _fail(path, "demo must be true or false")
    schedule_table = {k: v for k, v in table.items() if k in SCHEDULE_KEYS and k != "deadline"}
    campaign = Campaign(
        id=campaign_id,
        year=year,
        title=title,
        checklist_id=checklist_id,
        pledge_id=pledge,
        opens=opens,
        closes=closes,
        deadline=deadline,
        coverage=Coverage(level, frozenset(resolved_provinces), frozenset(resolved_fields)),
        editions=tuple(editions),
        demo=demo,
        schedule_table=schedule_table,
        path=path,
    )
    try:
        campaign.schedule("Asia/Shanghai")
    except ValueError as exc:  # ScheduleError: the reminder keys are checked where they are used
        raise CampaignError(str(exc)) from None
    return campaign


def load_campaign(path: str | os.PathLike[str], *, today: dt.date) -> Campaign:
    shown = os.fspath(path)
    try:
        data = tomllib.loads(Path(path).read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _fail(shown, f"cannot read the campaign: {exc}") from None
    table = data.get("campaign")
    if not isinstance(table, dict) or set(data) != {"campaign"}:
        raise _fail(shown, "expected exactly one [campaign] table")
    return parse_campaign(table, path=shown, default_id=Path(path).stem, today=today)


def load_campaigns(directory: str | os.PathLike[str], *, today: dt.date) -> dict[str, Campaign]:
    """Every campaign file in ``directory``, by id. Two files with one id are an error."""
    found: dict[str, Campaign] = {}
    for file in sorted(Path(directory).glob("*.toml")):
        if file.name.startswith("."):
            continue
        campaign = load_campaign(file, today=today)
        if campaign.id in found:
            raise _fail(str(file), f"campaign id {campaign.id!r} is already used by {found[campaign.id].path}")
        found[campaign.id] = campaign
    return found


def covering_campaigns(
    campaigns: Iterable[Campaign],
    *,
    level: str,
    province: str,
    institution_fields: Iterable[str],
    today: dt.date,
    closed: Iterable[str] = (),
) -> list[Campaign]:
    """The open campaigns that cover an institution, national first, then by year and id.

    ``closed`` are the ids closed by an operator (``zicha campaign close``): closed
    campaigns stay readable but nobody is asked to answer them."""
    shut = set(closed)
    fields = tuple(institution_fields)
    found = [
        c
        for c in campaigns
        if c.id not in shut and c.is_open_on(today) and c.coverage.covers(level, province, fields)
    ]
    return sorted(found, key=lambda c: (c.coverage.level != "national", -c.year, c.id))


def campaigns_dir() -> Path:
    from bot.resources import data_dir

    return data_dir("checklists") / "campaigns"


def load_configured_campaign(campaign_id: str, tz: dt.tzinfo) -> Campaign:
    """The shipped campaign ``campaign_id``, its relative dates counted from today in ``tz``."""
    path = campaigns_dir() / f"{campaign_id}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in campaigns_dir().glob("*.toml")))
        raise CampaignError(f"ZICHA_CAMPAIGN: no campaign {campaign_id!r} (known: {known})")
    return load_campaign(path, today=dt.datetime.now(tz).date())


def scope_meets(scope: Any, coverage: Coverage | None) -> bool:
    """Whether a regulator's scope (bot.core.scope.Scope) may contain institutions a
    campaign covers: a national scope sees every campaign; a provincial one the campaigns
    of any province or of one of its own, narrowed to fields only if both name fields."""
    if coverage is None:
        return True
    if not scope.national and coverage.provinces and not (coverage.provinces & scope.provinces):
        return False
    return not scope.fields or not coverage.fields or bool(scope.fields & coverage.fields)
