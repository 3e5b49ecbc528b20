"""Several campaigns at once (issue 9): each institution answers the table of the open
campaigns that cover it, one covered by two chooses at /start (remembered), and answers,
pledges, reminders, digests, status and exports stay apart per campaign."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import shutil
from pathlib import Path

import pytest

from bot.core import campaigns as campaign_defs
from bot.core.checklist import load_checklists
from bot.resources import data_dir
from storage.db import open_db
from storage.institutions import get_institution_by_uscc, upsert_institutions
from tests.conftest import roster_row
from tests.harness import Chat, invite, read_db, running_bot
from tests.standin import TelegramStandin

NATIONAL = """[campaign]
id = "nat-2023"
year = 2023
title.zh_CN = "国家级自查（测试）"
title.en = "National self-check (test)"
checklist = "samr-2023-national"
pledge = "samr-2023-national"
opens = 2023-09-01
deadline = 2023-10-27
closes = 2023-12-31
reminder_days = [14, 7, 3, 1, 0]
send_time = "09:00"
quiet_hours = "21:00-08:00"
[campaign.coverage]
level = "national"
"""

PROVINCIAL = """[campaign]
id = "gd-2023"
year = 2023
title.zh_CN = "广东省级自查（测试）"
title.en = "Guangdong self-check (test)"
checklist = "gd-mini"
pledge = "samr-2023-national"
opens = 2023-09-01
deadline = 2023-10-20
closes = 2023-12-31
reminder_days = [11, 3]
send_time = "09:00"
quiet_hours = "21:00-08:00"
[campaign.coverage]
level = "provincial"
provinces = ["广东"]
"""

FOOD = (
    NATIONAL.replace('id = "nat-2023"', 'id = "food-2023"')
    .replace("国家级自查（测试）", "食品专项自查（测试）")
    .replace("National self-check (test)", "Food self-check (test)")
    .replace('level = "national"', 'level = "national"\nfields = ["food"]')
    .replace("2023-10-27", "2023-10-25")
)

GD_MINI = """[checklist]
id = "gd-mini"
version = "1"
campaign = "2023"
source = "测试"
title.zh_CN = "广东省级自查表（测试）"
title.en = "Guangdong table (test)"

[[sections]]
id = "gd"
title.zh_CN = "省级事项"
title.en = "Provincial matters"

[[sections.items]]
id = "gd-01"
kind = "confirm"
text.zh_CN = "本机构已按广东省要求报送年度统计数据。"
text.en = "The institution has reported its annual statistics as Guangdong requires."

[[sections.items]]
id = "gd-02"
kind = "confirm"
text.zh_CN = "本机构已公开资质认定证书信息。"
text.en = "The institution publishes its CMA certificate details."
"""


@pytest.fixture
def campaigns_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three campaign files and a small provincial table next to the shipped ones."""
    camp = tmp_path / "campaigns"
    camp.mkdir()
    (camp / "nat-2023.toml").write_text(NATIONAL, encoding="utf-8")
    (camp / "gd-2023.toml").write_text(PROVINCIAL, encoding="utf-8")
    (camp / "food-2023.toml").write_text(FOOD, encoding="utf-8")
    tables = tmp_path / "tables"
    tables.mkdir()
    shutil.copy(data_dir("checklists") / "samr-2023-national.toml", tables)
    (tables / "gd-mini.toml").write_text(GD_MINI, encoding="utf-8")
    monkeypatch.setattr(campaign_defs, "campaigns_dir", lambda: camp)
    import bot.core.checklist as checklist_module
    import bot.telegram.app as app_module

    real = checklist_module.load_checklists
    monkeypatch.setattr(app_module, "load_checklists", lambda _dir: real(tables))
    monkeypatch.setattr(checklist_module, "load_checklists", lambda _dir: real(tables))
    return tmp_path


