"""`zicha invites [create|list|revoke]`: the codes staff join with."""

from __future__ import annotations

import csv
import sys

import click

from bot.cli.group import cli
from bot.cli.options import (
    NO_USERNAME_WARNING,
    _bot_username,
    _expires_option,
    _local_time,
    _member_label,
    _open_existing_db,
    _settings,
    bot_username_option,
    expires_option,
)


@cli.group(invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True, help="table: one line per code; csv: for a mail merge.")
@bot_username_option("The bot's @username, for the deep links.")
@click.pass_context
def invites(ctx: click.Context, fmt: str, bot_username: str | None) -> None:
    """List the usable invite codes, with their deep links.

    The CSV has columns uscc, name, code, link, where link is
    https://t.me/<bot>?start=<code>. The bot's username comes from --bot-username,
    ZICHA_BOT_USERNAME, or Telegram when BOT_TOKEN is set.
    """
    if ctx.invoked_subcommand is not None:
        return
    from bot.core.invites import deep_link, format_invite_code
    from storage.institutions import list_invites

    settings = _settings()
    username = bot_username or _bot_username(settings)
    with _open_existing_db(settings) as db:
        rows = list_invites(db)
    if fmt == "csv":
        from bot.reports.excel import cell_text

        if not username and rows:
            click.echo(NO_USERNAME_WARNING, err=True)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        web = settings.zicha_public_url
        writer.writerow(["uscc", "name", "code", "link", *(["web_link"] if web else [])])
        for row in rows:
            link = deep_link(username, row["code"]) if username else ""
            extra = [f"{web}/j/{row['code']}"] if web else []
            writer.writerow([cell_text(v) for v in (row["uscc"], row["name"], row["code"], link, *extra)])
        return
    web = settings.zicha_public_url  # the web chat's invite link beside Telegram's (issue 11)
    for row in rows:
        link = deep_link(username, row["code"]) if username else "(set --bot-username for links)"
        web_link = f"  {web}/j/{row['code']}" if web else ""
        click.echo(f"{row['uscc']}  {format_invite_code(row['code'])}  {row['uses']}/{row['max_uses']}  {row['name']}  {link}{web_link}")


@invites.command("create")
@click.argument("uscc")
@click.option("--max-uses", default=5, show_default=True, help="How many staff may use the code.")
@expires_option()
def invites_create(uscc: str, max_uses: int, expires: str | None) -> None:
    """Create another invite code for the institution with USCC."""
    from bot.core.invites import format_invite_code
    from bot.core.uscc import normalize_uscc
    from storage.institutions import create_invite, get_institution_by_uscc, stored_time

    settings = _settings()
    expires_at = _expires_option(expires, settings)
    if max_uses < 1:
        raise click.ClickException("--max-uses must be at least 1")
    with _open_existing_db(settings) as db:
        institution = get_institution_by_uscc(db, normalize_uscc(uscc))
        if institution is None:
            raise click.ClickException(f"No institution with USCC {uscc} (import the roster first).")
        code = create_invite(db, institution.id, max_uses, expires_at=expires_at)
    until = f", expires {_local_time(stored_time(expires_at), settings)}" if expires_at else ""
    click.echo(f"{format_invite_code(code)}  ({institution.name}, up to {max_uses} staff{until})")


@invites.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also revoked, expired and used-up codes.")
def invites_list(show_all: bool) -> None:
    """Every staff and regulator invite code: uses, expiry and state.

    One line per code: kind (staff / regulator), code, uses/max, expiry (local time),
    state (active, revoked, expired, used up), and the institution or the scope.
    """
    from bot.core.invites import format_invite_code
    from storage.db import utcnow
    from storage.institutions import invite_problem, list_invites
    from storage.regulators import list_regulator_invites

    settings = _settings()
    now = utcnow()
    labels = {None: "active", "revoked": "revoked", "expired": "expired", "used_up": "used up"}
    lines: list[tuple[str, ...]] = []
    with _open_existing_db(settings) as db:
        for row in list_invites(db, include_inactive=True):
            problem = invite_problem(row, now)
            if show_all or problem is None:
                lines.append(("staff", format_invite_code(row["code"]), f"{row['uses']}/{row['max_uses']}",
                              _local_time(row["expires_at"], settings), labels[problem and problem.value],
                              f"{row['uscc']} {row['name']}"))  # fmt: skip
        for invite in list_regulator_invites(db):
            problem = invite.problem
            if show_all or problem is None:
                who = invite.scope.to_text() + (f" ({invite.name})" if invite.name else "")
                lines.append(("regulator", format_invite_code(invite.code), f"{invite.uses}/{invite.max_uses}",
                              _local_time(invite.expires_at, settings), labels[problem and problem.value], who))  # fmt: skip
    if not lines:
        click.echo("No invite codes." if show_all else "No usable invite codes (--all shows the others).")
        return
    click.echo(f"kind\tcode\tuses\texpires ({settings.tz.key})\tstate\tfor")
    for line in lines:
        click.echo("\t".join(line))


@invites.command("revoke")
@click.argument("code")
@click.option("--remove-members", is_flag=True, help="Also remove the staff who joined with this code.")
def invites_revoke(code: str, remove_members: bool) -> None:
    """Withdraw an invite CODE (staff or regulator): nobody new can join with it.

    Who already joined stays, unless --remove-members (staff codes): then every staff
    member who joined with this code is removed too, from their next message on. A
    regulator who joined with a code stays a regulator: `zicha regulator remove`.
    """
    from bot.core.invites import format_invite_code, normalize_invite_code
    from storage.institutions import get_invite, members_of, remove_members_of_invite, revoke_invite
    from storage.regulators import get_regulator_invite, revoke_regulator_invite

    normalized = normalize_invite_code(code)
    if normalized is None:
        raise click.ClickException(f"{code} is not an invite code.")
    shown = format_invite_code(normalized)
    with _open_existing_db(_settings()) as db:
        staff_invite = get_invite(db, normalized)
        if staff_invite is not None:
            revoked = revoke_invite(db, normalized)
            if not revoked and not remove_members:
                raise click.ClickException(f"{shown} was already revoked.")
            removed = remove_members_of_invite(db, normalized, removed_by="cli") if remove_members else []
            stay = sum(1 for m in members_of(db, staff_invite["institution_id"]) if m["invite_code"] == normalized)
            click.echo(f"Revoked staff invite {shown}." if revoked else f"{shown} was already revoked.")
            if remove_members:
                click.echo(f"Removed {len(removed)} member(s) who joined with it: "
                           + (", ".join(_member_label(m) for m in removed) or "none") + ".")  # fmt: skip
            else:
                click.echo(f"{stay} member(s) who joined with it stay (--remove-members removes them).")
            return
        if get_regulator_invite(db, normalized) is None:
            raise click.ClickException(f"No invite code {shown}.")
        if remove_members:
            raise click.ClickException("--remove-members is for staff codes; remove a regulator with `zicha regulator remove`.")
        if not revoke_regulator_invite(db, normalized):
            raise click.ClickException(f"{shown} was already revoked.")
        click.echo(f"Revoked regulator invite {shown}. Regulators who joined with it stay (`zicha regulator remove`).")
