"""Kannel's MO and delivery report URLs through the Flask test client: token, parsing, replies as messages, dedupe,
flood quota, Redis away, and reports that never move a message backwards. (The same through a real Kannel:
tests/e2e/test_kannel_journey.py.)"""

from __future__ import annotations

import hmac
import time
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from dialogs.effects import CONFIRMATION, NOTICE
from dialogs.messages import render
from dialogs.reasons import CONFIRMATION_UNDELIVERED
from gateway import create_app
from gateway.delivery import outbound
from gateway.runtime import OUTBOUND_QUEUE
from gateway.state import audit, escalations, store
from gateway.state.keys import MESSAGE, PENDING
from gateway.state.messages import DELIVERED, FAILED, QUEUED, REPLY, SENT, UNDELIVERED, OutboundMessage
from tests.support.delivery import MSISDN, queue_message, stored
from tests.support.kannel import TOKEN, kannel_settings
from tests.support.languages import count_guesses
from tests.support.metrics import receipts_counted
from tests.support.phone import BASE_URL, Phone, seed_demo
from tests.support.processes import free_port
from tests.support.redis_proxy import FreezingProxy
from tests.support.scheduled import scheduled_jobs

MO_PATH, DLR_PATH = "/webhooks/kannel/mo", "/webhooks/kannel/dlr"
ROUTE = "kannel-cmcc"
STRANGER = "+8613900000000"


