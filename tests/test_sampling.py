"""The "双随机" draw (bot/core/sampling.py): by field quotas, each institution once, the same
draw again from the same seed and pool, and quotas or seeds that cannot draw refused."""

from __future__ import annotations

import pytest

from bot.core import fields as fields_registry
from bot.core.sampling import OTHER, Candidate, SampleError, check_quotas, check_seed, draw, pool_fingerprint, tally

FIELDS = fields_registry.field_ids()


def pool() -> list[Candidate]:
    out = []
    for n in range(1, 61):
        fields = ("food",) if n <= 20 else ("motor-vehicle",) if n <= 35 else ("food", "building-materials") if n <= 40 else ("building-materials",)
        out.append(Candidate(n, f"USCC{n:04d}", fields))
    return out


QUOTAS = check_quotas({"food": 10, "motor-vehicle": 20, OTHER: 5}, FIELDS)


def test_a_draw_follows_the_quotas_and_takes_each_institution_once() -> None:
    result = draw(pool(), QUOTAS, "00ff00ff00ff00ff")
    by_id = {c.institution_id: c for c in pool()}
    assert len(result.drawn_for("food")) == 10 and all("food" in by_id[p.institution_id].fields for p in result.drawn_for("food"))
    # 15 motor-vehicle institutions for a quota of 20: all of them, and the shortfall said
    assert len(result.drawn_for("motor-vehicle")) == 15 and result.shortfall == (("motor-vehicle", 5),)
    # other: from institutions working in a field no quota names (building-materials here)
    others = result.drawn_for(OTHER)
    assert len(others) == 5 and all("building-materials" in by_id[p.institution_id].fields for p in others)
    ids = [p.institution_id for p in result.picks]
    assert len(ids) == len(set(ids)) == 30
    assert [p.position for p in result.picks] == list(range(1, 31))
    assert result.pool_size == 60 and result.pool_sha256 == pool_fingerprint(sorted(pool(), key=lambda c: c.uscc))


def test_the_same_seed_and_pool_give_the_same_draw_whatever_order_the_pool_comes_in() -> None:
    first = draw(pool(), QUOTAS, "a1b2c3d4e5f60718")
    again = draw(list(reversed(pool())), QUOTAS, "a1b2c3d4e5f60718")
    other_seed = draw(pool(), QUOTAS, "a1b2c3d4e5f60719")
    assert first.picks == again.picks
    assert [p.institution_id for p in first.picks] != [p.institution_id for p in other_seed.picks]
    assert first.pool_sha256 == other_seed.pool_sha256


def test_tally_counts_the_drawn_and_the_inspected_by_result() -> None:
    per, total = tally([("food", "no_problem"), ("food", "case"), ("food", None), (OTHER, "rectify")])
    assert (per["food"].drawn, per["food"].inspected) == (3, 2) and total.drawn == 4 and total.inspected == 3
    assert list(per) == ["food", OTHER]


@pytest.mark.parametrize(
    ("quotas", "said"),
    [
        ({"foood": 3}, "unknown field 'foood'"),
        ({"food": -1}, "whole number from 0 to 10000"),
        ({"food": True}, "whole number"),
        ({"food": 2.5}, "whole number"),
        ({"food": 0, OTHER: 0}, "draw nobody"),
        ([("food", 1), ("food", 2)], "two quotas"),
    ],
)
def test_quotas_that_cannot_draw_are_refused_with_the_reason(quotas: object, said: str) -> None:
    with pytest.raises(SampleError, match=said):
        check_quotas(quotas, FIELDS)  # type: ignore[arg-type]


def test_a_seed_is_hex_digits() -> None:
    assert check_seed(" ABCDEF12 ") == "abcdef12"
    for bad in ("xyz12345", "abc", "a" * 65, "12 34 56 78"):
        with pytest.raises(SampleError):
            check_seed(bad)


def test_a_campaign_names_its_quotas_and_wrong_ones_are_refused_at_their_key() -> None:
    import datetime as dt

    from bot.core.campaigns import CampaignError, load_campaign, parse_campaign
    from bot.resources import data_dir

    shipped = load_campaign(data_dir("checklists") / "campaigns" / "samr-2023-national.toml", today=dt.date(2023, 10, 1))
    assert sum(n for _f, n in shipped.sample_quotas) == 100 and shipped.sample_quotas[-1] == (OTHER, 35)
    assert "国市监检测发〔2023〕90号" in shipped.sample_basis
    base = {"year": 2023, "title": {"zh_CN": "x", "en": "x"}, "checklist": "samr-2023-national", "opens": "2023-09-01"}
    for sample, said in (
        ({"quotas": {"foood": 1}}, "sample.quotas: unknown field 'foood'"),
        ({"quotas": {"food": -2}}, "sample.quotas: the quota of 'food' must be a whole number"),
        ({"quotas": {"food": "ten"}}, "sample.quotas must be a table of field ids and whole numbers"),
        ({"quotas": {"food": 1}, "plan": "x"}, "sample: unknown key 'plan'"),
        ({"basis": "x"}, "sample.quotas must be a table"),
    ):
        with pytest.raises(CampaignError, match=said.replace("(", r"\(").replace(")", r"\)")):
            parse_campaign({**base, "sample": sample}, path="c.toml", default_id="c", today=dt.date(2023, 10, 1))
    aliases = parse_campaign({**base, "sample": {"quotas": {"食品检验": 2, "other": 1}}}, path="c.toml", default_id="c", today=dt.date(2023, 10, 1))
    assert aliases.sample_quotas == (("food", 2), (OTHER, 1))


def test_each_field_draws_the_lowest_tickets_anyone_can_compute_with_sha256() -> None:
    """The draw can be checked without Zicha: ticket = SHA-256 of "<seed>:<USCC>"."""
    import hashlib

    seed = "5eed5eed5eed5eed"
    result = draw(pool(), check_quotas({"food": 4, OTHER: 2}, FIELDS), seed)
    food = [c for c in pool() if "food" in c.fields]
    by_hand = sorted(food, key=lambda c: hashlib.sha256(f"{seed}:{c.uscc}".encode()).hexdigest())[:4]
    assert [p.uscc for p in result.drawn_for("food")] == [c.uscc for c in by_hand]
    # other: a field no quota names (motor-vehicle and building-materials here), not drawn yet
    rest = [c for c in pool() if set(c.fields) - {"food"} and c.uscc not in {p.uscc for p in result.picks[:4]}]
    by_hand_other = sorted(rest, key=lambda c: hashlib.sha256(f"{seed}:{c.uscc}".encode()).hexdigest())[:2]
    assert [p.uscc for p in result.drawn_for(OTHER)] == [c.uscc for c in by_hand_other]
