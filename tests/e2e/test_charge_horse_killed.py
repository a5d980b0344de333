"""A `JF` charge's last try killed in RQ's work horse between the ledger taking the money and the statement recording
it, under the real `worker.py`. RQ fails such a job without calling its on_failure callback (only an exception in the
horse, or the started-job registry's cleanup of a job whose worker died too, calls it), so the money must still be
recorded: "money taken is never lost" (docs/billing.md, Payments, rules 4 and 7).

The worker reaches Redis through a proxy that holds every request back right after the ledger's HSETNX went through:
the horse is then killed at exactly that point, however busy the machine is."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from rq.job import Job, JobStatus

from dialogs.effects import Pay
from dialogs.messages import render
from dialogs.reasons import OVERPAID, PAYMENT_FAILED
from gateway.jobs import charges
from gateway.runtime import DEFAULT_QUEUE, OUTBOUND_QUEUE
from gateway.state.ledger import RedisLedger
from tests.support import processes
from tests.support.charges import MSISDN, VID, paying
from tests.support.phone import api_headers
from tests.support.processes import HAS_PROC, gone, wait_for, work_horse
from tests.support.redis_proxy import FreezingProxy
from tests.support.reminders import outbox, run_due

pytestmark = pytest.mark.skipif(not HAS_PROC, reason="finds RQ's work horse through /proc")


def kill_the_last_try(runtime, redis_url: str, tmp_path, reference: str, after: bytes, failures: int | None) -> None:
    """The charge's tries under the real worker, the billing drill failing the first `failures` (all when None), each
    retry made due at once; the last try's work horse killed right after its request containing `after`."""
    job_id, retries = charges.job_id(reference), runtime.queue(DEFAULT_QUEUE).scheduled_job_registry

    def scheduled(left: int) -> Callable[[], bool]:
        def now_scheduled() -> bool:
            job = Job.fetch(job_id, connection=runtime.queue_redis)
            return job_id in retries.get_job_ids() and job.retries_left == left
        return now_scheduled

    proxy, log = FreezingProxy(redis_url), tmp_path / "worker.log"
    drill = {"TDBOT_BILLING": "failing", **({"TDBOT_BILLING_FAILURES": failures} if failures is not None else {})}
    try:
        with processes.worker(proxy.url, tmp_path, "--no-cron", drop=("TWILIO_", "TDBOT_"), **drill,
                              TDBOT_SENDER_MPS=100000, TDBOT_QUIET_HOURS="off") as worker:
            for left in range(len(charges.RETRY_INTERVALS) - 1, -1, -1):  # each failed try's retry made due at once
                wait_for(scheduled(left), f"a retry scheduled with {left} tries left", log=log)
                if left == 0:
                    proxy.freeze_after(after)  # the last try: held still right after that request went through
                runtime.queue_redis.zadd(retries.key, {job_id: 0})
            wait_for(proxy.frozen.is_set, f"the last try to send {after!r}", log=log)
            horse = work_horse(worker.pid)
            assert horse is not None, "no work horse running the last try"
            os.kill(horse, signal.SIGKILL)
            wait_for(lambda: gone(horse), "the work horse to die of SIGKILL", log=log)
            proxy.thaw()
            job = Job.fetch(job_id, connection=runtime.queue_redis)
            wait_for(lambda: job.get_status() == JobStatus.FAILED, "RQ to fail the killed last try", log=log)
            # What the worker's handler did for the dead horse goes out through the same worker.
            outbound = runtime.queue(OUTBOUND_QUEUE)
            wait_for(lambda: not outbound.count and not outbound.started_job_registry.count, "what it queued sent",
                     log=log)
    finally:
        proxy.close()


def test_money_a_killed_last_try_took_is_recorded_even_when_the_statement_is_then_paid_otherwise(
    app, client, clock, redis_url, tmp_path
) -> None:
    clock.now = datetime.now(UTC)  # the worker process keeps real time
    runtime = app.extensions["tdbot"]
    subscriber, reference = paying(clock.now)  # 9.50 confirmed by JF, due in 7 days
    runtime.store.save_subscriber(subscriber)
    charges.enqueue(runtime, MSISDN, [Pay(VID, 950, reference)])
    # The billing drill fails the first four tries: the fifth is the last, held once the ledger has taken the money.
    kill_the_last_try(runtime, redis_url, tmp_path, reference, b"HSETNX", failures=len(charges.RETRY_INTERVALS))
    taken = [(r.reference, r.amount_fen) for r in RedisLedger(runtime.redis, runtime.keys, runtime.clock).receipts(
        MSISDN)]
    assert taken == [(reference, 950)]
    recorded = runtime.store.load_subscriber(MSISDN).statement(VID)
    # Recorded when the horse died, as paid at the code: not left "processing" until the deadline check.
    assert [(p.reference, p.amount_fen, p.paid_at) for p in recorded.payments] == [(reference, 950, clock.now)]

    # Told nothing, the subscriber pays at the bank as well; then the deadline passes.
    body = {"amount_fen": 950, "reference": "bank-1"}
    assert client.post(f"/api/v1/statements/{VID}/payments", json=body, headers=api_headers()).status_code == 200
    clock.now += timedelta(days=8)
    run_due(app)

    statement = runtime.store.load_subscriber(MSISDN).statement(VID)
    assert [(p.reference, p.amount_fen) for p in statement.payments] == [(reference, 950), ("bank-1", 950)]
    assert (statement.status, statement.paid_fen, statement.late_fee_fen) == ("paid", 1900, 0)
    assert (MSISDN, OVERPAID) in runtime.store.escalations()  # 9.50 to refund, not 9.50 lost


def test_a_last_try_killed_right_after_releasing_the_charge_still_tells_the_subscriber_and_escalates(
    app, clock, redis_url, tmp_path
) -> None:
    """Payments, rule 7: released, told 缴费失败, escalated. Killed right after the commit that released it, the horse's
    death reported the failure again, which found nothing left to release and so told nothing: the subscriber's last
    word was 缴费失败，正在重试，完成后短信通知您, and no notice ever came."""
    clock.now = datetime.now(UTC)  # the worker process keeps real time
    runtime = app.extensions["tdbot"]
    subscriber, reference = paying(clock.now)
    runtime.store.save_subscriber(subscriber)
    charges.enqueue(runtime, MSISDN, [Pay(VID, 950, reference)])
    # Every try fails; the last one is killed right after the commit that releases the charge (the only write of the
    # subscriber's record, which holds the statement's pending_since, on that try).
    kill_the_last_try(runtime, redis_url, tmp_path, reference, b"pending_since", failures=None)

    assert runtime.store.load_subscriber(MSISDN).statement(VID).pending_reference == ""
    assert (MSISDN, PAYMENT_FAILED) in runtime.store.escalations()
    told = outbox(app, MSISDN)
    assert told == ["【中国移动】" + render("zh", key) for key in ("pay_retrying", "pay_failed")]
