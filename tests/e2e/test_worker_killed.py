"""A real worker SIGKILLed with its work horse in the middle of a reminder batch: RQ abandons the batch job, the due
index's lease brings its members back, and every reminder still goes out exactly once.

RQ runs each job in a forked work horse that leaves the worker's process group (`os.setpgrp()` in
`rq.worker.Worker.fork_work_horse`), so killing the worker's group alone lets the horse finish the batch. The test
catches the horse part-way through its batch (SIGSTOP), notes which members it had acted on, then kills the worker's
group and the horse.

And a real worker killed mid-send, with its create at Twilio unanswered: the message still reaches the phone once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from rq import SimpleWorker
from rq.job import Job, JobStatus

from dialogs.effects import CONFIRMATION
from dialogs.model import CANCELLED, Statement, Subscriber, Subscription
from dialogs.reminders import SETTLE, Reminder
from gateway.delivery import outbound
from gateway.jobs import outbox, sweeper
from gateway.jobs.reminders import message_id
from gateway.runtime import OUTBOUND_QUEUE, QUEUES, REMINDER_QUEUE
from gateway.state import due
from gateway.state.keys import OUTBOX
from gateway.state.messages import FAILED, SENDING, SENT
from tests.support.delivery import MSISDN, queue_message
from tests.support.phone import BASE_URL, seed_demo
from tests.support.processes import HAS_PROC, gone, start_worker, stopped, wait_for, work_horse
from tests.support.redis_proxy import FreezingProxy
from tests.support.scheduled import run_scheduled

SUBSCRIBERS = 400  # below the console outbox's 1,000-entry cap, so every send stays countable
BATCH = 100
# RQ keeps a started job's entry alive with heartbeats good for at most this long (job_monitoring_interval + 60 s);
# once they stop, its maintenance takes the job for abandoned.
HEARTBEAT_TTL = 90
SETTLES_AFTER = 60  # docs/delivery.md: "not in Twilio's list" is an answer 60 s after the attempt began

pytestmark = pytest.mark.skipif(not HAS_PROC, reason="finds RQ's work horse through /proc")


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


def handled(runtime, members: list[str]) -> set[str]:
    """Members whose reminder the batch has acted on: its message is stored (and queued for delivery)."""
    with runtime.redis.pipeline(transaction=False) as pipe:
        for raw in members:
            reminder = due.parse(raw)
            pipe.exists(runtime.keys.message(reminder.msisdn, message_id(reminder)))
        return {raw for raw, stored in zip(members, pipe.execute(), strict=True) if stored}


def settled(runtime, horse: int, members: list[str]) -> set[str]:
    """What a stopped horse had done: read once it is stopped and twice alike, since a write it sent just before the
    signal may still reach Redis after a first look."""
    wait_for(lambda: stopped(horse), "the work horse to stop", 10)
    done = handled(runtime, members)
    while True:
        time.sleep(0.1)
        again = handled(runtime, members)
        if again == done:
            return done
        done = again


def running_batch(runtime) -> Job | None:
    """The batch job RQ has marked started (one worker: at most one)."""
    started = runtime.queue(REMINDER_QUEUE).started_job_registry.get_job_ids(cleanup=False)
    return runtime.queue(REMINDER_QUEUE).fetch_job(started[0]) if started else None


def freeze_horse_mid_batch(worker: subprocess.Popen, runtime, seconds: float = 60) -> tuple[int, Job, set[str]]:
    """SIGSTOP RQ's work horse at a moment its batch is part done; returns the horse, its batch and what it had done.
    A horse caught too early or too late is let go (SIGCONT) and caught again, however busy the machine is."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and worker.poll() is None:
        horse = work_horse(worker.pid)
        if horse is not None:
            os.kill(horse, signal.SIGSTOP)
            batch = running_batch(runtime)
            done = settled(runtime, horse, batch.args[0]) if batch is not None else set()
            if BATCH // 10 <= len(done) <= BATCH - BATCH // 10:
                return horse, batch, done
            os.kill(horse, signal.SIGCONT)
        time.sleep(0.005)
    raise AssertionError("never caught the worker's horse part-way through a batch")


