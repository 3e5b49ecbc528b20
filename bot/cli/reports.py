"""`zicha export`, `zicha digest`: the regulators' workbook and daily digests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from bot.cli.group import cli
from bot.cli.options import (
    _open_existing_db,
    _settings,
    scope_option,
)
from bot.config import Settings
from bot.core.scope import Scope


@cli.command("export")
@scope_option(default="national", help='Whose institutions: "national", "广东", "province:广东;fields:food"…')
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to write the workbook (FILE.xlsx).")
@click.option("--campaign", "campaign_id", default=None, help="This campaign (default: the open ones; several: FILE-<campaign>.xlsx each).")
def export_cmd(scope: Scope, output: Path, campaign_id: str | None) -> None:
    """Write the regulators' Excel workbook for a scope (the same file as /export).

    Sheets: roster (re-importable), institutions, answers, rectifications, statistics.
    """

    from bot.cli.campaigns import campaign_runs
    from bot.reports.excel import write_export
    from storage.db import read_snapshot

    settings = _settings()
    runs = campaign_runs(settings, campaign_id)
    with _open_existing_db(settings) as db:
        for checklist, _schedule in runs:
            target = output if len(runs) == 1 else output.with_name(f"{output.stem}-{checklist.campaign_key}{output.suffix}")  # type: ignore[attr-defined]
            try:
                with read_snapshot(db):  # every sheet of one state of the database (WAL: no writer waits)
                    write_export(db, checklist, scope, dt.datetime.now(settings.tz), target)  # type: ignore[arg-type]
            except OSError as exc:  # no such folder, no permission, a full disk
                raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None
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
    from bot.cli.campaigns import campaign_runs

    settings = _settings()
    for checklist, _schedule in campaign_runs(settings, campaign_id):
        _digest_campaign(settings, checklist, send=send, telegram_id=telegram_id, final=final, output=output)


def _digest_campaign(
    settings: Settings, checklist: Any, *, send: bool, telegram_id: int | None, final: bool, output: Path | None
) -> None:
    """`zicha digest` for one campaign."""
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
