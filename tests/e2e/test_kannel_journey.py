"""Through a real Kannel: fakesmsc is the phone, bearerbox and smsbox run deploy/kannel.conf, tdbot answers over HTTP.

MO goes phone -> bearerbox -> smsbox -> get-url; every reply is an MT through sendsms -> bearerbox -> the phone, and
its delivery reports come back to the dlr-url.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import requests

from dialogs.effects import CODE, CONFIRMATION
from dialogs.messages import render
from dialogs.reasons import SEND_REFUSED
from gateway import create_app
from gateway.delivery import outbound
from gateway.state.keys import MESSAGE
from gateway.state.messages import DELIVERED, FAILED, QUEUED, REPLY, SENT, OutboundMessage
from tests.support.delivery import MSISDN, queue_message, stored
from tests.support.kannel import TOKEN, Handset, Kannel, LiveApp, kannel_settings, work
from tests.support.phone import seed_demo
from tests.support.processes import wait_for
from tests.support.redis_proxy import FreezingProxy
from tests.support.scheduled import run_scheduled, scheduled_jobs

PHONE = "13800138000"  # the demo China Mobile subscriber, as the SMSC gives the number
ROUTE = "kannel-cmcc"


@pytest.fixture
def runtime(kannel_app):
    seed_demo(kannel_app)
    return kannel_app.extensions["tdbot"]


def arrive(handset: Handset, runtime, count: int, what: str = "") -> list[str]:
    """The texts on the phone once there are `count`, running the worker meanwhile."""

    def enough() -> list[str] | None:
        texts = handset.texts()
        return texts if len(texts) >= count else None

    return wait_for(enough, what or f"{count} messages on the phone", work=lambda: work(runtime))


def messages(runtime) -> list[OutboundMessage]:
    keys = runtime.redis.scan_iter(match=runtime.keys.of(MSISDN, MESSAGE, "*"))
    found = [runtime.store.load_message(MSISDN, key.decode().rsplit(":", 1)[1]) for key in keys]
    return [m for m in found if m is not None]


def all_delivered(runtime) -> bool:
    return all(m.status == DELIVERED for m in messages(runtime))


@pytest.mark.parametrize("opening", ["退订", "TD"])
def test_a_whole_cancel_through_kannel(runtime, handset: Handset, opening: str) -> None:
    handset.text(opening, sender=PHONE)
    [listing] = arrive(handset, runtime, 1, "the list")
    assert "1.视频会员" in listing and "2.音乐包" in listing

    handset.text("1", sender=PHONE)
    confirm = arrive(handset, runtime, 2, "the confirmation question")[-1]
    assert "视频会员" in confirm and "Y" in confirm

    handset.text("Y", sender=PHONE)
    *_, code_sms = arrive(handset, runtime, 4, "the code")
    code = re.search(r"\d{6}", code_sms)[0]

    handset.text(code, sender=PHONE)
    done = arrive(handset, runtime, 5, "the confirmation")[-1]
    assert "已退订" in done
    assert [s.status for s in runtime.store.load_subscriber(MSISDN).subscriptions] == ["cancelled", "active", "active"]

    assert all(sender == "10086" and to == MSISDN for sender, to, _ in handset.received())
    wait_for(lambda: all_delivered(runtime), "every message's delivery report")
    sent = messages(runtime)
    assert sorted(m.kind for m in sent) == sorted([REPLY, REPLY, REPLY, CODE, CONFIRMATION])
    assert {m.route for m in sent} == {ROUTE}


def test_a_retried_mo_is_answered_once_and_changes_nothing(live: LiveApp, runtime, handset: Handset) -> None:
    live.lose_answers = 1  # tdbot handles the MO, but smsbox never hears so and sends it again, same %I
    handset.text("TD", sender=PHONE)
    wait_for(lambda: len(live.mo_requests) >= 2, "smsbox to retry the MO")
    first, again = live.mo_requests[:2]
    assert first == again
    arrive(handset, runtime, 1)
    work(runtime)
    assert len(handset.texts()) == 1
    assert len([m for m in messages(runtime) if m.kind == REPLY]) == 1
    assert len(runtime.store.conversation(MSISDN)) == 1


def test_a_wrong_token_is_refused(live: LiveApp, runtime, kannel: Kannel) -> None:
    query = f"from={PHONE}&to=10086&text=TD&coding=0&charset=UTF-8&id=x-1"
    for token in ("", "&token=wrong-token-0123456789", "&token=" + TOKEN.upper()):
        assert requests.get(f"{live.url}/webhooks/kannel/mo?{query}{token}", timeout=5).status_code == 403
    assert requests.get(f"{live.url}/webhooks/kannel/mo?{query}&token={TOKEN}", timeout=5).status_code == 200
    assert runtime.store.conversation(MSISDN)[0]["in"] == "TD"


def test_a_ucs2_mo_is_read_from_its_utf16_bytes(live: LiveApp, runtime, handset: Handset) -> None:
    handset.text(quote("退订".encode("utf-16-be")), sender=PHONE, kind="ucs2")
    [listing] = arrive(handset, runtime, 1, "the list")
    assert "1.视频会员" in listing
    assert "coding=2" in live.mo_requests[0] and "charset=UTF-16BE" in live.mo_requests[0]
    assert runtime.store.conversation(MSISDN)[0]["in"] == "退订"


def route_retried(runtime, clock) -> None:
    """What waiting for a route that was down comes to: its messages come back in ROUTE_RETRY, one of them tries it."""
    clock.advance(seconds=outbound.ROUTE_RETRY)
    run_scheduled(runtime, outbound.ROUTE_RETRY)


def test_messages_wait_while_kannel_is_down_and_go_once_it_is_back(runtime, kannel: Kannel, handset: Handset,
                                                                   request, clock) -> None:
    handset.stop()
    kannel.stop()
    queued = [queue_message(runtime, f"第{n}条通知", route=ROUTE) for n in range(3)]
    work(runtime)
    # Refused connection: the route is down, the messages wait for it with no attempt used up.
    assert [(stored(runtime, m).status, stored(runtime, m).attempts) for m in queued] == [(QUEUED, 0)] * 3
    assert scheduled_jobs(runtime) == 3

    kannel.start()
    back = Handset(kannel, f"fakesmsc-{request.node.name}-back.log")
    try:
        wait_for(lambda: len(back.texts()) >= 3, "3 messages on the phone", work=lambda: route_retried(runtime, clock))
        work(runtime)
        assert sorted(back.texts()) == sorted(m.text for m in queued)  # none lost, none twice
        wait_for(lambda: all(stored(runtime, m).status == DELIVERED for m in queued), "delivery reports")
    finally:
        back.stop()


def test_a_busy_sendsms_is_a_route_down_and_its_message_waits_for_it(serve, handset: Handset, busy_sendsms,
                                                                     clock) -> None:
    runtime = serve(KANNEL_SENDSMS_URL=busy_sendsms.url).extensions["tdbot"]
    message = queue_message(runtime, "您的视频会员已退订。", route=ROUTE)
    work(runtime)
    assert busy_sendsms.refused == 1 and (stored(runtime, message).status, stored(runtime, message).attempts) == (
        QUEUED, 0)
    route_retried(runtime, clock)
    assert arrive(handset, runtime, 1) == [message.text]
    assert stored(runtime, message).status in (SENT, DELIVERED)


def test_refused_credentials_fail_the_message_and_tell_a_person(serve, handset: Handset) -> None:
    runtime = serve(KANNEL_PASSWORD="not-the-password").extensions["tdbot"]
    message = queue_message(runtime, "您的视频会员已退订。", route=ROUTE)
    work(runtime)
    assert stored(runtime, message).status == FAILED
    assert "403" in stored(runtime, message).error and "password" not in stored(runtime, message).error
    assert (MSISDN, SEND_REFUSED) in runtime.store.escalations()
    assert handset.texts() == []


STRANGER_PHONE, STRANGER = "13900000000", "+8613900000000"  # a number we have no record of


def test_a_stranger_s_retried_mo_is_answered_once(live: LiveApp, runtime, handset: Handset) -> None:
    live.lose_answers = 1  # tdbot answers the stranger, but smsbox never hears so and sends it again, same %I
    handset.text("TD", sender=STRANGER_PHONE)
    wait_for(lambda: len(live.mo_requests) >= 2, "smsbox to retry the MO")
    assert live.mo_requests[0] == live.mo_requests[1]
    arrive(handset, runtime, 1, "the stranger's reply")
    work(runtime)
    wait_for(lambda: not runtime.queue("outbound").count, "the outbound queue empty", work=lambda: work(runtime))
    assert handset.texts() == [render("zh", "unknown_sender")]


# How many times smsbox must ask while tdbot answers 503 for the message not to be lost: here every second
# (http-queue-delay is 1 s under test), in production every http-queue-delay seconds of deploy/kannel.conf.
OUTAGE_ASKS = 12


def test_while_redis_is_away_smsbox_keeps_asking_and_no_mo_or_report_is_lost(
    serve, live: LiveApp, kannel: Kannel, handset: Handset, test_config: dict, redis_url: str
) -> None:
    proxy = FreezingProxy(redis_url)
    try:
        web = serve(REDIS_URL=proxy.url)  # what smsbox reaches: tdbot, on a Redis about to go away
        seed_demo(web)
        worker = create_app({**test_config, **kannel_settings(kannel.sendsms_url, live.url)}).extensions["tdbot"]
        notice = queue_message(worker, "您的视频会员已退订。", route=ROUTE)
        proxy.cut()
        work(worker)  # it leaves; its delivery reports find tdbot answering 503
        handset.text("TD", sender=PHONE)  # and so does the subscriber's MO

        def asked_enough() -> bool:
            delivered = [query for query in live.dlr_requests if "type=1&" in query]
            return len(live.mo_requests) >= OUTAGE_ASKS and len(delivered) >= OUTAGE_ASKS

        wait_for(asked_enough, f"smsbox to ask {OUTAGE_ASKS} times for the MO and report", OUTAGE_ASKS + 20)
        proxy.mend()
        wait_for(lambda: stored(worker, notice).status == DELIVERED, "the report, once Redis is back", 20)
        assert "1.视频会员" in arrive(handset, worker, 2, "the reply to the MO, once Redis is back")[-1]
        assert len(worker.store.conversation(MSISDN)) == 1
    finally:
        proxy.close()
