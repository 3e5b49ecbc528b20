from __future__ import annotations

import random

import pytest

from bot.core.uscc import (
    ALPHABET,
    WEIGHTS,
    InvalidUSCC,
    check_digit,
    is_valid_uscc,
    make_uscc,
    normalize_uscc,
    validate_uscc,
)

# Constructed in the real layout: authority + category, GB/T 2260 division, a
# GB 11714 organisation code with its own valid check, then the USCC check.
CONSTRUCTED = (
    "91110108MA01A2B32G",  # enterprise, Beijing Haidian
    "124400004556873123",  # public institution (事业单位), Guangdong province level
    "91310115MA1K4Q7N24",  # enterprise, Shanghai Pudong
    "52330106MJ8802L35D",  # social organisation (民政), Hangzhou Xihu
    "12100000400012342E",  # public institution, national level
)


def test_alphabet_has_31_characters_without_ambiguous_letters() -> None:
    assert len(ALPHABET) == 31
    assert len(set(ALPHABET)) == 31
    assert not set("IOSVZ") & set(ALPHABET)


def test_weights_are_powers_of_three_mod_31() -> None:
    # The standard's table is 3**i mod 31; checking it guards against a typo in the literal.
    assert tuple(pow(3, i, 31) for i in range(17)) == WEIGHTS


@pytest.mark.parametrize("code", CONSTRUCTED)
def test_constructed_real_format_codes_are_valid(code: str) -> None:
    assert is_valid_uscc(code)
    assert validate_uscc(code) == code
    assert check_digit(code[:17]) == code[17]


def test_check_digit_worked_example() -> None:
    # Worked by hand from the standard: values 9,1,3,5,0,1,0,0,M=21,0,0,0,1,0,0,Y=30,4
    # times the weights sum to 1640; 1640 mod 31 = 28; 31 - 28 = 3.
    assert check_digit("91350100M000100Y4") == "3"
    assert is_valid_uscc("91350100M000100Y43")


def test_remainder_zero_maps_to_check_character_0() -> None:
    # "00000000000000000" sums to 0: 31 - 0 = 31 must become "0", not an IndexError.
    assert check_digit("0" * 17) == "0"
    assert is_valid_uscc("0" * 18)


def test_normalize_strips_upper_cases_and_removes_inner_spaces() -> None:
    assert normalize_uscc("  9111 0108 ma01 a2b3 2g \n") == "91110108MA01A2B32G"


def test_normalize_converts_full_width_input() -> None:
    # Chinese input methods produce full-width digits/letters and ideographic spaces.
    assert normalize_uscc("９１１１０１０８ＭＡ０１Ａ２Ｂ３\u30002ｇ") == "91110108MA01A2B32G"


def test_validate_returns_normalised_code() -> None:
    assert validate_uscc(" 91110108ma01a2b32g ") == "91110108MA01A2B32G"


def test_empty_code_is_rejected() -> None:
    with pytest.raises(InvalidUSCC) as exc:
        validate_uscc("   ")
    assert exc.value.kind == "empty"


@pytest.mark.parametrize("text,length", [("91110108MA01A2B32", 17), ("91110108MA01A2B32GX", 19)])
def test_wrong_length_says_the_length(text: str, length: int) -> None:
    with pytest.raises(InvalidUSCC) as exc:
        validate_uscc(text)
    err = exc.value
    assert err.kind == "length"
    assert f"{length} characters" in err.reason_en
    assert f"共{length}位" in err.reason_zh
    assert str(err) == err.reason_en
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("letter", list("IOSVZ"))
def test_excluded_letters_are_reported_with_position(letter: str) -> None:
    code = "91110108" + letter + "A01A2B32G"
    with pytest.raises(InvalidUSCC) as exc:
        validate_uscc(code)
    err = exc.value
    assert err.kind == "character"
    assert f'"{letter}" at position 9' in err.reason_en
    assert f"第9位“{letter}”" in err.reason_zh


def test_letter_o_suggests_digit_zero() -> None:
    with pytest.raises(InvalidUSCC) as exc:
        validate_uscc("91110108MAO1A2B32G")
    assert "0 instead of O" in exc.value.reason_en
    assert "数字0" in exc.value.reason_zh


def test_every_bad_character_is_listed() -> None:
    with pytest.raises(InvalidUSCC) as exc:
        validate_uscc("9111-108MA01A2B3#G")
    assert '"-" at position 5' in exc.value.reason_en
    assert '"#" at position 17' in exc.value.reason_en


def test_wrong_check_digit_says_expected() -> None:
    with pytest.raises(InvalidUSCC) as exc:
        validate_uscc("91110108MA01A2B32H")
    err = exc.value
    assert err.kind == "check_digit"
    assert err.expected == "G"
    assert err.reason_en == "wrong check digit (expected G)"
    assert err.reason_zh == "校验码错误（应为G）"


def test_check_digit_rejects_bad_input_instead_of_inventing_a_code() -> None:
    with pytest.raises(InvalidUSCC):
        check_digit("91110108MA01A2B3")  # 16 characters
    with pytest.raises(InvalidUSCC):
        check_digit("91110108MO01A2B32")


def test_make_uscc_appends_check_digit() -> None:
    assert make_uscc("91110108MA01A2B32") == "91110108MA01A2B32G"


def _random_valid(rng: random.Random) -> str:
    return make_uscc("".join(rng.choice(ALPHABET) for _ in range(17)))


def test_property_any_single_character_change_is_detected() -> None:
    # Every weight is non-zero mod the prime 31, so changing one character
    # always changes the weighted sum: the code must become invalid.
    rng = random.Random(20231027)
    for _ in range(300):
        code = _random_valid(rng)
        assert is_valid_uscc(code)
        for pos in range(18):
            for ch in ALPHABET:
                if ch == code[pos]:
                    continue
                mutated = code[:pos] + ch + code[pos + 1 :]
                assert not is_valid_uscc(mutated), (code, mutated)
                if pos < 17:
                    # Equivalently, the check character for the changed body differs.
                    assert check_digit(mutated[:17]) != code[17]


def test_property_adjacent_transpositions_are_detected() -> None:
    # A swap changes the sum by (a - b)(w_i - w_j) mod 31; 31 is prime and
    # adjacent weights differ, so swapping two different characters is always caught.
    rng = random.Random(7)
    for _ in range(300):
        code = _random_valid(rng)
        for pos in range(16):
            a, b = code[pos], code[pos + 1]
            if a == b:
                continue
            swapped = code[:pos] + b + a + code[pos + 2 :]
            assert not is_valid_uscc(swapped)
