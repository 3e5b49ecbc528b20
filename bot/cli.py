"""The ``zicha`` command line."""

from __future__ import annotations

import asyncio
import csv
import logging
import sys
from pathlib import Path

import click
import sqlite_utils

from bot.config import ConfigError, Settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"Configuration problem: {exc}") from None


def _open_db(settings: Settings) -> sqlite_utils.Database:
    from storage.db import DatabaseError, open_db

    try:
        return open_db(settings.zicha_db)
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zicha")
def cli() -> None:
    """Zicha (自查): guides staff of inspection and testing institutions through their
    regulator's annual self-check in Telegram.

    Settings come from environment variables or a .env file: BOT_TOKEN,
    TELEGRAM_API_URL, ZICHA_DB (default ./zicha.db), ZICHA_TIMEZONE (default
    Asia/Shanghai), ZICHA_LOCALE (zh_CN or en).
    """


@cli.command()
def run() -> None:
    """Run the Telegram bot (long polling) until interrupted.

    Needs BOT_TOKEN. Set TELEGRAM_API_URL to use a local Bot API server.
    """
    from bot.core.checklist import ChecklistError
    from bot.telegram.app import build_app, run_polling

    settings = _settings()
    try:
        settings.require_token()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db = _open_db(settings)
    try:
        app = build_app(settings, db)
        asyncio.run(run_polling(app))
    except (ChecklistError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
    finally:
        db.close()


@cli.command()
@click.option("--demo", is_flag=True, help="Create a demo institution and register you for it.")
def chat(demo: bool) -> None:
    """Chat with Zicha in this terminal, with no token and no network.

    Runs the same handlers as the Telegram bot against the local database. Buttons
    appear as numbers: type a number to press one, or type text to reply.
    """
    from bot.console import CONSOLE_USER_ID, ConsoleChat
    from bot.demo import seed_demo
    from bot.telegram.app import build_app
    from storage.institutions import get_membership

    settings = _settings()
    db = _open_db(settings)
    try:
        if demo and get_membership(db, CONSOLE_USER_ID) is None:
            institution = seed_demo(db, CONSOLE_USER_ID)
            click.echo(f"Demo institution ready: {institution.name} ({institution.uscc}). Database: {settings.zicha_db}")
        app = build_app(settings, db)
        console = ConsoleChat(app, click.echo)
        asyncio.run(console.run(input))
    finally:
        db.close()


# --- checklists ----------------------------------------------------------------------


@cli.group()
def checklist() -> None:
    """Validate and inspect checklist files."""


@checklist.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def checklist_validate(files: tuple[Path, ...]) -> None:
    """Check checklist FILES; report the file, item and reason of the first problem in each."""
    from bot.core.checklist import ChecklistError, load_checklist

    failed = False
    for path in files:
        try:
            loaded = load_checklist(path)
        except ChecklistError as exc:
            click.echo(f"✗ {exc}", err=True)
            failed = True
        else:
            click.echo(f"✓ {path}: {loaded.id} {loaded.version}, {len(loaded.sections)} sections, {len(loaded.items)} items")
    if failed:
        sys.exit(1)


@checklist.command("show")
@click.argument("checklist_id")
@click.option("--locale", type=click.Choice(["zh_CN", "en"]), default=None, help="Language of the outline.")
@click.option("--field", "fields", multiple=True, help="Only items for an institution in this field (repeatable).")
def checklist_show(checklist_id: str, locale: str | None, fields: tuple[str, ...]) -> None:
    """Print the outline of the shipped checklist CHECKLIST_ID (or a checklist file)."""
    from bot.core.checklist import ChecklistError, load_checklist, load_checklists
    from bot.resources import data_dir

    locale = locale or _settings().zicha_locale
    try:
        if Path(checklist_id).is_file():
            loaded = load_checklist(checklist_id)
        else:
            available = load_checklists(data_dir("checklists"))
            if checklist_id not in available:
                raise click.ClickException(f"No checklist {checklist_id!r}. Available: {', '.join(sorted(available))}")
            loaded = available[checklist_id]
    except ChecklistError as exc:
        raise click.ClickException(str(exc)) from None
    items = loaded.applicable_items(fields) if fields else list(loaded.items)
    wanted = {i.id for i in items}
    click.echo(f"{loaded.title.get(locale)}  [{loaded.id} {loaded.version}, {len(items)} items]")
    number = 0
    for section in loaded.sections:
        section_items = [i for i in section.items if i.id in wanted]
        if not section_items:
            continue
        click.echo(f"\n{section.title.get(locale)}")
        for item in section_items:
            number += 1
            scope = f"  ({', '.join(sorted(item.fields))})" if item.fields else ""
            click.echo(f"  {number:>2}. [{item.id}] {item.text.get(locale)}{scope}")


# --- roster and invites --------------------------------------------------------------


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
    db = _open_db(settings)
    try:
        created, updated = upsert_institutions(db, rows)
        invites = ensure_invites(db, max_uses)
    finally:
        db.close()
    click.echo(f"Imported {len(rows)} institutions: {created} new, {updated} updated; {invites} new invite codes.")


@cli.group(invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
@click.option("--bot-username", envvar="ZICHA_BOT_USERNAME", help="The bot's @username, for the deep links.")
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
    db = _open_db(settings)
    try:
        rows = list_invites(db)
    finally:
        db.close()
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["uscc", "name", "code", "link"])
        for row in rows:
            writer.writerow([row["uscc"], _csv_safe(row["name"]), row["code"], deep_link(username, row["code"]) if username else ""])
        return
    for row in rows:
        link = deep_link(username, row["code"]) if username else "(set --bot-username for links)"
        click.echo(f"{row['uscc']}  {format_invite_code(row['code'])}  {row['uses']}/{row['max_uses']}  {row['name']}  {link}")


def _csv_safe(text: str) -> str:
    """Keep a spreadsheet from reading user text as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _bot_username(settings: Settings) -> str | None:
    if settings.bot_token is None:
        return None
    from bot.telegram.app import build_bot

    async def fetch() -> str | None:
        bot = build_bot(settings)
        try:
            return (await bot.get_me()).username
        finally:
            await bot.session.close()

    try:
        return asyncio.run(fetch())
    except Exception as exc:  # noqa: BLE001 - any failure means "no link", said plainly
        click.echo(f"Could not ask Telegram for the bot's username ({type(exc).__name__}); links left empty.", err=True)
        return None


@invites.command("create")
@click.argument("uscc")
@click.option("--max-uses", default=5, show_default=True, help="How many staff may use the code.")
def invites_create(uscc: str, max_uses: int) -> None:
    """Create another invite code for the institution with USCC."""
    from bot.core.invites import format_invite_code
    from bot.core.uscc import normalize_uscc
    from storage.institutions import create_invite, get_institution_by_uscc

    db = _open_db(_settings())
    try:
        institution = get_institution_by_uscc(db, normalize_uscc(uscc))
        if institution is None:
            raise click.ClickException(f"No institution with USCC {uscc} (import the roster first).")
        code = create_invite(db, institution.id, max_uses)
    finally:
        db.close()
    click.echo(f"{format_invite_code(code)}  ({institution.name}, up to {max_uses} staff)")


@invites.command("revoke")
@click.argument("code")
def invites_revoke(code: str) -> None:
    """Withdraw an invite CODE: nobody new can join with it (staff already joined stay)."""
    from bot.core.invites import normalize_invite_code
    from storage.institutions import revoke_invite

    normalized = normalize_invite_code(code)
    db = _open_db(_settings())
    try:
        revoked = normalized is not None and revoke_invite(db, normalized)
    finally:
        db.close()
    if not revoked:
        raise click.ClickException(f"No active invite code {code}.")
    click.echo(f"Revoked {code}.")


# --- regulators ---------------------------------------------------------------------


@cli.group()
def regulator() -> None:
    """Regulator accounts: who may see which institutions.

    A scope is "national", or "province:广东,浙江" (provinces in Chinese, with or
    without 省/市/自治区), optionally narrowed to fields: "province:广东;fields:food".
    """


@regulator.command("add")
@click.option("--telegram-id", type=int, required=True, help="The regulator's numeric Telegram user id.")
@click.option("--scope", "scope_text", required=True, help='e.g. "national" or "province:广东;fields:food"')
@click.option("--name", default="", help="A name to recognise the account by (bureau, person).")
def regulator_add(telegram_id: int, scope_text: str, name: str) -> None:
    """Add a regulator, or change an existing regulator's scope."""
    from bot.core.scope import Scope, ScopeError
    from storage.regulators import add_regulator

    try:
        scope = Scope.parse(scope_text)
    except ScopeError as exc:
        raise click.ClickException(f"--scope: {exc}") from None
    db = _open_db(_settings())
    try:
        added = add_regulator(db, telegram_id, scope, name)
    finally:
        db.close()
    click.echo(f"Regulator {added.telegram_id} ({added.name or 'no name'}): {added.scope.to_text()}")


@regulator.command("list")
def regulator_list() -> None:
    """List regulators and their scopes."""
    from storage.regulators import list_regulators

    db = _open_db(_settings())
    try:
        regulators = list_regulators(db)
    finally:
        db.close()
    if not regulators:
        click.echo("No regulators yet. Add one with: zicha regulator add --telegram-id ID --scope national")
    for r in regulators:
        click.echo(f"{r.telegram_id}\t{r.scope.to_text()}\t{r.name}")


@regulator.command("remove")
@click.option("--telegram-id", type=int, required=True)
def regulator_remove(telegram_id: int) -> None:
    """Remove a regulator account (it loses access at once)."""
    from storage.regulators import remove_regulator

    db = _open_db(_settings())
    try:
        removed = remove_regulator(db, telegram_id)
    finally:
        db.close()
    if not removed:
        raise click.ClickException(f"No regulator with Telegram id {telegram_id}.")
    click.echo(f"Removed regulator {telegram_id}.")


# Commands of later features go below, each after its marker.
# --- pledge (issue 3) ---
# --- reminders and broadcasts (issue 4) ---
# --- regulators: exports and digests (issue 5) ---
# --- operations (issue 6) ---


def main() -> None:
    cli(prog_name="zicha")
