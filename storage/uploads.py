"""What has been uploaded so far: counts and bytes of evidence and paper-pledge files.

Evidence is kept as Telegram file ids, so its bytes are the sizes Telegram reported;
paper pledges are kept in the database, so theirs are the stored bytes.
"""

from __future__ import annotations

import sqlite_utils

from bot.core.uploads import Usage


def _usage(db: sqlite_utils.Database, sql: str, params: list[object]) -> Usage:
    files, size = db.execute(sql, params).fetchone()
    return Usage(int(files or 0), int(size or 0))


def item_usage(db: sqlite_utils.Database, selfcheck_id: int, item_id: str) -> Usage:
    return _usage(
        db,
        "SELECT count(*), sum(coalesce(file_size, 0)) FROM evidence WHERE selfcheck_id = ? AND item_id = ?",
        [selfcheck_id, item_id],
    )


def submission_usage(db: sqlite_utils.Database, submission_id: int) -> Usage:
    return _usage(
        db,
        "SELECT count(*), sum(length(content)) FROM submission_files WHERE submission_id = ? AND kind = 'paper_pledge'",
        [submission_id],
    )


def institution_usage(db: sqlite_utils.Database, institution_id: int) -> Usage:
    evidence = _usage(
        db,
        "SELECT count(*), sum(coalesce(e.file_size, 0)) FROM evidence e JOIN selfchecks s ON s.id = e.selfcheck_id "
        "WHERE s.institution_id = ?",
        [institution_id],
    )
    paper = _usage(
        db,
        "SELECT count(*), sum(length(f.content)) FROM submission_files f JOIN submissions s ON s.id = f.submission_id "
        "WHERE s.institution_id = ? AND f.kind = 'paper_pledge'",
        [institution_id],
    )
    return Usage(evidence.files + paper.files, evidence.bytes + paper.bytes)
