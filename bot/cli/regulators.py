"""`zicha regulator add|list|remove|invite`: regulator accounts and their scopes."""

from __future__ import annotations

import click

from bot.cli.group import cli
from bot.cli.options import (
    _bot_username,
    _expires_option,
    _open_db,
    _open_existing_db,
    _settings,
    bot_username_option,
    expires_option,
    scope_option,
)
from bot.core.scope import Scope


@cli.group()
def regulator() -> None:
    """Regulator accounts: who may see which institutions.

    A scope is "national", or "province:广东,浙江" (provinces in Chinese, with or
    without 省/市/自治区), optionally narrowed to fields: "province:广东;fields:food".
    """


@regulator.command("add")
@click.option("--telegram-id", type=int, required=True, help="The regulator's numeric Telegram user id.")
@scope_option(help='What they may see: "national", "广东", "province:广东;fields:food"…')
@click.option("--name", default="", help="A name to recognise the account by (bureau, person).")
def regulator_add(telegram_id: int, scope: Scope, name: str) -> None:
    """Add a regulator, or change an existing regulator's scope."""
    from storage.regulators import add_regulator

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
@click.option("--telegram-id", type=int, required=True, help="The regulator's numeric Telegram user id (see zicha regulator list).")
def regulator_remove(telegram_id: int) -> None:
    """Remove a regulator account (it loses access at once)."""
    from storage.regulators import remove_regulator

    with _open_existing_db(_settings()) as db:
        removed = remove_regulator(db, telegram_id)
    if not removed:
        raise click.ClickException(f"No regulator with Telegram id {telegram_id}.")
    click.echo(f"Removed regulator {telegram_id}.")


@regulator.command("invite")
@scope_option(help='What the new regulators may see: "national", "广东", "province:广东;fields:food"…')
@click.option("--max-uses", default=1, show_default=True, help="How many people may become regulators with it.")
@click.option("--name", default="", help="A name for the accounts it creates (bureau, person).")
@bot_username_option()
@expires_option()
def regulator_invite(scope: Scope, max_uses: int, name: str, bot_username: str | None, expires: str | None) -> None:
    """Create a regulator invite code (and deep link) for a scope.

    Whoever opens the link sees the scope and confirms it before becoming a regulator.
    """
    from bot.core.invites import deep_link, format_invite_code
    from storage.regulators import create_regulator_invite

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
