"""The reply language without a subscriber record: the message's words, else the number's country."""

from __future__ import annotations

import pytest

from dialogs.language import lang_of_number, reply_lang

TABLE = [
    # number (E.164, or None when it could not be read), text, language
    ("+8613900000001", "TD", "zh"),  # pinyin initials say nothing about English: the country does
    ("+8613900000001", "td", "zh"),
    ("+8613900000001", "ＴＤ", "zh"),
    ("+8613900000001", "0000", "zh"),
    ("+8613900000001", "", "zh"),
    ("+85291234567", "TD 1", "zh"),
    ("+85361234567", "TD", "zh"),
    ("+886912345678", "TD", "zh"),
    ("+8613900000001", "HELP", "en"),  # English words ask for English whatever the number
    ("+8613900000001", "cancel my package please", "en"),
    ("+14155550100", "TD", "en"),
    ("+14155550100", "退订", "zh"),  # ideographs ask for Chinese whatever the number
    ("+447700900123", "0000", "en"),
    ("+85021234567", "TD", "en"),  # +850 (North Korea) is not +86
    (None, "TD", "en"),
    (None, "退订", "zh"),
]


@pytest.mark.parametrize(("msisdn", "text", "lang"), TABLE)
def test_reply_language(msisdn: str | None, text: str, lang: str) -> None:
    assert reply_lang(msisdn, text) == lang


@pytest.mark.parametrize(("msisdn", "lang"), [("+8613800138000", "zh"), ("+12025550123", "en"), ("", "en")])
def test_language_of_a_number(msisdn: str, lang: str) -> None:
    assert lang_of_number(msisdn) == lang
