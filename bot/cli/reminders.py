"""`zicha remind`, `zicha broadcast`: reminders and messages to staff, through the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import click
import sqlite_utils

from bot.cli.group import cli
from bot.cli.options import (
    _open_existing_db,
    _settings,
    scope_option,
)
from bot.config import ConfigError, Settings
from bot.core.scope import Scope


def _parse_at(text: str | None, tz: object) -> dt.datetime:
    if text is None:
        return dt.datetime.now(tz)  # type: ignore[arg-type]
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.ClickException(f'--at: expected a local time such as "2023-10-20 09:00", got {text!r}') from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)  # type: ignore[arg-type]


def _deliver(settings: Settings, db: sqlite_utils.Database, batch_ids: set[int] | None, clock: object) -> None:
    """Send queued rows now, within the configured limits (the same sender as `zicha run`)."""
    from bot.delivery.outbox import OutboxSender, limits_from_settings
    from bot.delivery.scheduler import campaign_schedule, quiet_hours
    from bot.telegram.app import build_bot, load_checklist

    try:
        settings.require_token()
    except ConfigError as exc:
        raise click.ClickException(f"{exc} (or use --queue-only and let `zicha run` send)") from None

    async def send() -> None:
        bot = build_bot(settings)
        try:
            quiet = quiet_hours(settings, campaign_schedule(settings, load_checklist(settings)))
            from bot.mail import Mailer

            sender = OutboxSender(
                bot, db, limits=limits_from_settings(settings), quiet=quiet, clock=clock,  # type: ignore[arg-type]
                mailer=Mailer.from_settings(settings),
            )
            await sender.drain(batch_ids=batch_ids)
        finally:
            await bot.session.close()

    asyncio.run(send())


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list who would get which reminder; send and record nothing.")
@click.option("--at", "at", metavar='"YYYY-MM-DD HH:MM"', help="Pretend it is this local time (default: now).")
@click.option("--queue-only", is_flag=True, help="Queue the reminders for the running `zicha run` to send.")
@click.option("--campaign", "campaign_id", default=None, help="Only this campaign (default: every open one, each on its own schedule).")
def remind(dry_run: bool, at: str | None, queue_only: bool, campaign_id: str | None) -> None:
    """Send the deadline reminders due now, by the same rules as the scheduler in `zicha run`.

    Only the latest reminder due is sent (a missed earlier one is not caught up), once per
    staff member, to staff of institutions without a signed pledge, never in quiet hours.
    """
    from bot.cli.campaigns import campaign_runs

    settings = _settings()
    runs = campaign_runs(settings, campaign_id, _parse_at(at, settings.tz).date() if at else None)
    if not runs:
        raise click.ClickException("No campaign is open, so there are no reminders.")
    for checklist, schedule in runs:
        _remind_campaign(settings, checklist, schedule, dry_run=dry_run, at=at, queue_only=queue_only)


def _remind_campaign(settings: Settings, checklist: Any, schedule: Any, *, dry_run: bool, at: str | None, queue_only: bool) -> None:
    """`zicha remind` for one campaign: its own schedule and deadline."""
    import time

    from bot.i18n import build_i18n
    from bot.services.reminders import due_reminders, sweep

    if schedule is None:
        raise click.ClickException(f"Checklist {checklist.id} has no deadline, so there are no reminders.")
    now = _parse_at(at, schedule.tz)
    local = now.astimezone(schedule.tz)
    click.echo(
        f"{checklist.campaign_key}: deadline {schedule.deadline} ({schedule.tz.key}), reminders "
        + ", ".join(f"{r.key} {r.due:%Y-%m-%d %H:%M}" for r in schedule.reminders())
        + f"; quiet hours {schedule.quiet_hours.describe()}"
    )
    reminder = schedule.due_reminder(now)
    if reminder is None:
        why = (
            "the deadline has passed" if now >= schedule.deadline_end
            else f"quiet hours ({schedule.quiet_hours.describe()})" if schedule.quiet_hours.active(now)
            else "no reminder is due yet"
        )  # fmt: skip
        click.echo(f"At {local:%Y-%m-%d %H:%M}: nothing to send ({why}).")
        return
    with _open_existing_db(settings) as db:
        i18n = build_i18n(settings.zicha_locale)
        if dry_run:
            due = due_reminders(db, checklist, schedule, now, settings.zicha_locale)
            click.echo(f"At {local:%Y-%m-%d %H:%M}: reminder {reminder.key} ({reminder.days_before} days before), {len(due)} recipient(s):")
            for d in due:
                click.echo(
                    f"  {d.reminder.key}\t{d.telegram_id}\t{d.locale}\t{d.progress.done}/{d.progress.total} answered"
                    f"\t{d.progress.open_rectifications} open\t{d.institution_name}"
                )
            return
        queued = sweep(db, checklist, schedule, i18n, now, default_locale=settings.zicha_locale)
        click.echo(f"Queued {len(queued)} reminder(s) {reminder.key}.")
        if queued and not queue_only:
            started = time.monotonic()
            _deliver(settings, db, None, lambda: now + dt.timedelta(seconds=time.monotonic() - started))
            from storage.outbox import backlog

            counts = backlog(db)
            click.echo(f"Outbox: {counts['sent']} sent, {counts['blocked']} blocked, {counts['failed']} failed in all.")


@cli.command()
@scope_option(help='Who receives it: "national", "广东", "province:广东;fields:food"…')
@click.option("--text", "text", help="The message (plain text; it is escaped, so < and & are shown as typed).")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read the message from a UTF-8 file.")
@click.option("--sender", default=None, help="Shown as the sender (default: the scope, e.g. 广东).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--queue-only", is_flag=True, help="Queue it for the running `zicha run` to send.")
@click.option("--campaign", "campaign_id", default=None, help="Only staff of institutions this campaign covers.")
def broadcast(
    scope: Scope, text: str | None, file: Path | None, sender: str | None, yes: bool, queue_only: bool,
    campaign_id: str | None,
) -> None:  # fmt: skip
    """Send a message to every bound staff member in a scope, then print the delivery report.

    Shows the number of recipients first and asks for confirmation. Messages go through the
    outbox, within Telegram's limits; quiet hours hold them until morning.
    """
    import datetime as dt
    import html
    import time

    from bot.i18n import build_i18n
    from bot.services.broadcast import MAX_BROADCAST_LENGTH, audience, create_broadcast
    from storage.outbox import batch_counts

    if (text is None) == (file is None):
        raise click.ClickException("Give the message with --text or --file (one of them).")
    body = text if text is not None else file.read_text(encoding="utf-8-sig")  # type: ignore[union-attr]
    body = body.strip()
    if not body:
        raise click.ClickException("The message is empty.")
    if len(body) > MAX_BROADCAST_LENGTH:
        raise click.ClickException(f"The message has {len(body)} characters; at most {MAX_BROADCAST_LENGTH}.")
    settings = _settings()
    campaign = None
    if campaign_id is not None:
        from bot.cli.campaigns import campaign_runs

        campaign = campaign_runs(settings, campaign_id)[0][0]
    with _open_existing_db(settings) as db:
        reach = audience(db, scope, campaign)  # type: ignore[arg-type]
        click.echo(
            f"Recipients: {reach.total} staff of {reach.institutions} institution(s) in {scope.to_text()}"
            + (f", campaign {campaign_id}" if campaign_id else "")
            + (f" ({reach.unreachable} blocked the bot)" if reach.unreachable else "")
        )
        if reach.total == 0:
            raise click.ClickException("Nobody to send to.")
        if not yes:
            click.confirm("Send it?", abort=True)
        i18n = build_i18n(settings.zicha_locale)
        batch_id, queued = create_broadcast(
            db, i18n, scope=scope, body_html=html.escape(body, quote=False),
            sender=sender or scope.describe(settings.zicha_locale), created_by=None, report_chat_id=None,
            default_locale=settings.zicha_locale, campaign=campaign,  # type: ignore[arg-type]
        )  # fmt: skip
        click.echo(f"Broadcast #{batch_id} queued for {queued} recipient(s).")
        if queue_only:
            return
        from bot.delivery.scheduler import campaign_schedule, quiet_hours
        from bot.telegram.app import load_checklist

        started, now = time.monotonic(), dt.datetime.now(settings.tz)
        quiet = quiet_hours(settings, campaign_schedule(settings, load_checklist(settings)))
        if quiet.active(now):
            click.echo(f"Quiet hours ({quiet.describe()}): `zicha run` sends it when they end.")
            return
        _deliver(settings, db, {batch_id}, lambda: now + dt.timedelta(seconds=time.monotonic() - started))
        counts = batch_counts(db, batch_id)
        click.echo(f"Delivered: {counts['sent']}, blocked: {counts['blocked']}, failed: {counts['failed']}, total: {counts['total']}.")