def _labs(db_path: Path) -> dict[str, int]:
    """A nationally accredited lab, one 广东 accredits, and a national food lab (covered by
    the national campaign and the national food campaign)."""
    db = open_db(db_path)
    rows = {
        "national": roster_row("北京国家级检测所", 11, ("motor-vehicle",)),
        "provincial": dataclasses.replace(
            roster_row("广东省级检测所", 12, ("motor-vehicle",), province="广东"), level="provincial"
        ),
        "both": roster_row("国家级食品检验所", 13, ("food",)),
    }
    upsert_institutions(db, list(rows.values()))
    ids = {}
    for key, row in rows.items():
        inst = get_institution_by_uscc(db, row.uscc)
        assert inst is not None
        ids[key] = inst.id
    db.close()
    return ids


async def _join(chat: Chat, code: str):
    screen = await chat.say(f"/start {code}")
    assert "此邀请对应以下机构" in screen.text
    _answer, _shown = await chat.press("是，这是我的机构")
    return chat.current()


THREE = "nat-2023,gd-2023,food-2023"


async def _answer_first(chat: Chat):
    """Press the first answer button of the current question (the confirm item's "yes")."""
    screen = chat.current()
    data = next(d for row in screen.buttons for _t, d in row if d and d.startswith("a:"))
    return await chat.press_data(data, screen)


async def test_each_institution_sees_only_its_table_and_one_covered_by_two_chooses(
    tg: TelegramStandin, db_path: Path, campaigns_env: Path
) -> None:
    labs = _labs(db_path)
    codes = {k: invite(db_path, v) for k, v in labs.items()}
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        national, provincial, both = Chat(tg, 7101), Chat(tg, 7102), Chat(tg, 7103)
        screen = await _join(national, codes["national"])
        assert "第 1/" in screen.text and "选择要填写的自查" not in screen.text  # one campaign: straight in
        screen = await _join(provincial, codes["provincial"])
        assert "本机构已按广东省要求报送年度统计数据" in screen.text  # the provincial table's first item
        screen = await _join(both, codes["both"])
        assert "选择要填写的自查" in screen.text
        assert "国家级自查（测试）" in screen.text and "食品专项自查（测试）" in screen.text
        assert "广东省级自查（测试）" not in screen.text
        await both.press("食品专项自查（测试）")
        screen = both.current()
        assert "第 1/" in screen.text
        # answers apart per campaign: the national lab answers its first (confirm) item
        await _answer_first(national)
    db = read_db(db_path)
    rows = {
        (r["institution_id"], r["campaign_id"], r["checklist_id"])
        for r in db.query("SELECT institution_id, campaign_id, checklist_id FROM selfchecks")
    }
    assert (labs["national"], "nat-2023", "samr-2023-national") in rows
    assert (labs["provincial"], "gd-2023", "gd-mini") in rows
    assert (labs["both"], "food-2023", "samr-2023-national") in rows
    assert not any(r[0] == labs["provincial"] and r[1] != "gd-2023" for r in rows)
    assert db.execute("SELECT campaign_id FROM user_campaigns WHERE telegram_id = 7103").fetchone()[0] == "food-2023"
    answers = list(
        db.query("SELECT s.campaign_id, a.item_id FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id")
    )
    assert answers == [{"campaign_id": "nat-2023", "item_id": "header-details"}]

    # The choice survives a restart; /campaign switches, and the other campaign's answers stay apart.
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        both = Chat(tg, 7103)
        screen = await both.say("/start")
        assert "选择要填写的自查" not in screen.text and "第 1/" in screen.text
        await _answer_first(both)
        screen = await both.say("/campaign")
        assert "✓ 食品专项自查（测试）" in str(screen.buttons)
        await both.press("国家级自查（测试）")
        assert "现在填写：国家级自查（测试）" in " ".join(both.replies_since(0))
        assert "第 1/" in both.current().text  # a fresh self-check: nothing carried from the food campaign
    db = read_db(db_path)
    by_campaign = {
        r["campaign_id"]: r["n"]
        for r in db.query(
            "SELECT s.campaign_id, count(a.item_id) AS n FROM selfchecks s LEFT JOIN answers a ON a.selfcheck_id = s.id "
            "WHERE s.institution_id = ? GROUP BY s.campaign_id",
            [labs["both"]],
        )
    }
    assert by_campaign == {"food-2023": 1, "nat-2023": 0}
    assert db.execute("SELECT campaign_id FROM user_campaigns WHERE telegram_id = 7103").fetchone()[0] == "nat-2023"


