"""Deadline reminders: the schedule's rules, the sweep, and reminders delivered by the real
bot (scheduler + outbox inside the dispatcher) to the stand-in."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest
import sqlite_utils

from bot.core.checklist import Checklist
from bot.core.interview import Choice
from bot.core.schedule import ScheduleError, load_schedule, parse_schedule
from bot.i18n import build_i18n
from bot.selfcheck import open_workspace
from bot.services.reminders import due_reminders, sweep
from storage import outbox
from storage.institutions import (
    Institution,
    bind_member,
    create_invite,
    get_institution_by_uscc,
    set_user_language,
    upsert_institutions,
)
from tests.conftest import REPO, roster_row
from tests.harness import Chat, running_bot
from tests.standin import TelegramStandin
from tests.test_outbox import MovingClock

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
SHIPPED = load_schedule(REPO / "checklists" / "campaigns", "samr-2023-national", default_deadline=None, default_tz="UTC")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


# --- the schedule ----------------------------------------------------------------------


def test_the_shipped_schedule_is_the_2023_campaign() -> None:
    assert SHIPPED is not None
    assert SHIPPED.deadline == dt.date(2023, 10, 27) and SHIPPED.tz.key == "Asia/Shanghai"
    assert [(r.key, r.due) for r in SHIPPED.reminders()] == [
        ("d14", at("2023-10-13 09:00")),
        ("d7", at("2023-10-20 09:00")),
        ("d3", at("2023-10-24 09:00")),
        ("d1", at("2023-10-26 09:00")),
        ("d0", at("2023-10-27 09:00")),
    ]
    assert SHIPPED.deadline_end == at("2023-10-28 00:00")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2023-10-13 08:59", None),  # before the first reminder
        ("2023-10-13 09:00", "d14"),
        ("2023-10-19 20:59", "d14"),
        ("2023-10-19 21:00", None),  # quiet hours
        ("2023-10-20 07:59", None),
        ("2023-10-20 08:00", "d14"),  # quiet hours over, d7 not due until 09:00
        ("2023-10-25 12:00", "d3"),  # the bot was down for d7 and d3: only the latest is caught up
        ("2023-10-27 09:00", "d0"),
        ("2023-10-27 20:59", "d0"),
        ("2023-10-28 09:00", None),  # the deadline has passed
    ],
)
def test_only_the_latest_due_reminder_outside_quiet_hours(moment: str, expected: str | None) -> None:
    assert SHIPPED is not None
    due = SHIPPED.due_reminder(at(moment))
    assert (due.key if due else None) == expected


def test_days_left_counts_local_dates() -> None:
    assert SHIPPED is not None
    assert SHIPPED.days_left(at("2023-10-20 09:00")) == 7
    assert SHIPPED.days_left(dt.datetime(2023, 10, 26, 16, 30, tzinfo=dt.timezone.utc)) == 0  # 00:30 on the 27th


def test_a_new_campaign_is_configuration_and_mistakes_are_named(tmp_path: Path) -> None:
    schedule = parse_schedule(
        {"reminder_days": [10, 2], "send_time": "10:30", "quiet_hours": "22:00-07:00"},
        checklist_id="x-2024", default_deadline=dt.date(2024, 10, 31), default_tz="Asia/Shanghai", source="t",
    )  # fmt: skip
    assert schedule is not None and [r.due for r in schedule.reminders()] == [at("2024-10-21 10:30"), at("2024-10-29 10:30")]
    assert parse_schedule({}, checklist_id="x", default_deadline=None, default_tz="UTC", source="t") is None
    bad = {
        "reminder_days = [7, 7]": "names a day twice",
        'reminder_days = ["7"]': "reminder_days",
        'send_time = "9am"': "send_time: expected a time as HH:MM",
        'send_time = "22:00"': "falls in the quiet hours",
        'quiet_hours = "21:00"': "quiet_hours",
        'timezone = "Mars/Olympus"': "unknown time zone",
        "deadline = 2023-10-27T12:00:00": "deadline",
        'colour = "red"': "unknown key(s) colour",
        'checklist = "other"': "the file is for",
    }
    for line, message in bad.items():
        path = tmp_path / "x.toml"
        path.write_text(f"[campaign]\n{line}\n", encoding="utf-8")
        with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
            load_schedule(tmp_path, "x", default_deadline=dt.date(2023, 10, 27), default_tz="UTC", path=path)
        assert str(path) in str(caught.value)


# --- who is reminded -------------------------------------------------------------------


def staff(db: sqlite_utils.Database, institution: Institution, *telegram_ids: int) -> None:
    code = create_invite(db, institution.id, max_uses=10)
    for telegram_id in telegram_ids:
        bind_member(db, telegram_id, code, first_name=f"u{telegram_id}")


def sign(db: sqlite_utils.Database, checklist: Checklist, institution: Institution) -> None:
    ws = open_workspace(db, checklist, institution)
    db.execute(
        "INSERT INTO submissions (selfcheck_id, institution_id, pledge_id, pledge_version, signer_name, signer_role, "
        "signed_by, signed_at, canonical, sha256, verification_code) VALUES (?, ?, 'p', '1', 'n', 'r', 1, '', '{}', '', ?)",
        [ws.selfcheck.id, institution.id, f"V{institution.id}"],
    )
    db.conn.commit()


@pytest.fixture
def campaign(db: sqlite_utils.Database, checklist: Checklist) -> dict[str, Institution]:
    rows = [
        roster_row("甲检测有限公司", 11, ("food",)),
        roster_row("乙检测有限公司", 12, ("food",), province="广东"),
        roster_row("丙检测有限公司", 13, ("motor-vehicle",)),
    ]
    upsert_institutions(db, rows)
    found = {r.name: get_institution_by_uscc(db, r.uscc) for r in rows}
    labs = {name: inst for name, inst in found.items() if inst is not None}
    unfinished, signed, answering = labs["甲检测有限公司"], labs["乙检测有限公司"], labs["丙检测有限公司"]
    staff(db, unfinished, 501, 502, 503)
    staff(db, signed, 601)
    staff(db, answering, 701)
    set_user_language(db, 502, "en")
    sign(db, checklist, signed)
    ws = open_workspace(db, checklist, answering)
    first, second = ws.interview.items[0], next(i for i in ws.interview.items if i.kind == "compliance")
    ws.record_choice(first.id, Choice.YES, by=701, expected_rev=0)
    ws.record_choice(second.id, Choice.NONCOMPLIANT, by=701, expected_rev=0)
    return {"unfinished": unfinished, "signed": signed, "answering": answering}


def test_the_sweep_queues_each_due_reminder_once_and_never_for_signed_institutions(
    db: sqlite_utils.Database, checklist: Checklist, campaign: dict[str, Institution]
) -> None:
    assert SHIPPED is not None
    i18n = build_i18n("zh_CN")
    outbox.mark_unreachable(db, 503, "403 Forbidden: bot was blocked by the user")
    now = at("2023-10-20 09:05")
    due = due_reminders(db, checklist, SHIPPED, now, "zh_CN")
    assert sorted(d.telegram_id for d in due) == [501, 502, 701]  # 601 signed, 503 blocked the bot
    assert {d.reminder.key for d in due} == {"d7"}
    queued = sweep(db, checklist, SHIPPED, i18n, now, default_locale="zh_CN")
    assert len(queued) == 3
    assert sweep(db, checklist, SHIPPED, i18n, now + dt.timedelta(minutes=10), default_locale="zh_CN") == []
    rows = {r["chat_id"]: r for r in db["outbox"].rows}
    assert set(rows) == {501, 502, 701} and {r["kind"] for r in rows.values()} == {"reminder"}
    # Chinese texts come with the catalogs (locales/pending/reminders.json until merged): check
    # what does not depend on them, the date in each user's locale and the figures.
    assert "2023年10月27日" in rows[501]["text"] and "7" in rows[501]["text"].splitlines()[1]
    assert "7 days left until the deadline (October 27, 2023)" in rows[502]["text"]
    answering = next(d for d in queued if d.telegram_id == 701)
    assert answering.progress.open_rectifications == 1 and answering.progress.done == 1
    assert f"1/{answering.progress.total}" in rows[701]["text"] and "1" in rows[701]["text"].splitlines()[3]
    assert "continue" in rows[501]["reply_markup"] or "cont" in rows[501]["reply_markup"]
    # Three days later the d3 reminder is due, once more for each.
    later = sweep(db, checklist, SHIPPED, i18n, at("2023-10-24 10:00"), default_locale="zh_CN")
    assert sorted(d.telegram_id for d in later) == [501, 502, 701] and {d.reminder.key for d in later} == {"d3"}
    assert db.execute("SELECT count(*) FROM reminders_sent").fetchone()[0] == 6


def test_staff_removed_while_the_sweep_runs_get_no_reminder(
    db: sqlite_utils.Database, checklist: Checklist, campaign: dict[str, Institution], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep reads who is due, then queues each in its own transaction: a removal in
    between (the regulator's button, `zicha staff remove`) must not leave a reminder for them."""
    import bot.services.reminders as reminders_module
    from storage.institutions import remove_member

    assert SHIPPED is not None
    now = at("2023-10-20 09:05")
    read_before = due_reminders(db, checklist, SHIPPED, now, "zh_CN")
    remove_member(db, campaign["unfinished"].id, 502, removed_by="test")  # after the sweep read it
    monkeypatch.setattr(reminders_module, "due_reminders", lambda *args, **kwargs: read_before)
    queued = sweep(db, checklist, SHIPPED, build_i18n("zh_CN"), now, default_locale="zh_CN")
    assert sorted(d.telegram_id for d in queued) == [501, 503, 701]
    assert 502 not in {r["chat_id"] for r in db["outbox"].rows}
    assert db.execute("SELECT count(*) FROM reminders_sent WHERE telegram_id = 502").fetchone()[0] == 0


