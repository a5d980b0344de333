"""Reminders run as a carrier's auditor would run them: a backlog of thousands after the sweeper was away past a
renewal and a deadline, two sweepers and doubled batches at once; and cancels at every hour of a day with the sweep
and the send running late (docs/reminders.md)."""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

from rq import SimpleWorker

from carriers import in_quiet_hours, policy_for
from dialogs.model import CANCELLED, OVERDUE, Statement, Subscriber, Subscription
from gateway.jobs import sweeper
from gateway.runtime import QUEUES, REMINDER_QUEUE
from gateway.state import due
from gateway.state.keys import OUTBOX
from tests.support.phone import Phone
from tests.support.reminders import cancel, local, put

SUBSCRIBERS = 250  # six due members each: 1,500 (the notices sent stay below the console outbox's 1,000-entry cap)
OVERDUE_NOTICE = "【中国移动】您的视频会员结算单已逾期"


def owing(msisdn: str, now: datetime) -> Subscriber:
    """A cancelled package with a statement due 2 Dec 23:59:59, and an active one renewing on 1 Dec."""
    gone = Subscription("vid", "视频会员", "SPHY", 1500, date(2026, 12, 7), status=CANCELLED, cancelled_at=now)
    live = Subscription("music", "音乐包", "YYB", 1000, date(2026, 12, 1))
    statement = Statement(f"{msisdn[1:]}-vid-20261107", "vid", "视频会员", 950, now, local(2026, 12, 2, 23, 59, 59))
    return Subscriber(msisdn=msisdn, locale="zh", carrier="cmcc", subscriptions=(gone, live), statements=(statement,))


def seed(runtime, now: datetime) -> list[str]:
    numbers = [f"+86138{i:08d}" for i in range(SUBSCRIBERS)]
    with runtime.redis.pipeline(transaction=False) as pipe:
        for number in numbers:
            subscriber = owing(number, now)
            runtime.store.save_subscriber(subscriber, pipeline=pipe)
            due.schedule_statements(runtime, subscriber, [subscriber.statements[0].id], pipeline=pipe)
            due.schedule_renewals(runtime, subscriber, pipeline=pipe)
        pipe.execute()
    return numbers


def at_once(count: int, work) -> list:
    """`work()` in `count` threads released together."""
    start, results = threading.Barrier(count), []

    def run() -> None:
        start.wait()
        results.append(work())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def sent(runtime) -> list[dict]:
    return [json.loads(e) for e in runtime.redis.lrange(runtime.keys.shared(OUTBOX), 0, -1)]


def work(runtime) -> None:
    SimpleWorker([runtime.queue(name) for name in QUEUES], connection=runtime.queue_redis).work(burst=True)


def test_a_backlog_of_thousands_past_a_renewal_and_a_deadline_sends_each_subscriber_one_overdue_notice_by_day(
    app, clock
):
    runtime = app.extensions["tdbot"]
    clock.now = local(2026, 11, 25, 10)
    numbers = seed(runtime, clock.now)
    assert runtime.redis.zcard(due.due_key(runtime.keys)) == 6 * SUBSCRIBERS

    clock.now = local(2026, 12, 3, 7, 30)  # the sweeper was away for a week; it is back before 08:00
    claimed = at_once(2, lambda: sweeper.sweep(runtime, batch=97))
    queue = runtime.queue(REMINDER_QUEUE)
    for job in queue.get_jobs():  # each batch twice at once: a lease that ran out while the first was still at it
        queue.remove(job)
        at_once(2, lambda job=job: sweeper.send_batch(*job.args))
    work(runtime)
    at_night = sent(runtime)
    clock.now = local(2026, 12, 3, 8)
    sweeper.sweep(runtime)
    work(runtime)

    assert sum(claimed) == 6 * SUBSCRIBERS
    assert at_night == [], "sent in quiet hours"
    notices = Counter(e["to"] for e in sent(runtime))
    assert set(notices) == set(numbers) and set(notices.values()) == {1}
    assert all(e["text"].startswith(OVERDUE_NOTICE) for e in sent(runtime))  # no reminder after its deadline
    for subscriber in map(runtime.store.load_subscriber, numbers):
        assert subscriber.statements[0].status == OVERDUE
        assert [c.period_start for c in subscriber.charges] == [date(2026, 12, 1)]  # renewed once
        assert subscriber.subscription("music").renews_on == date(2027, 1, 1)


