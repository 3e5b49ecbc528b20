"""``zicha chat``: the same handlers in a terminal, with no token and no network."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from storage.db import open_db


def test_demo_chat_answers_items_and_resumes_in_a_second_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZICHA_DB", str(tmp_path / "demo.db"))
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    runner = CliRunner()
    first = runner.invoke(cli, ["chat", "--demo"], input="1\n王五\n13812345678\n1\nq\n")
    assert first.exit_code == 0, first.output
    assert "演示检验检测有限公司" in first.output and "第 1/" in first.output and "第 5/" in first.output
    assert "[1] 是，信息无误" in first.output
    second = runner.invoke(cli, ["chat"], input="/progress\nq\n")
    assert second.exit_code == 0, second.output
    assert "第 5/" in second.output and "进度：4/" in second.output
    db = open_db(tmp_path / "demo.db")
    assert {r["value"] for r in db["answers"].rows} == {"yes", "text", "compliant"}
    assert db["answers"].count == 4


def test_console_chat_in_english(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZICHA_DB", str(tmp_path / "demo.db"))
    monkeypatch.setenv("ZICHA_LOCALE", "en")
    result = CliRunner().invoke(cli, ["chat", "--demo"], input="2\nThe CMA number is wrong\nq\n")
    assert result.exit_code == 0, result.output
    assert "Item 1/" in result.output and "No, needs correction" in result.output and "Item 2/" in result.output
