"""Pledge texts: versioned TOML data next to the checklists (``checklists/pledges/``).

A pledge belongs to a checklist by file name (``<checklist id>.toml``). Every text has a
Chinese and an English version; loading fails with the file and the reason otherwise.
The Chinese text is the one signed; the English one is a translation for reference.

The preamble (``intro``) says what happened to the problems found, so it has three forms:
``intro.none`` (no non-compliance), ``intro.rectified`` (all rectified; ``{found}``) and
``intro.open`` (some still being rectified; ``{found}``, ``{open}`` and ``{date}``, the
latest target date). A plain ``intro`` with ``zh_CN`` and ``en`` is used for every state.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.resources import data_dir

LOCALES = ("zh_CN", "en")
# The language of the signed text, whatever the signer's interface language.
AUTHORITATIVE = "zh_CN"
INTRO_STATES = {"none": (), "rectified": ("{found}",), "open": ("{found}", "{open}", "{date}")}


class PledgeError(ValueError):
    """A pledge file is missing or malformed; the message names the file and the reason."""


@dataclass(frozen=True)
class PledgeText:
    """One pledge in one language: what the signer sees and signs."""

    title: str
    intro: str  # the preamble when no problem was found
    commitments: tuple[str, ...]
    closing: str
    intro_rectified: str = ""  # every problem rectified: {found}
    intro_open: str = ""  # some still being rectified: {found}, {open}, {date}

    def preamble(self, found: int, open_count: int, by: dt.date | None, locale: str) -> str:
        """The preamble true to the state of the rectifications."""
        from bot.i18n import format_date

        if found and open_count and self.intro_open:
            date = format_date(by, locale) if by is not None else ""
            return self.intro_open.format(found=found, open=open_count, date=date)
        if found and self.intro_rectified:
            return self.intro_rectified.format(found=found)
        return self.intro


@dataclass(frozen=True)
class Pledge:
    id: str
    version: str
    texts: dict[str, PledgeText]

    def text(self, locale: str) -> PledgeText:
        return self.texts.get(locale) or self.texts[AUTHORITATIVE]


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


def _intros(path: Path, data: object) -> dict[str, dict[str, str]]:
    """{state: {locale: text}} for none/rectified/open (a plain intro serves every state)."""
    if isinstance(data, dict) and not any(state in data for state in INTRO_STATES):
        plain = _localized(path, data, "intro")
        return dict.fromkeys(INTRO_STATES, plain)
    if not isinstance(data, dict):
        raise PledgeError(f"{path}: intro: expected a table with zh_CN and en, or intro.none/rectified/open")
    out = {}
    for state, placeholders in INTRO_STATES.items():
        texts = _localized(path, data.get(state), f"intro.{state}")
        for locale, text in texts.items():
            for placeholder in placeholders:
                if placeholder not in text:
                    raise PledgeError(f"{path}: intro.{state}: the {locale} text lacks {placeholder}")
        out[state] = texts
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
    intro = _intros(path, data.get("intro"))
    closing = _localized(path, data.get("closing"), "closing")
    items = [_localized(path, c, f"commitment {n}") for n, c in enumerate(commitments, 1)]
    texts = {
        locale: PledgeText(
            title[locale],
            intro["none"][locale],
            tuple(c[locale] for c in items),
            closing[locale],
            intro_rectified=intro["rectified"][locale],
            intro_open=intro["open"][locale],
        )
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


def pledge_for(checklist: Any) -> Pledge:
    """The pledge signed after ``checklist``: the one named after it, else the one its
    campaign names (``pledge = ...`` in checklists/campaigns/, e.g. the 2025 table signs
    the national pledge)."""
    own = data_dir("checklists") / "pledges" / f"{checklist.id}.toml"
    campaign_id = getattr(checklist, "campaign_id", None)
    if not own.is_file() and campaign_id:
        from bot.core.campaigns import campaigns_dir, load_campaign

        path = campaigns_dir() / f"{campaign_id}.toml"
        if path.is_file():
            pledge_id = load_campaign(path, today=dt.date.today()).pledge_id
            if pledge_id:
                return load_pledge(pledge_id)
    return load_pledge(checklist.id)
