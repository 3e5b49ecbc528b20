"""What a regulator may see: national, or some provinces, optionally narrowed to fields.

Every regulator-facing query, export, digest and broadcast goes through a ``Scope``:
``covers`` for one institution, ``sql`` for a whole query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.fields import field_ids, resolve_field
from bot.core.roster import resolve_province


class ScopeError(ValueError):
    """A scope written on the command line or in an invite cannot be understood."""


@dataclass(frozen=True)
class Scope:
    national: bool = False
    provinces: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()  # empty: every field

    def __post_init__(self) -> None:
        if not self.national and not self.provinces:
            raise ScopeError("a scope is national or names at least one province")
        unknown = set(self.fields) - field_ids()
        if unknown:
            raise ScopeError(f"unknown field(s): {', '.join(sorted(unknown))}")

    def covers(self, province: str, fields: Iterable[str]) -> bool:
        if not self.national and province not in self.provinces:
            return False
        return not self.fields or bool(self.fields & set(fields))

    def sql(self, alias: str = "institutions") -> tuple[str, list[str]]:
        """A WHERE condition (and its parameters) selecting the institutions in scope.
        ``fields`` is stored as a JSON array, searched with json_each."""
        clauses: list[str] = []
        params: list[str] = []
        if not self.national:
            clauses.append(f"{alias}.province IN ({', '.join('?' for _ in self.provinces)})")
            params += sorted(self.provinces)
        if self.fields:
            marks = ", ".join("?" for _ in self.fields)
            clauses.append(f"EXISTS (SELECT 1 FROM json_each({alias}.fields) WHERE json_each.value IN ({marks}))")
            params += sorted(self.fields)
        return (" AND ".join(clauses) or "1"), params

    def describe(self, locale: str) -> str:
        from bot.core.fields import field_label

        zh = locale.startswith("zh")
        where = ("全国" if zh else "national") if self.national else ("、" if zh else ", ").join(sorted(self.provinces))
        if not self.fields:
            return where
        fields = ("、" if zh else ", ").join(field_label(f, locale) for f in sorted(self.fields))
        return f"{where} · {fields}"

    def to_text(self) -> str:
        """The form ``parse`` reads back, e.g. ``province:广东,浙江;fields:food``."""
        where = "national" if self.national else "province:" + ",".join(sorted(self.provinces))
        return where + (";fields:" + ",".join(sorted(self.fields)) if self.fields else "")

    def to_json(self) -> str:
        return json.dumps(
            {"national": self.national, "provinces": sorted(self.provinces), "fields": sorted(self.fields)},
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Scope:
        data = json.loads(text)
        return cls(bool(data["national"]), frozenset(data["provinces"]), frozenset(data["fields"]))

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Read ``national``, ``province:广东,浙江`` (or just ``广东``), optionally followed by
        ``;fields:food,motor-vehicle``. Provinces and fields may be written in Chinese."""
        national = False
        provinces: set[str] = set()
        fields: set[str] = set()
        parts = [p.strip() for p in text.replace("；", ";").replace("：", ":").split(";") if p.strip()]
        if not parts:
            raise ScopeError("empty scope: write national, or province:<names>")
        for part in parts:
            key, _, value = part.partition(":") if ":" in part else part.partition("=")
            key = key.strip().lower()
            if not value and key in ("national", "全国"):
                national = True
                continue
            if not value:
                key, value = "province", part
            names = [n.strip() for n in value.replace("，", ",").replace("、", ",").split(",") if n.strip()]
            if key in ("province", "provinces", "省份"):
                for name in names:
                    province = resolve_province(name)
                    if province is None:
                        raise ScopeError(f"unknown province {name!r}")
                    provinces.add(province)
            elif key in ("field", "fields", "领域"):
                for name in names:
                    field = resolve_field(name)
                    if field is None:
                        raise ScopeError(f"unknown field {name!r}")
                    fields.add(field)
            else:
                raise ScopeError(f"unknown scope part {part!r} (use national, province:…, fields:…)")
        if national and provinces:
            raise ScopeError("a scope is either national or a list of provinces, not both")
        return cls(national, frozenset(provinces), frozenset(fields))
