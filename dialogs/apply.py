"""Fold a step's effects into the subscriber record. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from dialogs.effects import CancelSubscription, Effect, IssueStatement, SetOptOut
from dialogs.model import CANCELLED, Subscriber


def apply(subscriber: Subscriber, effects: Iterable[Effect], now: datetime) -> Subscriber:
    for effect in effects:
        subscriber = _apply_one(subscriber, effect, now)
    return subscriber


def _apply_one(subscriber: Subscriber, effect: Effect, now: datetime) -> Subscriber:
    if isinstance(effect, CancelSubscription):
        sub = subscriber.subscription(effect.subscription_id)
        if sub is not None and sub.active:
            return subscriber.with_subscription(replace(sub, status=CANCELLED, cancelled_at=now))
    elif isinstance(effect, IssueStatement) and subscriber.statement(effect.statement.id) is None:
        return subscriber.with_statement(effect.statement)
    elif isinstance(effect, SetOptOut):
        return replace(subscriber, opted_out=effect.opted_out)
    return subscriber
