"""`JF` charges: the step commits a pending charge on the statement; then this RQ job takes the money.

Neither lost nor doubled (docs/billing.md, "Payments and charges (JF)"): the pending reference is written in the same
commit as the step; every try of the job first asks the ledger what was taken under that reference and records that,
charging only when nothing was; dialogs.payments applies a reference once. A try that fails for any reason is retried
by RQ; after the last, `charge_failed` (the job's on_failure) records what the ledger took or releases the charge,
tells the subscriber and escalates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType

from redis import Redis
from redis.client import Pipeline
from rq import Callback, Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from dialogs.effects import CONFIRMATION, NOTICE, Pay
from dialogs.language import reply_lang
from dialogs.messages import money, signed
from dialogs.model import OVERDUE, Payment, Statement, Subscriber
from dialogs.overdue import mark_overdue
from dialogs.payments import (
    CONFLICT,
    DUPLICATE,
    NO_STATEMENT,
    RECORDED,
    Settled,
    receipt_payment,
    record_payment,
    release_pending,
    statement_msisdn,
)
from dialogs.reasons import OVERPAID, PAYMENT_FAILED, PAYMENT_UNRECORDED
from dialogs.reminders import DEADLINE, Reminder
from gateway.jobs.once import queue_once, queue_stored
from gateway.runtime import DEFAULT_QUEUE, Runtime, current
from gateway.state import audit, due, overdue_list, references
from gateway.state.ids import digest
from gateway.state.ledger import PaymentFailed, PaymentReceipt
from gateway.state.messages import OutboundMessage

log = logging.getLogger(__name__)

# Backoff between tries of a failing charge; after the last one a person takes over.
RETRY_INTERVALS = [10, 60, 300, 900]
# A charge confirmed less than this long ago may still go through though no job of it is to be seen: its tries take
# about 21 minutes, and the after-commit work that enqueues it can wait for the outbox cron.
IN_FLIGHT_FOR = 3600
_ALIVE = frozenset({JobStatus.CREATED, JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED})


def enqueue(runtime: Runtime, msisdn: str, charges: Iterable[Pay], pipeline: Pipeline | None = None) -> None:
    """One charge job per pending charge, on `pipeline` (a pipeline of the queue's Redis) when given."""
    retry = Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)
    jobs = [
        Queue.prepare_data(charge, (msisdn, pay.statement_id, pay.amount_fen, pay.reference),
                           job_id=job_id(pay.reference), retry=retry, on_failure=Callback(charge_failed))
        for pay in charges
    ]
    if jobs:
        runtime.queue(DEFAULT_QUEUE).enqueue_many(jobs, pipeline=pipeline)


def job_id(reference: str) -> str:
    return f"pay-{digest(reference)}"


def charge(msisdn: str, statement_id: str, amount_fen: int, reference: str) -> str:
    """RQ job: record what an earlier try took under `reference`, else charge the pending statement. Anything that
    goes wrong but a refusal for good is raised, for RQ to try again."""
    runtime = current()
    receipt = runtime.billing.receipt(msisdn, reference)  # the ledger is the truth about money taken
    if receipt is None:
        statement = _statement(runtime.store.load_subscriber(msisdn), statement_id)
        if statement is None or statement.pending_reference != reference:
            return "skipped"  # settled elsewhere, or given up, before any money was taken
        try:
            # What was confirmed, but no more than is still owed: part may have been paid elsewhere since.
            receipt = runtime.billing.charge(msisdn, statement_id, min(amount_fen, statement.owed_fen), reference)
        except PaymentFailed as exc:
            if exc.retryable:
                raise
            log.error("charge %s refused for good: %s", reference, exc)
            return _failed_for_good(runtime, msisdn, statement_id, reference)
    return _settle(runtime, msisdn, statement_id, receipt)


def charge_failed(job: Job, connection: Redis, exc_type: type[BaseException] | None, exc: BaseException | None,
                  traceback: TracebackType | None) -> None:
    """RQ on_failure. RQ 3 calls it after every failed try (an exception in the work horse, or an abandoned job found
    by the started-job registry's cleanup) before it decides to retry, with `retries_left` not yet counted down: so
    only a call with none left is the end."""
    msisdn, statement_id, _, reference = job.args
    runtime = current()
    if job.retries_left:
        log.warning("charge %s failed (%r), %d tries left", reference, exc, job.retries_left)
        subscriber = runtime.store.load_subscriber(msisdn)
        if job.retries_left == len(RETRY_INTERVALS) and subscriber is not None:  # tell the subscriber once
            _notify(runtime, subscriber, f"{reference}|retrying", NOTICE, "pay_retrying")
        return
    log.error("charge %s failed on its last try: %r", reference, exc)
    _failed_for_good(runtime, msisdn, statement_id, reference)


