"""Schema migrations, applied in order at start; each runs in its own transaction.

Never edit a migration that has shipped: add a new one below it.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("zicha")


def _run_script(db: sqlite_utils.Database, script: str) -> None:
    """Run statements one by one: sqlite3's executescript() would COMMIT the migration's
    transaction before it starts, so a failing migration could be left half-applied."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement!r}")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        CREATE TABLE users (
            telegram_id INTEGER PRIMARY KEY,
            first_name TEXT NOT NULL DEFAULT '',
            username TEXT,
            language TEXT,              -- chosen with /language; NULL = follow Telegram's language
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE institutions (
            id INTEGER PRIMARY KEY,
            uscc TEXT NOT NULL UNIQUE,   -- 统一社会信用代码, validated on import
            name TEXT NOT NULL,
            cma_cert TEXT NOT NULL DEFAULT '',
            province TEXT NOT NULL DEFAULT '',
            level TEXT NOT NULL DEFAULT 'national' CHECK (level IN ('national', 'provincial')),
            fields TEXT NOT NULL DEFAULT '[]',  -- JSON list of field ids
            contact_name TEXT NOT NULL DEFAULT '',
            contact_phone TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE invites (
            code TEXT PRIMARY KEY,
            institution_id INTEGER NOT NULL REFERENCES institutions(id),
            max_uses INTEGER NOT NULL CHECK (max_uses > 0),
            uses INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE INDEX invites_institution ON invites(institution_id);

        -- Which Telegram user acts for which institution. One institution per user.
        CREATE TABLE members (
            telegram_id INTEGER PRIMARY KEY REFERENCES users(telegram_id),
            institution_id INTEGER NOT NULL REFERENCES institutions(id),
            invite_code TEXT REFERENCES invites(code),
            bound_at TEXT NOT NULL
        );
        CREATE INDEX members_institution ON members(institution_id);

        CREATE TABLE selfchecks (
            id INTEGER PRIMARY KEY,
            institution_id INTEGER NOT NULL REFERENCES institutions(id),
            checklist_id TEXT NOT NULL,
            checklist_version TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'in_progress' CHECK (status IN ('in_progress', 'completed')),
            started_at TEXT NOT NULL,
            completed_at TEXT,
            updated_at TEXT NOT NULL,
            UNIQUE (institution_id, checklist_id)
        );

        CREATE TABLE answers (
            selfcheck_id INTEGER NOT NULL REFERENCES selfchecks(id),
            item_id TEXT NOT NULL,
            value TEXT NOT NULL,          -- compliant / noncompliant / na / yes / no / text
            text TEXT,                    -- the answer of a text item, or the correction of a "no"
            problem TEXT,                 -- non-compliant: what is wrong
            measure TEXT,                 -- non-compliant: rectification measure (整改措施)
            rect_status TEXT CHECK (rect_status IN ('done', 'in_progress')),
            target_date TEXT,             -- ISO date, when rect_status = in_progress
            rev INTEGER NOT NULL,         -- bumps on every change; buttons carry it to detect stale presses
            answered_by INTEGER NOT NULL,
            answered_at TEXT NOT NULL,
            updated_by INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (selfcheck_id, item_id)
        );

        CREATE TABLE answer_history (
            id INTEGER PRIMARY KEY,
            selfcheck_id INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            rev INTEGER NOT NULL,
            changed_by INTEGER NOT NULL,
            changed_at TEXT NOT NULL,
            old TEXT,                     -- JSON of the answer before, NULL for the first answer
            new TEXT NOT NULL             -- JSON of the answer after
        );
        CREATE INDEX answer_history_item ON answer_history(selfcheck_id, item_id);

        CREATE TABLE evidence (
            id INTEGER PRIMARY KEY,
            selfcheck_id INTEGER NOT NULL REFERENCES selfchecks(id),
            item_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('photo', 'document')),
            file_id TEXT NOT NULL,
            file_unique_id TEXT NOT NULL,
            file_name TEXT,
            mime_type TEXT,
            file_size INTEGER,
            uploaded_by INTEGER NOT NULL,
            uploaded_at TEXT NOT NULL
        );
        CREATE INDEX evidence_item ON evidence(selfcheck_id, item_id);

        -- aiogram FSM state and data, so a restart loses no conversation.
        CREATE TABLE fsm (
            key TEXT PRIMARY KEY,
            state TEXT,
            data TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m002_regulators(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        -- Regulators see institutions within their scope only (see bot/core/scope.py).
        CREATE TABLE regulators (
            telegram_id INTEGER PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            scope TEXT NOT NULL,          -- JSON: {"national": bool, "provinces": [...], "fields": [...]}
            added_at TEXT NOT NULL
        );
        """,
    )


@migrations()
def m003_submissions(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        -- A signed pledge summary: the frozen self-check plus the pledge, as signed.
        -- The current submission of a self-check is the one with superseded_at IS NULL;
        -- revising the answers supersedes it (kept as history) until it is signed again.
        CREATE TABLE submissions (
            id INTEGER PRIMARY KEY,
            selfcheck_id INTEGER NOT NULL REFERENCES selfchecks(id),
            institution_id INTEGER NOT NULL REFERENCES institutions(id),
            pledge_id TEXT NOT NULL,
            pledge_version TEXT NOT NULL,
            signer_name TEXT NOT NULL,
            signer_role TEXT NOT NULL,
            signed_by INTEGER NOT NULL,       -- Telegram user id of who pressed "sign"
            signed_at TEXT NOT NULL,          -- UTC ISO 8601
            canonical TEXT NOT NULL,          -- canonical JSON of what was signed
            sha256 TEXT NOT NULL,             -- of canonical
            verification_code TEXT NOT NULL UNIQUE,
            superseded_at TEXT,
            superseded_by INTEGER            -- Telegram user id of who revised
        );
        CREATE UNIQUE INDEX submissions_current ON submissions(selfcheck_id) WHERE superseded_at IS NULL;
        """,
    )


# Later migrations go below, in this order. Each feature appends its own after its marker.
# --- pledge (issue 3) ---
# --- outbox and reminders (issue 4) ---
# --- regulators: invites and digests (issue 5) ---
# --- operations (issue 6) ---
