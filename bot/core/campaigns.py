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

    [campaign.sample]                  # optional: the "双随机" inspection sample's quotas (bot/core/sampling.py)
    basis = "国市监检测发〔2023〕90号 二"  # where the numbers come from
    quotas = { food = 10, motor-vehicle = 10, other = 35 }   # field id (or other) = institutions, drawn in this order

Instead of fixed dates a campaign may give ``opens_in_days``, ``deadline_in_days`` and
``closes_in_days`` relative to today (the demo campaign does, so it never goes stale).
Whether a campaign is open or closed is stored (``zicha campaign open`` / ``close``); this
module decides what a definition says and whom it covers. No I/O beyond reading files.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, ValidationError, field_validator, model_validator

from bot.core import fields as fields_registry
from bot.core import regulations
from bot.core.checklist import Checklist, Localized
from bot.core.fileformat import FileModel, Reason, allowed_keys, first_error, reason_of, unknown_key
from bot.core.schedule import CAMPAIGN_ONLY_KEYS, CampaignSchedule, parse_schedule

SCHEDULE_KEYS = frozenset({"checklist", "deadline", "timezone", "reminder_days", "send_time", "quiet_hours"})
CAMPAIGN_KEYS = CAMPAIGN_ONLY_KEYS
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
    sample_quotas: tuple[tuple[str, int], ...] = ()  # the inspection sample's (field or "other", number), in order
    sample_basis: str = ""  # where those numbers come from
    schedule_table: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    path: str = ""

    @property
    def timezone(self) -> str | None:
        """The campaign's time zone (``timezone`` in its file): its opens, deadline and closes
        are days there, as its reminders' times are; None: the deployment's (ZICHA_TIMEZONE)."""
        value = self.schedule_table.get("timezone")
        return str(value) if value is not None else None

    def local_day(self, now: dt.datetime, default_tz: str) -> dt.date:
        """The day ``now`` is in the campaign's time zone (else ``default_tz``)."""
        if now.tzinfo is None:  # a naive moment: taken as it is
            return now.date()
        return now.astimezone(zoneinfo.ZoneInfo(self.timezone or default_tz)).date()

    def applied_to(self, checklist: Checklist, *, named: bool = True) -> Checklist:
        """``checklist`` as this campaign runs it (``Checklist.for_campaign``); ``named``:
        with the campaign's title, as when several run at once (each digest names its own)."""
        return checklist.for_campaign(
            self.id, self.deadline, pledge_id=self.pledge_id, coverage=self.coverage, title=self.title if named else None,
            sample_quotas=self.sample_quotas, sample_basis=self.sample_basis, timezone=self.timezone,
        )  # fmt: skip

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


