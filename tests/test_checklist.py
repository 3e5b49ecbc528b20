"""Checklist models, loader and validation, and the shipped 2023 checklist's content."""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.checklist import (
    ANSWER_KINDS,
    Checklist,
    ChecklistError,
    Item,
    Localized,
    Section,
    load_checklist,
    load_checklists,
)
from bot.core.fields import FIELD_IDS

CHECKLISTS = Path(__file__).parents[1] / "checklists"
NATIONAL = CHECKLISTS / "samr-2023-national.toml"

# ───────────────────────────── the shipped checklist ─────────────────────────────


@pytest.fixture(scope="module")
def national() -> Checklist:
    return load_checklist(NATIONAL)


def test_shipped_checklist_loads_with_its_header(national: Checklist) -> None:
    assert national.id == "samr-2023-national"
    assert national.campaign == "2023"
    assert national.deadline == datetime.date(2023, 10, 27)
    assert "90号" in national.source
    assert national.path == str(NATIONAL)
    assert re.fullmatch(r"[0-9a-f]{8}", national.fingerprint)


def test_shipped_checklist_has_between_40_and_60_items(national: Checklist) -> None:
    assert 40 <= len(national.items) <= 60


def test_shipped_item_ids_are_unique_and_fit_callback_data(national: Checklist) -> None:
    ids = [item.id for item in national.items]
    assert len(ids) == len(set(ids))
    assert all(len(item_id.encode()) <= 24 for item_id in ids)


def test_shipped_sections_follow_the_notice(national: Checklist) -> None:
    section_ids = [s.id for s in national.sections]
    # Header first, then the six self-check focus points of part 四, then field sections.
    assert section_ids[:7] == ["header", "lawful", "data", "system", "equipment", "business", "safety"]
    assert all(s.items for s in national.sections)


def test_every_shipped_compliance_item_cites_a_basis_in_both_languages(national: Checklist) -> None:
    compliance = [i for i in national.items if i.kind == "compliance"]
    assert compliance
    for item in compliance:
        assert item.basis is not None, item.id
        assert item.basis.zh_CN.strip() and item.basis.en.strip(), item.id
        # Only the regulations the fact sheet covers, and the notice itself.
        assert any(
            source in item.basis.zh_CN
            for source in ("总局令第39号", "质检总局令第163号", "国市监检测发〔2023〕90号")
        ), item.id


def test_shipped_texts_are_short_enough_for_a_chat_message(national: Checklist) -> None:
    for item in national.items:
        for value in (item.text, item.guidance):
            if value is not None:
                assert len(value.zh_CN) <= 300 and len(value.en) <= 300, item.id


def test_shipped_chinese_texts_are_chinese(national: Checklist) -> None:
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for item in national.items:
        assert cjk.search(item.text.zh_CN), item.id
        assert not cjk.search(item.text.en), item.id


def test_shipped_header_asks_for_confirmation_name_and_phone(national: Checklist) -> None:
    header = national.section("header")
    assert [i.kind for i in header.items] == ["confirm", "text", "text"]
    assert national.item("header-details").kind == "confirm"
    assert all(not i.fields for i in header.items)


@pytest.mark.parametrize(
    "number",
    ["13812345678", "010-82262722", "0755-1234567", "+86 138 1234 5678", "+8613812345678", "(010)82262722"],
)
def test_phone_pattern_accepts_chinese_mobile_and_landline_numbers(national: Checklist, number: str) -> None:
    pattern = national.item("header-phone").pattern
    assert pattern is not None
    assert re.fullmatch(pattern, number)


@pytest.mark.parametrize("number", ["12345", "1381234567", "82262722", "abc", "138123456789"])
def test_phone_pattern_rejects_malformed_numbers(national: Checklist, number: str) -> None:
    pattern = national.item("header-phone").pattern
    assert pattern is not None
    assert not re.fullmatch(pattern, number)


@pytest.mark.parametrize("field_id", ["motor-vehicle", "eco-environment", "food"])
def test_shipped_checklist_has_field_specific_items(national: Checklist, field_id: str) -> None:
    assert any(field_id in item.fields for item in national.items)


def test_shipped_field_ids_are_all_known(national: Checklist) -> None:
    assert all(item.fields <= FIELD_IDS for item in national.items)


def test_food_lab_gets_common_and_food_items_but_not_motor_vehicle_items(national: Checklist) -> None:
    applicable = national.applicable_items(["food"])
    ids = {item.id for item in applicable}
    assert "header-details" in ids and "data-01" in ids
    assert any("food" in item.fields for item in applicable)
    assert not any("motor-vehicle" in item.fields for item in applicable)
    # Order is the file's order.
    order = [item.id for item in national.items]
    assert [item.id for item in applicable] == [i for i in order if i in ids]


