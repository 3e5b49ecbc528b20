"""Regulations as data: items cite regulation:edition:article, checked against the registry (issue 9)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.core.campaigns import campaigns_dir, load_campaigns
from bot.core.checklist import ChecklistError, load_checklist, load_checklists
from bot.core.regulations import RegulationError, check_citation, chinese_number, registry, render_citations
from bot.resources import data_dir

HEAD = """
[checklist]
id = "cite-test"
version = "1"
campaign = "2025"
source = "test"
title.zh_CN = "测试"
title.en = "Test"

[[sections]]
id = "main"
title.zh_CN = "主要"
title.en = "Main"

[[sections.items]]
id = "cite-01"
kind = "compliance"
text.zh_CN = "问题"
text.en = "Question"
"""


def _write(tmp_path: Path, cites: str) -> Path:
    path = tmp_path / "cite-test.toml"
    path.write_text(HEAD + f"cites = {cites}\n", encoding="utf-8")
    return path


def test_a_citation_to_an_article_the_edition_does_not_have_fails_validation(tmp_path: Path) -> None:
    # Article 27 exists in the 2025 revision of Order 39, not in the 2021 text.
    with pytest.raises(ChecklistError) as caught:
        load_checklist(_write(tmp_path, '["order39:2021:27"]'))
    assert caught.value.item_id == "cite-01"
    assert "the 2021 edition of 'order39' has no article '27'" in caught.value.reason
    assert load_checklist(_write(tmp_path, '["order39:2025:27"]')).item("cite-01").cites[0].article == "27"


@pytest.mark.parametrize(
    ("cites", "reason"),
    [
        ('["order93:2021:6"]', "unknown regulation 'order93' (did you mean 'order39'?)"),
        ('["order39:2019:6"]', "'order39' has no edition '2019' (editions: 2021, 2025)"),
        ('["order39"]', "must read regulation:edition or regulation:edition:article"),
        ("[]", "cites must be a list of citations"),
    ],
)
def test_a_malformed_citation_is_refused_with_its_reason(tmp_path: Path, cites: str, reason: str) -> None:
    with pytest.raises(ChecklistError) as caught:
        load_checklist(_write(tmp_path, cites))
    assert reason in caught.value.reason


def test_the_basis_shown_to_users_is_rendered_from_the_registry_in_each_language(tmp_path: Path) -> None:
    item = load_checklist(_write(tmp_path, '["order39:2021:8", "order39:2021:13", "notice-2023-90:2023:1.3"]')).item("cite-01")
    assert item.basis is not None
    assert item.basis.zh_CN == "《检验检测机构监督管理办法》（市场监管总局令第39号）第八条、第十三条；国市监检测发〔2023〕90号 第一部分（三）"
    assert item.basis.en == (
        "Measures for the Supervision and Administration of Inspection and Testing Institutions (SAMR Order 39 of 2021), "
        "Arts. 8, 13; SAMR notice 2023 No. 90, Part 1(3)"
    )
    assert render_citations(item.cites, "zh") == item.basis.zh_CN


def test_the_2023_table_cites_the_registry_and_the_corrected_bases() -> None:
    national = load_checklist(data_dir("checklists") / "samr-2023-national.toml")
    cited = {item.id: {str(c) for c in item.cites} for item in national.items}
    assert "anti-monopoly:2022:17" in cited["business-01"] and "anti-monopoly:2022:22" in cited["business-02"]
    assert {"anti-unfair:2019:7", "anti-unfair:2019:8"} <= cited["business-03"]
    assert "hazchem:2013:24" in cited["safety-02"] and "tsg23:2021" in cited["safety-03"]
    assert "solid-waste:2020" in cited["safety-04"]
    for item_id in ("system-03", "system-04", "equipment-01"):
        assert "review-criteria:2016" in cited[item_id], item_id
        assert "order163:2021:9" not in cited[item_id], item_id
    assert "pt-rules:2023" in cited["system-05"]
    assert all("eco-supplement:2018" in cited[f"eco-0{n}"] for n in range(1, 5))
    assert "import-export:2021" in cited["keyfield-03"]
    # The checkpoints inspectors use, added without touching the existing ids.
    for item_id in ("data-07", "data-08", "system-09", "system-10", "system-11", "equipment-04"):
        assert national.has_item(item_id)
    assert "《中华人民共和国反垄断法》（2022年修正）第十七条" in national.item("business-01").basis.zh_CN  # type: ignore[union-attr]


def test_every_shipped_campaign_cites_only_the_editions_it_declares_in_force() -> None:
    checklists = load_checklists(data_dir("checklists"))
    campaigns = load_campaigns(campaigns_dir(), today=dt.date(2025, 7, 1))
    assert {"samr-2023-national", "samr-2025-national", "gd-2025-provincial", "demo"} <= set(campaigns)
    for campaign in campaigns.values():
        campaign.check_checklist(checklists[campaign.checklist_id])


def test_unknown_editions_and_articles_in_the_api_are_refused() -> None:
    assert str(check_citation("order163:2021:21")) == "order163:2021:21"
    with pytest.raises(RegulationError):
        check_citation("order163:2021:99")
    # Uncertain facts stay marked as such.
    assert registry().regulations["order39"].editions["2025"].uncertain


@pytest.mark.parametrize(("n", "zh"), [(1, "一"), (10, "十"), (14, "十四"), (20, "二十"), (21, "二十一"), (105, "一百零五"), (110, "一百一十")])
def test_article_numbers_read_as_in_chinese_law(n: int, zh: str) -> None:
    assert chinese_number(n) == zh
