"""`JF` charges: the step commits a pending charge on the statement; then this RQ job takes the money.

Neither lost nor doubled: the pending reference is written in the same commit as the step, the job charges
with that reference as the billing backend's idempotency key, and the statement is marked paid through
dialogs.payments, which applies a reference once. A job that runs twice finds the charge settled and stops.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from redis.client import Pipeline
from rq import Queue, Retry, get_current_job

from carriers import policy_of
from dialogs.effects import CONFIRMATION, NOTICE, Pay
from dialogs.messages import money, render
from dialogs.model import Payment, Statement, Subscriber
from dialogs.payments import DUPLICATE, RECORDED, Settled, record_payment, release_pending
from gateway import bootstrap
from gateway.bootstrap import DEFAULT_QUEUE, Runtime
from gateway.delivery import outbound
from gateway.delivery.messages import OutboundMessage
from gateway.jobs.billing import PaymentFailed, PaymentReceipt

log = logging.getLogger(__name__)

# Backoff between tries of a failing backend; after the last one a person takes over.
RETRY_INTERVALS = [10, 60, 300, 900]
PAYMENT_FAILED = "payment_failed"
PAYMENT_UNRECORDED = "payment_unrecorded"  # money taken that no statement could take: a person must look
OVERPAID = "overpaid"


def enqueue(runtime: Runtime, msisdn: str, charges: Iterable[Pay], pipeline: Pipeline | None = None) -> None:
    """One charge job per pending charge, on `pipeline` (a pipeline of the queue's Redis) when given."""
    retry = Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)
    jobs = [
        Queue.prepare_data(charge, (msisdn, pay.statement_id, pay.amount_fen, pay.reference),
                           job_id=f"pay-{_digest(pay.reference)}", retry=retry)
        for pay in charges
    ]
    if jobs:
        runtime.queue(DEFAULT_QUEUE).enqueue_many(jobs, pipeline=pipeline)


def charge(msisdn: str, statement_id: str, amount_fen: int, reference: str) -> str:
    """RQ job: charge one pending statement. A retryable failure re-raises so RQ tries again later."""
    runtime = bootstrap.current()
    statement = _statement(runtime.store.load_subscriber(msisdn), statement_id)
    if statement is None or statement.pending_reference != reference:
        return "skipped"  # settled already (this job ran before, or it was paid elsewhere) or given up
    # What was confirmed, but no more than is still owed: part may have been paid elsewhere since.
    amount_fen = min(amount_fen, statement.owed_fen)
    try:
        receipt = runtime.billing.charge(msisdn, statement_id, amount_fen, reference)
    except PaymentFailed as exc:
        return _failed(runtime, msisdn, statement_id, reference, exc)
    return _settle(runtime, msisdn, statement_id, receipt)


def _statement(subscriber: Subscriber | None, statement_id: str) -> Statement | None:
    return subscriber.statement(statement_id) if subscriber else None


def _settle(runtime: Runtime, msisdn: str, statement_id: str, receipt: PaymentReceipt) -> str:
    payment = Payment(receipt.reference, receipt.amount_fen, receipt.charged_at)
    settled = settle(runtime, msisdn, statement_id, payment)
    if settled.outcome not in (RECORDED, DUPLICATE) or settled.statement is None or settled.subscriber is None:
        log.error("charge %s for %s could not be recorded: %s", receipt.reference, statement_id, settled.outcome)
        runtime.store.escalate(msisdn, PAYMENT_UNRECORDED, runtime.clock())
        return settled.outcome
    statement = settled.statement
    key = "pay_done_partial" if statement.owed_fen else "pay_done"
    _notify(runtime, settled.subscriber, f"{receipt.reference}|done", CONFIRMATION, key, name=statement.name,
            amount=receipt.amount_fen)
    return "paid"


def settle(runtime: Runtime, msisdn: str, statement_id: str, payment: Payment) -> Settled:
    """Record `payment` on the statement atomically, once per reference; escalate money taken beyond what was owed."""
    outcomes: list[Settled] = []

    def change(subscriber: Subscriber | None) -> Subscriber | None:
        outcomes.append(record_payment(subscriber, statement_id, payment))
        return outcomes[-1].subscriber

    runtime.store.update_subscriber(msisdn, change)
    settled = outcomes[-1]
    if settled.outcome == RECORDED and settled.overpaid_fen:
        log.warning("statement %s overpaid by %d fen (reference %s)", statement_id, settled.overpaid_fen,
                    payment.reference)
        runtime.store.escalate(msisdn, OVERPAID, runtime.clock())
    return settled


def _failed(runtime: Runtime, msisdn: str, statement_id: str, reference: str, exc: PaymentFailed) -> str:
    job = get_current_job()
    subscriber = runtime.store.load_subscriber(msisdn)
    if exc.retryable and job is not None and job.should_retry:
        if job.retries_left == len(RETRY_INTERVALS) and subscriber is not None:  # tell the subscriber once
            _notify(runtime, subscriber, f"{reference}|retrying", NOTICE, "pay_retrying")
        log.warning("charge %s failed, will retry: %s", reference, exc)
        raise exc
    log.error("charge %s failed for good: %s", reference, exc)
    updated = runtime.store.update_subscriber(msisdn, lambda s: release_pending(s, statement_id, reference))
    runtime.store.escalate(msisdn, PAYMENT_FAILED, runtime.clock())
    if updated is not None:
        _notify(runtime, updated, f"{reference}|failed", NOTICE, "pay_failed")
    return "failed"


def _notify(runtime: Runtime, subscriber: Subscriber, tag: str, kind: str, key: str, amount: int = 0,
            **values: object) -> None:
    """Queue one message per `tag`: a job that runs again finds it already stored and does not send it twice."""
    policy = policy_of(subscriber.msisdn, subscriber.carrier)
    lang = subscriber.locale or runtime.store.load_dialog(subscriber.msisdn).lang or policy.locale
    text = policy.sender_id + render(lang, key, amount=money(lang, amount), **values)
    message = OutboundMessage(_digest(tag), subscriber.msisdn, text, kind, int(runtime.clock().timestamp()),
                              route=runtime.routing.route(subscriber.msisdn, subscriber))
    if runtime.store.load_message(message.msisdn, message.id) is None:
        runtime.store.save_message(message)
        outbound.enqueue(runtime, [message])


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
