"""Helpers for the web chat tests: the app on a test server, forms' CSRF tokens."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlite_utils
from aiohttp.test_utils import TestClient, TestServer

from bot.config import load_settings
from bot.core.checklist import Checklist
from bot.i18n import build_i18n
from bot.web.app import build_web_app

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def web_settings(db_path: Path, **overrides: Any):  # type: ignore[no-untyped-def]
    values: dict[str, Any] = {
        "zicha_db": db_path,
        "zicha_web_secure_cookies": False,
        "zicha_public_url": "http://zicha.test",
        **overrides,
    }
    return load_settings(**values)


async def web_client(db: sqlite_utils.Database, checklist: Checklist, db_path: Path, **overrides: Any) -> TestClient:
    settings = web_settings(db_path, **overrides)
    app = build_web_app(settings, db, checklist, build_i18n(settings.zicha_locale))
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


def csrf_of(page: str) -> str:
    match = _CSRF.search(page)
    assert match and match[1], "no CSRF token on the page"
    return match[1]


def link_of(page: str) -> str:
    match = re.search(r'id="personal-link">([^<]+)<', page)
    assert match, "no personal link on the page"
    return match[1].strip()
