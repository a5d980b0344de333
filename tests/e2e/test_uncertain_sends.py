"""A Twilio create that may or may not have gone through is looked up in Twilio's Message list before anything is
sent again, over real HTTP to the fake Twilio with the app's own TwilioSender (docs/delivery.md)."""

from __future__ import annotations

import itertools
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogs.reasons import SEND_UNCERTAIN
from gateway import create_app
from gateway.delivery import outbound
from gateway.delivery.senders import SendError, SendUncertain, TwilioSender
from gateway.state.messages import FAILED, SENDING, SENT
from tests.support.delivery import MSISDN, queue_message, stored
from tests.support.fake_twilio import FROM, FakeTwilio
from tests.support.phone import Phone, seed_demo
from tests.support.scheduled import run_scheduled

TIMEOUT = 1.0  # the client's read timeout here (10 s in production)
HELD = TIMEOUT + 1  # a held answer comes this long after the create: the client has given up by then
SETTLES_AFTER = 60  # docs/delivery.md: "not in Twilio's list" is an answer 60 s after the attempt began
SERVICE = "MG" + "0" * 31 + "7"
_texts = itertools.count(1)


def sender_for(fake: FakeTwilio, base_url: str | None = None, origin: dict | None = None) -> TwilioSender:
    origin = origin or {"from_": FROM}
    return TwilioSender(fake.account_sid, fake.auth_token, origin, base_url or fake.url, timeout=TIMEOUT)


def phone_sending_with(config: dict, sender: TwilioSender) -> Phone:
    app = create_app({**config, "SENDER": sender})
    seed_demo(app)
    return Phone(app.test_client(), app, MSISDN)


@pytest.fixture
def phone(twilio_config, fake_twilio) -> Phone:
    return phone_sending_with(twilio_config, sender_for(fake_twilio))


def later(phone: Phone, clock, seconds: float) -> None:
    """`seconds` pass: for the app's clock, Twilio's, and RQ's scheduled jobs."""
    clock.advance(seconds=seconds)
    run_scheduled(phone.runtime, seconds)


def escalated(phone: Phone) -> bool:
    return (MSISDN, SEND_UNCERTAIN) in phone.runtime.store.escalations()


def test_a_create_twilio_took_but_answered_too_late_is_recorded_and_never_sent_again(phone, fake_twilio, clock):
    fake_twilio.hold_next(HELD)
    message = queue_message(phone.runtime)
    phone.deliver()
    later(phone, clock, SETTLES_AFTER)
    later(phone, clock, 86400)

    [sent] = fake_twilio.to(MSISDN)
    done = stored(phone.runtime, message)
    assert (done.status, done.provider_sid, fake_twilio.requests) == (SENT, sent.sid, 1)
    assert not escalated(phone)


def test_a_send_through_a_messaging_service_is_found_by_its_service(twilio_config, fake_twilio, clock):
    phone = phone_sending_with(twilio_config, sender_for(fake_twilio, origin={"messaging_service_sid": SERVICE}))
    fake_twilio.hold_next(HELD)
    message = queue_message(phone.runtime)
    phone.deliver()
    later(phone, clock, SETTLES_AFTER)

    [sent] = fake_twilio.to(MSISDN)
    done = stored(phone.runtime, message)
    assert (sent.sender, done.status, done.provider_sid, fake_twilio.requests) == (SERVICE, SENT, sent.sid, 1)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_create_twilio_took_but_answered_with_a_server_error_is_recorded_and_never_sent_again(
    phone, fake_twilio, clock, status
):
    fake_twilio.take_then_fail_next(1, status)
    message = queue_message(phone.runtime)
    phone.deliver()
    for interval in outbound.RETRY_INTERVALS:
        later(phone, clock, interval)

    [sent] = fake_twilio.to(MSISDN)
    done = stored(phone.runtime, message)
    assert (done.status, done.provider_sid, fake_twilio.requests) == (SENT, sent.sid, 1)


def test_a_server_error_for_a_create_twilio_never_took_is_sent_again_once_the_list_would_show_it(
    phone, fake_twilio, clock
):
    fake_twilio.fail_next(1, 500)
    message = queue_message(phone.runtime)
    phone.deliver()
    later(phone, clock, SETTLES_AFTER)

    [sent] = fake_twilio.to(MSISDN)
    done = stored(phone.runtime, message)
    assert (done.status, done.provider_sid, done.attempts, fake_twilio.requests) == (SENT, sent.sid, 2, 2)


def test_a_create_that_never_reaches_twilio_is_failed_after_the_last_attempt_not_tried_for_ever(
    phone, fake_twilio, clock
):
    attempts = 1 + len(outbound.RETRY_INTERVALS)
    for _ in range(attempts + 1):
        fake_twilio.hold_next(HELD, accept=False)
    message = queue_message(phone.runtime)
    phone.deliver()
    for _ in range(attempts + 1):
        later(phone, clock, SETTLES_AFTER)

    done = stored(phone.runtime, message)
    assert (done.status, done.attempts, fake_twilio.requests, fake_twilio.messages) == (FAILED, attempts, attempts, [])
    assert not escalated(phone)


