"""The data file formats as pydantic models: unknown keys, wrong types and the "did you mean"
hints, in the same file/item/reason sentences the hand-written checks gave (issue 10).

Each case breaks one thing in a valid file and checks the sentence an editor reads; the
checklist cases also go through ``zicha checklist validate`` the way an editor runs it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.core import campaigns, fields, regulations
from bot.core.checklist import ChecklistError, load_checklist
from bot.core.fileformat import allowed_keys
from bot.core.schedule import CAMPAIGN_ONLY_KEYS, ScheduleError, ScheduleFile, load_schedule
from bot.pledge.text import PledgeError, load_pledge_file
from bot.resources import data_dir

HEAD = """[checklist]
id = "mini"
version = "1"
campaign = "2023"
deadline = "2023-10-27"
source = "国市监检测发〔2023〕90号 附件1"
title.zh_CN = "小表"
title.en = "Mini"

[[sections]]
id = "main"
title.zh_CN = "主要"
title.en = "Main"
"""


def item(*lines: str, kind: str = "compliance") -> str:
    body = ['[[sections.items]]', 'id = "bad-01"', f'kind = "{kind}"', 'text.zh_CN = "问题"', 'text.en = "Question"']
    if kind == "compliance":
        body += ['basis.zh_CN = "依据"', 'basis.en = "Basis"']
    return "\n" + "\n".join([*body, *lines]) + "\n"


CHOICE = item(
    "[[sections.items.options]]",
    'id = "a"',
    'label.zh_CN = "甲"',
    'label.en = "A"',
    "[[sections.items.options]]",
    'id = "b"',
    'label.zh_CN = "乙"',
    'label.en = "B"',
    kind="select_one",
)

# (name, file text, item the error names or None, the whole reason)
CHECKLISTS: list[tuple[str, str, str | None, str]] = [
    # unknown keys, with the key the editor meant
    ("head-key-typo", HEAD.replace('version = "1"', 'version = "1"\ntitel = "x"'), None, "[checklist] unknown key 'titel' (did you mean 'title'?)"),
    ("section-key-typo", HEAD.replace('id = "main"', 'id = "main"\nitmes = 1'), None, "section 'main': unknown key 'itmes' (did you mean 'items'?)"),
    # a misspelt kind makes kind missing too: the misspelling is what to fix
    ("item-key-typo-hides-required", HEAD + item().replace('kind = "compliance"', 'knd = "compliance"'), "bad-01", "unknown key 'knd' (did you mean 'kind'?)"),
    ("option-key-typo", HEAD + CHOICE.replace('label.en = "B"', 'lable.en = "B"'), "bad-01", "option #2: unknown key 'lable' (did you mean 'label'?)"),
    ("unit-language-typo", HEAD + item('unit.zh_CN = "个"', 'unit.eng = "pcs"', kind="number"), "bad-01", "unknown key unit.eng (did you mean 'en'?)"),
    ("no-hint-for-a-stranger", HEAD + item('colour = "red"'), "bad-01", "unknown key 'colour'"),
    # wrong types: TOML gives real types, so none is quietly converted
    ("min-as-text", HEAD + item('min = "5"', kind="number"), "bad-01", "min must be a number"),
    ("required-as-number", HEAD + item("required = 1"), "bad-01", "required must be true or false"),
    ("allow-na-as-number", HEAD + item("allow_na = 1"), "bad-01", "allow_na must be true or false"),
    ("field-id-as-number", HEAD + item("fields = [1]"), "bad-01", "fields must be a list of field ids"),
    ("cites-as-text", HEAD + item('cites = "order39:2021:6"'), "bad-01", 'cites must be a list of citations such as "order39:2021:14"'),
    ("max-length-too-long", HEAD + item("max_length = 5000", kind="text"), "bad-01", "max_length must be an integer from 1 to 1000"),
    ("same-as-number", HEAD + item("same_as = 5"), "bad-01", "same_as must read checklist-id:item-id"),
    ("one-option", HEAD + CHOICE.split("[[sections.items.options]]\nid = \"b\"")[0], "bad-01", 'options must be at least two tables ({ id = "a", label.zh_CN = ..., label.en = ... })'),
    ("options-as-text", HEAD + item('options = "a, b"', kind="select_one"), "bad-01", 'options must be at least two tables ({ id = "a", label.zh_CN = ..., label.en = ... })'),
    ("option-listed-twice", HEAD + CHOICE.replace('id = "b"', 'id = "a"'), "bad-01", "option 'a' is listed twice"),
    ("option-without-label", HEAD + CHOICE.replace('label.zh_CN = "乙"\nlabel.en = "B"', ""), "bad-01", "option 'b': label is required"),
    ("text-as-number", HEAD + item().replace('text.zh_CN = "问题"\ntext.en = "Question"', "text = 5"), "bad-01", 'text must be a table with zh_CN and en (e.g. text.zh_CN = "...")'),
    ("deadline-with-time", HEAD.replace('"2023-10-27"', "2023-10-27T10:00:00"), None, "[checklist] deadline must be an ISO date (YYYY-MM-DD), got datetime.datetime(2023, 10, 27, 10, 0)"),
    ("sections-as-text", 'sections = "main"\n' + HEAD.split("[[sections]]")[0], None, "sections must be an array of tables ([[sections]])"),
    ("unknown-field-hint", HEAD + item('fields = ["fod"]'), "bad-01", "unknown field 'fod' (did you mean 'food'?)"),
]


@pytest.mark.parametrize(("text", "item_id", "reason"), [c[1:] for c in CHECKLISTS], ids=[c[0] for c in CHECKLISTS])
def test_a_checklist_mistake_is_one_sentence_naming_file_item_and_reason(
    tmp_path: Path, text: str, item_id: str | None, reason: str
) -> None:
    path = tmp_path / "mini.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ChecklistError) as caught:
        load_checklist(path)
    assert (caught.value.item_id, caught.value.reason) == (item_id, reason)
    # What the editor sees: `zicha checklist validate FILE` prints it and fails.
    result = CliRunner().invoke(cli, ["checklist", "validate", str(path)])
    assert result.exit_code == 1
    assert result.output.strip() == f"✗ {caught.value}"
    assert "ValidationError" not in result.output and "pydantic" not in result.output


def test_every_shipped_checklist_still_loads_through_the_models() -> None:
    result = CliRunner().invoke(cli, ["checklist", "validate", *map(str, sorted(data_dir("checklists").glob("*-*.toml")))])
    assert result.exit_code == 0, result.output
    assert result.output.count("✓") >= 3


SCHEDULES = [
    ('send_tme = "10:00"', "unknown key(s) send_tme (did you mean 'send_time'?) (allowed: "),
    ("reminder_days = [true, 1]", "reminder_days: expected a list of whole days 0-366 before the deadline, got [True, 1]"),
    ("reminder_days = []", "reminder_days: expected a list of whole days 0-366 before the deadline, got []"),
    ("quiet_hours = 5", 'quiet_hours: expected "HH:MM-HH:MM" such as "21:00-08:00", got 5'),
    ('quiet_hours = "21:00-8am"', "quiet_hours: expected a time as HH:MM, got '8am'"),
    ("timezone = 8", "timezone: unknown time zone 8 (use an IANA name such as Asia/Shanghai)"),
    ('deadline = "next friday"', "deadline: expected a date YYYY-MM-DD, got 'next friday'"),
]


@pytest.mark.parametrize(("line", "message"), SCHEDULES)
def test_a_schedule_mistake_names_the_file_the_key_and_why(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "x.toml"
    path.write_text(f"[campaign]\n{line}\n", encoding="utf-8")
    with pytest.raises(ScheduleError) as caught:
        load_schedule(tmp_path, "x", default_deadline=dt.date(2023, 10, 27), default_tz="UTC", path=path)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_the_campaign_keys_the_schedule_skips_are_exactly_the_campaign_models() -> None:
    assert allowed_keys(campaigns.CampaignFile) - allowed_keys(ScheduleFile) == CAMPAIGN_ONLY_KEYS


BASE = {"checklist": "x", "year": 2025, "title": {"zh_CN": "a", "en": "a"}, "opens": "2025-06-01"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"demo": "yes"}, "demo must be true or false"),
        ({"year": "2025"}, "year must be a year such as 2025, got '2025'"),
        ({"titel": "x"}, "unknown key 'titel' (did you mean 'title'?)"),
        ({"coverage": {"level": "national", "provinc": []}}, "coverage: unknown key 'provinc' (allowed: level, provinces, fields)"),
        ({"coverage": {"level": "national", "fields": ["火箭"]}}, "coverage.fields: unknown field '火箭' (see checklists/fields.toml)"),
        ({"coverage": "national"}, "coverage must be a table ([campaign.coverage])"),
        ({"opens_in_days": 1.5, "opens": None}, "opens_in_days: expected a whole number of days, got 1.5"),
        ({"title": {"zh_CN": "a"}}, "title must have non-empty zh_CN and en"),
        ({"regulations": ["order39:2021:6"]}, "regulations: 'order39:2021:6' names an article; list editions (regulation:edition)"),
        ({"send_time": "9am"}, "send_time: expected a time as HH:MM, got '9am'"),
    ],
)
def test_a_campaign_mistake_names_the_file_and_why(change: dict, message: str) -> None:
    table = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(campaigns.CampaignError) as caught:
        campaigns.parse_campaign(table, path="c.toml", default_id="c", today=dt.date(2025, 7, 1))
    assert str(caught.value) == f"c.toml: {message}"


SHIPPED_PLEDGE = data_dir("checklists") / "pledges" / "samr-2023-national.toml"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # Before the models an unknown key was silently ignored: a misspelt table lost its text.
        ("[[commitments]]", "[[commitment]]", "unknown key 'commitment' (did you mean 'commitments'?)"),
        ('version = "2023.2"', "version = 2023", "version is missing"),
        ("[title]\nzh_CN", "[title]\nzh = \"x\"\nzh_CN", "title: unknown key 'zh' (did you mean 'zh_CN'?)"),
        ("将于{date}前完成", "将尽快完成", "intro.open: the zh_CN text lacks {date}"),
    ],
)
def test_a_pledge_mistake_names_the_file_and_why(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = SHIPPED_PLEDGE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "samr-2023-national.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PledgeError) as caught:
        load_pledge_file(path)
    assert str(caught.value) == f"{path}: {message}"


FIELDS = data_dir("checklists") / "fields.toml"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[fields]]\nid = "x"\nzh_CN = "某"\nen = "X"\nsince = 2025\n', "field 'x': since must be a campaign id"),
        ('[[fields]]\nid = "x"\nzh_CN = "某"\nen = "X"\naliases = "y"\n', "field 'x': aliases must be a list of non-empty strings"),
        ('[[fields]]\nid = "x"\nzh_CN = "  "\nen = "X"\n', "field 'x': zh_CN must be a non-empty string"),
    ],
)
def test_a_fields_registry_mistake_names_the_entry(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "fields.toml"
    path.write_text(FIELDS.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    with pytest.raises(fields.FieldsError, match=re.escape(f"{path}: {message}")):
        fields.load_registry(path)


REGULATION = """[regulation]
id = "order9"
numbering = "article"
title.zh_CN = "办法"
title.en = "Measures"

