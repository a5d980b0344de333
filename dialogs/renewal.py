"""A monthly package renewing on its day. Pure: a cancelled package never renews, and a period is charged once."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from carriers import next_renewal
from dialogs.model import Charge, Subscriber


def renew(subscriber: Subscriber, subscription_id: str, period_start: date, now: datetime) -> Subscriber:
    """Start the period beginning `period_start`; a package not active or no longer due then is left as it is."""
    sub = subscriber.subscription(subscription_id)
    if sub is None or not sub.active or sub.renews_on != period_start:
        return subscriber
    renewed = subscriber.with_subscription(replace(sub, renews_on=next_renewal(period_start), paid_fen=0))
    if charged(subscriber, subscription_id, period_start):
        # An import carried an old date back: the period was billed already, so only move on.
        return renewed
    charge = Charge(subscription_id, period_start, sub.fee_fen, now)
    return replace(renewed, charges=renewed.charges + (charge,))


def charged(subscriber: Subscriber, subscription_id: str, period_start: date) -> bool:
    return any(c.subscription_id == subscription_id and c.period_start == period_start for c in subscriber.charges)
