"""Deadline reminders: who is due which reminder at a moment, and queueing them once.

The sweep derives everything from the database and the schedule, so it can run any
number of times (scheduler, ``zicha remind``, overlapping runs): the primary key of
``reminders_sent`` lets each (member, reminder) be queued once, in the same transaction
as its outbox row.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass

import sqlite_utils
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.core.checklist import Checklist
from bot.core.interview import Progress
from bot.core.schedule import CampaignSchedule, Reminder
from bot.i18n import format_date, normalize_locale
from bot.selfcheck import open_workspace
from bot.telegram.callbacks import NavAction, NavCb
from storage import outbox
from storage import reminders as reminders_sent
from storage.institutions import get_institution, get_membership
from storage.recipients import unfinished_members

REMINDER_KIND = "reminder"


@dataclass(frozen=True)
class DueReminder:
    telegram_id: int
    institution_id: int
    institution_name: str
    locale: str
    reminder: Reminder
    selfcheck_id: int
    progress: Progress


def due_reminders(
    db: sqlite_utils.Database, checklist: Checklist, schedule: CampaignSchedule, now: dt.datetime, default_locale: str
) -> list[DueReminder]:
    """Who gets which reminder at ``now`` and has not had it yet (nothing in quiet hours)."""
    reminder = schedule.due_reminder(now)
    if reminder is None:
        return []
    already = reminders_sent.reminded(db, checklist.campaign_key, reminder.key)
    found: list[DueReminder] = []
    workspaces: dict[int, tuple[str, int, Progress]] = {}
    covered: dict[int, bool] = {}
    for member in unfinished_members(db, checklist.campaign_key):
        telegram_id = member.telegram_id
        if telegram_id in already:
            continue
        institution_id = member.institution_id
        if institution_id not in covered:
            institution = get_institution(db, institution_id)
            assert institution is not None
            covered[institution_id] = checklist.covers(institution.level, institution.province, institution.fields)
        if not covered[institution_id]:
            continue  # another campaign's institution
        if institution_id not in workspaces:
            institution = get_institution(db, institution_id)
            assert institution is not None
            ws = open_workspace(db, checklist, institution)
            workspaces[institution_id] = (institution.name, ws.selfcheck.id, ws.progress())
        name, selfcheck_id, progress = workspaces[institution_id]
        locale = normalize_locale(member.language, default_locale)
        found.append(DueReminder(telegram_id, institution_id, name, locale, reminder, selfcheck_id, progress))
    return found


def reminder_text(due: DueReminder, schedule: CampaignSchedule, now: dt.datetime) -> str:
    """The reminder in the current locale (call inside ``i18n.use_locale``), as HTML."""
    days = schedule.days_left(now)
    deadline = format_date(schedule.deadline, due.locale)
    lines = [_("⏰ <b>Self-check reminder</b>: {institution}").format(institution=html.escape(due.institution_name))]
    if days <= 0:
        lines.append(_("Today is the deadline ({deadline}).").format(deadline=deadline))
    elif days == 1:
        lines.append(_("1 day left until the deadline ({deadline}).").format(deadline=deadline))
    else:
        lines.append(_("{days} days left until the deadline ({deadline}).").format(days=days, deadline=deadline))
    progress = due.progress
    lines.append(_("Progress: {done}/{total} items answered.").format(done=progress.done, total=progress.total))
    if progress.open_rectifications:
        lines.append(_("Open rectifications: {count}.").format(count=progress.open_rectifications))
    if progress.finished:
        lines.append(_("Every item is answered: open the summary to finish and sign the pledge."))
    return "\n".join(lines)


def reminder_markup(due: DueReminder) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(
        text=_("Continue the self-check"), callback_data=NavCb(action=NavAction.CONTINUE, sc=due.selfcheck_id).pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def sweep(
    db: sqlite_utils.Database,
    checklist: Checklist,
    schedule: CampaignSchedule,
    i18n: I18n,
    now: dt.datetime,
    *,
    default_locale: str,
) -> list[DueReminder]:
    """Queue every reminder due at ``now`` that was not queued before; returns those queued."""
    queued: list[DueReminder] = []
    for due in due_reminders(db, checklist, schedule, now, default_locale):
        with i18n.context(), i18n.use_locale(due.locale):
            text = reminder_text(due, schedule, now)
            markup = reminder_markup(due)
        with db.atomic():
            member_now = get_membership(db, due.telegram_id)
            if member_now is None or member_now.id != due.institution_id:
                continue  # removed since the reminders due were read: not theirs any more
            claimed = reminders_sent.claim(
                db,
                telegram_id=due.telegram_id,
                campaign_id=checklist.campaign_key,
                checklist_id=checklist.id,
                reminder=due.reminder.key,
                institution_id=due.institution_id,
            )
            if not claimed:
                continue  # an overlapping sweep got there first
            row_id = outbox.enqueue(
                db,
                kind=REMINDER_KIND,
                chat_id=due.telegram_id,
                text=text,
                reply_markup=markup,
                dedup_key=f"reminder:{checklist.campaign_key}:{due.reminder.key}:{due.telegram_id}",
            )
            reminders_sent.link_outbox(
                db, telegram_id=due.telegram_id, campaign_id=checklist.campaign_key, reminder=due.reminder.key, outbox_id=row_id
            )
        queued.append(due)
    return queued
