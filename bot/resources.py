"""Where the data that ships with Zicha lives: checklists and translations.

In a source checkout they sit at the top of the repository; an installed wheel carries
them inside the package as ``bot/_data/`` (see pyproject.toml), so ``zicha`` finds them
from any working directory.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The directory of shipped data called ``name`` ("checklists" or "locales")."""
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"Zicha's {name} directory is missing (looked in {installed} and {checkout})")
