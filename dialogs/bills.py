"""One period, one bill (docs/billing.md): what cancelling a package asks for the period it falls in, and what each
of its charge lines still bills once it ends. Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from carriers import CarrierPolicy, next_renewal, period_bounds, period_cost_fen
from dialogs.model import Charge, Subscriber, Subscription


@dataclass(frozen=True)
class Bill:
    """A period re-rated on cancelling: what it cost up to the cancel day, and what was charged or paid for it."""

    period: tuple[date, date]
    cancelled_on: date
    cost_fen: int
    charged_fen: int
    paid_fen: int

    @property
    def amount_fen(self) -> int:
        """What the statement asks. Paid money paid the charge line, so the larger of the two is credited, not both."""
        return max(self.cost_fen - max(self.charged_fen, self.paid_fen), 0)


def current_period(sub: Subscription) -> tuple[date, date]:
    """The period `sub` is in: the one ending on its `renews_on`."""
    return period_bounds(sub.renews_on, sub.anchor_day)


def on_cancel(
    policy: CarrierPolicy, subscriber: Subscriber, sub: Subscription, period: tuple[date, date], cancelled_on: date
) -> Bill:
    """The bill for `period` of `sub` ([start, end) days), cancelled on local day `cancelled_on`."""
    charged = sum(_rerated(policy, line, sub, period, cancelled_on) for line in lines_in(subscriber, sub, period))
    paid = sub.paid_fen if period == current_period(sub) else 0  # paid_fen is for the current period only
    return Bill(period, cancelled_on, period_cost_fen(policy, sub.fee_fen, period, cancelled_on), charged, paid)


def credits(policy: CarrierPolicy, subscriber: Subscriber, sub: Subscription, bill: Bill, statement_id: str
            ) -> tuple[Charge, ...]:
    """The charge lines the cancel credits, as it leaves them: each billing what its period cost up to the cancel."""
    credited = []
    for line in _lines(subscriber, sub):
        kept = _rerated(policy, line, sub, bill.period, bill.cancelled_on)
        if kept < line.billed_fen:
            credited.append(replace(line, credited_fen=line.amount_fen - kept, statement_id=statement_id))
    return tuple(credited)


def _rerated(policy: CarrierPolicy, line: Charge, sub: Subscription, period: tuple[date, date], cancelled_on: date
             ) -> int:
    """What a line still bills when the package ends on `cancelled_on`: its period re-rated like any other, and
    nothing for a period from the end of the one billed on (a renewal after the quote, which the quote left out)."""
    if line.period_start >= period[1]:
        return 0
    return min(line.billed_fen, period_cost_fen(policy, line.amount_fen, _period(line, sub), cancelled_on))


def cut_at(subscriber: Subscriber, sub: Subscription, day: date) -> tuple[Charge, ...]:
    """The lines of `sub` whose period runs on past `day`, ended there (a renewal day an import moved into a period
    already charged): each keeps its days before `day`, by day, and is credited the rest, so no day is billed on two
    lines (docs/billing.md)."""
    cut = []
    for line in _lines(subscriber, sub):
        start, end = _period(line, sub)
        if start < day < end:
            kept = -(-line.billed_fen * (day - start).days // (end - start).days)  # ceil to the fen, ints only
            cut.append(replace(line, period_end=day, credited_fen=line.amount_fen - kept))
    return tuple(cut)


def lines_in(subscriber: Subscriber, sub: Subscription, period: tuple[date, date]) -> tuple[Charge, ...]:
    """The charge lines of `sub` that bill a day of `period`."""
    return tuple(line for line in _lines(subscriber, sub) if _overlaps(line, sub, period))


def _lines(subscriber: Subscriber, sub: Subscription) -> list[Charge]:
    return [c for c in subscriber.charges if c.subscription_id == sub.id]


def _period(line: Charge, sub: Subscription) -> tuple[date, date]:
    return line.period_start, line.period_end or next_renewal(line.period_start, sub.anchor_day)


def _overlaps(line: Charge, sub: Subscription, period: tuple[date, date]) -> bool:
    start, end = _period(line, sub)
    return start < period[1] and end > period[0]
