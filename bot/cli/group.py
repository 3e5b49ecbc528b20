"""The ``zicha`` click group every command module adds its commands to."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zicha")
def cli() -> None:
    """Zicha (自查): guides staff of inspection and testing institutions through their
    regulator's annual self-check in Telegram.

    Settings come from environment variables or a .env file: BOT_TOKEN,
    TELEGRAM_API_URL, ZICHA_DB (default ./zicha.db), ZICHA_TIMEZONE (default
    Asia/Shanghai), ZICHA_LOCALE (zh_CN or en).
    """
