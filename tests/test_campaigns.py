"""Campaigns as data and as stored rows (issue 9): definitions, coverage, the CLI, the
migration of an existing 2023 database, and the demo campaign."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.core.campaigns import (
    CampaignError,
    campaigns_dir,
    covering_campaigns,
    load_campaign,
    load_campaigns,
    parse_campaign,
)
from storage.db import open_db
from storage.migrations import migrations

MIGRATION = "m011_campaigns_and_selfcheck_campaign"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db_path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)
    for name in ("BOT_TOKEN", "ZICHA_CAMPAIGN", "ZICHA_TIMEZONE", "ZICHA_LOCALE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZICHA_DB", str(db_path))
    return db_path


def test_two_campaigns_open_at_once_each_cover_their_own_institutions() -> None:
    shipped = load_campaigns(campaigns_dir(), today=dt.date(2025, 7, 1))
    open_now = [shipped["samr-2025-national"], shipped["gd-2025-provincial"], shipped["samr-2023-national"]]
    national = covering_campaigns(open_now, level="national", province="北京", institution_fields=["food"], today=dt.date(2025, 7, 1))
    provincial = covering_campaigns(open_now, level="provincial", province="广东", institution_fields=["food"], today=dt.date(2025, 7, 1))
    elsewhere = covering_campaigns(open_now, level="provincial", province="浙江", institution_fields=["food"], today=dt.date(2025, 7, 1))
    assert [c.id for c in national] == ["samr-2025-national"]  # 2023 closed on 2023-12-31
    assert [c.id for c in provincial] == ["gd-2025-provincial"]
    assert elsewhere == []
    # Closed by the operator: no longer offered, whatever its dates say.
    assert covering_campaigns(open_now, level="national", province="北京", institution_fields=[], today=dt.date(2025, 7, 1), closed={"samr-2025-national"}) == []


def test_an_institution_covered_by_two_campaigns_gets_both_national_first() -> None:
    today = dt.date(2025, 7, 1)
    base = {"year": 2025, "title": {"zh_CN": "甲", "en": "A"}, "opens": "2025-06-01"}
    everyone = parse_campaign({**base, "checklist": "a", "coverage": {"level": "national"}}, path="a", default_id="a", today=today)
    food = parse_campaign({**base, "checklist": "b", "coverage": {"level": "national", "fields": ["食品"]}}, path="b", default_id="b-food", today=today)
    found = covering_campaigns([food, everyone], level="national", province="北京", institution_fields=["food"], today=today)
    assert [c.id for c in found] == ["a", "b-food"]
    assert [c.id for c in covering_campaigns([food, everyone], level="national", province="北京", institution_fields=["ppe"], today=today)] == ["a"]


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ({"checklist": "x", "year": 2025, "title": {"zh_CN": "a", "en": "a"}, "opens": "2025-06-01", "deadlin": "2025-07-01"}, "unknown key 'deadlin' (did you mean 'deadline'?)"),
        ({"checklist": "x", "year": 2025, "title": {"zh_CN": "a", "en": "a"}, "opens": "2025-06-01", "deadline": "2025-05-01"}, "must lie between opens and closes"),
        ({"checklist": "x", "year": 2025, "title": {"zh_CN": "a", "en": "a"}, "opens": "2025-06-01", "coverage": {"level": "county"}}, "coverage.level must be national or provincial"),
        ({"checklist": "x", "year": 2025, "title": {"zh_CN": "a", "en": "a"}, "opens": "2025-06-01", "coverage": {"level": "provincial", "provinces": ["火星"]}}, "unknown province '火星'"),
        ({"checklist": "x", "year": 2025, "title": {"zh_CN": "a", "en": "a"}, "opens": "2025-06-01", "regulations": ["order39:2031"]}, "has no edition '2031'"),
        ({"checklist": "x", "year": 2025, "title": {"zh_CN": "a", "en": "a"}, "opens": "2025-06-01", "opens_in_days": 3}, "give opens or opens_in_days, not both"),
    ],
)
def test_a_wrong_campaign_definition_names_the_key_and_the_reason(table: dict, reason: str) -> None:
    with pytest.raises(CampaignError, match=None) as caught:
        parse_campaign(table, path="c.toml", default_id="c", today=dt.date(2025, 7, 1))
    assert reason in str(caught.value)


@pytest.mark.parametrize("today", [dt.date(2024, 1, 1), dt.date(2026, 12, 1), dt.date(2031, 5, 17)])
def test_the_demo_campaign_is_live_whatever_the_date(today: dt.date) -> None:
    demo = load_campaign(campaigns_dir() / "demo.toml", today=today)
    assert demo.is_open_on(today) and not demo.overdue_on(today)
    assert demo.deadline == today + dt.timedelta(days=21)
    schedule = demo.schedule("Asia/Shanghai")
    assert schedule is not None and schedule.deadline == demo.deadline


def test_chat_demo_runs_the_demo_campaign_not_an_overdue_one(env: Path) -> None:
    result = CliRunner().invoke(cli, ["chat", "--demo"], input="q\n")
    assert result.exit_code == 0, result.output
    assert "91110108MA01A2B32G" in result.output  # the demo institution was seeded
    with open_db(env) as db:
        selfchecks = list(db.query("SELECT campaign_id FROM selfchecks"))
        demo = db.execute("SELECT status, deadline FROM campaigns WHERE id = 'demo'").fetchone()
    assert selfchecks == [{"campaign_id": "demo"}]
    assert demo[0] == "open" and dt.date.fromisoformat(demo[1]) > dt.date.today()
    listing = CliRunner().invoke(cli, ["campaign", "list"])
    demo_line = next(line for line in listing.output.splitlines() if line.startswith("demo "))
    assert "open, 1 self-checks" in demo_line


def test_campaign_open_show_close_and_list(env: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["campaign", "list"])
    assert listed.exit_code == 0, listed.output
    assert "gd-2025-provincial" in listed.output and "not opened" in listed.output
    opened = runner.invoke(cli, ["campaign", "open", "gd-2025-provincial"])
    assert opened.exit_code == 0, opened.output
    assert "Campaign gd-2025-provincial is open" in opened.output
    shown = runner.invoke(cli, ["campaign", "show", "gd-2025-provincial"])
    assert "covers: provincial institutions; 广东; all fields" in shown.output
    assert "checklist: gd-2025-provincial (12 items, version 2025.1)" in shown.output
    assert "state: open, 0 self-checks" in shown.output
    closed = runner.invoke(cli, ["campaign", "close", "gd-2025-provincial"])
    assert closed.exit_code == 0 and "is closed" in closed.output
    assert "closed" in runner.invoke(cli, ["campaign", "show", "gd-2025-provincial"]).output
    unknown = runner.invoke(cli, ["campaign", "close", "nope"])
    assert unknown.exit_code != 0 and "No stored campaign 'nope'" in unknown.output


def test_campaign_open_refuses_a_checklist_citing_an_edition_not_in_force(env: Path, tmp_path: Path) -> None:
    text = (campaigns_dir() / "gd-2025-provincial.toml").read_text(encoding="utf-8")
    bad = tmp_path / "gd-bad.toml"
    bad.write_text(text.replace('id = "gd-2025-provincial"', 'id = "gd-bad"').replace('"order39:2025", ', ""), encoding="utf-8")
    result = CliRunner().invoke(cli, ["campaign", "open", "--file", str(bad)])
    assert result.exit_code != 0
    assert "cites order39:2025:15 but the campaign's editions in force are order163:2021, review-criteria:2023" in result.output
    with open_db(Path(env)) as db:
        assert db.execute("SELECT count(*) FROM campaigns WHERE id = 'gd-bad'").fetchone()[0] == 0


def _old_database(path: Path) -> None:
    """A database as the previous release left it: a 2023 self-check with answers, their
    history, evidence and a signed (then superseded) submission."""
    db = open_db(path, migrate=False)
    migrations.apply(db, stop_before=MIGRATION)
    now = "2023-10-01T08:00:00.000Z"
    db.execute("INSERT INTO institutions (id, uscc, name, fields, created_at, updated_at) VALUES (1, 'U1', '甲', '[\"food\"]', ?, ?)", [now, now])
    db.execute("INSERT INTO institutions (id, uscc, name, fields, created_at, updated_at) VALUES (2, 'U2', '乙', '[]', ?, ?)", [now, now])
    for sc, inst, checklist in ((1, 1, "samr-2023-national"), (2, 2, "samr-2023-national"), (3, 1, "own-table")):
        db.execute(
            "INSERT INTO selfchecks (id, institution_id, checklist_id, checklist_version, status, started_at, updated_at) "
            "VALUES (?, ?, ?, '2023.2', 'completed', ?, ?)",
            [sc, inst, checklist, now, now],
        )
    for item, value in (("header-details", "yes"), ("lawful-01", "noncompliant"), ("system-08", "compliant")):
        db.execute(
            "INSERT INTO answers (selfcheck_id, item_id, value, problem, rev, answered_by, answered_at, updated_by, updated_at) "
            "VALUES (1, ?, ?, ?, 1, 7, ?, 7, ?)",
            [item, value, "证书过期" if value == "noncompliant" else None, now, now],
        )
        db.execute(
            "INSERT INTO answer_history (selfcheck_id, item_id, rev, changed_by, changed_at, old, new) VALUES (1, ?, 1, 7, ?, NULL, ?)",
            [item, now, json.dumps({"value": value})],
        )
    db.execute(
        "INSERT INTO evidence (selfcheck_id, item_id, kind, file_id, file_unique_id, uploaded_by, uploaded_at) "
        "VALUES (1, 'lawful-01', 'photo', 'F1', 'U1', 7, ?)",
        [now],
    )
    for sid, superseded in ((1, now), (2, None)):
        db.execute(
            "INSERT INTO submissions (id, selfcheck_id, institution_id, pledge_id, pledge_version, signer_name, signer_role, "
            "signed_by, signed_at, canonical, sha256, verification_code, superseded_at) "
            "VALUES (?, 1, 1, 'samr-2023-national', '2023.2', '张三', '法定代表人', 7, ?, '{}', 'abc', ?, ?)",
            [sid, now, f"CODE{sid}", superseded],
        )
    db.conn.commit()
    db.close()


def _snapshot(db, table: str) -> list:
    return [tuple(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()]


def test_a_migrated_2023_database_keeps_every_answer_history_row_and_submission(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_database(path)
    before = open_db(path, migrate=False)
    kept = {t: _snapshot(before, t) for t in ("answers", "answer_history", "evidence", "submissions", "institutions")}
    selfchecks_before = _snapshot(before, "selfchecks")
    columns = [c.name for c in before["selfchecks"].columns]
    before.close()

    db = open_db(path)  # applies the campaigns migration
    for table, rows in kept.items():
        assert _snapshot(db, table) == rows, table
    # Self-checks keep every column and gain their campaign.
    # (in the columns they had, and campaign_id; later migrations add more columns)
    after = [tuple(r) for r in db.execute(f"SELECT {', '.join(columns)}, campaign_id FROM selfchecks ORDER BY rowid")]
    assert [row[:-1] for row in after] == selfchecks_before
    assert [row[-1] for row in after] == ["samr-2023-national", "samr-2023-national", "own-table"]
    campaigns = {r[0]: r for r in db.execute("SELECT id, year, level, deadline, status FROM campaigns").fetchall()}
    assert campaigns["samr-2023-national"] == ("samr-2023-national", 2023, "national", "2023-10-27", "open")
    assert campaigns["own-table"][1] == 2023
    # The 2023 behaviour stands: the running bot finds the same self-check.
    from bot.core.checklist import load_checklists
    from bot.resources import data_dir
    from storage.answers import get_or_create_selfcheck, load_answers

    national = load_checklists(data_dir("checklists"))["samr-2023-national"]
    sc = get_or_create_selfcheck(db, 1, national)
    assert sc.id == 1 and sc.campaign_id == "samr-2023-national"
    assert set(load_answers(db, 1)) == {"header-details", "lawful-01", "system-08"}


def test_zicha_campaign_serves_the_demo_and_the_2025_table_with_its_new_kinds(env: Path) -> None:
    from bot.config import Settings
    from bot.delivery.scheduler import campaign_schedule
    from bot.telegram.app import load_checklist

    settings = Settings(zicha_campaign="demo")
    checklist = load_checklist(settings)
    assert checklist.id == "samr-2023-national" and checklist.campaign_id == "demo"
    assert checklist.deadline is not None and checklist.deadline > dt.date.today()
    schedule = campaign_schedule(settings, checklist)
    assert schedule is not None and schedule.deadline == checklist.deadline
    # The 2025 table uses the new kinds and `relevant` conditions, which the engine shows (issue 9).
    national = load_checklist(Settings(zicha_campaign="samr-2025-national"))
    assert national.id == "samr-2025-national" and national.campaign_id == "samr-2025-national"
    assert {"number", "date", "select_multiple", "attachment", "yes_no"} <= {i.kind for i in national.items}
    with pytest.raises(CampaignError, match="no campaign 'nope'"):
        load_checklist(Settings(zicha_campaign="nope"))
