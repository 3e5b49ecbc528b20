"""Webhook mode: Telegram POSTs updates to an aiohttp server, behind your HTTPS reverse proxy.

Everything but the transport is shared with polling (``build_app``). The server:

* ``POST {ZICHA_WEBHOOK_PATH}``: updates, through aiogram's ``SimpleRequestHandler``, which
  answers 401 and processes nothing unless the ``X-Telegram-Bot-Api-Secret-Token`` header
  equals the secret given to ``setWebhook``. The update is handled before the response
  (``handle_in_background=False``): Telegram counts it delivered only once it is stored,
  and resends it otherwise; an update whose write the database refused is answered 503
  (resent later), one that cannot be read is logged and answered 200 (never resent).
* ``GET /health``: JSON of the health checks (the database must take a write), 200 when
  healthy, 503 when not.

At start: getMe, listen, then ``setWebhook(url, secret_token, allowed_updates)``; at
SIGTERM/SIGINT: ``deleteWebhook`` (Telegram keeps new updates until the next start),
stop listening, finish the requests and updates in hand, stop services, then close the
session (no update in hand can still be using it).

ZICHA_WEBHOOK_SECRET unset: a random secret is made at each start. It need not be
persisted, since every start registers the secret it uses with setWebhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import signal
from collections.abc import Callable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.ops.failures import StartupError, connect
from bot.ops.health import live_health
from bot.ops.lifecycle import DRAIN_TIMEOUT, Heartbeat, UpdateOutcome, freeze_startup_heap, stop_services
from bot.telegram.app import App, build_bot
from bot.telegram.session import parse_update

log = logging.getLogger("zicha.webhook")

HEALTH_PATH = "/health"


def webhook_secret(app: App) -> str:
    configured = app.settings.zicha_webhook_secret
    return configured.get_secret_value() if configured is not None else secrets.token_urlsafe(32)


RETRY_AFTER_SECONDS = 5
"""``Retry-After`` of a 503 answer (a write failed, or the server is stopping)."""


class UpdateRequestHandler(SimpleRequestHandler):
    """aiogram's handler, with three changes:

    * an update aiogram's models cannot read is logged (id and type, never its content) and
      answered 200, so Telegram stops resending it instead of retrying it for a day;
    * an update whose write the database refused (read-only, full, locked) is answered 503,
      so Telegram sends it again later, instead of 200 and lost;
    * requests are counted: shutdown waits for those in hand (``drain``) before the
      dispatcher stops, and the bot session is closed only after the server stopped
      (by ``run_webhook``), not by this handler's shutdown hook.
    """

    def __init__(self, dispatcher: Dispatcher, bot: Bot, **kwargs: Any) -> None:
        super().__init__(dispatcher, bot, **kwargs)
        self.in_flight = 0
        self.stopping = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def close(self) -> None:
        """Nothing: ``run_webhook`` closes the session once no request can still use it."""

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        """The secret header compared as bytes: aiogram compares the strings, and
        ``compare_digest`` raises on a non-ASCII one (a 500 and a traceback in the log for
        anyone who sends ``é``); the header is read as UTF-8 with surrogate escapes."""
        if not self.secret_token:
            return True
        sent = telegram_secret_token.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(sent, self.secret_token.encode("utf-8"))

    async def _handle_request(self, bot: Bot, request: web.Request) -> web.Response:
        if self.stopping:
            # On a connection kept alive after shutdown began: Telegram keeps it for the next start.
            return web.Response(status=503, text="stopping", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.in_flight += 1
        self._idle.clear()
        try:
            try:
                raw = await request.json(loads=bot.session.json_loads)
            except ValueError:
                log.warning("webhook request skipped: its body is not JSON", extra={"event": "update_skipped"})
                return web.json_response({})
            update = parse_update(raw, bot)
            if update is None:
                return web.json_response({})  # logged by parse_update; answered so it is not resent
            outcome = UpdateOutcome()
            result: Any = await self.dispatcher.feed_webhook_update(bot, update, update_outcome=outcome, **self.data)
            if outcome.storage_failed:
                log.warning(
                    "update %s not stored (%s): Telegram will send it again",
                    update.update_id, type(outcome.error).__name__,
                    extra={"event": "update_retry", "update_id": update.update_id, "outcome": "retry"},
                )  # fmt: skip
                return web.Response(status=503, text="not stored", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            return web.Response(body=self._build_response_writer(bot=bot, result=result))
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    async def drain(self, *_: Any) -> None:
        """aiohttp shutdown hook: take no new request; wait (up to ``DRAIN_TIMEOUT``) for those in hand."""
        self.stopping = True
        if self.in_flight == 0:
            return
        log.info("shutdown: waiting for %d webhook request(s) in hand", self.in_flight, extra={"event": "drain"})
        try:
            await asyncio.wait_for(self._idle.wait(), DRAIN_TIMEOUT)
        except TimeoutError:
            log.warning("shutdown: %d webhook request(s) still running after %.0f s", self.in_flight, DRAIN_TIMEOUT)


def build_web_app(app: App, bot: Bot, secret: str) -> web.Application:
    web_app = web.Application()
    handler = UpdateRequestHandler(app.dispatcher, bot, secret_token=secret, handle_in_background=False)
    # Shutdown hooks run in order: first the requests in hand finish (the site already takes no
    # new connection), then the dispatcher's shutdown handlers (its updates in hand, the
    # scheduler, the outbox). The session stays open until run_webhook closes it at the end.
    web_app.on_shutdown.append(handler.drain)
    setup_application(web_app, app.dispatcher, bot=bot)
    handler.register(web_app, path=app.settings.webhook_path)

    async def health(request: web.Request) -> web.Response:
        report = live_health(app)
        return web.json_response(report.as_json(), status=200 if report.healthy else 503)

    web_app.router.add_get(HEALTH_PATH, health)
    return web_app


async def run_webhook(
    app: App, *, stop: asyncio.Event | None = None, on_ready: Callable[[], None] | None = None
) -> None:
    """Serve webhook updates until SIGTERM or SIGINT (or ``stop`` is set, when given: then no
    signal handlers are installed). Raises ``StartupError`` (one sentence) when the token,
    the Bot API, the port or the webhook URL is wrong."""
    settings = app.settings
    url = settings.require_webhook_url()
    host, port, path = settings.zicha_webhook_host, settings.zicha_webhook_port, settings.webhook_path
    secret = webhook_secret(app)
    bot = build_bot(settings)
    handle_signals = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        me = await connect(bot, settings.telegram_api_url)
        freeze_startup_heap()  # built and connected: out of the collector's walks for good
        runner = web.AppRunner(
            build_web_app(app, bot, secret), access_log=None, handle_signals=False, shutdown_timeout=DRAIN_TIMEOUT + 5
        )
        await runner.setup()  # runs the dispatcher's startup handlers
        heartbeat = Heartbeat(app.db, app, "webhook", settings.zicha_heartbeat_seconds)
        try:
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as exc:
                raise StartupError(
                    f"Cannot listen on {host}:{port} ({exc.strerror or exc}): stop what uses the port or set "
                    "ZICHA_WEBHOOK_HOST and ZICHA_WEBHOOK_PORT."
                ) from None
            try:
                await bot.set_webhook(
                    url,
                    secret_token=secret,
                    allowed_updates=app.dispatcher.resolve_used_update_types(),
                    drop_pending_updates=False,
                )
            except TelegramAPIError as exc:
                raise StartupError(
                    f"Telegram refused the webhook URL {url} ({exc.message}): check ZICHA_WEBHOOK_URL "
                    "(Telegram needs https on port 443, 80, 88 or 8443)."
                ) from None
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, stop.set)
            heartbeat.start()
            log.info(
                "Zicha is running as @%s (webhook %s, listening on %s:%d%s)", me.username, url, host, port, path,
                extra={"event": "start", "mode": "webhook"},
            )  # fmt: skip
            if on_ready is not None:
                on_ready()
            await stop.wait()
            log.info("stopping: removing the webhook", extra={"event": "stopping", "mode": "webhook"})
            with contextlib.suppress(TelegramAPIError):
                await bot.delete_webhook(drop_pending_updates=False)
        finally:
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            await runner.cleanup()  # stop listening, finish updates in hand, dispatcher shutdown
            await stop_services(app)
            await heartbeat.stop()
            log.info("Zicha stopped", extra={"event": "stop", "mode": "webhook"})
    finally:
        # Last: the server has stopped and every request in hand has finished with it.
        await bot.session.close()
        log.info("stopping: Bot API session closed", extra={"event": "stop", "mode": "webhook"})
