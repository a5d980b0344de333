"""How many SMS segments a text costs (GSM 03.38 7-bit or UCS-2), and whether it fits a budget."""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 default alphabet. ESC (0x1B) is left out: it only introduces the extension table.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Each of these is ESC + one septet, and the two must stay in the same segment.
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
USSD_SCREEN = 182


@dataclass(frozen=True)
class Budget:
    """Per-segment capacities of a route and how many segments a message may take."""

    single_gsm: int = 160
    multi_gsm: int = 153
    single_ucs2: int = 70
    multi_ucs2: int = 67
    max_segments: int = 1

    def __post_init__(self) -> None:
        capacities = (self.single_gsm, self.multi_gsm, self.single_ucs2, self.multi_ucs2)
        # A capacity below 2 could not hold an escape pair or a surrogate pair.
        if min(capacities) < 2 or self.max_segments < 1:
            raise ValueError(f"impossible SMS budget: {self}")


def is_gsm7(text: str) -> bool:
    return all(c in GSM_BASIC or c in GSM_EXTENSION for c in text)


def segments(
    text: str,
    single_gsm: int = 160,
    multi_gsm: int = 153,
    single_ucs2: int = 70,
    multi_ucs2: int = 67,
) -> int:
    """Segments needed; the empty text still costs one."""
    if is_gsm7(text):
        return _pack(_septet_widths(text), single_gsm, multi_gsm)
    return _pack(_ucs2_widths(text), single_ucs2, multi_ucs2)


def fits(text: str, budget: Budget) -> bool:
    return (
        segments(text, budget.single_gsm, budget.multi_gsm, budget.single_ucs2, budget.multi_ucs2)
        <= budget.max_segments
    )


def _septet_widths(text: str) -> list[int]:
    """Septets a GSM-7 character takes: 2 for an extension one (ESC and itself); ValueError if not GSM-7."""
    widths = []
    for char in text:
        if char in GSM_BASIC:
            widths.append(1)
        elif char in GSM_EXTENSION:
            widths.append(2)
        else:
            raise ValueError(f"not in the GSM 03.38 alphabet: {char!r}")
    return widths


def _ucs2_widths(text: str) -> list[int]:
    """UTF-16 code units, which is what UCS-2 routes bill: an emoji is 2."""
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def _pack(widths: list[int], single: int, multi: int) -> int:
    """Segments when no character's units may straddle two segments."""
    if sum(widths) <= single:
        return 1
    if multi < max(widths):
        raise ValueError(f"segment capacity {multi} cannot hold a {max(widths)}-unit character")
    count, used = 1, 0
    for width in widths:
        if used + width > multi:
            count, used = count + 1, 0
        used += width
    return count
