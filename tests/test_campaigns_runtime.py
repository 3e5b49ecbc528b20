"""Several campaigns at once (issue 9): each institution answers the table of the open
campaigns that cover it, one covered by two chooses at /start (remembered), and answers,
pledges, reminders, digests, status and exports stay apart per campaign."""

from __future__ import annotations

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
from tests.harness import CAMPAIGN_NOW, Chat, invite, read_db, running_bot
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

FOOD = NATIONAL.replace('id = "nat-2023"', 'id = "food-2023"').replace("国家级自查（测试）", "食品专项自查（测试）").replace(
    "National self-check (test)", "Food self-check (test)"
).replace('level = "national"', 'level = "national"\nfields = ["food"]').replace("2023-10-27", "2023-10-25")

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
    import bot.telegram.app as app_module

    monkeypatch.setattr(app_module, "load_checklists", lambda _dir: load_checklists(tables))
    return tmp_path


def _labs(db_path: Path) -> dict[str, int]:
    db = open_db(db_path)
    rows = {
        "national": roster_row("北京国家级检测所", 11, ("motor-vehicle",)),
        "provincial": roster_row("广东省级检测所", 12, ("motor-vehicle",), province="广东")._replace(level="provincial")
        if hasattr(roster_row("x", 1, ()), "_replace")
        else None,
        "both": roster_row("国家级食品检验所", 13, ("food",)),
    }
    if rows["provincial"] is None:
        import dataclasses

        rows["provincial"] = dataclasses.replace(roster_row("广东省级检测所", 12, ("motor-vehicle",), province="广东"), level="provincial")
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
    _answer, shown = await chat.press("是，这是我的机构")
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
    answers = list(db.query("SELECT s.campaign_id, a.item_id FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id"))
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


def _unused() -> None:  # keep imports used by helpers
    _ = (dt, CAMPAIGN_NOW)
