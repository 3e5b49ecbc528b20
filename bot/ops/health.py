"""Health: is the database reachable, the scheduler running, the outbox draining?

The same checks back the webhook server's ``GET /health`` (inside the bot) and
``zicha status`` (another process, which also reads the bot's heartbeat row). A check is
``ok``, ``fail``, ``degraded`` (works with less: no CJK font), ``warn`` (works, but the
operator should act soon: little free disk, a large database) or ``not configured`` (a
part this build does not have yet); only ``fail`` makes the whole unhealthy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.ops.fonts import fonts_ok
from bot.ops.lifecycle import scheduler_state
from storage.db import probe_writable
from storage.heartbeat import bot_heartbeat
from storage.maintenance import quick_check, table_count

MB = 1024 * 1024
OK, FAIL, DEGRADED, NOT_CONFIGURED = "ok", "fail", "degraded", "not configured"
WARN = "warn"  # works now, but needs the operator soon (disk filling up, a large database)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str = ""


@dataclass
class Health:
    checks: list[Check] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def warnings(self) -> list[str]:
        return [c.name for c in self.checks if c.status == WARN]

    def as_json(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "warnings": self.warnings,
            "checks": {c.name: {"status": c.status, "detail": c.detail} for c in self.checks},
        }

    def lines(self) -> list[str]:
        width = max((len(c.name) for c in self.checks), default=0)
        return [f"{c.name:<{width}}  {c.status}" + (f": {c.detail}" if c.detail else "") for c in self.checks]


def check_database(db: sqlite_utils.Database, *, thorough: bool = False, writable: bool = False) -> Check:
    """Readable (and, ``thorough``, undamaged); with ``writable``, a write is tried and rolled
    back: a database that reads fine but refuses writes loses every answer."""
    try:
        tables = table_count(db)
        if thorough:
            result = quick_check(db)
            if result != "ok":
                return Check("database", FAIL, f"quick_check: {result} (restore from a backup with zicha restore)")
    except sqlite3.Error as exc:
        return Check("database", FAIL, f"{exc} (see the README: Backups, to restore)")
    if writable:
        try:
            probe_writable(db)
        except sqlite3.Error as exc:
            return Check("database", FAIL, f"cannot write: {exc} (check the file, its folder and the disk)")
    return Check("database", OK, f"{tables} tables" + (", writable" if writable else ""))


def check_scheduler_live(app: Any) -> Check:
    state = scheduler_state(app)
    if state == "not configured":
        return Check("scheduler", NOT_CONFIGURED)
    return Check("scheduler", OK if state == "running" else FAIL, state)


def check_outbox(db: sqlite_utils.Database) -> Check:
    """Backlog counts from ``storage.outbox.backlog`` (imported lazily: older builds have none)."""
    try:
        outbox = importlib.import_module("storage.outbox")
    except ModuleNotFoundError:
        return Check("outbox", NOT_CONFIGURED)
    backlog = getattr(outbox, "backlog", None)
    if backlog is None:
        return Check("outbox", NOT_CONFIGURED)
    try:
        counts = backlog(db)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return Check("outbox", NOT_CONFIGURED)
        return Check("outbox", FAIL, str(exc))
    if isinstance(counts, dict):
        shown = ", ".join(f"{counts[k]} {k}" for k in ("pending", "sending", "failed", "blocked") if k in counts)
        return Check("outbox", OK, shown or str(counts))
    return Check("outbox", OK, f"{counts} waiting")


def check_fonts() -> Check:
    ok, detail = fonts_ok()
    return Check("cjk font", OK if ok else DEGRADED, detail)


def check_heartbeat(db: sqlite_utils.Database, interval: int, now: dt.datetime | None = None) -> list[Check]:
    """The bot's own report, read from another process: is it running, is its scheduler."""
    row = bot_heartbeat(db)
    if row is None:
        return [Check("bot", FAIL, "has never run against this database (start it with zicha run)")]
    pid, mode, beat_at, stopped_at, scheduler = row.pid, row.mode, row.beat_at, row.stopped_at, row.scheduler
    now = now or dt.datetime.now(dt.timezone.utc)
    if stopped_at is not None:
        return [Check("bot", FAIL, f"stopped at {stopped_at[:19]}Z (start it with zicha run)")]
    age = (now - dt.datetime.fromisoformat(beat_at)).total_seconds()
    if age > 3 * interval:
        return [Check("bot", FAIL, f"no heartbeat for {age:.0f} s: process {pid} crashed or hung (see its log)")]
    bot = Check("bot", OK, f"{mode}, pid {pid}, last heartbeat {age:.0f} s ago")
    if scheduler == NOT_CONFIGURED:
        return [bot, Check("scheduler", NOT_CONFIGURED)]
    return [bot, Check("scheduler", OK if scheduler == "running" else FAIL, scheduler)]


