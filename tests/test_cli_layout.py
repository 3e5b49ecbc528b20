"""The CLI as a package by command group (issue 10): every command documents itself, a
--scope is parsed by one option type, and both entry points still start it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.cli.options import SCOPE, ScopeParameterError
from bot.core.scope import Scope
from tests.conftest import REPO


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name in sorted(group.commands):
        command = group.commands[name]
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found.extend(commands(command, (*path, name)))
    return found


def test_the_command_set_is_the_one_the_readme_lists() -> None:
    top = set(cli.commands)
    assert top == {
        "backup", "broadcast", "campaign", "chat", "checklist", "digest", "export", "invites", "keys", "pledge",
        "regulator", "remind", "restore", "roster", "run", "sample", "staff", "status", "verify", "web", "web-links", "web-reissue",
        "web-revoke",
    }  # fmt: skip
    assert set(cli.commands["checklist"].commands) == {"validate", "show", "import", "export"}  # type: ignore[attr-defined]
    assert set(cli.commands["regulator"].commands) == {"add", "list", "remove", "invite"}  # type: ignore[attr-defined]
    assert set(cli.commands["sample"].commands) == {"draw", "list", "show", "result"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("path", "command"), commands(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_and_option_explains_itself_in_help(path: tuple[str, ...], command: click.Command) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="zicha")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: zicha {' '.join(path)} ")
    # A sentence of its own, not only the usage line.
    assert (command.help or "").strip().endswith((".", ")", ":")) or "\n" in (command.help or "").strip()
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"zicha {' '.join(path)} {param.opts[0]} has no help"


def test_a_scope_is_parsed_once_with_a_clear_error() -> None:
    assert SCOPE.convert("广东省", None, None) == Scope.parse("province:广东")
    with pytest.raises(ScopeParameterError, match="unknown province '火星'"):
        SCOPE.convert("火星", None, None)
    result = CliRunner().invoke(cli, ["export", "--scope", "火星", "-o", "x.xlsx"], prog_name="zicha")
    assert result.exit_code == 1
    assert "Error: Invalid value for '--scope': unknown province '火星'" in result.output
    assert "Traceback" not in result.output
    usage = CliRunner().invoke(cli, ["broadcast", "--help"], prog_name="zicha").output
    assert "--scope SCOPE" in usage


def test_both_entry_points_start_the_cli() -> None:
    script = Path(sys.executable).parent / "zicha"  # [project.scripts] zicha = "bot.cli:main"
    for argv in ([sys.executable, "-m", "bot", "--help"], *([[str(script), "--help"]] if script.exists() else [])):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)
        assert done.returncode == 0, done.stderr
        assert "Usage: zicha [OPTIONS] COMMAND" in done.stdout and "checklist" in done.stdout