def _as_date(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError("not a date")  # worded by _RULES


Day = Annotated[dt.date, BeforeValidator(_as_date)]
Days = Annotated[int, Field(ge=-3660, le=3660)]
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class TitleFile(FileModel):
    zh_CN: NonEmpty
    en: NonEmpty


class CoverageFile(FileModel):
    """``[campaign.coverage]``: whom the campaign asks."""

    level: str
    provinces: list[str] = Field(default_factory=list)
    fields: list[str] = Field(default_factory=list)

    @field_validator("level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        if level not in LEVELS:
            raise Reason(f"coverage.level must be national or provincial, got {level!r}")
        return level

    @field_validator("provinces")
    @classmethod
    def _known_provinces(cls, names: list[str]) -> list[str]:
        from bot.core.roster import resolve_province

        resolved = []
        for name in names:
            province = resolve_province(name)
            if province is None:
                raise Reason(f"coverage.provinces: unknown province {name!r}")
            resolved.append(province)
        return resolved

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, names: list[str]) -> list[str]:
        resolved = []
        for name in names:
            field_id = fields_registry.resolve_field(name)
            if field_id is None:
                raise Reason(f"coverage.fields: unknown field {name!r} (see checklists/fields.toml)")
            resolved.append(field_id)
        return resolved


class SampleFile(FileModel):
    """``[campaign.sample]``: the quotas of the "双随机" inspection sample."""

    quotas: dict[str, int]
    basis: str = ""

    @field_validator("quotas")
    @classmethod
    def _drawable(cls, quotas: dict[str, int]) -> dict[str, int]:
        from bot.core.sampling import OTHER, SampleError, check_quotas

        resolved: list[tuple[str, int]] = []
        for name, number in quotas.items():
            field_id = OTHER if name == OTHER else fields_registry.resolve_field(name)
            if field_id is None:
                raise Reason(f"sample.quotas: unknown field {name!r} (see checklists/fields.toml, or other)")
            resolved.append((field_id, number))
        try:
            return dict(check_quotas(resolved, fields_registry.field_ids()))
        except SampleError as exc:
            raise Reason(f"sample.quotas: {exc}") from None


class CampaignFile(FileModel):
    """The campaign's own keys of a ``[campaign]`` table (the reminder keys are
    :class:`bot.core.schedule.ScheduleFile`'s)."""

    id: Annotated[str, StringConstraints(pattern=_ID.pattern.join("^$"))] | None = None
    checklist: NonEmpty
    year: Annotated[int, Field(ge=2000, le=2100)]
    title: TitleFile
    pledge: NonEmpty | None = None
    opens: Day | None = None
    opens_in_days: Days | None = None
    closes: Day | None = None
    closes_in_days: Days | None = None
    deadline: Day | None = None
    deadline_in_days: Days | None = None
    coverage: CoverageFile = CoverageFile(level="national")
    regulations: list[str] = Field(default_factory=list)
    demo: bool = False
    sample: SampleFile | None = None

    @field_validator("regulations")
    @classmethod
    def _editions_exist(cls, editions: list[str]) -> list[str]:
        for edition in editions:
            try:
                cite = regulations.check_citation(edition)
            except regulations.RegulationError as exc:
                raise Reason(f"regulations: {exc}") from None
            if cite.article is not None:
                raise Reason(f"regulations: {edition!r} names an article; list editions (regulation:edition)")
        return editions

    @model_validator(mode="after")
    def _one_form_per_date(self) -> CampaignFile:
        for key in ("opens", "closes", "deadline"):
            if getattr(self, key) is not None and getattr(self, f"{key}_in_days") is not None:
                raise Reason(f"give {key} or {key}_in_days, not both")
        if self.opens is None and self.opens_in_days is None:
            raise Reason("opens (or opens_in_days) is required")
        return self

    def day(self, key: str, today: dt.date) -> dt.date | None:
        relative: int | None = getattr(self, f"{key}_in_days")
        return today + dt.timedelta(days=relative) if relative is not None else getattr(self, key)


# What a key must be, said when pydantic finds it is not ({input!r}: the value in the file).
_RULES = {
    "id": "id must match ^[a-z0-9][a-z0-9-]{{0,39}}$, got {input!r}",
    "checklist": "checklist is required (the id of a checklist file)",
    "year": "year must be a year such as 2025, got {input!r}",
    "title": "title must have non-empty zh_CN and en",
    "pledge": "pledge must be the id of a file in checklists/pledges/",
    "opens": "opens: expected a date YYYY-MM-DD, got {input!r}",
    "closes": "closes: expected a date YYYY-MM-DD, got {input!r}",
    "deadline": "deadline: expected a date YYYY-MM-DD, got {input!r}",
    "opens_in_days": "opens_in_days: expected a whole number of days, got {input!r}",
    "closes_in_days": "closes_in_days: expected a whole number of days, got {input!r}",
    "deadline_in_days": "deadline_in_days: expected a whole number of days, got {input!r}",
    "coverage": "coverage must be a table ([campaign.coverage])",
    "regulations": 'regulations must be a list of editions such as "order39:2021"',
    "demo": "demo must be true or false",
    "sample": "sample must be a table ([campaign.sample]) with quotas = { field = number, … }",
}
_COVERAGE_RULES = {
    "level": "coverage.level must be national or provincial, got {input!r}",
    "provinces": "coverage.provinces must be a list of province names",
    "fields": "coverage.fields must be a list of field ids",
}


def _campaign_reason(table: dict[str, Any], exc: ValidationError) -> str:
    error = first_error(exc)
    reason = reason_of(error)
    if reason is not None:
        return reason.reason
    loc = tuple(error["loc"])
    key = str(loc[0])
    if error["type"] == "extra_forbidden" and len(loc) == 1:
        return unknown_key(key, allowed_keys(CampaignFile) | SCHEDULE_KEYS)
    if key == "coverage" and len(loc) > 1:
        sub = str(loc[1])
        if error["type"] == "extra_forbidden":
            return f"coverage: unknown key {sub!r} (allowed: level, provinces, fields)"
        raw = table.get("coverage")
        value = raw.get(sub) if isinstance(raw, dict) else None
        return _COVERAGE_RULES[sub].format(input=value)
    if key == "sample" and len(loc) > 1:
        sub = str(loc[1])
        if error["type"] == "extra_forbidden":
            return f"sample: unknown key {sub!r} (allowed: quotas, basis)"
        if sub == "quotas":
            return "sample.quotas must be a table of field ids and whole numbers, such as { food = 10, other = 35 }"
        return "sample.basis must be text"
    return _RULES[key].format(input=table.get(key))


def parse_campaign(table: dict[str, Any], *, path: str, default_id: str, today: dt.date) -> Campaign:
    # The reminder keys are the schedule's: checked by parse_schedule below.
    own = {k: v for k, v in table.items() if k not in SCHEDULE_KEYS or k in ("checklist", "deadline")}
    try:
        file = CampaignFile.model_validate(own)
    except ValidationError as exc:
        raise _fail(path, _campaign_reason(own, exc)) from None
    campaign_id = file.id or default_id
    if not _ID.fullmatch(campaign_id):
        raise _fail(path, _RULES["id"].format(input=campaign_id))
    opens = file.day("opens", today)
    assert opens is not None
    closes = file.day("closes", today)
    deadline = file.day("deadline", today)
    if closes is not None and closes < opens:
        raise _fail(path, f"closes ({closes}) is before opens ({opens})")
    if deadline is not None and (deadline < opens or (closes is not None and deadline > closes)):
        raise _fail(path, f"deadline ({deadline}) must lie between opens and closes")
    coverage = file.coverage
    schedule_table = {k: v for k, v in table.items() if k in SCHEDULE_KEYS and k != "deadline"}
    campaign = Campaign(
        id=campaign_id,
        year=file.year,
        title=Localized(file.title.zh_CN, file.title.en),
        checklist_id=file.checklist,
        pledge_id=file.pledge,
        opens=opens,
        closes=closes,
        deadline=deadline,
        coverage=Coverage(coverage.level, frozenset(coverage.provinces), frozenset(coverage.fields)),
        editions=tuple(file.regulations),
        demo=file.demo,
        sample_quotas=tuple(file.sample.quotas.items()) if file.sample is not None else (),
        sample_basis=file.sample.basis.strip() if file.sample is not None else "",
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
