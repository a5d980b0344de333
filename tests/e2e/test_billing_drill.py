"""The billing drill under the real `worker.py`: RQ runs every try in a fresh work horse, so "fail once, then succeed"
must be counted in Redis, not in a process."""

from __future__ import annotations

from datetime import UTC, datetime

from rq.job import Job

from dialogs.effects import Pay
from dialogs.model import PAID
from gateway.jobs import charges
from gateway.runtime import DEFAULT_QUEUE
from gateway.state.ledger import RedisLedger, backend_for
from tests.support import processes
from tests.support.charges import MSISDN, VID, paying
from tests.support.processes import wait_for

DRILL = {"TDBOT_BILLING": "failing", "TDBOT_BILLING_FAILURES": "1"}


def paid(runtime) -> bool:
    return runtime.store.load_subscriber(MSISDN).statement(VID).status == PAID


def test_the_drill_fails_the_first_try_and_lets_the_retry_through_under_the_real_worker(app, clock, redis_url,
                                                                                      tmp_path) -> None:
    clock.now = datetime.now(UTC)  # the worker process keeps real time
    runtime = app.extensions["tdbot"]
    subscriber, reference = paying(clock.now)
    runtime.store.save_subscriber(subscriber)
    charges.enqueue(runtime, MSISDN, [Pay(VID, 950, reference)])
    retries = runtime.queue(DEFAULT_QUEUE).scheduled_job_registry

    with processes.worker(redis_url, tmp_path, "--no-cron", drop=("TWILIO_", "TDBOT_"), TDBOT_SENDER_MPS=100000,
                          **DRILL):
        wait_for(lambda: retries.count == 1, "the first try to fail and schedule a retry", log=tmp_path / "worker.log")
        [job_id] = retries.get_job_ids()
        # Due now rather than after the 10 s backoff: the worker's own scheduler moves it to the queue.
        runtime.queue_redis.zadd(retries.key, {job_id: 0})

        def second_try_over() -> bool:
            retries_left = Job.fetch(job_id, connection=runtime.queue_redis).retries_left
            return paid(runtime) or retries_left < len(charges.RETRY_INTERVALS) - 1

        wait_for(second_try_over, "the retry to pay or fail", log=tmp_path / "worker.log")

    assert paid(runtime), "the retry failed as well"
    assert [r.amount_fen for r in RedisLedger(runtime.redis, runtime.keys, runtime.clock).receipts(MSISDN)] == [950]
    assert backend_for(DRILL, runtime.redis, runtime.keys, runtime.clock).attempts == 2
