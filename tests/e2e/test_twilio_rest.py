"""Outbound over Twilio's REST API, for real over HTTP to a local Twilio-compatible server, and its receipts."""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.serving import make_server

from gateway import create_app
from gateway.delivery import outbound
from gateway.state.messages import DELIVERED, FAILED, QUEUED, SENT
from tests.support.delivery import MSISDN, queue_message, stored
from tests.support.fake_twilio import FROM
from tests.support.phone import BASE_URL, Phone, seed_demo
from tests.support.processes import wait_for, worker
from tests.support.scheduled import run_scheduled, scheduled_jobs


def test_a_message_goes_out_through_the_twilio_api_and_its_receipts_are_recorded(twilio_phone, fake_twilio):
    runtime = twilio_phone.runtime
    message = queue_message(runtime)
    twilio_phone.deliver()

    [sent] = fake_twilio.to(MSISDN)
    assert (sent.body, sent.sender) == ("您的视频会员已退订。", FROM)
    callback = urlsplit(sent.status_callback)
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{BASE_URL}/webhooks/twilio/status"
    assert parse_qs(callback.query) == {"m": [message.id]}
    after_send = stored(runtime, message)
    assert (after_send.status, after_send.provider_sid, after_send.attempts) == (SENT, sent.sid, 1)

    fake_twilio.progress(sent, "queued", "sent", "delivered", client=twilio_phone.client)
    assert stored(runtime, message).status == DELIVERED


def test_an_undelivered_cancel_confirmation_reaches_the_phone_again_through_twilio(twilio_phone, fake_twilio):
    twilio_phone.send("TD")
    twilio_phone.send("1")
    twilio_phone.send("Y")
    twilio_phone.deliver()
    [code_sms] = fake_twilio.to(MSISDN)
    twilio_phone.send(re.search(r"\d{6}", code_sms.body).group(0))
    twilio_phone.deliver()
    [_, confirmation] = fake_twilio.to(MSISDN)
    assert "视频会员已退订" in confirmation.body

    fake_twilio.progress(confirmation, "sent", "undelivered", client=twilio_phone.client, error_code="30003")
    run_scheduled(twilio_phone.runtime, outbound.RESEND_DELAYS[0])

    [_, _, again] = fake_twilio.to(MSISDN)
    assert again.body == confirmation.body and again.sid != confirmation.sid


def test_a_provider_error_worth_retrying_sends_the_message_later_exactly_once(twilio_phone, fake_twilio):
    """A 429 takes nothing: retried after its backoff. (A 5xx may have taken the message: tests/e2e/
    test_uncertain_sends.py.)"""
    runtime = twilio_phone.runtime
    fake_twilio.fail_next(1, 429)
    message = queue_message(runtime)
    twilio_phone.deliver()

    waiting = stored(runtime, message)
    assert (waiting.status, waiting.attempts, fake_twilio.messages) == (QUEUED, 1, [])
    assert scheduled_jobs(runtime) == 1

    run_scheduled(runtime, outbound.RETRY_INTERVALS[0])
    run_scheduled(runtime, 3600)

    [sent] = fake_twilio.to(MSISDN)
    done = stored(runtime, message)
    assert (done.status, done.provider_sid, done.attempts) == (SENT, sent.sid, 2)
    assert fake_twilio.requests == 2


def test_a_retry_waits_for_its_backoff(twilio_phone, fake_twilio):
    fake_twilio.fail_next(1, 429)
    queue_message(twilio_phone.runtime)
    twilio_phone.deliver()

    run_scheduled(twilio_phone.runtime, outbound.RETRY_INTERVALS[0] - 2)
    assert fake_twilio.requests == 1
    run_scheduled(twilio_phone.runtime, 2)
    assert fake_twilio.requests == 2