def test_allow_na_is_reserved_for_items_that_can_genuinely_not_apply(national: Checklist) -> None:
    na = {item.id for item in national.items if item.allow_na}
    assert "lawful-07" in na  # subcontracting
    assert "data-01" not in na and "lawful-02" not in na
    assert len(na) < len(national.items) // 3


def test_load_checklists_reads_the_shipped_directory() -> None:
    found = load_checklists(CHECKLISTS)
    assert "samr-2023-national" in found
    assert all(key == checklist.id for key, checklist in found.items())


# ───────────────────────────── models ─────────────────────────────


def test_localized_get_picks_chinese_for_any_chinese_locale() -> None:
    text = Localized(zh_CN="符合", en="Complies")
    assert text.get("zh_CN") == text.get("zh") == text.get("zh-hans") == text.get("ZH") == "符合"
    assert text.get("en") == text.get("ru") == text.get("") == "Complies"


def test_item_with_no_fields_applies_to_everyone_and_field_items_to_their_fields() -> None:
    common = Item(id="a", section_id="s", kind="confirm", text=Localized("是", "Yes"))
    food = Item(id="b", section_id="s", kind="confirm", text=Localized("是", "Yes"), fields=frozenset({"food"}))
    assert common.applies_to([]) and common.applies_to(["food"])
    assert food.applies_to(["food", "ppe"]) and not food.applies_to(["ppe"]) and not food.applies_to([])


def test_text_item_built_by_hand_gets_the_default_max_length() -> None:
    item = Item(id="a", section_id="s", kind="text", text=Localized("姓名", "Name"))
    assert item.max_length == 200


def test_checklist_lookups(national: Checklist) -> None:
    assert national.has_item("data-01") and not national.has_item("nope")
    assert national.item("data-01").section_id == "data"
    assert national.section("data").items[0].id == "data-01"
    with pytest.raises(KeyError):
        national.item("nope")
    with pytest.raises(KeyError):
        national.section("nope")


def test_hand_built_checklist_still_has_a_fingerprint() -> None:
    section = Section("s", Localized("节", "S"), (Item("a", "s", "confirm", Localized("是", "Yes")),))
    checklist = Checklist("c", "1", Localized("表", "T"), "2023", None, "src", (section,), "x.toml")
    assert re.fullmatch(r"[0-9a-f]{8}", checklist.fingerprint)


def test_checklist_module_does_not_import_aiogram() -> None:
    code = "import sys, bot.core.checklist; sys.exit('aiogram' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], check=False)
    assert result.returncode == 0


# ───────────────────────────── loader and validation ─────────────────────────────

HEAD = """\
[checklist]
id = "mini"
version = "1"
campaign = "2023"
deadline = "2023-10-27"
source = "国市监检测发〔2023〕90号 附件1"
title.zh_CN = "小表"
title.en = "Mini"
"""

SECTION = """
[[sections]]
id = "main"
title.zh_CN = "主要"
title.en = "Main"
"""

ITEM = """
[[sections.items]]
id = "item-01"
kind = "compliance"
text.zh_CN = "本机构符合要求。"
text.en = "We comply."
basis.zh_CN = "《检验检测机构监督管理办法》（总局令第39号）第六条"
basis.en = "SAMR Order 39, Art. 6"
"""

VALID = HEAD + SECTION + ITEM


def write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def item(extra: str = "", *, item_id: str = "bad-01", kind: str = "compliance", basis: bool = True) -> str:
    """One item with a known id, for cases that break one rule on it."""
    lines = [
        "",
        "[[sections.items]]",
        f'id = "{item_id}"',
        f'kind = "{kind}"',
        'text.zh_CN = "问题"',
        'text.en = "Question"',
    ]
    if basis:
        lines += ['basis.zh_CN = "依据"', 'basis.en = "Basis"']
    return "\n".join(lines) + "\n" + extra


def test_minimal_valid_file_loads(tmp_path: Path) -> None:
    checklist = load_checklist(write(tmp_path, VALID))
    assert [i.id for i in checklist.items] == ["item-01"]
    first = checklist.items[0]
    assert first.kind in ANSWER_KINDS and first.allow_na is False and first.fields == frozenset()
    assert first.max_length == 0 and first.pattern is None and first.guidance is None


