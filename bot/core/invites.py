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
