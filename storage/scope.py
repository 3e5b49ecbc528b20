"""A regulator's ``Scope`` (the domain's: national, provinces, fields) as SQL."""

from __future__ import annotations

from typing import Any

from bot.core.scope import Scope


def scope_where(scope: Scope, alias: str = "institutions") -> tuple[str, list[object]]:
    """A WHERE condition (and its parameters) selecting the institutions in ``scope``;
    ``alias`` names the ``institutions`` table in the query. ``fields`` is stored as a JSON
    array, searched with json_each."""
    clauses: list[str] = []
    params: list[object] = []
    if not scope.national:
        clauses.append(f"{alias}.province IN ({', '.join('?' for _ in scope.provinces)})")
        params += sorted(scope.provinces)
    if scope.fields:
        marks = ", ".join("?" for _ in scope.fields)
        clauses.append(f"EXISTS (SELECT 1 FROM json_each({alias}.fields) WHERE json_each.value IN ({marks}))")
        params += sorted(scope.fields)
    return (" AND ".join(clauses) or "1"), params


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
        clauses.append(f"{alias}.province IN ({', '.join('?' for _ in coverage.provinces)})")
        params += sorted(coverage.provinces)
    if coverage.fields:
        marks = ", ".join("?" for _ in coverage.fields)
        clauses.append(f"EXISTS (SELECT 1 FROM json_each({alias}.fields) WHERE json_each.value IN ({marks}))")
        params += sorted(coverage.fields)
    return " AND ".join(clauses), params