def test_text_item_defaults_and_bare_toml_date(tmp_path: Path) -> None:
    text = HEAD.replace('deadline = "2023-10-27"', "deadline = 2023-10-27") + SECTION + item(kind="text", basis=False)
    checklist = load_checklist(write(tmp_path, text))
    assert checklist.deadline == datetime.date(2023, 10, 27)
    assert checklist.item("bad-01").max_length == 200


def test_deadline_is_optional(tmp_path: Path) -> None:
    checklist = load_checklist(write(tmp_path, VALID.replace('deadline = "2023-10-27"\n', "")))
    assert checklist.deadline is None


def test_fingerprint_changes_when_the_file_is_edited(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    before = load_checklist(path).fingerprint
    path.write_text(VALID.replace("We comply.", "We do comply."), encoding="utf-8")
    assert load_checklist(path).fingerprint != before


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.encode("utf-8"))
    assert load_checklist(path).id == "mini"


# Each case: (name, file text, item id the error must name or None, words the reason must contain).
BROKEN: list[tuple[str, str, str | None, str]] = [
    ("toml-syntax", VALID + "\nthis is not toml\n", None, "line"),
    ("missing-checklist-table", SECTION + ITEM, None, "[checklist] table is required"),
    ("missing-checklist-key", HEAD.replace('version = "1"\n', "") + SECTION + ITEM, None, "version is required"),
    ("wrong-type-version", HEAD.replace('version = "1"', "version = 1") + SECTION + ITEM, None, "version must be"),
    ("bad-checklist-id", HEAD.replace('id = "mini"', 'id = "Mini Table"') + SECTION + ITEM, None, "id must match"),
    ("title-missing-en", HEAD.replace('title.en = "Mini"\n', "") + SECTION + ITEM, None, "title.en is required"),
    # A bare key after [[sections.items]] would belong to the item, so put it first.
    ("unknown-top-key", "extra = 1\n" + VALID, None, "unknown key 'extra'"),
    ("unknown-checklist-key", HEAD + 'autor = "me"\n' + SECTION + ITEM, None, "unknown key 'autor'"),
    ("deadline-not-a-date", HEAD.replace("2023-10-27", "2023-13-01") + SECTION + ITEM, None, "deadline must be an ISO date"),
    ("deadline-free-text", HEAD.replace('"2023-10-27"', '"10月27日"') + SECTION + ITEM, None, "deadline must be an ISO date"),
    ("no-sections", HEAD, None, "at least one section"),
    ("section-without-items", HEAD + SECTION, None, "section 'main': at least one item"),
    ("section-without-id", HEAD + SECTION.replace('id = "main"\n', "") + ITEM, None, "section #1: id is required"),
    ("duplicate-section-id", VALID + SECTION + item(), None, "duplicate section id 'main'"),
    ("unknown-section-key", HEAD + SECTION + "colour = 1\n" + ITEM, None, "unknown key 'colour'"),
    ("bad-item-id", HEAD + SECTION + item(item_id="Lawful_03"), "Lawful_03", "id must match"),
    ("item-id-too-long", HEAD + SECTION + item(item_id="a" * 25), "a" * 25, "id must match"),
    ("duplicate-item-id", VALID + item(item_id="item-01"), "item-01", "duplicate item id"),
    (
        "duplicate-item-id-across-sections",
        VALID + SECTION.replace('"main"', '"other"') + item(item_id="item-01"),
        "item-01",
        "already used in section 'main'",
    ),
    ("missing-kind", HEAD + SECTION + item().replace('kind = "compliance"\n', ""), "bad-01", "kind is required"),
    ("unknown-kind", HEAD + SECTION + item(kind="yesno"), "bad-01", "unknown kind 'yesno'"),
    ("missing-text", HEAD + SECTION + item().replace('text.zh_CN = "问题"\ntext.en = "Question"\n', ""), "bad-01", "text is required"),
    ("text-missing-zh", HEAD + SECTION + item().replace('text.zh_CN = "问题"\n', ""), "bad-01", "text.zh_CN is required"),
    ("text-empty-en", HEAD + SECTION + item().replace('text.en = "Question"', 'text.en = "  "'), "bad-01", "text.en must be a non-empty string"),
    ("text-not-a-table", HEAD + SECTION + item().replace('text.zh_CN = "问题"\ntext.en = "Question"', 'text = "问题"'), "bad-01", "text must be a table"),
    ("text-unknown-language", HEAD + SECTION + item('text.zh = "问"\n'), "bad-01", "unknown key text.zh (did you mean 'zh_CN'?)"),
    ("guidance-one-language", HEAD + SECTION + item('guidance.zh_CN = "看记录"\n'), "bad-01", "guidance.en is required"),
    ("basis-missing-on-compliance", HEAD + SECTION + item(basis=False), "bad-01", "basis is required for compliance items"),
    ("basis-missing-en", HEAD + SECTION + item().replace('basis.en = "Basis"\n', ""), "bad-01", "basis.en is required"),
    ("unknown-item-key-typo", HEAD + SECTION + item("alow_na = true\n"), "bad-01", "did you mean 'allow_na'"),
    ("unknown-item-key-homoglyph", HEAD + SECTION + item('"allow_nа" = true\n'), "bad-01", "unknown key 'allow_nа' (it contains a non-ASCII character)"),
    ("allow-na-on-confirm", HEAD + SECTION + item("allow_na = true\n", kind="confirm"), "bad-01", "allow_na is only allowed on compliance items"),
    ("allow-na-not-bool", HEAD + SECTION + item('allow_na = "yes"\n'), "bad-01", "allow_na must be true or false"),
    ("pattern-on-compliance", HEAD + SECTION + item("pattern = '\\d+'\n"), "bad-01", "pattern is only allowed on text items"),
    ("pattern-does-not-compile", HEAD + SECTION + item("pattern = '[0-9'\n", kind="text"), "bad-01", "pattern does not compile"),
    ("max-length-on-confirm", HEAD + SECTION + item("max_length = 10\n", kind="confirm"), "bad-01", "max_length is only allowed on text items"),
    ("max-length-bool", HEAD + SECTION + item("max_length = true\n", kind="text"), "bad-01", "max_length must be an integer"),
    ("max-length-zero", HEAD + SECTION + item("max_length = 0\n", kind="text"), "bad-01", "max_length must be an integer"),
    ("unknown-field", HEAD + SECTION + item('fields = ["motor-vehicles"]\n'), "bad-01", "unknown field 'motor-vehicles'"),
    ("fields-not-a-list", HEAD + SECTION + item('fields = "food"\n'), "bad-01", "fields must be a list"),
]


