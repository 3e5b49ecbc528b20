"""``zicha chat`` on the 2025 table (ZICHA_CAMPAIGN=samr-2025-national): every new kind
answered by keys and typed lines, hostile input refused with the reason and nothing
stored, the same as in Telegram."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from storage.db import open_db


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZICHA_DB", str(tmp_path / "demo.db"))
    monkeypatch.setenv("ZICHA_CAMPAIGN", "samr-2025-national")
    for name in ("BOT_TOKEN", "ZICHA_LOCALE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "demo.db"


def answers(db_path: Path) -> dict[str, tuple[str, str | None]]:
    db = open_db(db_path)
    try:
        return {r["item_id"]: (r["value"], r["text"]) for r in db["answers"].rows}
    finally:
        db.close()


def test_every_new_kind_in_the_console_with_hostile_input(env: Path) -> None:
    keys = [
        "1", "王五", "质量负责人",  # confirm, two text items
        "3", "1", "3", "4",  # multiple choice: toggle 3, 1, 3 again (off), then [4] 完成
        "2025-02-30", "二〇二七年", "2027/6/30",  # date: impossible, unreadable, then good
        "见附件",  # attachment: text refused
        "n",  # skip it (the console sends no files)
        "0", "abc", "12,5",  # number: out of range, not a number, a decimal comma
        "2",  # yes/no: [2] 否
        "q",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, ["chat", "--demo"], input="\n".join(keys) + "\n")
    out = result.output
    assert result.exit_code == 0, out
    assert "[1] ☐ 检验检测机构资质认定证书（CMA）  [2] ☐ CNAS 实验室认可证书  [3] ☐ 行业主管部门许可或资质  [4] ✔ 完成" in out
    assert "已选：检验检测机构资质认定证书（CMA）、行业主管部门许可或资质" in out
    assert "日期“2025-02-30”不存在，请核对月份和日期。 未保存任何内容。" in out
    assert "请按“年-月-日”格式输入日期，例如 2025-06-30。 未保存任何内容。" in out
    assert "本项需要上传文件，请以照片或文件形式发送，文字答复不能代替。 未保存任何内容。" in out
    assert "数值不能小于 1 人。 未保存任何内容。" in out
    assert "“abc”不是数字，请只输入数字，如 12 或 12.5。 未保存任何内容。" in out
    assert "已保存：12.5 人" in out
    assert "Traceback" not in out
    stored = answers(env)
    assert stored["header-certs"] == ("selected", "cma")
    assert stored["header-cma-expiry"] == ("date", "2027-06-30")
    assert "header-cma-scan" not in stored  # the typed text was not taken as the file
    assert stored["header-staff"] == ("number", "12.5")
    assert stored["header-sites"] == ("negative", None)
    db = open_db(env)
    try:
        assert db["answer_history"].count == len(stored)  # one row per answer, none for a refusal
    finally:
        db.close()


def test_the_console_in_english_shows_the_kinds_in_english(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZICHA_LOCALE", "en")
    keys = ["1", "Wang Wu", "Quality manager", "1", "4", "2027-06-30", "photo please", "q"]
    result = CliRunner().invoke(cli, ["chat", "--demo"], input="\n".join(keys) + "\n")
    out = result.output
    assert result.exit_code == 0, out
    assert "[1] ☐ CMA certificate" in out and "✔ Done" in out and "Choose every option that applies, then press Done." in out
    assert "Saved: June 30, 2027" in out
    assert "This item needs a file: please send it as a photo or a document. A typed message cannot replace it. Nothing was saved." in out
    assert answers(env)["header-certs"] == ("selected", "cma")
