"""The ``zicha`` command line: one module per command group, on the group in :mod:`bot.cli.group`.

=====================  ==========================================================
module                 commands
=====================  ==========================================================
:mod:`.run`            run
:mod:`.web`            web, web-revoke
:mod:`.chat`           chat
:mod:`.checklist`      checklist validate | show | import | export
:mod:`.campaigns`      campaign list | show | open | close
:mod:`.roster`         roster import, staff list | remove
:mod:`.invites`        invites [create | list | revoke]
:mod:`.regulators`     regulator add | list | remove | invite
:mod:`.pledge`         keys init, verify, pledge get
:mod:`.reminders`      remind, broadcast
:mod:`.reports`        export, digest
:mod:`.samples`        sample draw | list | show | result
:mod:`.ops`            status, backup, restore
=====================  ==========================================================

Shared helpers, the ``--scope`` type and the option bundles are in :mod:`bot.cli.options`.
The entry point (``zicha``, ``python -m bot``) is :func:`main`.

A new command goes into the module of its group. A new group is a module of its own that
imports ``cli`` from :mod:`bot.cli.group` and what it needs from :mod:`bot.cli.options`
(``_settings``, ``_open_db``, ``_open_existing_db``…), and is added to the imports below.
"""

from __future__ import annotations

# Importing a command module adds its commands to the group (`zicha --help` lists them by name).
from bot.cli import (  # noqa: F401
    campaigns,
    chat,
    checklist,
    invites,
    ops,
    pledge,
    regulators,
    reminders,
    reports,
    roster,
    run,
    samples,
    web,
)
from bot.cli.group import cli
from bot.cli.options import _open_db, _open_existing_db, _settings

__all__ = ["_open_db", "_open_existing_db", "_settings", "cli", "main"]


def main() -> None:
    cli(prog_name="zicha")
