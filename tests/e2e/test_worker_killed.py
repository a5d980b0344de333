"""A real worker process SIGKILLed in the middle of a reminder batch: every reminder still goes out exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rq import SimpleWorker

from dialogs.model import CANCELLED, Statement, Subscriber, Subscription
from dialogs.reminders import SETTLE, Reminder
from gateway.bootstrap import QUEUES, REMINDER_QUEUE
from gateway.jobs import sweeper
from gateway.state import due
from gateway.state.keys import OUTBOX

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBERS = 800  # below the console outbox's 1,000-entry cap, so every send stays countable
BATCH = 200


def owing(msisdn: str, now: datetime) -> Subscriber:
    sub = Subscription("vid", "视频会员", "SPHY", 1500, date(2026, 12, 7), status=CANCELLED, cancelled_at=now)
    statement = Statement(f"{msisdn[1:]}-vid-20261107", "vid", "视频会员", 950, now, now + timedelta(days=7))
    return Subscriber(msisdn=msisdn, locale="zh", subscriptions=(sub,), statements=(statement,))


def seed(runtime, now: datetime) -> list[str]:
    numbers = [f"+86138{i:08d}" for i in range(SUBSCRIBERS)]
    with runtime.redis.pipeline(transaction=False) as pipe:
        for number in numbers:
            subscriber = owing(number, now)
            runtime.store.save_subscriber(subscriber, pipeline=pipe)
            reminder = Reminder(SETTLE, number, subscriber.statements[0].id)
            due.schedule(runtime.redis, runtime.keys, [(reminder, now - timedelta(minutes=1))], pipeline=pipe)
        pipe.execute()
    return numbers


def start_worker(redis_url: str, tmp_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    env.update(REDIS_URL=redis_url, TDBOT_QUIET_HOURS="off", TDBOT_SENDER_MPS="100000", TDBOT_DATA_DIR=str(tmp_path))
    log = (tmp_path / "worker.log").open("w")
    # Its own session, so the kill takes the whole host's worth: the worker and the RQ scheduler it forks.
    return subprocess.Popen(
        [sys.executable, "worker.py", "--no-cron"], cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
    )


def kill(worker: subprocess.Popen) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def kill_mid_batch(worker: subprocess.Popen, runtime, seconds: float = 60) -> int:
    """SIGKILL once the first batch has queued some, not all, of its sends; returns how many it had."""
    # Sends join the other batches on the reminders queue, behind them.
    queue, waiting, deadline = runtime.queue(REMINDER_QUEUE), SUBSCRIBERS // BATCH - 1, time.monotonic() + seconds
    while time.monotonic() < deadline and worker.poll() is None:
        queued = queue.count - waiting
        if queued >= BATCH // 2:
            kill(worker)
            return queued
        time.sleep(0.005)
    raise AssertionError("the worker never got half-way through a batch")


def test_every_reminder_goes_out_exactly_once_after_a_worker_is_killed_mid_batch(app, clock, redis_url, tmp_path):
    clock.now = datetime.now(UTC)  # the worker process keeps real time
    runtime = app.extensions["tdbot"]
    runtime.config["TDBOT_QUIET_HOURS"] = "off"
    numbers = seed(runtime, clock.now)
    assert sweeper.sweep(runtime, batch=BATCH) == SUBSCRIBERS

    worker = start_worker(redis_url, tmp_path)
    try:
        assert kill_mid_batch(worker, runtime) < BATCH
    finally:
        if worker.poll() is None:
            kill(worker)

    assert runtime.redis.zcard(due.claimed_key(runtime.keys)) > 0  # the dead batch never acknowledged
    clock.advance(seconds=sweeper.LEASE + 1)  # what the dead worker held falls due again
    sweeper.sweep(runtime, batch=BATCH)
    SimpleWorker([runtime.queue(name) for name in QUEUES], connection=runtime.queue_redis).work(burst=True)

    sent = Counter(json.loads(e)["to"] for e in runtime.redis.lrange(runtime.keys.shared(OUTBOX), 0, -1))
    assert set(sent) == set(numbers), f"{len(set(numbers) - set(sent))} reminders lost"
    assert max(sent.values()) == 1, [n for n, c in sent.items() if c > 1][:5]
    assert runtime.redis.zcard(due.claimed_key(runtime.keys)) == 0
