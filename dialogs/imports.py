"""Merge a carrier's import into a subscriber record. Pure: imports never resurrect a cancelled package, and never
bill the months between a stale renewal date and today."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from carriers import policy_of, renewal_after
from dialogs.model import Subscriber, Subscription


def merge(existing: Subscriber | None, incoming: Subscriber, now: datetime) -> Subscriber:
    base = existing if existing is not None else replace(incoming, subscriptions=())
    merged = replace(
        base,
        carrier=incoming.carrier if incoming.carrier is not None else base.carrier,
        locale=incoming.locale if incoming.locale is not None else base.locale,
    )
    today = now.astimezone(policy_of(merged.msisdn, merged.carrier).tz).date()
    for sub in incoming.subscriptions:
        old = merged.subscription(sub.id)
        merged = merged.with_subscription(_keep_history(old, _current(old, sub, today)))
    return merged


def _current(old: Subscription | None, new: Subscription, today: date) -> Subscription:
    """A renewal date already past: the periods since were the carrier's to bill, not ours to renew one by one. The
    package moves to its next renewal after today, uncharged, unless we track a date at least as recent."""
    if new.renews_on >= today:
        return new
    if old is not None and old.renews_on >= new.renews_on:
        return replace(new, renews_on=old.renews_on)
    return replace(new, renews_on=renewal_after(new.renews_on, today))


def _keep_history(old: Subscription | None, new: Subscription) -> Subscription:
    if old is None:
        return new
    return replace(new, status=old.status, cancelled_at=old.cancelled_at, paid_fen=max(old.paid_fen, new.paid_fen))
