"""Polling, a write the database refused: the update is not lost. It is fed again (as Telegram
resends a webhook update answered 503) until the database takes it, and the user is told
once. Through the real dispatcher, polling the Telegram stand-in."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.ops.lifecycle import StorageRetry
from storage.institutions import Institution
from tests.harness import Chat, invite, read_db, running_bot
from tests.standin import TelegramStandin
from tests.test_e2e_hostile_input import join, reach_first_compliance_item
from tests.test_hardening_updates import APOLOGY

QUICK = (0.05,) * 400  # the shipped delays are 1 s, 2 s, 5 s, then 30 s: the same logic, sooner


def _events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


async def test_a_message_whose_write_failed_is_stored_once_the_disk_is_back(
    tg: TelegramStandin, tmp_path: Path, food_lab: Institution, caplog: pytest.LogCaptureFixture
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    with caplog.at_level(logging.INFO):
        async with running_bot(tg, db_path) as app:
            app.dispatcher["storage_retry"].delays = QUICK
            staff = Chat(tg, 8601)
            app.db.execute("PRAGMA query_only = 1")  # the disk goes read-only
            mark = tg.mark()
            tg.send_text(8601, f"/start {code}")
            await tg.wait_until(lambda: len(_events(caplog, "update_retry")) >= 3, what="the update tried again", timeout=10)
            replies = [c.message.text for c in tg.calls("sendMessage", after=mark) if c.message]
            assert replies == [APOLOGY], "told once, not at every attempt"
            app.db.execute("PRAGMA query_only = 0")  # the disk is back: no need to send it again
            screen = await staff.next_screen(mark)
            assert "是，这是我的机构" in screen.button_texts
            await tg.wait_until(lambda: _events(caplog, "update_stored"), what="the update stored", timeout=10)
            assert app.dispatcher["storage_retry"].waiting == 0
    assert not _events(caplog, "update_lost")


async def test_a_button_press_whose_write_failed_is_saved_without_pressing_again(
    tg: TelegramStandin, tmp_path: Path, food_lab: Institution, caplog: pytest.LogCaptureFixture
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    with caplog.at_level(logging.INFO):
        async with running_bot(tg, db_path) as app:
            retry: StorageRetry = app.dispatcher["storage_retry"]
            staff = Chat(tg, 8602)
            await join(staff, code)
            screen = await reach_first_compliance_item(staff)
            answers_before = read_db(db_path)["answers"].count
            retry.delays = QUICK
            app.db.execute("PRAGMA query_only = 1")
            answer, _ = await staff.press("符合", screen)
            assert answer.text == APOLOGY and answer.show_alert is True, "the user sees the error at once"
            await tg.wait_until(lambda: len(_events(caplog, "update_retry")) >= 2, what="the press tried again", timeout=10)
            assert read_db(db_path)["answers"].count == answers_before
            app.db.execute("PRAGMA query_only = 0")
            await tg.wait_until(lambda: _events(caplog, "update_stored"), what="the press stored", timeout=10)
            stored = read_db(db_path)["answers"]
            assert stored.count == answers_before + 1
            assert retry.waiting == 0
    assert not tg.unanswered()


async def test_an_update_is_given_up_after_its_attempts_and_said_so(
    tg: TelegramStandin, tmp_path: Path, food_lab: Institution, caplog: pytest.LogCaptureFixture
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    with caplog.at_level(logging.INFO):
        async with running_bot(tg, db_path) as app:
            app.dispatcher["storage_retry"].delays = (0.05, 0.05, 0.05)
            app.db.execute("PRAGMA query_only = 1")  # and it stays so
            update_id = tg.send_text(8603, f"/start {code}")
            lost = await tg.wait_until(lambda: _events(caplog, "update_lost"), what="the update given up", timeout=10)
            assert len(_events(caplog, "update_retry")) == 3 and lost[0].update_id == update_id  # type: ignore[attr-defined]
            assert "not stored after 4 attempt(s)" in lost[0].getMessage()
            app.db.execute("PRAGMA query_only = 0")
    assert read_db(db_path)["members"].count == 0
