"""Numbers and codes as shown to people who need not see them whole: ops pages, logs, the audit trail."""

from __future__ import annotations

import re

import phonenumbers

# A number in E.164, or a Chinese mobile number written without its +.
NUMBER = re.compile(r"\+[1-9]\d{6,14}|(?<!\d)(?:86)?1[3-9]\d{9}(?!\d)")
# Six digits on their own: what a verification code looks like.
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
HIDDEN_CODE = "******"


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
    """`text` with anything that looks like a verification code hidden, for a log line. Records that outlive a code
    (audit trail, escalation logs, stored messages) star out more, `dialogs.commands.masked_codes`: any run of six or
    more digits, spaced or dashed; a log line keeps its dates, addresses and statement ids readable, and no code
    reaches one but as the six digits we sent."""
    return CODE.sub(HIDDEN_CODE, text)


def mask_text(text: str) -> str:
    """`text` with every phone number masked and every code hidden."""
    return mask_codes(NUMBER.sub(lambda m: mask(m.group()), text))
