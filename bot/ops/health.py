"""Health: is the database reachable, the scheduler running, the outbox draining?

The same checks back the webhook server's ``GET /health`` (inside the bot) and
``zicha status`` (another process, which also reads the bot's heartbeat row). A check is
``ok``, ``fail``, ``degraded`` (works with less: no CJK font) or ``not configured`` (a
part this build does not have yet); only ``fail`` makes the whole unhealthy.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from bot.ops.fonts import fonts_ok
from bot.ops.lifecycle import scheduler_state

OK, FAIL, DEGRADED, NOT_CONFIGURED = "ok", "fail", "degraded", "not configured"


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

    def as_json(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "checks": {c.name: {"status": c.status, "detail": c.detail} for c in self.checks},
        }

    def lines(self) -> list[str]:
        width = max((len(c.name) for c in self.checks), default=0)
        return [f"{c.name:<{width}}  {c.status}" + (f": {c.detail}" if c.detail else "") for c in self.checks]


def check_database(db: sqlite_utils.Database, *, thorough: bool = False) -> Check:
    try:
        tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if thorough:
            result = db.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                return Check("database", FAIL, f"quick_check: {result} (restore from a backup with zicha restore)")
    except sqlite3.Error as exc:
        return Check("database", FAIL, f"{exc} (see the README: Backups, to restore)")
    return Check("database", OK, f"{tables} tables")


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
    try:
        row = db.execute("SELECT pid, mode, beat_at, stopped_at, scheduler FROM heartbeat WHERE role = 'bot'").fetchone()
    except sqlite3.OperationalError:
        row = None
    if row is None:
        return [Check("bot", FAIL, "has never run against this database (start it with zicha run)")]
    pid, mode, beat_at, stopped_at, scheduler = row
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


def live_health(app: Any) -> Health:
    """Inside the running bot (webhook ``/health``)."""
    return Health([check_database(app.db), check_scheduler_live(app), check_outbox(app.db)])


def offline_health(db: sqlite_utils.Database, heartbeat_interval: int) -> Health:
    """From the command line (``zicha status``)."""
    database = check_database(db, thorough=True)
    if database.status == FAIL:
        return Health([database])
    return Health([database, *check_heartbeat(db, heartbeat_interval), check_outbox(db), check_fonts()])
