"""One limit on everything the bot sends: interactive replies and the outbox together.

Telegram allows a bot about 30 messages a second over all chats and about one a second to one
chat; past that it answers 429 with ``retry_after``. ``SendLimiter`` keeps the bot under both:

* **a sliding-window log of actual sends**: at most ``rate`` messages in any window of
  ``1 s × (1 + margin)``. A send is logged with the time its *answer* arrived, and a request
  still in flight counts as "now", so however the network delays a request, Telegram cannot see
  more than ``rate`` of them in one second (it received each one between our start and our
  answer). A plain token bucket at exactly the rate cannot promise that: timer and network
  jitter put a 31st message into some second;
* **smoothing for bulk sends**: outbox messages are also spaced ``(1 + margin) / rate`` apart
  (a slot missed by less than half an interval through timer jitter keeps the schedule, so the
  next one is not late too), so a backlog goes out as an even stream rather than in bursts;
* **per chat**: a bulk message to a chat waits ``chat_interval × (1 + margin)`` after the answer
  to the previous message to that chat (a reply included);
* **interactive first**: a bulk send waits while any interactive send is waiting, so a user's
  reply takes the next free slot, ahead of a broadcast;
* **a global pause** after a 429, for its ``retry_after``.

``SharedRateLimit`` is the aiogram request middleware (``bot.session.middleware(...)``) that puts
every request of the bot through the limiter. The outbox (bot/outbox.py) takes its slots itself
(it has to pick a row whose chat is ready) and marks its requests with ``bulk_send()``; every
other request is an interactive reply: it takes an interactive slot and, on a 429, waits out
``retry_after`` and tries again (up to ``max_retries`` times, if ``retry_after`` is at most
``max_wait`` seconds), with one warning line and no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType

log = logging.getLogger(__name__)

DEFAULT_MARGIN = 0.01
"""Pace 1 % below the limit: 30 per 1.01 s, and bulk messages 33.7 ms apart at 30/s."""

# Methods that put a message in a chat: what Telegram's per-second limits count.
_COUNTED_PREFIXES = ("send", "copymessage", "forwardmessage")
_NOT_COUNTED = frozenset({"sendchataction"})

_BULK: contextvars.ContextVar[bool] = contextvars.ContextVar("zicha_bulk_send", default=False)


@contextlib.contextmanager
def bulk_send() -> Iterator[None]:
    """Mark the requests made inside as bulk ones whose slot the caller already took."""
    token = _BULK.set(True)
    try:
        yield
    finally:
        _BULK.reset(token)


def counts_against_limit(method: TelegramMethod[Any]) -> bool:
    name = type(method).__name__.lower()
    return name.startswith(_COUNTED_PREFIXES) and name not in _NOT_COUNTED


@dataclass(eq=False)
class Ticket:
    """A slot taken: release it when the request's answer (or error) has arrived."""

    chat_id: int | None
    released: bool = field(default=False)


