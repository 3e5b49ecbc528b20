"""The outbox: one persistent queue for every bulk message (reminders, broadcasts, digests).

Producers only call ``enqueue`` (inside their own ``db.atomic()`` if they like: it nests);
the sender in ``bot/delivery/outbox.py`` delivers rows within Telegram's limits. Public API::

    enqueue(db, *, kind, chat_id, text, parse_mode="HTML", reply_markup=None,
            document=None, filename=None, batch_id=None, dedup_key=None,
            quiet=True, not_before=None) -> int | None
    new_batch(db, *, kind, created_by=None, scope=None, text="", report_chat_id=None) -> int
    batch_counts(db, batch_id) -> dict[str, int]      # {"pending", "sending", "sent", "blocked", "failed", "total"}
    backlog(db) -> dict[str, int]                      # the same counts over the whole outbox, for a health check
    is_unreachable(db, chat_id) -> bool
    unreachable_chats(db) -> list[dict]                # chat_id, marked_at, error: who answered 403

Rules a producer can rely on:

* ``text`` is sent with ``parse_mode`` ("HTML" by default: escape user text with
  ``html.escape``; ``None`` sends it as plain text). With ``document`` (a file path) the row
  is sent with sendDocument and ``text`` is its caption (≤ 1,024 characters).
* ``reply_markup`` is an aiogram ``InlineKeyboardMarkup`` or its dict form.
* ``dedup_key`` makes enqueueing idempotent: a second row with the same key is not added
  and ``enqueue`` returns None (e.g. ``f"digest:{regulator}:{date}"``).
* ``quiet=True`` (bulk messages) holds the row during the quiet hours of the schedule;
  ``quiet=False`` for a message somebody is waiting for (a delivery report).
* Chats marked unreachable (403) are not skipped by ``enqueue``; the sender fails such a
  row as 'blocked' at once without calling Telegram. Producers that want to leave them out
  of a recipient count use ``is_unreachable``/``unreachable_chats``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import sqlite_utils

from storage.db import utcnow

STATUSES = ("pending", "sending", "sent", "blocked", "failed")
FINAL = ("sent", "blocked", "failed")


# "As soon as possible": earlier than any clock, injected or not, so a new row is due at once.
ASAP = "1970-01-01T00:00:00.000000+00:00"


def _iso(moment: dt.datetime | None) -> str:
    if moment is None:
        return ASAP
    if moment.tzinfo is None:
        raise ValueError("not_before must be timezone-aware")
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def _markup_json(reply_markup: Any) -> str | None:
    if reply_markup is None:
        return None
    if hasattr(reply_markup, "model_dump"):
        reply_markup = reply_markup.model_dump(mode="json", exclude_none=True)
    return json.dumps(reply_markup, ensure_ascii=False)


def enqueue(
    db: sqlite_utils.Database,
    *,
    kind: str,
    chat_id: int,
    text: str,
    parse_mode: str | None = "HTML",
    reply_markup: Any = None,
    document: str | Path | None = None,
    filename: str | None = None,
    batch_id: int | None = None,
    dedup_key: str | None = None,
    quiet: bool = True,
    not_before: dt.datetime | None = None,
) -> int | None:
    """Queue one message; returns its row id, or None if ``dedup_key`` was queued before.

    A web person (a negative id, storage/web.py) has no Telegram chat: their message goes
    out by e-mail instead, as plain text (see ``enqueue_email``)."""
    if not kind:
        raise ValueError("kind is required")
    if chat_id < 0 and document is None:
        return _enqueue_for_web_person(
            db, kind=kind, user_id=chat_id, text=text, parse_mode=parse_mode, batch_id=batch_id,
            dedup_key=dedup_key, quiet=quiet, not_before=not_before,
        )
    if document is None and not text.strip():
        raise ValueError("an outbox message needs a text or a document")
    now = utcnow()
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO outbox (kind, chat_id, text, parse_mode, reply_markup, document_path, document_name, "
            "batch_id, dedup_key, quiet, not_before, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO NOTHING",
            [
                kind,
                chat_id,
                text,
                parse_mode,
                _markup_json(reply_markup),
                str(document) if document is not None else None,
                filename or (Path(document).name if document is not None else None),
                batch_id,
                dedup_key,
                1 if quiet else 0,
                _iso(not_before),
                now,
                now,
            ],
        )
    return cursor.lastrowid if cursor.rowcount == 1 else None


def plain_text(text: str, parse_mode: str | None) -> str:
    """A Telegram HTML message as plain text for an e-mail."""
    if parse_mode != "HTML":
        return text
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _enqueue_for_web_person(
    db: sqlite_utils.Database, *, kind: str, user_id: int, text: str, parse_mode: str | None, **rest: Any
) -> int | None:
    row = next(db.query("SELECT email FROM users WHERE telegram_id = ?", [user_id]), None)
    return enqueue_email(
        db, kind=kind, user_id=user_id, email=row["email"] if row else None,
        subject=None, text=plain_text(text, parse_mode), with_link=True, **rest,
    )


def enqueue_email(
    db: sqlite_utils.Database,
    *,
    kind: str,
    user_id: int,
    email: str | None,
    subject: str | None,
    text: str,
    with_link: bool = False,
    batch_id: int | None = None,
    dedup_key: str | None = None,
    quiet: bool = False,
    not_before: dt.datetime | None = None,
) -> int | None:
    """Queue an e-mail (plain text) to a web person. ``with_link``: the sender adds a fresh
    personal sign-in link to the message (reminders, broadcasts). A person without an
    address gets a row all the same, failed at once, so delivery reports count them."""
    now = utcnow()
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO outbox (kind, chat_id, text, parse_mode, reply_markup, batch_id, dedup_key, quiet, "
            "not_before, created_at, updated_at, channel, email_to, subject, status, error) "
            "VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, 'email', ?, ?, ?, ?) ON CONFLICT(dedup_key) DO NOTHING",
            [
                kind, user_id, text, "link" if with_link else None, batch_id, dedup_key, 1 if quiet else 0,
                _iso(not_before), now, now, email, subject,
                "pending" if email else "failed", None if email else "no e-mail address for this web person",
            ],
        )
    return cursor.lastrowid if cursor.rowcount == 1 else None


def new_batch(
    db: sqlite_utils.Database,
    *,
    kind: str,
    created_by: int | None = None,
    scope: str | None = None,
    text: str = "",
    report_chat_id: int | None = None,
) -> int:
    """A batch groups rows for a delivery report (sent to ``report_chat_id`` when all are final)."""
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO outbox_batches (kind, created_by, scope, text, report_chat_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [kind, created_by, scope, text, report_chat_id, utcnow()],
        )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts[s] for s in STATUSES)
    return counts


def batch_counts(db: sqlite_utils.Database, batch_id: int) -> dict[str, int]:
    return _counts(list(db.query("SELECT status, count(*) AS n FROM outbox WHERE batch_id = ? GROUP BY status", [batch_id])))


def backlog(db: sqlite_utils.Database) -> dict[str, int]:
    """Rows by status over the whole outbox; a health check watches "pending" and "sending"."""
    return _counts(list(db.query("SELECT status, count(*) AS n FROM outbox GROUP BY status")))


def get_batch(db: sqlite_utils.Database, batch_id: int) -> dict[str, Any] | None:
    return next(db.query("SELECT * FROM outbox_batches WHERE id = ?", [batch_id]), None)


# --- unreachable chats (403) ----------------------------------------------------------


def mark_unreachable(db: sqlite_utils.Database, chat_id: int, error: str) -> None:
    with db.atomic():
        db.execute(
            "INSERT INTO unreachable (chat_id, marked_at, error) VALUES (?, ?, ?) "
            "ON CONFLICT(chat_id) DO UPDATE SET error = excluded.error",
            [chat_id, utcnow(), error],
        )


def clear_unreachable(db: sqlite_utils.Database, chat_id: int) -> bool:
    with db.atomic():
        cursor = db.execute("DELETE FROM unreachable WHERE chat_id = ?", [chat_id])
    return cursor.rowcount == 1


def is_unreachable(db: sqlite_utils.Database, chat_id: int) -> bool:
    return next(db.query("SELECT 1 AS x FROM unreachable WHERE chat_id = ?", [chat_id]), None) is not None


# Who each kind of message is for: the access that, taken away (a member removed, a
# regulator removed or given another scope), fails what is still queued for them.
STAFF_KINDS = ("reminder", "broadcast", "signin_link", "send_back")
REGULATOR_KINDS = ("digest", "report")
MEMBER_REMOVED = "recipient removed from the institution"
"""The error of a staff message failed because its recipient was removed (delivery reports count it failed)."""


def fail_queued(db: sqlite_utils.Database, chat_id: int, kinds: tuple[str, ...], why: str) -> int:
    """Fail the messages of these kinds still queued for a chat (call inside the transaction
    that takes the access away). 'sending' too: one in flight ends as its request does (sent
    or failed, written over this), one a crash left there is not sent again at start."""
    marks = ", ".join("?" for _ in kinds)
    cursor = db.execute(
        f"UPDATE outbox SET status = 'failed', error = ?, updated_at = ? "
        f"WHERE chat_id = ? AND status IN ('pending', 'sending') AND kind IN ({marks})",
        [why, utcnow(), chat_id, *kinds],
    )
    return cursor.rowcount


def fail_former_members(db: sqlite_utils.Database, batch_id: int) -> int:
    """Fail the pending rows of a batch whose recipient is no member now: one removed after
    the audience was read, before the batch's transaction (call inside it, at its end: a
    removal then either came before, and is caught here, or waits, and fails them itself)."""
    cursor = db.execute(
        "UPDATE outbox SET status = 'failed', error = ?, updated_at = ? "
        "WHERE batch_id = ? AND status = 'pending' AND chat_id NOT IN (SELECT telegram_id FROM members)",
        [MEMBER_REMOVED, utcnow(), batch_id],
    )
    return cursor.rowcount


def unreachable_chats(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT chat_id, marked_at, error FROM unreachable ORDER BY marked_at, chat_id"))


# --- used by the sender (bot/delivery/outbox.py) -----------------------------------------------


def recover(db: sqlite_utils.Database, *, older_than: dt.timedelta | None = None) -> int:
    """At start: rows left 'sending' by a crash go back to 'pending' (each may be sent twice).
    With ``older_than``, only rows claimed at least that long ago (a live sender finishes a
    request within its timeout), so a second process does not take over another's rows."""
    cutoff = dt.datetime.now(dt.timezone.utc) - (older_than or dt.timedelta(0))
    with db.atomic():
        cursor = db.execute(
            "UPDATE outbox SET status = 'pending', updated_at = ? WHERE status = 'sending' AND updated_at <= ?",
            [utcnow(), cutoff.isoformat(timespec="microseconds")],
        )
    return cursor.rowcount


