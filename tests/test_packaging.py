"""An installed Zicha (a wheel, not the source tree) finds its checklists and translations
from any working directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # kills, restarts or builds: `pytest -m "not slow"` skips it

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_its_data_and_runs_from_another_directory(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(tmp_path.glob("zicha-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "bot/_data/checklists/samr-2023-national.toml" in names
    assert "bot/_data/locales/zh_CN/LC_MESSAGES/messages.mo" in names
    assert "bot/_data/locales/en/LC_MESSAGES/messages.mo" in names
    assert "storage/migrations.py" in names
    assert not any(n.startswith("tests/") for n in names)

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = os.environ | {"PYTHONPATH": str(unpacked), "ZICHA_DB": str(elsewhere / "z.db")}
    script = (
        "import bot, sys; from bot.cli import main; "
        "assert bot.__file__.startswith(sys.argv[1]), bot.__file__; "
        "sys.argv = ['zicha', 'checklist', 'show', 'samr-2023-national', '--locale', 'en']; main()"
    )
    shown = subprocess.run([sys.executable, "-c", script, str(unpacked)], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "2023 self-check" in shown.stdout
    chat = subprocess.run(
        [sys.executable, "-c", "import sys; from bot.cli import main; sys.argv=['zicha','chat','--demo']; main()"],
        cwd=elsewhere,
        env=env,
        input="1\nq\n",
        capture_output=True,
        text=True,
    )
    assert chat.returncode == 0, chat.stderr
    assert "第 2/" in chat.stdout  # the zh_CN catalog was found inside the installed package
