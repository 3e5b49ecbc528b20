"""Pledge texts: versioned TOML data next to the checklists (``checklists/pledges/``).

A pledge belongs to a checklist by file name (``<checklist id>.toml``). Every text has a
Chinese and an English version; loading fails with the file and the reason otherwise.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bot.resources import data_dir

LOCALES = ("zh_CN", "en")


class PledgeError(ValueError):
    """A pledge file is missing or malformed; the message names the file and the reason."""


@dataclass(frozen=True)
class PledgeText:
    """One pledge in one language: what the signer sees and signs."""

    title: str
    intro: str
    commitments: tuple[str, ...]
    closing: str


@dataclass(frozen=True)
class Pledge:
    id: str
    version: str
    texts: dict[str, PledgeText]

    def text(self, locale: str) -> PledgeText:
        return self.texts.get(locale) or self.texts["zh_CN"]


def _localized(path: Path, data: object, where: str) -> dict[str, str]:
    if not isinstance(data, dict):
        raise PledgeError(f"{path}: {where}: expected a table with zh_CN and en")
    out = {}
    for locale in LOCALES:
        value = data.get(locale)
        if not isinstance(value, str) or not value.strip():
            raise PledgeError(f"{path}: {where}: the {locale} text is missing or empty")
        out[locale] = value.strip()
    return out


def load_pledge_file(path: str | Path) -> Pledge:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PledgeError(f"{path}: {exc}") from None
    pledge_id, version = data.get("id"), data.get("version")
    if not isinstance(pledge_id, str) or pledge_id != path.stem:
        raise PledgeError(f"{path}: id must be the file name without .toml ({path.stem!r})")
    if not isinstance(version, str) or not version.strip():
        raise PledgeError(f"{path}: version is missing")
    commitments = data.get("commitments")
    if not isinstance(commitments, list) or not commitments:
        raise PledgeError(f"{path}: at least one [[commitments]] entry is needed")
    title = _localized(path, data.get("title"), "title")
    intro = _localized(path, data.get("intro"), "intro")
    closing = _localized(path, data.get("closing"), "closing")
    items = [_localized(path, c, f"commitment {n}") for n, c in enumerate(commitments, 1)]
    texts = {
        locale: PledgeText(title[locale], intro[locale], tuple(c[locale] for c in items), closing[locale])
        for locale in LOCALES
    }
    return Pledge(pledge_id, version, texts)


@functools.cache
def load_pledge(checklist_id: str) -> Pledge:
    """The pledge that goes with a shipped checklist."""
    path = data_dir("checklists") / "pledges" / f"{checklist_id}.toml"
    if not path.is_file():
        raise PledgeError(f"no pledge text for checklist {checklist_id!r} (expected {path})")
    return load_pledge_file(path)
