"""Outbound pacing per route (carrier link): a GCRA schedule in Redis, counted in segments, shared by all workers."""

from __future__ import annotations

import json
import random
import threading
import time as wall
from dataclasses import replace

import pytest

from gateway.delivery import pacing
from gateway.delivery.pacing import Pacer
from gateway.delivery.routing import CONSOLE
from gateway.delivery.senders import ConsoleSender, KannelSender
from gateway.runtime import OUTBOUND_QUEUE, REMINDER_QUEUE, Route, Runtime
from gateway.state.keys import OUTBOX
from gateway.state.messages import QUEUED, SENT
from tests.support.delivery import queue_message, stored
from tests.support.phone import Phone, seed_demo
from tests.support.processes import free_port
from tests.support.scheduled import run_scheduled, scheduled_jobs

T0 = 1_800_000_000.0
TWO_SEGMENTS = "您好" * 40  # 80 UCS-2 characters: 2 segments


class FakeTime:
    """A clock threads share, moved by hand or by the pacer's sleep, so nothing really sleeps."""

    def __init__(self, start: float = T0) -> None:
        self.now, self.slept = start, []
        self.seen = threading.local()  # what each thread last read: the `now` its booking used
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.seen.now = self.now
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))


def pacer(redis, mps: float, time: FakeTime, key: str = "tdbot:pace:test", max_wait: float = 10.0) -> Pacer:
    return Pacer(redis, key, mps, max_wait=max_wait, now=time, sleep=time.sleep)


def test_concurrent_senders_never_exceed_the_rate(redis):
    """8 threads book 400 messages of 1-3 segments while time creeps on; no two slots overlap."""
    time, mps = FakeTime(), 20.0
    booked: list[tuple[float, int]] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng, own = random.Random(seed), pacer(redis, mps, time, max_wait=1e9)
        for _ in range(50):
            cost = rng.choice((1, 1, 2, 3))
            slot = own.book(cost)
            with lock:
                booked.append((time.seen.now + slot.wait, cost))
            time.advance(rng.uniform(0, 0.01))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    booked.sort()
    for (at, cost), (next_at, _) in zip(booked, booked[1:], strict=False):
        assert next_at - at >= cost / mps - 2e-6  # booked in whole microseconds
    segments = sum(cost for _, cost in booked)
    span = booked[-1][0] - booked[0][0] + booked[-1][1] / mps
    assert segments / span == pytest.approx(mps, rel=1e-3)  # busy all along: exactly the rate, never above


@pytest.mark.parametrize(("mps", "costs", "waits"), [
    (1.0, [1, 1, 1], [0.0, 1.0, 2.0]),
    (1.0, [2, 1], [0.0, 2.0]),  # a 2-segment message costs two slots
    (20.0, [1, 1, 3, 1], [0.0, 0.05, 0.1, 0.25]),
    (0.5, [1, 1], [0.0, 2.0]),
])
def test_each_booking_waits_for_the_segments_booked_before_it(redis, mps, costs, waits):
    time = FakeTime()
    own = pacer(redis, mps, time)
    assert [own.book(cost).wait for cost in costs] == pytest.approx(waits)


def test_an_idle_sender_sends_at_once_and_keeps_no_credit(redis):
    time = FakeTime()
    own = pacer(redis, 1.0, time)
    own.book(1)
    time.advance(60)
    assert [own.book(1).wait, own.book(1).wait] == [0.0, 1.0]


def micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def test_a_slot_further_off_than_a_worker_sleeps_is_booked_for_the_caller_to_come_back_to(redis):
    time = FakeTime()
    own = pacer(redis, 1.0, time)
    assert own.acquire(1) == (0.0, 0)  # now: go
    later = own.acquire(1)  # a whole interval off: booked, not slept for
    assert later == (1.0, micros(T0 + 1.0)) and time.slept == []
    assert own.book(1).wait == 2.0  # the next one queues behind it
    time.advance(1.0)
    assert own.acquire(1, booked=later.at) == (0.0, 0)  # back for its slot: takes it and books nothing more
    assert own.book(1).wait == 2.0


def test_a_booking_come_back_to_more_than_a_minute_late_is_stale_and_booked_afresh(redis):
    time = FakeTime()
    own = pacer(redis, 1.0, time)
    own.acquire(1)
    later = own.acquire(1)
    time.advance(1.0 + pacing.STALE_AFTER + 1)
    assert own.acquire(1, booked=later.at) == (0.0, 0)
    assert own.book(1).wait == 1.0  # it took a slot of its own: the one it had was long gone