def due(
    db: sqlite_utils.Database, now: dt.datetime, limit: int, *, quiet: bool, channels: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """Pending rows whose time has come, oldest first; during quiet hours only quiet=0 rows;
    with ``channels``, only rows of those channels ('telegram', 'email')."""
    extra = " AND quiet = 0" if quiet else ""
    params: list[Any] = [_iso(now)]
    if channels is not None:
        extra += f" AND channel IN ({', '.join('?' for _ in channels)})"
        params.extend(channels)
    return list(
        db.query(
            f"SELECT * FROM outbox WHERE status = 'pending' AND not_before <= ?{extra} ORDER BY not_before, id LIMIT ?",
            [*params, limit],
        )
    )


def next_due_at(db: sqlite_utils.Database, *, quiet: bool) -> dt.datetime | None:
    extra = " AND quiet = 0" if quiet else ""
    row = next(db.query(f"SELECT min(not_before) AS t FROM outbox WHERE status = 'pending'{extra}"), None)
    return dt.datetime.fromisoformat(row["t"]) if row and row["t"] else None


def mark_sending(db: sqlite_utils.Database, row_id: int) -> bool:
    """Claim a row before its request; committed, so a crash leaves it 'sending'."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ? "
            "WHERE id = ? AND status = 'pending'",
            [utcnow(), row_id],
        )
    return cursor.rowcount == 1


def mark_sent(db: sqlite_utils.Database, row_id: int, message_id: int | None) -> None:
    now = utcnow()
    with db.atomic():
        db.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, message_id = ?, error = NULL, updated_at = ? WHERE id = ?",
            [now, message_id, now, row_id],
        )


def mark_final(db: sqlite_utils.Database, row_id: int, status: str, error: str) -> None:
    assert status in ("blocked", "failed")
    with db.atomic():
        db.execute("UPDATE outbox SET status = ?, error = ?, updated_at = ? WHERE id = ?", [status, error, utcnow(), row_id])


def mark_retry(
    db: sqlite_utils.Database, row_id: int, not_before: dt.datetime, error: str, *, count_attempt: bool = True
) -> None:
    """Back to 'pending' until ``not_before``; a flood wait does not count as an attempt."""
    with db.atomic():
        db.execute(
            "UPDATE outbox SET status = 'pending', not_before = ?, error = ?, updated_at = ?, "
            "attempts = attempts - ? WHERE id = ?",
            [_iso(not_before), error, utcnow(), 0 if count_attempt else 1, row_id],
        )


def batches_to_report(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Batches with a report recipient, not yet reported, whose rows are all final."""
    return list(
        db.query(
            """SELECT b.* FROM outbox_batches b
               WHERE b.report_chat_id IS NOT NULL AND b.reported_at IS NULL
                 AND EXISTS (SELECT 1 FROM outbox o WHERE o.batch_id = b.id)
                 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.batch_id = b.id AND o.status IN ('pending', 'sending'))
               ORDER BY b.id""",
        )
    )


def mark_reported(db: sqlite_utils.Database, batch_id: int) -> bool:
    with db.atomic():
        cursor = db.execute(
            "UPDATE outbox_batches SET reported_at = ? WHERE id = ? AND reported_at IS NULL", [utcnow(), batch_id]
        )
    return cursor.rowcount == 1
