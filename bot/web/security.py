"""What every web request goes through: security headers, sessions, CSRF, guess limits.

* Sessions live in SQLite (storage/web.py); the cookie carries a random token (HttpOnly,
  SameSite=Lax, Secure unless ZICHA_WEB_SECURE_COOKIES=false) and expires after an idle
  spell and at an absolute end.
* No session row for a visitor who only looks: an anonymous page (the landing, an invite,
  a sign-in link, /verify) stores nothing. Its forms carry a signed double-submit token
  instead: the ``zicha_form`` cookie holds a random nonce, the form's ``csrf`` field an
  HMAC of that nonce and the time it was made, under a key drawn at each start (so a form
  opened before a restart is refused once, as expired, and works after a reload). A
  server-side session is created only when a submitted form needs one (the confirmation
  of an invite), bound to the token that form carried.
* Every POST must carry its token in the ``csrf`` field (the session's synchronizer token
  once there is a session, else the signed one); a missing, wrong or too old one is refused
  with a 403 page before any handler runs.
* Only the paths in ``PUBLIC`` are served without a signed-in session (default deny).
* Wrong invite codes, sign-in links and verification codes are counted per client address
  and per code in a bounded in-memory sliding window; past the limit every attempt from
  that address (or on that code) is refused politely, and nothing is stored.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from storage import web as store

COOKIE = "zicha_session"
FORM_COOKIE = "zicha_form"  # the nonce of the anonymous forms' double-submit token
LANG_COOKIE = "zicha_lang"  # the language an anonymous visitor chose (no session for that)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # personal links sit in the path: never leak them
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}

# Paths served without a signed-in session: joining, signing in, asking for a new sign-in
# link, verifying, static files.
PUBLIC_PREFIXES = ("/j/", "/s/", "/static/")
PUBLIC_PATHS = frozenset({"/verify", "/link", "/lang", "/signout", "/health", "/favicon.ico", "/signed-out"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class WebSecurity:
    secure_cookies: bool
    idle: dt.timedelta
    lifetime: dt.timedelta
    anonymous_lifetime: dt.timedelta = dt.timedelta(hours=1)
    body_timeout: float = 120.0  # seconds to receive a whole request body


class SlidingWindow:
    """At most ``limit`` events per key within ``window`` seconds; remembers at most
    ``max_keys`` keys (the least recently seen are forgotten first), so a flood of distinct
    keys cannot exhaust memory."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._events: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def _recent(self, key: str) -> collections.deque[float]:
        now = self.clock()
        events = self._events.get(key)
        if events is None:
            events = collections.deque()
            self._events[key] = events
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def blocked(self, key: str) -> bool:
        return len(self._recent(key)) >= self.limit

    def hit(self, key: str) -> None:
        events = self._recent(key)
        events.append(self.clock())
        while len(events) > self.limit:  # bounded per key too
            events.popleft()


def client_address(request: web.Request) -> str:
    """The client's address; behind a reverse proxy on this host, the last X-Forwarded-For
    entry (the one the proxy added). Forwarded headers from anywhere else are ignored."""
    remote = request.remote or "unknown"
    # every header line: a proxy that appends its own line leaves the client's forged one first
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
    if forwarded:
        try:
            if ipaddress.ip_address(remote).is_loopback:
                return forwarded.split(",")[-1].strip() or remote
        except ValueError:
            pass
    return remote


def set_cookie(
    response: web.StreamResponse, token: str, security: WebSecurity, lifetime: dt.timedelta, *, name: str = COOKIE
) -> None:
    response.set_cookie(
        name,
        token,
        max_age=int(lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=security.secure_cookies,
    )


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def csrf_ok(session: store.Session | None, sent: object) -> bool:
    return session is not None and isinstance(sent, str) and hmac.compare_digest(sent.encode(), session.csrf.encode())


_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{32,64}")


class FormTokens:
    """Signed double-submit tokens for the forms of visitors without a session.

    The token is ``<unix time>.<HMAC-SHA256(key, nonce|time)>``: it is valid only with the
    cookie's nonce (another site can neither read the cookie nor compute the HMAC, and a
    cookie planted by a sibling host is useless without the key), and only for ``lifetime``.
    """

    def __init__(self, lifetime: dt.timedelta, *, key: bytes | None = None, clock: Callable[[], float] = time.time) -> None:
        self.key = key if key is not None else secrets.token_bytes(32)
        self.lifetime = lifetime.total_seconds()
        self.clock = clock

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def well_formed(nonce: object) -> bool:
        return isinstance(nonce, str) and _NONCE_RE.fullmatch(nonce) is not None

    def _mac(self, nonce: str, made: str) -> str:
        digest = hmac.new(self.key, f"form|{nonce}|{made}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def token(self, nonce: str) -> str:
        made = str(int(self.clock()))
        return f"{made}.{self._mac(nonce, made)}"

    def valid(self, nonce: object, sent: object) -> bool:
        if not self.well_formed(nonce) or not isinstance(sent, str) or len(sent) > 100:
            return False
        assert isinstance(nonce, str)
        made, _, mac = sent.partition(".")
        if not made.isdigit() or not hmac.compare_digest(mac.encode(), self._mac(nonce, made).encode()):
            return False
        age = self.clock() - int(made)
        return -60 <= age <= self.lifetime  # a minute of clock slack, no more
