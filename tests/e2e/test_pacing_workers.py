"""Pacing under real workers (docs/delivery.md, "Routes"): two worker processes share one 1 MPS route's backlog, and a
work horse killed right after booking a message's slot, before sending it. Every message leaves once, none before its
turn, none stuck."""

from __future__ import annotations

import json
import os
import signal

import pytest

from gateway.state.keys import OUTBOX
from gateway.state.messages import SENT
from tests.support.delivery import queue_message, stored
from tests.support.processes import HAS_PROC, gone, wait_for, work_horse, worker
from tests.support.redis_proxy import FreezingProxy

pytestmark = pytest.mark.skipif(not HAS_PROC, reason="finds RQ's work horse through /proc")

BACKLOG = 6
MPS = 1


def sent_at(runtime) -> list[tuple[float, str]]:
    return sorted((e["at"], e["text"]) for e in map(json.loads, runtime.redis.lrange(runtime.keys.shared(OUTBOX), 0,
                                                                                         -1)))


def assert_paced(sends: list[tuple[float, str]]) -> None:
    """None before its turn (the k-th at least k intervals after the first), and no window holds more than its share
    and the one a late job may add (docs/delivery.md)."""
    times = [at for at, _ in sends]
    assert all(at - times[0] >= k / MPS - 0.05 for k, at in enumerate(times)), times
    for i, start in enumerate(times):
        for j in range(i + 1, len(times)):
            assert j - i <= (times[j] - start) * MPS + 2, times


def test_two_workers_share_one_routes_backlog_at_its_pace_and_send_each_once(app, redis_url, tmp_path) -> None:
    runtime = app.extensions["tdbot"]
    backlog = [queue_message(runtime, f"第{n}条") for n in range(BACKLOG)]
    log = tmp_path / "worker.log"
    with worker(redis_url, tmp_path, "--no-cron", TDBOT_SENDER_MPS=MPS), \
            worker(redis_url, tmp_path, "--no-cron", TDBOT_SENDER_MPS=MPS):
        wait_for(lambda: all(stored(runtime, m).status == SENT for m in backlog), "the backlog to leave", 60, log)
    sends = sent_at(runtime)
    assert sorted(text for _, text in sends) == sorted(m.text for m in backlog)  # each once
    assert_paced(sends)


def test_a_work_horse_killed_after_booking_a_slot_leaves_nothing_stuck_or_sent_twice(app, redis_url, tmp_path
                                                                                      ) -> None:
    runtime = app.extensions["tdbot"]
    backlog = [queue_message(runtime, f"第{n}条") for n in range(3)]
    proxy, log = FreezingProxy(redis_url), tmp_path / "worker.log"
    try:
        proxy.freeze_after(b"$4\r\nslot\r\n")  # the HSET that books the second message's slot on it
        with worker(proxy.url, tmp_path, "--no-cron", TDBOT_SENDER_MPS=MPS) as running:
            wait_for(proxy.frozen.is_set, "a slot booked", log=log)
            horse = work_horse(running.pid)
            assert horse is not None
            os.kill(horse, signal.SIGKILL)
            wait_for(lambda: gone(horse), "the work horse to die", log=log)
            proxy.thaw()
            wait_for(lambda: all(stored(runtime, m).status == SENT for m in backlog), "the backlog to leave", 60, log)
    finally:
        proxy.close()
    sends = sent_at(runtime)
    assert sorted(text for _, text in sends) == sorted(m.text for m in backlog)
    assert_paced(sends)
