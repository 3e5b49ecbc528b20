"""Webhook mode (`zicha run --webhook`), in this process against the stand-in: the secret
header is enforced, the webhook is set at start and removed at shutdown, /health answers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlite_utils

from storage.institutions import Institution
from tests.harness import Chat, invite, read_db, webhook_bot
from tests.standin import TelegramStandin

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def start_update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    chat = {"id": user_id, "type": "private", "first_name": "测试"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1, "date": int(time.time()), "chat": chat, "text": text,
            "from": {"id": user_id, "is_bot": False, "first_name": "测试", "language_code": "zh-hans"},
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }  # fmt: skip


def counts(db_path: Path) -> dict[str, int]:
    db = read_db(db_path)
    result = {t: db[t].count for t in ("users", "members", "fsm", "answers")}
    result["invite_uses"] = sum(r["uses"] for r in db["invites"].rows)
    return result


async def test_requests_without_the_right_secret_are_refused_and_change_nothing(
    db: sqlite_utils.Database, tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with TelegramStandin() as tg, webhook_bot(tg, db_path) as hook:
        assert tg.webhook is not None and tg.webhook["url"] == hook.url
        secret = tg.webhook["secret_token"]
        assert secret and len(secret) >= 32, "a random secret is generated when ZICHA_WEBHOOK_SECRET is unset"
        assert not tg.calls("getUpdates"), "webhook mode does not poll"
        tg.add_user(5151)
        before = counts(db_path)
        mark = tg.mark()
        update = start_update(900_001, 5151, f"/start {code}")
        async with aiohttp.ClientSession() as http:
            # a non-ASCII one too: compared as text, it raised in compare_digest (a 500, a traceback logged)
            for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: secret + "x"}, {SECRET_HEADER: ""}, {SECRET_HEADER: "é" * 40}):
                async with http.post(hook.url, json=update, headers=headers) as response:
                    assert response.status == 401, headers
            assert tg.calls(after=mark) == [], "nothing was sent to Telegram"
            assert counts(db_path) == before, "nothing was written"

            # The same update with Telegram's secret is handled.
            async with http.post(hook.url, json=update, headers={SECRET_HEADER: secret}) as response:
                assert response.status == 200
        reply = await tg.wait_reply(5151, after=mark)
        assert "是，这是我的机构" in reply.button_texts


async def test_an_interview_over_the_webhook_then_the_webhook_is_removed_at_shutdown(
    db: sqlite_utils.Database, tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with TelegramStandin() as tg:
        async with webhook_bot(tg, db_path, zicha_webhook_secret="s3cret_Configured-1") as hook:
            assert tg.webhook is not None and tg.webhook["secret_token"] == "s3cret_Configured-1"
            chat = Chat(tg, 6161)  # the stand-in delivers to the webhook, with the secret header
            await chat.say(f"/start {code}")
            await chat.press("是，这是我的机构")
            _, screen = await chat.press("是，信息无误")
            assert "第 2/" in screen.text
            assert all(200 <= status < 300 for _, status in tg.webhook_deliveries)

            async with aiohttp.ClientSession() as http, http.get(hook.base + "/health") as response:
                assert response.status == 200
                health = await response.json()
            assert health["healthy"] is True
            assert health["checks"]["database"]["status"] == "ok"
            assert health["checks"]["scheduler"]["status"] in ("ok", "not configured")
            assert health["checks"]["outbox"]["status"] in ("ok", "not configured")
        assert tg.calls("deleteWebhook"), "the webhook is removed at shutdown"
        assert tg.webhook is None
    assert read_db(db_path)["answers"].count == 1


@pytest.mark.slow
async def test_stopping_finishes_the_update_in_hand_and_health_turns_503_when_the_scheduler_stops(
    db: sqlite_utils.Database, tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with TelegramStandin() as tg, webhook_bot(tg, db_path) as hook:
        chat = Chat(tg, 6262)
        await chat.say(f"/start {code}")
        hold = tg.hold("editMessageText")
        query = tg.press(6262, chat.latest_with_button("是，这是我的机构"), text="是，这是我的机构")
        await hold.wait_arrived()
        hook.stop.set()  # as SIGTERM does
        await tg.wait_call("deleteWebhook", timeout=10)
        hold.release()
        await tg.wait_answered(query, timeout=10)
        await asyncio.wait_for(hook.task, 30)
        assert read_db(db_path)["members"].count == 1, "the update in hand was finished"
        assert [status for _, status in tg.webhook_deliveries] == [200, 200]
        assert tg.pending_updates == [], "delivered once: not sent again after a restart"

    async with TelegramStandin() as tg, webhook_bot(tg, tmp_path / "zicha.db") as hook:
        assert hook.app.scheduler is not None
        hook.app.scheduler.shutdown(wait=False)
        async with aiohttp.ClientSession() as http, http.get(hook.base + "/health") as response:
            assert response.status == 503
            health = await response.json()
        assert health["healthy"] is False
        assert health["checks"]["scheduler"] == {"status": "fail", "detail": "stopped"}
