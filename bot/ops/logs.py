"""Structured logs: one JSON (or logfmt-like text) line per event, for journald or a container runtime.

What goes into a line is chosen, not dumped: the message, the logger, and the whitelisted
fields in ``FIELDS`` (update ids, institution ids, durations, outcomes). User text (names,
answers, problems) is never passed to a log call, and every line is scrubbed of the bot
token and the webhook secret before it is written, whatever library produced it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import IO, Any

FIELDS = (
    "event",
    "update_id",
    "update_type",
    "institution_id",
    "duration_ms",
    "outcome",
    "mode",
    "pid",
    "check",
    "status",
)
"""Extra attributes (``log.info(..., extra={...})``) copied into a line; anything else is left out."""

# A bot token anywhere in a line (for example inside a URL in an exception message).
_TOKEN_SHAPE = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}")
REDACTED = "<redacted>"


class _Scrubber:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_SHAPE.sub(REDACTED, text)


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "msg": ..., <FIELDS>, "exc": ...}`` on one line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.scrub = _Scrubber(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return self.scrub(json.dumps(line, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """``2026-11-25T09:00:00Z info zicha.updates: update update_id=7 institution_id=2`` (logfmt-like)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.scrub = _Scrubber(secrets)

    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [ts, record.levelname.lower(), f"{record.name}:", record.getMessage()]
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                parts.append(f"{name}={value}")
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return self.scrub(text)


_HANDLER_NAME = "zicha"


def setup_logging(
    *, fmt: str = "json", level: str = "INFO", secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as one line each; safe to call twice."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    secret_list = list(secrets)
    handler.setFormatter(JsonFormatter(secret_list) if fmt == "json" else TextFormatter(secret_list))
    root.addHandler(handler)
    root.setLevel(level)
    # Zicha logs one line per update itself (bot.ops.lifecycle), with the institution id;
    # aiogram's own per-update line would only repeat it.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    # An access log would carry the webhook path and client addresses on every request.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # APScheduler narrates at INFO ("Adding job tentatively" while the app is built, before
    # any setting is known to work, then "Running job" at every sweep); Zicha logs its own
    # "background: … started" line. Its warnings (missed runs) and errors still come through.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler
