"""``zicha chat`` does what the bot does: it saves the files the bot sends (the signed
pledge, a regulator's workbook), keeps its button keys stable, speaks the user's language
and never prints a traceback. Driven by keystrokes, as a user types them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.console import CONSOLE_USER_ID
from bot.core.checklist import load_checklist
from bot.demo import DEMO_ROW, DEMO_USCC, seed_demo
from bot.pledge.render import ATTACHMENT_NAME
from bot.pledge.signing import SigningSettings, check_signature, identity
from storage.db import open_db
from tests.conftest import SHIPPED_CHECKLIST
from tests.pledge_support import fill


@pytest.fixture
def demo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZICHA_DB", str(tmp_path / "demo.db"))
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    monkeypatch.delenv("ZICHA_LOCALE", raising=False)
    return tmp_path / "demo.db"


def key_line(output: str, marker: str) -> str:
    """The button line of the first screen whose text contains ``marker``."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if marker in line)
    return next(line for line in lines[start:] if line.startswith("[")).strip()


def test_the_signed_pledge_is_saved_as_a_file_each_time_the_bot_sends_it(demo_env: Path, tmp_path: Path) -> None:
    db = open_db(demo_env)
    institution = seed_demo(db, CONSOLE_USER_ID)
    fill(db, load_checklist(SHIPPED_CHECKLIST), institution, by=CONSOLE_USER_ID, leave=0)
    db.close()
    # The summary: [1] sign. Then the name, [1] legal representative, [1] confirm and sign;
    # /pledge sends the PDF again, and so does its 📄 button ([1] on the signed screen).
    keys = "1\n张三\n1\n1\n/pledge\n1\nq\n"
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "ZICHA_LOCALE")} | {"ZICHA_DB": str(demo_env)}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "chat"], input=keys, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr  # no log line, no traceback
    out = done.stdout
    for english in ("ClientDecodeError", "could not send", "Traceback", "Bye.", "Created a self-signed", "(updated)"):
        assert english not in out, out
    assert "已创建用于签署承诺书的自签名密钥" in out and "再见。您的答案均已保存" in out
    assert "承诺书已签署" in out
    files = list((tmp_path / "zicha-files").iterdir())
    assert len(files) == 1 and files[0].name.startswith(f"pledge-{DEMO_USCC}-") and files[0].suffix == ".pdf"
    assert out.count(f"已保存文件：./zicha-files/{files[0].name}") == 3, out
    # It is the stored, signed PDF, trusted by this deployment's certificate.
    db = open_db(demo_env)
    stored = db.execute("SELECT content FROM submission_files WHERE kind = 'signed_pdf'").fetchone()[0]
    assert files[0].read_bytes() == bytes(stored)
    ident = identity(SigningSettings(zicha_db=demo_env), db_path=demo_env)
    assert check_signature(files[0].read_bytes(), ident.cert, ATTACHMENT_NAME).ok
    assert db["submissions"].count == 1


def test_a_regulator_gets_the_workbook_as_a_file_in_the_chosen_folder(demo_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    added = runner.invoke(cli, ["regulator", "add", "--telegram-id", str(CONSOLE_USER_ID), "--scope", "national"])
    assert added.exit_code == 0, added.output
    db = open_db(demo_env)
    seed_demo(db, 77)  # an institution in scope, its staff someone else
    db.close()
    result = runner.invoke(cli, ["chat", "--files", "exports"], input="/export\nq\n")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "Error" not in result.output, result.output
    saved = list((tmp_path / "exports").glob("zicha-*.xlsx"))
    assert len(saved) == 1, result.output
    assert f"已保存文件：./exports/{saved[0].name}" in result.output
    assert "自查工作簿" in result.output  # the caption, as the bot sends it
    workbook = openpyxl.load_workbook(saved[0])
    assert any(DEMO_ROW.name in str(cell.value) for sheet in workbook for row in sheet.iter_rows() for cell in row)


def test_navigation_keys_do_not_move_and_item_one_offers_no_previous(demo_env: Path) -> None:
    # Item 1 (yes/no), answered: 1; items 2, 3 typed; item 4 (no 不适用) skipped with n until
    # item 10, the first offering 不适用; p goes back to item 9; n forward; 3 answers 不适用.
    keys = "1\n王五\n13812345678\n" + "n\n" * 6 + "p\nn\n3\nq\n"
    result = CliRunner().invoke(cli, ["chat", "--demo"], input=keys)
    assert result.exit_code == 0, result.output
    out = result.output
    first = key_line(out, "第 1/46 项")
    assert first == "[1] 是，信息无误  [2] 否，需要更正  [n] 暂时跳过 ▶  [g] 💡 填写指引  [c] 📋 目录  [r] 🔎 检查", first
    assert "上一项" not in first
    assert key_line(out, "第 4/46 项") == "[1] 符合  [2] 不符合  [p] ◀ 上一项  [n] 暂时跳过 ▶  [g] 💡 填写指引  [c] 📋 目录  [r] 🔎 检查"
    assert key_line(out, "第 10/46 项") == "[1] 符合  [2] 不符合  [3] 不适用  [p] ◀ 上一项  [n] 暂时跳过 ▶  [g] 💡 填写指引  [c] 📋 目录  [r] 🔎 检查"
    lines = out.splitlines()
    tenth = [i for i, line in enumerate(lines) if "第 10/46 项" in line]
    assert len(tenth) == 2 and any("第 9/46 项" in line for line in lines[tenth[0] : tenth[1]]), "p went back to item 9"
    assert "(已保存：不适用)" in out and "第 11/46 项" in out
    db = open_db(demo_env)
    values = {r["item_id"]: r["value"] for r in db["answers"].rows}
    assert values["lawful-07"] == "na" and len(values) == 4


def test_the_console_speaks_english_when_english_is_chosen(demo_env: Path) -> None:
    result = CliRunner().invoke(cli, ["chat", "--demo"], input="/language\n2\nq\n")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "演示机构已就绪" in out and "自查助手终端对话" in out  # before the switch: Chinese
    assert "Language set to English." in out and "Item 1/46" in out.split("Language set to English.")[1]
    assert out.rstrip().endswith("Bye. Your answers are saved; run the same command to continue.")


def test_on_a_screen_waiting_for_typed_text_a_number_is_the_answer_and_hash_keys_press() -> None:
    """A number item offering 与去年相同 (numbered 1): "1" typed there is the answer 1, not
    that button; "#1" presses it. Elsewhere "1" still presses button 1."""
    from bot.console import ConsoleChat
    from bot.conversation.actions import NavAction, Navigate, SameAsLastYear, TypeText
    from bot.conversation.screens import Button, Expect

    shown: list[str] = []
    chat = ConsoleChat(None, shown.append)  # type: ignore[arg-type]  # keys only: no engine needed
    chat.speaking = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # nor its translations
    carry = SameAsLastYear(sc=1, item="header-staff", fp="f", rev=0)
    buttons = [Button("与去年相同", carry), Button("◀ 上一项", Navigate(action=NavAction.PREV, sc=1, item="header-staff"))]
    chat.message("本机构在岗检验检测人员人数。", buttons=buttons, expects=Expect.TEXT)
    assert "[#1] 与去年相同  [p] ◀ 上一项" in shown
    assert chat.decode("1") == (TypeText(text="1"), None)
    pressed, origin = chat.decode("#1")
    assert pressed == carry.at(origin) and origin is not None
    assert isinstance(chat.decode("p")[0], Navigate)
    chat.message("是否符合？", buttons=buttons)  # a screen of buttons only
    assert chat.decode("1")[0] == carry.at(chat.screen_id)
