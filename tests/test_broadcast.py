"""A regulator broadcasts from Telegram (preview, recipient count, confirm, delivery report),
and from the command line; forged and foreign presses change nothing."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from bot.cli import cli
from bot.core.scope import Scope
from bot.telegram.routers.broadcast import BroadcastAction, BroadcastCb
from storage import outbox
from storage.institutions import bind_member, create_invite, get_institution_by_uscc, upsert_institutions
from storage.regulators import add_regulator
from tests.conftest import roster_row
from tests.harness import Chat, running_bot
from tests.standin import TelegramStandin
from tests.test_outbox import MovingClock
from tests.test_reminders import at

REGULATOR = 8_001
GD_STAFF = (8_101, 8_102, 8_103)
BJ_STAFF = (8_201,)


@pytest.fixture
def seeded(db: sqlite_utils.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZICHA_OUTBOX_RATE", "300")
    monkeypatch.setenv("ZICHA_OUTBOX_CHAT_INTERVAL", "0.05")
    gd, bj = roster_row("广东食品检验所", 31, ("food",), province="广东"), roster_row("北京检测站", 32, ("food",))
    upsert_institutions(db, [gd, bj])
    for row, people in ((gd, GD_STAFF), (bj, BJ_STAFF)):
        institution = get_institution_by_uscc(db, row.uscc)
        assert institution is not None
        code = create_invite(db, institution.id, max_uses=10)
        for person in people:
            bind_member(db, person, code, first_name="员工")
    add_regulator(db, REGULATOR, Scope.parse("province:广东"), "广东省市场监管局")
    return tmp_path / "zicha.db"


async def test_a_regulator_previews_confirms_and_gets_a_delivery_report(
    tg: TelegramStandin, db: sqlite_utils.Database, seeded: Path
) -> None:
    regulator = Chat(tg, REGULATOR)
    for person in (*GD_STAFF, *BJ_STAFF):
        Chat(tg, person)
    tg.block(GD_STAFF[2])
    async with running_bot(tg, seeded, clock=MovingClock(at("2023-10-10 10:00"))):  # before the first reminder
        # Telegram says when someone blocks or unblocks the bot (my_chat_member): Zicha keeps track.
        tg.block(BJ_STAFF[0], notify=True)
        await tg.wait_until(lambda: outbox.is_unreachable(db, BJ_STAFF[0]), what="marked unreachable")
        tg.unblock(BJ_STAFF[0], notify=True)
        await tg.wait_until(lambda: not outbox.is_unreachable(db, BJ_STAFF[0]), what="reachable again")

        await regulator.say("/broadcast", screen=False)
        await regulator.say("请于<b>本周五</b>前完成自查 & 签署承诺书 <script>", screen=False)
        preview = await regulator.next_screen(0)
        assert "3" in preview.text and "3" in preview.button_texts[0]  # 3 recipients in 广东
        shown = tg.messages(REGULATOR)[-2]
        assert "请于<b>本周五</b>前完成自查 & 签署承诺书 <script>" in shown.text  # typed tags shown literally

        # A staff member pressing the button (forged into their chat) changes nothing.
        staff = Chat(tg, GD_STAFF[0])
        confirm = preview.buttons[0][0][1]
        assert confirm is not None
        await staff.press_data(confirm, tg.last_message(REGULATOR))
        # Malformed data and a forged preview id from the regulator change nothing either.
        assert (await regulator.press_data("b:explode:1", preview)).text is not None
        forged = BroadcastCb(action=BroadcastAction.SEND, preview="000000000000").pack()
        notice = await regulator.press_data(forged, preview)
        assert notice.text and "/broadcast" in notice.text
        assert outbox.backlog(db)["total"] == 0

        mark = tg.mark()
        answer, _ = await regulator.press(preview.button_texts[0], preview)
        assert answer.text and "3" in tg.message(REGULATOR, preview.message_id).text
        report = await tg.wait_for(  # the first message (not an edit) to the regulator since the press
            lambda c: c.ok and c.method == "sendMessage" and c.params.get("chat_id") == REGULATOR,
            after=mark, timeout=10, what="the delivery report",
        )  # fmt: skip
        # Pressing confirm again (a double tap) queues nothing more.
        again = await regulator.press_data(confirm, preview)
        assert again.text and "/broadcast" in again.text
    assert not tg.unanswered()
    got = {p: [m.text for m in tg.messages(p)] for p in (*GD_STAFF, *BJ_STAFF)}
    assert len(got[GD_STAFF[0]]) == 1 and len(got[GD_STAFF[1]]) == 1 and got[BJ_STAFF[0]] == []
    assert "广东省市场监管局" in got[GD_STAFF[0]][0] and "<script>" in got[GD_STAFF[0]][0]
    assert outbox.is_unreachable(db, GD_STAFF[2])
    counts = outbox.batch_counts(db, 1)
    assert counts == {"pending": 0, "sending": 0, "sent": 2, "blocked": 1, "failed": 0, "total": 3}
    figures = [re.findall(r"(\d+)\s*$", line)[0] for line in report.message.text.splitlines()[1:]]
    assert figures == ["2", "1", "0", "3"], report.message.text  # delivered, blocked, failed, total


async def test_cli_broadcast_and_remind(tg: TelegramStandin, db: sqlite_utils.Database, seeded: Path, tmp_path: Path) -> None:
    for person in (*GD_STAFF, *BJ_STAFF):
        tg.add_user(person)
    schedule = tmp_path / "schedule.toml"
    schedule.write_text('[campaign]\nquiet_hours = "00:00-00:00"\n', encoding="utf-8")
    env = os.environ | {
        "BOT_TOKEN": tg.token, "TELEGRAM_API_URL": tg.base_url, "ZICHA_DB": str(seeded), "ZICHA_LOCALE": "zh_CN",
        "ZICHA_OUTBOX_RATE": "300", "ZICHA_OUTBOX_CHAT_INTERVAL": "0.05", "ZICHA_SCHEDULE": str(schedule),
    }  # fmt: skip

    async def zicha(*args: str) -> tuple[int, str]:
        """The real command, in a thread: it runs its own event loop while the stand-in serves on ours."""
        result = await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)
        return result.exit_code, result.output

    code, out = await zicha("broadcast", "--scope", "national", "--text", "a < b & c", "--yes")
    assert code == 0, out
    assert "Recipients: 4 staff of 2 institution(s)" in out and "Delivered: 4, blocked: 0, failed: 0" in out
    assert all("a &lt; b &amp; c" in m.html for p in (*GD_STAFF, *BJ_STAFF) for m in tg.messages(p))

    def dry_run(moment: str) -> str:  # no network: in this process
        result = CliRunner().invoke(cli, ["remind", "--dry-run", "--at", moment], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    out = dry_run("2023-10-24 09:30")
    assert "reminder d3" in out and "4 recipient(s)" in out and str(GD_STAFF[0]) in out
    assert "the deadline has passed" in dry_run("2023-10-28 09:30")
    assert "no reminder is due yet" in dry_run("2023-10-13 08:59")
    assert db.execute("SELECT count(*) FROM reminders_sent").fetchone()[0] == 0  # a dry run records nothing
    mark = tg.mark()
    code, out = await zicha("remind", "--at", "2023-10-24 09:30")
    assert code == 0 and "Queued 4 reminder(s) d3" in out, out
    assert len([c for c in tg.calls("sendMessage", after=mark) if c.ok]) == 4
    assert "0 recipient(s)" in dry_run("2023-10-24 12:00")  # sent once: nobody is due d3 any more


async def test_a_broadcast_confirmed_in_quiet_hours_goes_out_when_they_end(
    tg: TelegramStandin, db: sqlite_utils.Database, seeded: Path
) -> None:
    regulator = Chat(tg, REGULATOR)
    for person in GD_STAFF:
        Chat(tg, person)
    clock = MovingClock(at("2023-10-10 22:30"))
    async with running_bot(tg, seeded, clock=clock):
        await regulator.say("/broadcast", screen=False)
        await regulator.say("明早开会", screen=False)
        preview = await regulator.next_screen(0)
        mark = tg.mark()
        await regulator.press(preview.button_texts[0], preview)
        assert "21:00-08:00" in tg.message(REGULATOR, preview.message_id).text
        await tg.wait_until(lambda: outbox.backlog(db)["pending"] == 3, what="three rows queued")
        assert not [c for c in tg.calls("sendMessage", after=mark) if c.params.get("chat_id") in GD_STAFF]
        clock.jump(at("2023-10-11 08:00"))
        await tg.wait_until(lambda: outbox.batch_counts(db, 1)["sent"] == 3, timeout=10, what="sent after 08:00")
        await tg.wait_for(lambda c: c.ok and c.method == "sendMessage" and c.params.get("chat_id") == REGULATOR,
                          after=mark, what="the delivery report")  # fmt: skip


def test_staff_removed_while_a_broadcast_is_queued_get_nothing(
    db: sqlite_utils.Database, seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broadcast reads its audience, then queues everyone in one transaction: someone
    removed in between must not keep a message (the removal fails only what is queued then)."""
    import bot.services.broadcast as broadcast_module
    from bot.i18n import build_i18n
    from storage.institutions import get_membership, remove_member

    scope = Scope.parse("province:广东")
    read_before = broadcast_module.audience(db, scope)
    assert sorted(read_before.members) == list(GD_STAFF)
    institution = get_membership(db, GD_STAFF[0])
    assert institution is not None
    remove_member(db, institution.id, GD_STAFF[0], removed_by="test")  # after the audience was read
    monkeypatch.setattr(broadcast_module, "audience", lambda *args, **kwargs: read_before)
    batch_id, queued = broadcast_module.create_broadcast(
        db, build_i18n("zh_CN"), scope=scope, body_html="通知", sender="广东省市场监管局",
        created_by=REGULATOR, report_chat_id=REGULATOR, default_locale="zh_CN",
    )  # fmt: skip
    assert queued == 2
    rows = {r["chat_id"]: (r["status"], r["error"]) for r in db["outbox"].rows_where("batch_id = ?", [batch_id])}
    assert rows == {
        GD_STAFF[0]: ("failed", "recipient removed from the institution"),
        GD_STAFF[1]: ("pending", None), GD_STAFF[2]: ("pending", None),
    }  # fmt: skip
