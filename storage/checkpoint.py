"""WAL checkpoints in a background thread, out of the path of a button press.

By default SQLite checkpoints inside a COMMIT once the WAL passes 1,000 pages: every
hundred-odd answer steps one press paid a copy of the WAL into the database file and its
fsync (measured up to 12 ms, on the event loop). The running bot turns that off on its
serving connection (``PRAGMA wal_autocheckpoint=0``) and ``WalCheckpointer`` checkpoints
from a thread with its own connection instead:

* every ``interval`` seconds a ``PASSIVE`` checkpoint: it copies what it can without
  waiting for, or blocking, any reader or writer (the sqlite3 module releases the GIL
  while SQLite works, so the event loop keeps running). Once everything is copied, the
  next COMMIT starts the WAL over from its beginning, and ``journal_size_limit`` truncates
  the file back.
* Under sustained load a write lands during every background checkpoint, so the WAL is
  never completely copied and never starts over. When the WAL file still exceeds
  ``size_limit`` after a pass, one more ``PASSIVE`` checkpoint runs on the serving
  connection itself, on the event loop between two updates: no write can land during it,
  so the next COMMIT starts the WAL over. It only copies what the thread has not (a few
  milliseconds at most). ``RESTART``/``TRUNCATE`` checkpoints are never used while the
  bot runs: from another connection they reset the WAL under a writer that has already
  read, which then fails with "database is locked" despite its busy timeout.
* A reader that holds an old snapshot (an export on its own connection, a backup) keeps
  the frames after it from being copied until it finishes; nothing waits for it.
* ``stop()`` (at shutdown) restores SQLite's automatic checkpoint on the serving
  connection and checkpoints everything into the database file (``TRUNCATE``).

Crash safety does not depend on any of this: a checkpoint only copies committed frames
and SQLite keeps them in the WAL until the database file is synced (the checkpoint
connection uses the same ``synchronous`` level as the serving one, never OFF); a crash
mid-checkpoint is recovered from the WAL at the next open.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass

import sqlite_utils

log = logging.getLogger("zicha.ops")

DEFAULT_INTERVAL = 1.0
"""Seconds between two passive checkpoints."""
DEFAULT_SIZE_LIMIT = 16 * 1024 * 1024
"""WAL bytes above which the serving connection catches up (and the journal_size_limit)."""
SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


@dataclass
class CheckpointResult:
    mode: str
    busy: bool
    wal_frames: int
    checkpointed: int
    seconds: float


def database_file(db: sqlite_utils.Database) -> str | None:
    """The file of the main database, or None for an in-memory one."""
    for _seq, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return file or None
    return None


def synchronous_level(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA synchronous").fetchone()[0])


class WalCheckpointer:
    """Checkpoints the WAL of the serving connection ``db`` from a background thread."""

    def __init__(
        self, db: sqlite_utils.Database, *, interval: float = DEFAULT_INTERVAL, size_limit: int = DEFAULT_SIZE_LIMIT
    ) -> None:
        self.db = db
        self.interval = interval
        self.size_limit = size_limit
        self.runs = 0  # background checkpoints done
        self.catch_ups = 0  # checkpoints on the serving connection, when the WAL grew past size_limit
        self.last: CheckpointResult | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._catch_up_pending = False
        self._path: str | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Take the checkpoints over from SQLite; False (and nothing done) if ``db`` is not a WAL file."""
        if self.running:
            return True
        path = database_file(self.db)
        if path is None or str(self.db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            return False
        self._path = path
        level = synchronous_level(self.db)
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None  # no event loop: background checkpoints only
        conn = sqlite3.connect(path, check_same_thread=False, timeout=1, isolation_level=None)
        # The checkpoint's fsyncs follow this connection's level: never below NORMAL.
        conn.execute(f"PRAGMA synchronous={max(level, 1)}")
        self._conn = conn
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self.db.execute(f"PRAGMA journal_size_limit={int(self.size_limit)}")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()
        log.info(
            "database: WAL, synchronous=%s, checkpoints in the background every %g s",
            SYNCHRONOUS_NAMES.get(level, level), self.interval,
            extra={"event": "checkpointer_started", "synchronous": SYNCHRONOUS_NAMES.get(level, level)},
        )  # fmt: skip
        return True

    def wal_size(self) -> int:
        try:
            return os.stat(f"{self._path}-wal").st_size
        except (OSError, TypeError):
            return 0

    def checkpoint(self, mode: str = "PASSIVE") -> CheckpointResult | None:
        """One checkpoint on the checkpointer's own connection (callable from any thread)."""
        with self._lock:
            if self._conn is None:
                return None
            started = time.perf_counter()
            busy, frames, done = self._conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            result = CheckpointResult(mode, bool(busy), frames, done, time.perf_counter() - started)
            self.runs += 1
            self.last = result
            return result

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.checkpoint("PASSIVE")
            except sqlite3.Error as exc:  # a failed checkpoint is retried at the next pass
                log.warning("WAL checkpoint failed: %s", exc, extra={"event": "checkpoint_failed"})
            if self.wal_size() > self.size_limit and self._loop is not None and not self._catch_up_pending:
                self._catch_up_pending = True
                try:
                    self._loop.call_soon_threadsafe(self._catch_up)
                except RuntimeError:  # the loop is closed
                    self._catch_up_pending = False

    def _catch_up(self) -> None:
        """On the event loop, between two updates: copy the rest of the WAL so it can start over."""
        self._catch_up_pending = False
        if self._path is None or self.db.conn.in_transaction:
            return
        try:
            self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.catch_ups += 1
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed: %s", exc, extra={"event": "checkpoint_failed"})

    def stop(self) -> None:
        """Stop the thread, give checkpoints back to SQLite, and checkpoint everything."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self._path is None:
            return
        self._path = None
        try:
            self.db.execute("PRAGMA wal_autocheckpoint=1000")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # e.g. a reader still open: SQLite checkpoints again at close
            log.warning("final WAL checkpoint failed: %s", exc, extra={"event": "checkpoint_failed"})
