"""What a spreadsheet would take for a formula (CSV / formula injection).

Excel, WPS and LibreOffice start a formula at ``= + - @`` — and, depending on version
and input method, also at their full-width forms (``＝ ＋ － ＠``, which Chinese IMEs
type), small forms (``﹦ ﹢ ﹣ ﹫``) and the minus sign ``−``. Invisible characters
before them (a zero-width space, a byte-order mark, any Unicode "format" character,
category Cf) do not show in a cell but do not stop the formula either. A leading tab,
carriage return or line feed can shift the cell and is treated the same way.

``starts_like_formula`` is the one test: the roster import refuses such names, and
``bot.reports.excel.cell_text`` neutralises such text wherever it leaves for a
spreadsheet or a CSV file (the workbook, ``zicha invites --format csv``).
"""

from __future__ import annotations

import unicodedata

_CONTROL_START = ("\t", "\r", "\n")
_FORMULA_CHARS = frozenset("=+-@\u2212")  # U+2212 MINUS SIGN has no NFKC form of its own


def _invisible(char: str) -> bool:
    return unicodedata.category(char) == "Cf"


def strip_invisible(text: str) -> str:
    """``text`` without invisible format characters (Cf) at either end."""
    start, end = 0, len(text)
    while start < end and _invisible(text[start]):
        start += 1
    while end > start and _invisible(text[end - 1]):
        end -= 1
    return text[start:end]


def starts_like_formula(text: str) -> bool:
    """True if a spreadsheet could read ``text`` as a formula (see the module docstring)."""
    if text.startswith(_CONTROL_START):
        return True
    for char in text:
        if _invisible(char) or char in " \u3000\u00a0":
            continue  # invisible, or spaces some spreadsheets trim on import
        return char in _FORMULA_CHARS or unicodedata.normalize("NFKC", char) in _FORMULA_CHARS
    return False
