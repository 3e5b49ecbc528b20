from __future__ import annotations

import math
import re

import pytest

from bot.core.invites import (
    ALPHABET,
    BITS,
    CODE_LENGTH,
    deep_link,
    format_invite_code,
    new_invite_code,
    normalize_invite_code,
)

SAMPLE = "7K3M9QXR2WDH5TNB8FZA"


def test_alphabet_is_crockford_base32_without_ambiguous_letters() -> None:
    assert len(ALPHABET) == 32 == len(set(ALPHABET))
    assert not set("ILOU") & set(ALPHABET)


def test_codes_carry_at_least_80_bits() -> None:
    assert CODE_LENGTH == 20
    assert BITS == CODE_LENGTH * math.log2(len(ALPHABET)) == 100
    assert BITS >= 80


def test_new_codes_are_canonical_and_use_only_the_alphabet() -> None:
    for _ in range(200):
        code = new_invite_code()
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(ALPHABET)
        assert normalize_invite_code(code) == code


def test_new_codes_do_not_repeat_and_use_the_whole_alphabet() -> None:
    # A weak generator (fixed seed, reduced alphabet) would show up here; with
    # 2000 codes * 20 chars every symbol appears with overwhelming probability.
    codes = [new_invite_code() for _ in range(2000)]
    assert len(set(codes)) == len(codes)
    assert set("".join(codes)) == set(ALPHABET)


def test_new_code_is_a_valid_telegram_deep_link_payload() -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", new_invite_code())


def test_format_groups_by_four_with_dashes() -> None:
    assert format_invite_code(SAMPLE) == "7K3M-9QXR-2WDH-5TNB-8FZA"


def test_formatted_code_round_trips() -> None:
    for _ in range(50):
        code = new_invite_code()
        assert normalize_invite_code(format_invite_code(code)) == code


@pytest.mark.parametrize(
    "typed",
    [
        "7k3m-9qxr-2wdh-5tnb-8fza",
        "  7K3M 9QXR 2WDH 5TNB 8FZA\n",
        "7K3M9QXR2WDH5TNB8FZA",
        "７Ｋ３Ｍ－９ＱＸＲ－２ＷＤＨ－５ＴＮＢ－８ＦＺＡ",  # full-width, from a Chinese IME
    ],
)
def test_normalize_accepts_case_dashes_spaces_and_full_width(typed: str) -> None:
    assert normalize_invite_code(typed) == SAMPLE


def test_normalize_maps_crockford_confusables() -> None:
    code = "0111" + SAMPLE[4:]
    assert normalize_invite_code("OIlL" + SAMPLE[4:]) == code
    assert normalize_invite_code("oil1" + SAMPLE[4:]) == code


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "hello",
        SAMPLE[:-1],  # too short
        SAMPLE + "A",  # too long
        SAMPLE[:-1] + "U",  # U is not in Crockford's alphabet
        SAMPLE[:-1] + "_",
        "<b>" + SAMPLE[:14] + "</b>",
        '<a href="x">' + SAMPLE + "</a>",
        SAMPLE * 10,  # overlong input is rejected outright
        "-" * 10_000,
        "7K3M9QXR2WDH5TNB8F٣A",  # Arabic-Indic digit: a digit, but not ours
        "https://t.me/zicha_bot?start=" + SAMPLE,
    ],
)
def test_normalize_rejects_junk(junk: str) -> None:
    assert normalize_invite_code(junk) is None


def test_normalize_rejects_non_strings() -> None:
    assert normalize_invite_code(None) is None  # type: ignore[arg-type]


def test_deep_link_uses_payload_without_dashes() -> None:
    assert deep_link("zicha_bot", "7k3m-9qxr-2wdh-5tnb-8fza") == f"https://t.me/zicha_bot?start={SAMPLE}"


def test_deep_link_accepts_username_with_at_sign() -> None:
    assert deep_link("@ZichaBot", SAMPLE) == f"https://t.me/ZichaBot?start={SAMPLE}"


@pytest.mark.parametrize("username", ["", "bot", "zicha bot", "zicha/bot", "1zichabot", "a" * 33])
def test_deep_link_rejects_impossible_usernames(username: str) -> None:
    with pytest.raises(ValueError):
        deep_link(username, SAMPLE)


def test_deep_link_and_format_reject_invalid_codes() -> None:
    with pytest.raises(ValueError):
        deep_link("zicha_bot", "not-a-code")
    with pytest.raises(ValueError):
        format_invite_code("<script>")
