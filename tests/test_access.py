"""Access that can be taken back (issue 12, defects 3 and 4): removing staff from the
command line and in the regulator's Telegram view, revoking and expiring every invite —
each checked in the running bot on the very next update, and in what was stored."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils
from click.testing import CliRunner, Result

from bot.cli import cli
from bot.core.checklist import Checklist
from bot.core.invites import format_invite_code, parse_expiry
from bot.core.scope import Scope
from bot.telegram.routers.regulator import RegulatorJoinCb, StaffCb, StaffRemoveCb
from storage.db import open_db
from storage.institutions import Institution, create_invite
from storage.regulators import create_regulator_invite, get_regulator
from tests.harness import Chat, invite, read_db, running_bot
from tests.regulator_fixture import STAFF, Fixture, build_fixture
from tests.standin import TelegramStandin
from tests.web_support import csrf_of, web_client

NOT_INVITED = "本服务仅供受邀人员使用"  # from the not-invited text, in Chinese
BUTTON_REFUSED = "只有受邀的机构工作人员才能使用这些按钮。发送 /start 查看说明。"
SHANGHAI = ZoneInfo("Asia/Shanghai")
AFTER = dt.datetime(2023, 10, 28, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment of `zicha …` commands: the same database as the running bot."""
    db_path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "ZICHA_TIMEZONE", "ZICHA_LOCALE", "ZICHA_BOT_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZICHA_DB", str(db_path))
    return db_path


