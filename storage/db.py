"""Opening the database: one SQLite file, WAL mode, schema migrated at start."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import weakref
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from storage import migrations
from storage.files import private_file


class DatabaseError(RuntimeError):
    """The database file cannot be used; the message says what to fix."""


def utcnow() -> str:
    """Timestamps are stored as ISO 8601 in UTC; they are shown in ZICHA_TIMEZONE."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


DURABILITY_MODES = {"full": "FULL", "normal": "NORMAL"}
"""ZICHA_DURABILITY -> PRAGMA synchronous. In WAL mode, FULL syncs the WAL at every COMMIT,
so an answer acknowledged to the user survives a power loss or an OS crash; NORMAL syncs
only at checkpoints, so such a crash can lose the last transactions (an application
crash or kill loses nothing either way)."""


def open_db(
    path: str | os.PathLike[str] = "zicha.db", *, migrate: bool = True, durability: str = "full"
) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database at ``path``.

    ``durability`` is ``"full"`` (the default) or ``"normal"``: see ``DURABILITY_MODES``.
    ``":memory:"`` gives a private in-memory database, handy for tests.
    """
    if durability not in DURABILITY_MODES:
        raise ValueError(f"durability must be one of {', '.join(DURABILITY_MODES)}, got {durability!r}")
    if str(path) != ":memory:":
        parent = Path(path).expanduser().resolve().parent
        if not parent.is_dir():
            raise DatabaseError(f"The folder for the database does not exist: {parent} (set ZICHA_DB to a writable path)")
        # 0600 whatever the umask; SQLite gives -wal and -shm the same mode. OSError: a folder
        # we may not write to, which sqlite3 below reports in its own words.
        with contextlib.suppress(OSError):
            private_file(path)
    try:
        # check_same_thread=False: the console chat and benchmarks hand the connection
        # between the event loop thread and worker threads, never concurrently.
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
        db = sqlite_utils.Database(conn)
        if str(path) != ":memory:":
            db.enable_wal()
        db.execute(f"PRAGMA synchronous={DURABILITY_MODES[durability]}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=10000")
        if migrate:
            migrations.apply(db)
        if str(path) != ":memory:":
            probe_writable(db)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(explain_database_error(path, exc)) from exc
    return db


_WRITES: weakref.WeakKeyDictionary[sqlite_utils.Database, object] = weakref.WeakKeyDictionary()


def current_write(db: sqlite_utils.Database) -> object | None:
    """A token of the write transaction ``transaction`` has open on ``db`` (None when
    none is open): what was read under one token cannot have been changed by anyone else
    while that same token is current (the transaction holds SQLite's write lock)."""
    token = _WRITES.get(db)
    return token if token is not None and db.conn.in_transaction else None


class transaction:  # named as a function: ``with transaction(db):``
    """One transaction: BEGIN ... COMMIT (ROLLBACK on an exception), or, inside one already
    open, simply part of it (no SAVEPOINT: two statements fewer; an exception rolls the
    whole outer transaction back). A button press is one of these: its answer, history,
    counters and conversation state commit together.

    A class rather than a generator context manager: a press enters three of these (the
    engine's, its step's, the answer's), and a generator costs several times as much."""

    __slots__ = ("db", "owner")

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.owner = False  # this block began the transaction (or took over a handed one)

    def __enter__(self) -> sqlite_utils.Database:
        db = self.db
        if db.conn.in_transaction:
            if _HANDED.pop(db, None) is None:
                return db  # part of the one open
            # begun for this block by ``begin_handed`` (a press's reads at the start of its
            # update): this block owns it from here on and commits it, as if it had begun it
        else:
            _HANDED.pop(db, None)  # one ended behind our back (a direct COMMIT): nothing to adopt
            # IMMEDIATE: the write lock from the start, so a read inside cannot be overtaken by
            # another process's write before ours (which would fail with SQLITE_BUSY_SNAPSHOT
            # whatever the busy timeout); it waits for the lock as long as the busy timeout.
            db.execute("BEGIN IMMEDIATE")
            _WRITES[db] = object()
        self.owner = True
        return db

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if not self.owner:
            return
        db = self.db
        try:
            if kind is None:
                try:
                    db.execute("COMMIT")
                except BaseException:
                    if db.conn.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            elif db.conn.in_transaction:
                db.execute("ROLLBACK")
        finally:
            _WRITES.pop(db, None)


_HANDED: weakref.WeakKeyDictionary[sqlite_utils.Database, object] = weakref.WeakKeyDictionary()


def begin_handed(db: sqlite_utils.Database) -> object | None:
    """Begin, now, the write transaction the next ``transaction`` block on ``db`` will own
    (commit or roll back) as if it had begun it, and return its token; None (nothing begun)
    inside a transaction already. A button press's first read (who is pressing, their
    conversation and the self-check the button names: ``storage.regulators.who_is``) is
    then made inside the press's transaction, so it is the read the press's write relies on
    and no second read is needed after BEGIN. The caller must not wait on the network
    before that block runs, and ends the transaction with ``end_handed`` if no block took it."""
    if db.conn.in_transaction:
        return None
    db.execute("BEGIN IMMEDIATE")
    token = _WRITES[db] = _HANDED[db] = object()
    return token


def release_handed(db: sqlite_utils.Database) -> None:
    """Commit a transaction ``begin_handed`` began that no block took over, if there is one:
    what a press's handler calls before it waits on the network, so that no transaction stays
    open across an await (other updates on the connection would join it)."""
    end_handed(db, _HANDED.get(db))


def end_handed(db: sqlite_utils.Database, token: object | None, *, failed: bool = False) -> None:
    """End the transaction ``begin_handed`` returned ``token`` for, if no ``transaction``
    block took it over: COMMIT (what was done in it: reads, and writes that joined it), or
    ROLLBACK when ``failed``. Nothing to do if a block took it (it ended it) or for None."""
    if token is None or _HANDED.get(db) is not token:
        return
    del _HANDED[db]
    try:
        if db.conn.in_transaction:
            db.execute("ROLLBACK" if failed else "COMMIT")
    finally:
        if _WRITES.get(db) is token:
            del _WRITES[db]


def probe_writable(db: sqlite_utils.Database) -> None:
    """Raise ``sqlite3.OperationalError`` when the database cannot be written now (read-only
    file or mount, ``query_only``): a write that is rolled back. (A read-only file opens and
    reads fine; only writes fail.) Does nothing inside a transaction."""
    if db.conn.in_transaction:
        return
    version = db.execute("PRAGMA user_version").fetchone()[0]
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(f"PRAGMA user_version = {int(version)}")
    finally:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")


def is_storage_failure(exc: BaseException | None) -> bool:
    """Did the database refuse work for a reason outside the update itself (read-only file,
    full disk, lock timeout, I/O error, damage)? Then trying the same update later may
    succeed. Follows the exception's cause and context."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sqlite3.DatabaseError):
            code = getattr(exc, "sqlite_errorcode", None)
            if code is not None:
                return code & 0xFF in _TRANSIENT_CODES
            return isinstance(exc, sqlite3.OperationalError)
        exc = exc.__cause__ or exc.__context__
    return False


_TRANSIENT_CODES = frozenset({5, 6, 7, 8, 10, 11, 13, 14, 15, 26})
"""SQLite's primary result codes for a database that refuses work whatever the SQL: BUSY,
LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB (not a bug such
as SQLITE_ERROR "no such column", which trying again would not mend)."""


def explain_database_error(path: str | os.PathLike[str], exc: sqlite3.Error) -> str:
    """One sentence saying what is wrong with the database file and what to do about it."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return (
            f"Cannot use the database file {path}: it is read-only; let the user running Zicha write to it and "
            f"to its folder (SQLite also writes {Path(path).name}-wal and {Path(path).name}-shm next to it)."
        )
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text or "malformed" in text:
        return (
            f"Cannot use the database file {path}: it is damaged or is not a SQLite database; restore your latest "
            f"backup with `zicha restore BACKUP` (or move the file away to start empty)."
        )
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return f"Cannot use the database file {path}: it cannot be opened; check that ZICHA_DB names a file in a folder Zicha may write to."
    return f"Cannot use the database file {path}: {exc}"


@contextlib.contextmanager
def read_snapshot(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Several reads that see one state of the database (a report's figures and the
    institutions it names): a deferred transaction, which in WAL mode blocks no writer and
    takes no lock until its first read. Inside a transaction already: part of it. It ends
    with COMMIT, not ROLLBACK: a database in memory is shared by the bot and a digest
    thread (tests, demos), and a press written meanwhile on that connection must stay."""
    if db.conn.in_transaction:
        yield db
        return
    db.execute("BEGIN")
    try:
        yield db
    finally:
        if db.conn.in_transaction:
            db.execute("COMMIT")
