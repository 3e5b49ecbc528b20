"""A campaign's reminder schedule: when reminders are due, and when bulk messages wait.

Pure policy, no I/O beyond reading the schedule file: every function takes the moment
it is asked about, so tests (and ``zicha remind --at``) can ask about any time.

A schedule lives next to the checklists in ``checklists/campaigns/<checklist-id>.toml``
(a subdirectory, so the checklist loader does not read it)::

    [campaign]
    checklist = "samr-2023-national"
    deadline = 2023-10-27              # optional: the checklist's deadline; the whole day counts
    timezone = "Asia/Shanghai"         # optional: ZICHA_TIMEZONE
    reminder_days = [14, 7, 3, 1, 0]   # days before the deadline; 0 = the deadline's morning
    send_time = "09:00"                # local time reminders become due
    quiet_hours = "21:00-08:00"        # no bulk messages in this window (local time)

Every key is optional: a checklist without a schedule file uses these defaults and the
checklist's ``deadline`` (a checklist without a deadline gets no reminders).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, field_validator

from bot.core.fileformat import FileModel, Reason, allowed_keys, first_error, reason_of, suggest

DEFAULT_REMINDER_DAYS = (14, 7, 3, 1, 0)
DEFAULT_SEND_TIME = dt.time(9, 0)
DEFAULT_QUIET_HOURS = (dt.time(21, 0), dt.time(8, 0))
# Keys a campaign file (bot/core/campaigns.py) adds to the [campaign] table; they are
# checked there, and the reminder schedule ignores them.
CAMPAIGN_ONLY_KEYS = frozenset(
    {
        "id", "year", "title", "pledge", "opens", "closes", "regulations", "coverage",
        "opens_in_days", "deadline_in_days", "closes_in_days", "demo", "sample",
    }
)
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A schedule file that cannot be used; the message names the file, the key and why."""


@dataclass(frozen=True)
class Reminder:
    key: str  # "d7": seven days before; "d0": the deadline's morning
    days_before: int
    due: dt.datetime  # aware


