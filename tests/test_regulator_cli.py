"""zicha regulator invite, zicha export and zicha digest, run as an operator would."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from bot.cli import cli
from bot.core.checklist import Checklist
from bot.core.invites import normalize_invite_code
from bot.core.scope import Scope
from storage.db import open_db
from storage.regulators import add_regulator, get_regulator_invite
from tests.regulator_fixture import build_fixture


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checklist: Checklist) -> Path:
    db_path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "ZICHA_TIMEZONE", "ZICHA_LOCALE", "ZICHA_BOT_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZICHA_DB", str(db_path))
    db = open_db(db_path)
    build_fixture(db, checklist)
    add_regulator(db, 9101, Scope.parse("广东"), "广东省局")
    db.close()
    return db_path


def test_regulator_invite_prints_a_code_and_a_deep_link(env: Path) -> None:
    result = CliRunner().invoke(
        cli, ["regulator", "invite", "--scope", "广东省;领域:食品", "--max-uses", "2", "--bot-username", "zicha_demo_bot"]
    )
    assert result.exit_code == 0, result.output
    assert "province:广东;fields:food" in result.output
    link = result.output.strip().splitlines()[-1]
    assert link.startswith("https://t.me/zicha_demo_bot?start=")
    code = normalize_invite_code(link.rsplit("=", 1)[1])
    assert code is not None
    db = open_db(env)
    invite = get_regulator_invite(db, code)
    db.close()
    assert invite is not None and invite.max_uses == 2 and invite.scope == Scope.parse("广东;fields:food")
    bad = CliRunner().invoke(cli, ["regulator", "invite", "--scope", "火星"])
    assert bad.exit_code == 1 and "--scope" in bad.output


def test_export_writes_the_workbook_for_a_scope(env: Path, tmp_path: Path) -> None:
    out = tmp_path / "gd.xlsx"
    result = CliRunner().invoke(cli, ["export", "--scope", "province:广东", "-o", str(out)])
    assert result.exit_code == 0, result.output
    wb = load_workbook(out, read_only=True)
    provinces = {r[2] for r in list(wb["机构 Institutions"].iter_rows(values_only=True))[1:]}
    wb.close()
    assert provinces == {"广东"}


def test_digest_dry_run_prints_and_records_nothing(env: Path) -> None:
    result = CliRunner().invoke(cli, ["digest", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "daily digest for 9101 (province:广东)" in result.output or "final digest for 9101" in result.output
    db = open_db(env)
    try:
        assert db.execute("SELECT COUNT(*) FROM digest_snapshots").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    finally:
        db.close()
    sent = CliRunner().invoke(cli, ["digest", "--send"])
    assert sent.exit_code == 0 and "Queued the" in sent.output
    again = CliRunner().invoke(cli, ["digest", "--send"])
    assert "No digest due" in again.output
    db = open_db(env)
    try:
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE chat_id = 9101").fetchone()[0] == 3
    finally:
        db.close()
