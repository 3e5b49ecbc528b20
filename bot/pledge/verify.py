"""``zicha verify``: is this PDF a genuine signed pledge, and is it what the database holds?

In order: the PDF signature (intact, valid, made with this deployment's certificate,
covering the whole file); the submission data embedded in the PDF (its SHA-256 against
the stored one); whether the submission is still current; and whether the stored
answers still equal the signed ones. The first failure is the reason given.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlite_utils

from bot.core.interview import answer_fields
from bot.i18n import format_datetime
from bot.pledge import document as doc
from bot.pledge.render import ATTACHMENT_NAME
from bot.pledge.signing import SigningSettings, check_signature, identity
from storage import pledges as store
from storage.answers import load_answers
from storage.institutions import get_user_name
from storage.sendbacks import send_back_of


class Finding(StrEnum):
    """What a verdict found, for a page anyone may open: the ``reason`` and ``details`` are
    for the operator (``zicha verify``) and name paths, ids and people."""

    VALID = "valid"
    NO_CERTIFICATE = "no_certificate"  # this deployment cannot check signatures (not set up)
    SIGNATURE = "signature"  # none, damaged, not valid, not this deployment's, not covering the file
    NOT_STORED = "not_stored"  # signed here, but its data is not (or no longer) what is stored
    SUPERSEDED = "superseded"  # genuine, but voided by a later revision of the answers


@dataclass
class Verdict:
    ok: bool
    reason: str
    details: list[str] = field(default_factory=list)
    finding: Finding = Finding.SIGNATURE
    submission: store.Submission | None = None  # the genuine submission the PDF is (valid or superseded)


def verify_pdf(data: bytes, db: sqlite_utils.Database, settings: Any) -> Verdict:
    ident = identity(SigningSettings(zicha_db=settings.zicha_db), db_path=settings.zicha_db)
    if not ident.cert.is_file():
        return Verdict(
            False, f"no signing certificate to check against ({ident.cert}); set ZICHA_SIGNING_CERT or run zicha keys init",
            finding=Finding.NO_CERTIFICATE,
        )
    check = check_signature(data, ident.cert, ATTACHMENT_NAME)
    details = [f"signature: {check.reason}"]
    if check.signer_subject:
        details.append(f"certificate: {check.signer_subject}")
    if not check.ok:
        return Verdict(False, check.reason, details)
    assert check.attachment is not None
    try:
        signed = json.loads(check.attachment.decode("utf-8"))
        submission_id = int(signed["submission"])
    except (ValueError, KeyError, TypeError):
        return Verdict(False, "the embedded submission data cannot be read", details, Finding.NOT_STORED)
    sha = hashlib.sha256(check.attachment).hexdigest()
    submission = store.get_submission(db, submission_id)
    if submission is None:
        return Verdict(False, f"submission #{submission_id} does not exist in this database ({settings.zicha_db})", details, Finding.NOT_STORED)
    details.append(
        f"submission #{submission.id}, code {doc.format_code(submission.verification_code)}, "
        f"signed by {submission.signer_name} ({submission.signer_role}) "
        f"on {format_datetime(submission.signed_at, 'en', settings.tz)} ({settings.zicha_timezone})"
    )
    details.append(f"institution: {signed['institution']['name']} ({signed['institution']['uscc']})")
    details.append(f"sha256: {sha}")
    if sha != submission.sha256:
        return Verdict(
            False, f"the PDF's content does not match the stored submission #{submission.id} (SHA-256 differs)", details, Finding.NOT_STORED
        )
    if not submission.current:
        who = get_user_name(db, submission.superseded_by) if submission.superseded_by is not None else None
        by = f"{who.first_name} (Telegram ID {submission.superseded_by})" if who else f"Telegram ID {submission.superseded_by}"
        later = store.current_submission(db, submission.selfcheck_id)
        again = (
            f"; the current submission is #{later.id}, code {doc.format_code(later.verification_code)}"
            if later is not None
            else "; it has not been signed again"
        )
        sent_back = send_back_of(db, submission.id)
        if sent_back is not None:
            why = (
                f"superseded: sent back for rework on {format_datetime(sent_back.sent_at, 'en', settings.tz)} by "
                f"{sent_back.sent_by_label} ({by}), which voided this signed pledge{again}"
            )
        else:
            why = (
                f"superseded: the answers were revised on {format_datetime(submission.superseded_at or '', 'en', settings.tz)} "
                f"by {by}, which voided this signed pledge{again}"
            )
        return Verdict(
            False,
            why,
            details,
            Finding.SUPERSEDED,
            submission,
        )
    changed = _changed_items(db, submission, signed)
    if changed:
        return Verdict(
            False, f"the stored answers no longer equal the signed ones (items {', '.join(map(str, changed))})", details, Finding.NOT_STORED
        )
    return Verdict(
        True, "valid: signature intact and trusted; it is the current signed submission and matches the stored answers", details,
        Finding.VALID, submission,
    )  # fmt: skip


def _changed_items(db: sqlite_utils.Database, submission: store.Submission, signed: dict[str, Any]) -> list[int]:
    """Items whose stored answers differ from the signed document (should never happen
    while signed: the workspace refuses changes; this catches edits made around it).
    The signed items are compared by id, so a later checklist version (an item removed
    or added) does not make an untouched signed submission look edited."""
    answers = load_answers(db, submission.selfcheck_id)
    items = [{"n": i["n"], "id": i["id"], **answer_fields(answers.get(i["id"]))} for i in signed["items"]]
    return doc.items_differ(signed, {"items": items})
