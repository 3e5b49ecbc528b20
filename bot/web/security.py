"""What every web request goes through: security headers, sessions, CSRF, guess limits.

* Sessions live in SQLite (storage/web.py); the cookie carries a random token (HttpOnly,
  SameSite=Lax, Secure unless ZICHA_WEB_SECURE_COOKIES=false) and expires after an idle
  spell and at an absolute end.
* Every POST must carry the session's synchronizer token in the ``csrf`` field; a missing or
  wrong one is refused with a 403 page before any handler runs.
* Only the paths in ``PUBLIC`` are served without a signed-in session (default deny).
* Wrong invite codes, sign-in links and verification codes are counted per client address
  and per code in a bounded in-memory sliding window; past the limit every attempt from
  that address (or on that code) is refused politely, and nothing is stored.
"""

from __future__ import annotations

import collections
import datetime as dt
import hmac
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from storage import web as store

COOKIE = "zicha_session"
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

# Paths served without a signed-in session: joining, signing in, verifying, static files.
PUBLIC_PREFIXES = ("/j/", "/s/", "/static/")
PUBLIC_PATHS = frozenset({"/verify", "/lang", "/signout", "/health", "/favicon.ico", "/signed-out"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class WebSecurity:
    secure_cookies: bool
    idle: dt.timedelta
    lifetime: dt.timedelta
    anonymous_lifetime: dt.timedelta = dt.timedelta(hours=1)


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


def set_cookie(response: web.StreamResponse, token: str, security: WebSecurity, lifetime: dt.timedelta) -> None:
    response.set_cookie(
        COOKIE,
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
