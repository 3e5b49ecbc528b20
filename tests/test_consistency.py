"""Things that drift unless a test holds them together."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner

from bot.cli import cli
from bot.core.checklist import load_checklists
from bot.i18n import build_i18n
from bot.telegram.app import BOT_COMMANDS, bot_commands

REPO = Path(__file__).resolve().parents[1]
LOCALES = REPO / "locales"


def extracted_ids() -> set[str]:
    """Message ids in the code, extracted with the README's pybabel keywords."""
    # as babel.cfg: Python code, and the jinja2 templates of the pledge and the web chat
    method_map = [("bot/**.py", "python"), ("bot/**/templates/**.html", "jinja2")]
    options_map = {"bot/**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": ((1,), (1, 2)), "__": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(REPO), method_map=method_map, options_map=options_map,
        keywords={"_": None, "__": None, "N_": None, "gettext": None},  # {% trans %} blocks call gettext
    ):
        found.add(message if isinstance(message, str) else message[0])
    del keywords
    return found


def test_the_template_matches_the_code() -> None:
    with open(LOCALES / "messages.pot", "rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    assert extracted_ids() == template, "run scripts/i18n.sh to refresh locales/"


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_each_catalog_has_every_message_and_its_compiled_file_is_current(locale: str) -> None:
    with open(LOCALES / "messages.pot", "rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    with open(LOCALES / locale / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f, locale=locale)
    assert {m.id for m in catalog if m.id} == template
    with open(LOCALES / locale / "LC_MESSAGES" / "messages.mo", "rb") as f:
        compiled = read_mo(f)
    assert {m.id: m.string for m in compiled if m.id and m.string} == {
        m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy
    }, "run scripts/i18n.sh compile"


def test_chinese_catalog_is_complete_and_keeps_placeholders() -> None:
    with open(LOCALES / "zh_CN" / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f, locale="zh_CN")
    for message in catalog:
        if not message.id:
            continue
        assert message.string, f"untranslated: {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.id!r}"
        placeholders = {p for p in ast.literal_eval(repr(message.id)).split("{")[1:]}
        for p in placeholders:
            name = "{" + p.split("}")[0] + "}"
            assert name in message.string, f"{name} missing in the translation of {message.id!r}"


def test_the_domain_core_does_not_import_aiogram() -> None:
    for path in (REPO / "bot" / "core").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            assert not any(n.split(".")[0] == "aiogram" for n in names), f"{path.name} imports aiogram"


def test_every_shipped_checklist_validates() -> None:
    assert "samr-2023-national" in load_checklists(REPO / "checklists")


def test_bot_commands_are_registered_in_both_languages_and_documented_in_help() -> None:
    i18n = build_i18n("zh_CN")
    zh = bot_commands(i18n, "zh_CN")
    en = bot_commands(i18n, "en")
    assert [c.command for c in zh] == [c.command for c in en] == list(BOT_COMMANDS)
    assert zh[0].description == "继续自查" and en[0].description == "Continue the self-check"
    from bot.telegram.routers.common import help_text

    with i18n.context(), i18n.use_locale("en"):
        text = help_text()
    for command in BOT_COMMANDS:
        assert f"/{command}" in text


def _commands(group: object, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for name, command in getattr(group, "commands", {}).items():
        full = f"{prefix} {name}".strip()
        found.append((full, command))
        found += _commands(command, full)
    return found


def test_every_cli_command_has_help_and_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    runner = CliRunner()
    for name, command in _commands(cli):
        result = runner.invoke(cli, [*name.split(), "--help"])
        assert result.exit_code == 0, result.output
        assert getattr(command, "help", None), f"zicha {name} has no help text"
        assert f"zicha {name}" in readme, f"zicha {name} is not documented in README.md"


def test_the_module_runs_as_zicha() -> None:
    result = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and "Usage: zicha" in result.stdout
    assert io  # keep the import list honest for linters
