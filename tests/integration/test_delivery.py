"""Delivery receipts on POST /webhooks/twilio/status, and what an undelivered confirmation leads to."""

from __future__ import annotations

import pytest

from dialogs.effects import CODE, CONFIRMATION, NOTICE
from dialogs.reasons import CONFIRMATION_UNDELIVERED
from gateway import create_app
from gateway.delivery import outbound
from gateway.state import escalations, follow_ups
from gateway.state.messages import DELIVERED, FAILED, SENT, UNDELIVERED
from tests.support.delivery import MSISDN, queue_message, stored
from tests.support.metrics import receipts_counted
from tests.support.phone import Phone, seed_demo
from tests.support.redis_proxy import FreezingProxy
from tests.support.scheduled import run_scheduled, scheduled_jobs

STATUS_PATH = "/webhooks/twilio/status"
ESCALATED = (MSISDN, CONFIRMATION_UNDELIVERED)


@pytest.fixture
def phone(twilio_phone) -> Phone:
    return twilio_phone


def sent_message(phone: Phone, fake_twilio, kind: str = NOTICE, text: str = "您的视频会员已退订。"):
    message = queue_message(phone.runtime, text, kind)
    phone.deliver()
    return message, fake_twilio.to(MSISDN)[-1]


@pytest.mark.parametrize(
    ("receipts", "final"),
    [
        (["queued", "sent", "delivered"], DELIVERED),
        (["delivered", "sent", "queued"], DELIVERED),
        (["sent", "queued"], SENT),
        (["sent", "sent", "delivered", "delivered"], DELIVERED),
        (["undelivered", "delivered", "sent"], DELIVERED),  # a late delivery report: the phone has it
        (["failed", "delivered"], DELIVERED),
        (["delivered", "undelivered"], DELIVERED),
        (["delivered", "failed"], DELIVERED),
        (["failed", "undelivered"], FAILED),
        (["sending", "read"], DELIVERED),
    ],
)
def test_receipts_in_any_order_never_move_a_message_backwards(phone, fake_twilio, receipts, final):
    message, sent = sent_message(phone, fake_twilio)
    fake_twilio.progress(sent, *receipts, client=phone.client)
    assert stored(phone.runtime, message).status == final


@pytest.mark.parametrize(("receipts", "counted"), [
    (["sent", "delivered", "delivered", "read"], {"delivered": 1}),
    (["undelivered", "undelivered", "delivered"], {"undelivered": 1, "delivered": 1}),
    (["failed", "undelivered"], {"failed": 1}),
    (["queued", "sending", "sent"], {}),  # "sent" is what the worker counts when Twilio takes it, not a receipt
])
def test_receipts_are_counted_in_metrics_once_per_status_they_move_a_message_to(phone, fake_twilio, receipts, counted):
    _, sent = sent_message(phone, fake_twilio)
    before = receipts_counted(phone.client, "twilio")
    fake_twilio.progress(sent, *receipts, client=phone.client)
    after = receipts_counted(phone.client, "twilio")
    assert {status: after[status] - before[status] for status in after if after[status] != before[status]} == counted


@pytest.mark.parametrize("signature", [None, "bm90IGEgc2lnbmF0dXJl"])
def test_an_unsigned_or_badly_signed_receipt_is_refused_and_changes_nothing(phone, fake_twilio, signature):
    message, sent = sent_message(phone, fake_twilio)
    form = fake_twilio.callback_form(sent, "failed", "30003")
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = phone.client.post(f"{STATUS_PATH}?m={message.id}", data=form, headers=headers)
    assert response.status_code == 403
    assert stored(phone.runtime, message).status == SENT


def test_a_receipt_for_a_message_we_never_sent_is_ignored(phone, fake_twilio):
    message, sent = sent_message(phone, fake_twilio, kind=CONFIRMATION)
    sent.sid, sent.status_callback = "SM" + "f" * 32, sent.status_callback.split("?")[0]
    response = fake_twilio.post_status(sent, "undelivered", "30003", client=phone.client)

    assert response.status_code == 204
    assert stored(phone.runtime, message).status == SENT
    assert phone.runtime.store.escalations() == [] and scheduled_jobs(phone.runtime) == 0


def test_a_receipt_naming_our_message_with_another_sid_is_ignored(phone, fake_twilio):
    message, sent = sent_message(phone, fake_twilio)
    sent.sid = "SM" + "e" * 32
    fake_twilio.post_status(sent, "delivered", client=phone.client)
    assert stored(phone.runtime, message).status == SENT


def test_a_receipt_without_the_message_in_its_url_is_matched_by_sid(phone, fake_twilio):
    message, sent = sent_message(phone, fake_twilio)
    sent.status_callback = sent.status_callback.split("?")[0]
    fake_twilio.post_status(sent, "delivered", client=phone.client)
    assert stored(phone.runtime, message).status == DELIVERED


