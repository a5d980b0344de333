"""Flooding: a cap per sending number on inbound SMS (one notice, then silence), a cap per client IP on all but
signed provider webhooks, and where the client IP comes from."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogs.messages import render
from gateway import create_app
from tests.support.phone import SMS_PATH, api_headers, seed_demo, sign, twiml_messages

NUMBER, OTHER = "+8613800138000", "+8618600000000"  # demo subscribers
STATUS = "/webhooks/twilio/status"
_sids = itertools.count(1)


def flood_app(test_config: dict, **limits: str):
    app = create_app({**test_config, "RATELIMIT_ENABLED": True, **limits})
    seed_demo(app)
    return app


def stored(redis) -> dict[bytes, bytes]:
    """Everything in Redis but the rate-limit counters themselves (flask-limiter's, and each number's own)."""
    return {
        key: redis.dump(key) for key in redis.scan_iter(count=1000)
        if not key.startswith(b"LIMITS:") and b":limits:" not in key
    }


def texting(client, number: str, text: str = "HELP", ip: str = "127.0.0.1", sid: str | None = None):
    form = {"From": number, "To": "10086", "Body": text, "MessageSid": sid or f"SMflood{next(_sids):024d}"}
    headers = {"X-Twilio-Signature": sign(SMS_PATH, form)}
    return client.post(SMS_PATH, data=form, headers=headers, environ_base={"REMOTE_ADDR": ip})


def answers(response) -> list[str]:
    assert response.status_code == 200, response.data
    return twiml_messages(response.data)


def helped(response) -> bool:
    """The HELP reply, in whichever language the subscriber gets."""
    [reply] = answers(response)
    return render("zh", "help") in reply or render("en", "help") in reply


def test_a_number_over_its_limit_gets_one_notice_then_silence_and_nothing_is_processed(test_config, redis) -> None:
    app = flood_app(test_config, TDBOT_RATE_LIMIT_SMS="5/minute")
    client = app.test_client()
    for _ in range(5):
        assert helped(texting(client, NUMBER))
    before = stored(redis)

    flood = [answers(texting(client, NUMBER, text)) for text in ("HELP", "TD", "TD ALL", "Y", "0000", "STOP")]

    assert flood[0] == [render("en", "flooded")]  # in the language of the message, as "busy" is
    assert flood[1:] == [[]] * 5, "silence after the one notice, not a reply per message"
    assert stored(redis) == before, "messages over the limit are not processed"
    assert helped(texting(client, OTHER)), "other numbers are not affected"


def test_a_number_is_served_again_once_its_window_has_passed(test_config) -> None:
    client = flood_app(test_config, TDBOT_RATE_LIMIT_SMS="2/second").test_client()
    assert [len(answers(texting(client, NUMBER))) for _ in range(4)] == [1, 1, 1, 0]  # 2 served, a notice, silence
    time.sleep(1.1)
    assert helped(texting(client, NUMBER))


def test_forged_messages_do_not_use_up_a_subscribers_allowance(test_config) -> None:
    app = flood_app(test_config, TDBOT_RATE_LIMIT_SMS="3/minute")
    client = app.test_client()
    forged = {"From": NUMBER, "To": "10086", "Body": "HELP", "MessageSid": "SMforged"}
    for _ in range(10):
        assert client.post(SMS_PATH, data=forged, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}).status_code == 403
    assert all(helped(texting(client, NUMBER)) for _ in range(3))


def test_one_ip_over_its_limit_gets_429_on_the_api_and_other_ips_do_not(test_config) -> None:
    client = flood_app(test_config, TDBOT_RATE_LIMIT_IP="3/minute").test_client()
    path = f"/api/v1/subscribers/{NUMBER}"
    assert [client.get(path, headers=api_headers()).status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = client.get(path, headers=api_headers())
    assert refused.status_code == 429 and "error" in refused.get_json()
    assert client.get(path, headers=api_headers(), environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200


def test_signed_webhooks_are_never_capped_per_ip_since_twilio_shares_its_addresses(test_config) -> None:
    client = flood_app(test_config, TDBOT_RATE_LIMIT_IP="3/minute").test_client()
    numbers = [NUMBER, OTHER, "+8618900000000"] * 3
    assert all(answers(texting(client, n)) for n in numbers), "9 subscribers' messages from one IP over 3/minute"
    receipt = {"MessageSid": "SMunknown", "MessageStatus": "delivered"}
    status = client.post("/webhooks/twilio/status", data=receipt, headers={"X-Twilio-Signature": sign(STATUS, receipt)})
    assert status.status_code == 204


def test_requests_failing_their_signature_are_capped_per_ip_and_stop_no_signed_ones(test_config, redis) -> None:
    client = flood_app(test_config, TDBOT_RATE_LIMIT_IP="3/minute").test_client()
    forged = {"From": NUMBER, "To": "10086", "Body": "HELP", "MessageSid": "SMforged"}
    before = stored(redis)
    codes = [client.post(path, data=forged, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}).status_code
             for path in (SMS_PATH, STATUS, SMS_PATH, STATUS)]
    assert codes == [403, 403, 403, 429]
    assert stored(redis) == before
    assert client.post(SMS_PATH, data=forged, environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403
    assert helped(texting(client, NUMBER)), "a forger sharing Twilio's address does not lock Twilio out"


@pytest.mark.parametrize(("hops", "counted_apart"), [(0, False), (1, True)])
def test_the_client_ip_comes_from_x_forwarded_for_only_behind_the_configured_proxies(
    test_config, hops: int, counted_apart: bool
) -> None:
    client = flood_app(test_config, TDBOT_RATE_LIMIT_IP="2/minute", TDBOT_PROXY_HOPS=str(hops)).test_client()
    path = f"/api/v1/subscribers/{NUMBER}"

    def get(client_ip: str) -> int:
        return client.get(path, headers={**api_headers(), "X-Forwarded-For": client_ip}).status_code

    assert [get("203.0.113.1"), get("203.0.113.1")] == [200, 200]
    # Without a proxy in front the header is the client's own word: it must not buy a fresh allowance.
    assert get("203.0.113.2") == (200 if counted_apart else 429)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_health_probes_are_never_throttled(test_config, path: str) -> None:
    client = flood_app(test_config, TDBOT_RATE_LIMIT_IP="2/minute").test_client()
    assert {client.get(path).status_code for _ in range(5)} == {200}


def test_limits_default_to_generous_values(test_config) -> None:
    app = create_app({**test_config, "RATELIMIT_ENABLED": True})
    limits = app.extensions["tdbot.limits"]
    assert (limits.per_ip.amount, limits.per_ip.get_expiry()) == (300, 1)
    assert (limits.per_number.amount, limits.per_number.get_expiry()) == (20, 60)


def test_a_retried_message_is_answered_from_its_record_and_counts_nothing_even_over_the_limit(test_config) -> None:
    client = flood_app(test_config, TDBOT_RATE_LIMIT_SMS="3/minute").test_client()
    sid = "SMfloodretried000000000000000001"
    answered = answers(texting(client, NUMBER, "0000", sid=sid))
    assert [answers(texting(client, NUMBER, "0000", sid=sid)) for _ in range(3)] == [answered] * 3
    assert helped(texting(client, NUMBER)) and helped(texting(client, NUMBER)), "retries used none of the allowance"
    assert answers(texting(client, NUMBER)) == [render("en", "flooded")]

    assert [answers(texting(client, NUMBER, "0000", sid=sid)) for _ in range(3)] == [answered] * 3


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(allowance=st.integers(1, 4), copies=st.lists(st.integers(0, 6), min_size=1, max_size=16))
def test_every_copy_of_a_message_gets_its_answer_and_the_limit_counts_messages(
    test_config, redis, allowance: int, copies: list[int]
) -> None:
    """Webhook retries in any order: the n-th distinct message of a window is answered while n is within the
    allowance, the first over it gets the notice, the rest silence; every copy gets what its first got."""
    redis.flushdb()
    client = flood_app(test_config, TDBOT_RATE_LIMIT_SMS=f"{allowance}/minute").test_client()
    first: dict[int, list[str]] = {}
    for n in copies:
        reply = answers(texting(client, NUMBER, sid=f"SMcopy{n:026d}"))
        assert reply == first.setdefault(n, reply)
    for place, reply in enumerate(first.values(), start=1):
        if place <= allowance:
            assert reply and reply != [render("en", "flooded")]
        else:
            assert reply == ([render("en", "flooded")] if place == allowance + 1 else [])
