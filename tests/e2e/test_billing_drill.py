"""The billing drill under the real `worker.py`: RQ runs every try in a fresh work horse, so "fail once, then succeed"
must be counted in Redis, not in a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rq.job import Job

from dialogs.apply import apply
from dialogs.effects import Pay
from dialogs.model import CANCELLED, PAID, Statement, Subscriber, Subscription
from dialogs.payments import charge_reference
from gateway.jobs import charges
from gateway.runtime import DEFAULT_QUEUE
from gateway.state.ledger import RedisLedger, backend_for

ROOT = Path(__file__).resolve().parents[2]
MSISDN = "+8613800138000"
VID = "8613800138000-vid-20261107"
DRILL = {"TDBOT_BILLING": "failing", "TDBOT_BILLING_FAILURES": "1"}


def paying(now: datetime) -> tuple[Subscriber, str]:
    """A subscriber who confirmed a `JF` charge of 9.50 just now."""
    sub = Subscription("vid", "视频会员", "SPHY", 1500, date(2026, 12, 7), status=CANCELLED, cancelled_at=now)
    statement = Statement(VID, "vid", "视频会员", 950, now, now + timedelta(days=7))
    reference = charge_reference(VID, int(now.timestamp()))
    subscriber = Subscriber(MSISDN, "cmcc", "zh", (sub,), (statement,))
    return apply(subscriber, [Pay(VID, 950, reference)], now), reference


def paid(runtime) -> bool:
    return runtime.store.load_subscriber(MSISDN).statement(VID).status == PAID


def start_worker(redis_url: str, tmp_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TDBOT_"))}
    env.update(DRILL, REDIS_URL=redis_url, TDBOT_SENDER_MPS="100000", TDBOT_DATA_DIR=str(tmp_path))
    log = (tmp_path / "worker.log").open("w")
    return subprocess.Popen(
        [sys.executable, "worker.py", "--no-cron"], cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
    )


def stop(worker: subprocess.Popen) -> None:
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)


def wait_for(condition: Callable[[], bool], what: str, tmp_path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds} s; worker log:\n{(tmp_path / 'worker.log').read_text()}")
        time.sleep(0.05)


def test_the_drill_fails_the_first_try_and_lets_the_retry_through_under_the_real_worker(app, clock, redis_url,
                                                                                      tmp_path) -> None:
    clock.now = datetime.now(UTC)  # the worker process keeps real time
    runtime = app.extensions["tdbot"]
    subscriber, reference = paying(clock.now)
    runtime.store.save_subscriber(subscriber)
    charges.enqueue(runtime, MSISDN, [Pay(VID, 950, reference)])
    retries = runtime.queue(DEFAULT_QUEUE).scheduled_job_registry

    worker = start_worker(redis_url, tmp_path)
    try:
        wait_for(lambda: retries.count == 1, "the first try did not fail and schedule a retry", tmp_path)
        [job_id] = retries.get_job_ids()
        # Due now rather than after the 10 s backoff: the worker's own scheduler moves it to the queue.
        runtime.queue_redis.zadd(retries.key, {job_id: 0})

        def second_try_over() -> bool:
            retries_left = Job.fetch(job_id, connection=runtime.queue_redis).retries_left
            return paid(runtime) or retries_left < len(charges.RETRY_INTERVALS) - 1

        wait_for(second_try_over, "the retry neither paid nor failed", tmp_path)
    finally:
        stop(worker)

    assert paid(runtime), "the retry failed as well"
    assert [r.amount_fen for r in RedisLedger(runtime.redis, runtime.keys, runtime.clock).receipts(MSISDN)] == [950]
    assert backend_for(DRILL, runtime.redis, runtime.keys, runtime.clock).attempts == 2
