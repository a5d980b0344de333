"""Work a step asks for after its commit is never lost, and a message is never sent twice (review #1-3, 5, 10, 12)."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from dialogs.messages import render
from dialogs.reasons import SEND_UNCERTAIN
from dialogs.reminders import SETTLE, Reminder
from gateway.delivery import outbound
from gateway.jobs import outbox, reminders
from gateway.runtime import OUTBOUND_QUEUE
from gateway.service import Service
from gateway.state.messages import QUEUED, SENDING, SENT, SKIPPED
from gateway.state.store import CODE_MESSAGE_TTL, Contention, Store
from tests.support.delivery import queue_message, stored
from tests.support.phone import Phone, api_headers, seed_demo
from tests.support.reminders import CMCC, cancel, local, put
from tests.support.reminders import outbox as sent_to

CODE_SENT = "验证码"


@pytest.fixture
def queue_down(monkeypatch):
    """RQ's Redis refusing the enqueue that follows a step's commit."""

    def fail(*_args, **_kwargs):
        raise RedisConnectionError("queue Redis went away")

    monkeypatch.setattr(outbound, "enqueue_ids", fail)
    return monkeypatch


def codes(phone: Phone) -> list[str]:
    return [m for m in phone.inbox() if CODE_SENT in m and any(c.isdigit() for c in m)]


def test_a_step_whose_enqueue_fails_still_answers_and_keeps_the_work(confirming, queue_down, app) -> None:
    assert "已发送" in confirming.send("Y", sid="SMafter1")
    runtime = app.extensions["tdbot"]
    assert runtime.redis.hexists(outbox.key(runtime, confirming.msisdn), "SMafter1")


def test_a_retried_message_sid_queues_the_work_the_first_try_left(confirming, queue_down, app, clock) -> None:
    confirming.send("Y", sid="SMafter2")
    queue_down.undo()
    assert codes(confirming) == []
    clock.advance(seconds=outbox.RESUME_AFTER + 1)
    confirming.send("Y", sid="SMafter2")
    confirming.send("Y", sid="SMafter2")
    assert len(codes(confirming)) == 1
    runtime = app.extensions["tdbot"]
    assert not runtime.redis.exists(outbox.key(runtime, confirming.msisdn))



def test_a_retry_while_the_first_try_is_still_at_it_leaves_the_work_alone(confirming, queue_down, app) -> None:
    confirming.send("Y", sid="SMafter3")
    queue_down.undo()
    confirming.send("Y", sid="SMafter3")
    assert codes(confirming) == []


def test_the_cron_recovers_stale_work_nobody_retried(confirming, queue_down, app, clock) -> None:
    confirming.send("Y", sid="SMafter4")
    queue_down.undo()
    runtime = app.extensions["tdbot"]
    assert outbox.recover(runtime) == 0  # too fresh: the request may still be doing it
    clock.advance(seconds=outbox.RECOVER_AFTER + 1)
    assert outbox.recover(runtime) == 1
    assert outbox.recover(runtime) == 0
    assert len(codes(confirming)) == 1
    assert runtime.redis.zcard(outbox.index_key(runtime)) == 0


def test_a_step_with_nothing_to_do_after_commit_writes_no_outbox(phone, app) -> None:
    seed_demo(app)
    phone.send("HELP")
    runtime = app.extensions["tdbot"]
    assert not runtime.redis.exists(outbox.key(runtime, phone.msisdn))
    assert not runtime.redis.exists(outbox.index_key(runtime))


# --- a reminder's message made but never queued -----------------------------------------------------------


def test_a_reminder_made_but_not_queued_is_queued_when_its_batch_runs_again(client, app, clock, monkeypatch) -> None:
    put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-12-07"))
    phone = Phone(client, app, CMCC)
    cancel(phone)
    clock.now = local(2026, 11, 30, 8)
    runtime = app.extensions["tdbot"]
    reminder = Reminder(SETTLE, CMCC, phone.subscriber()["statements"][0]["id"])

    def crash(*_args):
        raise RedisConnectionError("killed between making and queuing")

    monkeypatch.setattr(outbound, "enqueue", crash)
    with pytest.raises(RedisConnectionError):
        reminders.notify(runtime, reminder)
    monkeypatch.undo()
    assert reminders.notify(runtime, reminder) == reminders.DUPLICATE
    phone.deliver()
    assert len([t for t in sent_to(app, CMCC) if "到期" in t]) == 1


# --- claiming before sending ------------------------------------------------------------------------------


def test_a_message_claimed_by_a_run_that_died_before_sending_goes_out_once(phone, app) -> None:
    runtime = app.extensions["tdbot"]
    message = queue_message(runtime)
    assert runtime.store.claim_message(message.msisdn, message.id)
    phone.deliver()
    phone.deliver()
    assert phone.inbox() == [message.text]
    assert stored(runtime, message).status == SENT


def test_a_message_sent_by_a_run_that_died_before_recording_it_is_not_sent_again(phone, app) -> None:
    runtime = app.extensions["tdbot"]
    message = queue_message(runtime)
    assert runtime.store.claim_message(message.msisdn, message.id)
    runtime.route(message).sender.send(message.msisdn, message.text, None, reference=message.id)  # then it was killed
    phone.deliver()
    assert phone.inbox() == [message.text]
    assert stored(runtime, message).status == SENT


def test_an_uncertain_send_with_a_provider_that_cannot_tell_goes_to_a_person(phone, app, monkeypatch) -> None:
    runtime = app.extensions["tdbot"]
    message = queue_message(runtime)
    runtime.store.claim_message(message.msisdn, message.id)
    monkeypatch.delattr(type(runtime.route(message).sender), "find")  # as Twilio: no lookup by our own message id
    phone.deliver()
    assert phone.inbox() == []
    assert stored(runtime, message).status == SENDING
    assert (message.msisdn, SEND_UNCERTAIN) in runtime.store.escalations()


def test_a_job_run_twice_sends_once(phone, app) -> None:
    runtime = app.extensions["tdbot"]
    message = queue_message(runtime)
    outbound.enqueue(runtime, [message])  # RQ retrying a job whose worker was killed
    runtime.queue("outbound").enqueue(outbound.deliver, message.msisdn, message.id)
    assert phone.inbox() == [message.text]


def test_only_one_claim_wins(app) -> None:
    runtime = app.extensions["tdbot"]
    message = queue_message(runtime)
    wins = [runtime.store.claim_message(message.msisdn, message.id) for _ in range(5)]
    assert wins == [True, False, False, False, False]
    assert stored(runtime, message).status == SENDING != QUEUED


# --- code messages ------------------------------------------------------------------------------------------


def test_a_code_message_expires_and_is_masked_once_sent(confirming, app) -> None:
    confirming.send("Y")
    runtime = app.extensions["tdbot"]
    [key] = runtime.redis.scan_iter(match=runtime.keys.message(confirming.msisdn, "*"))
    assert 0 < runtime.redis.ttl(key) <= CODE_MESSAGE_TTL
    code = confirming.last_code()
    assert code not in runtime.redis.hget(key, "text").decode()
    assert 0 < runtime.redis.ttl(key) <= CODE_MESSAGE_TTL


# --- reminders re-checked right before sending -------------------------------------------------------------


@pytest.mark.parametrize("between", ["pay", "stop"])
def test_a_queued_reminder_is_skipped_if_paid_or_refused_before_it_goes(client, app, clock, between) -> None:
    put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-12-07"))
    phone = Phone(client, app, CMCC)
    cancel(phone)
    clock.now = local(2026, 11, 30, 8)
    runtime = app.extensions["tdbot"]
    statement = phone.subscriber()["statements"][0]
    reminder = Reminder(SETTLE, CMCC, statement["id"])
    assert reminders.notify(runtime, reminder) == reminders.SENT
    if between == "pay":
        paid = client.post(f"/api/v1/statements/{statement['id']}/payments", headers=api_headers(),
                           json={"amount_fen": statement["owed_fen"], "reference": "bank-9"})
        assert paid.status_code == 200
    else:
        phone.send("R")
    phone.deliver()
    assert [t for t in sent_to(app, CMCC) if "到期" in t] == []
    assert runtime.store.load_message(CMCC, reminders.message_id(reminder)).status == SKIPPED


# --- contention -------------------------------------------------------------------------------------------


def test_too_much_contention_gets_a_busy_reply_on_sms_and_503_on_the_api(phone, app, client, monkeypatch) -> None:
    seed_demo(app)

    def contended(_self, *_args, **_kwargs):
        raise Contention(phone.msisdn)

    monkeypatch.setattr(Service, "_transact", contended)
    assert phone.send("TD") == render("zh", "busy")  # a +86 number texting pinyin: the country's language
    monkeypatch.setattr(Store, "update_subscriber", contended)
    response = client.put(f"/api/v1/subscribers/{phone.msisdn}", headers=api_headers(),
                          json={"carrier": "cmcc", "subscriptions": []})
    assert response.status_code == 503 and "error" in response.get_json()


def test_work_redis_refuses_part_of_is_kept_for_the_cron(confirming, app, clock) -> None:
    runtime = app.extensions["tdbot"]
    queue_key = runtime.queue(OUTBOUND_QUEUE).key
    runtime.redis.set(queue_key, "not a list")  # the pipeline's RPUSH fails in Redis, after the rest has run
    assert "已发送" in confirming.send("Y", sid="SMafter7")
    assert runtime.redis.hexists(outbox.key(runtime, confirming.msisdn), "SMafter7")
    assert runtime.redis.zscore(outbox.index_key(runtime), confirming.msisdn) is not None
    runtime.redis.delete(queue_key)
    clock.advance(seconds=outbox.RECOVER_AFTER + 1)
    assert outbox.recover(runtime) == 1
    assert len(codes(confirming)) == 1