def zicha(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


async def join(chat: Chat, code: str) -> None:
    await chat.say(f"/start {code}")
    await chat.press("是，这是我的机构")


def members(db_path: Path) -> set[int]:
    return {r["telegram_id"] for r in read_db(db_path)["members"].rows}


def answers_by(db_path: Path, user: int) -> int:
    return read_db(db_path).execute("SELECT count(*) FROM answers WHERE updated_by = ?", [user]).fetchone()[0]


# --- defect 3: removing staff ---------------------------------------------------------


async def test_staff_removed_from_the_command_line_lose_access_on_their_next_update(
    tg: TelegramStandin, operator: Path, food_lab: Institution, motor_lab: Institution
) -> None:
    db_path = operator
    code = invite(db_path, food_lab.id)
    other_lab_code = invite(db_path, motor_lab.id)
    async with running_bot(tg, db_path):
        removed, colleague, elsewhere = Chat(tg, 9501, "小王"), Chat(tg, 9502, "小李"), Chat(tg, 9503, "小张")
        for chat, with_code in ((removed, code), (elsewhere, other_lab_code)):
            await join(chat, with_code)
        await colleague.say(f"/start {code}")
        tg.add_user(9502, first_name="小李", username="Xiao_Li_QM")  # pressing "yes" with a @username
        await colleague.press("是，这是我的机构")
        screen = removed.current()  # the first question, with its answer buttons
        assert "是，信息无误" in screen.button_texts

        listing = zicha("staff", "list", food_lab.uscc)
        assert listing.exit_code == 0, listing.output
        assert f"{food_lab.name} ({food_lab.uscc}): 2 staff member(s)" in listing.output
        assert "9501\t小王\t-\t" in listing.output and "9502\t小李\t@Xiao_Li_QM\t" in listing.output
        assert format_invite_code(code) in listing.output and "9503" not in listing.output

        # someone of another institution cannot be removed through this one
        wrong = zicha("staff", "remove", food_lab.uscc, "9503")
        assert wrong.exit_code == 1 and f"9503 is not a staff member of {food_lab.name}" in wrong.output
        assert zicha("staff", "remove", "91110108MA01A2B32G", "9501").exit_code == 1  # no such institution

        # a reminder still waiting for them, and one for the colleague
        from storage.outbox import enqueue

        db = open_db(db_path)
        waiting = {user: enqueue(db, kind="reminder", chat_id=user, text=f"{food_lab.name}: 3 days left", quiet=False,
                                 not_before=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
                   for user in (9501, 9502)}  # fmt: skip
        # and one whose request was under way when a crash stopped the bot (at start it would go out again)
        in_flight = enqueue(db, kind="broadcast", chat_id=9501, text="通知", quiet=False,
                            not_before=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))  # fmt: skip
        db.execute("UPDATE outbox SET status = 'sending' WHERE id = ?", [in_flight])
        db.conn.commit()
        db.close()
        result = zicha("staff", "remove", food_lab.uscc, "9501")
        assert result.exit_code == 0, result.output
        assert result.output == f"Removed 9501 (小王) from {food_lab.name} ({food_lab.uscc}).\n"

        # the very next update: the button on the screen they still have is refused...
        answer, _ = await removed.press("是，信息无误", screen)
        assert answer.text == BUTTON_REFUSED and answer.show_alert
        assert answers_by(db_path, 9501) == 0
        # ...and so is everything they type
        mark = tg.mark()
        assert NOT_INVITED in (await removed.say("/start", screen=False)).text
        assert NOT_INVITED in (await removed.say("/progress", screen=False)).text
        assert all(food_lab.name not in text for text in removed.replies_since(mark))
        # the colleague carries on
        await colleague.press("是，信息无误")
        assert answers_by(db_path, 9502) == 1
        # by @username (as Telegram shows it, in any case) works too, for this institution only
        assert "is not a staff member" in zicha("staff", "remove", motor_lab.uscc, "@xiao_li_qm").output
        assert 9502 in members(db_path)
        # removing twice says so
        again = zicha("staff", "remove", food_lab.uscc, "9501")
        assert again.exit_code == 1 and "is not a staff member" in again.output

    assert members(db_path) == {9502, 9503}
    outbox = {r["id"]: (r["status"], r["error"]) for r in read_db(db_path)["outbox"].rows}
    assert outbox[waiting[9501]] == ("failed", "recipient removed from the institution")
    assert outbox[in_flight] == ("failed", "recipient removed from the institution")
    assert outbox[waiting[9502]] == ("pending", None)
    removal = read_db(db_path).execute("SELECT telegram_id, institution_id, invite_code, removed_by FROM member_removals").fetchall()
    assert removal == [(9501, food_lab.id, code, "cli")]


async def test_revoke_keeps_who_joined_unless_asked_to_remove_them(
    tg: TelegramStandin, operator: Path, food_lab: Institution
) -> None:
    db_path = operator
    leaked, kept = invite(db_path, food_lab.id), invite(db_path, food_lab.id)
    async with running_bot(tg, db_path):
        first, second, third = Chat(tg, 9601), Chat(tg, 9602), Chat(tg, 9603)
        await join(first, leaked)
        await join(second, leaked)
        await join(third, kept)

        revoked = zicha("invites", "revoke", format_invite_code(leaked).lower())
        assert revoked.exit_code == 0, revoked.output
        assert revoked.output == (
            f"Revoked staff invite {format_invite_code(leaked)}.\n"
            "2 member(s) who joined with it stay (--remove-members removes them).\n"
        )
        assert members(db_path) == {9601, 9602, 9603}
        newcomer = Chat(tg, 9604)
        assert "该邀请已被撤销" in (await newcomer.say(f"/start {leaked}", screen=False)).text

        removed = zicha("invites", "revoke", leaked, "--remove-members")
        assert removed.exit_code == 0, removed.output
        assert f"{format_invite_code(leaked)} was already revoked." in removed.output
        assert "Removed 2 member(s) who joined with it: 9601 (测试), 9602 (测试)." in removed.output
        for chat in (first, second):
            assert NOT_INVITED in (await chat.say("/start", screen=False)).text
        assert NOT_INVITED not in (await third.say("/progress", screen=False)).text

        assert zicha("invites", "revoke", "not-a-code").exit_code == 1
    assert members(db_path) == {9603}
    assert {r["removed_by"] for r in read_db(db_path)["member_removals"].rows} == {"cli"}


async def test_a_regulator_removes_staff_in_their_scope_after_confirming(
    tg: TelegramStandin, db: sqlite_utils.Database, checklist: Checklist, tmp_path: Path
) -> None:
    fx: Fixture = build_fixture(db, checklist)
    db_path = tmp_path / "zicha.db"
    regulator_id, staff_id = 9201, STAFF + 2  # staff of gd_finished (广东), named 员工2
    foreign_staff = STAFF + 4  # staff of bj_signed (北京)
    code = create_regulator_invite(db, Scope.parse("广东"))
    async with running_bot(tg, db_path, clock=lambda: AFTER):
        regulator = Chat(tg, regulator_id, "监管", language_code="en")
        offer = await regulator.say(f"/start {code}")
        await regulator.press_data(RegulatorJoinCb(confirm=True).pack(), offer)
        staff = Chat(tg, staff_id, "员工2")
        assert fx.names["gd_finished"] in (await staff.say("/progress", screen=False)).text

        detail = await regulator.say(f"/institution {fx.usccs['gd_finished']}")
        assert "Staff bound: 1 (员工2)" in detail.text
        _, listing = await regulator.press("👥 Staff (1)", detail)
        assert f"Staff of {fx.names['gd_finished']}" in listing.text and f"Telegram id {staff_id}" in listing.text
        _, confirm = await regulator.press("✖ Remove 员工2", listing)
        assert "Remove 员工2" in confirm.text and "They lose access with their next message" in confirm.text
        assert members(db_path) >= {staff_id}  # nothing removed before the confirmation
        # "Cancel" goes back to the list and removes nothing
        _, back = await regulator.press("Cancel", confirm)
        assert "✖ Remove 员工2" in back.button_texts and staff_id in members(db_path)
        _, confirm = await regulator.press("✖ Remove 员工2", back)
        answer, done = await regulator.press("Yes, remove", confirm)
        assert answer.text == "Removed."
        assert f"Removed 员工2 from {fx.names['gd_finished']}." in done.text
        assert "Nobody is bound to this institution." in done.text
        assert staff_id not in members(db_path)
        # the removed member's very next update is refused
        assert NOT_INVITED in (await staff.say("/progress", screen=False)).text
        # the same confirmation pressed again removes nothing more and says why
        again = await regulator.press_data(StaffRemoveCb(id=fx.ids["gd_finished"], member=staff_id, ok=True).pack(), done)
        assert again.text == "This person is no longer a staff member of this institution."

        # outside the scope: forged buttons for 北京 look like an unknown institution, remove nothing
        for forged in (
            StaffCb(id=fx.ids["bj_signed"]),
            StaffRemoveCb(id=fx.ids["bj_signed"], member=foreign_staff),
            StaffRemoveCb(id=fx.ids["bj_signed"], member=foreign_staff, ok=True),
            StaffRemoveCb(id=fx.ids["gd_signed"], member=foreign_staff, ok=True),  # not of that institution
        ):
            mark = tg.mark()
            answer = await regulator.press_data(forged.pack(), done)
            assert answer.text in ("No institution found in your scope.", "This person is no longer a staff member of this institution.")
            assert all(fx.names["bj_signed"] not in t for t in regulator.replies_since(mark))
        # ids SQLite cannot hold do not even unpack (bot/telegram/callbacks.Id): the usual stale-button notice
        for huge in (
            StaffRemoveCb.model_construct(id=2**63, member=foreign_staff, ok=True),
            StaffRemoveCb.model_construct(id=fx.ids["gd_signed"], member=2**64, ok=True),
        ):
            answer = await regulator.press_data(huge.pack(), done)
            assert answer.text == "This button is no longer valid."
        # a staff member (not a regulator) pressing a regulator's button removes nobody
        other_staff = Chat(tg, STAFF + 1, "员工1")
        refused = await other_staff.press_data(StaffRemoveCb(id=fx.ids["gd_signed"], member=STAFF + 1, ok=True).pack(), done)
        assert refused.text == "此按钮已失效。"
        assert not tg.unanswered()
    assert members(db_path) == {STAFF + n for n in range(1, 8)} - {staff_id}
    rows = read_db(db_path).execute("SELECT telegram_id, removed_by FROM member_removals").fetchall()
    assert rows == [(staff_id, f"regulator:{regulator_id}")]


async def test_a_regulator_lists_and_removes_staff_who_joined_on_the_web(
    tg: TelegramStandin, db: sqlite_utils.Database, checklist: Checklist, tmp_path: Path
) -> None:
    """Web people have negative ids (storage/web.py): the staff list must show them, its
    buttons must carry their ids, and removing one must end their web session at once."""
    fx: Fixture = build_fixture(db, checklist)
    db_path = tmp_path / "zicha.db"
    code = create_regulator_invite(db, Scope.parse("广东"))
    web = await web_client(db, checklist, db_path, zicha_locale="en")
    try:
        staff_code = create_invite(db, fx.ids["gd_finished"])
        page = await (await web.get(f"/j/{staff_code}")).text()
        await web.post(f"/j/{staff_code}", data={"csrf": csrf_of(page), "step": "confirm", "answer": "yes"})
        joined = await web.post(f"/j/{staff_code}", data={"csrf": csrf_of(page), "step": "name", "name": "王芳<b>"})
        assert joined.status == 200
        web_id = next(r["telegram_id"] for r in db.query("SELECT telegram_id FROM users WHERE channel = 'web'"))
        assert web_id < 0 and web_id in members(db_path)
        assert (await web.get("/chat")).status == 200

        async with running_bot(tg, db_path, clock=lambda: AFTER):
            regulator = Chat(tg, 9202, "监管", language_code="en")
            offer = await regulator.say(f"/start {code}")
            await regulator.press_data(RegulatorJoinCb(confirm=True).pack(), offer)
            detail = await regulator.say(f"/institution {fx.usccs['gd_finished']}")
            _, listing = await regulator.press("👥 Staff (2)", detail)
            assert "王芳&lt;b&gt; · web chat · joined" in listing.html, listing.html
            assert "Telegram id" in listing.text and f"Telegram id {web_id}" not in listing.text
            _, confirm = await regulator.press("✖ Remove 王芳<b>", listing)
            assert "Remove 王芳<b> (web chat) from" in confirm.text
            answer, done = await regulator.press("Yes, remove", confirm)
            assert answer.text == "Removed." and f"Removed 王芳<b> from {fx.names['gd_finished']}." in done.text
            assert not tg.unanswered()
        assert web_id not in members(db_path)
        assert (await web.get("/chat")).status == 401  # the open web session ended with the removal
        rows = read_db(db_path).execute("SELECT telegram_id, removed_by FROM member_removals").fetchall()
        assert rows == [(web_id, "regulator:9202")]
    finally:
        await web.close()


# --- defect 4: revoking and expiring every invite -------------------------------------


async def test_regulator_invites_are_revoked_from_the_command_line(
    tg: TelegramStandin, operator: Path, food_lab: Institution
) -> None:
    db_path = operator
    created = zicha("regulator", "invite", "--scope", "广东", "--max-uses", "3", "--name", "广东省局", "--expires", "14d")
    assert created.exit_code == 0, created.output
    code = created.output.split(": ")[1].split()[0]
    assert "(3 use(s), expires " in created.output
    listed = zicha("invites", "list")
    assert listed.exit_code == 0
    line = next(line for line in listed.output.splitlines() if line.startswith("regulator"))
    assert line.split("\t")[1:5] == [code, "0/3", line.split("\t")[3], "active"] and "province:广东 (广东省局)" in line

    revoked = zicha("invites", "revoke", code)
    assert revoked.exit_code == 0, revoked.output
    assert revoked.output == f"Revoked regulator invite {code}. Regulators who joined with it stay (`zicha regulator remove`).\n"
    assert zicha("invites", "revoke", code).output.endswith("was already revoked.\n")
    assert "--remove-members is for staff codes" in zicha("invites", "revoke", code, "--remove-members").output

    async with running_bot(tg, db_path):
        chat = Chat(tg, 9701, language_code="en")
        assert "withdrawn" in (await chat.say(f"/start {code}", screen=False)).text
    assert get_regulator(open_db(db_path), 9701) is None
    assert "regulator" not in zicha("invites", "list").output
    everything = zicha("invites", "list", "--all").output
    assert f"regulator\t{code}\t0/3\t" in everything and "\trevoked\tprovince:广东" in everything


async def test_expired_invites_are_refused_politely_and_listed(
    tg: TelegramStandin, operator: Path, food_lab: Institution
) -> None:
    db_path = operator
    zicha("invites", "create", food_lab.uscc)  # creates the database
    staff_out = zicha("invites", "create", food_lab.uscc, "--max-uses", "2", "--expires", "2h")
    assert staff_out.exit_code == 0 and "up to 2 staff, expires " in staff_out.output
    staff_code = staff_out.output.split()[0].replace("-", "")
    pending_code = zicha("invites", "create", food_lab.uscc, "--expires", "1h").output.split()[0].replace("-", "")
    reg_out = zicha("regulator", "invite", "--scope", "national", "--expires", "3d")
    reg_code = reg_out.output.split(": ")[1].split()[0].replace("-", "")
    assert zicha("invites", "create", food_lab.uscc, "--expires", "yesterday").output.startswith("Error: --expires:")
    assert "already past" in zicha("regulator", "invite", "--scope", "national", "--expires", "2020-01-01").output

    def time_passes(*codes: str) -> None:
        """Two hours later: the codes' expiry is behind us."""
        past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).isoformat(timespec="microseconds")
        db = open_db(db_path)
        with db.atomic():
            for table in ("invites", "regulator_invites"):
                db.execute(f"UPDATE {table} SET expires_at = ? WHERE code IN ({', '.join('?' * len(codes))})", [past, *codes])
        db.close()

    async with running_bot(tg, db_path):
        late = Chat(tg, 9801, language_code="en")
        offer = await late.say(f"/start {pending_code}")  # shown while still valid...
        time_passes(staff_code, reg_code, pending_code)
        _answer, message = await late.press("Yes, that is my institution", offer)  # ...confirmed after it expired
        assert "This invite has expired. Please ask your regulator for a new one." in message.text
        assert "has expired" in (await late.say(f"/start {staff_code}", screen=False)).text
        assert "has expired" in (await late.say(f"/start {reg_code}", screen=False)).text
        assert NOT_INVITED not in (await Chat(tg, 9802).say(f"/start {staff_code}", screen=False)).text
    assert members(db_path) == set() and get_regulator(open_db(db_path), 9801) is None
    usable = zicha("invites", "--format", "csv").output
    assert staff_code not in usable and pending_code not in usable
    everything = zicha("invites", "list", "--all").output
    assert f"staff\t{format_invite_code(staff_code)}\t0/2\t" in everything
    assert everything.count("\texpired\t") == 3
    # a roster re-import gives the institution a usable code again (the expired ones do not count)
    db = open_db(db_path)
    from storage.institutions import ensure_invites

    assert ensure_invites(db) == 0  # the first code (no expiry) is still usable
    db.execute("UPDATE invites SET revoked_at = 'x' WHERE expires_at IS NULL")
    db.conn.commit()
    assert ensure_invites(db) == 1
    db.close()


