"""Regulator scopes: parsing, matching one institution, and selecting many in SQL."""

from __future__ import annotations

import pytest
import sqlite_utils
from click.testing import CliRunner

from bot.cli import cli
from bot.core.scope import Scope, ScopeError
from storage.institutions import upsert_institutions
from storage.regulators import add_regulator, get_regulator, list_regulators, remove_regulator
from storage.scope import scope_where
from tests.conftest import roster_row


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("national", Scope(national=True)),
        ("全国", Scope(national=True)),
        ("province:广东省,浙江", Scope(provinces=frozenset({"广东", "浙江"}))),
        ("广东", Scope(provinces=frozenset({"广东"}))),
        ("province:内蒙古自治区;fields:食品检验,motor-vehicle", Scope(provinces=frozenset({"内蒙古"}), fields=frozenset({"food", "motor-vehicle"}))),
        ("national；领域：机动车", Scope(national=True, fields=frozenset({"motor-vehicle"}))),
    ],
)
def test_scopes_are_read_in_english_or_chinese(text: str, scope: Scope) -> None:
    assert Scope.parse(text) == scope
    assert Scope.parse(scope.to_text()) == scope
    assert Scope.from_json(scope.to_json()) == scope


@pytest.mark.parametrize("text", ["", "火星", "province:", "national;province:广东", "fields:food", "colour:red", "national;fields:astrology"])
def test_nonsense_scopes_are_refused(text: str) -> None:
    with pytest.raises(ScopeError):
        Scope.parse(text)


def test_the_sql_condition_selects_exactly_what_covers_accepts(db: sqlite_utils.Database) -> None:
    rows = [
        roster_row("京食品", 1, ("food",), "北京"),
        roster_row("粤食品", 2, ("food",), "广东"),
        roster_row("粤机动车", 3, ("motor-vehicle",), "广东"),
        roster_row("粤综合", 4, ("food", "water-supply"), "广东"),
    ]
    upsert_institutions(db, rows)
    for scope in [Scope(national=True), Scope(provinces=frozenset({"广东"})), Scope(provinces=frozenset({"广东"}), fields=frozenset({"food"})), Scope(national=True, fields=frozenset({"motor-vehicle"}))]:
        where, params = scope_where(scope, "i")
        selected = {r[0] for r in db.execute(f"SELECT name FROM institutions i WHERE {where}", params).fetchall()}
        assert selected == {r.name for r in rows if scope.covers(r.province, r.fields)}, scope


def test_regulator_accounts_are_added_changed_and_removed(db: sqlite_utils.Database) -> None:
    add_regulator(db, 77, Scope(provinces=frozenset({"广东"})), "广东省市场监管局")
    add_regulator(db, 77, Scope(provinces=frozenset({"广东", "广西"})), "广东省市场监管局")
    assert get_regulator(db, 77).scope.provinces == {"广东", "广西"}
    assert len(list_regulators(db)) == 1
    assert remove_regulator(db, 77) and get_regulator(db, 77) is None


def test_regulator_cli(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZICHA_DB", str(tmp_path / "z.db"))
    runner = CliRunner()
    added = runner.invoke(cli, ["regulator", "add", "--telegram-id", "501", "--scope", "province:广东省;fields:食品", "--name", "粤"])
    assert added.exit_code == 0 and "province:广东;fields:food" in added.output
    listed = runner.invoke(cli, ["regulator", "list"])
    assert "501\tprovince:广东;fields:food\t粤" in listed.output
    bad = runner.invoke(cli, ["regulator", "add", "--telegram-id", "502", "--scope", "火星"])
    assert bad.exit_code == 1 and "unknown province" in bad.output
    assert runner.invoke(cli, ["regulator", "remove", "--telegram-id", "501"]).exit_code == 0
    assert runner.invoke(cli, ["regulator", "remove", "--telegram-id", "501"]).exit_code == 1