# --- end to end: the scheduler in the running bot sends them -------------------------


@pytest.fixture
def fast_outbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZICHA_OUTBOX_RATE", "300")
    monkeypatch.setenv("ZICHA_OUTBOX_CHAT_INTERVAL", "0.05")
    monkeypatch.setenv("ZICHA_OUTBOX_BACKOFF", "0.01")


def sent_to(tg: TelegramStandin, chat_id: int, after: int = 0) -> list[str]:
    return [c.params["text"] for c in tg.calls("sendMessage", chat_id=chat_id, after=after) if c.ok]


async def test_the_running_bot_reminds_due_staff_once_and_the_button_continues_the_interview(
    tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist,
    campaign: dict[str, Institution], fast_outbox: None,
) -> None:  # fmt: skip
    db_path = tmp_path / "zicha.db"
    enforcer = tg.enforce_rate_limits(global_rate=400, global_burst=3, chat_rate=25, chat_burst=1)
    for user in (501, 502, 503, 601, 701):
        Chat(tg, user)
    tg.block(503)  # blocked the bot, not yet known to Zicha
    tg.fail_next("sendMessage", 429, retry_after=1, chat_id=501)
    tg.fail_next("sendMessage", 502, chat_id=701)
    clock = MovingClock(at("2023-10-20 09:00"))
    async with running_bot(tg, db_path, clock=clock) as app:
        assert app.scheduler is not None and app.scheduler.running
        await tg.wait_until(lambda: len(sent_to(tg, 501)) and len(sent_to(tg, 502)) and len(sent_to(tg, 701)),
                            timeout=10, what="three reminders")  # fmt: skip
        await tg.wait_until(lambda: outbox.backlog(db)["pending"] + outbox.backlog(db)["sending"] == 0, what="outbox idle")
        assert outbox.is_unreachable(db, 503)
        # A second sweep (the scheduler's next run) sends nothing more.
        assert app.background is not None and await app.background.sweep() == 0
        # The reminder's button continues the interview where the institution left off.
        chat = Chat(tg, 701)
        reminder = chat.latest_with_button("继续自查")
        answer, screen = await chat.press("继续自查", reminder)
        assert "第 2/" in screen.text and answer.text is None, screen.text  # item 1 was answered, item 2 not
    assert enforcer.rejected == 0
    assert [len(sent_to(tg, u)) for u in (501, 502, 503, 601)] == [1, 1, 0, 0]
    assert "2023年10月27日" in sent_to(tg, 501)[0] and "days left" in sent_to(tg, 502)[0]
    statuses = {r["chat_id"]: r["status"] for r in db["outbox"].rows}
    assert statuses == {501: "sent", 502: "sent", 503: "blocked", 701: "sent"}

    # Restarted later the same day: nothing is sent again. At 22:00 (quiet hours) neither.
    mark = tg.mark()
    clock.jump(at("2023-10-20 22:00"))
    await tg.wait_not_polling()  # the first bot's last long poll, so wait_polling sees the new one
    async with running_bot(tg, db_path, clock=clock) as app:
        assert app.background is not None and await app.background.sweep() == 0
        clock.jump(at("2023-10-21 10:00"))
        assert await app.background.sweep() == 0
    assert not tg.calls("sendMessage", after=mark)


def test_reminders_missed_while_the_bot_was_down_are_caught_up_once_latest_only(
    db: sqlite_utils.Database, checklist: Checklist, campaign: dict[str, Institution]
) -> None:
    assert SHIPPED is not None
    i18n = build_i18n("zh_CN")
    # Down from before the 14-day reminder until after the 3-day one: one reminder each, the 3-day one.
    queued = sweep(db, checklist, SHIPPED, i18n, at("2023-10-25 12:00"), default_locale="zh_CN")
    assert {d.reminder.key for d in queued} == {"d3"} and len(queued) == 4
    assert {r["reminder"] for r in db["reminders_sent"].rows} == {"d3"}
    assert "2" in db["outbox"].get(1)["text"].splitlines()[1]  # the days left when it is sent: 2
    assert sweep(db, checklist, SHIPPED, i18n, at("2023-10-25 18:00"), default_locale="zh_CN") == []
