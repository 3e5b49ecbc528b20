"""Signed submissions (table ``submissions``) and their files (``submission_files``).

The current submission of a self-check is the one with ``superseded_at IS NULL`` (a
partial unique index allows one); revising supersedes it and keeps it as history.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.db import utcnow


@dataclass(frozen=True)
class Submission:
    id: int
    selfcheck_id: int
    institution_id: int
    pledge_id: str
    pledge_version: str
    signer_name: str
    signer_role: str
    signed_by: int
    signed_at: str
    canonical: str
    sha256: str
    verification_code: str
    superseded_at: str | None
    superseded_by: int | None

    @property
    def current(self) -> bool:
        return self.superseded_at is None

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.canonical)


class AlreadySigned(Exception):
    """The self-check already has a current submission; nothing was written."""

    def __init__(self, submission: Submission) -> None:
        super().__init__("already signed")
        self.submission = submission


def _submission(row: dict[str, Any]) -> Submission:
    return Submission(**{k: row[k] for k in Submission.__dataclass_fields__})


def current_submission(db: sqlite_utils.Database, selfcheck_id: int) -> Submission | None:
    # on every press (the frozen check): db.execute, no SAVEPOINT around it as db.query has
    cursor = db.execute("SELECT * FROM submissions WHERE selfcheck_id = ? AND superseded_at IS NULL", [selfcheck_id])
    values = cursor.fetchone()
    return _submission(dict(zip([d[0] for d in cursor.description], values, strict=True))) if values else None


def current_for_institution(db: sqlite_utils.Database, institution_id: int, campaign_id: str) -> Submission | None:
    row = next(
        db.query(
            "SELECT s.* FROM submissions s JOIN selfchecks c ON c.id = s.selfcheck_id "
            "WHERE c.institution_id = ? AND c.campaign_id = ? AND s.superseded_at IS NULL",
            [institution_id, campaign_id],
        ),
        None,
    )
    return _submission(row) if row else None


def get_submission(db: sqlite_utils.Database, submission_id: int) -> Submission | None:
    row = next(db.query("SELECT * FROM submissions WHERE id = ?", [submission_id]), None)
    return _submission(row) if row else None


def submission_by_code(db: sqlite_utils.Database, code: str) -> Submission | None:
    row = next(db.query("SELECT * FROM submissions WHERE verification_code = ?", [code]), None)
    return _submission(row) if row else None


def submissions_of(db: sqlite_utils.Database, selfcheck_id: int) -> list[Submission]:
    rows = list(db.query("SELECT * FROM submissions WHERE selfcheck_id = ? ORDER BY id", [selfcheck_id]))
    return [_submission(r) for r in rows]


def create_submission(
    db: sqlite_utils.Database,
    *,
    selfcheck_id: int,
    institution_id: int,
    pledge_id: str,
    pledge_version: str,
    signer_name: str,
    signer_role: str,
    signed_by: int,
    code: str,
    seal: Any,
) -> Submission:
    """Insert the submission in one transaction. ``seal(submission_id, signed_at)`` returns
    the canonical JSON (it includes the id, so the row is inserted first and completed in
    the same transaction). Raises AlreadySigned if a current submission exists."""
    now = utcnow()
    try:
        with db.atomic():
            existing = current_submission(db, selfcheck_id)
            if existing is not None:
                raise AlreadySigned(existing)
            cursor = db.execute(
                "INSERT INTO submissions (selfcheck_id, institution_id, pledge_id, pledge_version, signer_name, "
                "signer_role, signed_by, signed_at, canonical, sha256, verification_code) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', '', ?)",
                [selfcheck_id, institution_id, pledge_id, pledge_version, signer_name, signer_role, signed_by, now, code],
            )
            submission_id = int(cursor.lastrowid or 0)
            canonical = seal(submission_id, now)
            sha = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
            db.execute("UPDATE submissions SET canonical = ?, sha256 = ? WHERE id = ?", [canonical, sha, submission_id])
    except sqlite3.IntegrityError:
        # Another connection signed between our check and our insert (the partial unique
        # index on current submissions): theirs stands.
        existing = current_submission(db, selfcheck_id)
        if existing is None:
            raise
        raise AlreadySigned(existing) from None
    created = get_submission(db, submission_id)
    assert created is not None
    return created


def supersede(db: sqlite_utils.Database, submission_id: int, *, by: int) -> bool:
    """Void a current submission (the answers are being revised). False if it was not current."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE submissions SET superseded_at = ?, superseded_by = ? WHERE id = ? AND superseded_at IS NULL",
            [utcnow(), by, submission_id],
        )
    return cursor.rowcount == 1


def later_submission(db: sqlite_utils.Database, submission: Submission) -> Submission | None:
    """The newest submission of the same self-check signed after ``submission``."""
    row = next(
        db.query(
            "SELECT * FROM submissions WHERE selfcheck_id = ? AND id > ? ORDER BY id DESC LIMIT 1",
            [submission.selfcheck_id, submission.id],
        ),
        None,
    )
    return _submission(row) if row else None


# --- files -------------------------------------------------------------------------


def save_pdf(db: sqlite_utils.Database, submission_id: int, content: bytes, file_name: str) -> None:
    """Keep the signed PDF of a submission (the first one stays if two were made)."""
    with db.atomic():
        db.execute(
            "INSERT INTO submission_files (submission_id, kind, content, sha256, file_name, mime_type, added_at) "
            "VALUES (?, 'signed_pdf', ?, ?, ?, 'application/pdf', ?) ON CONFLICT DO NOTHING",
            [submission_id, content, hashlib.sha256(content).hexdigest(), file_name, utcnow()],
        )


def get_pdf(db: sqlite_utils.Database, submission_id: int) -> dict[str, Any] | None:
    return next(
        db.query(
            "SELECT * FROM submission_files WHERE submission_id = ? AND kind = 'signed_pdf'", [submission_id],
        ),
        None,
    )


def add_paper_pledge(
    db: sqlite_utils.Database,
    submission_id: int,
    content: bytes,
    *,
    by: int,
    file_name: str | None,
    mime_type: str | None,
    telegram_file_id: str,
    file_unique_id: str,
) -> int:
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO submission_files (submission_id, kind, content, sha256, file_name, mime_type, "
            "telegram_file_id, file_unique_id, added_by, added_at) VALUES (?, 'paper_pledge', ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                submission_id, content, hashlib.sha256(content).hexdigest(), file_name, mime_type,
                telegram_file_id, file_unique_id, by, utcnow(),
            ],
        )
    return int(cursor.lastrowid or 0)


def paper_pledges(db: sqlite_utils.Database, submission_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT id, file_name, mime_type, sha256, length(content) AS size, added_by, added_at FROM submission_files "
            "WHERE submission_id = ? AND kind = 'paper_pledge' ORDER BY id",
            [submission_id],
        )
    )
