"""Merge a carrier's import into a subscriber record. Pure: imports never resurrect a cancelled package, never bill
the months between a stale renewal date and today, and keep a package's anchor day while its dates stay on it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from carriers import on_anchor, policy_of, renewal_after
from dialogs.model import Subscriber, Subscription


def merge(existing: Subscriber | None, incoming: Subscriber, now: datetime) -> Subscriber:
    base = existing if existing is not None else replace(incoming, subscriptions=())
    merged = replace(
        base,
        carrier=incoming.carrier if incoming.carrier is not None else base.carrier,
        locale=incoming.locale if incoming.locale is not None else base.locale,
    )
    today = now.astimezone(policy_of(merged.msisdn, merged.carrier).tz).date()
    for sent in incoming.subscriptions:
        old = merged.subscription(sent.id)
        merged = merged.with_subscription(_keep_history(old, sent, _current(old, _anchored(old, sent), today)))
    return merged


def _anchored(old: Subscription | None, sent: Subscription) -> Subscription:
    """A date on the stored package's cycle keeps its anchor (a 31st package sent as renewing 28 Feb is still one);
    any other date starts a new anchor at its own day."""
    if old is not None and on_anchor(sent.renews_on.year, sent.renews_on.month, old.anchor_day) == sent.renews_on:
        return replace(sent, anchor_day=old.anchor_day)
    return replace(sent, anchor_day=sent.renews_on.day)


def _current(old: Subscription | None, new: Subscription, today: date) -> Subscription:
    """A renewal date already past: the periods since were the carrier's to bill, not ours to renew one by one. The
    package moves to its next renewal after today, uncharged, unless we track a date at least as recent."""
    if new.renews_on >= today:
        return new
    if old is not None and old.renews_on >= new.renews_on:
        return replace(new, renews_on=old.renews_on, anchor_day=old.anchor_day)
    return replace(new, renews_on=renewal_after(new.anchor_day, today))


def _keep_history(old: Subscription | None, sent: Subscription, new: Subscription) -> Subscription:
    """`new` with what the import must not undo: a cancel, and a payment towards the current period. What was sent
    as paid is for the period ending on the date it was sent with, so it counts only if that is still the period."""
    paid = sent.paid_fen if sent.renews_on == new.renews_on else 0
    if old is None:
        return replace(new, paid_fen=paid)
    if old.renews_on == new.renews_on:
        paid = max(paid, old.paid_fen)
    return replace(new, status=old.status, cancelled_at=old.cancelled_at, paid_fen=paid)