[[editions]]
id = "2021"
label.zh_CN = "2021年"
label.en = "2021"
in_force = 2021-06-01

[[editions.articles]]
number = "6"
summary.zh_CN = "概要"
summary.en = "Summary"
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("in_force = 2021-06-01", 'in_forse = "2021-06-01"', "edition '2021': unknown key 'in_forse' (did you mean 'in_force'?)"),
        ("in_force = 2021-06-01", 'in_force = "2021-06-01"', "edition '2021': in_force must be a TOML date (2021-06-01)"),
        ('numbering = "article"', 'numbering = "chapter"', "numbering must be 'article' or 'part'"),
        ('number = "6"', 'number = "06"', "edition '2021': article number must be like \"14\" or \"1.3\", got '06'"),
        ('summary.en = "Summary"', 'summary.en = "Summary"\nsummary.fr = "Résumé"', "edition '2021': article 6 summary must have exactly zh_CN and en"),
        ('title.en = "Measures"', 'title.en = 5', "[regulation] title: zh_CN and en must be non-empty strings"),
    ],
)
def test_a_regulation_file_mistake_names_the_file_and_why(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "order9.toml"
    path.write_text(REGULATION.replace(old, new, 1), encoding="utf-8")
    assert old in REGULATION
    with pytest.raises(regulations.RegulationError) as caught:
        regulations.load_regulation(path)
    assert str(caught.value) == f"{path}: {message}"


def test_the_sample_regulation_loads() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "order9.toml"
        path.write_text(REGULATION, encoding="utf-8")
        loaded = regulations.load_regulation(path)
    assert loaded.editions["2021"].articles["6"].summary.en == "Summary"
    assert loaded.editions["2021"].in_force == dt.date(2021, 6, 1)
