"""Pledge texts: versioned TOML data next to the checklists (``checklists/pledges/``).

A pledge belongs to a checklist by file name (``<checklist id>.toml``). Every text has a
Chinese and an English version; the file format is :class:`PledgeFile` (pydantic, unknown keys
refused) and loading fails with the file and the reason otherwise.
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
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, ValidationError, model_validator

from bot.core.fileformat import FileModel, Reason, allowed_keys, first_error, reason_of, suggest, unknown_key
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


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class TextFile(FileModel):
    """One text of the pledge in both languages."""

    zh_CN: NonEmpty
    en: NonEmpty


class IntroFile(FileModel):
    """The preamble in its three forms (a plain intro is read as the same text for all three)."""

    none: TextFile
    rectified: TextFile
    open: TextFile

    @model_validator(mode="after")
    def _placeholders_present(self) -> IntroFile:
        for state, placeholders in INTRO_STATES.items():
            texts: TextFile = getattr(self, state)
            for locale in LOCALES:
                for placeholder in placeholders:
                    if placeholder not in getattr(texts, locale):
                        raise Reason(f"intro.{state}: the {locale} text lacks {placeholder}")
        return self


def _plain_intro(value: Any) -> Any:
    # A plain intro (zh_CN and en, no states) serves every state.
    if isinstance(value, dict) and not any(state in value for state in INTRO_STATES):
        return dict.fromkeys(INTRO_STATES, value)
    return value


class PledgeFile(FileModel):
    """A pledge file as written (``checklists/pledges/<checklist id>.toml``)."""

    id: str
    version: NonEmpty
    title: TextFile
    intro: Annotated[IntroFile, BeforeValidator(_plain_intro)]
    commitments: Annotated[list[TextFile], Field(min_length=1)]
    closing: TextFile


def _pledge_reason(data: dict[str, Any], exc: ValidationError) -> str:
    error = first_error(exc)
    reason = reason_of(error)
    if reason is not None:
        return reason.reason
    loc = tuple(error["loc"])
    kind = error["type"]
    key = str(loc[0])
    if key == "version":
        return "version is missing"
    if key == "commitments" and (len(loc) == 1 or (kind == "model_type" and len(loc) == 2)):
        return "at least one [[commitments]] entry is needed"
    if len(loc) == 1 and kind == "extra_forbidden":
        return unknown_key(key, allowed_keys(PledgeFile))
    rest = loc[1:]
    if key == "commitments":
        where, rest = f"commitment {int(loc[1]) + 1}", loc[2:]
    elif key == "intro" and isinstance(data.get("intro"), dict) and not any(s in data["intro"] for s in INTRO_STATES):
        where, rest = "intro", loc[2:]
    elif key == "intro" and rest:
        where, rest = f"intro.{rest[0]}", loc[2:]
    else:
        where = key
    if not rest:
        if key == "intro":
            return "intro: expected a table with zh_CN and en, or intro.none/rectified/open"
        return f"{where}: expected a table with zh_CN and en"
    if kind == "extra_forbidden":
        return f"{where}: unknown key {rest[0]!r}{suggest(str(rest[0]), LOCALES, cutoff=0.5)}"
    return f"{where}: the {rest[0]} text is missing or empty"


def load_pledge_file(path: str | Path) -> Pledge:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PledgeError(f"{path}: {exc}") from None
    if not isinstance(data.get("id"), str) or data["id"] != path.stem:
        raise PledgeError(f"{path}: id must be the file name without .toml ({path.stem!r})")
    try:
        file = PledgeFile.model_validate(data)
    except ValidationError as exc:
        raise PledgeError(f"{path}: {_pledge_reason(data, exc)}") from None
    texts = {
        locale: PledgeText(
            getattr(file.title, locale),
            getattr(file.intro.none, locale),
            tuple(getattr(c, locale) for c in file.commitments),
            getattr(file.closing, locale),
            intro_rectified=getattr(file.intro.rectified, locale),
            intro_open=getattr(file.intro.open, locale),
        )
        for locale in LOCALES
    }
    return Pledge(file.id, file.version, texts)


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
    the national pledge). A checklist served for a campaign carries that campaign's pledge."""
    pledge_id = getattr(checklist, "pledge_id", None)
    if pledge_id:
        return load_pledge(pledge_id)
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
