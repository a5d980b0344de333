"""A `JF` charge that failed for good is released, the subscriber told 缴费失败 and a person asked to look, each once
(docs/billing.md, Payments, rule 7), wherever the process ending it dies: Redis goes away right after each request
`charges.end` makes, in turn, and the failure is then reported again, as RQ's work-horse handler or the deadline check
reports it. Every cut point is tried, not a sample: a request is a round trip, a pipeline sent at once is one."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime

from redis.exceptions import RedisError
from rq.job import Job

from dialogs.reasons import PAYMENT_FAILED
from gateway import create_app
from gateway.jobs import charges
from gateway.runtime import OUTBOUND_QUEUE, Runtime
from gateway.state import audit
from gateway.state.ids import digest
from tests.support.charges import MSISDN, VID, paying
from tests.support.redis_proxy import FreezingProxy

MOST_REQUESTS = 40  # far more than ending a charge makes: the loop stops at the first cut point past its last


def end_cut_short(proxy: FreezingProxy, runtime: Runtime, reference: str, n: int) -> bool:
    """`charges.end` with Redis gone right after its `n`th request; False when it made fewer than `n`."""
    proxy.freeze_after_request(n)
    done = threading.Event()

    def end() -> None:
        with contextlib.suppress(RedisError):  # Redis went away under it
            charges.end(runtime, MSISDN, VID, reference)
        done.set()

    threading.Thread(target=end, daemon=True).start()
    while not (done.is_set() or proxy.frozen.is_set()):
        time.sleep(0.002)
    cut = proxy.frozen.is_set()
    if cut:
        proxy.cut()
    assert done.wait(30), "charges.end hung with Redis gone"
    proxy.mend()
    return cut


def test_a_failed_charge_is_released_told_and_escalated_once_wherever_ending_it_is_cut_short(test_config, redis,
                                                                                              redis_url) -> None:
    proxy = FreezingProxy(redis_url)
    try:
        runtime = create_app({**test_config, "REDIS_URL": proxy.url}).extensions["tdbot"]
        for n in range(1, MOST_REQUESTS):
            redis.flushdb()
            subscriber, reference = paying(datetime.now(UTC))
            runtime.store.save_subscriber(subscriber)
            if not end_cut_short(proxy, runtime, reference, n):
                break
            charges.end(runtime, MSISDN, VID, reference)  # the failure reported again

            statement = runtime.store.load_subscriber(MSISDN).statement(VID)
            notice = digest(f"{reference}|failed")
            trail = audit.read_all(runtime.redis, runtime.keys.audit(MSISDN))
            assert statement.pending_reference == "", f"cut after request {n}: not released"
            assert runtime.store.load_message(MSISDN, notice) is not None, f"cut after request {n}: not told"
            job = Job.fetch(f"msg-{notice}", connection=runtime.queue_redis)
            assert job.origin == OUTBOUND_QUEUE and job.id in runtime.queue(OUTBOUND_QUEUE).job_ids, n
            assert runtime.store.escalations() == [(MSISDN, PAYMENT_FAILED)], f"cut after request {n}"
            assert [e["reason"] for e in trail if e["kind"] == audit.ESCALATED] == [PAYMENT_FAILED], n
        else:
            raise AssertionError(f"ending a charge made {MOST_REQUESTS} requests or more")
        assert n > 5, "too few cut points: the proxy counted no requests"
    finally:
        proxy.close()
