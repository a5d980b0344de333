"""A statement past its deadline and its late fee (docs/billing.md, "Late fees"). Pure.

The fee is a function of the payment history, computed again whenever it may have changed and never added to itself:
the carrier's fee on what payments made before the deadline (by their `paid_at`) left unpaid.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from carriers import CarrierPolicy, late_fee_fen
from dialogs.model import OVERDUE, PAID, Payment, Statement, Subscriber


def timely_paid_fen(statement: Statement) -> int:
    """What was paid before the deadline, the moment it turns overdue, with what late payments paid in time by standing
    in for a `JF` charge confirmed before it. Money credited without a payment record counts as paid in time."""
    late = sum(p.amount_fen - p.in_time_fen for p in statement.payments if p.paid_at >= statement.due_at)
    return statement.paid_fen - late


def unpaid_at_deadline_fen(statement: Statement) -> int:
    return max(0, statement.amount_fen - timely_paid_fen(statement))


def standing_in(statement: Statement, payment: Payment) -> Payment:
    """`payment` as recorded on `statement`: paid late while a `JF` charge confirmed in time is pending, it stands in
    for that charge, in time up to what the charge still has to take."""
    if payment.paid_at < statement.due_at or not awaiting_charge(statement):
        return payment
    return replace(payment, in_time_fen=min(payment.amount_fen, statement.pending_fen))


def awaiting_charge(statement: Statement) -> bool:
    """A `JF` charge confirmed before the deadline is under way: the subscriber paid in time, the money is coming."""
    since = statement.pending_since
    return bool(statement.pending_reference) and since is not None and since < statement.due_at


def assess(statement: Statement, policy: CarrierPolicy, now: datetime) -> Statement:
    """`statement` with the late fee and status the rules give it at `now`."""
    if now < statement.due_at or awaiting_charge(statement):
        return statement
    assessed = replace(statement, late_fee_fen=late_fee_fen(policy, unpaid_at_deadline_fen(statement)))
    return replace(assessed, status=OVERDUE if assessed.owed_fen else PAID)


def mark_overdue(subscriber: Subscriber, policy: CarrierPolicy, statement_id: str, now: datetime) -> Subscriber:
    """The deadline check: a statement still owing turns overdue with its late fee; checking again changes nothing.
    One owing nothing is left alone: a payment recorded after the deadline had its fee looked at when recorded."""
    statement = subscriber.statement(statement_id)
    if statement is None or statement.owed_fen == 0:
        return subscriber
    assessed = assess(statement, policy, now)
    return subscriber if assessed == statement else subscriber.with_statement(assessed)