def kill(worker: subprocess.Popen, horse: int | None) -> None:
    """Both dead, the horse never resumed and its death never seen by its worker. The worker's group is stopped first:
    were the horse to die while its worker ran, RQ would fail the job itself, not abandon it; and were the worker to die
    first, the kernel would wake the stopped horse (SIGCONT to an orphaned process group), which ran on for a moment."""
    os.killpg(worker.pid, signal.SIGSTOP)
    if horse is not None:
        os.kill(horse, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not gone(horse) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gone(horse), f"work horse {horse} survived SIGKILL"
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def test_every_reminder_goes_out_exactly_once_after_a_worker_is_killed_mid_batch(app, clock, redis_url, tmp_path):
    clock.now = datetime.now(UTC)  # the worker process keeps real time
    runtime = app.extensions["tdbot"]
    runtime.config["TDBOT_QUIET_HOURS"] = "off"
    numbers = seed(runtime, clock.now)
    assert sweeper.sweep(runtime, batch=BATCH) == SUBSCRIBERS
    queue, claimed = runtime.queue(REMINDER_QUEUE), due.claimed_key(runtime.keys)

    worker = start_worker(redis_url, tmp_path, "--no-cron", TDBOT_QUIET_HOURS="off", TDBOT_SENDER_MPS=100000)
    horse = None
    try:
        horse, batch, done_before = freeze_horse_mid_batch(worker, runtime)
    finally:
        kill(worker, horse)
    members = batch.args[0]

    # Killed mid-batch: some members acted on, some not, none acknowledged.
    assert 0 < len(done_before) < len(members), f"{len(done_before)} of {len(members)} acted on before the kill"
    assert handled(runtime, members) == done_before  # the horse did nothing more once caught
    assert all(runtime.redis.zscore(claimed, m) is not None for m in members), "acknowledged before it was done"
    assert batch.get_status() == JobStatus.STARTED  # nobody told RQ: the job is simply left running

    # RQ's maintenance, once the dead execution's heartbeat has lapsed: the job is abandoned, and failed (no retries).
    queue.started_job_registry.cleanup(timestamp=time.time() + HEARTBEAT_TTL)
    assert batch.get_status() == JobStatus.FAILED
    assert batch.id in queue.failed_job_registry.get_job_ids()
    assert "AbandonedJobError" in batch.latest_result().exc_string

    # The members come back through the due index's lease, not through RQ: not before it ends, then all of them.
    assert sweeper.sweep(runtime, batch=BATCH) == 0
    clock.advance(seconds=sweeper.LEASE + 1)
    assert sweeper.sweep(runtime, batch=BATCH) == SUBSCRIBERS  # the killed batch's and the never-started ones'
    SimpleWorker([runtime.queue(name) for name in QUEUES], connection=runtime.queue_redis).work(burst=True)

    sent = Counter(json.loads(e)["to"] for e in runtime.redis.lrange(runtime.keys.shared(OUTBOX), 0, -1))
    assert set(sent) == set(numbers), f"{len(set(numbers) - set(sent))} reminders lost"
    assert max(sent.values()) == 1, [n for n, c in sent.items() if c > 1][:5]
    assert runtime.redis.zcard(claimed) == 0


# --- killed mid-send ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("twilio_took_it", [True, False])
def test_a_worker_killed_while_twilio_holds_its_create_leaves_the_message_sent_exactly_once(
    twilio_app, fake_twilio, clock, redis_url, tmp_path, twilio_took_it
):
    """Killed (worker and work horse) after claiming the message, with the create at Twilio unanswered: Twilio had
    stored it, or not yet. RQ's abandoned-job path retries the job; the retry looks the send up before anything else."""
    clock.now = datetime.now(UTC)  # the worker keeps real time
    seed_demo(twilio_app)
    runtime = twilio_app.extensions["tdbot"]
    fake_twilio.hold_next(30, accept=twilio_took_it)
    message = queue_message(runtime)
    # Sending through the fake Twilio, in real time.
    twilio = {name: twilio_app.config[name] for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM",
                                                          "TWILIO_API_BASE_URL")}
    worker = start_worker(redis_url, tmp_path, "--no-cron", drop=(), PUBLIC_BASE_URL=BASE_URL, TDBOT_SENDER_MPS=1000,
                          **twilio)
    horse = None
    try:
        deadline = time.monotonic() + 60
        while fake_twilio.requests == 0 and time.monotonic() < deadline:
            horse = work_horse(worker.pid) or horse
            time.sleep(0.005)
        assert fake_twilio.requests == 1, (tmp_path / "worker.log").read_text()[-2000:]
        horse = work_horse(worker.pid) or horse
        assert horse is not None, "the send must be cut short in the work horse, not finished by it"
    finally:
        kill(worker, horse)
    assert runtime.store.load_message(MSISDN, message.id).status == SENDING

    queue = runtime.queue(OUTBOUND_QUEUE)
    queue.started_job_registry.cleanup(timestamp=time.time() + HEARTBEAT_TTL)  # RQ's maintenance: abandoned, retried
    for lock in runtime.queue_redis.scan_iter(match="rq:scheduler-lock:*"):
        runtime.queue_redis.delete(lock)  # the dead worker's scheduler lock, which would otherwise lapse in minutes
    for _ in range(2):
        clock.advance(seconds=SETTLES_AFTER + 1)
        run_scheduled(runtime, 3600)

    [sent] = fake_twilio.to(MSISDN)
    done = runtime.store.load_message(MSISDN, message.id)
    assert (done.status, done.provider_sid) == (SENT, sent.sid)


