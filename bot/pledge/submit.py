"""Signing a finished self-check: the checks, the frozen submission, and its PDF."""

from __future__ import annotations

import zoneinfo
from typing import TYPE_CHECKING, Any

from bot.core.checklist import Item
from bot.pledge import document as doc
from bot.pledge.signing import Identity, load_signer, sign_pdf
from bot.pledge.text import load_pledge
from bot.selfcheck import Workspace
from storage import pledges as store
from storage.pledges import AlreadySigned, Submission

if TYPE_CHECKING:
    from aiogram.utils.i18n import I18n

__all__ = ["AlreadySigned", "ContentChanged", "NotReady", "build_content", "pdf_file_name", "produce_pdf", "sign"]


class NotReady(Exception):
    """Items are unanswered or lack their rectification details: nothing was signed."""

    def __init__(self, missing: list[Item]) -> None:
        super().__init__(f"{len(missing)} item(s) missing")
        self.missing = missing


class ContentChanged(Exception):
    """The answers changed between the preview and the confirmation: nothing was signed."""


def missing_items(ws: Workspace) -> list[Item]:
    progress = ws.progress()
    return list(progress.unanswered) + list(progress.incomplete)


def build_content(ws: Workspace, locale: str, signer_name: str, signer_role: str) -> dict[str, Any]:
    answers = ws.answers()
    return doc.content(
        checklist=ws.checklist,
        interview=ws.interview,
        institution=ws.institution,
        answers=answers,
        progress=ws.interview.progress(answers),
        pledge=load_pledge(ws.checklist.pledge_key),
        locale=locale,
        signer_name=signer_name,
        signer_role=signer_role,
    )


def sign(
    ws: Workspace,
    *,
    locale: str,
    signer_name: str,
    signer_role: str,
    by: int,
    by_name: str,
    expected_digest: str | None = None,
) -> Submission:
    """Freeze the self-check as a submission. Raises NotReady (with what is missing),
    ContentChanged (if ``expected_digest`` of the previewed content no longer matches)
    or AlreadySigned (a colleague, or a double tap, was first)."""
    current = store.current_submission(ws.db, ws.selfcheck.id)
    if current is not None:
        raise AlreadySigned(current)
    missing = missing_items(ws)
    if missing:
        raise NotReady(missing)
    if signer_role not in doc.ROLES:
        raise ValueError(signer_role)
    body = build_content(ws, locale, signer_name, signer_role)
    if expected_digest is not None and not doc.digest(body).startswith(expected_digest):
        raise ContentChanged()
    pledge = load_pledge(ws.checklist.pledge_key)

    def seal(submission_id: int, signed_at: str) -> str:
        document = doc.sealed(
            body, submission_id=submission_id, code=code, signed_at=signed_at, signed_by=by, signed_by_name=by_name
        )
        return doc.canonical_json(document)

    for _attempt in range(5):
        code = doc.new_verification_code()
        if store.submission_by_code(ws.db, code) is None:
            break
    return store.create_submission(
        ws.db,
        selfcheck_id=ws.selfcheck.id,
        institution_id=ws.institution.id,
        pledge_id=pledge.id,
        pledge_version=pledge.version,
        signer_name=signer_name,
        signer_role=signer_role,
        signed_by=by,
        code=code,
        seal=seal,
    )


def produce_pdf(document: dict[str, Any], i18n: I18n, tz: zoneinfo.ZoneInfo, ident: Identity) -> bytes:
    """Render and sign (CPU-bound: run it in a worker thread from the bot)."""
    from bot.pledge.render import render_pdf  # the renderer translates with aiogram's I18n: loaded when a PDF is made

    pdf = render_pdf(document, i18n, tz)
    reason = f"Zicha pledge {doc.format_code(document['verification_code'])} sha256:{doc.digest(document)}"
    return sign_pdf(pdf, load_signer(ident), reason=reason)


def pdf_file_name(document: dict[str, Any]) -> str:
    return f"pledge-{document['institution']['uscc']}-{document['verification_code']}.pdf"
