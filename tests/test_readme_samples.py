"""The README's terminal samples are what the commands print.

Each sample here is a ```text block of README.md that starts with ``$ zicha …``; the command runs
against a fresh database and its output is compared line by line. In the README, a line ``...``
ends the comparison (the rest of the output is left out) and ``……`` inside a line stands for
text left out of that line.
"""

from __future__ import annotations

import csv
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.core.roster import ROSTER_COLUMNS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_sample(command: str) -> list[str]:
    """The lines the README shows after ``$ <command>``, up to the next prompt or the block's end."""
    for block in re.findall(r"```text\n(.*?)```", README, re.S):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.strip() == f"$ {command}":
                shown: list[str] = []
                for following in lines[i + 1 :]:
                    if following.startswith("$ "):
                        break
                    shown.append(following)
                while shown and not shown[-1].strip():
                    shown.pop()
                return shown
    raise AssertionError(f"the README shows no sample of `{command}`")


def matches(shown: str, printed: str) -> bool:
    pieces = shown.split("……")
    if len(pieces) == 1:
        return shown == printed
    position = 0
    for piece in pieces:
        found = printed.find(piece, position)
        if found < 0:
            return False
        position = found + len(piece)
    return printed.startswith(pieces[0])


def assert_prints_as_the_readme_shows(command: str, output: str) -> None:
    shown = readme_sample(command)
    printed = output.rstrip("\n").splitlines()
    for number, line in enumerate(shown):
        if line.strip() == "...":
            return
        assert number < len(printed), f"`{command}` printed fewer lines than the README shows:\n{output}"
        assert matches(line, printed[number]), (
            f"`{command}`, line {number + 1}:\n README: {line}\n printed: {printed[number]}"
        )
    assert len(printed) == len(shown), f"`{command}` printed more than the README shows:\n{output}"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "ZICHA_TIMEZONE", "ZICHA_LOCALE", "ZICHA_BOT_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZICHA_DB", str(tmp_path / "zicha.db"))
    return tmp_path


def run(command: str) -> str:
    args = shlex.split(command)
    assert args[0] == "zicha"
    result = CliRunner().invoke(cli, args[1:])
    return result.output


def write_roster(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ROSTER_COLUMNS)
        writer.writerows(rows)


def test_checklist_show_prints_what_the_readme_shows(env: Path) -> None:
    command = "zicha checklist show samr-2023-national --field food"
    assert_prints_as_the_readme_shows(command, run(command))


def test_roster_import_prints_what_the_readme_shows(env: Path) -> None:
    write_roster(
        env / "bad.csv",
        [["北京某机动车检测有限公司", "91110108MA01A2B32A", "23000000001", "北京", "national", "astrology", "张三", "13812345678"]],
    )
    write_roster(
        env / "roster.csv",
        [
            ["北京某机动车检测有限公司", "91110108MA01A2B32G", "230000000001", "北京", "national", "motor-vehicle", "张三", "13812345678"],
            ["广东某食品检验中心", "124400004556873123", "230000000002", "广东", "provincial", "food", "李四", "020-12345678"],
        ],
    )
    for command in ("zicha roster import bad.csv", "zicha roster import roster.csv"):
        assert_prints_as_the_readme_shows(command, run(command))
