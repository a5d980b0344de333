"""Digits by script, and what tdbot takes them for (the rule is in dialogs/normalize.py). A verification code is
ASCII or full-width digits (what a phone keypad and a Chinese input method type), nothing else; a choice from a list
may also be typed as circled numbers (①③), which Chinese input methods offer. Every other script's digits, and
superscript or mathematical ones that NFKC would fold into ASCII, are letters to tdbot."""

from __future__ import annotations

ASCII = "0123456789"
FULL_WIDTH = "０１２３４５６７８９"

DIGIT_SCRIPTS = [
    # script, its digits 0-9, taken as a code, taken as a choice
    ("ASCII", ASCII, True, True),
    ("full-width", FULL_WIDTH, True, True),
    ("circled", "⓪①②③④⑤⑥⑦⑧⑨", False, True),
    ("superscript", "⁰¹²³⁴⁵⁶⁷⁸⁹", False, False),
    ("subscript", "₀₁₂₃₄₅₆₇₈₉", False, False),
    ("mathematical bold", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗", False, False),
    ("mathematical double-struck", "𝟘𝟙𝟚𝟛𝟜𝟝𝟞𝟟𝟠𝟡", False, False),
    ("Osmanya", "𐒠𐒡𐒢𐒣𐒤𐒥𐒦𐒧𐒨𐒩", False, False),
    ("Arabic-Indic", "٠١٢٣٤٥٦٧٨٩", False, False),
    ("Extended Arabic-Indic", "۰۱۲۳۴۵۶۷۸۹", False, False),
    ("Devanagari", "०१२३४५६७८९", False, False),
]
SCRIPT_NAMES = [script for script, *_ in DIGIT_SCRIPTS]


def in_script(digits: str, ascii_digits: str) -> str:
    """`ascii_digits` written with the script whose digits 0-9 are `digits`."""
    return "".join(digits[int(d)] for d in ascii_digits)
