"""Schema migrations, applied in order at start; each runs in its own transaction.

Never edit a migration that has shipped: add a new one below it. Migrations are named
``mNNN_what_it_does``. sqlite-utils records each applied migration by name in
``_sqlite_migrations``, so renaming a shipped migration needs an entry in ``RENAMED``:
``apply`` rewrites the recorded old names first, and nothing runs twice.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("zicha")

RENAMED: dict[str, str] = {
    # name recorded by databases created before the rename -> the migration's name now
    "m_issue4_outbox_reminders": "m005_outbox_and_reminders",
    "m_issue5_regulator_invites_digests": "m006_regulator_invites_and_digests",
    "m_issue6_heartbeat": "m007_heartbeat",
    "m_issue12_invite_expiry": "m008_invite_expiry",
    "m_issue12_member_removals": "m009_member_removals",
}


def adopt_renamed(db: sqlite_utils.Database, renamed: dict[str, str] | None = None) -> int:
    """Record migrations applied under an old name under their new name (before ``apply``
    looks for pending ones), so a renamed migration is not run again. Returns how many
    records were rewritten; in one transaction with nothing else."""
    renamed = RENAMED if renamed is None else renamed
    table = Migrations.migrations_table
    if not db[table].exists():
        return 0
    changed = 0
    with db.atomic():
        for old, new in renamed.items():
            cursor = db.execute(
                f"UPDATE [{table}] SET name = ? WHERE migration_set = ? AND name = ? "
                f"AND NOT EXISTS (SELECT 1 FROM [{table}] WHERE migration_set = ? AND name = ?)",
                [new, migrations.name, old, migrations.name, new],
            )
            changed += cursor.rowcount
    return changed


def apply(db: sqlite_utils.Database) -> None:
    """Bring the database's schema up to date: renamed records first, then what is pending."""
    adopt_renamed(db)
    # Foreign keys off while migrating (a no-op inside a transaction): SQLite's procedure
    # for rebuilding a table (m012). Each migration that rebuilds checks them itself.
    enforced = db.execute("PRAGMA foreign_keys").fetchone()[0]
    db.execute("PRAGMA foreign_keys=OFF")
    try:
        migrations.apply(db)
    finally:
        db.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")


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
@migrations()
def m004_pledge_files(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        -- Files of a submission, kept in the database so one backup holds everything:
        -- the signed PDF Zicha produced (one per submission) and scans or photos of the
        -- paper pledge with signature and seal that staff uploaded.
        CREATE TABLE submission_files (
            id INTEGER PRIMARY KEY,
            submission_id INTEGER NOT NULL REFERENCES submissions(id),
            kind TEXT NOT NULL CHECK (kind IN ('signed_pdf', 'paper_pledge')),
            content BLOB NOT NULL,
            sha256 TEXT NOT NULL,
            file_name TEXT,
            mime_type TEXT,
            telegram_file_id TEXT,        -- of an uploaded paper pledge, as Telegram knows it
            file_unique_id TEXT,
            added_by INTEGER,             -- Telegram user id (NULL: Zicha itself)
            added_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX submission_files_pdf ON submission_files(submission_id) WHERE kind = 'signed_pdf';
        CREATE INDEX submission_files_submission ON submission_files(submission_id);
        """,
    )


# --- outbox and reminders (issue 4) ---


@migrations()
def m005_outbox_and_reminders(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        -- Deliveries that belong together (one broadcast, one reminder sweep), for reports.
        CREATE TABLE outbox_batches (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            created_by INTEGER,               -- Telegram id of the regulator; NULL from the CLI
            scope TEXT,                       -- the scope as text (Scope.to_text), for broadcasts
            text TEXT NOT NULL DEFAULT '',
            report_chat_id INTEGER,           -- who gets the delivery report once every row is final
            created_at TEXT NOT NULL,
            reported_at TEXT
        );

        -- Every bulk message (reminders, broadcasts, digests): one row per recipient.
        -- pending -> sending -> sent | blocked (403) | failed (400, or out of attempts).
        -- A row is 'sending' only while its one request is in flight; after a crash it is
        -- sent again (the only possible duplicate).
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            chat_id INTEGER NOT NULL,
            text TEXT NOT NULL DEFAULT '',    -- the message, or the caption of a document
            parse_mode TEXT,                  -- 'HTML' or NULL for plain text
            reply_markup TEXT,                -- JSON
            document_path TEXT,
            document_name TEXT,
            batch_id INTEGER REFERENCES outbox_batches(id),
            dedup_key TEXT UNIQUE,
            quiet INTEGER NOT NULL DEFAULT 1, -- 1: held during quiet hours
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'blocked', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before TEXT NOT NULL,         -- UTC ISO 8601: not sent before (backoff)
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT,
            message_id INTEGER,
            error TEXT
        );
        CREATE INDEX outbox_due ON outbox(not_before, id) WHERE status = 'pending';
        CREATE INDEX outbox_batch ON outbox(batch_id, status);

        -- Chats that answered 403 (blocked the bot, deactivated): skipped by reminders and
        -- broadcasts until the user unblocks the bot; regulators see them in reports.
        CREATE TABLE unreachable (
            chat_id INTEGER PRIMARY KEY,
            marked_at TEXT NOT NULL,
            error TEXT NOT NULL
        );

        -- Each (member, reminder) is queued once, whatever the number of sweeps or restarts.
        CREATE TABLE reminders_sent (
            telegram_id INTEGER NOT NULL,
            checklist_id TEXT NOT NULL,
            reminder TEXT NOT NULL,           -- 'd14', 'd7', 'd3', 'd1', 'd0' (the deadline's morning)
            institution_id INTEGER NOT NULL,
            outbox_id INTEGER,
            created_at TEXT NOT NULL,
            PRIMARY KEY (telegram_id, checklist_id, reminder)
        );
        """,
    )
# --- regulators: invites and digests (issue 5) ---


@migrations()
def m006_regulator_invites_and_digests(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        -- An invite that makes whoever redeems it a regulator with this scope.
        -- Codes share the alphabet and length of institution invites (bot/core/invites.py);
        -- /start CODE looks in both tables (100 random bits: the two never collide).
        CREATE TABLE regulator_invites (
            code TEXT PRIMARY KEY,
            scope TEXT NOT NULL,          -- JSON, as regulators.scope
            name TEXT NOT NULL DEFAULT '',
            max_uses INTEGER NOT NULL CHECK (max_uses > 0),
            uses INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );

        -- One row per digest built for a regulator: the figures it showed, so the next
        -- digest can say what changed (and which institutions were newly signed).
        CREATE TABLE digest_snapshots (
            id INTEGER PRIMARY KEY,
            regulator_id INTEGER NOT NULL,    -- Telegram id of the regulator
            kind TEXT NOT NULL CHECK (kind IN ('daily', 'final')),
            digest_date TEXT NOT NULL,        -- local date the digest is for (ISO)
            created_at TEXT NOT NULL,
            totals TEXT NOT NULL,             -- JSON {status: count}
            signed_ids TEXT NOT NULL,         -- JSON list of institution ids signed at that time
            UNIQUE (regulator_id, kind, digest_date)
        );
        CREATE INDEX digest_snapshots_regulator ON digest_snapshots(regulator_id, created_at);

        -- Regulator queries filter on province and count non-compliances per item.
        CREATE INDEX IF NOT EXISTS institutions_province ON institutions(province);
        CREATE INDEX IF NOT EXISTS answers_noncompliant ON answers(item_id, selfcheck_id) WHERE value = 'noncompliant';
        CREATE INDEX IF NOT EXISTS submissions_institution ON submissions(institution_id) WHERE superseded_at IS NULL;
        """,
    )
# --- operations (issue 6) ---


@migrations()
def m007_heartbeat(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        -- The running bot's pulse, for `zicha status` (another process): one row per role.
        CREATE TABLE heartbeat (
            role TEXT PRIMARY KEY,        -- 'bot'
            pid INTEGER NOT NULL,
            mode TEXT NOT NULL,           -- 'polling' or 'webhook'
            started_at TEXT NOT NULL,
            beat_at TEXT NOT NULL,        -- UTC ISO 8601, renewed every ZICHA_HEARTBEAT_SECONDS
            stopped_at TEXT,              -- set on a clean shutdown
            scheduler TEXT NOT NULL DEFAULT 'not configured'  -- running / stopped / not configured
        );
        """,
    )
# --- access: removing staff, revoking and expiring invites (issue 12) ---


@migrations()
def m008_invite_expiry(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        -- An optional end of validity for every invite (UTC ISO 8601, like every timestamp):
        -- from then on the code admits nobody. NULL: valid until used up or revoked.
        ALTER TABLE invites ADD COLUMN expires_at TEXT;
        ALTER TABLE regulator_invites ADD COLUMN expires_at TEXT;
        """,
    )


@migrations()
def m009_member_removals(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        -- Staff removed from an institution (the members row is deleted, so access ends at
        -- the next update): who, from where, with which invite, and who removed them.
        CREATE TABLE member_removals (
            id INTEGER PRIMARY KEY,
            telegram_id INTEGER NOT NULL,
            institution_id INTEGER NOT NULL REFERENCES institutions(id),
            invite_code TEXT,
            bound_at TEXT NOT NULL,
            removed_at TEXT NOT NULL,
            removed_by TEXT NOT NULL          -- 'cli', or 'regulator:<telegram id>'
        );
        CREATE INDEX member_removals_institution ON member_removals(institution_id);
        -- `zicha invites revoke CODE --remove-members` finds who joined with a code.
        CREATE INDEX IF NOT EXISTS members_invite ON members(invite_code);
        """,
    )
# --- web chat (issue 11) ---


@migrations()
def m010_web_people_sessions_and_email(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        -- People who joined on the web are rows of `users` like Telegram users, so answers,
        -- history, membership, removal and every access check keep working unchanged: their
        -- ids come from a separate range (negative; Telegram user ids are positive), handed
        -- out by storage/web.py. `channel` says which kind a row is.
        ALTER TABLE users ADD COLUMN channel TEXT NOT NULL DEFAULT 'telegram'
            CHECK (channel IN ('telegram', 'web'));
        ALTER TABLE users ADD COLUMN email TEXT;

        -- Server-side web sessions; the cookie holds a random token, only its SHA-256 is kept.
        -- user_id NULL: an anonymous session (a join in progress, the verify form).
        CREATE TABLE web_sessions (
            token_sha256 TEXT PRIMARY KEY,
            user_id INTEGER,
            csrf TEXT NOT NULL,               -- the synchronizer token of every form of this session
            data TEXT NOT NULL DEFAULT '{}',  -- JSON: the join step in progress, the language
            created_at TEXT NOT NULL,
            seen_at TEXT NOT NULL,            -- idle expiry counts from here
            expires_at TEXT NOT NULL          -- absolute expiry
        );
        CREATE INDEX web_sessions_user ON web_sessions(user_id);

        -- Personal sign-in links (/s/TOKEN): shown once, kept as SHA-256, revocable.
        CREATE TABLE web_links (
            id INTEGER PRIMARY KEY,
            token_sha256 TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES users(telegram_id),
            created_at TEXT NOT NULL,
            used_at TEXT,
            revoked_at TEXT
        );
        CREATE INDEX web_links_user ON web_links(user_id);

        -- The outbox delivers by e-mail too: web-only staff get reminders and broadcasts there.
        ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'telegram'
            CHECK (channel IN ('telegram', 'email'));
        ALTER TABLE outbox ADD COLUMN email_to TEXT;
        ALTER TABLE outbox ADD COLUMN subject TEXT;
        """,
    )


@migrations()
def m011_campaigns_and_selfcheck_campaign(db: sqlite_utils.Database) -> None:
    """Campaigns become stored data, and each self-check belongs to one.

    Everything stored so far belongs to a campaign named after its checklist: the shipped
    table's self-checks to the 2023 national campaign (its row carries the dates of
    国市监检测发〔2023〕90号). Nothing is copied or deleted, so every answer, history row,
    submission and file stays where it was.
    """
    _run_script(
        db,
        """
        CREATE TABLE campaigns (
            id TEXT PRIMARY KEY,
            year INTEGER NOT NULL,
            title_zh TEXT NOT NULL,
            title_en TEXT NOT NULL,
            checklist_id TEXT NOT NULL,
            pledge_id TEXT,
            level TEXT NOT NULL DEFAULT 'national' CHECK (level IN ('national', 'provincial')),
            provinces TEXT NOT NULL DEFAULT '[]',   -- JSON list; empty: every province
            fields TEXT NOT NULL DEFAULT '[]',      -- JSON list of field ids; empty: every field
            opens_on TEXT,                          -- ISO dates
            closes_on TEXT,
            deadline TEXT,
            editions TEXT NOT NULL DEFAULT '[]',    -- JSON list of "regulation:edition" in force
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
            opened_at TEXT NOT NULL,
            closed_at TEXT,
            updated_at TEXT NOT NULL
        );

        INSERT INTO campaigns (id, year, title_zh, title_en, checklist_id, pledge_id, level,
                               opens_on, closes_on, deadline, status, opened_at, updated_at)
        VALUES ('samr-2023-national', 2023, '2023年度国家级资质认定检验检测机构自查',
                '2023 self-check of nationally accredited inspection and testing institutions',
                'samr-2023-national', 'samr-2023-national', 'national',
                '2023-09-01', '2023-12-31', '2023-10-27', 'open',
                strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

        -- Self-checks of any other checklist (a deployment's own ZICHA_CHECKLIST) get a
        -- campaign of the same id, so none is left without one.
        INSERT INTO campaigns (id, year, title_zh, title_en, checklist_id, level, status, opened_at, updated_at)
        SELECT DISTINCT checklist_id, CAST(substr(min(started_at), 1, 4) AS INTEGER), checklist_id, checklist_id,
               checklist_id, 'national', 'open',
               strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        FROM selfchecks
        WHERE checklist_id NOT IN (SELECT id FROM campaigns)
        GROUP BY checklist_id;

        ALTER TABLE selfchecks ADD COLUMN campaign_id TEXT REFERENCES campaigns(id);
        UPDATE selfchecks SET campaign_id = checklist_id WHERE campaign_id IS NULL;
        CREATE INDEX selfchecks_campaign ON selfchecks(campaign_id, institution_id);
        """,
    )


@migrations()
def m012_web_evidence_files(db: sqlite_utils.Database) -> None:
    _run_script(
        db,
        """
        -- The bytes of evidence uploaded through the web chat. Telegram keeps its files and
        -- `evidence.file_id` names them there; a web upload's `evidence.file_id` is 'web:' and
        -- a random token, and its content is kept here under that name (never served back).
        CREATE TABLE web_files (
            ref TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL,
            content BLOB NOT NULL,
            created_at TEXT NOT NULL
        );
        """,
    )


@migrations()
def m013_selfchecks_reminders_and_digests_per_campaign(db: sqlite_utils.Database) -> None:
    """One self-check per institution and campaign (not per checklist), reminders claimed
    per campaign, digests kept per campaign, and the campaign each user works on.

    Two campaigns may run the same table (the demo runs the 2023 one), so the old
    ``UNIQUE (institution_id, checklist_id)`` gives way to ``UNIQUE (institution_id,
    campaign_id)``. SQLite cannot drop a constraint: the table is rebuilt, ids kept, so
    answers, history, evidence and submissions point at the same rows. ``apply`` runs
    migrations with foreign keys off (SQLite's procedure for rebuilding a table); this one
    checks them before it commits.
    """
    _run_script(
        db,
        """
        CREATE TABLE selfchecks_m013 (
            id INTEGER PRIMARY KEY,
            institution_id INTEGER NOT NULL REFERENCES institutions(id),
            checklist_id TEXT NOT NULL,
            checklist_version TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'in_progress' CHECK (status IN ('in_progress', 'completed')),
            started_at TEXT NOT NULL,
            completed_at TEXT,
            updated_at TEXT NOT NULL,
            campaign_id TEXT NOT NULL REFERENCES campaigns(id),
            UNIQUE (institution_id, campaign_id)
        );
        INSERT INTO selfchecks_m013 (id, institution_id, checklist_id, checklist_version, status, started_at,
                                     completed_at, updated_at, campaign_id)
        SELECT id, institution_id, checklist_id, checklist_version, status, started_at, completed_at, updated_at,
               coalesce(campaign_id, checklist_id)
        FROM selfchecks;
        DROP TABLE selfchecks;
        ALTER TABLE selfchecks_m013 RENAME TO selfchecks;
        CREATE INDEX selfchecks_campaign ON selfchecks(campaign_id, institution_id);

        -- Each (member, campaign, reminder) is queued once: two campaigns, two schedules.
        CREATE TABLE reminders_sent_m013 (
            telegram_id INTEGER NOT NULL,
            checklist_id TEXT NOT NULL,
            reminder TEXT NOT NULL,
            institution_id INTEGER NOT NULL,
            outbox_id INTEGER,
            created_at TEXT NOT NULL,
            campaign_id TEXT NOT NULL,
            PRIMARY KEY (telegram_id, campaign_id, reminder)
        );
        INSERT INTO reminders_sent_m013 (telegram_id, checklist_id, reminder, institution_id, outbox_id, created_at,
                                         campaign_id)
        SELECT telegram_id, checklist_id, reminder, institution_id, outbox_id, created_at, checklist_id
        FROM reminders_sent;
        DROP TABLE reminders_sent;
        ALTER TABLE reminders_sent_m013 RENAME TO reminders_sent;

        -- A regulator gets one digest per campaign and day; earlier digests were about the
        -- deployment's one campaign.
        CREATE TABLE digest_snapshots_m013 (
            id INTEGER PRIMARY KEY,
            regulator_id INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('daily', 'final')),
            digest_date TEXT NOT NULL,
            created_at TEXT NOT NULL,
            totals TEXT NOT NULL,
            signed_ids TEXT NOT NULL,
            campaign_id TEXT NOT NULL,
            UNIQUE (regulator_id, campaign_id, kind, digest_date)
        );
        INSERT INTO digest_snapshots_m013 (id, regulator_id, kind, digest_date, created_at, totals, signed_ids,
                                           campaign_id)
        SELECT id, regulator_id, kind, digest_date, created_at, totals, signed_ids,
               coalesce((SELECT min(campaign_id) FROM selfchecks), 'samr-2023-national')
        FROM digest_snapshots;
        DROP TABLE digest_snapshots;
        ALTER TABLE digest_snapshots_m013 RENAME TO digest_snapshots;
        CREATE INDEX digest_snapshots_regulator ON digest_snapshots(regulator_id, campaign_id, created_at);

        -- The campaign a user works on when their institution is covered by several.
        CREATE TABLE user_campaigns (
            telegram_id INTEGER PRIMARY KEY,
            campaign_id TEXT NOT NULL REFERENCES campaigns(id),
            chosen_at TEXT NOT NULL
        );
        """,
    )
    broken = db.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise sqlite3.IntegrityError(f"m013: foreign keys broken by the rebuild: {broken[:5]}")


@migrations()
def m014_selfcheck_answer_counters(db: sqlite_utils.Database) -> None:
    # Counters of each self-check's stored answers, kept by save_answer in the same
    # statement that stamps the self-check (storage/answers.py), so nothing needs to count
    # the answers again: how many, how many incomplete (a follow-up missing), how many
    # 不符合, how many of those not rectified. Filled here from the answers already there.
    _run_script(
        db,
        f"""
        ALTER TABLE selfchecks ADD COLUMN n_answered INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE selfchecks ADD COLUMN n_incomplete INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE selfchecks ADD COLUMN n_noncompliant INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE selfchecks ADD COLUMN n_open_rect INTEGER NOT NULL DEFAULT 0;
        {RECOUNT_SQL};
        """,
    )


COUNTER_EXPRESSIONS = """COUNT(*),
    COALESCE(SUM(CASE
        WHEN a.value = 'noncompliant' THEN NOT (COALESCE(a.problem, '') != '' AND COALESCE(a.measure, '') != ''
            AND (COALESCE(a.rect_status, '') = 'done'
                 OR (COALESCE(a.rect_status, '') = 'in_progress' AND a.target_date IS NOT NULL)))
        WHEN a.value = 'no' THEN COALESCE(a.text, '') = ''
        ELSE 0 END), 0),
    COALESCE(SUM(a.value = 'noncompliant'), 0),
    COALESCE(SUM(a.value = 'noncompliant' AND COALESCE(a.rect_status, '') != 'done'), 0)"""
"""The self-check counters (answered, incomplete, non-compliant, not rectified) over the
answers ``a``: the same rules as ``Answer.is_complete`` and ``open_rectification`` (every
column COALESCEd: a NULL would make the whole condition NULL, which SUM skips)."""

RECOUNT_SQL = f"""UPDATE selfchecks SET (n_answered, n_incomplete, n_noncompliant, n_open_rect) = (
    SELECT {COUNTER_EXPRESSIONS} FROM answers a WHERE a.selfcheck_id = selfchecks.id)"""
"""Every self-check's counters recounted from its answers."""


@migrations()
def m015_status_report_indexes(db: sqlite_utils.Database) -> None:
    # /status and the digest count institutions by province and fields, filtered by a
    # campaign's level too (storage/reports.py ``status_counts``): with the three in one
    # index that count reads the index alone, in its order, instead of every row.
    # The pending corrections ("no" to a confirm item, with the correct details) are few:
    # a partial index finds them without visiting each self-check's answers.
    _run_script(
        db,
        """
        CREATE INDEX IF NOT EXISTS institutions_province_fields ON institutions(province, fields, level);
        CREATE INDEX IF NOT EXISTS answers_no ON answers(item_id, selfcheck_id) WHERE value = 'no';
        """,
    )


@migrations()
def m016_names_without_controls(db: sqlite_utils.Database) -> None:
    # Names from outside lose their control characters and bidirectional overrides where
    # they enter (bot.core.interview.without_controls: Telegram names, roster names); the
    # ones stored before are cleaned once here, so that no list, workbook, pledge or
    # terminal shows them (an ESC in a name printed by `zicha staff list` acted on the
    # operator's terminal).
    from bot.core.interview import without_controls

    for table, key, column in (
        ("users", "telegram_id", "first_name"),
        ("institutions", "id", "name"),
        ("institutions", "id", "contact_name"),
    ):
        for row_key, value in db.execute(f"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL").fetchall():
            cleaned = without_controls(str(value))
            if cleaned != value:
                db.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", [cleaned, row_key])


@migrations()
def m017_send_backs(db: sqlite_utils.Database) -> None:
    # A regulator sends a signed submission back for rework (退回整改): the submission is
    # superseded (by the regulator) and this row keeps why, by whom and when. One per
    # submission: a submission is sent back at most once, since it is no longer current after.
    db.executescript(
        """
        CREATE TABLE send_backs (
            id INTEGER PRIMARY KEY,
            submission_id INTEGER NOT NULL UNIQUE REFERENCES submissions(id),
            selfcheck_id INTEGER NOT NULL REFERENCES selfchecks(id),
            institution_id INTEGER NOT NULL REFERENCES institutions(id),
            reason TEXT NOT NULL,
            sent_by INTEGER NOT NULL,     -- the regulator's Telegram id
            sent_by_label TEXT NOT NULL,  -- the regulator's name (or scope) as the staff were told it
            sent_at TEXT NOT NULL         -- UTC ISO 8601
        );
        CREATE INDEX send_backs_selfcheck ON send_backs(selfcheck_id, id);
        -- whether a self-check was signed again after a send-back (storage.sendbacks.WAITING)
        CREATE INDEX submissions_selfcheck ON submissions(selfcheck_id, id);
        """
    )


@migrations()
def m018_inspection_samples(db: sqlite_utils.Database) -> None:
    # The "双随机、一公开" inspection sample (bot/core/sampling.py, storage/samples.py): a draw
    # with what repeats it (seed, quotas, the pool's size and fingerprint), its picks, and
    # the result of each inspection as recorded.
    db.executescript(
        """
        CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            campaign_id TEXT NOT NULL,
            scope TEXT NOT NULL,          -- the scope drawn from (JSON, bot.core.scope.Scope)
            seed TEXT NOT NULL,
            quotas TEXT NOT NULL,         -- JSON [[field or "other", number], ...] in the order drawn
            pool_size INTEGER NOT NULL,
            pool_sha256 TEXT NOT NULL,    -- of the pool's USCCs, sorted, one per line
            drawn_by TEXT NOT NULL,       -- "regulator:<telegram id>" or "cli"
            drawn_at TEXT NOT NULL
        );
        CREATE INDEX samples_campaign ON samples(campaign_id, id);
        CREATE TABLE sample_picks (
            sample_id INTEGER NOT NULL REFERENCES samples(id),
            position INTEGER NOT NULL,
            institution_id INTEGER NOT NULL REFERENCES institutions(id),
            quota TEXT NOT NULL,          -- the field (or "other") it was drawn for
            result TEXT CHECK (result IN ('no_problem', 'rectify', 'case', 'not_operating')),
            inspected_on TEXT,            -- ISO date
            findings TEXT,
            recorded_by TEXT,
            recorded_at TEXT,
            PRIMARY KEY (sample_id, institution_id),
            UNIQUE (sample_id, position)
        );
        """
    )


@migrations()
def m019_web_people_by_email(db: sqlite_utils.Database) -> None:
    # A web person who lost their sign-in link asks for a new one by typing their e-mail
    # address on a public page (bot/services/signin_links.py): found by it without a scan.
    # The address is ASCII (bot/web/views.py checks it), so SQLite's lower() folds it whole.
    db.executescript("CREATE INDEX users_web_email ON users(lower(email)) WHERE channel = 'web';")


@migrations()
def m020_evidence_removed(db: sqlite_utils.Database) -> None:
    # Staff remove an evidence file sent by mistake (bot/conversation/evidence_screens.py):
    # the row moves here with who removed it and when, so every query of ``evidence`` (counts,
    # upload limits) stays as it is and the record of what was sent is kept. The bytes of a
    # file uploaded on the web are deleted with it: a file sent by mistake may be personal.
    db.executescript(
        """
        CREATE TABLE evidence_removed (
            id INTEGER PRIMARY KEY,           -- the id it had in evidence
            selfcheck_id INTEGER NOT NULL REFERENCES selfchecks(id),
            item_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            file_id TEXT NOT NULL,
            file_unique_id TEXT NOT NULL,
            file_name TEXT,
            mime_type TEXT,
            file_size INTEGER,
            uploaded_by INTEGER NOT NULL,
            uploaded_at TEXT NOT NULL,
            removed_by INTEGER NOT NULL,
            removed_at TEXT NOT NULL
        );
        CREATE INDEX evidence_removed_item ON evidence_removed(selfcheck_id, item_id);
        """
    )