@pytest.fixture
def settings(test_config: dict) -> dict:
    # Nothing listens at sendsms here: these tests stop before anything is sent.
    return {**test_config, **kannel_settings(f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms", BASE_URL)}


@pytest.fixture
def app(settings: dict):
    app = create_app(settings)
    seed_demo(app)
    return app


@pytest.fixture
def runtime(app):
    return app.extensions["tdbot"]


def query(text: str = "TD", id: str = "k-1", sender: str = "13800138000", token: str = TOKEN, **extra: str) -> str:
    fields = {"token": token, "from": sender, "to": "10086", "text": text, "bytes": text, "coding": "0",
              "charset": "UTF-8", "id": id, "smsc": "fake", **extra}
    return urlencode({k: v for k, v in fields.items() if v is not None})


def mo(client, text: str = "TD", id: str = "k-1", **extra: str):
    return client.get(f"{MO_PATH}?{query(text, id, **extra)}")


def messages(runtime, msisdn: str = MSISDN) -> list[OutboundMessage]:
    keys = runtime.redis.scan_iter(match=runtime.keys.of(msisdn, MESSAGE, "*"))
    return [runtime.store.load_message(msisdn, key.decode().rsplit(":", 1)[1]) for key in keys]


def snapshot(redis) -> dict[bytes, bytes]:
    return {key: redis.dump(key) for key in sorted(redis.scan_iter(count=1000))}


# --- MO ----------------------------------------------------------------------------------------------------------


def test_an_mo_is_answered_empty_and_its_reply_goes_out_as_a_message_back_through_kannel(client, runtime) -> None:
    response = mo(client, "TD")
    assert (response.status_code, response.data, response.mimetype) == (200, b"", "text/plain")
    [reply] = messages(runtime)
    assert (reply.kind, reply.route, reply.status) == (REPLY, ROUTE, QUEUED)
    assert "1.视频会员" in reply.text
    assert runtime.queue("outbound").count == 1
    [entry] = runtime.store.conversation(MSISDN)
    assert (entry["channel"], entry["in"], entry["reply"]) == ("kannel", "TD", reply.text)
    assert entry["sent"] == [{"id": reply.id, "kind": REPLY, "text": reply.text}]  # the audit can follow it out


def test_the_reply_and_what_the_step_sends_go_the_same_way(client, runtime) -> None:
    for n, text in enumerate(("TD", "1", "Y")):
        mo(client, text, id=f"k-{n}")
    sent = messages(runtime)
    assert sorted(m.kind for m in sent) == sorted([REPLY, REPLY, REPLY, "code"])
    assert {m.route for m in sent} == {ROUTE}


def test_the_channel_a_subscriber_last_texted_on_is_recorded_with_the_step(client, app, runtime) -> None:
    mo(client, "0000")
    assert runtime.store.load_subscriber(MSISDN).sms_channel == "kannel"
    Phone(client, app, MSISDN).send("0000")
    assert runtime.store.load_subscriber(MSISDN).sms_channel == "twilio"


def test_a_retry_with_the_same_id_answers_the_same_and_changes_nothing(client, runtime, redis) -> None:
    mo(client, "TD", id="be53a01a-e715-4c91-b2a8-60aedc4dbd93")
    before = snapshot(redis)
    again = mo(client, "TD", id="be53a01a-e715-4c91-b2a8-60aedc4dbd93")
    assert (again.status_code, again.data) == (200, b"")
    assert snapshot(redis) == before


def test_without_an_id_the_same_text_is_one_message_for_a_few_seconds_only(client, runtime, redis, monkeypatch):
    monkeypatch.setattr(store, "CONTENT_ID_TTL", 1)  # seconds, as in production, but fewer
    mo(client, "0000", id="")
    before = snapshot(redis)
    mo(client, "0000", id="")
    assert snapshot(redis) == before
    time.sleep(1.1)
    mo(client, "0000", id="")
    assert len(runtime.store.conversation(MSISDN)) == 2


def test_a_ucs2_mo_is_read_from_its_utf16_bytes(client, runtime) -> None:
    raw = "退订".encode("utf-16-be")
    fields = {"token": TOKEN, "from": "8613800138000", "text": raw, "bytes": raw, "coding": "2", "charset": "UTF-16BE"}
    response = client.get(f"{MO_PATH}?{urlencode(fields)}")
    assert response.status_code == 200
    assert runtime.store.conversation(MSISDN)[0]["in"] == "退订"


def test_smsbox_may_post_as_well(client, runtime) -> None:
    assert client.post(f"{MO_PATH}?{query('0000')}").status_code == 200
    assert runtime.store.conversation(MSISDN)[0]["in"] == "0000"


@pytest.mark.parametrize(("change", "reason"), [
    ({"sender": None}, b"from is required"),
    ({"sender": "tdbot"}, b"from is not a phone number"),
    ({"coding": "1"}, b"binary"),
    ({"charset": "NO-SUCH-CHARSET"}, b"unknown charset"),
    # UTF-7 decodes to half a surrogate pair, which no UTF-8 (Redis, JSON, a reply) can carry: it was a 500.
    ({"text": "+2D0-", "charset": "UTF-7"}, b"not UTF-7"),
    ({"text": "+2D0-", "charset": "UTF-7", "id": ""}, b"not UTF-7"),
])
def test_an_mo_kannel_would_not_send_gets_400_and_nothing_is_stored(client, redis, change, reason) -> None:
    before = snapshot(redis)
    response = client.get(f"{MO_PATH}?{query(**change)}")
    assert response.status_code == 400 and reason in response.data
    assert snapshot(redis) == before


@pytest.mark.parametrize("path", [MO_PATH, DLR_PATH])
@pytest.mark.parametrize("token", [None, "", "wrong-token-0123456789", TOKEN.upper(), TOKEN + "x"])
def test_a_wrong_or_missing_token_is_refused_and_changes_nothing(client, redis, path, token) -> None:
    before = snapshot(redis)
    response = client.get(f"{path}?{query(token=token)}&type=1&m=x")
    assert response.status_code == 403
    assert snapshot(redis) == before


def test_the_token_is_compared_in_constant_time(client, monkeypatch) -> None:
    compared, compare = [], hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or compare(a, b))
    mo(client, token="a-guess-at-the-token-000")
    assert any(TOKEN.encode() in pair for pair in compared)


def test_a_stranger_gets_its_reply_as_a_message_kept_only_a_day(client, runtime, redis) -> None:
    assert mo(client, "TD", sender="13900000000").status_code == 200
    [reply] = messages(runtime, STRANGER)
    assert reply.text == render("zh", "unknown_sender") and reply.route == "kannel-cmcc"  # a Chinese number
    assert 0 < redis.ttl(runtime.keys.message(STRANGER, reply.id)) <= 86400
    assert runtime.store.load_subscriber(STRANGER) is None and runtime.store.conversation(STRANGER) == []


@pytest.mark.parametrize("id", ["k-1", ""])  # smsbox's %I; a link that gives none: the number and text, for seconds
def test_a_stranger_s_retried_mo_sends_one_reply(client, runtime, redis, id) -> None:
    assert [mo(client, "TD", id=id, sender="13900000000").status_code for _ in range(3)] == [200] * 3
    [reply] = messages(runtime, STRANGER)
    assert runtime.queue("outbound").count == 1
    [record] = redis.keys(runtime.keys.inbound(STRANGER, "*"))
    assert 0 < redis.ttl(record) <= (86400 if id else store.CONTENT_ID_TTL)  # a stranger's keys never stay
    assert redis.hlen(runtime.keys.of(STRANGER, PENDING)) == 0  # its after-commit work done


def test_a_language_is_guessed_only_for_a_notice_the_channel_sends_itself(client, runtime, monkeypatch) -> None:
    guessed = count_guesses(monkeypatch)
    assert mo(client, "TD", "k-guess-1").status_code == 200
    assert guessed == []
    assert mo(client, "TD" * 801, "k-guess-2").status_code == 200
    assert guessed == ["+8613800138000"]


def test_a_message_too_long_gets_a_notice_and_no_step(client, runtime) -> None:
    assert mo(client, "退" * 1601).status_code == 200
    assert mo(client, "退" * 1601).status_code == 200  # smsbox's retry: the same notice, not a second one
    [notice] = messages(runtime)
    assert (notice.kind, notice.text, notice.route) == (NOTICE, render("zh", "too_long"), ROUTE)
    assert runtime.store.conversation(MSISDN) == []


def test_a_notice_stored_while_the_queues_were_away_goes_out_on_smsbox_retry(settings, client, runtime) -> None:
    """The notice was stored, then its job could not be queued (RQ's Redis away): smsbox is asked to come back, and
    its retry queues the notice stored then. It found the notice stored and queued nothing: it was never sent."""
    away = create_app({**settings, "RQ_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}).test_client()
    assert mo(away, "退" * 1601).status_code == 503
    [notice] = messages(runtime)
    assert runtime.queue(OUTBOUND_QUEUE).count == 0
    assert mo(client, "退" * 1601).status_code == 200
    assert runtime.queue(OUTBOUND_QUEUE).job_ids == [f"msg-{notice.id}"]
    assert messages(runtime) == [notice]


def test_a_number_over_its_quota_gets_one_notice_by_message_then_silence(settings) -> None:
    app = create_app({**settings, "RATELIMIT_ENABLED": True, "TDBOT_RATE_LIMIT_SMS": "2/minute"})
    seed_demo(app)
    client, runtime = app.test_client(), app.extensions["tdbot"]
    assert [mo(client, "HELP", id=f"f-{n}").status_code for n in range(5)] == [200] * 5
    mo(client, "HELP", id="f-2")  # smsbox retrying the first message over the limit: no second notice
    notices = [m for m in messages(runtime) if m.kind == NOTICE]
    assert [m.text for m in notices] == [render("en", "flooded")]
    assert len(runtime.store.conversation(MSISDN)) == 2


def test_while_redis_is_away_smsbox_is_asked_to_come_back_later(settings) -> None:
    client = create_app({**settings, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}).test_client()
    assert mo(client, "TD").status_code == 503
    assert client.get(f"{DLR_PATH}?token={TOKEN}&type=1&m=abc&to=%2B8613800138000").status_code == 503


# --- delivery reports --------------------------------------------------------------------------------------------


def sent(runtime, kind: str = NOTICE) -> OutboundMessage:
    message = queue_message(runtime, "您的视频会员已退订。", kind, route=ROUTE)
    outbound.advance(runtime, message, SENT, provider_sid=f"kannel-{message.id}")
    return message


def report(client, message: OutboundMessage, kind: int, reply: str = ""):
    fields = {"token": TOKEN, "m": message.id, "to": message.msisdn, "type": str(kind), "reply": reply}
    return client.get(f"{DLR_PATH}?{urlencode(fields)}")


@pytest.mark.parametrize(("reports", "final"), [
    ([8, 1], DELIVERED),
    ([1, 8], DELIVERED),  # Kannel sends these two in either order
    ([4, 8, 1], DELIVERED),
    ([8, 8, 1, 1], DELIVERED),
    ([1, 2, 16], DELIVERED),
    ([2, 1, 8], DELIVERED),  # a late delivery report: the phone has it (docs/delivery.md)
    ([8, 2], UNDELIVERED),
    ([8, 16], FAILED),
    ([4], SENT),
])
def test_reports_in_any_order_never_move_a_message_backwards(client, runtime, reports, final) -> None:
    message = sent(runtime)
    assert all(report(client, message, kind).status_code == 200 for kind in reports)
    assert stored(runtime, message).status == final


@pytest.mark.parametrize(("reports", "counted"), [
    ([8, 8, 1, 1], {"delivered": 1}),
    ([2, 2, 1, 8], {"undelivered": 1, "delivered": 1}),
    ([16, 2], {"failed": 1}),
    ([4, 8], {}),  # "sent" is what the worker counts when sendsms takes it, not a receipt
])
def test_reports_are_counted_in_metrics_once_per_status_they_move_a_message_to(client, runtime, reports, counted):
    message, before = sent(runtime), receipts_counted(client, "kannel")
    for kind in reports:
        report(client, message, kind)
    after = receipts_counted(client, "kannel")
    assert {status: after[status] - before[status] for status in after if after[status] != before[status]} == counted


def test_a_report_that_beats_the_worker_is_not_counted_as_a_send(client, runtime) -> None:
    """The worker counts the send when sendsms takes the message: a report saying the SMSC has it is not another."""
    message, before = queue_message(runtime, route=ROUTE), receipts_counted(client, "kannel")
    report(client, message, 8)
    assert stored(runtime, message).status == SENT and receipts_counted(client, "kannel") == before


def test_an_undelivered_confirmation_is_sent_again_then_a_person_takes_over(client, runtime) -> None:
    latest = sent(runtime, CONFIRMATION)
    for attempt in range(len(outbound.RESEND_DELAYS)):
        report(client, latest, 2, "NACK/0x00000045/Submit failed")
        assert scheduled_jobs(runtime) == attempt + 1 and runtime.store.escalations() == []
        [latest] = [m for m in messages(runtime) if m.resends == attempt + 1]
        assert (latest.kind, latest.route, latest.status) == (CONFIRMATION, ROUTE, QUEUED)
        outbound.advance(runtime, latest, SENT)
    report(client, latest, 16)
    assert runtime.store.escalations() == [(MSISDN, CONFIRMATION_UNDELIVERED)]
    assert stored(runtime, latest).error.startswith("kannel 16")


@pytest.fixture
def proxy(redis_url: str):
    between = FreezingProxy(redis_url)
    yield between
    between.close()


@pytest.mark.parametrize("resends", [0, len(outbound.RESEND_DELAYS)])  # a resend follows, or a person is told
def test_an_undelivered_report_cut_short_and_retried_is_followed_up_once(settings, proxy, resends) -> None:
    app = create_app({**settings, "REDIS_URL": proxy.url})
    seed_demo(app)
    client, runtime = app.test_client(), app.extensions["tdbot"]
    message = sent(runtime, CONFIRMATION)
    outbound._record(runtime, message, resends=resends)
    message = stored(runtime, message)

    cut = proxy.cut_after(b"EXEC", lambda: report(client, message, 2))
    assert cut.status_code == 503  # smsbox asks again
    assert stored(runtime, message).status == UNDELIVERED
    assert [report(client, message, 2).status_code for _ in range(3)] == [200] * 3  # its retries, and repeats
    again = [m for m in messages(runtime) if m.repeats == message.id]
    told = runtime.store.escalations()
    if resends:
        assert again == [] and told == [(MSISDN, outbound.CONFIRMATION_UNDELIVERED)]
        escalations.resolve(runtime.redis, runtime.keys, MSISDN, outbound.CONFIRMATION_UNDELIVERED, "ops", "rang",
                            runtime.clock(), 180)
        assert report(client, message, 2).status_code == 200  # a repeat days later: nobody is told twice
        assert runtime.store.escalations() == []
    else:
        assert [(m.resends, m.status) for m in again] == [(1, QUEUED)] and told == []
        assert scheduled_jobs(runtime) == 1


FINAL_REPORTS = (1, 2, 16)


@examples(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reports=st.lists(st.sampled_from([1, 2, 4, 8, 16]), min_size=1, max_size=8),
       resends=st.sampled_from([0, len(outbound.RESEND_DELAYS)]))
def test_however_reports_repeat_a_copy_is_followed_up_at_most_once(client, runtime, reports, resends) -> None:
    message = sent(runtime, CONFIRMATION)
    outbound._record(runtime, message, resends=resends)
    assert all(report(client, stored(runtime, message), kind).status_code == 200 for kind in reports)
    first_final = next((kind for kind in reports if kind in FINAL_REPORTS), None)
    followed = first_final in (2, 16)  # reported failed before it was reported delivered
    again = [m for m in messages(runtime) if m.repeats == message.id]
    told = [e for e in audit.read_all(runtime.redis, runtime.keys.audit(MSISDN))
            if e["kind"] == audit.ESCALATED and e["context"]["message"] == message.id]
    if resends:
        assert (len(again), len(told), stored(runtime, message).told) == (0, int(followed), int(followed))
    else:
        assert (len(again), told) == (int(followed), [])
        scheduled = runtime.queue("outbound").scheduled_job_registry.get_job_ids()
        assert [f"msg-{m.id}" in scheduled for m in again] == [True] * len(again)


def test_a_report_for_a_message_of_nobody_changes_nothing(client, runtime, redis) -> None:
    message = sent(runtime)
    before = snapshot(redis)
    other = OutboundMessage("f" * 32, MSISDN, "", NOTICE, 0)
    assert report(client, other, 1).status_code == 200
    assert report(client, OutboundMessage(message.id, STRANGER, "", NOTICE, 0), 1).status_code == 200
    assert snapshot(redis) == before


@pytest.mark.parametrize("fields", [{"type": "3"}, {"type": "x"}, {"m": ""}, {"to": "nobody"}])
def test_a_report_kannel_would_not_send_gets_400(client, runtime, fields) -> None:
    message = sent(runtime)
    args = {"token": TOKEN, "m": message.id, "to": message.msisdn, "type": "1", **fields}
    response = client.get(f"{DLR_PATH}?{urlencode(args)}")
    assert response.status_code == 400
    assert stored(runtime, message).status == SENT
