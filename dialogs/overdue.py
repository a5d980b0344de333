"""A statement past its deadline. Pure: open and owing turns overdue with the carrier's late fee, once."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from carriers import CarrierPolicy, late_fee_fen
from dialogs.model import OPEN, OVERDUE, Subscriber


def mark_overdue(subscriber: Subscriber, policy: CarrierPolicy, statement_id: str, now: datetime) -> Subscriber:
    statement = subscriber.statement(statement_id)
    if statement is None or statement.status != OPEN or statement.owed_fen == 0 or now < statement.due_at:
        return subscriber
    fee = late_fee_fen(policy, statement.owed_fen)
    return subscriber.with_statement(replace(statement, status=OVERDUE, late_fee_fen=statement.late_fee_fen + fee))
