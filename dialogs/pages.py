"""Listings shown a page at a time, each page within the room of the channel: `98` the next page, `0` the one before;
and messages with too many lines for one, sent as several.

The rules (tests/unit/test_pages.py, tests/unit/test_cancel_pages.py):
- a page holds as many whole lines as fit, and at least one (on an SMS, at least budgets.PACKAGES ordinary ones: the
  budgets are sized for it, dialogs/budgets.py);
- a name is shown whole unless its line alone would overrun the page; then it is cut to what fits (`fit_name`);
- together the pages show every line exactly once and in order, so a number keeps its meaning on any page;
- the pages are worked out again from the first line for each turn, so a stored page is just where it starts;
- a message split in several (`split`) follows the same rules, each part numbered n/m so none is taken for the whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dialogs.budgets import fit_name

MORE = "98"
BACK = "0"

# The whole message for some lines: (lines as shown, whether a page comes before, whether one comes after).
Compose = Callable[[list[str], bool, bool], str]
# Message n of m holding some lines: (lines as shown, n, m).
Numbered = Callable[[list[str], int, int], str]


@dataclass(frozen=True)
class Line:
    """One entry of a listing: its name and how the line reads with the name as shown."""

    name: str
    text: Callable[[str], str]

    def whole(self) -> str:
        return self.text(self.name)


@dataclass(frozen=True)
class Page:
    start: int  # index of its first line
    end: int  # index after its last line
    text: str
    shown: tuple[str, ...] = ()  # its lines as shown


@dataclass(frozen=True)
class Listing:
    lines: Sequence[Line]
    compose: Compose
    room: Callable[[str], bool]  # whether a whole page fits the channel

    def page(self, start: int) -> Page:
        """The page beginning at line `start`."""
        count = len(self.lines)
        if start >= count:
            return Page(start, start, self.compose([], start > 0, False))
        page = self._alone(start)
        for end in range(start + 2, count + 1):
            shown = [line.whole() for line in self.lines[start:end]]
            text = self.compose(shown, start > 0, end < count)
            if not self.room(text):
                break
            page = Page(start, end, text, tuple(shown))
        return page

    def starts(self) -> list[int]:
        """Where each page begins."""
        found, start = [], 0
        while start < len(self.lines):
            found.append(start)
            start = self.page(start).end
        return found

    def previous(self, start: int) -> int:
        """Where the page before the one beginning at `start` begins."""
        return max((s for s in self.starts() if s < start), default=0)

    def _alone(self, start: int) -> Page:
        line, back, more = self.lines[start], start > 0, start + 1 < len(self.lines)
        name = fit_name(line.name, lambda shown: self.compose([line.text(shown)], back, more), self.room)
        return Page(start, start + 1, self.compose([line.text(name)], back, more), (line.text(name),))


def split(lines: Sequence[Line], compose: Numbered, room: Callable[[str], bool]) -> list[str]:
    """`lines` in one message if they fit, else in as few as `room` allows, numbered. Parts are cut as if each were
    numbered m/m with m as wide as the number of lines: no part's own number can make it longer than that."""
    whole = compose([line.whole() for line in lines], 1, 1)
    if not lines or room(whole):
        return [whole]
    widest = len(lines)
    listing = Listing(lines, lambda shown, back, more: compose(shown, widest, widest), room)
    parts = [listing.page(start).shown for start in listing.starts()]
    return [compose(list(shown), n, len(parts)) for n, shown in enumerate(parts, 1)]
