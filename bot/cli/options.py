"""What the command modules share: opening the settings and the database, the option types
and the option bundles.

- ``_settings()``, ``_open_db()``, ``_open_existing_db()``: every command's way in, with a
  configuration or database problem said in one line instead of a traceback.
- :class:`ScopeType` (``SCOPE``): a ``--scope`` value ("national", "广东",
  "province:广东;fields:food") parsed into a :class:`~bot.core.scope.Scope`, with the reason when
  it is not one.
- Option bundles, as sqlite-utils has them: decorators that add an option (or several) with the
  same name, type and help wherever they appear: :func:`scope_option`, :func:`expires_option`,
  :func:`bot_username_option`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import click
import sqlite_utils

from bot.config import ConfigError, Settings, load_settings
from bot.core.scope import Scope, ScopeError

F = TypeVar("F", bound=Callable[..., Any])


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


def _member_label(member: dict[str, object]) -> str:
    username = f" @{member['username']}" if member.get("username") else ""
    return f"{member['telegram_id']} ({member['first_name'] or '-'}{username})"


def _load_checklist(settings: Settings) -> object:
    from bot.telegram.app import load_checklist

    try:
        return load_checklist(settings)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


# --- option types and bundles ------------------------------------------------------------------

SCOPE_HELP = 'Whose data: "national", a province ("广东", "province:广东") and optionally fields ("province:广东;fields:food").'


class ScopeParameterError(click.BadParameter):
    """A --scope that is not one. Exit status 1, as for the commands' other refusals."""

    exit_code = 1


class ScopeType(click.ParamType):
    """A regulator's scope: "national", or provinces and optionally fields.

    Province and field names are resolved as in the roster (广东省, 广东 and guangdong are one
    province); an unknown one is refused naming it, e.g. Invalid value for '--scope': unknown
    province '火星'.
    """

    name = "scope"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "SCOPE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Scope:
        if isinstance(value, Scope):
            return value
        try:
            return Scope.parse(str(value))
        except ScopeError as exc:
            raise ScopeParameterError(str(exc), ctx=ctx, param=param) from None


SCOPE = ScopeType()


def scope_option(*, required: bool = True, default: str | None = None, help: str = SCOPE_HELP) -> Callable[[F], F]:
    """``--scope SCOPE``, parsed into a Scope (see :class:`ScopeType`); the parameter is ``scope``."""
    return click.option(
        "--scope", "scope", type=SCOPE, required=required and default is None, default=default,
        show_default=default is not None, help=help,
    )  # fmt: skip


def expires_option() -> Callable[[F], F]:
    """``--expires WHEN`` of an invite code, given to the command as text (see :func:`_expires_option`)."""
    return click.option("--expires", default=None, metavar="WHEN", help=_EXPIRES_HELP)


def bot_username_option(help: str = "The bot's @username, for the deep link.") -> Callable[[F], F]:
    """``--bot-username`` (or ZICHA_BOT_USERNAME), for t.me deep links."""
    return click.option("--bot-username", envvar="ZICHA_BOT_USERNAME", help=help)
