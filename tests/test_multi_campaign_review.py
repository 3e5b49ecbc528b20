"""Several campaigns at once, driven as a hostile user would, across the channels that
met at the merge: the browser (landing and chat header), the console and the desk."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils
from aiohttp.test_utils import TestClient, TestServer

from bot.i18n import build_i18n
from bot.telegram.app import load_campaign_registry, load_checklist
from bot.web.app import build_web_app
from storage.db import open_db
from storage.institutions import create_invite, get_institution_by_uscc, upsert_institutions
from tests.conftest import roster_row
from tests.harness import Chat, invite, read_db, running_bot
from tests.standin import TelegramStandin
from tests.test_campaigns_runtime import THREE, _answer_first, _join, _labs, campaigns_env  # noqa: F401
from tests.test_web_chat import WebPerson
from tests.web_support import csrf_of, web_settings

DEMOS = "demo,demo-food"


def _food_lab(db: sqlite_utils.Database) -> int:
    """A national lab in motor vehicles and food: covered by ``demo`` and ``demo-food``."""
    row = roster_row("国家级食品检验所", 31, ("motor-vehicle", "food"))
    upsert_institutions(db, [row])
    inst = get_institution_by_uscc(db, row.uscc)
    assert inst is not None
    return inst.id


async def _client(db: sqlite_utils.Database, db_path: Path) -> TestClient:
    settings = web_settings(db_path, zicha_locale="zh_CN", zicha_campaign=DEMOS)
    registry = load_campaign_registry(settings)
    assert registry is not None
    registry.ensure_stored(db)
    app = build_web_app(settings, db, load_checklist(settings), build_i18n("zh_CN"), campaigns=registry)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_the_browser_shows_the_progress_of_the_campaign_the_person_works_on(
    db: sqlite_utils.Database, db_path: Path
) -> None:
    lab = _food_lab(db)
    client = await _client(db, db_path)
    try:
        person = WebPerson(client)
        await person.join(create_invite(db, lab), name="王芳")
        landing = await (await client.get("/")).text()
        assert "已回答" not in landing and 'id="open-chat"' in landing  # no campaign chosen yet: nothing to count
        await person.open()
        assert "选择要填写的自查" in person.page
        # one button per campaign, each with its own key (they once shared "pick_campaign")
        assert {"campaign:demo", "campaign:demo-food"} <= set(person.buttons()), person.buttons()
        await person.press("campaign:demo-food")
        assert "现在填写：演示：食品检验专项自查" in person.page
        await person.press("yes")  # the first item, in the food campaign
        await person.type("王五")
        # the header of the page counts the food campaign's answers, not the national one's
        assert re.search(r'<progress max="\d+" value="2">', person.page), person.page
        # the page names the campaign; its button switches (the web has no /campaign to type)
        assert "自查活动：演示：食品检验专项自查" in person.page
        await person.press("campaigns")
        assert "选择要填写的自查" in person.page and "campaign:demo" in person.buttons()
        await person.press("campaign:demo")
        assert "现在填写：演示：国家级资质认定检验检测机构自查" in person.page and "第 1/46 项" in person.page
        assert re.search(r'<progress max="46" value="0">', person.page)
        await person.press("yes")  # one answer in the national campaign
        await person.press("campaigns")
        # a forged choice (a shipped campaign this deployment does not run): refused, nothing changes
        forged = {
            "csrf": csrf_of(person.page),
            "origin": person.origin(),
            "act": "kind=pick_campaign&campaign=samr-2023-national",
        }
        await person.post(forged)
        assert person.status == 200 and "该自查活动不适用于本机构" in person.page
        await person.press("campaign:demo-food")
        landing = await (await client.get("/")).text()
        assert "自查活动：演示：食品检验专项自查" in landing and "已回答 2 / 46 项" in landing, landing
        rows = {
            r["campaign_id"]: r["n"]
            for r in db.query(
                "SELECT s.campaign_id, count(a.item_id) AS n FROM selfchecks s LEFT JOIN answers a ON a.selfcheck_id = s.id "
                "WHERE s.institution_id = ? GROUP BY s.campaign_id",
                [lab],
            )
        }
        assert rows == {"demo-food": 2, "demo": 1}
    finally:
        await client.close()


@pytest.mark.usefixtures("campaigns_env")
async def test_a_provincial_regulator_finds_an_institution_only_their_campaign_covers(
    tg: TelegramStandin, db_path: Path
) -> None:
    """The first campaign listed is the national one: a 广东 lab it does not cover was "not
    found" for 广东's regulator, and its card counted the national table."""
    from bot.core.scope import Scope
    from storage.regulators import add_regulator

    labs = _labs(db_path)
    code = invite(db_path, labs["provincial"])
    raw = open_db(db_path)
    add_regulator(raw, 8201, Scope(provinces=frozenset({"广东"})), "广东")
    raw.close()
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        staff = Chat(tg, 7301)
        await _join(staff, code)
        await _answer_first(staff)  # gd-01 of the provincial table
        regulator = Chat(tg, 8201)
        screen = await regulator.say("/institution 广东省级检测所")
        assert "广东省级检测所" in screen.text and "未找到" not in screen.text, screen.text
        assert "自查活动：广东省级自查（测试）" in screen.text
        assert "1/2" in screen.text  # its own (provincial, two-item) table, one answered
    db = read_db(db_path)
    assert {
        r["campaign_id"]
        for r in db.query("SELECT campaign_id FROM selfchecks WHERE institution_id = ?", [labs["provincial"]])
    } == {"gd-2023"}


