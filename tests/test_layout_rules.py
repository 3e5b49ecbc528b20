"""House rules checked on the source: only ``storage/`` speaks SQL.

The detector reads every module under ``bot/`` (with ``storage/``, the installed
application) with ``ast`` and reports
(1) an ``execute``/``executescript``/``executemany``/``query`` call whose SQL is written
right there (a string literal or f-string), and (2) any string literal (docstrings aside)
that reads like SQL: ``SELECT … FROM``, ``INSERT INTO``, ``UPDATE … SET``, ``DELETE FROM``,
``CREATE TABLE``/``INDEX``, ``DROP``/``ALTER TABLE``, ``PRAGMA``, ``json_each(``.
``tests/`` and ``bench/`` are not scanned: they build and inspect fixture databases
directly, as a test of storage must.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("bot",)

# No file outside storage/ may hold SQL: there is no allow-list (none was needed since the engine
# moved every query into storage/); a new exception would have to argue for one here.

SQL_PATTERNS = [
    re.compile(p)
    for p in (
        r"\bSELECT\b[\s\S]*\bFROM\b",
        r"\bINSERT\s+(OR\s+[A-Z]+\s+)?INTO\b",
        r"\bUPDATE\s+\S+\s+SET\b",
        r"\bDELETE\s+FROM\b",
        r"\bCREATE\s+(UNIQUE\s+)?(TABLE|INDEX|VIEW|TRIGGER)\b",
        r"\b(DROP|ALTER)\s+TABLE\b",
        r"\bPRAGMA\s+[a-z_]+",
        r"\bjson_each\(",
    )
]
CALLS = {"execute", "executescript", "executemany", "query"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
        # attribute docstrings: a bare string right after an assignment
        if hasattr(node, "body") and isinstance(node.body, list):
            for stmt in node.body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    ids.add(id(stmt.value))
    return ids


def _literal_text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def sql_in(source: str) -> list[tuple[int, str]]:
    """(line, what) for every piece of SQL in ``source``."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found: list[tuple[int, str]] = []
    inside_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside_fstring.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CALLS
            and node.args
            and _literal_text(node.args[0]) is not None
        ):
            found.append((node.lineno, f".{node.func.attr}() with SQL written here"))
            continue
        if id(node) in skip or id(node) in inside_fstring:
            continue
        text = _literal_text(node)
        if text is not None and any(p.search(text) for p in SQL_PATTERNS):
            found.append((getattr(node, "lineno", 0), text.strip().splitlines()[0][:60]))
    return sorted(set(found))


def test_no_sql_outside_storage() -> None:
    offenders = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            offenders += [f"{rel}:{line}: {what}" for line, what in sql_in(path.read_text(encoding="utf-8"))]
    assert not offenders, "SQL belongs in storage/:\n" + "\n".join(offenders)


def test_the_detector_finds_sql_and_leaves_prose_alone() -> None:
    assert sql_in('db.execute("SELECT 1")')
    assert sql_in('conn.execute(f"UPDATE t SET x = {y}")')
    assert sql_in('db.query("anything")')
    assert sql_in('Q = """SELECT a\n FROM t"""')
    assert sql_in('w = f"EXISTS (SELECT 1 FROM json_each({a}.fields))"')
    assert sql_in('x = "DELETE FROM outbox"')
    assert sql_in('x = "PRAGMA integrity_check"')
    assert not sql_in('"""Checked with PRAGMA integrity_check, then renamed."""')
    assert not sql_in('x = _("Select the items from the list")')
    assert not sql_in("db.execute(sql, params)")