async def test_a_closed_campaign_stays_readable_but_read_only(
    tg: TelegramStandin, db_path: Path, campaigns_env: Path
) -> None:
    labs = _labs(db_path)
    code = invite(db_path, labs["both"])
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        chat = Chat(tg, 7201)
        await _join(chat, code)
        await chat.press("食品专项自查（测试）")
        await _answer_first(chat)
    db = open_db(db_path)
    from storage.campaigns import close_campaign

    close_campaign(db, "food-2023")
    db.close()
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        chat = Chat(tg, 7201)
        screen = await chat.say("/start")  # the chosen campaign is closed: still the one shown
        screen = await chat.say("/campaign")
        assert "已结束，只读" in screen.text
        await chat.press("✓ 食品专项自查（测试）")
        mark = tg.mark()
        assert "请填写本次自查负责人的姓名" in chat.current().text
        await chat.say("王五")  # the typed answer of a closed campaign is refused, politely
        assert any("该自查活动已结束" in text for text in chat.replies_since(mark))
    db = read_db(db_path)
    n = db.execute(
        "SELECT count(*) FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id WHERE s.campaign_id = 'food-2023'"
    ).fetchone()[0]
    assert n == 1  # kept, and nothing more written


def test_a_database_created_in_2023_keeps_everything_and_takes_a_second_campaign(tmp_path: Path) -> None:
    """tests/data/zicha-75a41b5.db.gz (made before campaigns existed), with a self-check,
    answers, history, a submission and a reminder written in its schema: after every
    migration all of it is there, in the 2023 campaign, and the same institution can start
    a self-check of another campaign on the same table."""
    path = tmp_path / "old.db"
    with gzip.open(Path(__file__).parent / "data" / "zicha-75a41b5.db.gz") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    raw = open_db(path, migrate=False)
    inst = raw.execute("SELECT id FROM institutions WHERE uscc = 'X'").fetchone()[0]
    now = "2023-10-01T08:00:00.000Z"
    raw.execute(
        "INSERT INTO selfchecks (id, institution_id, checklist_id, checklist_version, status, started_at, updated_at) "
        "VALUES (5, ?, 'samr-2023-national', '2023.2', 'in_progress', ?, ?)",
        [inst, now, now],
    )
    raw.execute(
        "INSERT INTO answers (selfcheck_id, item_id, value, rev, answered_by, answered_at, updated_by, updated_at) "
        "VALUES (5, 'lawful-01', 'compliant', 2, 7, ?, 7, ?)",
        [now, now],
    )
    for rev in (1, 2):
        raw.execute(
            "INSERT INTO answer_history (selfcheck_id, item_id, rev, changed_by, changed_at, old, new) "
            "VALUES (5, 'lawful-01', ?, 7, ?, NULL, '{}')",
            [rev, now],
        )
    raw.execute(
        "INSERT INTO submissions (id, selfcheck_id, institution_id, pledge_id, pledge_version, signer_name, signer_role, "
        "signed_by, signed_at, canonical, sha256, verification_code) "
        "VALUES (9, 5, ?, 'samr-2023-national', '2023.2', '张三', '法定代表人', 7, ?, '{}', 'abc', 'CODE9')",
        [inst, now],
    )
    raw.execute("INSERT INTO users (telegram_id, first_name, created_at, updated_at) VALUES (7, 'a', ?, ?)", [now, now])
    raw.execute(
        "INSERT INTO reminders_sent (telegram_id, checklist_id, reminder, institution_id, created_at) "
        "VALUES (7, 'samr-2023-national', 'd7', ?, ?)",
        [inst, now],
    )
    raw.conn.commit()
    raw.close()

    db = open_db(path)
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # back on after migrating
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert [tuple(r) for r in db.execute("SELECT id, campaign_id, checklist_id FROM selfchecks").fetchall()] == [
        (5, "samr-2023-national", "samr-2023-national")
    ]
    assert db.execute("SELECT count(*) FROM answer_history WHERE selfcheck_id = 5").fetchone()[0] == 2
    assert db.execute("SELECT value, rev FROM answers WHERE selfcheck_id = 5").fetchone() == ("compliant", 2)
    assert db.execute("SELECT selfcheck_id, verification_code FROM submissions").fetchone() == (5, "CODE9")
    from storage import reminders

    assert reminders.reminded(db, "samr-2023-national", "d7") == {7}
    assert reminders.reminded(db, "demo", "d7") == set()
    # One self-check per institution and campaign: the demo runs the same table beside it.
    from storage.answers import get_or_create_selfcheck

    table = load_checklists(data_dir("checklists"))["samr-2023-national"]
    assert get_or_create_selfcheck(db, inst, table).id == 5
    other = get_or_create_selfcheck(db, inst, table.for_campaign("demo", None))
    assert other.id != 5 and other.campaign_id == "demo"
    db.close()


