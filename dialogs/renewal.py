"""A monthly package's periods: begun by an order, renewed on its anchor day. Pure: a cancelled package never renews,
a period is charged once, and no day is charged on two lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from carriers import next_renewal, period_bounds
from dialogs import bills
from dialogs.model import Charge, Subscriber, Subscription


def renew(subscriber: Subscriber, subscription_id: str, period_start: date, now: datetime) -> Subscriber:
    """Start the period beginning `period_start`; a package not active or no longer due then is left as it is."""
    sub = subscriber.subscription(subscription_id)
    if sub is None or not sub.active or sub.renews_on != period_start:
        return subscriber
    period_end = next_renewal(period_start, sub.anchor_day)
    renewed = subscriber.with_subscription(replace(sub, renews_on=period_end, paid_fen=0))
    if charged(subscriber, subscription_id, period_start):
        # An import carried an old date back: the period was billed already, so only move on.
        return renewed
    for line in bills.cut_at(subscriber, sub, period_start):  # an import moved the day into a charged period
        renewed = renewed.with_charge(line)
    return renewed.with_charge(Charge(subscription_id, period_start, sub.fee_fen, now, period_end))


def begin(subscriber: Subscriber, sub: Subscription, now: datetime) -> Subscriber:
    """A package ordered now (`BG`): added with the charge line of its first period, the order day to its first
    renewal."""
    start, end = period_bounds(sub.renews_on, sub.anchor_day)
    return subscriber.with_subscription(sub).with_charge(Charge(sub.id, start, sub.fee_fen, now, end))


def charged(subscriber: Subscriber, subscription_id: str, period_start: date) -> bool:
    return any(c.subscription_id == subscription_id and c.period_start == period_start for c in subscriber.charges)
