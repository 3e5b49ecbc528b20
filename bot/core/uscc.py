"""统一社会信用代码 (Unified Social Credit Code, GB 32100-2015).

An 18-character code: registering authority (1), category (1), division code
(6, GB/T 2260), organisation code (9, GB 11714) and a check character (1). Only
the alphabet and the check character are verified here: the other parts change
with administrative reorganisations, and a regulator's roster must not be
rejected because a county was renamed.

Errors carry a reason in Chinese and in English because the person fixing the
roster is usually a Chinese-speaking clerk, while logs and tests use English.
"""

from __future__ import annotations

import unicodedata

# The 31 code characters in value order (0..30). I, O, S, V and Z are left out
# because they are easily confused with 1, 0, 5, U and 2.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# Weights for positions 1..17 are 3**(i-1) mod 31; kept literal to match the standard's table.
WEIGHTS: tuple[int, ...] = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18

_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_EXCLUDED = "IOSVZ"
# Only the two confusions that are really common when copying a code by hand get a suggestion;
# guessing S→5 or Z→2 would more often mislead than help.
_SUGGEST = {"O": "0", "I": "1"}


class InvalidUSCC(ValueError):
    """A text that is not a valid 统一社会信用代码.

    ``kind`` is one of "empty", "length", "character", "check_digit" so callers
    can react without parsing the message; ``str()`` is the English reason.
    """

    def __init__(self, kind: str, reason_zh: str, reason_en: str, expected: str | None = None) -> None:
        super().__init__(reason_en)
        self.kind = kind
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        # The check character the code should end with (only for kind == "check_digit").
        self.expected = expected

    def __str__(self) -> str:
        return self.reason_en


def normalize_uscc(text: str) -> str:
    """Strip, upper-case and remove inner spaces.

    NFKC first, because codes typed with a Chinese input method often come out
    as full-width characters (`９１４４…`) or with ideographic spaces.
    """
    text = unicodedata.normalize("NFKC", text)
    return "".join(text.split()).upper()


def _bad_characters(code: str) -> list[tuple[int, str]]:
    """(1-based position, character) of each character outside the alphabet."""
    return [(i, ch) for i, ch in enumerate(code, start=1) if ch not in _VALUE]


def _character_error(bad: list[tuple[int, str]]) -> InvalidUSCC:
    parts_en = [f'"{ch}" at position {pos}' for pos, ch in bad]
    parts_zh = [f"第{pos}位“{ch}”" for pos, ch in bad]
    if len(bad) == 1:
        en = f"character {parts_en[0]} is not allowed"
        zh = f"{parts_zh[0]}不是允许的字符"
    else:
        en = "characters not allowed: " + ", ".join(parts_en)
        zh = "含有不允许的字符：" + "、".join(parts_zh)
    en += " (only digits and upper-case letters except I, O, S, V, Z"
    zh += "（只能是数字和除I、O、S、V、Z以外的大写字母"
    confused = sorted({ch for _, ch in bad if ch in _SUGGEST})
    if confused:
        en += "; did you mean " + " / ".join(f"{_SUGGEST[c]} instead of {c}" for c in confused) + "?"
        zh += "；是否应为" + "、".join(f"数字{_SUGGEST[c]}而非字母{c}" for c in confused) + "？"
    en += ")"
    zh += "）"
    return InvalidUSCC("character", zh, en)


def _check_value(first17: str) -> str:
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    # 31 - 0 would be 31, which has no character: the standard maps it to 0.
    return ALPHABET[(31 - total % 31) % 31]


def check_digit(first17: str) -> str:
    """The check character for the first 17 characters of a code.

    Raises InvalidUSCC if ``first17`` is not 17 characters of the alphabet
    (after normalisation), so a typo cannot silently produce a "valid" code.
    """
    body = normalize_uscc(first17)
    if len(body) != LENGTH - 1:
        raise InvalidUSCC(
            "length",
            f"前17位长度错误：共{len(body)}位，应为17位",
            f"wrong length for the first 17 characters: {len(body)}, expected 17",
        )
    bad = _bad_characters(body)
    if bad:
        raise _character_error(bad)
    return _check_value(body)


def validate_uscc(text: str) -> str:
    """The normalised code, or InvalidUSCC with the first problem found.

    Order: empty, length, characters, check digit — a wrong length makes
    per-position messages confusing, so it is reported on its own.
    """
    code = normalize_uscc(text)
    if not code:
        raise InvalidUSCC("empty", "统一社会信用代码为空（应为18位）", "empty (expected 18 characters)")
    if len(code) != LENGTH:
        raise InvalidUSCC(
            "length",
            f"长度错误：共{len(code)}位，应为18位",
            f"wrong length: {len(code)} characters, expected 18",
        )
    bad = _bad_characters(code)
    if bad:
        raise _character_error(bad)
    expected = _check_value(code[:17])
    if code[17] != expected:
        raise InvalidUSCC(
            "check_digit",
            f"校验码错误（应为{expected}）",
            f"wrong check digit (expected {expected})",
            expected=expected,
        )
    return code


def is_valid_uscc(code: str) -> bool:
    """True if ``code`` (after normalisation) is a valid code."""
    try:
        validate_uscc(code)
    except InvalidUSCC:
        return False
    return True


def make_uscc(first17: str) -> str:
    """Append the check character: for tests, fixtures and demo data."""
    body = normalize_uscc(first17)
    return body + check_digit(body)