def _cli(db_path: Path, *args: str):
    from click.testing import CliRunner

    from bot.cli import cli

    env = {"ZICHA_DB": str(db_path), "ZICHA_CAMPAIGN": THREE, "ZICHA_LOCALE": "zh_CN", "BOT_TOKEN": ""}
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def _seed(db_path: Path) -> dict[str, int]:
    """The three labs with one staff member each (7301 national, 7302 provincial, 7303
    both), the national lab's first answer in the national campaign, two regulators."""
    import bot.core.checklist as checklist_module
    from bot.campaign_runtime import CampaignRegistry
    from bot.core.campaigns import load_campaigns
    from bot.core.interview import Choice
    from bot.core.scope import Scope
    from bot.selfcheck import open_workspace
    from storage.institutions import bind_member, create_invite, get_institution
    from storage.regulators import add_regulator

    labs = _labs(db_path)
    db = open_db(db_path)
    for user, key in ((7301, "national"), (7302, "provincial"), (7303, "both")):
        bind_member(db, user, create_invite(db, labs[key]), first_name=key, username=None)
    registry = CampaignRegistry(
        load_campaigns(campaign_defs.campaigns_dir(), today=dt.date.today()).values(),
        checklist_module.load_checklists(Path("patched")),
    )
    registry.ensure_stored(db)
    lab = get_institution(db, labs["national"])
    assert lab is not None
    ws = open_workspace(db, registry.checklists["nat-2023"], lab)
    ws.record_choice("header-details", Choice.YES, by=7301, expected_rev=0)
    add_regulator(db, 8001, Scope(national=True), "总局")
    add_regulator(db, 8002, Scope(provinces=frozenset({"北京"})), "北京")
    db.close()
    return labs


async def test_the_daily_digest_job_sends_a_digest_per_open_campaign_through_the_report_worker(
    db_path: Path, campaigns_env: Path
) -> None:
    """The scheduled job (not the CLI) on a database file: the digests are written in the
    report worker process, one per open campaign in each regulator's scope, as in memory."""
    from bot.config import load_settings
    from bot.reports import jobs
    from bot.services.digests import DIGEST_JOB
    from bot.telegram.app import build_app

    camp = campaigns_env / "campaigns"
    for name, text, days in (("nat-2023", NATIONAL, 14), ("gd-2023", PROVINCIAL, 7), ("food-2023", FOOD, 12)):
        (camp / f"{name}.toml").write_text(_relative(text, days), encoding="utf-8")
    _seed(db_path)
    settings = load_settings(_env_file=None, zicha_db=db_path, zicha_campaign=THREE, zicha_locale="zh_CN", bot_token="")
    now = dt.datetime.combine(dt.date.today(), dt.time(9, 0), tzinfo=settings.tz)
    db = open_db(db_path)
    try:
        app = build_app(settings, db, clock=lambda: now)
        assert app.scheduler is not None and not jobs.in_memory(settings.zicha_db)
        job = app.scheduler.get_job(DIGEST_JOB)
        await job.func()
        await job.func()  # once per regulator, campaign and day
    finally:
        jobs.shutdown()
        db.close()
    db = read_db(db_path)
    snaps = sorted((r["regulator_id"], r["campaign_id"]) for r in db.query("SELECT * FROM digest_snapshots"))
    assert snaps == [(8001, "food-2023"), (8001, "gd-2023"), (8001, "nat-2023"), (8002, "food-2023"), (8002, "nat-2023")]
    assert db.execute("SELECT count(*) FROM outbox WHERE kind LIKE 'digest%'").fetchone()[0] >= 5