@pytest.mark.parametrize("form", [{}, {"MessageSid": "SM1"}, {"MessageStatus": "sent"}])
def test_a_receipt_missing_its_fields_gets_a_clear_400(phone, fake_twilio, form):
    headers = {"X-Twilio-Signature": fake_twilio.sign(f"https://tdbot.example.com{STATUS_PATH}", form)}
    response = phone.client.post(STATUS_PATH, data=form, headers=headers)
    assert response.status_code == 400 and b"required" in response.data


def test_an_undelivered_confirmation_is_resent_with_backoff_then_escalated(phone, fake_twilio):
    runtime = phone.runtime
    _, first = sent_message(phone, fake_twilio, kind=CONFIRMATION)
    latest = first
    for attempt, delay in enumerate(outbound.RESEND_DELAYS, start=1):
        fake_twilio.progress(latest, "sent", "undelivered", client=phone.client, error_code="30003")
        run_scheduled(runtime, delay - 2)
        assert len(fake_twilio.to(MSISDN)) == attempt, "resent before its backoff"
        run_scheduled(runtime, 2)
        latest = fake_twilio.to(MSISDN)[-1]
        assert len(fake_twilio.to(MSISDN)) == attempt + 1 and latest.body == first.body
        assert runtime.store.escalations() == []

    fake_twilio.progress(latest, "sent", "failed", client=phone.client, error_code="30008")
    run_scheduled(runtime, 86400)

    assert len(fake_twilio.to(MSISDN)) == len(outbound.RESEND_DELAYS) + 1
    assert runtime.store.escalations() == [ESCALATED]


def test_a_resent_confirmation_that_arrives_needs_no_person(phone, fake_twilio):
    _, first = sent_message(phone, fake_twilio, kind=CONFIRMATION)
    fake_twilio.progress(first, "undelivered", client=phone.client, error_code="30003")
    run_scheduled(phone.runtime, outbound.RESEND_DELAYS[0])
    fake_twilio.progress(fake_twilio.to(MSISDN)[-1], "sent", "delivered", client=phone.client)
    run_scheduled(phone.runtime, 86400)

    assert len(fake_twilio.to(MSISDN)) == 2
    assert phone.runtime.store.escalations() == []


def test_a_repeated_undelivered_receipt_resends_once(phone, fake_twilio):
    _, first = sent_message(phone, fake_twilio, kind=CONFIRMATION)
    for _ in range(3):
        fake_twilio.post_status(first, "undelivered", "30003", client=phone.client)
    run_scheduled(phone.runtime, outbound.RESEND_DELAYS[0])
    assert len(fake_twilio.to(MSISDN)) == 2


def test_a_confirmation_delivered_late_is_not_resent(phone, fake_twilio):
    first, sent = sent_message(phone, fake_twilio, kind=CONFIRMATION)
    fake_twilio.progress(sent, "sent", "undelivered", client=phone.client, error_code="30003")
    fake_twilio.post_status(sent, "delivered", client=phone.client)  # the carrier's late report: it arrived after all
    run_scheduled(phone.runtime, 86400)

    assert len(fake_twilio.to(MSISDN)) == 1
    assert stored(phone.runtime, first).status == DELIVERED
    assert phone.runtime.store.escalations() == []


def test_once_one_copy_of_a_confirmation_is_delivered_no_other_copy_is_resent_or_escalated(phone, fake_twilio):
    _, first = sent_message(phone, fake_twilio, kind=CONFIRMATION)
    fake_twilio.progress(first, "sent", "undelivered", client=phone.client, error_code="30003")
    run_scheduled(phone.runtime, outbound.RESEND_DELAYS[0])
    second = fake_twilio.to(MSISDN)[-1]
    fake_twilio.post_status(first, "delivered", client=phone.client)
    fake_twilio.progress(second, "sent", "undelivered", client=phone.client, error_code="30003")
    run_scheduled(phone.runtime, 86400)

    assert len(fake_twilio.to(MSISDN)) == 2
    assert phone.runtime.store.escalations() == []


@pytest.mark.parametrize("error_code", ["30006", "30005", "21610"])
def test_a_confirmation_no_resend_can_deliver_goes_straight_to_a_person(phone, fake_twilio, error_code):
    _, first = sent_message(phone, fake_twilio, kind=CONFIRMATION)
    fake_twilio.progress(first, "sent", "failed", client=phone.client, error_code=error_code)
    run_scheduled(phone.runtime, 86400)

    assert len(fake_twilio.to(MSISDN)) == 1
    assert phone.runtime.store.escalations() == [ESCALATED]


