"""Delivering the outbox (storage/outbox.py) within Telegram's limits.

One ``OutboxSender`` per process sends the rows that are due:

* pacing: at most ``rate`` messages per second over all chats, and one message per
  ``chat_interval`` seconds to any one chat, with a margin, measured by a sliding-window log of
  actual sends shared with the bot's interactive replies, which go first (bot/ratelimit.py);
* 429 ``retry_after``: every send pauses for that long (the row goes back to the queue; a
  flood wait is not an attempt);
* 5xx and network errors: retried with exponential backoff, up to ``max_attempts``;
* 403: the chat is marked unreachable and the row 'blocked', never retried;
* 400 and other permanent errors: 'failed' with Telegram's description;
* quiet hours: bulk rows (``quiet=1``) wait until they end.

A row is committed as 'sending' before its request and as 'sent' right after, so a crash
loses nothing and re-sends at most the ``concurrency`` rows in flight (one by default).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import FSInputFile, InlineKeyboardMarkup

from bot.core.schedule import QuietHours
from bot.ratelimit import SendLimiter, Ticket, bulk_send, shared_limiter
from storage import outbox as store

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
BatchDone = Callable[[dict[str, Any], dict[str, int]], Awaitable[None] | None]


@dataclass(frozen=True)
class OutboxLimits:
    rate: float = 30.0
    chat_interval: float = 1.0
    concurrency: int = 1
    max_attempts: int = 5
    backoff: float = 2.0


class OutboxSender:
    def __init__(
        self,
        bot: Bot,
        db: sqlite_utils.Database,
        *,
        limits: OutboxLimits = OutboxLimits(),
        quiet: QuietHours | None = None,
        clock: Clock | None = None,
        on_batch_done: BatchDone | None = None,
        idle_poll: float = 1.0,
        limiter: SendLimiter | None = None,
        mailer: Any = None,
    ) -> None:
        self.bot = bot
        # E-mail (issue 11): rows of channel 'email' go through ``mailer`` (bot/mail.py), paced
        # by their own limiter; without a mailer they wait, without a bot Telegram rows wait.
        self.mailer = mailer
        self.channels = tuple(c for c, on in (("telegram", bot is not None), ("email", mailer is not None)) if on)
        self.email_limiter = SendLimiter(mailer.rate, 0.0) if mailer is not None else None
        self.db = db
        self.limits = limits
        self.quiet = quiet
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.on_batch_done = on_batch_done
        self.idle_poll = idle_poll
        # The bot's own limiter when it has one (bot.telegram.app.build_bot installs it), so that
        # replies and the outbox share one budget; else one of the outbox's own.
        self.limiter = limiter or shared_limiter(bot) or SendLimiter(limits.rate, limits.chat_interval)
        self._wake = asyncio.Event()
        self._stopping = False
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self.sent = 0

    # --- control ---------------------------------------------------------------------

    def wake(self) -> None:
        """Producers in this process call this after enqueueing, so nothing waits for a poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Send until ``stop()``; rows left 'sending' by a crash are sent again first."""
        recovered = store.recover(self.db)
        if recovered:
            log.warning("outbox: %d message(s) were in flight at the last stop; sending them again", recovered)
        while not self._stopping:
            try:
                worked = await self._pass()
                await self._report_batches()
            except Exception:  # noqa: BLE001 - the sender must outlive any one bad row or a locked database
                log.exception("outbox: pass failed; retrying shortly")
                worked = False
            if not worked:
                await self._idle()
        await self._finish_in_flight()

    async def drain(self, *, batch_ids: set[int] | None = None, timeout: float | None = None) -> None:
        """Send until nothing is pending (or, with ``batch_ids``, until those batches are final);
        for the command line. Rows in backoff are waited for."""
        # `zicha run` may be sending at the same time: take over only rows it cannot still be sending.
        store.recover(self.db, older_than=dt.timedelta(minutes=5))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout is not None else None
        while True:
            worked = await self._pass()
            await self._finish_in_flight()
            await self._report_batches()
            if self._drained(batch_ids):
                return
            if deadline is not None and loop.time() > deadline:
                raise TimeoutError("the outbox did not drain in time")
            if not worked:
                await self._idle()

    def _drained(self, batch_ids: set[int] | None) -> bool:
        if batch_ids is None:
            counts = store.backlog(self.db)
            return counts["pending"] + counts["sending"] == 0
        for batch_id in batch_ids:
            counts = store.batch_counts(self.db, batch_id)
            if counts["pending"] + counts["sending"]:
                return False
        return True

    # --- the loop --------------------------------------------------------------------

    async def _idle(self) -> None:
        now = self.clock()
        quiet = self.quiet is not None and self.quiet.active(now)
        wait = self.idle_poll
        upcoming = store.next_due_at(self.db, quiet=quiet)
        if upcoming is not None:
            wait = min(wait, max((upcoming - now).total_seconds(), 0.0))
        if self.limiter.paused:
            wait = max(wait, 0.05)
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(wait, 0.01))
        except TimeoutError:
            pass

    async def _pass(self) -> bool:
        """Send one round of due rows; False if there was nothing to do."""
        now = self.clock()
        quiet = self.quiet is not None and self.quiet.active(now)
        rows = store.due(self.db, now, limit=max(100, self.limits.concurrency * 4), quiet=quiet, channels=self.channels)
        worked = False
        for row in rows:
            if self._stopping:
                break
            if row.get("channel") == "email":
                worked = await self._claim_email(row) or worked
                continue
            if not self.limiter.chat_ready(row["chat_id"]):
                continue  # another message to this chat went out less than chat_interval ago
            if store.is_unreachable(self.db, row["chat_id"]):
                if store.mark_sending(self.db, row["id"]):
                    store.mark_final(self.db, row["id"], "blocked", "unreachable: the chat answered 403 before")
                worked = True
                continue
            await self._slots.acquire()
            ticket: Ticket | None = None
            try:
                ticket = await self.limiter.acquire(row["chat_id"], interactive=False)
                if self._stopping or not store.mark_sending(self.db, row["id"]):
                    self.limiter.release(ticket, sent=False)
                    self._slots.release()
                    continue
            except BaseException:
                if ticket is not None:
                    self.limiter.release(ticket, sent=False)
                self._slots.release()
                raise
            worked = True
            task = asyncio.create_task(self._deliver(row, ticket))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return worked

    async def _finish_in_flight(self) -> None:
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _deliver(self, row: dict[str, Any], ticket: Ticket) -> None:
        try:
            try:
                with bulk_send():
                    message_id = await self._send(row)
            finally:
                self.limiter.release(ticket)
        except TelegramRetryAfter as exc:
            log.warning("outbox: flood wait %ss (row %s)", exc.retry_after, row["id"])
            self.limiter.pause(float(exc.retry_after))
            store.mark_retry(self.db, row["id"], self.clock(), f"429 retry after {exc.retry_after}", count_attempt=False)
        except TelegramForbiddenError as exc:
            store.mark_unreachable(self.db, row["chat_id"], exc.message)
            store.mark_final(self.db, row["id"], "blocked", f"403 {exc.message}")
        except (TelegramBadRequest, TelegramNotFound, TelegramEntityTooLarge) as exc:
            store.mark_final(self.db, row["id"], "failed", f"{type(exc).__name__}: {exc.message}")
        except (TelegramServerError, TelegramNetworkError, TelegramAPIError) as exc:
            self._retry_or_fail(row, f"{type(exc).__name__}: {exc.message}")
        except (OSError, ValueError) as exc:  # a document that is gone, a corrupt markup
            store.mark_final(self.db, row["id"], "failed", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - anything else: retry, never leave the row 'sending'
            log.exception("outbox: unexpected error sending row %s", row["id"])
            self._retry_or_fail(row, f"{type(exc).__name__}: {exc}")
        else:
            store.mark_sent(self.db, row["id"], message_id)
            self.sent += 1
        finally:
            self._slots.release()

    async def _claim_email(self, row: dict[str, Any]) -> bool:
        assert self.email_limiter is not None
        await self._slots.acquire()
        try:
            # E-mail is paced by its own rate only; the slot counts from the moment it is claimed.
            ticket = await self.email_limiter.acquire(None, interactive=False)
            claimed = not self._stopping and store.mark_sending(self.db, row["id"])
            self.email_limiter.release(ticket, sent=claimed)
            if not claimed:
                self._slots.release()
                return False
        except BaseException:
            self._slots.release()
            raise
        task = asyncio.create_task(self._deliver_email(row))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return True

    async def _deliver_email(self, row: dict[str, Any]) -> None:
        from bot.mail import PermanentMailError

        try:
            message = self.mailer.compose(self.db, row)
            await self.mailer.send(message)
        except PermanentMailError as exc:
            store.mark_final(self.db, row["id"], "failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - relay down, timeouts: retry with backoff
            log.warning("outbox: e-mail row %s not sent: %s", row["id"], exc)
            self._retry_or_fail(row, f"{type(exc).__name__}: {exc}")
        else:
            store.mark_sent(self.db, row["id"], None)
            self.sent += 1
        finally:
            self._slots.release()

    def _retry_or_fail(self, row: dict[str, Any], error: str) -> None:
        attempts = int(row["attempts"]) + 1  # mark_sending counted this one
        if attempts >= self.limits.max_attempts:
            store.mark_final(self.db, row["id"], "failed", f"after {attempts} attempts: {error}")
            return
        delay = self.limits.backoff * (2 ** (attempts - 1))
        store.mark_retry(self.db, row["id"], self.clock() + dt.timedelta(seconds=delay), error)

    async def _send(self, row: dict[str, Any]) -> int | None:
        markup = InlineKeyboardMarkup.model_validate(json.loads(row["reply_markup"])) if row["reply_markup"] else None
        parse_mode = row["parse_mode"]
        if row["document_path"]:
            sent = await self.bot.send_document(
                row["chat_id"],
                FSInputFile(row["document_path"], filename=row["document_name"]),
                caption=row["text"] or None,
                parse_mode=parse_mode,
                reply_markup=markup,
            )
        else:
            sent = await self.bot.send_message(row["chat_id"], row["text"], parse_mode=parse_mode, reply_markup=markup)
        return sent.message_id

    async def _report_batches(self) -> None:
        if self.on_batch_done is None:
            return
        for batch in store.batches_to_report(self.db):
            result = self.on_batch_done(batch, store.batch_counts(self.db, batch["id"]))
            if asyncio.iscoroutine(result):
                await result
            store.mark_reported(self.db, batch["id"])
            self._wake.set()


def limits_from_settings(settings: Any) -> OutboxLimits:
    return OutboxLimits(
        rate=settings.zicha_outbox_rate,
        chat_interval=settings.zicha_outbox_chat_interval,
        concurrency=settings.zicha_outbox_concurrency,
        max_attempts=settings.zicha_outbox_max_attempts,
        backoff=settings.zicha_outbox_backoff,
    )