def _relative(text: str, deadline_in_days: int) -> str:
    """The campaign with dates counted from today (so the CLI, which runs today, sees it open)."""
    lines = [line for line in text.splitlines() if not line.startswith(("opens =", "deadline =", "closes ="))]
    at = lines.index("[campaign.coverage]")
    lines[at:at] = ["opens_in_days = -30", f"deadline_in_days = {deadline_in_days}", "closes_in_days = 60"]
    return "\n".join(lines) + "\n"


def test_reminders_digests_and_exports_stay_apart_per_campaign(
    db_path: Path, campaigns_env: Path, tmp_path: Path
) -> None:
    camp = campaigns_env / "campaigns"
    for name, text, days in (("nat-2023", NATIONAL, 14), ("gd-2023", PROVINCIAL, 7), ("food-2023", FOOD, 12)):
        (camp / f"{name}.toml").write_text(_relative(text, days), encoding="utf-8")
    labs = _seed(db_path)
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    at = f"{today} 09:00"
    # Each campaign on its own schedule: d14 of the national (deadline in 14 days) and food
    # (12 days) campaigns, d11 of Guangdong's (7 days); each to the staff it covers.
    out = _cli(db_path, "remind", "--dry-run", "--at", at)
    blocks = {b.split(":")[0].strip(): b for b in out.split("\n") if b.startswith(("nat-", "gd-", "food-"))}
    assert set(blocks) == {"nat-2023", "gd-2023", "food-2023"}
    _cli(db_path, "remind", "--queue-only", "--at", at)
    _cli(db_path, "remind", "--queue-only", "--at", at)  # a second sweep queues nothing more
    db = read_db(db_path)
    sent = sorted((r["telegram_id"], r["campaign_id"], r["reminder"]) for r in db.query("SELECT * FROM reminders_sent"))
    assert sent == [
        (7301, "nat-2023", "d14"),
        (7302, "gd-2023", "d11"),
        (7303, "food-2023", "d14"),
        (7303, "nat-2023", "d14"),
    ]
    assert db.execute("SELECT count(*) FROM outbox WHERE kind = 'reminder'").fetchone()[0] == 4
    only = _cli(
        db_path, "remind", "--dry-run", "--campaign", "gd-2023", "--at", f"{today + dt.timedelta(days=4)} 09:00"
    )
    assert "gd-2023: deadline" in only and "nat-2023" not in only and "7302" in only and "7301" not in only

    # Digests: one per open campaign of each regulator's scope (北京 sees no Guangdong campaign).
    out = _cli(db_path, "digest", "--send")
    db = read_db(db_path)
    snaps = sorted((r["regulator_id"], r["campaign_id"]) for r in db.query("SELECT * FROM digest_snapshots"))
    assert snaps == [
        (8001, "food-2023"),
        (8001, "gd-2023"),
        (8001, "nat-2023"),
        (8002, "food-2023"),
        (8002, "nat-2023"),
    ]
    assert "No digest due" in _cli(db_path, "digest", "--send", "--campaign", "gd-2023")  # once per campaign and day
    shown = _cli(db_path, "digest", "--dry-run", "--campaign", "gd-2023")
    assert "自查活动：广东省级自查（测试）" in shown and "--- daily digest for 8002" not in shown  # 北京: not theirs

    # Exports: one workbook per open campaign, each with only its institutions and answers.
    from openpyxl import load_workbook

    out = _cli(db_path, "export", "--scope", "national", "-o", str(tmp_path / "all.xlsx"))
    assert "all-nat-2023.xlsx" in out and "all-gd-2023.xlsx" in out and "all-food-2023.xlsx" in out

    def names(path: Path, sheet: str) -> set[str]:
        wb = load_workbook(path, read_only=True)
        return {str(c) for row in wb[sheet].iter_rows(values_only=True) for c in row if c}

    gd = names(tmp_path / "all-gd-2023.xlsx", "机构 Institutions")
    assert "广东省级检测所" in gd and "北京国家级检测所" not in gd and "国家级食品检验所" not in gd
    nat = names(tmp_path / "all-nat-2023.xlsx", "机构 Institutions")
    assert {"北京国家级检测所", "国家级食品检验所"} <= nat and "广东省级检测所" not in nat
    assert "北京国家级检测所" in names(tmp_path / "all-nat-2023.xlsx", "答案 Answers")  # its one answer
    assert "北京国家级检测所" not in names(tmp_path / "all-food-2023.xlsx", "答案 Answers")
    assert "国家级食品检验所" not in names(tmp_path / "all-food-2023.xlsx", "答案 Answers")  # nothing answered there
    # Broadcasts: a campaign narrows the scope to the staff of the institutions it covers.
    out = _cli(
        db_path,
        "broadcast",
        "--scope",
        "national",
        "--campaign",
        "gd-2023",
        "--text",
        "请按时完成省级自查",
        "--yes",
        "--queue-only",
    )
    assert "Recipients: 1 staff of 1 institution(s) in national, campaign gd-2023" in out
    db = read_db(db_path)
    assert [r["chat_id"] for r in db.query("SELECT chat_id FROM outbox WHERE kind = 'broadcast'")] == [7302]
    assert "Recipients: 3 staff of 3" in _cli(
        db_path, "broadcast", "--scope", "national", "--text", "x", "--yes", "--queue-only"
    )
    single = tmp_path / "gd.xlsx"
    assert f"Wrote {single}" in _cli(db_path, "export", "--campaign", "gd-2023", "-o", str(single))
    assert labs


