"""Per-number allowances on inbound messages: a fixed-window counter the step's first read counts against
(`Store.read`), and the refusal when a message is over it. The limits themselves are set by gateway/web/limits.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    """A fixed-window counter: `key` lives `seconds` from its first hit and allows `allowed` hits."""

    key: str
    seconds: int
    allowed: int


class OverQuota(Exception):
    def __init__(self, quota: Quota, place: int) -> None:
        super().__init__(f"message {place} is over the limit of {quota.allowed} in {quota.seconds}s")
        self.quota, self.place = quota, place

    @property
    def first(self) -> bool:
        """The first message over the limit in its window (and every copy of it): the one that gets a notice."""
        return self.place == self.quota.allowed + 1