@dataclass(frozen=True)
class QuietHours:
    start: dt.time
    end: dt.time
    tz: zoneinfo.ZoneInfo

    def active(self, now: dt.datetime) -> bool:
        local = now.astimezone(self.tz).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends(self, now: dt.datetime) -> dt.datetime:
        """When the quiet hours that contain ``now`` end (``now`` itself if they are not active)."""
        if not self.active(now):
            return now
        local = now.astimezone(self.tz)
        end = dt.datetime.combine(local.date(), self.end, self.tz)
        if end <= local:
            end += dt.timedelta(days=1)
        return end

    def describe(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class CampaignSchedule:
    checklist_id: str
    deadline: dt.date  # the last day; the deadline passes at the end of it
    tz: zoneinfo.ZoneInfo
    reminder_days: tuple[int, ...] = DEFAULT_REMINDER_DAYS
    send_time: dt.time = DEFAULT_SEND_TIME
    quiet: QuietHours | None = None
    source: str = "defaults"

    @property
    def quiet_hours(self) -> QuietHours:
        return self.quiet or QuietHours(*DEFAULT_QUIET_HOURS, self.tz)

    @property
    def deadline_end(self) -> dt.datetime:
        """The first moment after the deadline (midnight after the last day, local time)."""
        return dt.datetime.combine(self.deadline + dt.timedelta(days=1), dt.time(0, 0), self.tz)

    def reminders(self) -> list[Reminder]:
        """Every reminder of the campaign, earliest first."""
        return [
            Reminder(f"d{days}", days, dt.datetime.combine(self.deadline - dt.timedelta(days=days), self.send_time, self.tz))
            for days in sorted(self.reminder_days, reverse=True)
        ]

    def due_reminder(self, now: dt.datetime) -> Reminder | None:
        """The reminder to send at ``now``: the latest one already due, while the deadline has
        not passed and outside quiet hours. Earlier reminders are never caught up: someone who
        missed the 7-day reminder while the bot was down gets the 3-day one, not both."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if now >= self.deadline_end or self.quiet_hours.active(now):
            return None
        due = [r for r in self.reminders() if r.due <= now]
        return due[-1] if due else None

    def days_left(self, now: dt.datetime) -> int:
        """Whole days from ``now``'s local date to the deadline (0 on the last day)."""
        return (self.deadline - now.astimezone(self.tz).date()).days


def _time(value: Any, where: str = "") -> dt.time:
    if isinstance(value, dt.time):
        return value.replace(second=0, microsecond=0)
    match = _HHMM.match(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise ScheduleError(f"{where}{': ' if where else ''}expected a time as HH:MM, got {value!r}")
    return dt.time(int(match.group(1)), int(match.group(2)))


def _as_time(value: Any) -> dt.time:
    try:
        return _time(value)
    except ScheduleError as exc:
        raise Reason(str(exc)) from None


def _as_deadline(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise Reason(f"expected a date YYYY-MM-DD, got {value!r}") from None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise Reason(f"expected a date YYYY-MM-DD (the whole day counts), got {value!r}")
    return value


_QUIET_FORM = 'expected "HH:MM-HH:MM" such as "21:00-08:00", got {input!r}'


class ScheduleFile(FileModel):
    """The reminder keys of a ``[campaign]`` table, as written; every one is optional."""

    checklist: str | None = None
    deadline: Annotated[dt.date, BeforeValidator(_as_deadline)] | None = None
    timezone: str | None = None  # None: the deployment's (ZICHA_TIMEZONE)
    reminder_days: Annotated[list[Annotated[int, Field(ge=0, le=366)]], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_REMINDER_DAYS)
    )
    send_time: Annotated[dt.time, BeforeValidator(_as_time)] = DEFAULT_SEND_TIME
    quiet_hours: str = "21:00-08:00"

    @field_validator("reminder_days")
    @classmethod
    def _each_day_once(cls, days: list[int]) -> list[int]:
        if len(set(days)) != len(days):
            raise Reason(f"{days!r} names a day twice")
        return days

    @field_validator("quiet_hours")
    @classmethod
    def _two_times(cls, value: str) -> str:
        parts = value.replace("–", "-").split("-")
        if len(parts) != 2:
            raise Reason(_QUIET_FORM.format(input=value))
        for part in parts:
            _as_time(part)
        return value

    def quiet(self, tz: zoneinfo.ZoneInfo) -> QuietHours:
        start, end = self.quiet_hours.replace("–", "-").split("-")
        return QuietHours(_time(start), _time(end), tz)


# What a key must be, said when pydantic finds it is not.
_RULES = {
    "timezone": "unknown time zone {input!r} (use an IANA name such as Asia/Shanghai)",
    "deadline": "expected a date YYYY-MM-DD (the whole day counts), got {input!r}",
    "reminder_days": "expected a list of whole days 0-366 before the deadline, got {input!r}",
    "send_time": "expected a time as HH:MM, got {input!r}",
    "quiet_hours": _QUIET_FORM,
}


def _schedule_error(exc: ValidationError, data: dict[str, Any], source: str, checklist_id: str) -> ScheduleError:
    unknown = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden")
    allowed = allowed_keys(ScheduleFile)
    if unknown:
        hint = suggest(unknown[0], allowed) if len(unknown) == 1 else ""
        return ScheduleError(
            f"{source}: unknown key(s) {', '.join(unknown)}{hint} (allowed: {', '.join(sorted(allowed))})"
        )
    error = first_error(exc)
    key = str(error["loc"][0]) if error["loc"] else ""
    reason = reason_of(error)
    if reason is not None:
        return ScheduleError(f"{source}: {key}: {reason.reason}" if key else f"{source}: {reason.reason}")
    if key == "checklist":
        return ScheduleError(f"{source}: checklist = {data.get('checklist')!r} but the file is for {checklist_id!r}")
    rule = _RULES.get(key, "{input!r} is not allowed here")
    return ScheduleError(f"{source}: {key}: {rule.format(input=data.get(key))}")


def parse_schedule(
    data: dict[str, Any], *, checklist_id: str, default_deadline: dt.date | None, default_tz: str, source: str
) -> CampaignSchedule | None:
    """Build a schedule from a parsed ``[campaign]`` table (``{}`` for all defaults); None if
    there is no deadline at all."""
    try:
        file = ScheduleFile.model_validate(data)
    except ValidationError as exc:
        raise _schedule_error(exc, data, source, checklist_id) from None
    if file.checklist is not None and file.checklist != checklist_id:
        raise ScheduleError(f"{source}: checklist = {file.checklist!r} but the file is for {checklist_id!r}")
    tz_name = file.timezone if file.timezone is not None else default_tz
    try:
        tz = zoneinfo.ZoneInfo(str(tz_name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{source}: timezone: unknown time zone {tz_name!r} (use an IANA name such as Asia/Shanghai)") from None
    deadline = file.deadline if "deadline" in data else default_deadline
    days = file.reminder_days
    send_time = file.send_time.replace(second=0, microsecond=0)
    quiet = file.quiet(tz)
    probe = dt.datetime.combine(dt.date(2000, 1, 3), send_time, tz)
    if quiet.active(probe):
        raise ScheduleError(
            f"{source}: send_time {send_time:%H:%M} falls in the quiet hours {quiet.describe()}: no reminder would go out"
        )
    if deadline is None:
        return None
    return CampaignSchedule(checklist_id, deadline, tz, tuple(sorted(days, reverse=True)), send_time, quiet, source)


def load_schedule(
    directory: str | os.PathLike[str],
    checklist_id: str,
    *,
    default_deadline: dt.date | None,
    default_tz: str,
    path: str | os.PathLike[str] | None = None,
) -> CampaignSchedule | None:
    """The schedule for ``checklist_id``: from ``path`` if given, else
    ``<directory>/<checklist_id>.toml`` if it exists, else the defaults."""
    file = Path(path) if path is not None else Path(directory) / f"{checklist_id}.toml"
    if not file.is_file():
        if path is not None:
            raise ScheduleError(f"{file}: no such schedule file")
        return parse_schedule(
            {}, checklist_id=checklist_id, default_deadline=default_deadline, default_tz=default_tz, source="defaults"
        )
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScheduleError(f"{file}: cannot read the schedule: {exc}") from None
    table = data.get("campaign")
    if not isinstance(table, dict) or set(data) != {"campaign"}:
        raise ScheduleError(f"{file}: expected exactly one [campaign] table")
    table = {k: v for k, v in table.items() if k not in CAMPAIGN_ONLY_KEYS}
    return parse_schedule(
        table, checklist_id=checklist_id, default_deadline=default_deadline, default_tz=default_tz, source=str(file)
    )
