"""A message whose id is decided by what it is about is stored and queued once however often, and however many at
once, the runs that make it; one a run stored but could not queue is queued by the next; one that has gone out is
never stored or queued again (gateway/jobs/once.py)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest

from dialogs.effects import NOTICE
from gateway.delivery import outbound
from gateway.delivery.routing import CONSOLE
from gateway.jobs.once import queue_once
from gateway.runtime import OUTBOUND_QUEUE
from gateway.state.messages import QUEUED, SENT, OutboundMessage
from tests.support.delivery import MSISDN, stored
from tests.support.kannel import work
from tests.support.phone import seed_demo
from tests.support.scheduled import run_scheduled


def notice(runtime, text: str = "缴费成功。") -> OutboundMessage:
    return OutboundMessage("pay-done-1", MSISDN, text, NOTICE, int(runtime.clock().timestamp()))


def test_runs_at_once_store_one_message_and_send_it_once(app, phone) -> None:
    runtime, made = app.extensions["tdbot"], []
    start = threading.Barrier(8)

    def run() -> None:
        start.wait()
        made.append(queue_once(runtime, notice(runtime)))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made.count(True) == 1
    assert phone.inbox() == ["缴费成功。"]


def test_a_message_that_has_gone_out_is_not_stored_or_queued_again(app) -> None:
    runtime = app.extensions["tdbot"]
    assert queue_once(runtime, notice(runtime))
    outbound.advance(runtime, stored(runtime, notice(runtime)), SENT, provider_sid="CON1")
    runtime.queue(OUTBOUND_QUEUE).empty()
    assert not queue_once(runtime, notice(runtime, "另一个文本"))
    kept = stored(runtime, notice(runtime))
    assert (kept.status, kept.text) == (SENT, "缴费成功。")
    assert runtime.queue(OUTBOUND_QUEUE).count == 0


def test_a_message_stored_but_never_queued_is_queued_by_the_next_run(app) -> None:
    runtime = app.extensions["tdbot"]
    runtime.store.save_message(notice(runtime))  # a run that died before queuing it
    assert not queue_once(runtime, notice(runtime))
    assert stored(runtime, notice(runtime)).status == QUEUED
    assert runtime.queue(OUTBOUND_QUEUE).job_ids == ["msg-pay-done-1"]


class Racing:
    """A route's sender (a console sender underneath: a phone the test can read), with another run of the same
    message's making (a reminder batch run again, a notice's job retried) and a second worker taking its job while
    this send is still on its way. `lookup`: the sender can look a send up (Twilio, the console), or not (Kannel)."""

    def __init__(self, sender, race, lookup: bool) -> None:
        self.sender, self.race, self.name, self.raced = sender, race, sender.name, False
        if lookup:
            self.find, self.settles_after = sender.find, sender.settles_after

    def send(self, to: str, text: str, status_callback, reference: str = "") -> str:
        if not self.raced:
            self.raced = True
            self.race()
        return self.sender.send(to, text, status_callback, reference)


@pytest.mark.parametrize("lookup", [True, False], ids=["with a lookup", "without one"])
def test_a_run_again_while_the_first_is_mid_send_sends_nothing_twice_and_tells_nobody(app, lookup) -> None:
    seed_demo(app)
    runtime = app.extensions["tdbot"]
    message, route = notice(runtime), runtime.routes[CONSOLE]

    def race() -> None:  # in the middle of the first run's send: the claim is taken, nothing has left yet
        assert not queue_once(runtime, message)
        work(runtime)

    runtime.routes[CONSOLE] = replace(route, sender=Racing(route.sender, race, lookup))
    assert queue_once(runtime, message)
    work(runtime)
    run_scheduled(runtime, 3600)  # whatever the second run left for later

    sent = [e for e in map(json.loads, runtime.redis.lrange(route.sender.outbox_key, 0, -1)) if e["to"] == MSISDN]
    assert len(sent) == 1
    assert stored(runtime, message).status == SENT
    assert runtime.store.escalations() == []