def test_acquire_sleeps_only_for_a_slot_nearer_than_half_an_interval(redis):
    time = FakeTime()
    own = pacer(redis, 2.0, time)  # 0.5 s apart
    assert own.acquire(1) == (0.0, 0)
    time.advance(0.3)
    assert own.acquire(1) == (0.0, 0) and time.slept == [0.2]  # 0.2 s off: slept for
    assert own.acquire(1).wait == pytest.approx(0.7) and time.slept == [0.2]  # further: booked, not slept for


def test_senders_are_paced_apart(redis):
    time = FakeTime()
    one, other = pacer(redis, 1.0, time, key="tdbot:pace:a"), pacer(redis, 1.0, time, key="tdbot:pace:b")
    assert [one.book(1).wait, other.book(1).wait, one.book(1).wait] == [0.0, 0.0, 1.0]


def test_the_redis_servers_clock_paces_when_none_is_given(redis):
    own = Pacer(redis, "tdbot:pace:real", 10.0)
    first, second = own.book(1), own.book(1)
    assert first.wait == pytest.approx(0.0, abs=0.01) and second.wait == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("mps", [0, -1])
def test_a_rate_that_is_not_positive_is_refused(redis, mps):
    with pytest.raises(ValueError, match="positive"):
        Pacer(redis, "tdbot:pace:x", mps)


@pytest.fixture
def paced_phone(app) -> Phone:
    seed_demo(app)
    return Phone(app.test_client(), app, "+8613800138000")


def pace(runtime: Runtime, paced: Pacer, route: str = CONSOLE) -> None:
    runtime.routes[route] = replace(runtime.routes[route], pacer=paced)


def test_the_worker_books_its_senders_turn_counted_in_segments(paced_phone, redis):
    time, runtime = FakeTime(), paced_phone.runtime
    pace(runtime, pacer(redis, 2.0, time, key=runtime.routes[CONSOLE].pacer.key))
    messages = [queue_message(runtime, text) for text in (TWO_SEGMENTS, "一", "二")]
    paced_phone.deliver()

    # The 2-segment message holds the sender for 1 s at 2 MPS: the next turns, 1 s and 1.5 s on, are booked.
    assert [stored(runtime, m).slot for m in messages] == [0, micros(T0 + 1.0), micros(T0 + 1.5)]
    assert time.slept == [] and paced_phone.inbox() == [TWO_SEGMENTS]
    time.advance(1.5)
    run_scheduled(runtime, 3)  # RQ keeps whole seconds: what is due within 1.5 s, for sure
    first, *then = paced_phone.inbox()
    assert first == TWO_SEGMENTS and sorted(then) == sorted(["一", "二"])  # due together here: in either order


def test_routes_are_paced_apart_each_on_its_own_schedule(paced_phone, redis):
    time, runtime = FakeTime(), paced_phone.runtime
    link = ConsoleSender(redis, runtime.keys.shared(OUTBOX, "link"))  # stands in for a carrier's link
    runtime.routes["kannel-cmcc"] = Route("kannel-cmcc", link, pacer(redis, 1.0, time, key="tdbot:pace:kannel-cmcc"))
    pace(runtime, pacer(redis, 1.0, time, key=runtime.routes[CONSOLE].pacer.key))
    messages = [queue_message(runtime, route=route) for route in (CONSOLE, CONSOLE, "kannel-cmcc", "kannel-cmcc")]
    paced_phone.deliver()

    # Each link's second message waits for its own first (its turn booked 1 s on), never for the other link's.
    assert [stored(runtime, m).slot for m in messages] == [0, micros(T0 + 1.0), 0, micros(T0 + 1.0)]


def test_a_send_whose_turn_is_far_off_comes_back_later_without_holding_a_worker(paced_phone, redis):
    time, runtime = FakeTime(), paced_phone.runtime
    pace(runtime, pacer(redis, 1.0, time, key=runtime.routes[CONSOLE].pacer.key))
    messages = [queue_message(runtime, text) for text in ("一", "二", "三")]
    paced_phone.deliver()

    assert [stored(runtime, m).status for m in messages] == [SENT, QUEUED, QUEUED]
    assert scheduled_jobs(runtime) == 2 and time.slept == []
    time.advance(2.0)
    run_scheduled(runtime, 2.0)
    assert [stored(runtime, m).status for m in messages] == [SENT] * 3 and paced_phone.inbox() == ["一", "二", "三"]