# --- killed between a failure and its follow-up ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["refused", "never_left"])
def test_a_worker_killed_between_failing_a_confirmation_and_its_resend_still_resends_it_once(
    twilio_app, fake_twilio, clock, redis_url, tmp_path, path
):
    """The last send of a confirmation fails for good in the work horse (Twilio refuses it; or a create that never
    reached Twilio was the last attempt), which is killed right after the message is recorded failed, before its
    resend is stored or queued. The retried job finds it failed and sends nothing; the recovery cron still resends
    it, once (docs/delivery.md, "What a failure report starts is done once")."""
    clock.now = datetime.now(UTC)  # the worker keeps real time
    seed_demo(twilio_app)
    runtime = twilio_app.extensions["tdbot"]
    if path == "refused":
        fake_twilio.fail_next(status=400)  # 21604: no resend of that copy can help it, a new copy goes
        marker = b"21604: "  # the error recorded with the move to failed
        message = queue_message(runtime, "您的视频会员已退订。", CONFIRMATION)
    else:
        message = replace(queue_message(runtime, "您的视频会员已退订。", CONFIRMATION),
                          attempts=len(outbound.RETRY_INTERVALS))
        dead = int(time.time()) - SETTLES_AFTER - 1  # an attempt long enough ago for "not in the list" to count
        runtime.store.save_message(replace(message, status=SENDING, claim="dead", claimed_at=dead))
        marker = b"never reached the provider"
    proxy, log = FreezingProxy(redis_url), tmp_path / "worker.log"
    twilio = {name: twilio_app.config[name] for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM",
                                                          "TWILIO_API_BASE_URL")}
    try:
        proxy.freeze_after(marker)
        worker = start_worker(proxy.url, tmp_path, "--no-cron", drop=(), PUBLIC_BASE_URL=BASE_URL,
                              TDBOT_SENDER_MPS=1000, **twilio)
        horse = None
        try:
            wait_for(proxy.frozen.is_set, "the confirmation to be recorded failed", log=log)
            horse = work_horse(worker.pid)
            assert horse is not None, "the failure must be recorded in the work horse"
            assert runtime.store.load_message(MSISDN, message.id).status == FAILED  # read past the proxy
        finally:
            kill(worker, horse)
        proxy.thaw()
    finally:
        proxy.close()
    assert fake_twilio.to(MSISDN) == []

    queue = runtime.queue(OUTBOUND_QUEUE)
    queue.started_job_registry.cleanup(timestamp=time.time() + HEARTBEAT_TTL)  # RQ's maintenance: abandoned
    for lock in runtime.queue_redis.scan_iter(match="rq:scheduler-lock:*"):
        runtime.queue_redis.delete(lock)
    for _ in range(3):  # the job's retries, the recovery cron (every minute), the resend's delay
        clock.advance(seconds=outbox.RECOVER_AFTER + 1)
        outbox.recover_job()
        run_scheduled(runtime, 3600)

    [resent] = fake_twilio.to(MSISDN)
    assert resent.body == message.text
    assert runtime.store.load_message(MSISDN, message.id).status == FAILED
