"""`zicha chat`: the self-check in the terminal, through the same dispatcher as Telegram."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path

import click

from bot.cli.group import cli
from bot.cli.options import (
    _open_db,
    _settings,
)


@cli.command()
@click.option("--demo", is_flag=True, help="Create a demo institution and register you for it.")
@click.option(
    "--files", "files_dir", type=click.Path(file_okay=False, path_type=Path), default="zicha-files", show_default=True,
    help="Folder for the files the bot sends (signed pledge PDF, workbooks).",
)  # fmt: skip
def chat(demo: bool, files_dir: Path) -> None:
    """Chat with Zicha in this terminal, with no token and no network.

    Runs the same conversation engine as the Telegram bot against the local database.
    Buttons appear with keys: answers as numbers, navigation as fixed letters (p previous,
    n skip or continue, c contents, r review). Type a key to press a button, or type
    text to reply. Files the bot sends are saved in --files.
    """
    from bot.console import CONSOLE_USER_ID, ConsoleChat
    from bot.conversation.engine import Conversation
    from bot.conversation.text import _
    from bot.demo import seed_demo
    from bot.i18n import build_i18n
    from bot.telegram.app import load_campaign_registry, load_checklist
    from storage.conversations import SQLiteStates
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
        conversation = Conversation(
            db=db, checklist=load_checklist(settings), settings=settings, clock=lambda: dt.datetime.now(settings.tz),
            states=SQLiteStates(db), catalog=build_i18n(settings.zicha_locale),
            campaigns=load_campaign_registry(settings),
        )  # fmt: skip
        console = ConsoleChat(conversation, click.echo, files_dir=files_dir)
        if demo and get_membership(db, CONSOLE_USER_ID) is None:
            institution = seed_demo(db, CONSOLE_USER_ID)
            with console.speaking():
                click.echo(_("Demo institution ready: {name} ({uscc}). Database: {db}").format(
                    name=institution.name, uscc=institution.uscc, db=settings.zicha_db
                ))  # fmt: skip
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the chat has said goodbye
            asyncio.run(console.run(input))