def test_replies_to_a_subscribers_own_message_go_ahead_of_bulk_reminders(paced_phone):
    runtime = paced_phone.runtime
    queue_message(runtime, "提醒", queue=REMINDER_QUEUE)
    queue_message(runtime, "回复", queue=OUTBOUND_QUEUE)
    assert paced_phone.inbox() == ["回复", "提醒"]


def outbox(redis, key: str) -> list[dict]:
    return [json.loads(raw) for raw in redis.lrange(key, 0, -1)]


def _other_route_leaves_at_once(paced_phone, redis, link) -> list:
    """Six messages for `link` as a 1 MPS carrier link, then one for another route: that one leaves at once, not
    behind the link's five seconds of backlog. Returns the link's six."""
    runtime = paced_phone.runtime
    runtime.routes["kannel-cmcc"] = Route("kannel-cmcc", link, Pacer(redis, "tdbot:pace:kannel-cmcc", 1.0))
    backlog = [queue_message(runtime, f"第{n}条", route="kannel-cmcc") for n in range(6)]
    started = wall.time()
    other = queue_message(runtime, "另一条线路", route=CONSOLE)
    paced_phone.deliver()
    [(sent_at, text)] = [(e["at"], e["text"]) for e in outbox(redis, runtime.keys.shared(OUTBOX))]
    assert text == other.text and sent_at - started < 1.5
    return backlog


def test_a_backlog_on_one_route_never_holds_up_another(paced_phone, redis):
    """One worker, six messages for a 1 MPS carrier link, then one for another route: that one leaves at once, and the
    link's backlog still leaves at its pace (the Redis server's clock, really waited for)."""
    runtime = paced_phone.runtime
    link = ConsoleSender(redis, runtime.keys.shared(OUTBOX, "link"))  # stands in for a carrier's link
    backlog = _other_route_leaves_at_once(paced_phone, redis, link)

    deadline = wall.monotonic() + 15
    while any(stored(runtime, m).status != SENT for m in backlog) and wall.monotonic() < deadline:
        run_scheduled(runtime, 0)
        wall.sleep(0.2)
    link_sent = [e["at"] for e in outbox(redis, link.outbox_key)]
    # None before its turn: the k-th a whole k seconds after the first. (One that comes back late goes at once, so two
    # may leave closer than a second apart: docs/delivery.md.)
    assert len(link_sent) == 6 and all(at - link_sent[0] >= k - 0.05 for k, at in enumerate(link_sent))


def test_a_carrier_link_that_is_down_never_holds_up_another(paced_phone, redis):
    """sendsms for one carrier refuses connections (bearerbox and smsbox gone): its messages wait for their retries,
    and another route's message leaves at once."""
    runtime = paced_phone.runtime
    nobody = f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms"
    down = KannelSender(nobody, "tdbot", "secret", "10086", name="kannel-cmcc")
    waiting = _other_route_leaves_at_once(paced_phone, redis, down)
    assert {stored(runtime, m).status for m in waiting} == {QUEUED} and scheduled_jobs(runtime) == len(waiting)


def test_turns_booked_at_a_rate_a_restart_lowered_are_booked_afresh_at_the_new_rate(paced_phone, redis):
    """A backlog booked on a 10 MPS link, then the workers restart with the link's contracted 1 MPS (the carrier
    complained): what was booked at 10 MPS does not leave at 10 MPS; it leaves at the rate the link has now."""
    time, runtime = FakeTime(), paced_phone.runtime
    key = runtime.routes[CONSOLE].pacer.key
    pace(runtime, pacer(redis, 10.0, time, key=key))
    messages = [queue_message(runtime, f"第{n}条") for n in range(5)]
    paced_phone.deliver()
    assert [stored(runtime, m).slot for m in messages][1:] == [micros(T0 + n / 10) for n in range(1, 5)]

    pace(runtime, pacer(redis, 1.0, time, key=key))  # the restart
    time.advance(0.5)
    run_scheduled(runtime, 1)
    assert len(paced_phone.inbox()) <= 2  # the first, and at most one more within the first second at 1 MPS
    for _ in range(6):
        time.advance(1.0)
        run_scheduled(runtime, 1)
    assert sorted(paced_phone.inbox()) == sorted(m.text for m in messages)  # none stuck, none twice
