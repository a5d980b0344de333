"""How many SMS segments each template may cost on a carrier's route. Data, checked by tests/unit/test_templates.py.

A message is counted with the carrier's signature in front and that carrier's segment capacities (some Unicom
routes allow only 65/62 UCS-2 units). A message that grows with packages never grows past its budget: a listing or
the cancel confirmation (`PAGED`) is shown a page at a time, and the result of a cancel (`SPLIT`) is sent as several
messages, each keeping the template's budget (dialogs/pages.py). The budgets are sized so that every page or message
but the last of an SMS holds at least `PACKAGES` ordinary lines (a fee up to 999.99 元, a name of up to `NAME_CHARS`
characters): tests/unit/test_templates.py renders each template so, and tests/unit/test_pages.py and
tests/unit/test_cancel_pages.py check it through the engine. Names are shown whole unless a line alone would not fit
(`fit_name`); reminders still shorten them to `NAME_CHARS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from carriers import CarrierPolicy
from dialogs.segments import USSD_SCREEN, Budget, fits, is_gsm7

PACKAGES = 3  # the fewest ordinary lines a page or message of an SMS holds, but the last
NAME_CHARS = 12
QUERY_CHARS = 20  # how much of an unmatched `TD <name>` is echoed back

# Fragments (lines, statuses) are rendered into a bigger message; their budget is that of one line.
LINE = 1

BUDGETS: dict[str, int] = {
    "list": 4,
    "list_line": LINE,
    "none_active": 2,
    # A page of three packages with the way to the others, the count and the total: English with Chinese names on
    # Unicom's 62-unit route takes five.
    "confirm": 5,
    "confirm_line": LINE,
    "code_sent": 1,
    "code_sms": 1,
    "code_wrong": 1,
    "code_expired": 1,
    "code_waiting": 1,
    "locked": 2,
    "still_locked": 2,
    "rate_limited": 1,
    "done": 4,
    "done_part": LINE,
    "done_line": LINE,
    "done_line_free": LINE,
    "done_line_already": LINE,
    "aborted": 1,
    "invalid_choice": 1,
    "not_found": 2,
    "nothing_pending": 1,
    "query": 4,
    "query_line_active": LINE,
    "query_line_cancelled": LINE,
    "query_owed": LINE,
    "query_nothing_owed": LINE,
    "query_empty": 1,
    "bill": 4,
    "bill_line": LINE,
    "bill_empty": 1,
    "status_open": LINE,
    "status_paid": LINE,
    "status_overdue": LINE,
    "help": 2,
    "human": 1,
    "human_waiting": 1,
    "stop": 1,
    "start": 1,
    # Reminders: one UCS-2 segment in Chinese; English with a 【signature】 or Chinese name takes two.
    "remind_settle": 2,
    "remind_renewal": 2,
    "overdue": 2,
    "overdue_fee": 2,
    "flooded": 2,
    "unknown": 2,
    "unknown_sender": 2,
    "too_long": 1,
    "busy": 1,
    "pay_confirm": 3,
    "pay_line": LINE,
    "pay_nothing": 1,
    "pay_pending": 1,
    "pay_code_sent": 1,
    "pay_code_sms": 1,
    "pay_code_waiting": 1,
    "pay_code_expired": 1,
    "pay_locked": 2,
    "pay_started": 1,
    "pay_done": 1,
    "pay_done_partial": 2,
    "pay_retrying": 1,
    "pay_failed": 2,
    "plans": 3,
    "plan_line": LINE,
    "plans_none": 1,
    "plan_invalid_choice": 1,
    "plan_confirm": 2,
    "plan_ordered": 2,
    "plan_expired": 2,
    "plan_not_ordered": 1,
    "plan_unavailable": 2,
    "page_more": LINE,
    "page_back": LINE,
}
# Listings of packages, statements or plans, and what a cancel or `JF` asks to confirm: shown a page at a time, each
# page within the template's budget.
PAGED = frozenset({"list", "query", "bill", "confirm", "pay_confirm", "plans"})
# Messages with a line per package that are sent, not shown: as many messages as the lines need, each within budget.
SPLIT = frozenset({"done"})
CUT = "…"
GSM_CUT = "..."  # "…" is not in GSM-7: it would turn the whole message into UCS-2


@dataclass(frozen=True)
class Screen:
    """How much one reply may hold on the channel its message came in on. `chars` 0 is an SMS, held to each
    template's segment budget on the carrier's route; otherwise a screen of at most that many characters."""

    chars: int = 0


# Room every USSD screen leaves for a line above it: an answer the screen cannot take gets the same screen again under
# a short hint (gateway/channels/ussd.py), and that must still fit the 182 characters.
USSD_HINT = 20
SMS = Screen()
USSD = Screen(USSD_SCREEN - USSD_HINT)


def budget(policy: CarrierPolicy, key: str) -> Budget:
    """The segment budget of template `key` on `policy`'s route."""
    return Budget(
        single_gsm=policy.gsm_single, multi_gsm=policy.gsm_multi,
        single_ucs2=policy.ucs2_single, multi_ucs2=policy.ucs2_multi,
        max_segments=BUDGETS[key],
    )


def fits_screen(policy: CarrierPolicy, key: str, text: str, screen: Screen = SMS) -> bool:
    """Whether `text`, rendered from template `key`, may go out as one reply on `screen`."""
    if screen.chars:
        return len(text) <= screen.chars
    return fits(text, budget(policy, key))


def fit_name(name: str, text_for: Callable[[str], str], room: Callable[[str], bool]) -> str:
    """`name` whole if `text_for(name)` passes `room`; else its longest start, marked as cut, that does (at least
    one character, even if that still does not). Counted in the message's own encoding: GSM-7 holds more."""
    if len(name) < 2 or room(text_for(name)):
        return name
    low, high = 1, len(name) - 1  # the longest start that fits lies in [low, high], if any does
    while low < high:
        middle = (low + high + 1) // 2
        if room(text_for(_cut(name, middle, text_for))):
            low = middle
        else:
            high = middle - 1
    return _cut(name, low, text_for)


def _cut(name: str, keep: int, text_for: Callable[[str], str]) -> str:
    gsm = name[:keep] + GSM_CUT
    return gsm if is_gsm7(text_for(gsm)) else name[:keep] + CUT


def short_name(name: str) -> str:
    """A package name as the messages not yet budgeted by `fit_name` show it: cut to NAME_CHARS, marked with …"""
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + CUT
