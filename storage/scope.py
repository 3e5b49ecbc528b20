"""A regulator's ``Scope`` (the domain's: national, provinces, fields) as SQL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.core.scope import Scope


def scope_where(scope: Scope, alias: str = "institutions") -> tuple[str, list[object]]:
    """A WHERE condition (and its parameters) selecting the institutions in ``scope``;
    ``alias`` names the ``institutions`` table in the query. ``fields`` is stored as a JSON
    array, searched with json_each."""
    clauses: list[str] = []
    params: list[object] = []
    if not scope.national:
        _in_provinces(alias, scope.provinces, clauses, params)
    if scope.fields:
        _in_fields(alias, scope.fields, clauses, params)
    return (" AND ".join(clauses) or "1"), params


def _in_provinces(alias: str, provinces: Iterable[str], clauses: list[str], params: list[object]) -> None:
    names = sorted(provinces)
    clauses.append(f"{alias}.province IN ({', '.join('?' for _ in names)})")
    params += names


def _in_fields(alias: str, fields: Iterable[str], clauses: list[str], params: list[object]) -> None:
    """One of ``fields`` among the institution's (stored as a JSON array)."""
    ids = sorted(fields)
    marks = ", ".join("?" for _ in ids)
    clauses.append(f"EXISTS (SELECT 1 FROM json_each({alias}.fields) WHERE json_each.value IN ({marks}))")
    params += ids


def coverage_where(coverage: Any, alias: str = "institutions") -> tuple[str, list[object]]:
    """A WHERE condition selecting the institutions a campaign's ``Coverage``
    (bot.core.campaigns) covers, as ``Coverage.covers`` decides for one: its level, one
    of its provinces if it names any, one of its fields if it names any. ``None`` (no
    campaign): every institution."""
    if coverage is None:
        return "1", []
    clauses = [f"{alias}.level = ?"]
    params: list[object] = [coverage.level]
    if coverage.provinces:
        _in_provinces(alias, coverage.provinces, clauses, params)
    if coverage.fields:
        _in_fields(alias, coverage.fields, clauses, params)
    return " AND ".join(clauses), params
