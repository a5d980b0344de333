"""Digits by script: a phone sends ASCII, or full-width from a Chinese input method (NFKC folds those to ASCII).
Other scripts' digits are letters to tdbot: no code, no choice from a list."""

from __future__ import annotations

DIGIT_SCRIPTS = [
    # script, its zero, taken as digits
    ("ASCII", "0", True),
    ("full-width", "\uff10", True),
    ("Osmanya", "\U000104a0", False),
    ("Arabic-Indic", "\u0660", False),
    ("Extended Arabic-Indic", "\u06f0", False),
    ("Devanagari", "\u0966", False),
]
SCRIPT_NAMES = [script for script, _, _ in DIGIT_SCRIPTS]


def in_script(zero: str, digits: str) -> str:
    """ASCII `digits` written in the script whose zero is `zero`."""
    return "".join(chr(ord(zero) + int(d)) for d in digits)
