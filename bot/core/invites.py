"""Invite codes that link a Telegram account to an institution on the roster.

A code is handed out by a regulator, read aloud over the phone, typed from a
printed notice or tapped in a deep link ``https://t.me/<bot>?start=<code>``.
Hence:

* 20 characters of Crockford base32 = 100 bits from ``secrets``: far beyond
  guessing even with no rate limit (the brief asks for at least 80 bits);
* Crockford's alphabet leaves out I, L, O and U, and on input the confusable
  letters are mapped back (O→0, I/L→1), so a misread code still works;
* the canonical form has no dashes and only A-Z0-9, which is a valid Telegram
  deep-link payload (≤ 64 of ``A-Za-z0-9_-``); dashes are for display only.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import unicodedata

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
CODE_LENGTH = 20
GROUP = 4
BITS = CODE_LENGTH * 5  # 32 symbols = 5 bits each

# Crockford decoding: read the letters people confuse with digits as those digits.
_CONFUSABLES = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Generous bound for a code with dashes and spaces around it; anything longer is
# junk and is rejected before any further work on it.
_MAX_INPUT = 64
_CODE_RE = re.compile(f"[{ALPHABET}]{{{CODE_LENGTH}}}")
# Telegram usernames: 5–32 characters, letters, digits and underscores, starting with a letter.
_USERNAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{4,31}")


def new_invite_code() -> str:
    """A fresh canonical code: 20 upper-case Crockford characters, no dashes."""
    # secrets.choice over 32 symbols is uniform, so every character carries a full 5 bits.
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_invite_code(text: str) -> str | None:
    """The canonical code for what a person typed, or None if it cannot be one.

    Accepts lower case, dashes and spaces anywhere, full-width characters (from a
    Chinese input method) and Crockford's confusables.
    """
    if not isinstance(text, str) or len(text) > _MAX_INPUT:
        return None
    text = unicodedata.normalize("NFKC", text)
    compact = "".join(text.replace("-", " ").split()).upper().translate(_CONFUSABLES)
    # fullmatch with an explicit class: str.isalnum would let non-ASCII digits through.
    if not _CODE_RE.fullmatch(compact):
        return None
    return compact


def _require_code(code: str) -> str:
    canonical = normalize_invite_code(code)
    if canonical is None:
        raise ValueError(f"not an invite code: {code!r}")
    return canonical


def format_invite_code(code: str) -> str:
    """The code grouped by four for display: ``ABCD-EFGH-JKMN-PQRS-TVWX``."""
    canonical = _require_code(code)
    return "-".join(canonical[i : i + GROUP] for i in range(0, CODE_LENGTH, GROUP))


def deep_link(bot_username: str, code: str) -> str:
    """``https://t.me/<bot>?start=<code>`` with the canonical (dash-free) code.

    Raises ValueError for an impossible bot username or code rather than
    producing a link that silently does nothing.
    """
    username = bot_username.strip().removeprefix("@")
    if not _USERNAME_RE.fullmatch(username):
        raise ValueError(f"not a Telegram bot username: {bot_username!r}")
    return f"https://t.me/{username}?start={_require_code(code)}"


# --- expiry ------------------------------------------------------------------------

_DURATION_RE = re.compile(r"(\d{1,4})\s*([dhw])")
_DURATION_UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}
MAX_VALIDITY = dt.timedelta(days=3 * 366)


def parse_expiry(text: str, now: dt.datetime) -> dt.datetime:
    """When an invite stops admitting anyone, from what an operator types.

    ``14d``, ``12h``, ``2w``: that long from ``now``. ``2023-10-27``: valid through that
    day, so it expires at the following midnight. ``2023-10-27 18:00``: at that time.
    Dates and times are local to ``now``'s time zone (ZICHA_TIMEZONE). ValueError with
    the reason for anything else, for a moment already past, or more than 3 years ahead.
    """
    raw = unicodedata.normalize("NFKC", text).strip().lower()
    duration = _DURATION_RE.fullmatch(raw)
    if duration:
        moment = now + int(duration.group(1)) * _DURATION_UNITS[duration.group(2)]
    else:
        try:
            if len(raw) == 10:
                day = dt.date.fromisoformat(raw)
                moment = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=now.tzinfo)
            else:
                moment = dt.datetime.fromisoformat(raw)
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=now.tzinfo)
        except ValueError:
            raise ValueError(
                f"{text!r} is neither a duration (14d, 12h, 2w) nor a date (2023-10-27) or time (2023-10-27 18:00)"
            ) from None
    if moment <= now:
        raise ValueError(f"{text!r} is already past")
    if moment - now > MAX_VALIDITY:
        raise ValueError(f"{text!r} is more than 3 years ahead")
    return moment
