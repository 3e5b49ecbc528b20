"""Issue 12, the update pipeline: one update Zicha cannot read, a message without a sender, a
group chat, a failed write, a failed button press, a stale webhook and a shutdown mid-request
each leave the bot answering everyone else, and lose or leak nothing."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from storage.institutions import Institution
from tests.harness import BotProcess, Chat, free_port, invite, read_db, running_bot, webhook_bot
from tests.standin import TelegramStandin
from tests.test_e2e_hostile_input import join, reach_first_compliance_item, snapshot
from tests.test_shutdown import until
from tests.test_webhook import SECRET_HEADER

APOLOGY = "抱歉，系统出现了问题。您已保存的答案不会丢失；请重试或发送 /start。"
PRIVATE_ONLY = "“自查助手”仅在私聊中提供服务。请打开与本机器人的私聊窗口，并在其中发送 /start。"
SECRET_QUESTION = "王五的手机号是 13812345678 吗"


def old_server_poll(user_id: int) -> dict[str, Any]:
    """A message carrying a poll as an older local telegram-bot-api server sends it: without
    persistent_id, allows_revoting and members_only, which aiogram 3.31 requires."""
    return {
        "message": {
            "message_id": 77, "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "投票"},
            "from": {"id": user_id, "is_bot": False, "first_name": "投票"},
            "poll": {
                "id": "5000", "question": SECRET_QUESTION,
                "options": [{"text": "是", "voter_count": 0}, {"text": "否", "voter_count": 0}],
                "total_voter_count": 0, "is_closed": False, "is_anonymous": True, "type": "regular",
                "allows_multiple_answers": False,
            },
        }
    }  # fmt: skip


def skipped_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "update_skipped"]


def assert_no_content_logged(caplog: pytest.LogCaptureFixture) -> None:
    everything = "\n".join(r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
                           for r in caplog.records)  # fmt: skip
    assert SECRET_QUESTION not in everything and "13812345678" not in everything, "update content was logged"


# ------------------------------------------------------------------------------------------ defect 1


async def test_polling_skips_an_update_it_cannot_read_and_answers_the_rest(
    tg: TelegramStandin, tmp_path: Path, food_lab: Institution, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    db_path = tmp_path / "zicha.db"
    async with running_bot(tg, db_path):
        before = tg.mark()
        # One batch: a stranger, the unreadable poll, another stranger.
        tg.add_user(8101), tg.add_user(8103)
        tg.send_text(8101, "/start")
        bad = tg.send_update(old_server_poll(8102))
        tg.send_text(8103, "/start")
        await tg.wait_reply(8101, after=before, timeout=10)
        await tg.wait_reply(8103, after=before, timeout=10)

        # The unreadable update last in its batch: its offset is confirmed all the same.
        bad_last = tg.send_update(old_server_poll(8102))
        await tg.wait_until(lambda: any(r.update_id == bad_last for r in skipped_records(caplog)), what="skip")
        await tg.wait_until(lambda: not tg.pending_updates, what="the skipped update to be confirmed")
        later = tg.mark()
        tg.send_text(8104, "/help")
        await tg.wait_reply(8104, after=later, timeout=10)

    assert [(r.update_id, r.update_type) for r in skipped_records(caplog)] == [(bad, "message"), (bad_last, "message")]
    assert "message.poll.allows_revoting: missing" in skipped_records(caplog)[0].getMessage()
    assert not [m for m in tg.calls("sendMessage") if m.params.get("chat_id") == 8102], "nothing sent for it"
    assert_no_content_logged(caplog)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


async def test_webhook_answers_an_unreadable_update_so_telegram_stops_resending_it(
    tmp_path: Path, food_lab: Institution, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    db_path = tmp_path / "zicha.db"
    async with TelegramStandin() as tg, webhook_bot(tg, db_path) as hook:
        tg.add_user(8201)
        bad = tg.send_update(old_server_poll(8202))
        mark = tg.mark()
        tg.send_text(8201, "/start")
        await tg.wait_reply(8201, after=mark, timeout=10)
        await tg.wait_until(lambda: not tg.pending_updates, what="both updates delivered")
        assert (bad, 200) in tg.webhook_deliveries and [s for u, s in tg.webhook_deliveries if u == bad] == [200]
        assert tg.pending_updates == []

        secret = tg.webhook["secret_token"]
        async with aiohttp.ClientSession() as http, http.post(hook.url, data=b"{not json", headers={SECRET_HEADER: secret}) as response:
            assert response.status == 200
    assert [getattr(r, "update_id", None) for r in skipped_records(caplog)] == [bad, None]
    assert_no_content_logged(caplog)


# ------------------------------------------------------------------------------------------ defect 2


def group_message(chat_id: int, text: str, *, sender: dict[str, Any] | None, sender_chat: dict[str, Any] | None = None,
                  chat_type: str = "supergroup") -> dict[str, Any]:  # fmt: skip
    message: dict[str, Any] = {
        "message_id": 500 + abs(hash(text)) % 1000, "date": int(time.time()),
        "chat": {"id": chat_id, "type": chat_type, "title": "检测站工作群"}, "text": text,
    }  # fmt: skip
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if sender is not None:
        message["from"] = sender
    if sender_chat is not None:
        message["sender_chat"] = sender_chat
    return {"message": message}


async def test_groups_and_sender_chat_messages_get_no_institution_data_and_crash_nothing(
    tg: TelegramStandin, tmp_path: Path, food_lab: Institution, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    group, channel = -100_555, {"id": -100_777, "type": "channel", "title": "检测站公告"}
    async with running_bot(tg, db_path):
        staff = Chat(tg, 8301)
        await join(staff, code)
        screen = await reach_first_compliance_item(staff)
        before = snapshot(db_path)
        sender = tg.users[8301]
        mark = tg.mark()
        # The bound staff member's /start, /progress, /review in a group; an anonymous admin's and a
        # channel's forwarded post (sender_chat, no from); a channel post; a group member's plain text.
        for update in (
            group_message(group, "/start", sender=sender),
            group_message(group, "/progress@zicha_test_bot", sender=sender),
            group_message(group, "/review", sender=sender, chat_type="group"),
            group_message(group, "/start", sender=None, sender_chat={"id": group, "type": "supergroup", "title": "群"}),
            group_message(group, "公告", sender=None, sender_chat=channel),
            {"channel_post": {"message_id": 9, "date": int(time.time()), "chat": channel, "text": "/start"}},
            group_message(group, "大家好", sender=sender),
        ):
            tg.send_update(update)
        await tg.wait_until(lambda: not tg.pending_updates and len(tg.calls("sendMessage", after=mark)) >= 3,
                            what="the group updates")  # fmt: skip
        # A button of a bot message shown in the group (as an older version posted there).
        query = tg.press_data(8301, screen.message_id, screen.buttons[0][0][1] or "")
        tg.callback_queries[query].answer = None
        answer = await tg.wait_answered(query)
        # The private chat still works.
        await staff.say("/progress", screen=False)

    group_texts = [m.text for m in tg.messages(group)]
    assert group_texts == [PRIVATE_ONLY] * 3, group_texts
    assert not tg.messages(channel["id"])
    sent_elsewhere = [c for c in tg.calls(after=mark) if c.params.get("chat_id", 8301) not in (group, 8301)]
    assert not sent_elsewhere
    assert food_lab.name not in "\n".join(group_texts) and food_lab.uscc not in "\n".join(group_texts)
    assert answer.text  # pressed in the private chat: the real answer
    assert snapshot(db_path)["members"] == before["members"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


async def test_a_button_on_a_group_message_gets_the_private_chat_notice(
    tg: TelegramStandin, tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        staff = Chat(tg, 8311)
        screen = await join(staff, code)
        before = snapshot(db_path)
        mark = tg.mark()
        data = next(d for row in screen.buttons for _, d in row if d)
        shown = {"message_id": 3, "date": int(time.time()), "chat": {"id": -100_556, "type": "supergroup", "title": "群"},
                 "from": tg.bot_user, "text": "旧消息"}  # fmt: skip
        tg.send_update({"callback_query": {"id": "77001", "from": tg.users[8311], "message": shown,
                                           "chat_instance": "-1", "data": data}})  # fmt: skip
        call = await tg.wait_call("answerCallbackQuery", after=mark, timeout=10)
    assert call.params["text"] == PRIVATE_ONLY and call.params.get("show_alert") is True
    assert snapshot(db_path) == before


# ------------------------------------------------------------------------------------------ defect 6


async def test_webhook_answers_503_when_the_write_fails_and_the_update_is_stored_on_retry(
    tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with TelegramStandin() as tg, webhook_bot(tg, db_path) as hook:
        async with aiohttp.ClientSession() as http:
            async with http.get(hook.base + "/health") as response:
                assert response.status == 200
                assert (await response.json())["checks"]["database"]["status"] == "ok"
            # The disk goes read-only under the running bot: every write fails, reads still work.
            hook.app.db.execute("PRAGMA query_only = 1")
            async with http.get(hook.base + "/health") as response:
                health = await response.json()
                assert response.status == 503, health
            assert health["checks"]["database"]["status"] == "fail"
            assert "cannot write" in health["checks"]["database"]["detail"]

            staff = Chat(tg, 8401)
            mark = tg.mark()
            update_id = tg.send_text(8401, f"/start {code}")
            await tg.wait_until(lambda: [s for u, s in tg.webhook_deliveries if u == update_id].count(503) >= 3,
                                what="Telegram to retry the update", timeout=10)  # fmt: skip
            assert read_db(db_path)["members"].count == 0
            assert update_id in [u["update_id"] for u in tg.pending_updates], "Telegram keeps it"
            replies = [c.message.text for c in tg.calls("sendMessage", after=mark) if c.message]
            assert replies == [APOLOGY], "told once, not at every retry"

            hook.app.db.execute("PRAGMA query_only = 0")  # the disk is back
            screen = await staff.next_screen(mark)
            assert "是，这是我的机构" in screen.button_texts
            async with http.get(hook.base + "/health") as response:
                assert response.status == 200
        assert tg.webhook_deliveries[-1] == (update_id, 200)
        assert tg.pending_updates == []
    assert read_db(db_path)["members"].count == 0  # the join itself is confirmed with the button
    assert [s for u, s in tg.webhook_deliveries if u == update_id][-1] == 200


# ------------------------------------------------------------------------------------------ defect 7


async def test_a_failed_button_press_shows_the_error_alert(
    tg: TelegramStandin, tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with running_bot(tg, db_path) as app:
        staff = Chat(tg, 8501)
        await join(staff, code)
        screen = await reach_first_compliance_item(staff)
        before = snapshot(db_path)
        app.db.execute("PRAGMA query_only = 1")  # the answer cannot be written
        answer, _ = await staff.press("符合", screen)
        assert answer.text == APOLOGY and answer.show_alert is True, "the user sees the error"
        assert snapshot(db_path) == before
        assert len([c for c in tg.calls("answerCallbackQuery") if c.ok]) == len(tg.callback_queries)
        app.db.execute("PRAGMA query_only = 0")
        answer, _ = await staff.press("符合", screen)
        assert answer.text == "已保存：符合"
    assert not tg.unanswered()


# ------------------------------------------------------------------------------------------ defect 14


@pytest.mark.slow
async def test_polling_after_a_killed_webhook_server_removes_the_webhook_first(
    tmp_path: Path, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with TelegramStandin() as tg:
        bot = BotProcess(tg, db_path)
        bot.use_webhook(free_port())
        bot.start()
        try:
            await tg.wait_call("setWebhook", timeout=30)
            bot.kill()  # no chance to remove its webhook
            assert tg.webhook is not None
            chat = Chat(tg, 8601)
            waiting = tg.send_text(8601, f"/start {code}")  # arrives while nobody serves the webhook
            bot.command = ["run"]
            mark = tg.mark()
            bot.start()
            await tg.wait_call("getUpdates", after=mark, timeout=30)
            screen = await chat.next_screen(mark)
            assert "是，这是我的机构" in screen.button_texts, "the update that waited is handled"
        finally:
            log = await asyncio.to_thread(bot.stop)
        delete = tg.calls("deleteWebhook", after=mark)
        assert delete and delete[0].params.get("drop_pending_updates") in (None, False), "waiting updates are kept"
        assert not [c for c in tg.calls("getUpdates", after=mark) if c.status == 409]
        assert tg.webhook is None and waiting not in [u["update_id"] for u in tg.pending_updates]
        assert "Traceback" not in log


# ------------------------------------------------------------------------------------------ defect 15


@pytest.mark.slow
async def test_webhook_shutdown_finishes_the_requests_in_hand_before_services_and_session_stop(
    tmp_path: Path, food_lab: Institution, caplog: pytest.LogCaptureFixture
) -> None:
    """A press in hand at SIGTERM (Telegram slow to take its answer) is finished while the
    bot's services and its Bot API session are still up; the session closes last."""
    caplog.set_level(logging.INFO)
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    async with TelegramStandin() as tg, webhook_bot(tg, db_path) as hook:
        app = hook.app
        chat = Chat(tg, 8701)
        await chat.say(f"/start {code}")
        services_when_answered: list[bool] = []
        tg.add_interceptor(
            lambda method, params: services_when_answered.append(bool(app.scheduler and app.scheduler.running))
            if method == "answerCallbackQuery" else None
        )  # fmt: skip
        hold = tg.hold("answerCallbackQuery")
        query = tg.press(8701, chat.latest_with_button("是，这是我的机构"), text="是，这是我的机构")
        await hold.wait_arrived(timeout=10)
        hook.stop.set()  # SIGTERM
        await until(lambda: any("webhook request(s) in hand" in r.getMessage() for r in caplog.records),
                    "shutdown to wait for the request in hand")  # fmt: skip
        hold.release()
        answer = await tg.wait_answered(query, timeout=10)
        await asyncio.wait_for(hook.task, 30)
    assert answer is not None and services_when_answered == [True], "answered before the services stopped"
    assert [s for _, s in tg.webhook_deliveries][-1] == 200, "its request was answered: not sent again"
    messages = [r.getMessage() for r in caplog.records]
    closed = messages.index("stopping: Bot API session closed")
    assert closed > max(i for i, r in enumerate(caplog.records) if getattr(r, "event", None) == "update")
    assert read_db(db_path)["members"].count == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