def in_flight(runtime: Runtime, statement: Statement, now: datetime) -> bool:
    """Whether the statement's pending charge may still go through: its job is queued, scheduled or running, or it
    was confirmed too recently for a job to be seen."""
    since = statement.pending_since
    if since is not None and (now - since).total_seconds() < IN_FLIGHT_FOR:
        return True
    try:
        job = Job.fetch(job_id(statement.pending_reference), connection=runtime.queue_redis)
    except NoSuchJobError:
        return False
    return job.get_status() in _ALIVE


def end(runtime: Runtime, msisdn: str, statement_id: str, reference: str) -> str:
    """A charge that will not be tried again: record what the ledger took under it; if nothing, release it (`JF` may
    be sent again), tell the subscriber, escalate, and apply the late fee it was holding off if the deadline passed."""
    receipt = runtime.billing.receipt(msisdn, reference)
    if receipt is not None:
        return _settle(runtime, msisdn, statement_id, receipt)
    now, released, tag = runtime.clock(), [], f"{reference}|failed"

    def change(subscriber: Subscriber | None) -> Subscriber | None:
        after = release_pending(subscriber, statement_id, reference)
        released.append(after is not subscriber)
        return mark_overdue(after, runtime.policy(after), statement_id, now) if after else None

    def told(_: Subscriber | None, after: Subscriber, pipe: Pipeline) -> None:
        """Told and escalated in the commit that releases it: a process dying after that commit finds nothing left
        to release when the failure is reported again, and queues and lists what was stored here."""
        if released[-1]:
            runtime.store.save_message(_notice(runtime, after, tag, NOTICE, "pay_failed"), pipeline=pipe)
            runtime.store.open_escalation(msisdn, PAYMENT_FAILED, now, pipe,
                                          context={"statement": statement_id, "reference": reference})

    runtime.store.update_subscriber(msisdn, change, audited=audit.turned_overdue, alongside=told)
    queue_stored(runtime, msisdn, digest(tag))
    runtime.store.list_escalation(msisdn, PAYMENT_FAILED)
    return "failed"


def _failed_for_good(runtime: Runtime, msisdn: str, statement_id: str, reference: str) -> str:
    outcome = end(runtime, msisdn, statement_id, reference)
    statement = _statement(runtime.store.load_subscriber(msisdn), statement_id)
    if statement is not None and statement.status == OVERDUE:
        # Told as any overdue statement is, by the deadline check (gateway/jobs/overdue.py), which sweeps in seconds.
        due.schedule(runtime.redis, runtime.keys, [(Reminder(DEADLINE, msisdn, statement_id), runtime.clock())])
    return outcome


def _statement(subscriber: Subscriber | None, statement_id: str) -> Statement | None:
    return subscriber.statement(statement_id) if subscriber else None


def _settle(runtime: Runtime, msisdn: str, statement_id: str, receipt: PaymentReceipt) -> str:
    statement = _statement(runtime.store.load_subscriber(msisdn), statement_id)
    payment = receipt_payment(statement, receipt.reference, receipt.amount_fen, receipt.charged_at)
    settled = settle(runtime, msisdn, statement_id, payment, capped=False)
    if settled.outcome not in (RECORDED, DUPLICATE) or settled.statement is None or settled.subscriber is None:
        log.error("charge %s for %s could not be recorded: %s", receipt.reference, statement_id, settled.outcome)
        runtime.store.escalate(msisdn, PAYMENT_UNRECORDED, runtime.clock(), context={
            "statement": statement_id, "reference": receipt.reference, "amount_fen": receipt.amount_fen})
        return settled.outcome
    key = "pay_done_partial" if settled.statement.owed_fen else "pay_done"
    _notify(runtime, settled.subscriber, f"{receipt.reference}|done", CONFIRMATION, key, name=settled.statement.name,
            amount=receipt.amount_fen)
    return "paid"


