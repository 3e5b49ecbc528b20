"""Item kinds beyond compliance / confirm / text, and `relevant` conditions (issue 9).

The checklist loader accepts the new kinds with their settings; the domain validates what
users type for them; the interview rules hide items whose condition fails, keeping their
answers but not counting them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.checklist import ChecklistError, load_checklist
from bot.core.conditions import ConditionError, Value, parse_condition
from bot.core.interview import (
    Answer,
    Choice,
    Interview,
    InvalidInput,
    invalid_message,
    parse_answer,
    parse_date_answer,
    parse_number,
    parse_options,
)
from bot.core.roster import RosterRow
from bot.core.uscc import make_uscc
from storage import answers as store
from storage.db import open_db
from storage.institutions import get_institution_by_uscc, upsert_institutions

TABLE = """
[checklist]
id = "kinds"
version = "1"
campaign = "2025"
source = "test"
title.zh_CN = "新题型"
title.en = "New kinds"

[[sections]]
id = "main"
title.zh_CN = "主要"
title.en = "Main"

[[sections.items]]
id = "sites"
kind = "yes_no"
text.zh_CN = "是否有多个场所？"
text.en = "More than one site?"

[[sections.items]]
id = "site-count"
kind = "number"
min = 2
max = 50
unit.zh_CN = "个"
unit.en = "sites"
relevant = "${sites} = 'yes'"
text.zh_CN = "场所数量。"
text.en = "Number of sites."

[[sections.items]]
id = "site-audit"
kind = "compliance"
relevant = "${sites} = 'yes' and ${site-count} >= 3"
cites = ["order163:2021:9"]
text.zh_CN = "各场所均已内审。"
text.en = "Every site was audited."

[[sections.items]]
id = "certs"
kind = "select_multiple"
text.zh_CN = "持有的证书。"
text.en = "Certificates held."
[[sections.items.options]]
id = "cma"
label.zh_CN = "资质认定证书"
label.en = "CMA"
[[sections.items.options]]
id = "cnas"
label.zh_CN = "实验室认可证书"
label.en = "CNAS"

[[sections.items]]
id = "cnas-expiry"
kind = "date"
relevant = "selected(${certs}, 'cnas')"
text.zh_CN = "认可证书有效期。"
text.en = "CNAS expiry."

[[sections.items]]
id = "lab-type"
kind = "select_one"
required = false
text.zh_CN = "机构类型。"
text.en = "Type."
[[sections.items.options]]
id = "enterprise"
label.zh_CN = "企业"
label.en = "Enterprise"
[[sections.items.options]]
id = "public"
label.zh_CN = "事业单位"
label.en = "Public institution"

