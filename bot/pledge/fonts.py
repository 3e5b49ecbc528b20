"""Whether the pledge PDF can be made: a font with Chinese glyphs must be installed."""

from __future__ import annotations

import functools


class FontMissing(RuntimeError):
    """No font with Chinese glyphs is installed: a PDF would show boxes instead of text."""


NO_CJK_FONT = (
    "No Chinese (CJK) font is installed, so the pledge PDF cannot be produced without empty boxes "
    "in place of Chinese text: install fonts-noto-cjk (scripts/install-system-deps.sh) and restart Zicha."
)


@functools.cache
def cjk_font_available() -> bool:
    """Whether a font covering Chinese is installed (the operations check, cached: fonts
    do not come and go while the bot runs)."""
    from bot.ops.fonts import fonts_ok

    return fonts_ok()[0]