@dataclass(frozen=True)
class StorageLimits:
    """When ``zicha status`` warns or fails about space (ZICHA_DISK_WARN_MB, ZICHA_DISK_FAIL_MB, ZICHA_DB_WARN_MB)."""

    db_path: Path
    disk_warn_mb: float = 1024.0
    disk_fail_mb: float = 100.0
    db_warn_mb: float = 2048.0

    @classmethod
    def from_settings(cls, settings: Any) -> StorageLimits:
        return cls(settings.zicha_db, settings.zicha_disk_warn_mb, settings.zicha_disk_fail_mb, settings.zicha_db_warn_mb)


def _mb(size: float) -> str:
    return f"{size / MB:,.0f} MB" if size >= 10 * MB else f"{size / MB:,.1f} MB"


def check_storage(limits: StorageLimits, disk_usage: Callable[[Path], Any] = shutil.disk_usage) -> list[Check]:
    """Free space on the database's file system, and the database's size (with its WAL):
    a warning before writes start failing, so there is time to make room."""
    folder = limits.db_path.resolve().parent
    try:
        free = disk_usage(folder).free
    except OSError as exc:
        disk = Check("disk", FAIL, f"cannot read the free space of {folder}: {exc}")
    else:
        if free < limits.disk_fail_mb * MB:
            disk = Check("disk", FAIL, f"{_mb(free)} free in {folder}, below ZICHA_DISK_FAIL_MB ({limits.disk_fail_mb:g} MB): writes will fail soon; free space now (old backups, logs) or move the database")
        elif free < limits.disk_warn_mb * MB:
            disk = Check("disk", WARN, f"{_mb(free)} free in {folder}, below ZICHA_DISK_WARN_MB ({limits.disk_warn_mb:g} MB): make room before it fills up")
        else:
            disk = Check("disk", OK, f"{_mb(free)} free in {folder}")
    size = 0
    for path in (limits.db_path, limits.db_path.with_name(limits.db_path.name + "-wal")):
        with contextlib.suppress(OSError):
            size += path.stat().st_size
    if size > limits.db_warn_mb * MB:
        database = Check("db size", WARN, f"{_mb(size)}, above ZICHA_DB_WARN_MB ({limits.db_warn_mb:g} MB): check the upload limits (ZICHA_UPLOAD_*) and the space for backups")
    else:
        database = Check("db size", OK, _mb(size))
    return [disk, database]


def live_health(app: Any) -> Health:
    """Inside the running bot (webhook ``/health``)."""
    return Health([check_database(app.db, writable=True), check_scheduler_live(app), check_outbox(app.db)])


def offline_health(db: sqlite_utils.Database, heartbeat_interval: int, storage: StorageLimits | None = None) -> Health:
    """From the command line (``zicha status``)."""
    database = check_database(db, thorough=True)
    space = check_storage(storage) if storage is not None else []
    if database.status == FAIL:
        return Health([database, *space])
    return Health([database, *check_heartbeat(db, heartbeat_interval), check_outbox(db), check_fonts(), *space])
