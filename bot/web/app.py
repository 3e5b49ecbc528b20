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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import sqlite_utils
from aiogram.utils.i18n import I18n
from aiohttp import web

from bot.config import Settings
from bot.core.checklist import Checklist
from bot.i18n import normalize_locale
from bot.web import security as sec
from storage import web as store

log = logging.getLogger("zicha.web")
HERE = Path(__file__).parent


@dataclass
class WebContext:
    settings: Settings
    db: sqlite_utils.Database
    checklist: Checklist
    i18n: I18n
    security: sec.WebSecurity
    guesses_by_address: sec.SlidingWindow
    guesses_by_code: sec.SlidingWindow
    templates: jinja2.Environment
    form_tokens: sec.FormTokens
    on_enqueue: Any = None  # called after something was put in the outbox (wakes the sender)


CTX = web.AppKey("zicha_web", WebContext)


@dataclass
class RequestState:
    session: store.Session | None = None
    set_cookie: tuple[str, dt.timedelta] | None = None
    clear_cookie: bool = False
    form_nonce: str | None = None  # the anonymous forms' nonce (from the cookie, or new)
    new_form_nonce: bool = False
    form_csrf: str | None = None  # the signed token a valid anonymous POST carried
    language: str | None = None  # an anonymous visitor's choice, to be put in a cookie


STATE = web.RequestKey("zicha_request", RequestState)


def state(request: web.Request) -> RequestState:
    if STATE not in request:
        request[STATE] = RequestState()
    return request[STATE]


def templates_env(i18n: I18n) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda message: i18n.gettext(message),
        ngettext=lambda singular, plural, n: i18n.gettext(singular, plural, n),
        newstyle=True,
    )
    return env


def request_locale(request: web.Request) -> str:
    ctx = request.app[CTX]
    session: store.Session | None = state(request).session
    if session is not None and session.data.get("lang"):
        return normalize_locale(session.data["lang"], ctx.settings.zicha_locale)
    chosen = state(request).language or request.cookies.get(sec.LANG_COOKIE)
    if session is None and chosen in ("zh_CN", "en"):
        return str(chosen)
    accept = request.headers.get("Accept-Language", "").lower()
    first = accept.split(",")[0].strip()
    if first.startswith("zh"):
        return "zh_CN"
    if first.startswith("en"):
        return "en"
    return ctx.settings.zicha_locale


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    ctx = request.app[CTX]
    locale = request_locale(request)
    session: store.Session | None = state(request).session
    with ctx.i18n.context(), ctx.i18n.use_locale(locale):
        body = ctx.templates.get_template(template).render(
            locale=locale,
            csrf=csrf_token(request),
            signed_in=bool(session is not None and session.user_id is not None),
            here=request.path_qs,
            **context,
        )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def gettext_for(request: web.Request):  # type: ignore[no-untyped-def]
    """A ``_`` bound to the visitor's language, for strings built in Python."""
    ctx = request.app[CTX]
    locale = request_locale(request)

    def _(message: str) -> str:
        with ctx.i18n.context(), ctx.i18n.use_locale(locale):
            return ctx.i18n.gettext(message)

    return _


def csrf_token(request: web.Request) -> str:
    """The token for the forms of this page: the session's, or (no session: nothing stored)
    a signed one for the visitor's form cookie, which is set if it is missing."""
    current = state(request)
    if current.session is not None:
        return current.session.csrf
    if current.form_nonce is None:
        cookie = request.cookies.get(sec.FORM_COOKIE)
        if cookie is not None and sec.FormTokens.well_formed(cookie):
            current.form_nonce = cookie
        else:
            current.form_nonce, current.new_form_nonce = sec.FormTokens.new_nonce(), True
    return request.app[CTX].form_tokens.token(current.form_nonce)


def ensure_session(request: web.Request) -> store.Session:
    """The visitor's session, created (anonymous) if there is none yet: only when a submitted
    form needs one. It takes the token that form carried, so the page's other forms still work."""
    session: store.Session | None = state(request).session
    if session is not None:
        return session
    ctx = request.app[CTX]
    data = {"lang": state(request).language or request.cookies.get(sec.LANG_COOKIE)}
    token, session = store.create_session(
        ctx.db, user_id=None, lifetime=ctx.security.anonymous_lifetime, csrf=state(request).form_csrf,
        data={k: v for k, v in data.items() if v in ("zh_CN", "en")},
    )  # fmt: skip
    state(request).session = session
    state(request).set_cookie = (token, ctx.security.anonymous_lifetime)
    return session


def start_signed_in_session(request: web.Request, user_id: int, data: dict[str, Any] | None = None) -> store.Session:
    """A fresh session for a person who just joined or signed in (the anonymous one is
    dropped: a new token at every change of privilege)."""
    ctx = request.app[CTX]
    old: store.Session | None = state(request).session
    lang = old.data.get("lang") if old is not None else (state(request).language or request.cookies.get(sec.LANG_COOKIE))
    keep = {"lang": lang} if lang in ("zh_CN", "en") else {}
    if old is not None:
        store.delete_session(ctx.db, old.token_sha256)
    token, session = store.create_session(ctx.db, user_id=user_id, lifetime=ctx.security.lifetime, data={**keep, **(data or {})})
    state(request).session = session
    state(request).set_cookie = (token, ctx.security.lifetime)
    return session


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
    settings: Settings, db: sqlite_utils.Database, checklist: Checklist, i18n: I18n, *, on_enqueue: Any = None
) -> web.Application:
    from bot.web import views

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
        templates=templates_env(i18n),
        form_tokens=sec.FormTokens(dt.timedelta(hours=1)),
        on_enqueue=on_enqueue,
    )
    views.add_routes(app)
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
    web_app = build_web_app(settings, zicha_app.db, zicha_app.checklist, zicha_app.i18n, on_enqueue=wake)
    runners: list[web.AppRunner] = []

    async def on_startup() -> None:
        runners.append(await start_web(web_app, settings.zicha_web_host, settings.zicha_web_port))

    async def on_shutdown() -> None:
        while runners:
            await runners.pop().cleanup()

    zicha_app.dispatcher.startup.register(on_startup)
    zicha_app.dispatcher.shutdown.register(on_shutdown)
    return web_app
