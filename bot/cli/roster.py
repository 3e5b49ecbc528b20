"""`zicha roster import` and `zicha staff list|remove`: institutions and the staff bound to them."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import sqlite_utils

from bot.cli.group import cli
from bot.cli.options import (
    _local_time,
    _member_label,
    _open_db,
    _open_existing_db,
    _settings,
)


@cli.group()
def roster() -> None:
    """Institutions: import the roster your regulator keeps."""


@roster.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--max-uses", default=5, show_default=True, help="Staff each new invite code admits.")
def roster_import(file: Path, max_uses: int) -> None:
    """Import institutions from a CSV or XLSX FILE.

    Columns: name, uscc, cma_cert, province, level, fields, contact_name,
    contact_phone (fields separated by ";"). Every row is checked first; if any row is
    wrong, each problem is listed by line number and nothing is imported.
    Re-importing updates institutions by USCC, never duplicates them. Institutions
    without an invite code get one.
    """
    from bot.core.roster import RosterError, read_roster
    from storage.institutions import ensure_invites, upsert_institutions

    settings = _settings()
    try:
        rows = read_roster(file)
    except RosterError as exc:
        locale = settings.zicha_locale
        click.echo(f"{file}: nothing imported, {len(exc.problems)} problem(s):", err=True)
        click.echo(exc.describe(locale), err=True)
        sys.exit(1)
    with _open_db(settings) as db:
        created, updated = upsert_institutions(db, rows)
        invites = ensure_invites(db, max_uses)
    click.echo(f"Imported {len(rows)} institutions: {created} new, {updated} updated; {invites} new invite codes.")


@cli.group()
def staff() -> None:
    """Staff bound to an institution: list them, remove one."""


def _institution_or_fail(db: sqlite_utils.Database, uscc: str):  # type: ignore[no-untyped-def]
    from bot.core.uscc import normalize_uscc
    from storage.institutions import get_institution_by_uscc

    institution = get_institution_by_uscc(db, normalize_uscc(uscc))
    if institution is None:
        raise click.ClickException(f"No institution with USCC {uscc}.")
    return institution


@staff.command("list")
@click.argument("uscc")
def staff_list(uscc: str) -> None:
    """The staff bound to the institution with USCC: Telegram id, name, username, when
    they joined and with which invite code."""
    from bot.core.invites import format_invite_code
    from storage.institutions import members_of

    settings = _settings()
    with _open_existing_db(settings) as db:
        institution = _institution_or_fail(db, uscc)
        members = members_of(db, institution.id)
    click.echo(f"{institution.name} ({institution.uscc}): {len(members)} staff member(s)")
    if members:
        click.echo(f"telegram_id\tname\tusername\tjoined ({settings.tz.key})\tinvite")
    for m in members:
        click.echo("\t".join((
            str(m["telegram_id"]), m["first_name"] or "-", f"@{m['username']}" if m["username"] else "-",
            _local_time(m["bound_at"], settings), format_invite_code(m["invite_code"]) if m["invite_code"] else "-",
        )))  # fmt: skip


@staff.command("remove")
@click.argument("uscc")
@click.argument("member")
def staff_remove(uscc: str, member: str) -> None:
    """Remove MEMBER (a Telegram user id, or @username) from the institution with USCC.

    Takes effect at once: their next message or button press is refused. The answers
    they gave stay with the institution. Naming the institution too guards against
    removing someone from the wrong one. To let them back in, send them a new invite.
    """
    from storage.institutions import find_member, remove_member

    with _open_existing_db(_settings()) as db:
        institution = _institution_or_fail(db, uscc)
        found = find_member(db, institution.id, member)
        if found is None:
            raise click.ClickException(
                f"{member} is not a staff member of {institution.name} (see `zicha staff list {institution.uscc}`)."
            )
        removed = remove_member(db, institution.id, found["telegram_id"], removed_by="cli")
    assert removed is not None
    click.echo(f"Removed {_member_label(removed)} from {institution.name} ({institution.uscc}).")
