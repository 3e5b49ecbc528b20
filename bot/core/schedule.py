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
from typing import Any

DEFAULT_REMINDER_DAYS = (14, 7, 3, 1, 0)
DEFAULT_SEND_TIME = dt.time(9, 0)
DEFAULT_QUIET_HOURS = (dt.time(21, 0), dt.time(8, 0))
_KEYS = frozenset({"checklist", "deadline", "timezone", "reminder_days", "send_time", "quiet_hours"})
# Keys a campaign file (bot/core/campaigns.py) adds to the [campaign] table; they are
# checked there, and the reminder schedule ignores them.
CAMPAIGN_ONLY_KEYS = frozenset(
    {
        "id", "year", "title", "pledge", "opens", "closes", "regulations", "coverage",
        "opens_in_days", "deadline_in_days", "closes_in_days", "demo",
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


def _time(value: Any, where: str) -> dt.time:
    if isinstance(value, dt.time):
        return value.replace(second=0, microsecond=0)
    match = _HHMM.match(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise ScheduleError(f"{where}: expected a time as HH:MM, got {value!r}")
    return dt.time(int(match.group(1)), int(match.group(2)))


def parse_schedule(
    data: dict[str, Any], *, checklist_id: str, default_deadline: dt.date | None, default_tz: str, source: str
) -> CampaignSchedule | None:
    """Build a schedule from a parsed ``[campaign]`` table (``{}`` for all defaults); None if
    there is no deadline at all."""
    unknown = set(data) - _KEYS
    if unknown:
        raise ScheduleError(f"{source}: unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(_KEYS))})")
    if "checklist" in data and data["checklist"] != checklist_id:
        raise ScheduleError(f"{source}: checklist = {data['checklist']!r} but the file is for {checklist_id!r}")
    tz_name = data.get("timezone", default_tz)
    try:
        tz = zoneinfo.ZoneInfo(str(tz_name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{source}: timezone: unknown time zone {tz_name!r} (use an IANA name such as Asia/Shanghai)") from None
    deadline = data.get("deadline", default_deadline)
    if isinstance(deadline, str):
        try:
            deadline = dt.date.fromisoformat(deadline)
        except ValueError:
            raise ScheduleError(f"{source}: deadline: expected a date YYYY-MM-DD, got {deadline!r}") from None
    if isinstance(deadline, dt.datetime) or (deadline is not None and not isinstance(deadline, dt.date)):
        raise ScheduleError(f"{source}: deadline: expected a date YYYY-MM-DD (the whole day counts), got {deadline!r}")
    days = data.get("reminder_days", list(DEFAULT_REMINDER_DAYS))
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 366 for d in days)
    ):
        raise ScheduleError(f"{source}: reminder_days: expected a list of whole days 0-366 before the deadline, got {days!r}")
    if len(set(days)) != len(days):
        raise ScheduleError(f"{source}: reminder_days: {days!r} names a day twice")
    send_time = _time(data.get("send_time", DEFAULT_SEND_TIME), f"{source}: send_time")
    quiet_raw = data.get("quiet_hours", "21:00-08:00")
    parts = str(quiet_raw).replace("–", "-").split("-") if isinstance(quiet_raw, str) else []
    if len(parts) != 2:
        raise ScheduleError(f"{source}: quiet_hours: expected \"HH:MM-HH:MM\" such as \"21:00-08:00\", got {quiet_raw!r}")
    quiet = QuietHours(_time(parts[0], f"{source}: quiet_hours"), _time(parts[1], f"{source}: quiet_hours"), tz)
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
