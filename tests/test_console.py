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


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])
def test_a_line_that_is_not_utf8_is_refused_politely_and_the_chat_goes_on(errors: str, tmp_path: Path) -> None:
    """A GBK terminal (or a file in another encoding): with strict decoding the line raised
    out of input() and ended the chat with a traceback; decoded with surrogate escapes (the
    C locale) its lone surrogates reached SQLite and the answer failed. Either way now the
    line is refused with a message and the next one is answered."""
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    env = os.environ | {"ZICHA_DB": str(tmp_path / "demo.db"), "PYTHONPATH": str(REPO), "PYTHONIOENCODING": f"utf-8:{errors}"}
    env.pop("BOT_TOKEN", None)
    chat = subprocess.Popen([sys.executable, "-m", "bot", "chat", "--demo"], cwd=tmp_path, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    assert chat.stdin is not None and chat.stdout is not None
    try:
        os.set_blocking(chat.stdout.fileno(), False)
        seen = b""

        def wait_for(needle: bytes, timeout: float = 60) -> None:
            nonlocal seen
            end = time.monotonic() + timeout
            while needle not in seen and time.monotonic() < end:
                seen += chat.stdout.read() or b""
                time.sleep(0.05)
            assert needle in seen, seen.decode(errors="replace")[-800:]

        wait_for("第 1/".encode())
        chat.stdin.write(b"1\n")
        chat.stdin.flush()
        wait_for("第 2/".encode())  # a typed answer: the name of the self-check's contact
        chat.stdin.write("王五\n".encode("gbk"))  # one line at a time, as a terminal sends them
        chat.stdin.flush()
        wait_for("无法读取该行".encode() if errors == "strict" else "消息为空".encode())
        chat.stdin.write("王五\nq\n".encode())
        chat.stdin.flush()
        wait_for("再见".encode())
        assert chat.wait(timeout=30) == 0
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.wait()
        chat.stdin.close()
        chat.stdout.close()
    assert b"Traceback" not in seen and "出错".encode() not in seen, seen.decode(errors="replace")[-800:]
    assert "第 3/".encode() in seen
    db = open_db(tmp_path / "demo.db")
    assert db["answers"].count == 2 and {r["text"] for r in db["answers"].rows} == {None, "王五"}


def test_ctrl_c_ends_the_chat_at_once_with_its_goodbye(tmp_path: Path) -> None:
    """Ctrl-C while the chat waits for a line: it used to hang until Enter (the thread
    blocked in input() kept the interpreter waiting), then end with "Aborted!"."""
    import os
    import pty
    import select
    import signal
    import sys
    import time

    from tests.conftest import REPO

    env = os.environ | {"ZICHA_DB": str(tmp_path / "demo.db"), "PYTHONPATH": str(REPO)}
    env.pop("BOT_TOKEN", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the chat on a terminal
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "bot", "chat", "--demo"], env)
    seen = b""

    def read_until(needle: bytes, timeout: float) -> bool:
        nonlocal seen
        end = time.monotonic() + timeout
        while needle not in seen and time.monotonic() < end:
            ready, _w, _x = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
        return needle in seen

    done = 0
    try:
        assert read_until("第 1/".encode(), 60), seen.decode(errors="replace")
        os.kill(pid, signal.SIGINT)  # what Ctrl-C sends
        started = time.monotonic()
        assert read_until("再次运行".encode(), 10) or read_until(b"Bye", 1), seen.decode(errors="replace")[-500:]
        for _ in range(50):
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        assert done, "still running after Ctrl-C"
        assert time.monotonic() - started < 8
        assert b"Aborted" not in seen and b"Traceback" not in seen
    finally:
        if not done:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
