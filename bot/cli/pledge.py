"""`zicha keys init`, `zicha verify`, `zicha pledge get`: the signed pledge."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bot.cli.group import cli
from bot.cli.options import (
    _load_checklist,
    _open_existing_db,
    _settings,
)


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