@pytest.mark.parametrize(("text", "item_id", "reason"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_broken_file_is_rejected_naming_file_item_and_reason(
    tmp_path: Path, text: str, item_id: str | None, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ChecklistError) as caught:
        load_checklist(path)
    error = caught.value
    message = str(error)
    assert error.path == str(path)
    assert message.startswith(f"{path}: ")
    assert error.item_id == item_id
    if item_id is not None:
        assert f"item {item_id!r}: " in message
    assert reason in error.reason
    assert reason in message


def test_error_message_format_matches_the_documented_one() -> None:
    error = ChecklistError("checklists/x.toml", "lawful-03", "basis is required for compliance items")
    assert str(error) == "checklists/x.toml: item 'lawful-03': basis is required for compliance items"
    assert str(ChecklistError("checklists/x.toml", None, "bad")) == "checklists/x.toml: bad"
    assert isinstance(error, ValueError)


def test_toml_syntax_error_reports_the_line(tmp_path: Path) -> None:
    text = VALID + "\nthis is not toml\n"
    bad_line = text.splitlines().index("this is not toml") + 1
    path = write(tmp_path, text)
    with pytest.raises(ChecklistError, match=rf"invalid TOML: .*\(at line {bad_line}, column"):
        load_checklist(path)


def test_non_utf8_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes(VALID.encode("gbk"))
    with pytest.raises(ChecklistError, match="not UTF-8"):
        load_checklist(path)


def test_missing_file_is_a_checklist_error(tmp_path: Path) -> None:
    with pytest.raises(ChecklistError, match="cannot read"):
        load_checklist(tmp_path / "absent.toml")


def test_load_checklists_keys_by_id_and_ignores_other_files(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.toml")
    write(tmp_path, VALID.replace('id = "mini"', 'id = "mini-2"'), "b.toml")
    write(tmp_path, "not a checklist", "README.md")
    write(tmp_path, "garbage [", ".#a.toml")
    found = load_checklists(tmp_path)
    assert sorted(found) == ["mini", "mini-2"]
    assert found["mini"].path == str(tmp_path / "a.toml")


def test_load_checklists_rejects_duplicate_checklist_ids(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.toml")
    write(tmp_path, VALID, "b.toml")
    with pytest.raises(ChecklistError) as caught:
        load_checklists(tmp_path)
    assert caught.value.path == str(tmp_path / "b.toml")
    assert "checklist id 'mini' is already used by" in caught.value.reason


def test_load_checklists_propagates_a_broken_file(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.toml")
    write(tmp_path, HEAD, "b.toml")
    with pytest.raises(ChecklistError, match=r"b\.toml: at least one section"):
        load_checklists(tmp_path)