def test_a_confirmation_the_provider_refuses_outright_goes_to_a_person(phone, fake_twilio):
    fake_twilio.refuse_next_as_opted_out()
    message = queue_message(phone.runtime, "您的视频会员已退订。", CONFIRMATION)
    phone.deliver()

    assert stored(phone.runtime, message).status == FAILED
    assert phone.runtime.store.escalations() == [ESCALATED]


@pytest.mark.parametrize("refused", [False, True])
def test_a_code_message_keeps_no_code_once_it_has_left_or_never_will(phone, fake_twilio, refused):
    if refused:
        fake_twilio.refuse_next_as_opted_out()
    message = queue_message(phone.runtime, "【中国移动】验证码428613，5分钟内有效，仅用于退订业务。", CODE)
    phone.deliver()
    kept = stored(phone.runtime, message)
    assert kept.status == (FAILED if refused else SENT)
    assert kept.text == "【中国移动】验证码******，5分钟内有效，仅用于退订业务。"


@pytest.mark.parametrize("kind", [CODE, NOTICE])
def test_other_undelivered_messages_are_neither_resent_nor_escalated(phone, fake_twilio, kind):
    message, sent = sent_message(phone, fake_twilio, kind=kind)
    fake_twilio.progress(sent, "undelivered", client=phone.client, error_code="30003")
    run_scheduled(phone.runtime, 86400)

    assert stored(phone.runtime, message).status == UNDELIVERED
    assert len(fake_twilio.to(MSISDN)) == 1 and phone.runtime.store.escalations() == []


def test_a_receipt_saying_the_recipient_opted_out_marks_the_subscriber(phone, fake_twilio):
    message, sent = sent_message(phone, fake_twilio)
    fake_twilio.progress(sent, "failed", client=phone.client, error_code="21610")

    assert stored(phone.runtime, message).error == "21610"
    assert phone.runtime.store.load_subscriber(MSISDN).opted_out is True


@pytest.mark.parametrize("error_code", ["²", "³⁰⁰⁰⁶", "٢١٦١٠", "２１６１０", "30003x"])
def test_an_error_code_that_is_not_ascii_digits_is_no_known_error(phone, fake_twilio, error_code):
    """A receipt's ErrorCode is a number only in ASCII digits: "²" made int() raise (a 500 on every retry, the
    confirmation never resent), and Arabic-Indic 21610 marked the subscriber opted out. Such a code is kept as the
    message's error and is no error we know: an undelivered confirmation is resent."""
    message, sent = sent_message(phone, fake_twilio, kind=CONFIRMATION)
    response = fake_twilio.post_status(sent, "undelivered", error_code, client=phone.client)

    assert response.status_code == 204
    assert (stored(phone.runtime, message).status, stored(phone.runtime, message).error) == (UNDELIVERED, error_code)
    assert phone.runtime.store.load_subscriber(MSISDN).opted_out is False
    run_scheduled(phone.runtime, outbound.RESEND_DELAYS[0])
    assert len(fake_twilio.to(MSISDN)) == 2 and phone.runtime.store.escalations() == []


def test_an_undelivered_callback_cut_short_and_repeated_sends_the_confirmation_again_once(twilio_config, fake_twilio,
                                                                                          redis_url):
    proxy = FreezingProxy(redis_url)
    try:
        app = create_app({**twilio_config, "REDIS_URL": proxy.url})
        seed_demo(app)
        phone = Phone(app.test_client(), app, MSISDN)
        message, sent = sent_message(phone, fake_twilio, kind=CONFIRMATION)
        cut = proxy.cut_after(b"EXEC", lambda: fake_twilio.post_status(sent, "undelivered", "30003",
                                                                             client=phone.client))
        assert cut.status_code == 503  # Twilio may ask again, or repeat it anyway
        assert stored(phone.runtime, message).status == UNDELIVERED
        for _ in range(3):
            assert fake_twilio.post_status(sent, "undelivered", "30003", client=phone.client).status_code == 204
        assert scheduled_jobs(phone.runtime) == 1
        run_scheduled(phone.runtime, outbound.RESEND_DELAYS[0])
        assert fake_twilio.to(MSISDN)[-1].body == message.text and len(fake_twilio.to(MSISDN)) == 2
    finally:
        proxy.close()


