"""Outbound pacing per route (carrier link): a GCRA schedule in Redis, counted in segments, shared by all workers."""

from __future__ import annotations

import random
import threading
from dataclasses import replace

import pytest

from gateway.config import from_env
from gateway.delivery.pacing import Pacer, mps_for
from gateway.delivery.routing import CONSOLE
from gateway.delivery.senders import ConsoleSender
from gateway.runtime import OUTBOUND_QUEUE, REMINDER_QUEUE, Route, Runtime
from gateway.state.keys import OUTBOX
from gateway.state.messages import QUEUED, SENT
from tests.support.delivery import queue_message, stored
from tests.support.phone import Phone, seed_demo
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
            assert slot.booked
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


def test_a_slot_further_off_than_the_longest_wait_is_not_booked(redis):
    time = FakeTime()
    own = pacer(redis, 1.0, time, max_wait=3.0)
    assert [own.book(1).wait for _ in range(4)] == [0.0, 1.0, 2.0, 3.0]
    refused = own.book(1)
    assert (refused.booked, refused.wait) == (False, 4.0)
    time.advance(4.0)
    assert own.book(1) == (True, 0.0)


def test_acquire_sleeps_until_the_slot(redis):
    time = FakeTime()
    own = pacer(redis, 2.0, time)
    assert [own.acquire(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert time.slept == [0.5, 1.0]


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


@pytest.mark.parametrize(("environ", "sender", "mps"), [
    ({}, "twilio", 1.0),
    ({"TDBOT_SENDER_MPS": "5"}, "twilio", 5.0),
    ({"TDBOT_SENDER_MPS": "5", "TDBOT_MPS_TWILIO": "20"}, "twilio", 20.0),
    ({"TDBOT_SENDER_MPS": "5", "TDBOT_MPS_TWILIO": "20"}, "console", 5.0),
    ({"TDBOT_MPS_KANNEL_CMCC": "100"}, "kannel-cmcc", 100.0),
    ({"TDBOT_MPS_KANNEL": "50", "TDBOT_MPS_KANNEL_CMCC": "100"}, "kannel-cucc", 50.0),  # the channel's own rate
    ({"TDBOT_MPS_KANNEL": "50", "TDBOT_MPS_KANNEL_CMCC": "100"}, "kannel-cmcc", 100.0),
    ({"TDBOT_SENDER_MPS": "5"}, "kannel-ctcc", 5.0),
])
def test_each_route_has_its_own_rate_from_the_environment(environ, sender, mps):
    assert mps_for(from_env(environ), sender) == mps


@pytest.fixture
def paced_phone(app) -> Phone:
    seed_demo(app)
    return Phone(app.test_client(), app, "+8613800138000")


def pace(runtime: Runtime, paced: Pacer, route: str = CONSOLE) -> None:
    runtime.routes[route] = replace(runtime.routes[route], pacer=paced)


def test_the_worker_waits_its_senders_turn_counted_in_segments(paced_phone, redis):
    time, runtime = FakeTime(), paced_phone.runtime
    pace(runtime, pacer(redis, 2.0, time, key=runtime.routes[CONSOLE].pacer.key))
    for text in (TWO_SEGMENTS, "一", "二"):
        queue_message(runtime, text)
    paced_phone.deliver()

    assert time.slept == [1.0, 1.5]  # the 2-segment message held the sender for 1 s at 2 MPS
    assert paced_phone.inbox() == [TWO_SEGMENTS, "一", "二"]


def test_routes_are_paced_apart_each_on_its_own_schedule(paced_phone, redis):
    time, runtime = FakeTime(), paced_phone.runtime
    link = ConsoleSender(redis, runtime.keys.shared(OUTBOX, "link"))  # stands in for a carrier's link
    runtime.routes["kannel-cmcc"] = Route("kannel-cmcc", link, pacer(redis, 1.0, time, key="tdbot:pace:kannel-cmcc"))
    pace(runtime, pacer(redis, 1.0, time, key=runtime.routes[CONSOLE].pacer.key))
    for route in (CONSOLE, CONSOLE, "kannel-cmcc", "kannel-cmcc"):
        queue_message(runtime, route=route)
    paced_phone.deliver()

    assert time.slept == [1.0, 1.0]  # each link's second message waits for its own first, never for the other link


def test_a_send_whose_turn_is_far_off_comes_back_later_without_holding_a_worker(paced_phone, redis):
    time, runtime = FakeTime(), paced_phone.runtime
    pace(runtime, pacer(redis, 1.0, time, key=runtime.routes[CONSOLE].pacer.key, max_wait=1.0))
    messages = [queue_message(runtime, text) for text in ("一", "二", "三")]
    paced_phone.deliver()

    assert [stored(runtime, m).status for m in messages] == [SENT, SENT, QUEUED]
    assert scheduled_jobs(runtime) == 1 and time.slept == [1.0]
    time.advance(2.0)
    run_scheduled(runtime, 2.0)
    assert stored(runtime, messages[2]).status == SENT and paced_phone.inbox()[-1] == "三"


def test_replies_to_a_subscribers_own_message_go_ahead_of_bulk_reminders(paced_phone):
    runtime = paced_phone.runtime
    queue_message(runtime, "提醒", queue=REMINDER_QUEUE)
    queue_message(runtime, "回复", queue=OUTBOUND_QUEUE)
    assert paced_phone.inbox() == ["回复", "提醒"]