class SendLimiter:
    """See the module docstring. All times are the event loop's clock."""

    def __init__(self, rate: float = 30.0, chat_interval: float = 1.0, *, margin: float = DEFAULT_MARGIN) -> None:
        self.rate = rate
        self.margin = margin
        self.window = 1.0 * (1 + margin)
        self.capacity = max(1, math.floor(rate))  # messages allowed in one window
        if rate < 1:  # fewer than one a second: one message per 1/rate seconds
            self.window = (1 / rate) * (1 + margin)
        self.interval = (1 + margin) / rate
        self.chat_interval = chat_interval * (1 + margin)
        self._ends: deque[float] = deque()  # answer times of recent sends, oldest first
        self._in_flight = 0
        self._bulk_next = 0.0  # smoothing of bulk sends
        self._paused_until = 0.0
        self._chat_free_at: dict[int, float] = {}
        self._chat_in_flight: dict[int, int] = {}
        self._interactive_waiting = 0
        self._changed = asyncio.Event()

    # --- state ---------------------------------------------------------------------------

    @staticmethod
    def _time() -> float:
        return asyncio.get_running_loop().time()

    def pause(self, seconds: float) -> None:
        """Hold every send for ``seconds`` (after a 429)."""
        self._paused_until = max(self._paused_until, self._time() + seconds)
        self._notify()

    @property
    def paused(self) -> bool:
        return self._paused_until > self._time()

    def chat_ready(self, chat_id: int) -> bool:
        """Whether a bulk message to this chat may go now, as far as the chat is concerned."""
        return not self._chat_in_flight.get(chat_id) and self._chat_free_at.get(chat_id, 0.0) <= self._time()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _window_free_at(self, now: float) -> float | None:
        """When a slot in the sliding window is free (``now`` if one is); None: when a request in
        flight has its answer."""
        while self._ends and self._ends[0] <= now - self.window:
            self._ends.popleft()
        excess = self._in_flight + len(self._ends) - self.capacity + 1
        if excess <= 0:
            return now
        if excess > len(self._ends):
            return None
        return self._ends[excess - 1] + self.window

    def _ready_at(self, chat_id: int | None, interactive: bool, now: float) -> float | None:
        at = self._window_free_at(now)
        if at is None:
            return None
        at = max(at, self._paused_until)
        if not interactive:
            at = max(at, self._bulk_next)
            if chat_id is not None:
                if self._chat_in_flight.get(chat_id):
                    return None
                at = max(at, self._chat_free_at.get(chat_id, 0.0))
        return at

    # --- slots ---------------------------------------------------------------------------

    async def acquire(self, chat_id: int | None, *, interactive: bool) -> Ticket:
        """Wait for a slot; interactive callers go before bulk ones."""
        if interactive:
            self._interactive_waiting += 1
        try:
            while True:
                now = self._time()
                changed = self._changed
                if not interactive and self._interactive_waiting:
                    at: float | None = None  # let the replies go first
                else:
                    at = self._ready_at(chat_id, interactive, now)
                if at is not None and at <= now:
                    break
                timeout = None if at is None else at - now
                try:
                    await asyncio.wait_for(changed.wait(), timeout)
                except TimeoutError:
                    pass
        finally:
            if interactive:
                self._interactive_waiting -= 1
                if not self._interactive_waiting:
                    self._notify()
        self._in_flight += 1
        if not interactive:
            slot = self._bulk_next if self._bulk_next >= now - self.interval / 2 else now
            self._bulk_next = slot + self.interval
        if chat_id is not None:
            self._chat_in_flight[chat_id] = self._chat_in_flight.get(chat_id, 0) + 1
        return Ticket(chat_id)

    def release(self, ticket: Ticket, *, sent: bool = True) -> None:
        """The request's answer arrived (``sent``), or it was never made (``sent=False``)."""
        if ticket.released:
            return
        ticket.released = True
        now = self._time()
        self._in_flight -= 1
        if sent:
            self._ends.append(now)
        chat_id = ticket.chat_id
        if chat_id is not None:
            left = self._chat_in_flight.get(chat_id, 1) - 1
            if left:
                self._chat_in_flight[chat_id] = left
            else:
                self._chat_in_flight.pop(chat_id, None)
            if sent:
                self._chat_free_at[chat_id] = now + self.chat_interval
            if len(self._chat_free_at) > 10_000:  # forget chats whose spacing has long passed
                self._chat_free_at = {c: t for c, t in self._chat_free_at.items() if t > now}
        self._notify()

    @contextlib.asynccontextmanager
    async def slot(self, chat_id: int | None, *, interactive: bool) -> Any:
        ticket = await self.acquire(chat_id, interactive=interactive)
        try:
            yield ticket
        finally:
            self.release(ticket)


def _chat_of(method: TelegramMethod[Any]) -> int | None:
    chat_id = getattr(method, "chat_id", None)
    return chat_id if isinstance(chat_id, int) else None


class SharedRateLimit(BaseRequestMiddleware):
    """Session middleware: interactive requests share ``limiter`` with the outbox and are
    retried after a 429. Register with ``bot.session.middleware(SharedRateLimit(limiter))``."""

    def __init__(self, limiter: SendLimiter, *, max_retries: int = 3, max_wait: float = 30.0) -> None:
        self.limiter = limiter
        self.max_retries = max_retries
        self.max_wait = max_wait

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Response[TelegramType]:
        if isinstance(method, GetUpdates):
            return await make_request(bot, method)
        if _BULK.get():  # the outbox took its slot and handles its own 429s
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                self.limiter.pause(float(exc.retry_after))
                raise
        counted = counts_against_limit(method)
        attempt = 0
        while True:
            try:
                if counted:
                    async with self.limiter.slot(_chat_of(method), interactive=True):
                        return await make_request(bot, method)
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                self.limiter.pause(float(exc.retry_after))
                attempt += 1
                if attempt > self.max_retries or exc.retry_after > self.max_wait:
                    log.warning(
                        "telegram: flood wait %ss on %s; giving up after %d attempt(s)",
                        exc.retry_after, type(method).__name__, attempt,
                    )  # fmt: skip
                    raise
                log.warning(
                    "telegram: flood wait %ss on %s; retrying (%d of %d)",
                    exc.retry_after, type(method).__name__, attempt, self.max_retries,
                )  # fmt: skip
                await asyncio.sleep(float(exc.retry_after))


def shared_limiter(bot: Bot | None) -> SendLimiter | None:
    """The limiter of the bot's ``SharedRateLimit`` middleware, if it has one (an e-mail-only
    sender has no bot)."""
    if bot is None:
        return None
    for middleware in bot.session.middleware:
        if isinstance(middleware, SharedRateLimit):
            return middleware.limiter
    return None


def install(bot: Bot, rate: float, chat_interval: float) -> SendLimiter:
    """Give ``bot`` a shared limiter (once); returns it."""
    limiter = shared_limiter(bot)
    if limiter is None:
        limiter = SendLimiter(rate, chat_interval)
        bot.session.middleware(SharedRateLimit(limiter))
    return limiter
