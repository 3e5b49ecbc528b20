"""Each way a deployment commonly goes wrong stops (or degrades) Zicha with one plain
sentence saying what to fix: no traceback, no token."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from bot.ops import fonts
from bot.ops.fonts import MISSING_FONT, fonts_ok
from storage.db import open_db, utcnow
from tests.conftest import REPO
from tests.harness import free_port
from tests.standin import TelegramStandin

TOKEN = "42:TEST"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    db_path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)
    for name in ("TELEGRAM_API_URL", "ZICHA_WEBHOOK_URL", "ZICHA_WEBHOOK_SECRET", "ZICHA_CHECKLIST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZICHA_DB", str(db_path))
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    # No Telegram at this address: a test that gets past its failure point fails fast.
    monkeypatch.setenv("TELEGRAM_API_URL", f"http://127.0.0.1:{free_port()}")
    yield db_path
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "zicha"]:
        root.removeHandler(handler)  # `run` logged to CliRunner's stream, closed by now


def one_sentence(result: Result | str) -> str:
    """The error line; asserts it is the only thing said and that nothing leaked."""
    output = result if isinstance(result, str) else result.output
    assert "Traceback" not in output, output
    assert TOKEN not in output
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, output
    return errors[0]


@pytest.fixture
def standin_thread() -> Iterator[TelegramStandin]:
    """The stand-in on its own event loop in a thread, so that CliRunner can run `zicha run` here."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    tg = TelegramStandin()
    asyncio.run_coroutine_threadsafe(tg.start(), loop).result(10)
    try:
        yield tg
    finally:
        asyncio.run_coroutine_threadsafe(tg.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_a_wrong_token_says_so(env: Path, standin_thread: TelegramStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "43:ThisTokenWasRevokedByBotFather"
    monkeypatch.setenv("BOT_TOKEN", wrong)
    monkeypatch.setenv("TELEGRAM_API_URL", standin_thread.base_url)
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1
    assert wrong not in result.output
    line = one_sentence(result)
    assert "Telegram rejected BOT_TOKEN (401 Unauthorized)" in line and "@BotFather" in line
    assert [c.status for c in standin_thread.calls("getMe")] == [401]


def test_an_unreachable_bot_api_says_so(env: Path) -> None:
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1
    line = one_sentence(result)
    assert f"Cannot reach the Telegram Bot API at {os.environ['TELEGRAM_API_URL']}" in line
    assert "TELEGRAM_API_URL" in line


def test_a_corrupt_database_says_restore_a_backup(env: Path) -> None:
    env.write_bytes(b"SQLite format 2\x00" + b"\x17" * 8192)
    for args in (["run"], ["status"], ["invites"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1
        line = one_sentence(result)
        assert "damaged or is not a SQLite database" in line and "zicha restore" in line


@pytest.fixture
def read_only(env: Path) -> Iterator[Path]:
    """The database file made read-only, even for root (immutable attribute)."""
    open_db(env).close()
    if os.geteuid() != 0:
        env.chmod(0o444)
        yield env
        env.chmod(0o644)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(env)], capture_output=True).returncode:
        pytest.skip("running as root without chattr +i: a read-only file cannot be made")
    try:
        yield env
    finally:
        subprocess.run(["chattr", "-i", str(env)], check=True)


def test_a_read_only_database_says_what_to_fix(read_only: Path) -> None:
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1
    line = one_sentence(result)
    assert "it is read-only" in line and "write to it and to its folder" in line


def test_a_bad_checklist_file_is_named_with_the_problem(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.telegram.app as app_module

    broken = tmp_path / "checklists"
    broken.mkdir()
    text = (REPO / "checklists" / "samr-2023-national.toml").read_text(encoding="utf-8")
    (broken / "samr-2023-national.toml").write_text(text.replace("\nid = ", "\nbogus_key = 1\nid = ", 1), "utf-8")
    original = app_module.data_dir
    monkeypatch.setattr(app_module, "data_dir", lambda name: broken if name == "checklists" else original(name))
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1
    line = one_sentence(result)
    assert "samr-2023-national.toml" in line and "bogus_key" in line and "zicha checklist validate" in line


def test_webhook_mode_without_a_url_says_which_variable(env: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "--webhook"])
    assert result.exit_code == 1
    assert "ZICHA_WEBHOOK_URL is not set" in one_sentence(result)
    bad = CliRunner().invoke(cli, ["run", "--webhook"], env={"ZICHA_WEBHOOK_SECRET": "has space"})
    assert "ZICHA_WEBHOOK_SECRET" in one_sentence(bad)


def test_a_missing_cjk_font_degrades_with_one_sentence(env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # fontconfig present but no Chinese font; no fontconfig and no font files.
    assert fonts_ok(which=lambda _: "/usr/bin/fc-list", run=lambda _: "") == (False, MISSING_FONT)
    assert fonts_ok(which=lambda _: None, font_dirs=(tmp_path,)) == (False, MISSING_FONT)
    (tmp_path / "NotoSansCJK-Regular.ttc").write_bytes(b"")
    assert fonts_ok(which=lambda _: None, font_dirs=(tmp_path,))[0] is True
    assert fonts_ok(which=lambda _: "fc-list", run=lambda _: "Noto Sans CJK SC,Noto Sans CJK SC Regular\n")[0]

    monkeypatch.setattr(fonts, "cjk_fonts", lambda **_: [])
    # The bot goes on (here to the next problem, no Telegram), having said it once.
    result = CliRunner().invoke(cli, ["run"])
    assert result.output.count(MISSING_FONT) == 1
    assert "Cannot reach the Telegram Bot API" in one_sentence(result)
    status = CliRunner().invoke(cli, ["status"])
    assert f"cjk font  degraded: {MISSING_FONT}" in status.output


def test_status_reports_the_running_bot_and_fails_when_it_is_not(env: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["status"])
    assert missing.exit_code == 1 and "No database at" in one_sentence(missing)
    assert not env.exists(), "status does not create a database"
    open_db(env).close()
    never = runner.invoke(cli, ["status"])
    assert never.exit_code == 1 and "has never run" in never.output and "UNHEALTHY" in never.output
    db = open_db(env)
    db["heartbeat"].insert(
        {"role": "bot", "pid": 4321, "mode": "webhook", "started_at": utcnow(), "beat_at": utcnow(), "scheduler": "running"}
    )
    db.close()
    fine = runner.invoke(cli, ["status", "--json"])
    assert fine.exit_code == 0, fine.output
    assert '"healthy": true' in fine.output and "pid 4321" in fine.output
    text = runner.invoke(cli, ["status"]).output
    assert "scheduler" in text and "running" in text and "outbox" in text and "database" in text
    db = open_db(env)
    db.execute("UPDATE heartbeat SET beat_at = '2020-01-01T00:00:00+00:00'")
    db.conn.commit()
    db.close()
    stale = runner.invoke(cli, ["status"])
    assert stale.exit_code == 1 and "crashed or hung" in stale.output