@pytest.mark.usefixtures("campaigns_env")
async def test_an_old_question_of_the_other_campaign_and_forged_campaign_buttons_store_nothing_there(
    tg: TelegramStandin, db_path: Path
) -> None:
    """Both campaigns ask the same table (the same item ids): a press on the food campaign's
    old question after switching to the national one must not answer the national one; a
    button naming a campaign that does not cover the lab is refused."""
    labs = _labs(db_path)
    code = invite(db_path, labs["both"])
    async with running_bot(tg, db_path, zicha_campaign=THREE):
        chat = Chat(tg, 7401)
        await _join(chat, code)
        await chat.press("食品专项自查（测试）")
        old = chat.current()  # the food campaign's first question
        assert "第 1/" in old.text
        await chat.say("/campaign")
        await chat.press("国家级自查（测试）")
        assert "第 1/" in chat.current().text
        yes = next(d for row in old.buttons for _t, d in row if d and d.startswith("a:"))
        await chat.press_data(yes, old)
        # forged: the provincial campaign does not cover this national food lab
        pick = next(d for row in (await chat.say("/campaign")).buttons for _t, d in row if d and "nat-2023" in d)
        answer = await chat.press_data(pick.replace("nat-2023", "gd-2023"), chat.current())
        assert "该自查活动不适用于本机构" in (answer.text or ""), answer.text
    db = read_db(db_path)
    answers = list(
        db.query("SELECT s.campaign_id, a.item_id FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id")
    )
    assert all(a["campaign_id"] != "nat-2023" for a in answers), answers
    assert db.execute("SELECT campaign_id FROM user_campaigns WHERE telegram_id = 7401").fetchone()[0] == "nat-2023"
    assert {
        r["campaign_id"]
        for r in db.query("SELECT campaign_id FROM selfchecks WHERE institution_id = ?", [labs["both"]])
    } <= {"nat-2023", "food-2023"}


