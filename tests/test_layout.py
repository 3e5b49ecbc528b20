"""How the house is laid out: the conversation engine and the domain know no channel, and
no module of bot/ or storage/ imports itself back through others (no import cycles, not
even through imports inside functions)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

CHANNELS = ("aiogram", "bot.telegram", "bot.console", "bot.web")
# No import cycles: any cycle fails.
KNOWN_CYCLES = (
)
CHANNEL_FREE = ("bot/conversation", "bot/core")


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in ("bot", "storage"):
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """Every module ``path`` imports, anywhere in it (functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_engine_and_the_domain_import_no_channel_in_their_source() -> None:
    known = modules()
    offenders = [
        f"{name} imports {dep}"
        for name, path in known.items()
        if path.relative_to(REPO).as_posix().startswith(CHANNEL_FREE)
        for dep in imported(path, known)
        if dep.startswith(CHANNELS)
    ]
    assert offenders == []


def test_the_engine_and_the_domain_pull_in_no_channel_when_imported() -> None:
    """Transitively too: importing every engine and domain module loads no aiogram."""
    names = [n for n, p in modules().items() if p.relative_to(REPO).as_posix().startswith(CHANNEL_FREE)]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({CHANNELS!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


def test_no_import_cycles_among_bot_and_storage_modules() -> None:
    known = modules()
    graph = {name: {d for d in imported(path, known) if d in known and d != name} for name, path in known.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert [c for c in cycles if frozenset(c) not in KNOWN_CYCLES] == []


def test_the_engine_handlers_only_decode_and_render() -> None:
    """The Telegram handlers over the engine stay short: no rules in them."""
    long: list[str] = []
    for module, names in (
        ("bot/telegram/routers/interview.py", None),
        ("bot/telegram/routers/pledge.py", {"cmd_pledge", "on_paper", "cmd_verify"}),
        ("bot/telegram/routers/common.py", None),  # /start, joining, /help, /language: bot/conversation/onboarding.py
        ("bot/telegram/routers/onboarding.py", None),
        # (joining as a regulator, on_regulator_join, is onboarding's, not the desk's)
        ("bot/telegram/routers/regulator.py", {
            "cmd_status", "cmd_overdue", "cmd_institution", "cmd_export", "cmd_broadcast", "cmd_cancel", "cmd_sample",
            "on_typed", "on_not_typed",
        }),
        ("bot/telegram/routers/broadcast.py", None),
        ("bot/telegram/routers/presses.py", None),
    ):
        tree = ast.parse((REPO / module).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.AsyncFunctionDef) and (names is None or node.name in names):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 15:
                    long.append(f"{module}:{node.name} ({length} lines)")
    assert long == []
