"""What every running bot does around its updates, whether polling or webhook.

* ``UpdateTracker``: the outermost update middleware. It logs one line per update (update
  id, type, institution id, duration, outcome: never the user's text) and counts updates in
  flight, so that shutdown can wait for the update in hand instead of cutting it off.
* ``drain_updates``: the first shutdown handler of the dispatcher: waits for those updates
  before the scheduler, the outbox and the database are stopped.
* ``StorageRetry``: in polling mode, an update whose write the database refused is fed
  again later, as Telegram resends a webhook update answered 503 (see its docstring).
* ``Heartbeat``: a row renewed every few seconds, read by ``zicha status``.
* ``stop_services``: stops the scheduler and the outbox sender, if this build has them and
  their own shutdown handlers did not already.
* ``start_checkpointer`` / ``stop_checkpointer``: WAL checkpoints in a background thread while
  the bot runs, and everything checkpointed at shutdown (storage/checkpoint.py).
* ``freeze_startup_heap``: what start-up made is kept out of the garbage collector's walks,
  so that no full collection holds the event loop for a fifth of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update

from storage import heartbeat
from storage.checkpoint import WalCheckpointer
from storage.db import is_storage_failure, utcnow

log = logging.getLogger("zicha.updates")
ops_log = logging.getLogger("zicha.ops")

DRAIN_TIMEOUT = 25.0
"""Seconds shutdown waits for updates in hand; below systemd's and Docker's stop timeouts."""


@dataclass
class UpdateOutcome:
    """Passed as ``update_outcome`` to ``feed_update`` by a caller that needs to know how the
    update ended even though the error handler took its exception."""

    error: Exception | None = None

    @property
    def storage_failed(self) -> bool:
        """The database refused a write (read-only, full, locked): the update may be retried."""
        return is_storage_failure(self.error)


def freeze_startup_heap() -> int:
    """Keep every object made so far out of the garbage collector's walks (``gc.freeze``,
    after a collection, so that no garbage is kept with them); returns their number. Called
    once the bot is built and has reached the Bot API, before it serves.

    A started bot holds some 240,000 objects made once and kept for good: modules, the
    checklist, the catalogs, aiogram's and pydantic's models of the Bot API. The collector
    walks all of them in each full collection, which the interpreter starts by itself as
    objects accumulate, and the event loop waits meanwhile: 110-220 ms on the 2-vCPU VMs,
    1-2 ms with them frozen (``bench/gc_pause.py``). Reference counting still frees any of
    them that is let go; what updates make later is collected as before."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    ops_log.info(
        "Start-up objects kept out of garbage collection: %d", frozen, extra={"event": "gc_freeze", "objects": frozen}
    )
    return frozen


class UpdateTracker(BaseMiddleware):
    def __init__(self) -> None:
        self.in_flight = 0
        self.last_update_id: int | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self.in_flight += 1
        self._idle.clear()
        if isinstance(event, Update):
            self.last_update_id = max(self.last_update_id or 0, event.update_id)
        started = time.monotonic()
        outcome = "error"
        retry = data.get("storage_retry")
        try:
            result = await handler(event, data)
            outcome = "unhandled" if result is UNHANDLED else "handled"
            if isinstance(retry, StorageRetry) and isinstance(event, Update):
                retry.succeeded(event.update_id)
            return result
        except Exception as exc:
            # Seen here, inside aiogram's error middleware, before the error handler answers the
            # user: the webhook server reads it to answer Telegram non-2xx when a write failed;
            # polling feeds the update again later.
            record = data.get("update_outcome")
            if isinstance(record, UpdateOutcome):
                record.error = exc
            elif (
                isinstance(retry, StorageRetry)
                and isinstance(event, Update)
                and is_storage_failure(exc)
                and retry.schedule(data["dispatcher"], data["bot"], event)
            ):
                outcome = "retry"
            raise
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()
            institution = data.get("institution")
            update_id = event.update_id if isinstance(event, Update) else None
            log.info(
                "update",
                extra={
                    "event": "update",
                    "update_id": update_id,
                    "update_type": event.event_type if isinstance(event, Update) else type(event).__name__,
                    "institution_id": getattr(institution, "id", None),
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "outcome": outcome,
                },
            )

    async def drain(self, timeout: float = DRAIN_TIMEOUT) -> bool:
        """Wait until no update is in flight; False if ``timeout`` passed first."""
        if self.in_flight == 0:
            return True
        ops_log.info("shutdown: waiting for %d update(s) in hand", self.in_flight, extra={"event": "drain"})
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            ops_log.warning("shutdown: %d update(s) still running after %.0f s", self.in_flight, timeout)
            return False
        return True


