"""What a normalised message means, independent of where the subscriber is in a dialog."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dialogs.normalize import has_cjk, numbers_in


@dataclass(frozen=True)
class Cancel:
    """`TD`, `退订`, optionally with a target: numbers, ALL, or a name / service code."""

    numbers: tuple[int, ...] = ()
    everything: bool = False
    query: str = ""


@dataclass(frozen=True)
class Keyword:
    name: str


@dataclass(frozen=True)
class Numbers:
    values: tuple[int, ...]


@dataclass(frozen=True)
class Code:
    digits: str


@dataclass(frozen=True)
class Unknown:
    text: str


Command = Cancel | Keyword | Numbers | Code | Unknown

QUERY, BILL, HELP, HUMAN, STOP, START, YES, NO, PAY, PLANS = (
    "query", "bill", "help", "human", "stop", "start", "yes", "no", "pay", "plans",
)

# Whole-message keywords only: "STOP PLEASE" is not a STOP.
KEYWORDS: dict[str, str] = {
    "0000": QUERY, "查询": QUERY, "CX": QUERY,
    "ZD": BILL, "账单": BILL,
    "HELP": HELP, "帮助": HELP, "?": HELP, "INFO": HELP,
    "人工": HUMAN, "KF": HUMAN, "客服": HUMAN,
    "STOP": STOP, "R": STOP, "拒收": STOP, "STOPALL": STOP, "UNSUBSCRIBE": STOP,
    "CANCEL": STOP, "END": STOP, "QUIT": STOP, "REVOKE": STOP, "OPTOUT": STOP,
    "START": START, "UNSTOP": START,
    "Y": YES, "YES": YES, "是": YES, "确认": YES, "好": YES,
    "N": NO, "NO": NO, "否": NO, "不": NO, "取消": NO,
    "JF": PAY, "缴费": PAY,
    "BG": PLANS, "套餐": PLANS,
}
CANCEL_WORDS = ("TD", "退订")
EVERYTHING = {"ALL", "全部", "所有"}
# ASCII digits only, as normalize leaves them: typed in ASCII or full-width, never another script's digits (`\d`
# would take Osmanya or Devanagari ones) nor ², ④ or 𝟒 (dialogs/normalize.py keeps those as typed).
CODE_RE = re.compile(r"\A[0-9]{6}\Z")


# Pinyin initials (TD = 退订, ZD = 账单 ...) are written in Latin letters but say nothing about English.
PINYIN = frozenset({"TD", "Y", "N", "ZD", "JF", "BG", "KF", "R", "CX"})


def is_pinyin(text: str) -> bool:
    return text.split(" ", 1)[0] in PINYIN


def guess_lang(text: str, fallback: str) -> str:
    """The reply language `text` calls for: Chinese for ideographs, English for letters that are not pinyin
    initials such as TD (recognised in normalised text), else `fallback`."""
    if has_cjk(text):
        return "zh"
    if any(c.isalpha() for c in text) and not is_pinyin(text):
        return "en"
    return fallback


def parse(text: str) -> Command:
    """Parse text already passed through `dialogs.normalize.normalize`."""
    if text in ("全部退订", "退订全部"):
        return Cancel(everything=True)
    if text in KEYWORDS:
        return Keyword(KEYWORDS[text])
    cancel = _cancel(text)
    if cancel is not None:
        return cancel
    if CODE_RE.match(text):
        return Code(text)
    numbers = numbers_in(text)
    if numbers:
        return Numbers(numbers)
    return Unknown(text)


def _cancel(text: str) -> Cancel | None:
    word = next((w for w in CANCEL_WORDS if text.startswith(w)), None)
    if word is None:
        return None
    rest = text[len(word):].strip()
    if not rest:
        return Cancel()
    if rest in EVERYTHING:
        return Cancel(everything=True)
    if word == "TD" and text[2:3].isascii() and text[2:3].isalpha():
        return None  # "TDX..." is some other word, not TD with an argument
    numbers = numbers_in(rest)
    if numbers:
        return Cancel(numbers=numbers)
    return Cancel(query=rest)


# Anything a subscriber might mean as a code: six or more digits, perhaps spaced or dashed, in a text where every
# character with a digit value (any script's, ², ④, 𝟒: `str.isdigit`) reads 0. A code typed in digits that are not
# taken as one (④②④②④②) is still the code to anyone reading the log.
CODE_LIKE = re.compile(r"0(?:[\s.-]?0){5,}")


def masked_codes(text: str) -> str:
    """`text` with every digit of anything like a code starred out, for records that outlive the code."""
    shape = "".join("0" if c.isdigit() else c for c in text)
    starred = list(text)
    for found in CODE_LIKE.finditer(shape):
        for i in range(*found.span()):
            if shape[i] == "0":
                starred[i] = "*"
    return "".join(starred)
