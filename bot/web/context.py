"""What every web page shares: the application's context (under a ``web.AppKey``), the
request's session state, templates in the visitor's language, and starting a session.

Kept apart from ``bot.web.app`` (which builds the application and mounts the pages) so the
pages import this and ``app`` imports the pages, without an import cycle.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import sqlite_utils
from aiogram.utils.i18n import I18n
from aiohttp import web

from bot.config import Settings
from bot.conversation.engine import Conversation
from bot.core.checklist import Checklist
from bot.i18n import normalize_locale
from bot.web import security as sec
from storage import web as store

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
    pdf_checks: sec.SlidingWindow  # /verify's PDF signature checks per address
    pdf_check_slots: asyncio.Semaphore  # ... and how many run at once (each a thread's CPU)
    link_asks: sec.SlidingWindow  # requests for a new sign-in link by e-mail (/link) per address
    templates: jinja2.Environment
    form_tokens: sec.FormTokens
    on_enqueue: Any = None  # called after something was put in the outbox (wakes the sender)
    conversation: Conversation | None = None  # the channel-neutral engine the chat pages drive (bot/web/chat.py)


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
