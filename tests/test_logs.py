"""Structured logs: one JSON line per update with its update id and institution id, and
never the token or what the user typed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from bot.ops.logs import JsonFormatter, TextFormatter, setup_logging
from storage.institutions import Institution
from tests.harness import Chat, invite, running_bot
from tests.standin import TelegramStandin

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = setup_logging(fmt="json", level="INFO", secrets=[TOKEN], stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


async def test_an_interview_step_is_logged_with_update_ids_but_no_text_and_no_token(
    captured: io.StringIO, db: sqlite_utils.Database, tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with TelegramStandin(token=TOKEN) as tg, running_bot(tg, db_path):
        chat = Chat(tg, 8181, first_name="张小红")
        await chat.say(f"/start {code}")
        await chat.press("是，这是我的机构")
        await chat.press("是，信息无误")
        await chat.say("王小明")
        await chat.say("13812345678")
        delivered = [u["update_id"] for c in tg.calls("getUpdates") if c.ok for u in c.result]
    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    updates = {line["update_id"]: line for line in lines if line.get("event") == "update"}
    assert set(delivered) <= set(updates), "every update has its line"
    assert updates[delivered[-1]]["institution_id"] == food_lab.id
    assert updates[delivered[-1]]["outcome"] == "handled"
    assert all(isinstance(line["duration_ms"], float) for line in updates.values())
    for secret in ("王小明", "13812345678", "张小红", code, TOKEN, TOKEN.split(":")[1]):
        assert secret not in text, f"{secret!r} is in the log"


@pytest.mark.parametrize("formatter", [JsonFormatter, TextFormatter])
def test_tokens_and_secrets_are_scrubbed_whoever_logs_them(formatter: type[logging.Formatter]) -> None:
    record = logging.LogRecord(
        "aiohttp.client", logging.ERROR, __file__, 1, "POST %s failed", (f"https://api.telegram.org/bot{TOKEN}/getMe",), None
    )
    record.update_id = 17
    line = formatter(secrets=["hook-secret"]).format(record)  # type: ignore[call-arg]
    assert TOKEN not in line and "AAHdqTcv" not in line and "<redacted>" in line
    assert "17" in line
    other = logging.LogRecord("x", logging.INFO, __file__, 1, "secret is hook-secret; other 987654:%s", ("A" * 35,), None)
    assert "hook-secret" not in formatter(secrets=["hook-secret"]).format(other)  # type: ignore[call-arg]
    assert "A" * 35 not in formatter().format(other)
