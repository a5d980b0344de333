"""A carrier link down for an hour, then back: waiting on it uses up no message's attempts; every reminder still
before its deadline goes once it is back, exactly once; what has nothing left to say by then is dropped with its
reason; operators are told once per outage (docs/delivery.md, "A route that is down"). The hour is the test's clock
and RQ's schedule moved forward, not slept."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from dialogs.effects import CODE, CONFIRMATION
from dialogs.model import CANCELLED, Statement, Subscriber, Subscription
from dialogs.reasons import ROUTE_DOWN
from dialogs.reminders import SETTLE, Reminder
from gateway import create_app
from gateway.delivery import outbound
from gateway.jobs import outbox, sweeper
from gateway.jobs.reminders import message_id
from gateway.runtime import Runtime
from gateway.state import due
from gateway.state.messages import QUEUED, SENDING, SENT, SKIPPED, OutboundMessage
from tests.support.kannel import kannel_settings
from tests.support.processes import free_port
from tests.support.scheduled import run_scheduled

ROUTE = "kannel-cmcc"
IN_TIME, EXPIRING = 12, 3  # reminders whose deadline is days away; reminders whose deadline passes in the outage
OUTAGE = 3600
STEP = 60


class Sendsms:
    """Kannel's sendsms, as far as tdbot can tell: takes a message (202 "0: Accepted for delivery"), or, while
    `busy`, answers 503 as bearerbox does when it has no SMSC or its queue is full."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, str]] = []
        self.busy = False
        self._server = make_server("127.0.0.1", 0, self._answer, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/cgi-bin/sendsms"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @Request.application
    def _answer(self, request: Request) -> Response:
        if self.busy:
            return Response("Queue full", status=503)
        self.taken.append((request.args["to"], request.args["text"]))
        return Response("0: Accepted for delivery", status=202)

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture
def sendsms() -> Iterator[Sendsms]:
    server = Sendsms()
    yield server
    server.close()


def owing(msisdn: str, now: datetime, deadline: datetime) -> Subscriber:
    sub = Subscription("vid", "视频会员", "SPHY", 1500, date(2026, 12, 7), status=CANCELLED, cancelled_at=now)
    statement = Statement(f"{msisdn[1:]}-vid-20261125", "vid", "视频会员", 950, now, deadline)
    return Subscriber(msisdn=msisdn, carrier="cmcc", locale="zh", subscriptions=(sub,), statements=(statement,))


def seed(runtime: Runtime, now: datetime) -> tuple[list[Reminder], list[Reminder]]:
    in_time, expiring = [], []
    for n in range(IN_TIME + EXPIRING):
        soon = n >= IN_TIME
        subscriber = owing(f"+86138{n:08d}", now, now + (timedelta(minutes=40) if soon else timedelta(days=7)))
        runtime.store.save_subscriber(subscriber)
        reminder = Reminder(SETTLE, subscriber.msisdn, subscriber.statements[0].id)
        due.schedule(runtime.redis, runtime.keys, [(reminder, now)])
        (expiring if soon else in_time).append(reminder)
    return in_time, expiring


def answer(runtime: Runtime, kind: str, text: str, msisdn: str) -> OutboundMessage:
    """A message a step sends (a code, a cancel's confirmation), stored and queued as the step's outbox does."""
    message = OutboundMessage(f"{kind}-{msisdn[-4:]}", msisdn, text, kind, int(runtime.clock().timestamp()),
                              route=ROUTE)
    runtime.store.save_message(message)
    outbound.enqueue(runtime, [message])
    return message


def a_minute_passes(runtime: Runtime, clock) -> None:
    """What the workers and the cron do in a minute: RQ's schedule, the sweep, the recovery cron."""
    clock.advance(seconds=STEP)
    sweeper.sweep(runtime)
    outbox.recover_job()
    run_scheduled(runtime, STEP)


@pytest.mark.parametrize("outage", ["refused", "busy"])
def test_a_link_down_for_an_hour_sends_every_reminder_still_in_time_once_it_is_back(test_config, clock, sendsms,
                                                                                       outage):
    app = create_app({**test_config, **kannel_settings(sendsms.url), "TDBOT_QUIET_HOURS": "off"})
    runtime = app.extensions["tdbot"]
    link = runtime.routes[ROUTE].sender
    if outage == "refused":  # bearerbox and smsbox gone: nothing listens
        link.url = f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms"
    else:
        sendsms.busy = True
    in_time, expiring = seed(runtime, clock.now)
    confirmation = answer(runtime, CONFIRMATION, "您的视频会员已退订。", in_time[0].msisdn)
    code = answer(runtime, CODE, "【中国移动】验证码428613，5分钟内有效。", in_time[1].msisdn)

    for _ in range(OUTAGE // STEP):
        a_minute_passes(runtime, clock)
    assert sendsms.taken == []
    assert len(runtime.store.escalations()) == 1 and runtime.store.escalations()[0][1] == ROUTE_DOWN
    scraped = app.test_client().get("/metrics").get_data(as_text=True)
    assert f'tdbot_route_down_seconds{{route="{ROUTE}"}}' in scraped

    link.url, sendsms.busy = sendsms.url, False  # back
    for _ in range(5):
        a_minute_passes(runtime, clock)

    sent = Counter(sendsms.taken)
    assert max(sent.values()) == 1, [m for m, n in sent.items() if n > 1]
    to = Counter(number for number, _ in sendsms.taken)
    assert {r.msisdn for r in in_time} <= set(to), "reminders lost to the outage"
    assert not {r.msisdn for r in expiring} & set(to), "a reminder sent at or after its deadline"
    stored = {r: runtime.store.load_message(r.msisdn, message_id(r)) for r in in_time + expiring}
    assert {(stored[r].status, stored[r].attempts) for r in in_time} == {(SENT, 1)}  # the wait used none up
    assert all(stored[r] is None or stored[r].status == SKIPPED for r in expiring)
    assert runtime.store.load_message(confirmation.msisdn, confirmation.id).status == SENT
    dropped = runtime.store.load_message(code.msisdn, code.id)
    assert dropped.status == SKIPPED and dropped.error
    assert sent[(confirmation.msisdn, confirmation.text)] == 1 and code.msisdn not in {
        n for n, t in sendsms.taken if "验证码" in t}
    left = [m for m in stored.values() if m is not None and m.status in (QUEUED, SENDING)]
    assert left == []
    assert len(runtime.store.escalations()) == 1  # one outage, one escalation
    assert "tdbot_route_down_seconds{" not in app.test_client().get("/metrics").get_data(as_text=True)


def passes(runtime: Runtime, clock, seconds: int) -> None:
    """`seconds` of the app's clock and of RQ's schedule, a ROUTE_RETRY-sized step at a time at most a minute."""
    clock.advance(seconds=seconds)
    outbox.recover_job()
    run_scheduled(runtime, seconds)


def test_a_confirmation_whose_link_is_down_for_more_than_a_day_fails_for_good_and_is_followed_up(test_config, clock,
                                                                                                  sendsms):
    app = create_app({**test_config, **kannel_settings(sendsms.url), "TDBOT_QUIET_HOURS": "off"})
    runtime = app.extensions["tdbot"]
    sendsms.busy = True
    confirmation = answer(runtime, CONFIRMATION, "您的视频会员已退订。", "+8613800000001")
    for _ in range(25 * 2):  # 25 hours, half an hour at a time
        passes(runtime, clock, 1800)
    stored = runtime.store.load_message(confirmation.msisdn, confirmation.id)
    assert stored.status == "failed", (stored.status, stored.attempts, stored.error)
    sendsms.busy = False  # back: the day-old copy itself never goes; its follow-up (a resend) does, once
    for _ in range(10):
        passes(runtime, clock, 60)
    assert runtime.store.load_message(confirmation.msisdn, confirmation.id).status == "failed"
    assert len(sendsms.taken) == 1, sendsms.taken


def test_a_link_that_flaps_sends_nothing_twice_and_tells_operators_once_per_outage(test_config, clock, sendsms):
    app = create_app({**test_config, **kannel_settings(sendsms.url), "TDBOT_QUIET_HOURS": "off"})
    runtime = app.extensions["tdbot"]
    sendsms.busy = True
    first = [answer(runtime, CONFIRMATION, f"退订{n}", f"+86138000000{n:02d}") for n in range(5)]
    passes(runtime, clock, 1)
    sendsms.busy = False
    passes(runtime, clock, 30)
    passes(runtime, clock, 1)
    sendsms.busy = True
    second = [answer(runtime, CONFIRMATION, f"退订{n}", f"+86139000000{n:02d}") for n in range(5)]
    passes(runtime, clock, 1)
    sendsms.busy = False
    for _ in range(6):
        passes(runtime, clock, 30)
    sent = Counter(sendsms.taken)
    assert sorted(sent) == sorted((m.msisdn, m.text) for m in first + second) and set(sent.values()) == {1}
    assert [e[1] for e in runtime.store.escalations()] == [ROUTE_DOWN, ROUTE_DOWN]
    assert {runtime.store.load_message(m.msisdn, m.id).attempts for m in first + second} == {1}


def test_a_reminder_waiting_for_its_link_when_quiet_hours_begin_waits_for_their_end(test_config, clock, sendsms):
    clock.now = datetime(2026, 11, 25, 13, 50, tzinfo=UTC)  # 21:50 in Shanghai; quiet 22:00-08:00
    app = create_app({**test_config, **kannel_settings(sendsms.url), "TDBOT_QUIET_HOURS": "22:00-08:00"})
    runtime = app.extensions["tdbot"]
    subscriber = owing("+8613800000009", clock.now, clock.now + timedelta(days=7))
    runtime.store.save_subscriber(subscriber)
    reminder = Reminder(SETTLE, subscriber.msisdn, subscriber.statements[0].id)
    due.schedule(runtime.redis, runtime.keys, [(reminder, clock.now)])
    sendsms.busy = True
    a_minute_passes(runtime, clock)
    assert runtime.store.load_message(subscriber.msisdn, message_id(reminder)) is not None
    for _ in range(14):  # to 22:05
        a_minute_passes(runtime, clock)
    sendsms.busy = False
    for _ in range(30):  # 22:05 to 22:35, the link back
        a_minute_passes(runtime, clock)
    assert sendsms.taken == []
    clock.now = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # 08:00
    for _ in range(3):
        a_minute_passes(runtime, clock)
    assert [n for n, _ in sendsms.taken] == [subscriber.msisdn]


def test_a_backlog_booked_before_its_link_went_down_leaves_at_the_links_pace_once_it_is_back(test_config, clock,
                                                                                              sendsms):
    mps, backlog = 10, 20
    app = create_app({**test_config, **kannel_settings(sendsms.url), "TDBOT_QUIET_HOURS": "off",
                      "TDBOT_MPS_KANNEL_CMCC": mps})
    runtime = app.extensions["tdbot"]
    messages = [answer(runtime, CONFIRMATION, f"退订{n}", f"+86138000001{n:02d}") for n in range(backlog)]
    run_scheduled(runtime, 0)  # the first leaves, every other one books its turn
    sendsms.busy = True  # down before the turns come
    time.sleep(backlog / mps)  # every turn has come, while the link is away
    passes(runtime, clock, 30)
    assert len(sendsms.taken) == 1
    sendsms.busy = False
    started = time.monotonic()
    passes(runtime, clock, 30)  # the probe
    while len(sendsms.taken) < backlog and time.monotonic() - started < 3 * backlog / mps:
        time.sleep(0.05)
        passes(runtime, clock, 1)
    took = time.monotonic() - started
    assert len(sendsms.taken) == backlog
    assert {runtime.store.load_message(m.msisdn, m.id).status for m in messages} == {SENT}
    assert took >= (backlog - 3) / mps, f"{backlog} messages left in {took:.2f} s on a {mps} MPS link"


def test_one_link_down_holds_only_its_own_messages_while_the_other_keeps_flowing(test_config, clock, sendsms):
    app = create_app({**test_config, **kannel_settings(sendsms.url), "TDBOT_QUIET_HOURS": "off"})
    runtime = app.extensions["tdbot"]
    runtime.routes[ROUTE].sender.url = f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms"  # cmcc's link gone
    held, flowing = [], []
    for n in range(5):
        for route, into in ((ROUTE, held), ("kannel-cucc", flowing)):
            message = OutboundMessage(f"{route}-{n}", f"+8613{n}0000{len(into):04d}", f"退订{route}{n}", CONFIRMATION,
                                      int(clock.now.timestamp()), route=route)
            runtime.store.save_message(message)
            outbound.enqueue(runtime, [message])
            into.append(message)
    for _ in range(3):
        a_minute_passes(runtime, clock)
    assert sorted(sendsms.taken) == sorted((m.msisdn, m.text) for m in flowing)
    [(number, reason)] = runtime.store.escalations()  # named after the cmcc message that found its link down
    assert reason == ROUTE_DOWN and number in {m.msisdn for m in held}
    assert {runtime.store.load_message(m.msisdn, m.id).status for m in held} == {QUEUED}
    runtime.routes[ROUTE].sender.url = sendsms.url
    for _ in range(3):
        a_minute_passes(runtime, clock)
    assert Counter(sendsms.taken) == Counter((m.msisdn, m.text) for m in held + flowing)


def test_a_code_that_expires_while_its_link_is_down_is_skipped_and_the_one_asked_for_again_goes_once(
        test_config, clock, sendsms):
    app = create_app({**test_config, **kannel_settings(sendsms.url), "TDBOT_QUIET_HOURS": "off"})
    runtime = app.extensions["tdbot"]
    sendsms.busy = True
    first = answer(runtime, CODE, "【中国移动】验证码428613，5分钟内有效。", "+8613800000077")
    for _ in range(6):
        a_minute_passes(runtime, clock)
    stored = runtime.store.load_message(first.msisdn, first.id)
    assert stored.status == SKIPPED and "expired" in stored.error and "428613" not in stored.text
    again = OutboundMessage("code-again", first.msisdn, "【中国移动】验证码551234，5分钟内有效。", CODE,
                            int(clock.now.timestamp()), route=ROUTE)
    runtime.store.save_message(again)
    outbound.enqueue(runtime, [again])
    a_minute_passes(runtime, clock)
    sendsms.busy = False
    for _ in range(3):
        a_minute_passes(runtime, clock)
    assert sendsms.taken == [(again.msisdn, again.text)]
