"""A regulator's ``Scope`` (the domain's: national, provinces, fields) as SQL."""

from __future__ import annotations

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
