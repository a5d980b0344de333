"""A carrier link down for an hour, then back: waiting on it uses up no message's attempts; every reminder still
before its deadline goes once it is back, exactly once; what has nothing left to say by then is dropped with its
reason; operators are told once per outage (docs/delivery.md, "A route that is down"). The hour is the test's clock
and RQ's schedule moved forward, not slept."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta

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
