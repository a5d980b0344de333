"""A message whose id is decided by what it is about is stored and queued once however often, and however many at
once, the runs that make it; one a run stored but could not queue is queued by the next; one that has gone out is
never stored or queued again (gateway/jobs/once.py)."""

from __future__ import annotations

import threading

from dialogs.effects import NOTICE
from gateway.delivery import outbound
from gateway.jobs.once import queue_once
from gateway.runtime import OUTBOUND_QUEUE
from gateway.state.messages import QUEUED, SENT, OutboundMessage
from tests.support.delivery import MSISDN, stored


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
