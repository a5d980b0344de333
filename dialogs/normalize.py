"""Turn whatever a phone sent into one canonical command text. Pure, and never raises."""

from __future__ import annotations

import functools
import re
import unicodedata

# NFKC already folds the full-width forms (，？；：！); these ideographic ones have no
# compatibility decomposition, so they are mapped by hand.
PUNCTUATION = str.maketrans({"、": ",", "。": ".", "，": ",", "？": "?", "；": ";", "：": ":", "！": "!"})
ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
TYPOS: tuple[tuple[str, str], ...] = (
    ("退定", "退订"),
    ("推订", "退订"),
    ("退钉", "退订"),
    ("查寻", "查询"),
    ("帐单", "账单"),
    ("缴废", "缴费"),
)
TRAILING = ".!。 "
# Only when the rest is a plain number list, so codes such as "A1B2" are left alone.
COMMAND_DIGITS = re.compile(r"^([A-Z]+)([0-9][0-9 ,]*)$")
NUMBER_LIST = re.compile(r"^[0-9]+(?:[ ,]+[0-9]+)*$")
SEPARATORS = re.compile(r"[ ,]+")
MAX_DIGITS = 18  # int() refuses very long digit strings; nobody picks package 10**18
DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
CJK = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a700-\U0002ee5f\U0002f800-\U0002fa1f\U00030000-\U000323af]"
)
MAX_PASSES = 4

# What counts as a digit is what the subscriber typed, not what NFKC makes of it. A phone keypad types ASCII digits
# and a Chinese input method full-width ones: those are digits (NFKC folds full-width to ASCII). NFKC would also fold
# superscript ², circled ①, mathematical 𝟒 and the like into ASCII digits, making 𝟒𝟐𝟒𝟐𝟒𝟐 a verification code: such
# characters are kept as typed, so a code is only ever ASCII or full-width digits (dialogs/commands.py CODE_RE).
# A choice from a list may also be typed in circled numbers (`numbers_in`). Table: tests/support/digits.py.
DIGITS = frozenset("0123456789")
FULL_WIDTH_DIGITS = frozenset("０１２３４５６７８９")
# Decision: ①–⑳ and ㉑–㊿ are a choice. Chinese input methods offer them when a digit is typed, and a choice is always
# followed by a confirmation the subscriber must answer, so reading ③ as 3 can cancel nothing by itself. They are a
# number each, separators or not (`①③` is 1 and 3). They are never a code: a code cancels or pays.
CIRCLED = re.compile("[\u2460-\u2473\u24ea\u3251-\u325f\u32b1-\u32bf]")


def normalize(text: str) -> str:
    """Canonical form of an inbound message: `"ｔｄ１。"` -> `"TD 1"`, `"退定"` -> `"退订"`."""
    current = _unpaired_surrogates_replaced(text)
    # Removing characters can expose new NFKC compositions; iterate to a fixed point
    # so that normalize(normalize(x)) == normalize(x).
    for _ in range(MAX_PASSES):
        following = _once(current)
        if following == current:
            break
        current = following
    return current


def _unpaired_surrogates_replaced(text: str) -> str:
    # Joins surrogate pairs into the real character and turns lone halves into U+FFFD.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _once(text: str) -> str:
    text = "".join(_visible(c) for c in text)
    text = _folded(text).translate(PUNCTUATION).translate(ASCII_UPPER)
    text = "".join(_visible(c) for c in text)
    for typo, fixed in TYPOS:
        text = text.replace(typo, fixed)
    text = " ".join(text.split()).rstrip(TRAILING)
    return COMMAND_DIGITS.sub(r"\1 \2", text)


def _folded(text: str) -> str:
    """NFKC, except for the characters it would turn into ASCII digits that the subscriber did not type as digits."""
    parts, run = [], []
    for char in text:
        if _kept_as_typed(char):
            parts += [unicodedata.normalize("NFKC", "".join(run)), char]
            run = []
        else:
            run.append(char)
    return "".join(parts) + unicodedata.normalize("NFKC", "".join(run))


@functools.lru_cache(maxsize=4096)
def _kept_as_typed(char: str) -> bool:
    if char in DIGITS or char in FULL_WIDTH_DIGITS:
        return False
    return any(c in DIGITS for c in unicodedata.normalize("NFKC", char))


def _visible(char: str) -> str:
    if char.isspace():
        return " "
    if unicodedata.category(char) in DROPPED_CATEGORIES:
        return ""
    return char


def numbers_in(text: str) -> tuple[int, ...] | None:
    """Positive integers of a pure number list (`"1 3"`, `"1,3"`, `"1，3"`, `"①③"`), de-duplicated in order."""
    text = CIRCLED.sub(lambda circled: f",{unicodedata.normalize('NFKC', circled.group())},", normalize(text))
    text = text.strip(" ,")
    if not NUMBER_LIST.match(text):
        return None
    tokens = SEPARATORS.split(text)
    if any(len(token) > MAX_DIGITS for token in tokens):
        return None
    values = tuple(dict.fromkeys(int(token) for token in tokens))
    if 0 in values:
        return None
    return values


def has_cjk(text: str) -> bool:
    """Whether a CJK ideograph is present, which is what picks a Chinese reply."""
    return CJK.search(text) is not None
