"""`zicha status`, `zicha backup`, `zicha restore`: operating the bot."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from bot.cli.group import cli
from bot.cli.options import (
    _open_db,
    _open_existing_db,
    _settings,
)


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
