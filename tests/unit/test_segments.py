from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carriers import POLICIES
from dialogs.budgets import Screen, fits_screen
from dialogs.segments import USSD_SCREEN, Budget, fits, is_gsm7, segments

ZH = "退"
EMOJI = "😀"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("Hello, TD 1?", True),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r", True),
        ("^{}\\[~]|€\f", True),
        ("退订", False),
        ("ç", False),
        ("`", False),
        ("\x1b", False),
        ("TD 😀", False),
        ("【10086】", False),
    ],
)
def test_only_the_gsm_alphabet_and_its_extension_go_out_in_7_bits(text: str, expected: bool) -> None:
    assert is_gsm7(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 1),
        # GSM-7: 160 single, 153 per part
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("a" * 159 + "€", 2),
        ("a" * 158 + "€", 1),
        ("{" * 80, 1),
        ("{" * 81, 2),
        # an escape pair is not split: 152 + 2 does not fit in 153
        ("a" * 152 + "{" + "a" * 152, 3),
        ("a" * 151 + "{" + "a" * 153, 2),
        ("{" * 153, 3),
        ("{" * 152, 2),
        # UCS-2: 70 single, 67 per part
        (ZH * 70, 1),
        (ZH * 71, 2),
        (ZH * 134, 2),
        (ZH * 135, 3),
        ("a" * 69 + ZH, 1),
        ("a" * 70 + ZH, 2),
        # surrogate pairs are 2 units and are not split
        (EMOJI * 35, 1),
        (EMOJI * 36, 2),
        ("a" * 69 + EMOJI, 2),
        ("a" * 68 + EMOJI, 1),
        (ZH * 66 + EMOJI + ZH * 66, 3),
        (ZH * 65 + EMOJI + ZH * 67, 2),
    ],
)
def test_a_text_costs_the_segments_its_encoding_needs_never_splitting_a_character(text: str, expected: int) -> None:
    assert segments(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ZH * 65, 1),
        (ZH * 66, 2),
        (ZH * 124, 2),
        (ZH * 125, 3),
        ("a" * 160, 1),
    ],
)
def test_segments_on_a_65_62_route(text: str, expected: int) -> None:
    assert segments(text, single_ucs2=65, multi_ucs2=62) == expected


@pytest.mark.parametrize(
    ("text", "budget", "expected"),
    [
        (ZH * 70, Budget(), True),
        (ZH * 71, Budget(), False),
        (ZH * 71, Budget(max_segments=2), True),
        (ZH * 134, Budget(max_segments=2), True),
        (ZH * 135, Budget(max_segments=2), False),
        (ZH * 65, Budget(single_ucs2=65, multi_ucs2=62), True),
        (ZH * 66, Budget(single_ucs2=65, multi_ucs2=62), False),
        (ZH * 124, Budget(single_ucs2=65, multi_ucs2=62, max_segments=2), True),
        (ZH * 125, Budget(single_ucs2=65, multi_ucs2=62, max_segments=2), False),
        ("a" * 160, Budget(single_ucs2=65, multi_ucs2=62), True),
        ("a" * 161, Budget(160, 153, 65, 62, 1), False),
        ("", Budget(), True),
    ],
)
def test_a_text_fits_a_budget_when_its_segments_on_that_route_are_within_it(
    text: str, budget: Budget, expected: bool,
) -> None:
    assert fits(text, budget) is expected


@pytest.mark.parametrize(
    "fields",
    [(1, 153, 70, 67, 1), (160, 1, 70, 67, 1), (160, 153, 70, 0, 1), (160, 153, 70, 67, 0)],
)
def test_budget_refuses_impossible_capacities(fields: tuple[int, int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        Budget(*fields)


def test_a_budget_cannot_be_changed_once_made() -> None:
    with pytest.raises(AttributeError):
        Budget().max_segments = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", True), ("a" * USSD_SCREEN, True), ("a" * 183, False), (ZH * 182, True), (ZH * 183, False)],
)
def test_a_ussd_screen_holds_182_characters_whatever_their_script(text: str, expected: bool) -> None:
    assert USSD_SCREEN == 182
    assert fits_screen(POLICIES["cmcc"], "done", text, Screen(USSD_SCREEN)) is expected


texts = st.text(alphabet=st.sampled_from("aZ0 @€{}^退😀\n")) | st.text(max_size=400)


@given(texts)
def test_segments_at_least_one(text: str) -> None:
    assert segments(text) >= 1


@given(texts, st.characters())
def test_segments_monotone_when_appending(text: str, char: str) -> None:
    assert segments(text + char) >= segments(text)


@given(st.text(alphabet=st.sampled_from("ab{€"), min_size=161, max_size=1000))
def test_gsm_segments_hold_at_most_153_septets(text: str) -> None:
    # lower bound: no segment can carry more than 153 septets ({ and € take two each)
    septets = len(text) + sum(c in "{€" for c in text)
    assert segments(text) >= -(-septets // 153)