def test_cancels_at_every_hour_get_their_reminders_out_of_quiet_hours_before_the_deadline_with_a_normal_backlog(
    client, app, clock
):
    """China Unicom (24 hours to settle, reminders 12 and 2 hours before): each sweep 0 minutes late and each send 29
    minutes after its sweep, a backlog just inside the 30-minute margin."""
    runtime, policy = app.extensions["tdbot"], policy_for("cucc")
    sweep_late, send_late = timedelta(0), timedelta(minutes=29)
    numbers = {hour: f"+861860000{hour:04d}" for hour in range(24)}
    for number in numbers.values():
        put(client, number, "cucc", "zh", ("news", "手机报", 500, "2026-12-07"))
    cancels = sorted((local(2026, 11, 25, hour, 7 * (hour % 8)), number) for hour, number in numbers.items())
    log = Timeline(runtime, clock)
    clock.now = cancels[0][0]
    for _ in range(1000):
        next_due = log.next_due() + sweep_late
        when = min(next_due, log.next_send(), cancels[0][0] if cancels else Timeline.NEVER)
        if when == Timeline.NEVER:
            break
        clock.now = max(clock.now, when)
        if cancels and when == cancels[0][0]:
            cancel(Phone(client, app, cancels.pop(0)[1]))
            log.deliver()
        elif when == log.next_send():
            log.deliver()
        else:
            log.sweep(send_late)

    deadlines = {n: runtime.store.load_subscriber(n).statements[0].due_at for n in numbers.values()}
    reminders, overdue = defaultdict(list), Counter()
    for to, text, at in log.sent:
        if "到期" in text or "逾期" in text:
            assert not in_quiet_hours(policy, at), (to, text, at)
        if "到期" in text:
            assert at < deadlines[to], (to, text, at)
            reminders[to].append(at)
        overdue[to] += "逾期" in text
    assert {n: len(reminders[n]) for n in numbers.values()} == {n: 2 for n in numbers.values()}
    assert set(overdue.values()) == {1}


class Timeline:
    """The sweeper and the sender on a moved clock: batches run at their sweep, sends `late` after it."""

    NEVER = datetime.max.replace(tzinfo=local(2026, 1, 1).tzinfo)

    def __init__(self, runtime, clock) -> None:
        self.runtime, self.clock = runtime, clock
        self.sent: list[tuple[str, str, datetime]] = []  # what the phones got, and when by the clock
        self.waiting: list[tuple[datetime, object]] = []  # deliver jobs and when the sender reaches them
        self.seen = 0

    def next_due(self) -> datetime:
        first = self.runtime.redis.zrange(due.due_key(self.runtime.keys), 0, 0, withscores=True)
        return datetime.fromtimestamp(first[0][1], self.clock.now.tzinfo) if first else self.NEVER

    def next_send(self) -> datetime:
        return min((at for at, _ in self.waiting), default=self.NEVER)

    def sweep(self, late: timedelta) -> None:
        sweeper.sweep(self.runtime)
        queue = self.runtime.queue(REMINDER_QUEUE)
        for job in queue.get_jobs():
            queue.remove(job)
            sweeper.send_batch(*job.args)
        for job in queue.get_jobs():  # what the batches queued for the sender
            queue.remove(job)
            self.waiting.append((self.clock.now + late, job))

    def deliver(self) -> None:
        queue = self.runtime.queue(REMINDER_QUEUE)
        for _, job in [w for w in self.waiting if w[0] <= self.clock.now]:
            queue.enqueue_job(job)
        self.waiting = [w for w in self.waiting if w[0] > self.clock.now]
        work(self.runtime)
        raw = self.runtime.redis.lrange(self.runtime.keys.shared(OUTBOX), self.seen, -1)
        self.seen += len(raw)
        self.sent += [(e["to"], e["text"], self.clock.now) for e in map(json.loads, raw)]