def test_expiry_accepts_durations_and_local_dates() -> None:
    now = dt.datetime(2023, 10, 9, 9, 0, tzinfo=SHANGHAI)
    assert parse_expiry("14d", now) == now + dt.timedelta(days=14)
    assert parse_expiry(" 12H ", now) == now + dt.timedelta(hours=12)
    assert parse_expiry("2w", now) == now + dt.timedelta(weeks=2)
    assert parse_expiry("１４ｄ", now) == now + dt.timedelta(days=14)  # typed with a Chinese IME
    # a date is valid through that whole day, in ZICHA_TIMEZONE
    assert parse_expiry("2023-10-27", now) == dt.datetime(2023, 10, 28, 0, 0, tzinfo=SHANGHAI)
    assert parse_expiry("2023-10-27 18:00", now) == dt.datetime(2023, 10, 27, 18, 0, tzinfo=SHANGHAI)
    for bad, reason in (("soon", "neither a duration"), ("2023-10-08", "already past"), ("0d", "already past"),
                        ("2030-01-01", "more than 3 years"), ("2023-13-01", "neither")):  # fmt: skip
        with pytest.raises(ValueError, match=reason):
            parse_expiry(bad, now)


def test_invite_expiry_uses_the_configured_time_zone(operator: Path, monkeypatch: pytest.MonkeyPatch, food_lab: Institution) -> None:
    monkeypatch.setenv("ZICHA_TIMEZONE", "Europe/London")
    out = zicha("invites", "create", food_lab.uscc, "--expires", "2099-01-01")
    assert out.exit_code == 1 and "more than 3 years ahead" in out.output
    year = dt.date.today().year + 1
    out = zicha("invites", "create", food_lab.uscc, "--expires", f"{year}-03-01")
    assert out.exit_code == 0, out.output
    assert f"expires {year}-03-02 00:00)" in out.output
    row = read_db(operator).execute("SELECT expires_at FROM invites WHERE expires_at IS NOT NULL").fetchone()
    assert row[0] == f"{year}-03-02T00:00:00.000000+00:00"  # London midnight in winter = UTC midnight


async def test_the_regulator_staff_view_reads_in_chinese(
    tg: TelegramStandin, db: sqlite_utils.Database, checklist: Checklist, tmp_path: Path
) -> None:
    fx = build_fixture(db, checklist)
    code = create_regulator_invite(db, Scope.parse("广东"))
    async with running_bot(tg, tmp_path / "zicha.db", clock=lambda: AFTER):
        regulator = Chat(tg, 9202, "监管")
        offer = await regulator.say(f"/start {code}")
        await regulator.press_data(RegulatorJoinCb(confirm=True).pack(), offer)
        detail = await regulator.say(f"/institution {fx.usccs['gd_signed']}")
        _, listing = await regulator.press("👥 工作人员（1）", detail)
        assert f"{fx.names['gd_signed']} 工作人员" in listing.text and f"Telegram 用户 ID {STAFF + 1}" in listing.text
        _, confirm = await regulator.press("✖ 移除 员工1", listing)
        assert "确认将 员工1" in confirm.text and "其已填写的答案仍保留在该机构名下" in confirm.text
        answer, done = await regulator.press("确认移除", confirm)
        assert answer.text == "已移除。" and "该机构目前没有已绑定的工作人员。" in done.text
