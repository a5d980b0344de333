"""Merge a carrier's import into a subscriber record. Pure: imports never resurrect a cancelled package."""

from __future__ import annotations

from dataclasses import replace

from dialogs.model import Subscriber, Subscription


def merge(existing: Subscriber | None, incoming: Subscriber) -> Subscriber:
    if existing is None:
        return incoming
    merged = replace(
        existing,
        carrier=incoming.carrier if incoming.carrier is not None else existing.carrier,
        locale=incoming.locale if incoming.locale is not None else existing.locale,
    )
    for sub in incoming.subscriptions:
        merged = merged.with_subscription(_keep_history(merged.subscription(sub.id), sub))
    return merged


def _keep_history(old: Subscription | None, new: Subscription) -> Subscription:
    if old is None:
        return new
    return replace(new, status=old.status, cancelled_at=old.cancelled_at, paid_fen=max(old.paid_fen, new.paid_fen))
