"""Fold a step's effects into the subscriber record. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from dialogs.effects import CancelSubscription, Effect, IssueStatement, OrderPlan, Pay, SetOptOut
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
    elif isinstance(effect, Pay):
        return _pending(subscriber, effect, now)
    elif isinstance(effect, OrderPlan) and subscriber.subscription(effect.subscription.id) is None:
        return subscriber.with_subscription(effect.subscription)
    return subscriber


def _pending(subscriber: Subscriber, effect: Pay, now: datetime) -> Subscriber:
    """Mark the charge as under way in the same commit as the step, so it is neither lost nor made twice."""
    statement = subscriber.statement(effect.statement_id)
    if statement is None or statement.pending_reference:
        return subscriber
    return subscriber.with_statement(
        replace(statement, pending_reference=effect.reference, pending_fen=effect.amount_fen, pending_since=now))
