"""The web chat's aiohttp application: built once, served by ``zicha web`` or beside the bot.

Dependencies hang on the application under ``web.AppKey``s (no globals); templates are
jinja2 with autoescape on, rendered in the visitor's language (the session's choice, else
the browser's Accept-Language, else ZICHA_LOCALE).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import sqlite_utils
from aiogram.utils.i18n import I18n
from aiohttp import web

from bot.config import Settings
from bot.conversation.engine import Conversation
from bot.core.checklist import Checklist
from bot.web import chat, views
from bot.web import security as sec
from bot.web.context import (  # noqa: F401  (re-exported: the pages' shared context)
    CTX,
    HERE,
    STATE,
    RequestState,
    WebContext,
    ensure_session,
    gettext_for,
    render,
    request_locale,
    start_signed_in_session,
    state,
    templates_env,
)
from storage import web as store
from storage.conversations import SQLiteStates

PDF_CHECKS_AT_ONCE = 2  # /verify's signature checks running at once; more wait their turn
LINK_ASKS_PER_ADDRESS = 5  # /link's requests for a new sign-in link, per client address and guess window

log = logging.getLogger("zicha.web")


# --- middlewares -------------------------------------------------------------------------


def _finish(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    for name, value in sec.SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    current = state(request)
    security = request.app[CTX].security
    pending = current.set_cookie
    if pending is not None:
        sec.set_cookie(response, pending[0], security, pending[1])
    elif current.clear_cookie:
        response.del_cookie(sec.COOKIE, path="/")
    if current.new_form_nonce and current.form_nonce is not None and current.session is None:
        sec.set_cookie(response, current.form_nonce, security, security.anonymous_lifetime, name=sec.FORM_COOKIE)
    if current.language is not None:
        sec.set_cookie(response, current.language, security, dt.timedelta(days=365), name=sec.LANG_COOKIE)
    return response


class BodyTooSlow(Exception):
    """The request body did not arrive within ``WebSecurity.body_timeout``."""


@web.middleware
async def headers_middleware(request: web.Request, handler: sec.Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except BodyTooSlow:
        log.warning("web: request body too slow, connection closed: %s %s", request.method, request.path)
        response = render(request, "error.html", status=408, problem="too_slow")
        response.force_close()  # do not wait for the rest of it
    except web.HTTPRequestEntityTooLarge:
        response = render(request, "error.html", status=413, problem="too_large")
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        response = render(request, "error.html", status=exc.status, problem="not_found")
    except web.HTTPException as exc:
        if exc.status < 400:  # a redirect: raised on, with our headers and cookie
            _finish(request, exc)
            raise
        response = render(request, "error.html", status=exc.status, problem="generic")
    except Exception:
        log.exception("web: request failed: %s %s", request.method, request.path)
        response = render(request, "error.html", status=500, problem="server")
    return _finish(request, response)


@web.middleware
async def session_middleware(request: web.Request, handler: sec.Handler) -> web.StreamResponse:
    ctx = request.app[CTX]
    token = request.cookies.get(sec.COOKIE)
    session = store.load_session(ctx.db, token, idle=ctx.security.idle) if token else None
    if token and session is None:
        state(request).clear_cookie = True
    if session is not None and session.user_id is not None:
        from storage.institutions import get_membership

        if get_membership(ctx.db, session.user_id) is None:  # removed: cut at once
            store.end_sessions_of(ctx.db, session.user_id)
            session = None
            state(request).clear_cookie = True
            if not sec.is_public(request.path):
                return render(request, "error.html", status=403, problem="removed")
    state(request).session = session
    if request.method == "POST":
        sent: object = None
        try:
            async with asyncio.timeout(ctx.security.body_timeout):  # a trickled body holds nothing for long
                sent = (await request.post()).get("csrf")
        except TimeoutError:
            raise BodyTooSlow from None
        except web.HTTPException:  # a body over the limit: 413, said by headers_middleware
            raise
        except Exception:  # noqa: BLE001 - whatever aiohttp's parser raises for a body that is not a well-formed form: no token, so refused below
            sent = None
        if session is not None:
            accepted = sec.csrf_ok(session, sent)
        else:  # no session: the signed double-submit token of the form cookie
            accepted = ctx.form_tokens.valid(request.cookies.get(sec.FORM_COOKIE), sent)
            if accepted:
                state(request).form_csrf = str(sent)
        if not accepted:
            return render(request, "error.html", status=403, problem="csrf")
    if not sec.is_public(request.path) and (session is None or session.user_id is None):
        return render(request, "error.html", status=401, problem="signin")
    return await handler(request)


# --- building and serving ----------------------------------------------------------------


def build_web_app(
    settings: Settings,
    db: sqlite_utils.Database,
    checklist: Checklist,
    i18n: I18n,
    *,
    on_enqueue: Any = None,
    clock: Callable[[], dt.datetime] | None = None,
    campaigns: Any = None,
) -> web.Application:
    """``clock``: the conversation engine's (default: now, in the deployment's time zone);
    ``campaigns``: the registry of a deployment that runs several campaigns at once."""
    app = web.Application(
        middlewares=[headers_middleware, session_middleware],
        client_max_size=int(settings.zicha_web_max_body_mb * 1024 * 1024),
    )
    window = settings.zicha_web_guess_window_minutes * 60
    app[CTX] = WebContext(
        settings=settings,
        db=db,
        checklist=checklist,
        i18n=i18n,
        security=sec.WebSecurity(
            secure_cookies=settings.zicha_web_secure_cookies,
            idle=dt.timedelta(minutes=settings.zicha_web_session_idle_minutes),
            lifetime=dt.timedelta(hours=settings.zicha_web_session_max_hours),
            body_timeout=settings.zicha_web_body_timeout_seconds,
        ),
        guesses_by_address=sec.SlidingWindow(settings.zicha_web_guess_limit, window),
        guesses_by_code=sec.SlidingWindow(settings.zicha_web_guess_limit, window),
        pdf_checks=sec.SlidingWindow(settings.zicha_web_pdf_check_limit, window),
        pdf_check_slots=asyncio.Semaphore(PDF_CHECKS_AT_ONCE),
        link_asks=sec.SlidingWindow(LINK_ASKS_PER_ADDRESS, window),
        templates=templates_env(i18n),
        form_tokens=sec.FormTokens(dt.timedelta(hours=1)),
        on_enqueue=on_enqueue,
        conversation=Conversation(
            db=db,
            checklist=checklist,
            settings=settings,
            clock=clock or (lambda: dt.datetime.now(settings.tz)),
            states=SQLiteStates(db),
            catalog=i18n,
            campaigns=campaigns,
        ),
    )
    views.add_routes(app)
    chat.add_routes(app)
    app.cleanup_ctx.append(_purge_sessions)
    app.router.add_static("/static/", HERE / "static", show_index=False, append_version=False)
    return app


PURGE_EVERY = 600.0  # seconds between two sweeps of expired sessions


async def _purge_sessions(app: web.Application) -> Any:
    """Expired sessions are refused when presented; this also deletes those never presented
    again, so the table holds live sessions only."""
    ctx = app[CTX]

    async def loop() -> None:
        while True:
            try:
                removed = store.purge_expired_sessions(ctx.db, idle=ctx.security.idle)
                if removed:
                    log.info("web: %d expired session(s) removed", removed)
            except Exception:
                log.exception("web: purging expired sessions failed")
            await asyncio.sleep(PURGE_EVERY)

    task = asyncio.create_task(loop(), name="web-session-purge")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def start_web(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving ``app`` on the running loop (beside the bot in ``zicha run``); the
    caller awaits ``runner.cleanup()`` on shutdown."""
    # Slow clients: keepalive_timeout also bounds a connection that never completes its
    # request headers (aiohttp arms it when the connection opens); the session middleware
    # bounds the body (ZICHA_WEB_BODY_TIMEOUT_SECONDS); after a refused body, the rest of it
    # is read and dropped (so the client sees the answer) for no longer than the idle timeout.
    idle = app[CTX].settings.zicha_web_idle_timeout_seconds
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle, lingering_time=min(10.0, idle))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("web chat listening on http://%s:%s", host, port, extra={"event": "web_started"})
    return runner


