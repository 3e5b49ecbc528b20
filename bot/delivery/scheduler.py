"""What runs in the background of ``zicha run``: the APScheduler that triggers reminder
sweeps, and the outbox sender. Started from the dispatcher's startup hook (APScheduler's
AsyncIOScheduler needs the running loop) and stopped from its shutdown hook.

Scheduled work is not kept in an APScheduler job store (it would pickle the jobs): the
jobs are registered at every start with fixed ids, and what was sent lives in SQLite.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

import sqlite_utils
from aiogram import Bot
from aiogram.utils.i18n import I18n
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.campaign_runtime import CampaignRegistry
from bot.config import Settings
from bot.core.checklist import Checklist
from bot.core.schedule import DEFAULT_QUIET_HOURS, CampaignSchedule, QuietHours, load_schedule
from bot.delivery.outbox import OutboxSender, limits_from_settings
from bot.mail import Mailer
from bot.resources import data_dir
from bot.services import reminders
from bot.services.broadcast import queue_report

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
SWEEP_JOB = "reminder-sweep"
SWEEP_AT_SEND_TIME_JOB = "reminder-sweep-send-time"


def campaign_schedule(settings: Settings, checklist: Checklist) -> CampaignSchedule | None:
    """The reminder schedule of the configured checklist (ScheduleError if its file is wrong)."""
    if settings.zicha_campaign:
        from bot.core.campaigns import load_configured_campaign

        first = settings.zicha_campaign.split(",")[0].strip()  # several: each has its own (Background)
        return load_configured_campaign(first, settings.tz).schedule(settings.zicha_timezone)
    return load_schedule(
        data_dir("checklists") / "campaigns",
        checklist.id,
        default_deadline=checklist.deadline,
        default_tz=settings.zicha_timezone,
        path=settings.zicha_schedule,
    )


def quiet_hours(settings: Settings, schedule: CampaignSchedule | None) -> QuietHours:
    return schedule.quiet_hours if schedule is not None else QuietHours(*DEFAULT_QUIET_HOURS, settings.tz)


class Background:
    """The scheduler (``scheduler``, readable by a health check) and the outbox sender."""

    def __init__(
        self,
        *,
        db: sqlite_utils.Database,
        checklist: Checklist,
        i18n: I18n,
        settings: Settings,
        clock: Clock,
        schedule: CampaignSchedule | None,
        campaigns: CampaignRegistry | None = None,
    ) -> None:
        """``campaigns``: several at once, each swept on its own schedule and deadline."""
        self.db = db
        self.checklist = checklist
        self.i18n = i18n
        self.settings = settings
        self.clock = clock
        self.schedule = schedule
        self.campaigns = campaigns
        self.scheduler = AsyncIOScheduler(timezone=settings.tz)
        self.sender: OutboxSender | None = None
        self._sender_task: asyncio.Task[None] | None = None

    async def start(self, bot: Bot) -> None:
        self.sender = OutboxSender(
            bot,
            self.db,
            limits=limits_from_settings(self.settings),
            quiet=quiet_hours(self.settings, self.schedule),
            clock=self.clock,
            on_batch_done=self._report,
            mailer=Mailer.from_settings(self.settings),  # e-mail to web-only staff (issue 11)
        )
        self._sender_task = asyncio.create_task(self.sender.run(), name="outbox-sender")
        if self.settings.zicha_reminders and self.schedule is not None:
            # A sweep at start catches up what was missed while the bot was down, then one
            # every few minutes (for the end of quiet hours, newly bound staff) and one at the
            # send time itself. Each sweep is idempotent; max_instances=1 keeps them apart.
            common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None, "replace_existing": True}
            self.scheduler.add_job(
                self.sweep, "interval", minutes=self.settings.zicha_sweep_minutes, id=SWEEP_JOB,
                next_run_time=dt.datetime.now(self.settings.tz), **common,
            )  # fmt: skip
            for n, schedule in enumerate(self.schedules() or [self.schedule]):
                send_time = schedule.send_time
                self.scheduler.add_job(
                    self.sweep, "cron", hour=send_time.hour, minute=send_time.minute, timezone=schedule.tz,
                    id=SWEEP_AT_SEND_TIME_JOB + (f"-{n}" if n else ""), **common,
                )  # fmt: skip
        self.scheduler.start()
        log.info(
            "background: outbox sender started (%.3g msg/s); reminders %s",
            self.settings.zicha_outbox_rate,
            f"for deadline {self.schedule.deadline}" if self.schedule and self.settings.zicha_reminders else "off",
        )

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.sender is not None:
            self.sender.stop()
        if self._sender_task is not None:
            # The sender finishes the request in flight; one waiting out a long flood wait is
            # cancelled (its row is still 'pending', or 'sending' and sent again after restart).
            try:
                await asyncio.wait_for(self._sender_task, timeout=10)
            except TimeoutError:
                log.warning("background: outbox sender did not stop within 10 s; cancelled")
            self._sender_task = None

    def wake(self) -> None:
        """Tell the sender new rows are queued."""
        if self.sender is not None:
            self.sender.wake()

    def quiet_now(self) -> str | None:
        """The quiet hours, as text, if they hold bulk messages right now (None otherwise,
        and before the sender runs)."""
        sender = self.sender
        quiet = sender.quiet if sender is not None else None
        if sender is None or quiet is None or not quiet.active(sender.clock()):
            return None
        return quiet.describe()

    def runs(self) -> list[tuple[Checklist, CampaignSchedule]]:
        """Each open campaign's checklist and schedule (several campaigns at once)."""
        if self.campaigns is None:
            return []
        found = []
        for run in self.campaigns.runs(self.db, self.clock()):
            schedule = run.campaign.schedule(self.settings.zicha_timezone)
            if run.open and schedule is not None:
                found.append((run.checklist, schedule))
        return found

    def schedules(self) -> list[CampaignSchedule]:
        return [schedule for _checklist, schedule in self.runs()]

    async def sweep(self) -> int:
        """Queue the reminders due now (of every open campaign, each on its own schedule);
        returns how many."""
        if self.campaigns is not None:
            total = 0
            for checklist, schedule in self.runs():
                queued = reminders.sweep(
                    self.db, checklist, schedule, self.i18n, self.clock(), default_locale=self.i18n.default_locale
                )
                if queued:
                    log.info("reminders: queued %d %s reminder(s) of %s", len(queued), queued[0].reminder.key, checklist.campaign_key)
                total += len(queued)
            if total:
                self.wake()
            return total
        if self.schedule is None:
            return 0
        queued = reminders.sweep(
            self.db, self.checklist, self.schedule, self.i18n, self.clock(), default_locale=self.i18n.default_locale
        )
        if queued:
            log.info("reminders: queued %d %s reminder(s)", len(queued), queued[0].reminder.key)
            self.wake()
        return len(queued)

    async def _report(self, batch: dict[str, object], counts: dict[str, int]) -> None:
        queue_report(self.db, self.i18n, batch, counts, self.i18n.default_locale)


async def start_background(bot: Bot, background: Background) -> None:
    await background.start(bot)


async def stop_background(background: Background) -> None:
    await background.stop()