def test_recovery_drops_a_follow_up_noted_for_a_copy_whose_process_died_before_moving_it(phone, fake_twilio, clock):
    """Noted, then the process died before the copy moved: nothing to follow up (the copy is settled as a send), and
    the note does not stay for ever."""
    runtime = phone.runtime
    message = queue_message(runtime, "您的视频会员已退订。", CONFIRMATION)
    follow_ups.note(runtime.redis, runtime.keys, MSISDN, message.id, "", clock.now.timestamp())
    assert outbound.follow_up_left(runtime) == 0  # too fresh: its process may be at it
    clock.advance(seconds=outbound.FOLLOW_UP_AFTER + 1)
    assert outbound.follow_up_left(runtime) == 0
    assert runtime.redis.zcard(follow_ups.key(runtime.keys)) == 0
    assert scheduled_jobs(runtime) == 0 and runtime.store.escalations() == []


def test_a_follow_up_done_leaves_no_note(phone, fake_twilio):
    _, sent = sent_message(phone, fake_twilio, kind=CONFIRMATION)
    fake_twilio.progress(sent, "sent", "undelivered", client=phone.client, error_code="30003")
    assert scheduled_jobs(phone.runtime) == 1  # the resend
    assert phone.runtime.redis.zcard(follow_ups.key(phone.runtime.keys)) == 0


def _cut_after_moving(twilio_config, fake_twilio, redis_url, proxy, resends: int = 0):
    """A confirmation sent, then its undelivered report cut short right after the copy moved (the process killed
    there): the copy is undelivered, its follow-up noted and not done."""
    app = create_app({**twilio_config, "REDIS_URL": proxy.url})
    seed_demo(app)
    phone = Phone(app.test_client(), app, MSISDN)
    message = queue_message(phone.runtime, "您的视频会员已退订。", CONFIRMATION)
    if resends:
        phone.runtime.redis.hset(phone.runtime.keys.message(MSISDN, message.id), "resends", resends)
    phone.deliver()
    sent = fake_twilio.to(MSISDN)[-1]
    cut = proxy.cut_after(b"EXEC", lambda: fake_twilio.post_status(sent, "undelivered", "30003", client=phone.client))
    assert cut.status_code == 503 and stored(phone.runtime, message).status == UNDELIVERED
    assert scheduled_jobs(phone.runtime) == 0 and phone.runtime.redis.zcard(follow_ups.key(phone.runtime.keys)) == 1
    return phone, message, sent


@pytest.mark.parametrize("first", ["recovery", "report"])
@pytest.mark.parametrize("resends", [0, len(outbound.RESEND_DELAYS)])
def test_a_follow_up_done_by_recovery_and_by_a_repeated_report_resends_or_escalates_once(
        twilio_config, fake_twilio, redis_url, clock, first, resends):
    proxy = FreezingProxy(redis_url)
    try:
        phone, message, sent = _cut_after_moving(twilio_config, fake_twilio, redis_url, proxy, resends)
        runtime = phone.runtime
        clock.advance(seconds=outbound.FOLLOW_UP_AFTER + 1)
        recovery = lambda: outbound.follow_up_left(runtime)  # noqa: E731
        report = lambda: fake_twilio.post_status(sent, "undelivered", "30003", client=phone.client)  # noqa: E731
        for follow_up in ([recovery, report] if first == "recovery" else [report, recovery]):
            follow_up()
        if resends:
            assert runtime.store.escalations() == [ESCALATED]
            escalations.resolve(runtime.redis, runtime.keys, MSISDN, CONFIRMATION_UNDELIVERED, "agent", "called",
                                clock.now, 7)
        report()  # once more, after a person dealt with it
        outbound.follow_up_left(runtime)
        assert runtime.redis.zcard(follow_ups.key(runtime.keys)) == 0
        run_scheduled(runtime, max(outbound.RESEND_DELAYS))
        if resends:  # the last copy: a person told once, nothing resent
            assert len(fake_twilio.to(MSISDN)) == 1 and stored(runtime, message).told
            assert runtime.store.escalations() == []
        else:
            assert len(fake_twilio.to(MSISDN)) == 2 and runtime.store.escalations() == []
    finally:
        proxy.close()


def test_a_follow_up_noted_for_a_copy_reported_delivered_meanwhile_does_nothing(twilio_config, fake_twilio,
                                                                                  redis_url, clock):
    proxy = FreezingProxy(redis_url)
    try:
        phone, message, sent = _cut_after_moving(twilio_config, fake_twilio, redis_url, proxy)
        runtime = phone.runtime
        assert fake_twilio.post_status(sent, "delivered", client=phone.client).status_code == 204
        clock.advance(seconds=outbound.FOLLOW_UP_AFTER + 1)
        assert outbound.follow_up_left(runtime) == 0
        assert runtime.redis.zcard(follow_ups.key(runtime.keys)) == 0
        run_scheduled(runtime, max(outbound.RESEND_DELAYS))
        assert len(fake_twilio.to(MSISDN)) == 1 and runtime.store.escalations() == []
        assert stored(runtime, message).status == DELIVERED
    finally:
        proxy.close()
