"""Money against statements. Pure: the payments API and the `JF` billing job both settle through here.

The rules are docs/billing.md's "Payments and charges (JF)"; when a payment was made decides the late fee ("Late fees",
dialogs/overdue.py), so recording one looks at the fee again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime

from carriers import CarrierPolicy
from dialogs.model import PAID, Payment, Statement, Subscriber
from dialogs.overdue import assess, standing_in

RECORDED = "recorded"
DUPLICATE = "duplicate"  # the same reference and amount again: nothing changes
CONFLICT = "conflict"  # the reference is on record with another amount or statement
NO_STATEMENT = "no_statement"
TOO_MANY = "too_many"

# Bounds the record a step reads and writes; a statement needing more is a case for a person.
MAX_PAYMENTS = 20
# "<msisdn digits>-<subscription id>-<yyyymmdd>", as dialogs.engine.statement_for builds it: ASCII digits, where `\d`
# would take any script's (and phonenumbers reads them all as a number).
STATEMENT_ID = re.compile(r"^([0-9]{6,15})-(.+)-([0-9]{8})$")


@dataclass(frozen=True)
class Settled:
    outcome: str
    subscriber: Subscriber | None
    statement: Statement | None = None
    payment: Payment | None = None  # the payment on record under the reference
    overpaid_fen: int = 0


def statement_msisdn(statement_id: str) -> str | None:
    """The subscriber a statement id belongs to (E.164 with +), or None if it is not a statement id."""
    match = STATEMENT_ID.match(statement_id)
    return f"+{match.group(1)}" if match else None


def statement_period_start(statement_id: str) -> date | None:
    """The first day of the period a statement bills, as its id names it; None if it names none."""
    match = STATEMENT_ID.match(statement_id)
    try:
        return datetime.strptime(match.group(3), "%Y%m%d").date() if match else None
    except ValueError:
        return None


def record_payment(
    subscriber: Subscriber | None, statement_id: str, payment: Payment, policy: CarrierPolicy, now: datetime,
    capped: bool = True,
) -> Settled:
    """Apply `payment` once: a replay of its reference is a DUPLICATE, a reuse with other terms a CONFLICT.
    `overpaid_fen` is what it brings beyond what the statement owes (a fee it takes back included): to be refunded.
    Uncapped, it is recorded past MAX_PAYMENTS: money our own ledger took is credited whatever else was posted."""
    statement = subscriber.statement(statement_id) if subscriber else None
    if subscriber is None or statement is None:
        return Settled(NO_STATEMENT, subscriber)
    earlier = _find(subscriber, payment.reference)
    if earlier is not None:
        where, recorded = earlier
        same = where.id == statement_id and recorded.amount_fen == payment.amount_fen
        return Settled(DUPLICATE if same else CONFLICT, subscriber, where, recorded)
    if capped and len(statement.payments) >= MAX_PAYMENTS:
        return Settled(TOO_MANY, subscriber, statement)
    updated = _paid(statement, payment, policy, now)
    overpaid = _excess_fen(updated) - _excess_fen(statement)
    return Settled(RECORDED, subscriber.with_statement(updated), updated, updated.payments[-1], overpaid)


def _find(subscriber: Subscriber, reference: str) -> tuple[Statement, Payment] | None:
    for statement in subscriber.statements:
        for payment in statement.payments:
            if payment.reference == reference:
                return statement, payment
    return None


def _paid(statement: Statement, payment: Payment, policy: CarrierPolicy, now: datetime) -> Statement:
    payment = standing_in(statement, payment)  # what it pays of a pending charge, the charge no longer has to take
    updated = replace(statement, paid_fen=statement.paid_fen + payment.amount_fen,
                      payments=statement.payments + (payment,), pending_fen=statement.pending_fen - payment.in_time_fen)
    if updated.owed_fen == 0 or payment.reference == statement.pending_reference:
        # Settled in full: a pending `JF` charge must not go through as well.
        updated = _released(updated)
    updated = assess(updated, policy, now)  # when it was paid decides the late fee; a timely one takes it back
    return replace(_released(updated), status=PAID) if updated.owed_fen == 0 else updated


def _excess_fen(statement: Statement) -> int:
    return max(0, statement.paid_fen - statement.amount_fen - statement.late_fee_fen)


def _released(statement: Statement) -> Statement:
    return replace(statement, pending_reference="", pending_fen=0, pending_since=None)


def receipt_payment(statement: Statement | None, reference: str, amount_fen: int, charged_at: datetime) -> Payment:
    """The payment a `JF` receipt records: paid when the subscriber confirmed the charge, if the statement still
    carries it; else (it was settled otherwise meanwhile) when the ledger took the money."""
    if statement is not None and statement.pending_reference == reference and statement.pending_since:
        return Payment(reference, amount_fen, statement.pending_since)
    return Payment(reference, amount_fen, charged_at)


def release_pending(subscriber: Subscriber | None, statement_id: str, reference: str) -> Subscriber | None:
    """Forget a `JF` charge that failed for good, so the subscriber may pay again."""
    statement = subscriber.statement(statement_id) if subscriber else None
    if subscriber is None or statement is None or statement.pending_reference != reference:
        return subscriber
    return subscriber.with_statement(_released(statement))


def payable(subscriber: Subscriber) -> tuple[Statement, ...]:
    """Statements `JF` can charge now: something owed and no charge already under way."""
    return tuple(s for s in subscriber.open_statements() if not s.pending_reference)


def pending(subscriber: Subscriber) -> tuple[Statement, ...]:
    return tuple(s for s in subscriber.statements if s.pending_reference)


def charge_reference(statement_id: str, clock: int) -> str:
    """The idempotency key of one `JF` charge: one per statement per confirmed code, stable across retries."""
    return f"JF-{statement_id}-{clock}"
