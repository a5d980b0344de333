"""Subscriber records arriving from outside (API, `tdbot import`, demo seed): one way in for all of them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from redis.client import Pipeline

from dialogs.imports import Credit, Imported, receive
from dialogs.model import Subscriber
from dialogs.reasons import OVERPAID, PAID_REPORTED_LOWER, PAYMENT_UNRECORDED
from gateway.state import audit, due, overdue_list, references
from gateway.state.store import Contention

if TYPE_CHECKING:  # state/ is below the runtime that holds it
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

# Tries of an import that credits a statement: each claims what the one before found to credit.
TRIES = 5


def upsert(runtime: Runtime, incoming: Subscriber, pipeline: Pipeline | None = None) -> Subscriber:
    """Merge `incoming` into the stored record (never re-activating a cancelled package), credit what it reports paid
    after a cancel on the statement of that period (docs/billing.md, Payments, rule 9), and schedule the renewal
    reminders it now implies; those go on `pipeline` when given, for the caller to execute with a batch."""
    now = runtime.clock()
    imported = _commit(runtime, incoming, now)
    _escalate(runtime, incoming.msisdn, imported, now)
    due.schedule_renewals(runtime, imported.subscriber, pipeline=pipeline)
    return imported.subscriber


def _commit(runtime: Runtime, incoming: Subscriber, now: datetime) -> Imported:
    """The import, written once every payment it records has its reference claimed: a try that finds a credit not yet
    claimed writes nothing, the credit is claimed, and the next try starts from what is stored then."""
    claims = _Claims(runtime)
    for _ in range(TRIES):
        imported, saved = _try(runtime, incoming, now, claims)
        if claims.cover(imported.credits):
            claims.release_unrecorded(saved)
            return imported
        claims.claim(imported.credits)
    claims.release_unrecorded(runtime.store.load_subscriber(incoming.msisdn))
    raise Contention(incoming.msisdn)


def _try(runtime: Runtime, incoming: Subscriber, now: datetime, claims: _Claims) -> tuple[Imported, Subscriber | None]:
    """One compare-and-set of the import, with its payments' audit entries; nothing written unless `claims` cover
    the payments it records."""
    tried: list[Imported] = []

    def change(existing: Subscriber | None) -> Subscriber | None:
        tried.append(receive(existing, incoming, now, claims.held))
        return tried[-1].subscriber if claims.cover(tried[-1].credits) else existing

    def overpaid(_: Subscriber | None, __: Subscriber, pipe: Pipeline) -> None:
        """Escalated with the payment: the same import again finds it recorded and credits nothing."""
        for credit in tried[-1].credits:
            if credit.overpaid_fen:
                runtime.store.open_escalation(incoming.msisdn, OVERPAID, now, pipe, context={
                    "statement": credit.statement_id, "reference": credit.payment.reference,
                    "overpaid_fen": credit.overpaid_fen})

    saved = runtime.store.update_subscriber(incoming.msisdn, change, audited=lambda before, after: [
        *_paid(after, tried[-1]), audit.turned_overdue(before, after)], alongside=overpaid)
    return tried[-1], saved


class _Claims:
    """The references of an import's payments, claimed in the index shared by all subscribers (Payments, rule 1)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.ours: set[tuple[str, references.Terms]] = set()
        self.made: set[tuple[str, references.Terms]] = set()  # by this import: let go if it records nothing
        self.held: frozenset[str] = frozenset()  # claimed for other terms: not to be recorded

    def cover(self, credits: Iterable[Credit]) -> bool:
        return all(_claimed(credit) in self.ours for credit in credits)

    def claim(self, credits: Iterable[Credit]) -> None:
        for credit in credits:
            reference, terms = _claimed(credit)
            held = references.claim(self.runtime.redis, self.runtime.keys, reference, terms)
            if held is None:
                self.made.add((reference, terms))
            if held is None or held == terms:  # the same terms: a request that died before recording them
                self.ours.add((reference, terms))
            else:
                self.held |= {reference}

    def release_unrecorded(self, saved: Subscriber | None) -> None:
        """Let go of claims this import made for payments no statement records (another try, or a racing import of
        the same report, found nothing left to credit)."""
        for reference, (statement_id, amount) in self.made:
            statement = saved.statement(statement_id) if saved else None
            if statement is None or all(p.reference != reference for p in statement.payments):
                references.release(self.runtime.redis, self.runtime.keys, reference, (statement_id, amount))


def _claimed(credit: Credit) -> tuple[str, references.Terms]:
    return credit.payment.reference, (credit.statement_id, credit.payment.amount_fen)


def _paid(after: Subscriber, imported: Imported) -> list[dict]:
    """Each payment the import recorded, as the subscriber's audit trail keeps any payment."""
    entries = []
    for credit in imported.credits:
        statement = after.statement(credit.statement_id)
        entries.append({"kind": audit.PAYMENT, "statement": credit.statement_id,
                        "amount_fen": credit.payment.amount_fen, "reference": credit.payment.reference,
                        "owed_fen": statement.owed_fen if statement else 0})
    return entries


def _escalate(runtime: Runtime, msisdn: str, imported: Imported, now: datetime) -> None:
    """What a person must look at: money beyond what a statement owed, a credit whose reference another payment holds,
    and a statement credited from a total the carrier no longer reports."""
    for credit in imported.credits:
        statement = imported.subscriber.statement(credit.statement_id)
        if statement is not None and not statement.owed_fen:
            overdue_list.remove(runtime.redis, runtime.keys, msisdn, credit.statement_id)
        if credit.overpaid_fen:
            log.warning("statement %s overpaid by %d fen (reference %s)", credit.statement_id, credit.overpaid_fen,
                        credit.payment.reference)
    runtime.store.list_escalation(msisdn, OVERPAID)  # opened in the import's commit, or in one cut short before
    for credit in imported.refused:
        log.error("import credit %s for %s not recorded: its reference is held for other terms",
                  credit.payment.reference, credit.statement_id)
        runtime.store.escalate(msisdn, PAYMENT_UNRECORDED, now, context={
            "statement": credit.statement_id, "reference": credit.payment.reference,
            "amount_fen": credit.payment.amount_fen})
    for lower in imported.lower:
        log.warning("statement %s was credited from %d fen reported paid; the carrier now reports %d",
                    lower.statement_id, lower.stored_fen, lower.reported_fen)
        runtime.store.escalate(msisdn, PAID_REPORTED_LOWER, now, context={
            "statement": lower.statement_id, "reported_fen": lower.reported_fen, "stored_fen": lower.stored_fen})