def settle(runtime: Runtime, msisdn: str, statement_id: str, payment: Payment, capped: bool = True) -> Settled:
    """Record `payment` on the statement atomically, once per reference across all subscribers; escalate money taken
    beyond what was owed. A receipt of our own ledger is recorded uncapped (dialogs.payments.record_payment)."""
    terms = (statement_id, payment.amount_fen)
    held = references.claim(runtime.redis, runtime.keys, payment.reference, terms)
    if held is not None and held != terms:
        return _claimed_elsewhere(runtime, payment, held)
    settled = _record(runtime, msisdn, statement_id, payment, capped)
    if held is None and settled.outcome not in (RECORDED, DUPLICATE):
        references.release(runtime.redis, runtime.keys, payment.reference, terms)  # nothing recorded: not taken
    return settled


def _claimed_elsewhere(runtime: Runtime, payment: Payment, held: references.Terms) -> Settled:
    """The conflict with the statement and amount `payment.reference` was claimed for, as recorded there if it is."""
    statement_id, amount = held
    owner = statement_msisdn(statement_id)
    where = _statement(runtime.store.load_subscriber(owner) if owner else None, statement_id)
    recorded = next((p for p in where.payments if p.reference == payment.reference), None) if where else None
    return Settled(CONFLICT, None, where, recorded or Payment(payment.reference, amount, payment.paid_at))


def _record(runtime: Runtime, msisdn: str, statement_id: str, payment: Payment, capped: bool) -> Settled:
    """`payment` recorded on its subscriber's record in one compare-and-set; money beyond what is owed escalated."""
    now, outcomes = runtime.clock(), []

    def change(subscriber: Subscriber | None) -> Subscriber | None:
        if subscriber is None:
            outcomes.append(Settled(NO_STATEMENT, None))
        else:
            policy = runtime.policy(subscriber)
            outcomes.append(record_payment(subscriber, statement_id, payment, policy, now, capped))
        return outcomes[-1].subscriber

    def overpaid(_: Subscriber | None, __: Subscriber, pipe: Pipeline) -> None:
        """Escalated with the payment: a retry after a commit cut short finds it recorded and escalates nothing."""
        settled = outcomes[-1]
        if settled.outcome == RECORDED and settled.overpaid_fen:
            runtime.store.open_escalation(msisdn, OVERPAID, now, pipe, context={
                "statement": statement_id, "reference": payment.reference, "overpaid_fen": settled.overpaid_fen})

    runtime.store.update_subscriber(msisdn, change, audited=lambda before, after: [
        _paid(after, statement_id, payment), audit.turned_overdue(before, after)], alongside=overpaid)
    settled = outcomes[-1]
    if settled.statement is not None and not settled.statement.owed_fen:
        overdue_list.remove(runtime.redis, runtime.keys, msisdn, statement_id)
    if settled.outcome == RECORDED and settled.overpaid_fen:
        log.warning("statement %s overpaid by %d fen (reference %s)", statement_id, settled.overpaid_fen,
                    payment.reference)
    if settled.outcome in (RECORDED, DUPLICATE):
        runtime.store.list_escalation(msisdn, OVERPAID)  # opened in that commit, or in one cut short before listing
    return settled


def _paid(after: Subscriber, statement_id: str, payment: Payment) -> dict:
    """The payment as the subscriber's audit trail keeps it."""
    statement = after.statement(statement_id)
    owed = statement.owed_fen if statement else 0
    return {"kind": audit.PAYMENT, "statement": statement_id, "amount_fen": payment.amount_fen,
            "reference": payment.reference, "owed_fen": owed}


def _notify(runtime: Runtime, subscriber: Subscriber, tag: str, kind: str, key: str, amount: int = 0,
            **values: object) -> None:
    """Queue one message per `tag`: a job that runs again makes the same message, sent once."""
    queue_once(runtime, _notice(runtime, subscriber, tag, kind, key, amount, **values))


def _notice(runtime: Runtime, subscriber: Subscriber, tag: str, kind: str, key: str, amount: int = 0,
            **values: object) -> OutboundMessage:
    """The one message of `tag` (its id), worded for the subscriber now."""
    policy = runtime.policy(subscriber)
    earlier = runtime.store.load_dialog(subscriber.msisdn).lang
    lang = reply_lang(locale=subscriber.locale, earlier=earlier, policy=policy)
    text = signed(policy, lang, key, amount=money(lang, amount), **values)
    return OutboundMessage(digest(tag), subscriber.msisdn, text, kind, int(runtime.clock().timestamp()),
                           route=runtime.routing.route(subscriber.msisdn, subscriber))