async def test_the_pledge_is_the_campaigns_and_stays_readable_once_the_campaign_closes(
    tg: TelegramStandin, db_path: Path, campaigns_env: Path
) -> None:
    from tests.test_pledge_e2e import button, sign_as

    labs = _labs(db_path)
    code = invite(db_path, labs["provincial"])
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        chat = Chat(tg, 7401)
        await _join(chat, code)
        await _answer_first(chat)
        await _answer_first(chat)
        summary = chat.current()
        assert "自查已完成" in summary.text
        _, preview = await chat.press(button(summary, "✍️"), summary)
        # The gd-mini table has no pledge of its own: the campaign's pledge file is used.
        confirm = await sign_as(chat, preview)
        # Signing makes the PDF before it answers the press: slow on a loaded machine.
        query = tg.press(7401, confirm, text=button(confirm, "✅"))
        await tg.wait_answered(query, timeout=120)
        assert "✅" in chat.current().text
        assert tg.messages(7401)[-1].kind == "document"
    db = read_db(db_path)
    row = next(
        db.query(
            "SELECT s.campaign_id, sub.pledge_id FROM submissions sub JOIN selfchecks s ON s.id = sub.selfcheck_id"
        )
    )
    assert row == {"campaign_id": "gd-2023", "pledge_id": "samr-2023-national"}
    raw = open_db(db_path)
    from storage.campaigns import close_campaign

    close_campaign(raw, "gd-2023")
    raw.close()
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        chat = Chat(tg, 7401)
        documents = len([m for m in tg.messages(7401) if m.kind == "document"])
        mark = tg.mark()
        await chat.say("/pledge", screen=False)  # readable: the signed pledge and its PDF again
        await tg.wait_for(lambda c: c.method == "sendDocument" and c.ok, after=mark, timeout=120, what="the PDF")
        assert len([m for m in tg.messages(7401) if m.kind == "document"]) == documents + 1
        signed = chat.latest_with_button(button(chat.current(), "✏️"))
        answer, _shown = await chat.press(button(signed, "✏️"), signed)  # revising is refused: closed
        assert "该自查活动已结束" in (answer.text or "")
    db = read_db(db_path)
    assert db.execute("SELECT count(*) FROM submissions WHERE superseded_at IS NULL").fetchone()[0] == 1