def test_retries_are_bounded_and_then_the_message_is_failed(twilio_phone, fake_twilio):
    runtime = twilio_phone.runtime
    fake_twilio.fail_next(100, 429)
    message = queue_message(runtime)
    twilio_phone.deliver()
    for interval in outbound.RETRY_INTERVALS:
        run_scheduled(runtime, interval)

    failed = stored(runtime, message)
    assert (failed.status, failed.attempts) == (FAILED, len(outbound.RETRY_INTERVALS) + 1)
    assert fake_twilio.requests == len(outbound.RETRY_INTERVALS) + 1
    assert scheduled_jobs(runtime) == 0


def test_a_recipient_who_opted_out_with_the_provider_is_marked_and_never_retried(twilio_phone, fake_twilio):
    runtime = twilio_phone.runtime
    fake_twilio.refuse_next_as_opted_out()
    message = queue_message(runtime)
    twilio_phone.deliver()
    run_scheduled(runtime, 86400)

    failed = stored(runtime, message)
    assert failed.status == FAILED and failed.error.startswith("21610")
    assert fake_twilio.requests == 1 and fake_twilio.messages == []
    assert runtime.store.load_subscriber(MSISDN).opted_out is True


def test_wrong_credentials_fail_the_message_without_retrying(twilio_config, fake_twilio):
    app = create_app({**twilio_config, "TWILIO_AUTH_TOKEN": "not-the-token"})
    seed_demo(app)
    phone = Phone(app.test_client(), app, MSISDN)
    message = queue_message(phone.runtime)
    phone.deliver()

    assert stored(phone.runtime, message).status == FAILED
    assert scheduled_jobs(phone.runtime) == 0 and fake_twilio.messages == []


def test_a_receipt_that_beats_the_workers_own_record_is_kept(twilio_phone, fake_twilio):
    """Twilio can call back before the create call has returned to the worker."""
    runtime = twilio_phone.runtime
    fake_twilio.on_create = lambda sent: fake_twilio.progress(sent, "sent", "delivered", client=twilio_phone.client)
    message = queue_message(runtime)
    twilio_phone.deliver()

    done = stored(runtime, message)
    assert (done.status, done.provider_sid) == (DELIVERED, fake_twilio.messages[0].sid)


@pytest.fixture
def live_app(twilio_config):
    """The app served over HTTP on a free port, with PUBLIC_BASE_URL pointing at it."""
    served = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: served["app"](environ, start), threaded=True)
    served["app"] = create_app({**twilio_config, "PUBLIC_BASE_URL": f"http://127.0.0.1:{server.server_port}"})
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield served["app"]
    server.shutdown()
    thread.join(5)


def test_receipts_posted_over_http_with_twilios_signature_are_recorded(live_app, fake_twilio):
    seed_demo(live_app)
    phone = Phone(live_app.test_client(), live_app, MSISDN)
    message = queue_message(phone.runtime)
    phone.deliver()
    [sent] = fake_twilio.messages

    fake_twilio.progress(sent, "sent", "delivered")
    unsigned = fake_twilio.post_status(sent, "failed", signed=False)

    assert unsigned.status_code == 403
    assert stored(phone.runtime, message).status == DELIVERED


def test_a_worker_process_retries_a_provider_error_on_its_own_scheduler(twilio_phone, fake_twilio, redis_url,
                                                                          tmp_path):
    """`python worker.py` as deployed: RQ's scheduler in the worker brings the retry back after its backoff."""
    fake_twilio.fail_next(1, 429)
    message = queue_message(twilio_phone.runtime)
    config = twilio_phone.runtime.config
    twilio = {name: config[name] for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM",
                                              "TWILIO_API_BASE_URL")}
    with worker(redis_url, tmp_path, drop=(), PUBLIC_BASE_URL=BASE_URL, TDBOT_SENDER_MPS=1000, **twilio):
        wait_for(lambda: fake_twilio.messages, "the retry to reach Twilio", outbound.RETRY_INTERVALS[0] + 30,
                 log=tmp_path / "worker.log")

    [sent] = fake_twilio.messages
    done = stored(twilio_phone.runtime, message)
    assert (done.status, done.provider_sid, done.attempts, fake_twilio.requests) == (SENT, sent.sid, 2, 2)
