"""`zicha campaign list|show|open|close`: self-check campaigns as data and their stored state."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from bot.cli.group import cli
from bot.cli.options import _open_db, _settings


def _today() -> dt.date:
    return dt.datetime.now(_settings().tz).date()


def _definitions(today: dt.date) -> dict:
    from bot.core.campaigns import CampaignError, campaigns_dir, load_campaigns

    try:
        return load_campaigns(campaigns_dir(), today=today)
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None


@cli.group()
def campaign() -> None:
    """Self-check campaigns: one year's table for the institutions it covers."""


@campaign.command("list")
def campaign_list() -> None:
    """Every campaign defined in checklists/campaigns/ or stored in the database."""
    from storage.campaigns import list_campaigns

    settings = _settings()
    now = dt.datetime.now(settings.tz)
    defined = _definitions(now.date())
    with _open_db(settings) as db:
        stored = {c.id: c for c in list_campaigns(db)}
    click.echo(f"{'id':<24} {'year':<5} {'level':<10} {'checklist':<24} {'opens':<10} {'deadline':<10} {'closes':<10} state")
    for cid in sorted(set(defined) | set(stored), key=lambda i: ((defined.get(i) or stored[i]).year, i)):
        d, s = defined.get(cid), stored.get(cid)
        if d is not None:
            row = (d.year, d.coverage.level, d.checklist_id, d.opens.isoformat(),
                   d.deadline.isoformat() if d.deadline else "-", d.closes.isoformat() if d.closes else "-")
        else:
            assert s is not None
            row = (s.year, s.level, s.checklist_id, s.opens_on or "-", s.deadline or "-", s.closes_on or "-")
        if s is None:
            state = "not opened"
        elif s.status == "closed":
            state = f"closed, {s.selfchecks} self-checks"
        elif d is not None and not d.is_open_on(day := d.local_day(now, settings.zicha_timezone)):
            state = ("opens later" if day < d.opens else "past its dates") + f", {s.selfchecks} self-checks"
        else:
            state = f"open, {s.selfchecks} self-checks"
        click.echo(f"{cid:<24} {row[0]:<5} {row[1]:<10} {row[2]:<24} {row[3]:<10} {row[4]:<10} {row[5]:<10} {state}")


@campaign.command("show")
@click.argument("campaign_id")
def campaign_show(campaign_id: str) -> None:
    """What campaign CAMPAIGN_ID asks of whom, and when: checklist, pledge, dates, coverage,
    the editions of the regulations in force, and its stored state."""
    from bot.core.checklist import ChecklistError, load_checklists
    from bot.core.fields import field_label
    from bot.resources import data_dir
    from storage.campaigns import get_campaign

    settings = _settings()
    today = _today()
    defined = _definitions(today)
    with _open_db(settings) as db:
        stored = get_campaign(db, campaign_id)
    d = defined.get(campaign_id)
    if d is None and stored is None:
        raise click.ClickException(f"No campaign {campaign_id!r} (known: {', '.join(sorted(defined)) or 'none'})")
    if d is None:
        assert stored is not None
        click.echo(f"{stored.id}: {stored.title_zh} / {stored.title_en}")
        click.echo(f"  stored only (no file); checklist {stored.checklist_id}; {stored.status}; {stored.selfchecks} self-checks")
        return
    click.echo(f"{d.id} ({d.year}): {d.title.zh_CN}")
    click.echo(f"  {d.title.en}")
    try:
        checklist = load_checklists(data_dir("checklists")).get(d.checklist_id)
    except ChecklistError as exc:
        raise click.ClickException(str(exc)) from None
    items = f"{len(checklist.items)} items, version {checklist.version}" if checklist else "MISSING"
    click.echo(f"  checklist: {d.checklist_id} ({items})")
    click.echo(f"  pledge: {d.pledge_id or '-'}")
    click.echo(f"  opens {d.opens}, deadline {d.deadline or '-'}, closes {d.closes or '-'}")
    provinces = "、".join(sorted(d.coverage.provinces)) or "all provinces"
    fields = "、".join(field_label(f, "zh_CN") for f in sorted(d.coverage.fields)) or "all fields"
    click.echo(f"  covers: {d.coverage.level} institutions; {provinces}; {fields}")
    click.echo(f"  editions in force: {', '.join(d.editions) or '-'}")
    schedule = d.schedule(settings.zicha_timezone)
    if schedule is not None:
        days = ", ".join(str(r.days_before) for r in schedule.reminders())
        click.echo(f"  reminders: {days} days before, at {schedule.send_time:%H:%M} ({schedule.tz.key})")
    if stored is None:
        state = "not opened (zicha campaign open " + d.id + ")"
    else:
        state = f"{stored.status}, {stored.selfchecks} self-checks"
    click.echo(f"  state: {state}")


