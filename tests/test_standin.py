"""The Telegram stand-in, driven by a real aiogram Bot: if these pass, end-to-end tests can trust its answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import BotCommand, BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, Message

from tests.standin import TelegramStandin

USER = 1001


@pytest.fixture
async def tg() -> AsyncIterator[TelegramStandin]:
    async with TelegramStandin() as standin:
        standin.add_user(USER)
        yield standin


def make_bot(tg: TelegramStandin, token: str | None = None) -> Bot:
    """A real aiogram Bot pointed at the stand-in, configured like Zicha's (HTML by default)."""
    return Bot(
        token or tg.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)),
        default=DefaultBotProperties(parse_mode="HTML"),
    )


@pytest.fixture
async def bot(tg: TelegramStandin) -> AsyncIterator[Bot]:
    bot = make_bot(tg)
    try:
        yield bot
    finally:
        await bot.session.close()


def keyboard(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data) for text, data in row] for row in rows]
    )


async def test_get_me_answers_and_a_wrong_token_is_unauthorized(tg: TelegramStandin, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (42, True, "zicha_test_bot")

    intruder = make_bot(tg, token="43:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await intruder.get_me()
    finally:
        await intruder.session.close()
    assert tg.requests[-1].status == 401


async def test_unknown_method_is_404_json(tg: TelegramStandin) -> None:
    async with aiohttp.ClientSession() as http, http.post(f"{tg.base_url}/bot{tg.token}/sendHologram", data={"chat_id": "1"}) as response:
        assert response.status == 404
        assert await response.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        }


async def test_echo_round_trip_through_real_polling(tg: TelegramStandin, bot: Bot) -> None:
    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(f"<b>echo:</b> {message.text}")

    dp = Dispatcher()
    dp.include_router(router)
    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=1)
    )
    try:
        n = tg.mark()
        sent_id = tg.send_text(USER, "你好 & hello")
        reply = await tg.wait_reply(USER, after=n)
        assert reply.text == "echo: 你好 & hello"
        assert reply.html == "<b>echo:</b> 你好 & hello"
        assert reply.message_id == sent_id + 1  # ids are shared by both sides of a private chat
    finally:
        await dp.stop_polling()
        await polling


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<b>x", "Can't find end tag corresponding to start tag b"),
        ("<script>alert(1)</script>", 'Unsupported start tag "script" at byte offset 0'),
        ("a&nbsp;b", 'Unsupported HTML entity "&nbsp;" at byte offset 1'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("检查</b>", "Unexpected end tag at byte offset 6"),
        ("<br>", 'Unsupported start tag "br" at byte offset 0'),
    ],
)
async def test_malformed_html_is_rejected_like_telegram(bot: Bot, text: str, reason: str) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities") as caught:
        await bot.send_message(USER, text)
    assert reason in caught.value.message


@pytest.mark.parametrize(
    ("html", "plain"),
    [
        ("&amp;", "&"),
        ("<b>a</b>", "a"),
        ("AT&T: 1 &lt; 2 &#x41;&#66;", "AT&T: 1 < 2 AB"),
        ('<a href="https://example.com/?a=1&amp;b=2">link</a> <tg-spoiler>s</tg-spoiler>', "link s"),
        ("<blockquote expandable>long</blockquote>", "long"),
        ("\n  <i>trimmed</i>  \n", "trimmed"),
    ],
)
async def test_valid_html_is_stored_raw_and_plain(tg: TelegramStandin, bot: Bot, html: str, plain: str) -> None:
    sent = await bot.send_message(USER, html)
    assert sent.text == plain
    stored = tg.last_message(USER)
    assert (stored.text, stored.html) == (plain, html)


async def test_text_length_is_counted_after_entity_parsing_in_utf16(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "x" * 4097)
    assert (await bot.send_message(USER, "x" * 4096)).text == "x" * 4096
    assert (await bot.send_message(USER, "&amp;" * 4096)).text == "&" * 4096
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "😀" * 2049)  # 4098 UTF-16 code units
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "<b> </b>")


async def test_callback_data_is_limited_to_64_bytes(tg: TelegramStandin, bot: Bot) -> None:
    for data in ["x" * 65, "检" * 22, "检" * 21 + "xx"]:  # 65, 66 and 65 bytes
        with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
            await bot.send_message(USER, "pick", reply_markup=keyboard([("A", data)]))
    await bot.send_message(USER, "pick", reply_markup=keyboard([("A", "检" * 21 + "x")]))  # 64 bytes
    assert tg.last_message(USER).buttons == [[("A", "检" * 21 + "x")]]

    no_action = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="lonely")]])
    with pytest.raises(TelegramBadRequest, match="Text buttons are unallowed"):
        await bot.send_message(USER, "pick", reply_markup=no_action)