async def test_a_regulator_picks_the_campaign_in_status_overdue_and_export(
    tg: TelegramStandin, db_path: Path, campaigns_env: Path
) -> None:
    from bot.core.scope import Scope
    from storage.regulators import add_regulator

    _labs(db_path)
    raw = open_db(db_path)
    add_regulator(raw, 8101, Scope(national=True), "总局")
    add_regulator(raw, 8102, Scope(provinces=frozenset({"北京"})), "北京")
    raw.close()
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        national = Chat(tg, 8101)
        screen = await national.say("/status", screen=False)
        screen = national.current()
        # Default: the first open campaign of the scope (national first), a button for each other.
        assert "自查活动：国家级自查（测试）" in screen.text and "机构数：2" in screen.text
        assert set(screen.button_texts) == {"广东省级自查（测试）", "食品专项自查（测试）"}
        _answer, screen = await national.press("广东省级自查（测试）", screen)
        assert "自查活动：广东省级自查（测试）" in screen.text and "机构数：1" in screen.text
        assert "国家级自查（测试）" in screen.button_texts
        overdue = await national.say("/overdue", screen=False)
        assert "自查活动：国家级自查（测试）" in national.current().text
        mark = tg.mark()
        await national.say("/export gd-2023", screen=False)
        call = await tg.wait_for(
            lambda c: c.method == "sendDocument" and c.ok, after=mark, timeout=120, what="the workbook"
        )
        assert "广东省级自查（测试）" in str(call.params.get("caption"))
        assert "gd-2023" in str(tg.messages(8101)[-1].file.file_name)
        # 北京's regulator does not see Guangdong's campaign at all.
        beijing = Chat(tg, 8102)
        await beijing.say("/status", screen=False)
        assert "广东省级自查（测试）" not in " ".join(beijing.current().button_texts)
        answer = await beijing.press_data("rgc:gd-2023", beijing.current())
        assert "不在您的监管范围内" in (answer.text or "")
    assert overdue is not None