@campaign.command("open")
@click.argument("campaign_id", required=False)
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A campaign file elsewhere.")
def campaign_open(campaign_id: str | None, file: Path | None) -> None:
    """Check a campaign (its checklist, pledge and the editions cited) and store it as open.

    CAMPAIGN_ID names a file in checklists/campaigns/; --file opens a campaign file kept
    elsewhere. Opening a stored campaign again updates its definition."""
    from bot.core.campaigns import CampaignError, campaigns_dir, load_campaign
    from bot.core.checklist import ChecklistError, load_checklists
    from bot.resources import data_dir
    from storage.campaigns import open_campaign

    if (campaign_id is None) == (file is None):
        raise click.UsageError("give a campaign id or --file PATH")
    path = file if file is not None else campaigns_dir() / f"{campaign_id}.toml"
    if not path.is_file():
        raise click.ClickException(f"No campaign file {path}")
    try:
        definition = load_campaign(path, today=_today())
        checklists = load_checklists(data_dir("checklists"))
        if definition.checklist_id not in checklists:
            raise click.ClickException(f"{path}: no checklist {definition.checklist_id!r} in {data_dir('checklists')}")
        definition.check_checklist(checklists[definition.checklist_id])
    except (CampaignError, ChecklistError) as exc:
        raise click.ClickException(str(exc)) from None
    if definition.pledge_id and not (data_dir("checklists") / "pledges" / f"{definition.pledge_id}.toml").is_file():
        raise click.ClickException(f"{path}: no pledge {definition.pledge_id!r} in checklists/pledges/")
    with _open_db(_settings()) as db:
        stored = open_campaign(db, definition)
    click.echo(f"Campaign {stored.id} is open: {stored.title_zh} (deadline {stored.deadline or '-'}).")


@campaign.command("close")
@click.argument("campaign_id")
def campaign_close(campaign_id: str) -> None:
    """Close a campaign: nobody is asked to answer it any more; answers and exports stay."""
    from storage.campaigns import close_campaign

    with _open_db(_settings()) as db:
        stored = close_campaign(db, campaign_id)
    if stored is None:
        raise click.ClickException(f"No stored campaign {campaign_id!r} (see zicha campaign list)")
    click.echo(f"Campaign {stored.id} is closed; its {stored.selfchecks} self-checks stay readable.")


CAMPAIGN_HELP = "This campaign (an id of checklists/campaigns/; default: the open ones of ZICHA_CAMPAIGN, or the deployment's one)."


def campaign_runs(settings: object, campaign_id: str | None, today: dt.date | None = None) -> list[tuple[object, object]]:
    """(checklist, reminder schedule) of each campaign a CLI command works on: ``--campaign
    ID`` (any defined campaign, closed ones too: they stay readable); without it the open
    campaigns of a deployment that runs several (``ZICHA_CAMPAIGN=a,b``), else the
    deployment's one checklist (``today``: the day that decides which are open). ClickException for an unknown id."""
    from bot.campaign_runtime import CampaignRegistry
    from bot.cli.options import _open_db
    from bot.core.campaigns import CampaignError
    from bot.core.checklist import ChecklistError, load_checklists
    from bot.core.schedule import ScheduleError
    from bot.delivery.scheduler import campaign_schedule
    from bot.resources import data_dir
    from bot.telegram.app import load_campaign_registry, load_checklist

    tz = settings.zicha_timezone  # type: ignore[attr-defined]
    try:
        if campaign_id is not None:
            defined = _definitions(_today())
            if campaign_id not in defined:
                raise click.ClickException(f"--campaign: no campaign {campaign_id!r} (known: {', '.join(sorted(defined))})")
            registry = CampaignRegistry([defined[campaign_id]], load_checklists(data_dir("checklists")), default_tz=tz)
            return [(registry.checklists[campaign_id], defined[campaign_id].schedule(tz))]
        several = load_campaign_registry(settings)  # type: ignore[arg-type]
        if several is None:
            checklist = load_checklist(settings)  # type: ignore[arg-type]
            return [(checklist, campaign_schedule(settings, checklist))]  # type: ignore[arg-type]
        with _open_db(settings) as db:  # type: ignore[arg-type]
            runs = several.runs(db, today or _today())
        return [(r.checklist, r.campaign.schedule(tz)) for r in runs if r.open]
    except (CampaignError, ChecklistError, ScheduleError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