async def test_identical_edit_is_not_modified_and_edits_update_the_message(tg: TelegramStandin, bot: Bot) -> None:
    markup = keyboard([("Yes", "y"), ("No", "n")])
    sent = await bot.send_message(USER, "<b>Q1</b>", reply_markup=markup)

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("<strong>Q1</strong>", chat_id=USER, message_id=sent.message_id, reply_markup=markup)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id, reply_markup=markup)

    # Like Telegram, an edit without reply_markup drops the keyboard.
    await bot.edit_message_text("<b>Q1</b>", chat_id=USER, message_id=sent.message_id)
    stored = tg.message(USER, sent.message_id)
    assert (stored.text, stored.buttons, stored.edited) == ("Q1", [], 1)

    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=999)
    await bot.delete_message(USER, sent.message_id)
    assert tg.messages(USER)[-1].deleted
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, sent.message_id)


async def test_press_answer_once_and_wait_answered(tg: TelegramStandin, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Continue?", reply_markup=keyboard([("Yes", "go:1")]))
    query_id = tg.press(USER, sent.message_id, text="Yes")

    update = tg.pending_updates[-1]["callback_query"]
    assert (update["data"], update["message"]["text"]) == ("go:1", "Continue?")
    assert [query.id for query in tg.unanswered()] == [query_id]

    await bot.answer_callback_query(query_id, text="Saved")
    answer = await tg.wait_answered(query_id)
    assert (answer.text, answer.show_alert) == ("Saved", False)
    assert tg.unanswered() == []

    with pytest.raises(TelegramBadRequest, match="query is too old and response timeout expired"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("123")
    with pytest.raises(AssertionError, match="no button 'Nope'"):
        tg.press(USER, sent, text="Nope")
    forged = tg.press_data(USER, sent.message_id, "admin:delete_everything")
    assert tg.callback_queries[forged].data == "admin:delete_everything"


async def test_blocked_chat_is_forbidden(tg: TelegramStandin, bot: Bot) -> None:
    tg.block(USER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "hello?")
    tg.unblock(USER)
    await bot.send_message(USER, "hello again")

    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(USER + 1, "who are you")


async def test_fail_next_with_retry_after_raises_telegram_retry_after(tg: TelegramStandin, bot: Bot) -> None:
    fault = tg.fail_next("sendMessage", 429, retry_after=3, chat_id=USER)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER, "burst")
    assert caught.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in caught.value.message
    assert fault.remaining == 0
    await bot.send_message(USER, "after the pause")
    assert [call.status for call in tg.calls("sendMessage")] == [429, 200]


async def test_get_updates_long_polls_and_confirms_by_offset(tg: TelegramStandin, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=0) == []

    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await tg.wait_polling()
    tg.send_text(USER, "/start")
    updates = await poll
    assert time.monotonic() - started < 1.0  # returned as soon as the update was queued
    assert [u.message.text for u in updates if u.message] == ["/start"]

    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == []
    assert tg.pending_updates == []


async def test_a_second_get_updates_terminates_the_first(tg: TelegramStandin, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await tg.wait_polling()
    await bot.get_updates(timeout=0)
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await first


async def test_files_both_ways_are_recorded_and_downloadable(tg: TelegramStandin, bot: Bot) -> None:
    tg.send_document(USER, file_name="检验报告.pdf", content=b"%PDF-1.4 report")
    document = tg.pending_updates[-1]["message"]["document"]
    file = await bot.get_file(document["file_id"])
    assert file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == b"%PDF-1.4 report"
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")

    sent = await bot.send_document(
        USER, BufferedInputFile(b"PK\x03\x04 sheet", filename="自查表.xlsx"), caption="<b>年度</b>自查"
    )
    assert sent.document is not None and sent.document.file_name == "自查表.xlsx"
    stored = tg.last_message(USER)
    assert stored.file is not None
    assert (stored.file.file_name, stored.file.content, stored.text) == ("自查表.xlsx", b"PK\x03\x04 sheet", "年度自查")

    photo = await bot.send_photo(USER, BufferedInputFile(b"\xff\xd8\xff fake", filename="p.jpg"))
    assert photo.photo and tg.files[photo.photo[-1].file_id].content == b"\xff\xd8\xff fake"
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(USER, photo.photo[-1].file_id, caption="x" * 1025)

    with pytest.raises(TelegramNotFound):
        await bot.get_chat_menu_button(chat_id=USER)  # not implemented by the stand-in: 404, not a crash


async def test_commands_and_menu_button_are_stored(tg: TelegramStandin, bot: Bot) -> None:
    commands = [BotCommand(command="start", description="开始"), BotCommand(command="help", description="帮助")]
    assert await bot.set_my_commands(commands, language_code="zh")
    assert [c.command for c in await bot.get_my_commands(language_code="zh")] == ["start", "help"]
    assert await bot.get_my_commands() == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Self-Check", description="x")])
    assert await bot.delete_my_commands(language_code="zh")
    assert await bot.get_my_commands(language_code="zh") == []
    assert await bot.set_chat_menu_button()
    assert await bot.delete_webhook(drop_pending_updates=True)


async def test_wait_timeout_explains_what_happened(tg: TelegramStandin, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(USER, "<b>oops")
    with pytest.raises(AssertionError) as caught:
        await tg.wait_reply(USER, after=0, timeout=0.05)
    report = str(caught.value)
    assert "a message sent or edited in chat 1001" in report
    assert "sendMessage(chat_id=1001, text='<b>oops', parse_mode='HTML') -> 400 Bad Request" in report