def test_the_console_offers_the_choice_and_remembers_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`zicha chat --demo` with the two shipped demo campaigns: the demo institution (motor
    vehicles and food) is covered by both, chooses, and the next session goes on there."""
    from click.testing import CliRunner

    from bot.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    env = {"ZICHA_DB": str(tmp_path / "demo.db"), "ZICHA_CAMPAIGN": "demo,demo-food", "ZICHA_LOCALE": "zh_CN"}
    first = CliRunner().invoke(cli, ["chat", "--demo"], input="2\n1\nq\n", env=env)
    assert first.exit_code == 0, first.output
    assert "选择要填写的自查" in first.output and "[2] 演示：食品检验专项自查" in first.output
    assert "现在填写：演示：食品检验专项自查" in first.output and "第 2/" in first.output
    second = CliRunner().invoke(cli, ["chat"], input="/progress\nq\n", env=env)
    assert second.exit_code == 0, second.output
    assert "选择要填写的自查" not in second.output and "进度：1/" in second.output
    db = read_db(tmp_path / "demo.db")
    assert [
        tuple(r.values())
        for r in db.query("SELECT s.campaign_id, a.item_id FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id")
    ] == [("demo-food", "header-details")]


def test_every_button_prefix_is_its_own() -> None:
    """A campaign's /status button once shared its prefix with the staff list's: each
    CallbackData factory of every router must have a prefix no other one has."""
    from aiogram.filters.callback_data import CallbackData

    import bot.telegram.app  # noqa: F401  (imports every router and its factories)

    def subclasses(cls: type[CallbackData]) -> list[type[CallbackData]]:
        found: list[type[CallbackData]] = []
        for sub in cls.__subclasses__():
            found += [sub, *subclasses(sub)]
        return found

    prefixes = [c.__prefix__ for c in subclasses(CallbackData) if c.__module__.startswith("bot.")]
    assert len(prefixes) == len(set(prefixes)), sorted(prefixes)


async def test_a_regulator_broadcasts_to_the_staff_one_campaign_covers(
    tg: TelegramStandin, db_path: Path, campaigns_env: Path
) -> None:
    """/broadcast food-2023 reaches only the staff of institutions the food campaign covers;
    a campaign outside the scope (or made up) is refused and nothing is queued."""
    from bot.core.scope import Scope
    from storage.institutions import create_invite
    from storage.regulators import add_regulator

    ids = _labs(db_path)
    raw = open_db(db_path)
    add_regulator(raw, 8201, Scope(national=True), "总局")
    add_regulator(raw, 8202, Scope(provinces=frozenset({"北京"})), "北京")
    codes = {key: create_invite(raw, inst, max_uses=5) for key, inst in ids.items()}
    raw.close()
    staff = {"national": 8301, "provincial": 8302, "both": 8303}
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        for key, user in staff.items():
            await _join(Chat(tg, user), codes[key])
        beijing = Chat(tg, 8202)
        await beijing.say("/broadcast gd-2023", screen=False)
        assert "您的监管范围内没有该自查活动" in tg.messages(8202)[-1].text
        national = Chat(tg, 8201)
        await national.say("/broadcast food-2023", screen=False)
        assert "食品专项自查（测试）" in tg.messages(8201)[-1].text
        await national.say("请在周五前完成食品专项自查。", screen=False)
        preview = await national.next_screen(0)
        assert preview.button_texts[0] == "发送给 1 人"  # only the food lab's one member
        answer, _ = await national.press(preview.button_texts[0], preview)
        assert answer.text  # "queued"
        await tg.wait_until(lambda: any("食品专项" in m.text for m in tg.messages(8303)) or None, what="the food lab's message")
    assert not any("食品专项" in m.text for m in tg.messages(8301) + tg.messages(8302))
    rows = list(read_db(db_path)["outbox"].rows_where("kind = 'broadcast'"))
    assert [r["chat_id"] for r in rows] == [8303]


async def test_a_campaign_that_no_longer_covers_the_institution_stays_readable_with_its_reason(
    tg: TelegramStandin, db_path: Path, campaigns_env: Path
) -> None:
    """The roster moves a food lab out of food while the food campaign is open: its
    self-check there stays listed and readable (its answers, a signed pledge), says why it
    cannot be changed, and the campaign that still covers it is the one to work on."""
    labs = _labs(db_path)
    code = invite(db_path, labs["both"])
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        chat = Chat(tg, 7211)
        await _join(chat, code)
        await chat.press("食品专项自查（测试）")
        await _answer_first(chat)
    db = open_db(db_path)
    upsert_institutions(db, [roster_row("国家级食品检验所", 13, ("motor-vehicle",))])  # no longer food
    db.close()
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        chat = Chat(tg, 7211)
        await chat.say("/start")  # the chosen campaign: still shown, read-only
        screen = await chat.say("/campaign")
        assert "不再涵盖本机构，只读" in screen.text and "国家级自查（测试）" in screen.text
        await chat.press("✓ 食品专项自查（测试）")
        mark = tg.mark()
        await chat.say("王五")  # a typed answer: refused with the reason, not "closed"
        told = " ".join(chat.replies_since(mark))
        assert "不再涵盖本机构" in told and "已结束" not in told
        choice = await chat.say("/campaign")
        mark = tg.mark()
        await chat.press("国家级自查（测试）", choice)  # the campaign that still covers it: open to answers
        assert any("现在填写：国家级自查（测试）" in text for text in chat.replies_since(mark))
    db = read_db(db_path)
    n = db.execute(
        "SELECT count(*) FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id WHERE s.campaign_id = 'food-2023'"
    ).fetchone()[0]
    assert n == 1  # kept, and nothing more written