async def serve_forever(app: web.Application, host: str, port: int) -> None:
    """``zicha web``: serve until SIGTERM or Ctrl-C, then finish the requests in hand."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = await start_web(app, host, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        log.info("web chat stopped", extra={"event": "web_stopped"})


def mount_beside_bot(zicha_app: Any) -> web.Application:
    """Serve the web chat in ``zicha run``'s process: started and stopped with the
    dispatcher, on the same database, checklist and translations; what it queues (a
    sign-in e-mail) wakes the running outbox sender."""
    background = getattr(zicha_app, "background", None)
    wake = getattr(background, "wake", None)
    settings = zicha_app.settings
    clock = zicha_app.dispatcher.workflow_data.get("clock")  # the bot's clock: one "now" for both channels
    campaigns = getattr(zicha_app.dispatcher.workflow_data.get("conversation"), "campaigns", None)
    web_app = build_web_app(
        settings, zicha_app.db, zicha_app.checklist, zicha_app.i18n, on_enqueue=wake, clock=clock, campaigns=campaigns
    )
    runners: list[web.AppRunner] = []

    async def on_startup() -> None:
        runners.append(await start_web(web_app, settings.zicha_web_host, settings.zicha_web_port))

    async def on_shutdown() -> None:
        while runners:
            await runners.pop().cleanup()

    zicha_app.dispatcher.startup.register(on_startup)
    zicha_app.dispatcher.shutdown.register(on_shutdown)
    return web_app
