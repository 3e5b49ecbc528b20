"""`zicha web`, `zicha web-revoke`: the web chat on its own, and ending a web person's sign-ins."""

from __future__ import annotations

import asyncio

import click

from bot.cli.group import cli
from bot.cli.options import (
    _open_db,
    _settings,
)


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