async def test_a_colleague_in_the_browser_sees_the_answers_of_the_campaign_chosen_in_telegram(
    tg: TelegramStandin, db: sqlite_utils.Database, db_path: Path
) -> None:
    from tests.test_e2e_interview import join as tg_join

    lab = _food_lab(db)
    code = create_invite(db, lab, max_uses=5)
    now = lambda: dt.datetime.now(ZoneInfo("Asia/Shanghai"))  # noqa: E731 (the demo campaigns' dates count from today)
    async with running_bot(tg, db_path, zicha_campaign=DEMOS, clock=now):
        client = await _client(db, db_path)
        try:
            alice, bob = Chat(tg, 6201, "Alice"), WebPerson(client)
            screen = await tg_join(alice, code)
            assert "选择要填写的自查" in screen.text
            _, screen = await alice.press("演示：食品检验专项自查", screen)
            _, screen = await alice.press("是，信息无误", alice.current())
            await bob.join(code, name="Bob")
            await bob.open()
            await bob.press("campaign:demo-food")
            # Alice's answer is there: Bob goes on at item 2, the header counts it
            assert "第 2/46 项" in bob.page and '<progress max="46" value="1">' in bob.page
            await bob.press("campaigns")
            await bob.press("campaign:demo")
            assert "第 1/46 项" in bob.page and '<progress max="46" value="0">' in bob.page
        finally:
            await client.close()
    stored = {
        (r["campaign_id"], r["answered_by"])
        for r in db.query(
            "SELECT s.campaign_id, a.answered_by FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id"
        )
    }
    assert stored == {("demo-food", 6201)}


@pytest.mark.usefixtures("campaigns_env")
async def test_a_regulator_on_overdue_switches_to_the_other_campaigns_overdue_and_its_pages_stay_there(
    tg: TelegramStandin, db_path: Path
) -> None:
    """/overdue's campaign buttons once opened the other campaign's /status: its overdue
    list could not be reached at all (/overdue always shows the first campaign)."""
    import dataclasses

    from bot.core.scope import Scope
    from storage.regulators import add_regulator

    _labs(db_path)
    raw = open_db(db_path)
    rows = [
        dataclasses.replace(
            roster_row(f"广东省级检测所{n:02d}", 40 + n, ("food",), province="广东"), level="provincial"
        )
        for n in range(16)
    ]
    upsert_institutions(raw, rows)
    add_regulator(raw, 8301, Scope(national=True), "总局")
    raw.close()
    after = dt.datetime(2023, 10, 25, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # past 广东's deadline (10-20)
    async with running_bot(tg, db_path, zicha_campaign=THREE, clock=lambda: after):
        regulator = Chat(tg, 8301)
        await regulator.say("/overdue", screen=False)
        screen = regulator.current()
        assert "自查活动：国家级自查（测试）" in screen.text
        _answer, screen = await regulator.press("广东省级自查（测试）", screen)
        assert "自查活动：广东省级自查（测试）" in screen.text, screen.text
        assert "逾期：17 家" in screen.text and "第 1/2 页" in screen.text, screen.text
        _answer, screen = await regulator.press("下一页 ▶", screen)
        assert "自查活动：广东省级自查（测试）" in screen.text and "第 2/2 页" in screen.text, screen.text
        _answer, screen = await regulator.press("国家级自查（测试）", screen)
        assert (
            "自查活动：国家级自查（测试）" in screen.text and "尚未签署：2 家" in screen.text
        )  # its deadline is later
        assert "广东省级自查（测试）" in screen.button_texts


def test_the_console_names_the_campaign_whose_progress_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both demo campaigns ask the 2023 table, under the same title: after a switch with
    /campaign, /progress said nothing of which campaign it counted."""
    from click.testing import CliRunner

    from bot.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    env = {"ZICHA_DB": str(tmp_path / "demo.db"), "ZICHA_CAMPAIGN": DEMOS, "ZICHA_LOCALE": "zh_CN"}
    run = CliRunner().invoke(cli, ["chat", "--demo"], input="2\n1\n/progress\n/campaign\n1\n/progress\nq\n", env=env)
    assert run.exit_code == 0, run.output
    food, national = run.output.split("现在填写：演示：国家级资质认定检验检测机构自查")
    assert "自查活动：演示：食品检验专项自查\n" in food
    assert (
        "进度：1/46" in food
        and "自查活动：演示：国家级资质认定检验检测机构自查" in national
        and "进度：0/46" in national
    )
    db = read_db(tmp_path / "demo.db")
    assert [
        tuple(r.values())
        for r in db.query("SELECT s.campaign_id, a.item_id FROM answers a JOIN selfchecks s ON s.id = a.selfcheck_id")
    ] == [("demo-food", "header-details")]
