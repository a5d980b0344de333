"""The Twilio SMS webhook's edges: signatures, TwiML, bad forms, Redis down, status callbacks."""

from __future__ import annotations

import time
from xml.etree import ElementTree

import pytest

from dialogs import budgets
from gateway import create_app
from gateway.state import store
from tests.support.languages import count_guesses
from tests.support.phone import AUTH_TOKEN, BASE_URL, SMS_PATH, Phone, seed_demo, sign, twiml_messages

STATUS_PATH = "/webhooks/twilio/status"
NUMBER = "+8613800138000"


def form(body: str = "TD", sid: str = "SM1", **extra: str) -> dict[str, str]:
    return {"From": NUMBER, "To": "10086", "Body": body, "MessageSid": sid, **extra}


def keys(redis) -> set[bytes]:
    return set(redis.scan_iter(count=1000))


@pytest.fixture
def seeded(app):
    seed_demo(app)
    return app


def post_signed(client, data: dict[str, str], path: str = SMS_PATH, **sign_kw: str):
    return client.post(path, data=data, headers={"X-Twilio-Signature": sign(path, data, **sign_kw)})


def replies(response) -> list[str]:
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/xml"
    return twiml_messages(response.data)


# --- signatures -------------------------------------------------------------------------------------------

BAD_SIGNATURES = {
    "unsigned": lambda data: {},
    "empty signature": lambda data: {"X-Twilio-Signature": ""},
    "garbage signature": lambda data: {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
    "another token": lambda data: {"X-Twilio-Signature": sign(SMS_PATH, data, token="someone-else")},
    "another url": lambda data: {"X-Twilio-Signature": sign("/webhooks/twilio/other", data)},
    "another host": lambda data: {"X-Twilio-Signature": sign(SMS_PATH, data, base="https://evil.example.com")},
    "another body": lambda data: {"X-Twilio-Signature": sign(SMS_PATH, {**data, "Body": "TD ALL"})},
    "a field added": lambda data: {"X-Twilio-Signature": sign(SMS_PATH, {k: v for k, v in data.items() if k != "To"})},
}


@pytest.mark.parametrize("how", sorted(BAD_SIGNATURES))
def test_bad_signature_is_refused_and_nothing_stored(client, seeded, redis, how: str) -> None:
    data = form()
    before = keys(redis)
    response = client.post(SMS_PATH, data=data, headers=BAD_SIGNATURES[how](data))
    assert response.status_code == 403
    assert keys(redis) == before


def test_signature_is_checked_against_public_base_url(client, seeded) -> None:
    data = form()
    as_seen_locally = {"X-Twilio-Signature": sign(SMS_PATH, data, base="http://localhost")}
    assert client.post(SMS_PATH, data=data, headers=as_seen_locally).status_code == 403
    assert post_signed(client, data).status_code == 200


def test_query_string_is_part_of_the_signed_url(client, seeded) -> None:
    data = form()
    path = SMS_PATH + "?route=a"
    assert client.post(path, data=data, headers={"X-Twilio-Signature": sign(path, data)}).status_code == 200
    assert client.post(path, data=data, headers={"X-Twilio-Signature": sign(SMS_PATH, data)}).status_code == 403


def test_without_public_base_url_the_request_url_is_signed(test_config) -> None:
    app = create_app({**test_config, "PUBLIC_BASE_URL": None})
    seed_demo(app)
    client, data = app.test_client(), form()
    assert post_signed(client, data, base="http://localhost").status_code == 200
    assert post_signed(client, data).status_code == 403


def test_without_an_auth_token_every_request_is_refused(test_config) -> None:
    client, data = create_app({**test_config, "TWILIO_AUTH_TOKEN": None}).test_client(), form()
    assert post_signed(client, data).status_code == 403


# --- TwiML ------------------------------------------------------------------------------------------------


def test_reply_is_twiml_with_one_message(client, seeded) -> None:
    response = post_signed(client, form("TD"))
    root = ElementTree.fromstring(response.data)
    assert root.tag == "Response" and [m.tag for m in root] == ["Message"]
    assert "视频会员" in replies(response)[0]


@pytest.mark.parametrize("hostile", ["<Response>&", "</Message><Message>hi", "&amp; \"'", "]]>"])
def test_text_echoed_back_is_escaped(client, seeded, hostile: str) -> None:
    response = post_signed(client, form(f"TD {hostile}"))
    [reply] = replies(response)  # still one well-formed message
    assert hostile.upper()[:budgets.QUERY_CHARS] in reply


def test_characters_xml_cannot_carry_do_not_break_the_twiml(client, seeded) -> None:
    [reply] = replies(post_signed(client, form("TD \ufffe\x01\x1b彩铃")))
    assert "彩铃" in reply


# --- bad forms --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "word"), [("TD" * 801, "too long"), ("退订" * 801, "过长")])
def test_oversized_body_gets_a_polite_reply_and_nothing_stored(client, seeded, redis, body: str, word: str) -> None:
    before = keys(redis)
    [reply] = replies(post_signed(client, form(body)))
    assert word in reply
    assert keys(redis) == before


def test_a_language_is_guessed_only_for_a_notice_the_channel_answers_itself(client, seeded, monkeypatch) -> None:
    """A step answers in the subscriber's language: the webhook guesses one only for its own notices."""
    guessed = count_guesses(monkeypatch)
    assert replies(post_signed(client, form("TD", "SM-guess-1")))
    assert guessed == []
    assert "too long" in replies(post_signed(client, form("TD" * 801, "SM-guess-2")))[0]
    assert guessed == [NUMBER]


def test_a_body_of_exactly_1600_characters_is_handled(client, seeded) -> None:
    [reply] = replies(post_signed(client, form("A" * 1600)))
    assert "not understood" in reply or "未识别" in reply


def test_missing_from_gets_a_clear_reply_and_nothing_stored(client, seeded, redis) -> None:
    data = {k: v for k, v in form().items() if k != "From"}
    before = keys(redis)
    [reply] = replies(post_signed(client, data))
    assert "no monthly packages" in reply
    assert keys(redis) == before


@pytest.mark.parametrize("sender", ["not-a-number", "+86123", "", "+1"])
def test_invalid_from_gets_a_clear_reply_and_nothing_stored(client, seeded, redis, sender: str) -> None:
    before = keys(redis)
    [reply] = replies(post_signed(client, form(From=sender)))
    assert "no monthly packages" in reply
    assert keys(redis) == before


def test_missing_body_is_an_empty_message(client, seeded) -> None:
    data = {k: v for k, v in form().items() if k != "Body"}
    [reply] = replies(post_signed(client, data))
    assert "未识别" in reply


def test_missing_message_sid_is_deduplicated_by_content(client, seeded) -> None:
    data = {k: v for k, v in form("TD").items() if k != "MessageSid"}
    first = replies(post_signed(client, data))
    assert replies(post_signed(client, data)) == first
    assert len(seeded.extensions["tdbot"].store.conversation(NUMBER)) == 1


def without_sid(body: str) -> dict[str, str]:
    return {k: v for k, v in form(body).items() if k != "MessageSid"}


def test_the_same_text_without_a_sid_is_a_new_message_once_a_few_seconds_have_passed(
    client, seeded, clock, monkeypatch
) -> None:
    monkeypatch.setattr(store, "CONTENT_ID_TTL", 1, raising=False)  # seconds, as in production, but fewer
    runtime = seeded.extensions["tdbot"]
    [first_quote] = [replies(post_signed(client, without_sid(body))) for body in ("TD", "1", "N")][1]
    assert runtime.store.load_dialog(NUMBER).stage == "idle"

    time.sleep(1.1)
    clock.advance(days=3)
    replies(post_signed(client, without_sid("TD")))
    [quote] = replies(post_signed(client, without_sid("1")))

    assert runtime.store.load_dialog(NUMBER).stage == "confirming", "the quote was answered from a stale record"
    assert quote != first_quote, "three days later the deadline is three days later"
    assert len(runtime.store.conversation(NUMBER)) == 5


def test_a_content_id_is_remembered_for_seconds_and_a_message_sid_for_days(client, seeded, redis) -> None:
    post_signed(client, without_sid("TD"))
    post_signed(client, form("TD", sid="SMdays"))
    runtime = seeded.extensions["tdbot"]
    [by_content] = [k for k in redis.scan_iter(match=runtime.keys.inbound(NUMBER, "*")) if not k.endswith(b"SMdays")]
    assert 0 < redis.ttl(by_content) <= 60
    assert redis.ttl(runtime.keys.inbound(NUMBER, "SMdays")) > 86400


def test_a_national_number_is_the_same_subscriber(client, seeded) -> None:
    [reply] = replies(post_signed(client, form(From="13800138000")))
    assert "视频会员" in reply


# --- Redis down -------------------------------------------------------------------------------------------


def test_redis_down_gets_a_polite_busy_reply(test_config) -> None:
    app = create_app({**test_config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    client = app.test_client()
    for body, word in (("HELP", "busy"), ("TD", "繁忙"), ("退订", "繁忙")):  # the words, else the number's country
        [reply] = replies(post_signed(client, form(body)))
        assert word in reply


def test_redis_down_status_callback_asks_for_a_retry(test_config) -> None:
    client = create_app({**test_config, "REDIS_URL": "redis://127.0.0.1:1/0"}).test_client()
    data = {"MessageSid": "SMx", "MessageStatus": "delivered"}
    assert post_signed(client, data, path=STATUS_PATH).status_code == 503


# --- status callbacks -------------------------------------------------------------------------------------


def test_unsigned_status_callback_is_refused(client, seeded) -> None:
    data = {"MessageSid": "SMx", "MessageStatus": "delivered"}
    assert client.post(STATUS_PATH, data=data).status_code == 403
    assert client.post(STATUS_PATH, data=data, headers={"X-Twilio-Signature": sign(SMS_PATH, data)}).status_code \
        == 403


def test_status_callback_without_fields_is_a_clear_400(client, seeded) -> None:
    response = post_signed(client, {"MessageSid": "SMx"}, path=STATUS_PATH)
    assert response.status_code == 400
    assert b"MessageStatus" in response.data


def test_status_for_an_unknown_message_is_accepted_and_ignored(client, seeded, redis) -> None:
    assert post_signed(client, {"MessageSid": "SMnobody", "MessageStatus": "delivered"}, path=STATUS_PATH) \
        .status_code in (200, 204)


def test_signed_status_callback_updates_the_message(client, seeded) -> None:
    phone = Phone(client, seeded, NUMBER)
    for text in ("TD", "1", "Y"):
        phone.send(text)
    phone.deliver()
    store = seeded.extensions["tdbot"].store
    [message] = _messages(seeded, NUMBER)
    assert message.status == "sent" and message.provider_sid
    response = post_signed(client, {"MessageSid": message.provider_sid, "MessageStatus": "delivered",
                                    "To": NUMBER}, path=STATUS_PATH)
    assert response.status_code in (200, 204)
    assert store.load_message(NUMBER, message.id).status == "delivered"


def _messages(app, number: str):
    runtime = app.extensions["tdbot"]
    prefix = runtime.keys.message(number, "")
    ids = [k.decode()[len(prefix):] for k in runtime.redis.scan_iter(match=prefix + "*")]
    return [runtime.store.load_message(number, i) for i in ids]


def test_auth_token_from_config_is_what_signs(client, seeded) -> None:
    assert post_signed(client, form(), token=AUTH_TOKEN, base=BASE_URL).status_code == 200
