"""Fold a step's effects into the subscriber record. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from dialogs import renewal
from dialogs.effects import CancelSubscription, Effect, IssueStatement, OrderPlan, Pay, SetOptOut
from dialogs.model import CANCELLED, Subscriber


def apply(subscriber: Subscriber, effects: Iterable[Effect], now: datetime) -> Subscriber:
    for effect in effects:
        subscriber = _apply_one(subscriber, effect, now)
    return subscriber


def _apply_one(subscriber: Subscriber, effect: Effect, now: datetime) -> Subscriber:
    if isinstance(effect, CancelSubscription):
        return _cancel(subscriber, effect, now)
    elif isinstance(effect, IssueStatement) and subscriber.statement(effect.statement.id) is None:
        return subscriber.with_statement(effect.statement)
    elif isinstance(effect, SetOptOut):
        return replace(subscriber, opted_out=effect.opted_out)
    elif isinstance(effect, Pay):
        return _pending(subscriber, effect, now)
    elif isinstance(effect, OrderPlan) and subscriber.subscription(effect.subscription.id) is None:
        return renewal.begin(subscriber, effect.subscription, now)
    return subscriber


def _cancel(subscriber: Subscriber, effect: CancelSubscription, now: datetime) -> Subscriber:
    """Cancel once: the package ends with the period its statement bills, its charge lines credited as it says."""
    sub = subscriber.subscription(effect.subscription_id)
    if sub is None or not sub.active:
        return subscriber
    renews_on = effect.renews_on or sub.renews_on
    # A renewal undone: what was reported paid was for the period undone, and the statement credited none of it.
    paid = sub.paid_fen if renews_on == sub.renews_on else 0
    ended = replace(sub, status=CANCELLED, cancelled_at=now, renews_on=renews_on, paid_fen=paid)
    subscriber = subscriber.with_subscription(ended)
    for line in effect.charges:
        subscriber = subscriber.with_charge(line)
    return subscriber


def _pending(subscriber: Subscriber, effect: Pay, now: datetime) -> Subscriber:
    """Mark the charge as under way in the same commit as the step, so it is neither lost nor made twice."""
    statement = subscriber.statement(effect.statement_id)
    if statement is None or statement.pending_reference:
        return subscriber
    return subscriber.with_statement(
        replace(statement, pending_reference=effect.reference, pending_fen=effect.amount_fen, pending_since=now))
