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
from typing import Any

FIELDS_ENV = "ZICHA_FIELDS"
FIELD_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_KEYS = frozenset({"id", "zh_CN", "en", "aliases", "since"})


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


def load_registry(path: str | os.PathLike[str]) -> FieldRegistry:
    """Read and check a fields registry file; FieldsError names what is wrong."""
    shown = os.fspath(path)
    try:
        data = tomllib.loads(Path(path).read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FieldsError(f"{shown}: cannot read the fields registry: {exc}") from exc
    unknown_top = set(data) - {"fields"}
    if unknown_top:
        raise FieldsError(f"{shown}: unknown key(s) {', '.join(sorted(unknown_top))} (expected [[fields]])")
    raw = data.get("fields")
    if not isinstance(raw, list) or not raw or not all(isinstance(r, dict) for r in raw):
        raise FieldsError(f"{shown}: at least one [[fields]] table is required")
    fields: list[Field] = []
    seen: dict[str, str] = {}
    for number, entry in enumerate(raw, start=1):
        fields.append(_field(shown, number, entry))
        f = fields[-1]
        for name in (f.id, f.zh_CN, f.en.lower(), *f.aliases):
            key = name.strip().lower()
            if key in seen and seen[key] != f.id:
                raise FieldsError(f"{shown}: field {f.id!r}: name {name!r} is already used by field {seen[key]!r}")
            seen[key] = f.id
    return FieldRegistry(tuple(fields), shown)


def _field(shown: str, number: int, entry: dict[str, Any]) -> Field:
    where = f"{shown}: field #{number}"
    for key in entry:
        if key not in _KEYS:
            import difflib

            close = difflib.get_close_matches(key, sorted(_KEYS), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise FieldsError(f"{where}: unknown key {key!r}{hint}")
    field_id = entry.get("id")
    if not isinstance(field_id, str) or not FIELD_ID_RE.fullmatch(field_id):
        raise FieldsError(f"{where}: id must match ^[a-z0-9][a-z0-9-]{{0,31}}$, got {field_id!r}")
    where = f"{shown}: field {field_id!r}"
    names: dict[str, str] = {}
    for key in ("zh_CN", "en"):
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            raise FieldsError(f"{where}: {key} must be a non-empty string")
        names[key] = value.strip()
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise FieldsError(f"{where}: aliases must be a list of non-empty strings")
    since = entry.get("since")
    if since is not None and (not isinstance(since, str) or not since.strip()):
        raise FieldsError(f"{where}: since must be a campaign id")
    return Field(field_id, names["zh_CN"], names["en"], tuple(a.strip() for a in aliases), since)


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