class StorageRetry:
    """Polling's counterpart of the webhook's 503: an update whose write the database refused
    (read-only disk, full disk, lock timeout) is not lost but fed to the dispatcher again,
    after ``delays`` (1 s, 2 s, 5 s, then every 30 s, for about ten minutes), until it is
    stored; the user is told once, by the error handler, that something went wrong.

    Why not leave it unconfirmed with Telegram instead: getUpdates has one offset for all
    chats, so holding it back at the failed update would either stop every other user's
    updates or have them all delivered again (and handled twice). Kept in memory, the update
    is retried on its own; what is still waiting when the process stops is logged as not
    stored (as polling loses any update in hand at a crash). Webhook mode does not use this:
    there Telegram resends the update itself.
    """

    DELAYS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, *([30.0] * 19))
    MAX_WAITING = 1000

    def __init__(self, delays: tuple[float, ...] | None = None) -> None:
        self.delays = delays if delays is not None else self.DELAYS
        self._attempts: dict[int, int] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}

    @property
    def waiting(self) -> int:
        return len(self._tasks)

    def schedule(self, dispatcher: Dispatcher, bot: Bot, update: Update) -> bool:
        """Feed ``update`` again later; False when it has had all its attempts (or too many
        updates wait already): then it is logged as lost."""
        update_id = update.update_id
        attempt = self._attempts.get(update_id, 0)
        if attempt >= len(self.delays) or (update_id not in self._attempts and len(self._attempts) >= self.MAX_WAITING):
            self._attempts.pop(update_id, None)
            log.error("update %s not stored after %d attempt(s): given up", update_id, attempt + 1,
                      extra={"event": "update_lost", "update_id": update_id, "outcome": "lost"})  # fmt: skip
            return False
        self._attempts[update_id] = attempt + 1
        log.warning("update %s not stored: trying again in %.0f s", update_id, self.delays[attempt],
                    extra={"event": "update_retry", "update_id": update_id, "outcome": "retry"})  # fmt: skip
        self._tasks[update_id] = asyncio.create_task(self._again(dispatcher, bot, update, self.delays[attempt]))
        return True

    async def _again(self, dispatcher: Dispatcher, bot: Bot, update: Update, delay: float) -> None:
        await asyncio.sleep(delay)
        self._tasks.pop(update.update_id, None)
        with contextlib.suppress(Exception):  # a failure is the tracker's and the error handler's
            await dispatcher.feed_update(bot, update)

    def succeeded(self, update_id: int) -> None:
        if self._attempts.pop(update_id, None) is not None:
            log.info("update %s stored on a later attempt", update_id,
                     extra={"event": "update_stored", "update_id": update_id, "outcome": "stored"})  # fmt: skip

    async def stop(self) -> None:
        """At shutdown: what still waits is not stored; say so, once per update."""
        for update_id, task in list(self._tasks.items()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log.error("update %s not stored: the bot stopped before the database took it", update_id,
                      extra={"event": "update_lost", "update_id": update_id, "outcome": "lost"})  # fmt: skip
        self._tasks.clear()
        self._attempts.clear()


def enable_storage_retry(dp: Dispatcher, delays: tuple[float, ...] | None = None) -> StorageRetry:
    """For polling: updates whose write failed are fed again (``StorageRetry``)."""
    retry = StorageRetry(delays)
    dp["storage_retry"] = retry  # stopped by drain_updates, before anything else stops
    return retry


async def drain_updates(update_tracker: UpdateTracker, storage_retry: StorageRetry | None = None) -> None:
    if storage_retry is not None:  # no update fed again once shutdown began
        await storage_retry.stop()
    await update_tracker.drain()


def install(dp: Dispatcher) -> UpdateTracker:
    """Put the tracker outermost and its drain first among the shutdown handlers.

    Call before any other outer update middleware and shutdown handler is registered.
    """
    tracker = UpdateTracker()
    dp["update_tracker"] = tracker
    dp.update.outer_middleware(tracker)
    dp.shutdown.register(drain_updates)
    return tracker


async def start_checkpointer(checkpointer: WalCheckpointer) -> None:
    checkpointer.start()


async def stop_checkpointer(checkpointer: WalCheckpointer) -> None:
    # On the loop, not in a thread: the serving connection is used from the loop only.
    checkpointer.stop()


async def stop_report_worker() -> None:
    """Stop the report worker process (bot.reports.jobs), if one was started."""
    from bot.reports import jobs

    await asyncio.to_thread(jobs.shutdown)


class OffsetWatch(BaseRequestMiddleware):
    """Session middleware: remembers the highest getUpdates offset the bot has sent."""

    def __init__(self) -> None:
        self.sent_offset = 0

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Response[TelegramType]:
        if isinstance(method, GetUpdates) and method.offset:
            self.sent_offset = max(self.sent_offset, method.offset)
        return await make_request(bot, method)


CONFIRM_TIMEOUT = 3
"""Seconds the final offset confirmation may take; shutdown must not hang on Telegram."""


async def confirm_handled_updates(bot: Bot, dp: Dispatcher, watch: OffsetWatch | None = None) -> None:
    """After polling stopped: tell Telegram the updates handled so far are done.

    Polling confirms an update only with the next getUpdates; stopping before that call
    would have the last updates sent again after a restart, and handled twice. Usually
    that call was already made (``watch``); then nothing is sent.
    """
    tracker: UpdateTracker | None = dp.get("update_tracker")
    if tracker is None:
        return
    # Updates the session skipped as unreadable (bot.telegram.session) are done too.
    last = max(tracker.last_update_id or 0, getattr(bot.session, "skipped_up_to", 0))
    if not last:
        return
    if watch is not None and watch.sent_offset > last:
        return
    with contextlib.suppress(TelegramAPIError, TimeoutError):
        await asyncio.wait_for(
            bot.get_updates(offset=last + 1, limit=1, timeout=0, request_timeout=CONFIRM_TIMEOUT),
            CONFIRM_TIMEOUT + 1,
        )


def scheduler_state(app: Any) -> str:
    """'running', 'stopped' or 'not configured' for ``app.scheduler`` (an APScheduler or None)."""
    scheduler = getattr(app, "scheduler", None)
    if scheduler is None:
        return "not configured"
    return "running" if getattr(scheduler, "running", False) else "stopped"


async def stop_services(app: Any) -> None:
    """Stop the scheduler and the outbox sender at a safe point, if still running.

    Both are optional: builds without them (or whose own shutdown handlers already
    stopped them) pass through.
    """
    scheduler = getattr(app, "scheduler", None)
    if scheduler is not None and getattr(scheduler, "running", False):
        with contextlib.suppress(Exception):
            # wait=True: a job already running completes; no new one starts.
            scheduler.shutdown(wait=True)
            ops_log.info("scheduler stopped", extra={"event": "scheduler_stopped"})
    for name in ("background", "outbox", "sender", "outbox_sender"):
        service = getattr(app, name, None)
        stop = getattr(service, "stop", None) or getattr(service, "close", None)
        if stop is None:
            continue
        with contextlib.suppress(Exception):
            result = stop()
            if inspect.isawaitable(result):
                await result
            ops_log.info("%s stopped", name, extra={"event": "outbox_stopped"})


class Heartbeat:
    """Renews the ``heartbeat`` row of this process every ``interval`` seconds."""

    def __init__(self, db: sqlite_utils.Database, app: Any, mode: str, interval: float) -> None:
        self.db = db
        self.app = app
        self.mode = mode
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def beat(self) -> None:
        heartbeat.beat(self.db, pid=os.getpid(), mode=self.mode, now=utcnow(), scheduler=scheduler_state(self.app))

    def start(self) -> None:
        self.beat()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - a missed beat shows in `zicha status`; keep serving
                ops_log.warning("heartbeat not written: %s", type(exc).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            heartbeat.mark_stopped(self.db, pid=os.getpid(), now=utcnow(), scheduler=scheduler_state(self.app))
