"""`zicha run`: the Telegram bot (polling or webhooks), with the scheduler and the outbox."""

from __future__ import annotations

import asyncio
import logging

import click

from bot.cli.group import cli
from bot.cli.options import (
    _open_db,
    _settings,
)
from bot.config import ConfigError


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
        from bot.reports import jobs

        if not jobs.in_memory(settings.zicha_db):
            jobs.warm_up()  # the report worker ready before the first /export or digest
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
