"""The language of every message to a subscriber (README, "Language"): the stored locale, else the words of the
message, else the language the conversation was in, else the carrier's locale, or for a number we have no record of
its country's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carriers import POLICIES
from dialogs.language import lang_of_number, reply_lang

CMCC, OTHER = POLICIES["cmcc"], POLICIES["default"]  # a Chinese carrier; the fallback policy, whose locale is English

SUBSCRIBER_ON_RECORD = [
    # text, stored locale, the conversation's language, the carrier's policy, language
    ("HELP", "zh", "en", OTHER, "zh"),  # a stored locale decides, whatever the words
    ("退订", "en", "", CMCC, "en"),
    ("", "en", "zh", CMCC, "en"),  # a notice or reminder: no words at all
    ("HELP", None, "zh", CMCC, "en"),  # then English words ask for English
    ("cancel my package please", None, "", CMCC, "en"),
    ("退订", None, "en", OTHER, "zh"),  # and ideographs for Chinese
    ("ＴＤ", None, "en", CMCC, "en"),  # pinyin initials say nothing: the conversation goes on in its language
    ("0000", None, "en", CMCC, "en"),
    ("123456", None, "zh", OTHER, "zh"),
    ("", None, "en", CMCC, "en"),
    ("TD", None, "", CMCC, "zh"),  # nothing said yet: the carrier's locale
    ("TD", None, "", OTHER, "en"),
    ("", None, "", CMCC, "zh"),
]


@pytest.mark.parametrize(("text", "locale", "earlier", "policy", "lang"), SUBSCRIBER_ON_RECORD)
def test_a_subscriber_on_record_is_answered_in_their_locale_their_words_their_conversation_or_their_carriers(
        text: str, locale: str | None, earlier: str, policy, lang: str) -> None:
    assert reply_lang(text, locale=locale, earlier=earlier, policy=policy) == lang


NO_RECORD = [
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
    (None, "", "en"),
]


@pytest.mark.parametrize(("msisdn", "text", "lang"), NO_RECORD)
def test_a_number_we_have_no_record_of_is_answered_in_its_words_else_its_countrys(
        msisdn: str | None, text: str, lang: str) -> None:
    assert reply_lang(text, msisdn=msisdn) == lang


@pytest.mark.parametrize(("msisdn", "lang"), [("+8613800138000", "zh"), ("+12025550123", "en"), ("", "en")])
def test_language_of_a_number(msisdn: str, lang: str) -> None:
    assert lang_of_number(msisdn) == lang


@given(text=st.text(max_size=40), locale=st.sampled_from([None, "zh", "en"]), earlier=st.sampled_from(["", "zh", "en"]),
       carrier=st.sampled_from(sorted(POLICIES)))
def test_every_message_is_in_chinese_or_english_and_a_stored_locale_always_wins(
        text: str, locale: str | None, earlier: str, carrier: str) -> None:
    lang = reply_lang(text, locale=locale, earlier=earlier, policy=POLICIES[carrier])
    assert lang in ("zh", "en")
    assert lang == (locale or lang)
