"""Which language to answer in when no subscriber record says: the words of the message, else the number's country."""

from __future__ import annotations

from dialogs.commands import guess_lang
from dialogs.normalize import normalize

# Calling codes of the places whose subscribers read Chinese: mainland China, Hong Kong, Macau, Taiwan. E.164
# calling codes are prefix-free, so a number's code is read straight off its start.
CHINESE_CALLING_CODES = ("+86", "+852", "+853", "+886")
FALLBACK = "en"


def lang_of_number(msisdn: str | None) -> str:
    """The language a number's country reads: Chinese for those above, English for any other or none."""
    return "zh" if msisdn and msisdn.startswith(CHINESE_CALLING_CODES) else FALLBACK


def reply_lang(msisdn: str | None, text: str) -> str:
    """Ideographs ask for Chinese and English words for English; a message with neither (TD, 0000, a code) is
    answered in the language of the number's country."""
    return guess_lang(normalize(text), lang_of_number(msisdn))
