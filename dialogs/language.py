"""Which language a message to a subscriber is in (README, "Language"). Pure: every reply, notice and reminder asks
`reply_lang`, so that the same subscriber is never answered by two rules."""

from __future__ import annotations

from carriers import CarrierPolicy
from dialogs.commands import is_pinyin
from dialogs.normalize import has_cjk, normalize

# Calling codes of the places whose subscribers read Chinese: mainland China, Hong Kong, Macau, Taiwan. E.164
# calling codes are prefix-free, so a number's code is read straight off its start.
CHINESE_CALLING_CODES = ("+86", "+852", "+853", "+886")
FALLBACK = "en"


def reply_lang(text: str = "", *, locale: str | None = None, earlier: str = "", policy: CarrierPolicy | None = None,
               msisdn: str | None = None) -> str:
    """The first of: the subscriber's stored `locale`; what the words of `text` ask for; the language the conversation
    was `earlier` in; the carrier's locale (`policy`) for a subscriber on record, else the country of `msisdn`."""
    if locale:
        return locale
    last_resort = policy.locale if policy is not None else lang_of_number(msisdn)
    return words_ask_for(normalize(text)) or earlier or last_resort


def words_ask_for(text: str) -> str:
    """Chinese for ideographs, English for letters that are not pinyin initials such as TD; '' when the words say
    neither (TD, 0000, a code). `text` is normalised (dialogs.normalize)."""
    if has_cjk(text):
        return "zh"
    if any(c.isalpha() for c in text) and not is_pinyin(text):
        return "en"
    return ""


def lang_of_number(msisdn: str | None) -> str:
    """The language a number's country reads: Chinese for those above, English for any other or none."""
    return "zh" if msisdn and msisdn.startswith(CHINESE_CALLING_CODES) else FALLBACK
