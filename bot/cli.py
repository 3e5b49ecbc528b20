"""The ``zicha`` command line."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

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
        return open_db(settings.zicha_db, durability=settings.zicha_durability)
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from None


def _open_existing_db(settings: Settings) -> sqlite_utils.Database:
    """The database of a command that reads it: refuse, rather than create an empty one,
    when ZICHA_DB points where there is none."""
    if not settings.zicha_db.is_file():
        raise click.ClickException(f"No database at {settings.zicha_db}: check ZICHA_DB, or start the bot once to create it.")
    return _open_db(settings)


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
@click.option("--webhook", is_flag=True, help="Serve updates over HTTPS webhooks (ZICHA_WEBHOOK_URL) instead of polling.")
def run(webhook: bool) -> None:
    """Run the Telegram bot until SIGTERM or Ctrl-C (long polling unless --webhook).

    Needs BOT_TOKEN. Set TELEGRAM_API_URL to use a local Bot API server. --webhook needs
    ZICHA_WEBHOOK_URL and listens on ZICHA_WEBHOOK_HOST:ZICHA_WEBHOOK_PORT (with GET
    /health). On SIGTERM the update in hand finishes and the database is closed.
    """
    from bot.core.checklist import ChecklistError
    from bot.ops.failures import StartupError
    from bot.ops.fonts import fonts_ok
    from bot.ops.logs import setup_logging
    from bot.telegram.app import build_app, run_polling

    settings = _settings()
    try:
        token = settings.require_token()
        if webhook:
            settings.require_webhook_url()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    secret = settings.zicha_webhook_secret.get_secret_value() if settings.zicha_webhook_secret else ""
    setup_logging(fmt=settings.zicha_log_format, level=settings.zicha_log_level, secrets=[token, secret])
    font_found, font_detail = fonts_ok()
    if not font_found:
        logging.getLogger("zicha.ops").warning(font_detail, extra={"event": "degraded", "check": "cjk font"})
    db = _open_db(settings)
    try:
        app = build_app(settings, db)
        if settings.zicha_public_url:  # the web chat beside the bot (issue 11)
            from bot.web.app import mount_beside_bot

            mount_beside_bot(app)
        if webhook:
            from bot.webhook import run_webhook

            asyncio.run(run_webhook(app))
        else:
            asyncio.run(run_polling(app))
    except ChecklistError as exc:
        raise click.ClickException(
            f"Bad checklist {exc}; fix the file (check it with `zicha checklist validate FILE`)."
        ) from None
    except (StartupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
    finally:
        db.close()


@cli.command("web")
def web_command() -> None:
    """Serve the web chat alone (ZICHA_WEB_HOST:ZICHA_WEB_PORT) until SIGTERM or Ctrl-C.

    Put it behind a reverse proxy with HTTPS and set ZICHA_PUBLIC_URL to its public
    address. `zicha run` serves it too, beside the bot, when ZICHA_PUBLIC_URL is set.
    """
    from bot.i18n import build_i18n
    from bot.ops.logs import setup_logging
    from bot.telegram.app import load_checklist
    from bot.web.app import build_web_app, serve_forever

    settings = _settings()
    setup_logging(fmt=settings.zicha_log_format, level=settings.zicha_log_level, secrets=[])
    db = _open_db(settings)
    try:
        app = build_web_app(settings, db, load_checklist(settings), build_i18n(settings.zicha_locale))
        click.echo(f"Web chat on http://{settings.zicha_web_host}:{settings.zicha_web_port}", err=True)
        asyncio.run(serve_forever(app, settings.zicha_web_host, settings.zicha_web_port))
    except KeyboardInterrupt:
        pass
    finally:
        db.close()


@cli.command("web-revoke", context_settings={"ignore_unknown_options": True})  # USER_ID is negative
@click.argument("user_id", type=int)
def web_revoke(user_id: int) -> None:
    """Revoke every personal sign-in link of the web person USER_ID (a negative id, see
    `zicha staff list`) and sign them out everywhere. They stay a member: to let them in
    again, they join anew with the invite link."""
    from storage.web import get_web_user, revoke_links

    with _open_db(_settings()) as db:
        if get_web_user(db, user_id) is None:
            raise click.ClickException(f"{user_id} is not a person who joined on the web.")
        count = revoke_links(db, user_id)
    click.echo(f"Revoked {count} sign-in link(s) of web person {user_id}; their sessions are ended.")


@cli.command()
@click.option("--demo", is_flag=True, help="Create a demo institution and register you for it.")
@click.option(
    "--files", "files_dir", type=click.Path(file_okay=False, path_type=Path), default="zicha-files", show_default=True,
    help="Folder for the files the bot sends (signed pledge PDF, workbooks).",
)  # fmt: skip
def chat(demo: bool, files_dir: Path) -> None:
    """Chat with Zicha in this terminal, with no token and no network.

    Runs the same handlers as the Telegram bot against the local database. Buttons
    appear with keys: answers as numbers, navigation as fixed letters (p previous,
    n skip or continue, c contents, r review). Type a key to press a button, or type
    text to reply. Files the bot sends are saved in --files.
    """
    from aiogram.utils.i18n import gettext as _

    from bot.console import CONSOLE_USER_ID, ConsoleChat
    from bot.demo import seed_demo
    from bot.telegram.app import build_app
    from storage.institutions import get_membership

    settings = _settings()
    if demo and not settings.zicha_campaign:
        # The demo campaign's dates count from today, so a newcomer sees a live campaign.
        settings = settings.model_copy(update={"zicha_campaign": "demo"})
    with _open_db(settings) as db:
        from storage.campaigns import get_campaign

        stored_demo = get_campaign(db, "demo")
        if not demo and not settings.zicha_campaign and stored_demo is not None and stored_demo.status == "open":
            # A demo database (made by `zicha chat --demo`) goes on with the demo campaign.
            settings = settings.model_copy(update={"zicha_campaign": "demo"})
        if demo:
            from bot.core.campaigns import load_configured_campaign
            from storage.campaigns import open_campaign

            for campaign_id in (settings.zicha_campaign or "demo").split(","):
                open_campaign(db, load_configured_campaign(campaign_id.strip(), settings.tz))
        app = build_app(settings, db)
        console = ConsoleChat(app, click.echo, files_dir=files_dir)
        if demo and get_membership(db, CONSOLE_USER_ID) is None:
            institution = seed_demo(db, CONSOLE_USER_ID)
            with console.speaking():
                click.echo(_("Demo institution ready: {name} ({uscc}). Database: {db}").format(
                    name=institution.name, uscc=institution.uscc, db=settings.zicha_db
                ))  # fmt: skip
        asyncio.run(console.run(input))


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
    with _open_db(settings) as db:
        created, updated = upsert_institutions(db, rows)
        invites = ensure_invites(db, max_uses)
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


NO_USERNAME_WARNING = (
    "Warning: the bot's username is unknown, so the link column is empty. Give --bot-username NAME "
    "or set ZICHA_BOT_USERNAME (or BOT_TOKEN, to ask Telegram); staff can also send /start CODE to the bot."
)


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


_EXPIRES_HELP = 'When the code stops working: a duration (14d, 12h, 2w) or a local date/time (2023-10-27 = through that day, "2023-10-27 18:00"). Default: never.'


def _expires_option(text: str | None, settings: Settings) -> dt.datetime | None:
    """--expires as a moment in ZICHA_TIMEZONE; None when not given."""
    if text is None:
        return None
    from bot.core.invites import parse_expiry

    try:
        return parse_expiry(text, dt.datetime.now(settings.tz))
    except ValueError as exc:
        raise click.ClickException(f"--expires: {exc}") from None


def _local_time(stored: str | None, settings: Settings) -> str:
    if not stored:
        return "never"
    return f"{dt.datetime.fromisoformat(stored).astimezone(settings.tz):%Y-%m-%d %H:%M}"


@invites.command("create")
@click.argument("uscc")
@click.option("--max-uses", default=5, show_default=True, help="How many staff may use the code.")
@click.option("--expires", default=None, metavar="WHEN", help=_EXPIRES_HELP)
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


def _member_label(member: dict[str, object]) -> str:
    username = f" @{member['username']}" if member.get("username") else ""
    return f"{member['telegram_id']} ({member['first_name'] or '-'}{username})"


# --- staff of an institution (issue 12) ----------------------------------------------


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
    with _open_db(_settings()) as db:
        added = add_regulator(db, telegram_id, scope, name)
    click.echo(f"Regulator {added.telegram_id} ({added.name or 'no name'}): {added.scope.to_text()}")


@regulator.command("list")
def regulator_list() -> None:
    """List regulators and their scopes."""
    from storage.regulators import list_regulators

    with _open_existing_db(_settings()) as db:
        regulators = list_regulators(db)
    if not regulators:
        click.echo("No regulators yet. Add one with: zicha regulator add --telegram-id ID --scope national")
    for r in regulators:
        click.echo(f"{r.telegram_id}\t{r.scope.to_text()}\t{r.name}")


@regulator.command("remove")
@click.option("--telegram-id", type=int, required=True)
def regulator_remove(telegram_id: int) -> None:
    """Remove a regulator account (it loses access at once)."""
    from storage.regulators import remove_regulator

    with _open_existing_db(_settings()) as db:
        removed = remove_regulator(db, telegram_id)
    if not removed:
        raise click.ClickException(f"No regulator with Telegram id {telegram_id}.")
    click.echo(f"Removed regulator {telegram_id}.")


# Commands of later features go below, each after its marker.
# --- pledge (issue 3) ---


@cli.group()
def keys() -> None:
    """The key and certificate that sign pledge PDFs.

    Set ZICHA_SIGNING_KEY and ZICHA_SIGNING_CERT (PEM or DER files; optionally
    ZICHA_SIGNING_KEY_PASSWORD) to use your own, e.g. one issued to your regulator;
    otherwise Zicha uses the folder ZICHA_KEYS_DIR, else zicha-keys/ next to the
    database, except for a database inside a git checkout: then
    $XDG_DATA_HOME/zicha/keys (~/.local/share/zicha/keys), out of the checkout.
    """


@keys.command("init")
@click.option("--force", is_flag=True, help="Replace an existing key pair (PDFs signed before no longer verify).")
@click.option("--name", "common_name", default="Zicha pledge signing (self-signed)", show_default=True, help="The certificate's common name.")
def keys_init(force: bool, common_name: str) -> None:
    """Create a self-signed key pair for signing pledge PDFs (if none exists)."""
    from bot.pledge.signing import SigningError, SigningSettings, identity, init_keys

    settings = _settings()
    try:
        ident = identity(SigningSettings(zicha_db=settings.zicha_db), db_path=settings.zicha_db)
        created = init_keys(ident, common_name, force=force)
    except SigningError as exc:
        raise click.ClickException(str(exc)) from None
    if created:
        click.echo(f"Created a self-signed signing key {ident.key} and certificate {ident.cert}.")
    else:
        click.echo(f"A key pair already exists: {ident.key}, {ident.cert} (use --force to replace it).")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify(file: Path) -> None:
    """Check a signed pledge PDF: its signature, and that it matches the stored submission.

    Exit status 0 when the PDF is authentic and is the institution's current signed
    submission; 1 with the reason otherwise (altered, unknown, superseded, answers changed).
    """
    from bot.pledge.verify import verify_pdf

    settings = _settings()
    with _open_existing_db(settings) as db:
        result = verify_pdf(file.read_bytes(), db, settings)
    for line in result.details:
        click.echo(f"  {line}")
    if result.ok:
        click.echo(f"✓ {file}: {result.reason}")
    else:
        click.echo(f"✗ {file}: NOT VALID: {result.reason}", err=True)
        sys.exit(1)


@cli.group()
def pledge() -> None:
    """Signed pledges kept in the database."""


@pledge.command("get")
@click.argument("uscc")
@click.option("--submission", "submission_id", type=int, default=None, help="This submission (default: the current one).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="FILE.pdf (default: the PDF's own name, here).")
def pledge_get(uscc: str, submission_id: int | None, output: Path | None) -> None:
    """Write the signed pledge PDF of the institution with USCC to a file.

    The current signed submission, or an earlier (superseded) one with --submission N.
    The PDF is the one sent to the institution: signed, and checkable with `zicha verify`.
    """
    from bot.core.uscc import normalize_uscc
    from bot.i18n import build_i18n, format_datetime
    from bot.pledge import document as doc
    from bot.pledge.render import FontMissing
    from bot.pledge.signing import SigningError, SigningSettings, identity
    from bot.pledge.submit import pdf_file_name, produce_pdf
    from storage import pledges as store
    from storage.institutions import get_institution_by_uscc

    settings = _settings()
    checklist = _load_checklist(settings)
    with _open_existing_db(settings) as db:
        institution = get_institution_by_uscc(db, normalize_uscc(uscc))
        if institution is None:
            raise click.ClickException(f"No institution with USCC {uscc}.")
        if submission_id is None:
            submission = store.current_for_institution(db, institution.id, checklist.campaign_key)  # type: ignore[attr-defined]
            if submission is None:
                raise click.ClickException(
                    f"{institution.name} ({institution.uscc}) has no signed pledge: its self-check is not signed, "
                    "or a revision voided the signature (earlier ones: --submission N)."
                )
        else:
            submission = store.get_submission(db, submission_id)
            if submission is None or submission.institution_id != institution.id:
                raise click.ClickException(f"{institution.name} ({institution.uscc}) has no submission #{submission_id}.")
        row = store.get_pdf(db, submission.id)
        if row is not None:
            content = bytes(row["content"])
        else:  # signed while the PDF could not be made (no font, say): make and keep it now
            try:
                ident = identity(SigningSettings(zicha_db=settings.zicha_db), db_path=settings.zicha_db)
                content = produce_pdf(submission.document, build_i18n(settings.zicha_locale), settings.tz, ident)
            except (FontMissing, SigningError) as exc:
                raise click.ClickException(f"The PDF cannot be produced: {exc}") from None
            store.save_pdf(db, submission.id, content, pdf_file_name(submission.document))
    path = output or Path(pdf_file_name(submission.document))
    try:
        path.write_bytes(content)
    except OSError as exc:
        raise click.ClickException(f"Cannot write {path}: {exc.strerror or exc}") from None
    state = "current" if submission.current else "superseded"
    click.echo(
        f"Wrote {path} ({len(content):,} bytes): submission #{submission.id} ({state}), "
        f"code {doc.format_code(submission.verification_code)}, signed by {submission.signer_name} "
        f"on {format_datetime(submission.signed_at, 'en', settings.tz)}."
    )


# --- reminders and broadcasts (issue 4) ---


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
    from bot.cli_campaigns import campaign_runs

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
@click.option("--scope", "scope_text", required=True, help='Who receives it: "national", "province:广东;fields:food"…')
@click.option("--text", "text", help="The message (plain text; it is escaped, so < and & are shown as typed).")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read the message from a UTF-8 file.")
@click.option("--sender", default=None, help="Shown as the sender (default: the scope, e.g. 广东).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--queue-only", is_flag=True, help="Queue it for the running `zicha run` to send.")
@click.option("--campaign", "campaign_id", default=None, help="Only staff of institutions this campaign covers.")
def broadcast(
    scope_text: str, text: str | None, file: Path | None, sender: str | None, yes: bool, queue_only: bool,
    campaign_id: str | None,
) -> None:  # fmt: skip
    """Send a message to every bound staff member in a scope, then print the delivery report.

    Shows the number of recipients first and asks for confirmation. Messages go through the
    outbox, within Telegram's limits; quiet hours hold them until morning.
    """
    import datetime as dt
    import html
    import time

    from bot.core.scope import Scope, ScopeError
    from bot.i18n import build_i18n
    from bot.services.broadcast import MAX_BROADCAST_LENGTH, audience, create_broadcast
    from storage.outbox import batch_counts

    try:
        scope = Scope.parse(scope_text)
    except ScopeError as exc:
        raise click.ClickException(f"--scope: {exc}") from None
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
        from bot.cli_campaigns import campaign_runs

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


# --- regulators: exports and digests (issue 5) ---
@regulator.command("invite")
@click.option("--scope", "scope_text", required=True, help='e.g. "national" or "province:广东;fields:food"')
@click.option("--max-uses", default=1, show_default=True, help="How many people may become regulators with it.")
@click.option("--name", default="", help="A name for the accounts it creates (bureau, person).")
@click.option("--bot-username", envvar="ZICHA_BOT_USERNAME", help="The bot's @username, for the deep link.")
@click.option("--expires", default=None, metavar="WHEN", help=_EXPIRES_HELP)
def regulator_invite(scope_text: str, max_uses: int, name: str, bot_username: str | None, expires: str | None) -> None:
    """Create a regulator invite code (and deep link) for a scope.

    Whoever opens the link sees the scope and confirms it before becoming a regulator.
    """
    from bot.core.invites import deep_link, format_invite_code
    from bot.core.scope import Scope, ScopeError
    from storage.regulators import create_regulator_invite

    try:
        scope = Scope.parse(scope_text)
    except ScopeError as exc:
        raise click.ClickException(f"--scope: {exc}") from None
    if max_uses < 1:
        raise click.ClickException("--max-uses must be at least 1")
    settings = _settings()
    expires_at = _expires_option(expires, settings)
    with _open_db(settings) as db:
        code = create_regulator_invite(db, scope, name=name, max_uses=max_uses, expires_at=expires_at)
    username = bot_username or _bot_username(settings)
    until = f", expires {expires_at.astimezone(settings.tz):%Y-%m-%d %H:%M}" if expires_at else ""
    click.echo(f"Regulator invite for {scope.to_text()} ({max_uses} use(s){until}): {format_invite_code(code)}")
    click.echo(deep_link(username, code) if username else f"/start {code}  (set --bot-username for a link)")


def _scope_option(text: str) -> object:
    from bot.core.scope import Scope, ScopeError

    try:
        return Scope.parse(text)
    except ScopeError as exc:
        raise click.ClickException(f"--scope: {exc}") from None


def _load_checklist(settings: Settings) -> object:
    from bot.telegram.app import load_checklist

    try:
        return load_checklist(settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command("export")
@click.option("--scope", "scope_text", default="national", show_default=True, help='e.g. "province:广东"')
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="FILE.xlsx")
@click.option("--campaign", "campaign_id", default=None, help="This campaign (default: the open ones; several: FILE-<campaign>.xlsx each).")
def export_cmd(scope_text: str, output: Path, campaign_id: str | None) -> None:
    """Write the regulators' Excel workbook for a scope (the same file as /export).

    Sheets: roster (re-importable), institutions, answers, rectifications, statistics.
    """
    import datetime as dt

    from bot.cli_campaigns import campaign_runs
    from bot.reports.excel import write_export

    scope = _scope_option(scope_text)
    settings = _settings()
    runs = campaign_runs(settings, campaign_id)
    with _open_existing_db(settings) as db:
        for checklist, _schedule in runs:
            target = output if len(runs) == 1 else output.with_name(f"{output.stem}-{checklist.campaign_key}{output.suffix}")  # type: ignore[attr-defined]
            write_export(db, checklist, scope, dt.datetime.now(settings.tz), target)  # type: ignore[arg-type]
            click.echo(f"Wrote {target}" + ("" if len(runs) == 1 else f" ({checklist.campaign_key})"))  # type: ignore[attr-defined]


@cli.command("digest")
@click.option("--send", is_flag=True, help="Queue the digests in the outbox (the running bot sends them).")
@click.option("--dry-run", is_flag=True, help="Print the digests as plain text and build their files; record nothing (default).")
@click.option("--telegram-id", type=int, default=None, help="Only this regulator.")
@click.option("--final", is_flag=True, help="Build the final digest whatever the date.")
@click.option(
    "-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="With --dry-run: keep the workbooks and charts in this folder (default: built, checked and deleted).",
)  # fmt: skip
@click.option("--campaign", "campaign_id", default=None, help="Only this campaign (default: every open one).")
def digest_cmd(send: bool, dry_run: bool, telegram_id: int | None, final: bool, output: Path | None, campaign_id: str | None) -> None:
    """Build the regulators' completion digests now.

    By default (or with --dry-run) prints each digest as plain text and builds its
    workbook and chart without recording anything (-o DIR keeps the files). --send
    queues the due digests in the outbox, once per regulator and day, exactly as the
    daily job at ZICHA_DIGEST_TIME does.
    """
    if send and dry_run:
        raise click.ClickException("choose --send or --dry-run, not both")
    from bot.cli_campaigns import campaign_runs

    settings = _settings()
    for checklist, _schedule in campaign_runs(settings, campaign_id):
        _digest_campaign(settings, checklist, send=send, telegram_id=telegram_id, final=final, output=output)


def _digest_campaign(
    settings: Settings, checklist: Any, *, send: bool, telegram_id: int | None, final: bool, output: Path | None
) -> None:
    """`zicha digest` for one campaign."""
    import datetime as dt
    import tempfile

    from bot.core.campaigns import scope_meets
    from bot.i18n import build_i18n
    from bot.services.digests import build_digest, digest_dir, prepare_digest_files, queue_digests, render_digest
    from storage.institutions import get_user_language
    from storage.regulators import list_regulators

    i18n = build_i18n(settings.zicha_locale)
    now = dt.datetime.now(settings.tz)
    with _open_existing_db(settings) as db:
        if send:
            queued = queue_digests(
                db, checklist, i18n, now=now, directory=digest_dir(settings.zicha_db),
                default_locale=settings.zicha_locale, only=telegram_id, force_kind="final" if final else None,
            )  # fmt: skip
            for q in queued:
                click.echo(f"Queued the {q.kind} digest for {q.regulator_id}: {', '.join(str(f) for f in q.files)}")
            if not queued:
                click.echo("No digest due (each regulator gets one per day, and one final digest).")
            return
        regulators = [
            r for r in list_regulators(db)
            if (telegram_id is None or r.telegram_id == telegram_id) and scope_meets(r.scope, checklist.coverage)
        ]  # fmt: skip
        if not regulators:
            click.echo("No regulators.")
        # Without -o the files are only built (so a dry run also tries the workbook and
        # the chart) and removed with their temporary folder.
        with tempfile.TemporaryDirectory(prefix="zicha-digest-") as tmp:
            out = output if output is not None else Path(tmp)
            for r in regulators:
                digest = build_digest(db, checklist, r.telegram_id, r.scope, now, "final" if final else None)
                locale = get_user_language(db, r.telegram_id) or settings.zicha_locale
                text, _x, _p = render_digest(db, checklist, i18n, digest, locale, html=False)
                xlsx, png = prepare_digest_files(db, checklist, digest, now, out)
                click.echo(f"--- {digest.kind} digest for {r.telegram_id} ({r.scope.to_text()}), {checklist.campaign_key} ---")
                click.echo(text)
                if output is not None:
                    click.echo(f"[files: {xlsx} {png}]")
                else:
                    click.echo(f"[files: {xlsx.name} ({xlsx.stat().st_size:,} bytes), {png.name} ({png.stat().st_size:,} bytes); -o DIR keeps them]")


# --- operations (issue 6) ---


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def status(as_json: bool) -> None:
    """Check the installation: database, the running bot and its scheduler, outbox backlog, CJK font, disk space.

    Reads the heartbeat the running bot writes every ZICHA_HEARTBEAT_SECONDS. Exits 1
    when something fails (the bot is not running, the database is damaged, the disk is
    all but full), else 0; a warning (free space below ZICHA_DISK_WARN_MB, the database
    above ZICHA_DB_WARN_MB) is shown but does not fail.
    """
    import json

    from bot.ops.health import StorageLimits, offline_health

    settings = _settings()
    with _open_existing_db(settings) as db:
        report = offline_health(db, settings.zicha_heartbeat_seconds, StorageLimits.from_settings(settings))
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        warned = f", {len(report.warnings)} warning(s)" if report.warnings else ""
        click.echo(f"Zicha {'healthy' if report.healthy else 'UNHEALTHY'}{warned} ({settings.zicha_db})")
        for line in report.lines():
            click.echo(f"  {line}")
    if not report.healthy:
        sys.exit(1)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
def backup(path: Path, force: bool) -> None:
    """Copy the live database to PATH (a file, or a folder for zicha-YYYYMMDD-HHMMSS.db,
    in ZICHA_TIMEZONE).

    Uses SQLite's online backup: safe while the bot runs. The copy is checked with
    PRAGMA integrity_check before it is put in place.
    """
    from bot.ops.backup import BackupError
    from bot.ops.backup import backup as backup_db

    settings = _settings()
    try:
        result = backup_db(settings.zicha_db, path, force=force, tz=settings.tz)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Backed up {settings.zicha_db} to {result.path} ({result.size:,} bytes, {result.tables} tables, integrity ok).")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Restore even though the bot seems to be running.")
def restore(path: Path, force: bool) -> None:
    """Replace the database (ZICHA_DB) by the backup at PATH.

    The backup is checked first (PRAGMA integrity_check, and that it is a Zicha
    database). The current database is kept next to it as
    ZICHA_DB.before-restore-<time>. Stop the bot first: while its heartbeat says it
    runs, restore refuses unless --force. Older backups are migrated on the next start.
    """
    import datetime as dt

    from bot.ops.backup import BackupError
    from bot.ops.backup import restore as restore_db
    from storage.heartbeat import running_bot_in_file

    settings = _settings()
    db_path = settings.zicha_db
    if not force and db_path.exists():
        # None also for no heartbeat table, or a damaged database: nothing running on it to protect
        row = running_bot_in_file(db_path)
        if row is not None:
            age = (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(row.beat_at)).total_seconds()
            if age <= 3 * settings.zicha_heartbeat_seconds:
                raise click.ClickException(
                    f"The bot (pid {row.pid}) is using {db_path}: stop it first (e.g. systemctl stop zicha), or pass --force."
                )
    try:
        safety = restore_db(path, db_path, tz=settings.tz)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    db = _open_db(settings)  # migrates a backup taken by an older version
    db.close()
    kept = f" The replaced database is kept as {safety}." if safety else ""
    click.echo(f"Restored {db_path} from {path} (integrity ok).{kept}")


def _register_issue9() -> None:
    from bot.cli_campaigns import register

    register(cli, checklist)


_register_issue9()


def main() -> None:
    cli(prog_name="zicha")
