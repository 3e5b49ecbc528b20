"""The fields (领域) an institution works in, read from the registry file.

The registry is data: ``checklists/fields.toml`` (or the file named by ``ZICHA_FIELDS``),
one ``[[fields]]`` table per field with its id, Chinese and English names, aliases and an
optional ``since`` campaign. The ids are stable and used in checklists, the roster and the
database. A roster may name a field by id, by its Chinese or English name or by an alias.
Adding a field to the file is enough for roster import, checklists and scopes to accept it.

``FIELDS`` and ``FIELD_IDS`` are still importable: they always reflect the registry in use.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field as Setting
from pydantic import StringConstraints, ValidationError

from bot.core.fileformat import FileModel, allowed_keys, first_error, unknown_key

FIELDS_ENV = "ZICHA_FIELDS"
FIELD_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


class FieldsError(ValueError):
    """A fields registry that cannot be used; the message names the file, the entry and why."""


@dataclass(frozen=True)
class Field:
    id: str
    zh_CN: str
    en: str
    aliases: tuple[str, ...] = ()
    since: str | None = None

    def label(self, locale: str) -> str:
        return self.zh_CN if locale.startswith("zh") else self.en


@dataclass(frozen=True)
class FieldRegistry:
    fields: tuple[Field, ...]
    path: str = ""

    def __post_init__(self) -> None:
        by_id = {f.id: f for f in self.fields}
        lookup: dict[str, str] = {}
        for f in self.fields:
            for name in (f.id, f.zh_CN, f.en.lower(), *f.aliases):
                lookup.setdefault(name.strip().lower(), f.id)
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_lookup", lookup)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self._by_id)  # type: ignore[attr-defined]

    def get(self, field_id: str) -> Field:
        return self._by_id[field_id]  # type: ignore[attr-defined]

    def resolve(self, name: str) -> str | None:
        return self._lookup.get(name.strip().lower())  # type: ignore[attr-defined]


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class FieldFile(FileModel):
    """One ``[[fields]]`` table of the registry file."""

    id: Annotated[str, StringConstraints(pattern=FIELD_ID_RE.pattern.join("^$"))]
    zh_CN: NonEmpty
    en: NonEmpty
    aliases: list[NonEmpty] = Setting(default_factory=list)
    since: NonEmpty | None = None


class RegistryFile(FileModel):
    """The fields registry file as written: one or more ``[[fields]]``."""

    fields: Annotated[list[FieldFile], Setting(min_length=1)]


# What a key must be, said when pydantic finds it is not.
_RULES = {
    "zh_CN": "zh_CN must be a non-empty string",
    "en": "en must be a non-empty string",
    "aliases": "aliases must be a list of non-empty strings",
    "since": "since must be a campaign id",
}


def _registry_reason(data: dict[str, Any], exc: ValidationError) -> str:
    unknown_top = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden" and len(e["loc"]) == 1)
    if unknown_top:
        return f"unknown key(s) {', '.join(unknown_top)} (expected [[fields]])"
    error = first_error(exc)
    loc = tuple(error["loc"])
    if len(loc) <= 2:
        return "at least one [[fields]] table is required"
    number, key = int(loc[1]) + 1, str(loc[2])
    if error["type"] == "extra_forbidden":
        return f"field #{number}: " + unknown_key(key, allowed_keys(FieldFile))
    entry = data["fields"][loc[1]]
    if key == "id":
        return f"field #{number}: id must match ^[a-z0-9][a-z0-9-]{{0,31}}$, got {entry.get('id')!r}"
    return f"field {entry['id']!r}: {_RULES[key]}"


def load_registry(path: str | os.PathLike[str]) -> FieldRegistry:
    """Read and check a fields registry file; FieldsError names what is wrong."""
    shown = os.fspath(path)
    try:
        data = tomllib.loads(Path(path).read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FieldsError(f"{shown}: cannot read the fields registry: {exc}") from exc
    try:
        file = RegistryFile.model_validate(data)
    except ValidationError as exc:
        raise FieldsError(f"{shown}: {_registry_reason(data, exc)}") from None
    fields: list[Field] = []
    seen: dict[str, str] = {}
    for entry in file.fields:
        f = Field(entry.id, entry.zh_CN, entry.en, tuple(entry.aliases), entry.since)
        fields.append(f)
        for name in (f.id, f.zh_CN, f.en.lower(), *f.aliases):
            key = name.strip().lower()
            if key in seen and seen[key] != f.id:
                raise FieldsError(f"{shown}: field {f.id!r}: name {name!r} is already used by field {seen[key]!r}")
            seen[key] = f.id
    return FieldRegistry(tuple(fields), shown)


def default_registry_path() -> Path:
    configured = os.environ.get(FIELDS_ENV)
    if configured:
        return Path(configured)
    from bot.resources import data_dir

    return data_dir("checklists") / "fields.toml"


_current: FieldRegistry | None = None


def registry() -> FieldRegistry:
    """The registry in use: loaded once from ``default_registry_path()``."""
    global _current
    if _current is None:
        _current = load_registry(default_registry_path())
    return _current


def use_registry(new: FieldRegistry | None) -> None:
    """Switch to another registry (None: reload the default on next use). For tools and tests."""
    global _current
    _current = new


def all_fields() -> tuple[Field, ...]:
    return registry().fields


def field_ids() -> frozenset[str]:
    return registry().ids


def get_field(field_id: str) -> Field:
    """The field with this id; KeyError if there is none."""
    return registry().get(field_id)


def resolve_field(name: str) -> str | None:
    """The field id for an id, Chinese name, English name or alias; None if unknown."""
    return registry().resolve(name)


def field_label(field_id: str, locale: str) -> str:
    try:
        return registry().get(field_id).label(locale)
    except KeyError:
        return field_id


def __getattr__(name: str) -> Any:
    # FIELDS / FIELD_IDS as they were: module constants, now read from the registry.
    if name == "FIELDS":
        return all_fields()
    if name == "FIELD_IDS":
        return field_ids()
    raise AttributeError(name)
