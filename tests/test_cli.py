"""The zicha command line, run as an operator would."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.core.invites import normalize_invite_code
from bot.core.roster import ROSTER_COLUMNS
from bot.core.uscc import make_uscc
from storage.db import open_db


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db_path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "ZICHA_TIMEZONE", "ZICHA_LOCALE", "ZICHA_BOT_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZICHA_DB", str(db_path))
    return db_path


def write_roster(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ROSTER_COLUMNS)
        writer.writerows(rows)
    return path


GOOD = [
    ["甲检测有限公司", make_uscc("91110108MA01A2B3X"), "230000000001", "北京", "national", "food;motor-vehicle", "张三", "13812345678"],
    ["=乙检测中心", make_uscc("12440000455687312"), "230000000002", "广东省", "provincial", "食品检验", "李四", "020-12345678"],
]


def test_roster_import_reports_every_bad_row_and_imports_nothing(env: Path, tmp_path: Path) -> None:
    bad = [
        GOOD[0],
        ["丙", "91110108MA01A2B3XX", "123", "火星", "county", "astrology", "王五", "12345"],
    ]
    result = CliRunner().invoke(cli, ["roster", "import", str(write_roster(tmp_path / "r.csv", bad))])
    assert result.exit_code == 1
    assert "nothing imported" in result.output
    for column in ("uscc", "cma_cert", "province", "level", "fields", "contact_phone"):
        assert column in result.output or "第3行" in result.output
    assert open_db(env)["institutions"].count == 0


def test_roster_import_then_invites_csv_with_deep_links(env: Path, tmp_path: Path) -> None:
    rows = [GOOD[0], [GOOD[1][0].lstrip("="), *GOOD[1][1:]]]
    roster = write_roster(tmp_path / "r.csv", rows)
    runner = CliRunner()
    first = runner.invoke(cli, ["roster", "import", str(roster)])
    assert first.exit_code == 0, first.output
    assert "2 new, 0 updated; 2 new invite codes" in first.output
    again = runner.invoke(cli, ["roster", "import", str(roster)])
    assert "0 new, 2 updated; 0 new invite codes" in again.output
    result = runner.invoke(cli, ["invites", "--format", "csv", "--bot-username", "zicha_bot"])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["uscc"] for r in table] == [GOOD[0][1], GOOD[1][1]]
    for row in table:
        assert normalize_invite_code(row["code"]) == row["code"]
        assert row["link"] == f"https://t.me/zicha_bot?start={row['code']}"
    revoked = runner.invoke(cli, ["invites", "revoke", table[0]["code"]])
    assert revoked.exit_code == 0
    created = runner.invoke(cli, ["invites", "create", GOOD[0][1], "--max-uses", "2"])
    assert created.exit_code == 0 and "up to 2 staff" in created.output
    listing = runner.invoke(cli, ["invites"])
    assert table[0]["code"] not in listing.output.replace("-", "")


def test_checklist_commands(env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["checklist", "show", "samr-2023-national", "--field", "food"])
    assert shown.exit_code == 0 and "机构基本信息" in shown.output and "(motor-vehicle)" not in shown.output
    shipped = Path(__file__).resolve().parents[1] / "checklists" / "samr-2023-national.toml"
    ok = runner.invoke(cli, ["checklist", "validate", str(shipped)])
    assert ok.exit_code == 0 and "samr-2023-national 2023.2" in ok.output
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[checklist]\nid="x"\nversion="1"\ncampaign="2023"\nsource="s"\ntitle.zh_CN="t"\ntitle.en="t"\n'
        '[[sections]]\nid="s"\ntitle.zh_CN="t"\ntitle.en="t"\n'
        '[[sections.items]]\nid="bad-item"\nkind="compliance"\ntext.zh_CN="q"\ntext.en="q"\n',
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["checklist", "validate", str(broken)])
    assert result.exit_code == 1
    assert "broken.toml" in result.output and "bad-item" in result.output and "basis" in result.output


def test_wrong_settings_are_named_plainly(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZICHA_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("BOT_TOKEN", "not-a-token-secret123")
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1
    assert "ZICHA_TIMEZONE: unknown time zone 'Mars/Olympus'" in result.output
    assert "BOT_TOKEN" in result.output and "secret123" not in result.output


def test_run_without_a_token_says_where_to_get_one(env: Path) -> None:
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1 and "BOT_TOKEN is not set" in result.output
