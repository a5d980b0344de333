"""Numbers and codes as shown to people who need not see them whole: ops pages, logs, the audit trail."""

from __future__ import annotations

import re
import string
import unicodedata

import phonenumbers

# A number in E.164, or a Chinese mobile number written without its +.
NUMBER = re.compile(r"\+[1-9]\d{6,14}|(?<!\d)(?:86)?1[3-9]\d{9}(?!\d)")
# Six digits on their own, as the engine reads a code: in a text's shape (`_shape`), every digit a 0 and the invisible
# characters it drops left out, so that those do not part a code's digits.
SIX_DIGITS = re.compile(r"(?<!0)0{6}(?!0)")
# What a code is never glued to (`_in_a_token`): a Latin letter (the digits are part of a longer token: an RQ
# worker's name, an id); nor does it follow a digit and a point (a decimal fraction: a job's duration, microseconds).
LATIN = frozenset(string.ascii_letters)


def mask(msisdn: str) -> str:
    """'+8613800138000' → '+86 138****8000': enough to tell numbers apart on a screen, not to dial one."""
    try:
        number = phonenumbers.parse(msisdn, None)
        country, national = f"+{number.country_code} ", str(number.national_number)
    except phonenumbers.NumberParseException:
        country, national = "", re.sub(r"\D", "", msisdn)
    if len(national) < 8:
        return country + "****" + national[-2:]
    return country + national[:3] + "****" + national[-4:]


def mask_codes(text: str) -> str:
    """`text` with the digits of anything that looks like a verification code starred out, for a log line. Records
    that outlive a code (audit trail, escalation logs, stored messages) star out more, `dialogs.commands.masked_codes`:
    any run of six or more digits, spaced or dashed; a log line keeps its dates, addresses, durations and ids
    readable, and no code reaches one in any form the engine takes one (docs/ops.md, "Logs")."""
    shown, shape = _shape(text)
    starred = list(text)
    for found in SIX_DIGITS.finditer(shape):
        digits = shown[found.start():found.end()]
        if not _in_a_token(text, digits[0], digits[-1]):
            for at in digits:
                starred[at] = "*"
    return "".join(starred)


def _shape(text: str) -> tuple[list[int], str]:
    """Where each visible character of `text` is, and those characters with every digit a 0. Invisible ones are
    what dialogs/normalize.py drops before it reads a code: controls and format characters other than spaces."""
    shown = [at for at, char in enumerate(text) if char.isspace() or unicodedata.category(char) not in _INVISIBLE]
    return shown, "".join("0" if text[at].isdecimal() else text[at] for at in shown)


_INVISIBLE = frozenset({"Cc", "Cf", "Cs"})


def _in_a_token(text: str, first: int, last: int) -> bool:
    """Whether the digits from `first` to `last` are glued to a Latin letter, or follow a digit and a point."""
    before, after = text[first - 1:first], text[last + 1:last + 2]
    return before in LATIN or after in LATIN or (before == "." and text[first - 2:first - 1].isdecimal())


def mask_text(text: str) -> str:
    """`text` with every phone number masked and every code hidden."""
    return mask_codes(NUMBER.sub(lambda m: mask(m.group()), text))
