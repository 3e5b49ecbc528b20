"""Fields as data: checklists/fields.toml is the one list of fields (issue 9)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.core import fields
from bot.core.checklist import ChecklistError, load_checklist
from bot.core.roster import ROSTER_COLUMNS
from bot.core.scope import Scope, ScopeError
from bot.core.uscc import make_uscc
from bot.resources import data_dir
from storage.db import open_db
from storage.institutions import get_institution_by_uscc

SHIPPED = data_dir("checklists") / "fields.toml"

DRONES = """
[[fields]]
id = "drones"
zh_CN = "无人机检验"
en = "Unmanned aircraft"
aliases = ["无人机"]
since = "samr-2026-national"
"""

CHECKLIST = """
[checklist]
id = "drone-check"
version = "1"
campaign = "2026"
source = "test"
title.zh_CN = "无人机自查"
title.en = "Drone self-check"

[[sections]]
id = "main"
title.zh_CN = "主要"
title.en = "Main"

[[sections.items]]
id = "drone-01"
kind = "confirm"
fields = ["drones"]
text.zh_CN = "无人机检验按标准进行。"
text.en = "Drones are tested to the standard."
"""


@pytest.fixture
def registry_with_drones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "fields.toml"
    path.write_text(SHIPPED.read_text(encoding="utf-8") + DRONES, encoding="utf-8")
    monkeypatch.setenv(fields.FIELDS_ENV, str(path))
    fields.use_registry(None)
    yield path
    monkeypatch.delenv(fields.FIELDS_ENV)
    fields.use_registry(None)


def _roster(path: Path, field_cell: str) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ROSTER_COLUMNS)
        writer.writerow(["无人机检测有限公司", make_uscc("91440300MA5F00001"), "250000000001", "广东", "provincial", field_cell, "赵六", "13812345678"])
    return path


def test_a_field_added_to_the_registry_file_is_accepted_by_roster_checklist_and_scope(
    registry_with_drones: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZICHA_DB", str(db_path))
    # Roster import, by the Chinese alias.
    result = CliRunner().invoke(cli, ["roster", "import", str(_roster(tmp_path / "r.csv", "无人机"))])
    assert result.exit_code == 0, result.output
    with open_db(db_path) as db:
        institution = get_institution_by_uscc(db, make_uscc("91440300MA5F00001"))
    assert institution is not None and institution.fields == ("drones",)
    # A checklist item for the field.
    (tmp_path / "drone-check.toml").write_text(CHECKLIST, encoding="utf-8")
    checklist = load_checklist(tmp_path / "drone-check.toml")
    assert checklist.item("drone-01").fields == frozenset({"drones"})
    assert [i.id for i in checklist.applicable_items(institution.fields)] == ["drone-01"]
    # A regulator's scope narrowed to it.
    scope = Scope.parse("province:广东;fields:无人机检验")
    assert scope.fields == frozenset({"drones"}) and scope.covers("广东", institution.fields)
    assert fields.field_label("drones", "zh_CN") == "无人机检验"


def test_without_the_registry_entry_the_same_field_is_refused_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fields.use_registry(None)
    db_path = tmp_path / "zicha.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZICHA_DB", str(db_path))
    result = CliRunner().invoke(cli, ["roster", "import", str(_roster(tmp_path / "r.csv", "无人机"))])
    assert result.exit_code == 1 and "无人机" in result.output
    (tmp_path / "drone-check.toml").write_text(CHECKLIST, encoding="utf-8")
    with pytest.raises(ChecklistError, match="unknown field 'drones'"):
        load_checklist(tmp_path / "drone-check.toml")
    with pytest.raises(ScopeError):
        Scope.parse("national;fields:无人机")


@pytest.mark.parametrize(
    ("field_id", "alias"),
    [
        ("fire-products", "消防产品"),
        ("building-insulation", "建筑保温材料"),
        ("e-bike", "电动自行车及蓄电池"),
        ("fertilizer", "化肥"),
        ("ghg-emission", "温室气体排放"),
        ("helmets", "头盔及安全帽"),
        ("hazardous-chemicals", "危化品"),
        ("civil-air-defence", "人民防空防护设备"),
    ],
)
def test_shipped_registry_names_the_2024_and_2025_focus_fields(field_id: str, alias: str) -> None:
    fields.use_registry(None)
    assert fields.resolve_field(alias) == field_id
    assert fields.get_field(field_id).since in ("samr-2024-national", "samr-2025-national")


def test_the_2023_field_ids_are_unchanged() -> None:
    fields.use_registry(None)
    assert {
        "natural-resources", "eco-environment", "carbon-verification", "motor-vehicle", "water-quality",
        "import-export", "medical-protective", "ppe", "food", "refined-oil", "network-security",
        "dangerous-goods-tanks", "building-materials", "water-supply", "other",
    } <= fields.field_ids()  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[fields]]\nid = "food2"\nzh_CN = "食品"\nen = "Food 2"\n', "name '食品' is already used by field 'food'"),
        ('[[fields]]\nid = "x"\nzh_CN = "某"\nen = "X"\nalias = ["y"]\n', "unknown key 'alias' (did you mean 'aliases'?)"),
        ('[[fields]]\nid = "Bad Id"\nzh_CN = "某"\nen = "X"\n', "id must match"),
    ],
)
def test_a_broken_registry_names_the_entry_and_the_reason(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "fields.toml"
    path.write_text(SHIPPED.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    with pytest.raises(fields.FieldsError, match=re.escape(message)):
        fields.load_registry(path)
