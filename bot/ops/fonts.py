"""Is there a font with Chinese glyphs? Signed pledges (PDF) and digest charts need one.

A missing font does not stop the bot: it degrades (no Chinese in rendered files) and says
so in one sentence at start and in ``zicha status``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".local/share/fonts")
_CJK_NAME_HINTS = ("cjk", "wqy", "wenquanyi", "sourcehansans", "sourcehanserif", "simsun", "simhei", "droidsansfallback")
MISSING_FONT = (
    "No Chinese (CJK) font is installed, so signed pledges and charts cannot show Chinese: "
    "install one, e.g. `apt-get install fonts-noto-cjk`."
)

Runner = Callable[[list[str]], str]


def _fc_list(args: list[str]) -> str:
    return subprocess.run(args, capture_output=True, text=True, timeout=10, check=False).stdout


def cjk_fonts(*, which: Callable[[str], str | None] = shutil.which, run: Runner = _fc_list,
              font_dirs: tuple[Path, ...] = FONT_DIRS) -> list[str]:
    """Names of installed fonts covering Chinese: ``fc-list :lang=zh`` when fontconfig is
    there, else font files whose names say CJK in the usual font folders."""
    if which("fc-list"):
        try:
            out = run(["fc-list", ":lang=zh", "family"])
        except (OSError, subprocess.SubprocessError):
            out = ""
        return sorted({line.split(",")[0].strip() for line in out.splitlines() if line.strip()})
    found = []
    for folder in font_dirs:
        if folder.is_dir():
            found += [p.name for p in folder.rglob("*") if any(h in p.name.lower() for h in _CJK_NAME_HINTS)]
    return sorted(found)


def fonts_ok(**kwargs: object) -> tuple[bool, str]:
    """(True, the first font) when Chinese can be rendered, else (False, what to install)."""
    fonts = cjk_fonts(**kwargs)  # type: ignore[arg-type]
    if fonts:
        return True, f"{fonts[0]}" + (f" and {len(fonts) - 1} more" if len(fonts) > 1 else "")
    return False, MISSING_FONT