[[sections.items]]
id = "cma-scan"
kind = "attachment"
text.zh_CN = "上传资质认定证书。"
text.en = "Upload the CMA certificate."
"""


@pytest.fixture
def table(tmp_path: Path):
    path = tmp_path / "kinds.toml"
    path.write_text(TABLE, encoding="utf-8")
    return load_checklist(path)


def test_every_new_kind_loads_with_its_settings(table) -> None:
    count = table.item("site-count")
    assert (count.kind, count.minimum, count.maximum, count.unit.zh_CN) == ("number", 2, 50, "个")
    assert [o.id for o in table.item("certs").options] == ["cma", "cnas"]
    assert table.item("cnas-expiry").relevant.refs == frozenset({"certs"})
    assert table.item("lab-type").required is False
    assert table.item("cma-scan").kind == "attachment"


@pytest.mark.parametrize(
    ("old", "new", "item_id", "reason"),
    [
        ("min = 2\nmax = 50", "min = 60\nmax = 50", "site-count", "min (60) is greater than max (50)"),
        ('kind = "yes_no"', 'kind = "yes_no"\nunit.zh_CN = "个"\nunit.en = "x"', "sites", "unit is only allowed on number items"),
        ('relevant = "${sites} = \'yes\'"', 'relevant = "${site-audit} = \'yes\'"', "site-count", "which is a later item"),
        ("selected(${certs}, 'cnas')", "selected(${certs}, 'cnass')", "cnas-expiry", "has no option 'cnass' (did you mean 'cnas'?)"),
        ("selected(${certs}, 'cnas')", "${certs} == 'x'", "cnas-expiry", "relevant:"),
        ("${sites} = 'yes' and", "${sites} = 'yes' and and", "site-audit", "relevant:"),
        ('required = false', 'required = "no"', "lab-type", "required must be true or false"),
        # what one question screen (one Telegram message, one keyboard) cannot hold
        ('text.en = "Certificates held."', 'text.en = "' + "x" * 1001 + '"', "certs", "text.en is 1,001 characters; at most 1,000 fit"),
        ('label.en = "CMA"', 'label.en = "' + "C" * 61 + '"', "certs", "option 'cma': its label.en is longer than 60 characters"),
        ('label.en = "CNAS"', 'label.en = "CNAS"' + "".join(
            f'\n[[sections.items.options]]\nid = "o{n}"\nlabel.zh_CN = "选{n}"\nlabel.en = "O{n}"' for n in range(29)),
         "certs", "31 options: at most 30 fit one question's buttons"),
    ],
)
def test_a_wrong_setting_of_a_new_kind_names_the_item_and_the_reason(
    tmp_path: Path, old: str, new: str, item_id: str, reason: str
) -> None:
    assert old in TABLE
    path = tmp_path / "kinds.toml"
    path.write_text(TABLE.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ChecklistError) as caught:
        load_checklist(path)
    assert caught.value.item_id == item_id
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ('pattern = "(\\\\d+)+[A-Z]"', "pattern repeats a group that repeats inside"),
        ('pattern = "(a|b*)*"', "pattern repeats a group that repeats inside"),
        ("max_length = 1001", "max_length must be an integer from 1 to 1000"),
    ],
)
def test_a_text_item_whose_answer_could_freeze_the_bot_or_overflow_its_screen_is_refused(
    tmp_path: Path, setting: str, reason: str
) -> None:
    """A nested repeat can take exponential time on an answer that almost matches (0.75 s
    for 25 characters, doubling with each one more), in the process that answers everyone;
    a typed answer is shown again under its question, in one message."""
    text = TABLE.split("[[sections.items]]\nid = \"lab-type\"")[0]
    text += f'[[sections.items]]\nid = "code"\nkind = "text"\ntext.zh_CN = "编号"\ntext.en = "Code"\n{setting}\n'
    path = tmp_path / "kinds.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ChecklistError) as caught:
        load_checklist(path)
    assert caught.value.item_id == "code" and reason in caught.value.reason, caught.value.reason


def test_a_choice_item_without_options_is_refused(tmp_path: Path) -> None:
    text = TABLE.split("[[sections.items]]\nid = \"lab-type\"")[0]
    text += '[[sections.items]]\nid = "pick"\nkind = "select_one"\ntext.zh_CN = "选"\ntext.en = "Pick"\n'
    path = tmp_path / "kinds.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ChecklistError, match="options are required for select_one items"):
        load_checklist(path)


# ── hostile input ─────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("raw", "code", "zh"),
    [
        ("51", "number_too_large", "数值不能大于 50 个"),
        ("1", "number_too_small", "数值不能小于 2 个"),
        ("十二", "not_a_number", "不是数字"),
        ("1e400", "number_too_large", "不能大于"),
        ("NaN", "not_a_number", "不是数字"),
        ("", "empty", "内容为空"),
    ],
)
def test_an_out_of_range_or_non_numeric_number_is_refused_with_a_clear_message(table, raw: str, code: str, zh: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_number(table.item("site-count"), raw)
    assert caught.value.code == code
    assert zh in invalid_message(caught.value, "zh_CN")
    assert invalid_message(caught.value, "en")


def test_a_number_is_read_with_full_width_digits_and_its_unit(table) -> None:
    item = table.item("site-count")
    assert parse_number(item, "１２") == "12"
    assert parse_number(item, "3 个") == "3"
    assert parse_number(item, "2.50") == "2.5"


@pytest.mark.parametrize(("raw", "code"), [("2025-02-30", "impossible_date"), ("2025年13月1日", "impossible_date"), ("明天", "bad_date"), ("30/06/2025", "bad_date")])
def test_an_impossible_or_unreadable_date_is_refused(raw: str, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_date_answer(raw)
    assert caught.value.code == code
    assert invalid_message(caught.value, "zh_CN")


def test_dates_are_read_in_the_usual_chinese_forms() -> None:
    assert {parse_date_answer(r) for r in ("2027-06-30", "2027/6/30", "2027年6月30日", "20270630")} == {"2027-06-30"}


def test_an_unknown_option_is_refused_and_the_message_lists_the_options(table) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_options(table.item("certs"), "cma, iso9001")
    assert caught.value.code == "unknown_option"
    message = invalid_message(caught.value, "zh_CN")
    assert "iso9001" in message and "1. 资质认定证书" in message and "2. 实验室认可证书" in message
    with pytest.raises(InvalidInput) as one:
        parse_options(table.item("lab-type"), "1 2")
    assert one.value.code == "one_option_only"


def test_options_are_read_by_id_label_or_number_and_stored_in_list_order(table) -> None:
    assert parse_options(table.item("certs"), "实验室认可证书、1") == "cma cnas"
    assert parse_options(table.item("certs"), ["CNAS"]) == "cnas"


def test_typed_text_where_a_file_is_required_is_refused(table) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_answer(table.item("cma-scan"), "我稍后再上传")
    assert caught.value.code == "file_required"
    assert "需要上传文件" in invalid_message(caught.value, "zh_CN")
    assert parse_answer(table.item("cma-scan"), None, file_ref="AgADBQAD") == (Choice.FILE, "AgADBQAD")


def test_yes_no_answers_accept_chinese_and_english_words(table) -> None:
    assert parse_answer(table.item("sites"), "是") == (Choice.AFFIRMATIVE, None)
    assert parse_answer(table.item("sites"), "No") == (Choice.NEGATIVE, None)
    with pytest.raises(InvalidInput):
        parse_answer(table.item("sites"), "也许")


# ── relevant: show and hide ───────────────────────────────────────────────────


def _a(item_id: str, value: Choice, text: str | None = None) -> Answer:
    return Answer(item_id, value, text)


def test_an_item_appears_and_disappears_as_an_earlier_answer_changes(table) -> None:
    interview = Interview(table, [])
    answers: dict[str, Answer] = {}
    visible = lambda: [i.id for i in interview.visible_items(answers)]  # noqa: E731
    assert "site-count" not in visible() and "site-audit" not in visible() and "cnas-expiry" not in visible()
    answers["sites"] = _a("sites", Choice.AFFIRMATIVE)
    assert "site-count" in visible() and "site-audit" not in visible()
    answers["site-count"] = _a("site-count", Choice.NUMBER, "4")
    assert "site-audit" in visible()
    answers["certs"] = _a("certs", Choice.SELECTED, "cma cnas")
    assert "cnas-expiry" in visible()
    answers["sites"] = _a("sites", Choice.NEGATIVE)
    # Hidden again: and the item that depended on the hidden one goes with it.
    assert "site-count" not in visible() and "site-audit" not in visible()


def test_a_hidden_items_answer_is_kept_but_not_counted(table) -> None:
    interview = Interview(table, [])
    answers = {
        "sites": _a("sites", Choice.AFFIRMATIVE),
        "site-count": _a("site-count", Choice.NUMBER, "4"),
        "site-audit": Answer("site-audit", Choice.NONCOMPLIANT),  # follow-ups missing
        "certs": _a("certs", Choice.SELECTED, "cma"),
        "cma-scan": _a("cma-scan", Choice.FILE, "AgAD"),
    }
    shown = interview.progress(answers)
    assert shown.total == 5  # sites, site-count, site-audit, certs, cma-scan (lab-type optional, unanswered)
    assert [i.id for i in shown.incomplete] == ["site-audit"] and [i.id for i in shown.noncompliant] == ["site-audit"]
    assert interview.next_open(answers).id == "site-audit"
    answers["sites"] = _a("sites", Choice.NEGATIVE)
    hidden = interview.progress(answers)
    assert hidden.total == 3 and hidden.finished and not hidden.noncompliant
    assert interview.next_open(answers) is None
    assert "site-audit" in answers  # nothing deleted
    answers["sites"] = _a("sites", Choice.AFFIRMATIVE)
    assert interview.progress(answers).total == 5  # and it comes back as it was


def test_new_kinds_are_stored_with_history_and_counted(table, tmp_path: Path) -> None:
    db = open_db(tmp_path / "z.db")
    uscc = make_uscc("91440300MA5F00002")
    upsert_institutions(db, [RosterRow(2, "测试所", uscc, "250000000002", "广东", "provincial", ("food",), "赵", "13812345678")])
    institution = get_institution_by_uscc(db, uscc)
    sc = store.get_or_create_selfcheck(db, institution.id, table)
    value, text = parse_answer(table.item("site-count"), "12")
    store.save_answer(db, sc.id, "sites", by=1, value=Choice.AFFIRMATIVE.value)
    store.save_answer(db, sc.id, "site-count", by=1, value=value.value, text=text)
    store.save_answer(db, sc.id, "sites", by=1, value=Choice.NEGATIVE.value)
    loaded = store.load_answers(db, sc.id)
    assert loaded["site-count"].text == "12" and loaded["site-count"].value is Choice.NUMBER
    assert Interview(table, institution.fields).progress(loaded).total == 3
    assert len(store.answer_history(db, sc.id, "sites")) == 2
    assert store.get_selfcheck(db, sc.id).campaign_id == "kinds"


# ── the condition language ────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "text",
    ["__import__('os')", "${a} = 'x' or", "${a} == 'x'", "'a' = 'b'", "${a}", "selected(${a})", "${A} = 1", "", "${a} = 'x'; drop"],
)
def test_a_condition_that_is_not_in_the_language_is_refused(text: str) -> None:
    with pytest.raises(ConditionError):
        parse_condition(text)


def test_and_binds_tighter_than_or_and_unanswered_items_are_false() -> None:
    condition = parse_condition("${a} = 'x' or ${b} > 3 and not ${c} != 'y'")
    values: dict[str, Value] = {"a": "z", "b": None, "c": "y"}
    assert condition.evaluate(values.get) is False
    from decimal import Decimal

    values["b"] = Decimal(4)
    assert condition.evaluate(values.get) is True
    values.update(a="x", b=None, c="n")
    assert condition.evaluate(values.get) is True
    assert parse_condition("(${a} = 'x' or ${b} > 3) and ${c} = 'y'").evaluate(values.get) is False
    assert parse_condition("${d} >= '2025-01-01'").evaluate({"d": "2025-06-30"}.get) is True