def test_a_create_that_timed_out_before_twilio_took_it_is_sent_once_the_list_would_show_it(
    phone, fake_twilio, clock
):
    fake_twilio.hold_next(HELD, accept=False)
    message = queue_message(phone.runtime)
    phone.deliver()
    clock.advance(seconds=SETTLES_AFTER - 1)
    phone.runtime.queue("outbound").enqueue(outbound.deliver, MSISDN, message.id)  # an early second run
    phone.deliver()
    assert (fake_twilio.requests, stored(phone.runtime, message).status) == (1, SENDING), "resent on a guess"

    later(phone, clock, SETTLES_AFTER)

    [sent] = fake_twilio.to(MSISDN)
    done = stored(phone.runtime, message)
    assert (done.status, done.provider_sid, fake_twilio.requests) == (SENT, sent.sid, 2)


def test_a_worker_killed_after_the_create_finds_it_even_when_the_list_lags(phone, fake_twilio, clock):
    runtime = phone.runtime
    fake_twilio.list_lag = 10
    message = queue_message(runtime)
    assert runtime.store.claim_message(MSISDN, message.id)
    runtime.route(message).sender.send(MSISDN, message.text, None, reference=message.id)  # then the worker was killed
    clock.advance(seconds=5)
    phone.deliver()  # RQ runs the job again: Twilio's list does not show the message yet
    assert (fake_twilio.requests, stored(runtime, message).status) == (1, SENDING)

    later(phone, clock, SETTLES_AFTER)

    [sent] = fake_twilio.to(MSISDN)
    done = stored(runtime, message)
    assert (done.status, done.provider_sid, fake_twilio.requests) == (SENT, sent.sid, 1)


@pytest.mark.parametrize(("status", "looks"), [(500, 1 + len(outbound.RETRY_INTERVALS)), (400, 1)])
def test_when_twilio_cannot_tell_a_person_decides_and_nothing_is_resent(phone, fake_twilio, clock, status, looks):
    fake_twilio.hold_next(HELD)
    fake_twilio.fail_lookups(100, status)
    message = queue_message(phone.runtime)
    phone.deliver()
    later(phone, clock, SETTLES_AFTER)
    for interval in outbound.RETRY_INTERVALS:
        later(phone, clock, interval)

    assert escalated(phone)
    assert (fake_twilio.requests, fake_twilio.lookups, len(fake_twilio.messages)) == (1, looks, 1)
    assert stored(phone.runtime, message).status == SENDING


def test_an_uncertain_send_whose_lookup_finds_twilio_away_waits_for_it_and_is_found_once_it_is_back(
    phone, fake_twilio, clock
):
    """Twilio answers 503 to the create (it had stored it) and to every lookup for an hour: the message stays
    `sending`, uses none of its retries, tells nobody it is uncertain, and is recorded sent once the list answers."""
    fake_twilio.take_then_fail_next(status=503)
    fake_twilio.fail_lookups(10_000, 503)
    message = queue_message(phone.runtime)
    phone.deliver()
    for _ in range(3600 // outbound.ROUTE_RETRY):
        later(phone, clock, outbound.ROUTE_RETRY)
    assert stored(phone.runtime, message).status == SENDING and not escalated(phone)

    fake_twilio.answer_lookups()  # back
    later(phone, clock, outbound.ROUTE_RETRY)
    later(phone, clock, outbound.ROUTE_RETRY)
    [sent] = fake_twilio.to(MSISDN)
    done = stored(phone.runtime, message)
    assert (done.status, done.provider_sid, fake_twilio.requests) == (SENT, sent.sid, 1)
    assert not escalated(phone)


def test_a_message_of_ours_with_the_same_text_is_not_taken_for_the_uncertain_one(phone, fake_twilio, clock):
    """A resent confirmation has the text of the first: the first's sid is the first's."""
    first = queue_message(phone.runtime)
    phone.deliver()
    clock.advance(seconds=5)
    fake_twilio.hold_next(HELD, accept=False)
    again = queue_message(phone.runtime, first.text)
    phone.deliver()
    later(phone, clock, SETTLES_AFTER)

    [one, two] = fake_twilio.to(MSISDN)
    assert (stored(phone.runtime, first).provider_sid, stored(phone.runtime, again).provider_sid) == (one.sid, two.sid)


def test_a_read_timeout_is_uncertain_and_a_refused_connection_is_not(fake_twilio):
    fake_twilio.hold_next(HELD)
    with pytest.raises(SendUncertain):
        sender_for(fake_twilio).send(MSISDN, "x", None)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(SendError) as refused:
            sender_for(fake_twilio, nobody).send(MSISDN, "x", None)
    assert refused.value.retryable


CREATES = st.sampled_from(["took it, answered late", "timed out before taking it", "500", "429"])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(creates=st.lists(CREATES, max_size=3), lag=st.sampled_from([0, 5, 30]))
def test_whatever_twilio_does_to_the_creates_a_message_reaches_the_phone_exactly_once(
    phone, fake_twilio, clock, creates: list[str], lag: int
):
    fake_twilio.list_lag = lag
    took = [i for i, create in enumerate(creates) if create.startswith("took")]
    for create in creates[: took[0] + 1] if took else creates:  # a create Twilio took is the last one
        if create.isdigit():
            fake_twilio.fail_next(1, int(create))
        else:
            fake_twilio.hold_next(HELD, accept=create.startswith("took"))
    message = queue_message(phone.runtime, f"您的视频会员已退订。({next(_texts)})")
    phone.deliver()
    for _ in range(8):
        later(phone, clock, 300)

    [sent] = [m for m in fake_twilio.to(MSISDN) if m.body == message.text]
    done = stored(phone.runtime, message)
    assert (done.status, done.provider_sid) == (SENT, sent.sid)
    assert not escalated(phone)
