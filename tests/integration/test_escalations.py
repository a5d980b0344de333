"""Escalations as records a person works through, and the bot staying quiet for a number while 人工 is open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialogs.messages import render
from dialogs.reasons import PAYMENT_FAILED, REQUESTED
from gateway.state import audit, escalations
from gateway.state.escalations import OPEN, RESOLVED_STATUS, TAKEN, Refused

NUMBER = "+8613800138000"
DAYS = 180


@pytest.fixture
def phone(seeded, phone):
    return phone


def test_human_request_opens_one_escalation_with_what_was_said(phone) -> None:
    phone.send("人工")
    phone.send("人工")
    runtime = phone.runtime
    [escalation] = escalations.listing(runtime.redis, runtime.keys)
    assert (escalation.msisdn, escalation.reason, escalation.status) == (NUMBER, REQUESTED, OPEN)
    assert escalation.context["text"] == "人工" and escalation.context["channel"] == "twilio"
    assert runtime.store.escalations() == [(NUMBER, REQUESTED)]


def test_while_handed_over_messages_go_to_the_person_with_one_notice(phone) -> None:
    assert phone.send("人工") == "【中国移动】" + render("zh", "human")
    assert phone.send("你好？") == "【中国移动】" + render("zh", "human_waiting")
    assert phone.send("TD") == ""
    assert phone.send("在吗") == ""
    escalation = escalations.load(phone.runtime.redis, phone.runtime.keys, NUMBER, REQUESTED)
    assert [e["text"] for e in escalation.log] == ["你好？", "TD", "在吗"]
    assert phone.runtime.store.load_dialog(NUMBER).stage == "idle"


def test_stop_and_start_still_work_while_handed_over(phone) -> None:
    phone.send("人工")
    assert "关闭提醒" in phone.send("STOP")
    assert phone.subscriber()["opted_out"] is True
    assert "恢复提醒" in phone.send("START")
    assert phone.subscriber()["opted_out"] is False


def test_a_code_typed_to_the_person_is_hidden_from_them(phone) -> None:
    phone.send("人工")
    phone.send("我的验证码是123456")
    escalation = escalations.load(phone.runtime.redis, phone.runtime.keys, NUMBER, REQUESTED)
    assert escalation.log[0]["text"] == "我的验证码是******"


def test_resolving_hands_the_number_back_to_the_bot(phone, clock) -> None:
    runtime = phone.runtime
    phone.send("人工")
    phone.send("hello?")
    escalations.take(runtime.redis, runtime.keys, NUMBER, REQUESTED, "wang", clock(), DAYS)
    clock.advance(minutes=5)
    done = escalations.resolve(runtime.redis, runtime.keys, NUMBER, REQUESTED, "wang", "explained the bill", clock(),
                               DAYS)
    assert "回复序号" in phone.send("TD")
    assert runtime.store.escalations() == []
    [kept] = escalations.resolved(runtime.redis, runtime.keys)
    assert (kept.status, kept.agent, kept.note, kept.resolved_at) == (RESOLVED_STATUS, "wang", "explained the bill",
                                                                      done.resolved_at)
    archived = escalations.load(runtime.redis, runtime.keys, NUMBER, REQUESTED, kept.stamp)
    assert [e["text"] for e in archived.log] == ["hello?"]


def test_after_resolving_the_same_reason_opens_a_new_escalation(phone, clock) -> None:
    runtime = phone.runtime
    phone.send("人工")
    escalations.resolve(runtime.redis, runtime.keys, NUMBER, REQUESTED, "wang", "done", clock(), DAYS)
    clock.advance(hours=1)
    assert "人工" in phone.send("KF")
    [again] = escalations.listing(runtime.redis, runtime.keys)
    assert again.opened_at == int(clock().timestamp()) and again.status == OPEN


def test_one_agent_cannot_take_what_another_has_but_an_admin_can(phone, clock) -> None:
    runtime = phone.runtime
    phone.send("人工")
    escalations.take(runtime.redis, runtime.keys, NUMBER, REQUESTED, "wang", clock(), DAYS)
    with pytest.raises(Refused, match="taken by wang"):
        escalations.take(runtime.redis, runtime.keys, NUMBER, REQUESTED, "li", clock(), DAYS)
    taken = escalations.take(runtime.redis, runtime.keys, NUMBER, REQUESTED, "boss", clock(), DAYS, force=True)
    assert (taken.status, taken.agent) == (TAKEN, "boss")


def test_an_escalation_the_previous_release_wrote_is_listed_and_can_be_resolved(app, clock) -> None:
    runtime = app.extensions["tdbot"]
    runtime.redis.zadd(escalations.index_key(runtime.keys), {f"{NUMBER}|payment_failed": 1_700_000_000})
    [legacy] = escalations.listing(runtime.redis, runtime.keys)
    assert (legacy.reason, legacy.opened_at, legacy.legacy) == (PAYMENT_FAILED, 1_700_000_000, True)
    escalations.resolve(runtime.redis, runtime.keys, NUMBER, PAYMENT_FAILED, "wang", "refunded", clock(), DAYS)
    assert runtime.store.escalations() == []


def test_shell_escalations_keep_their_context_and_are_audited(app, clock) -> None:
    store = app.extensions["tdbot"].store
    store.escalate(NUMBER, PAYMENT_FAILED, clock(), context={"statement": "s1"})
    store.escalate(NUMBER, PAYMENT_FAILED, clock() + timedelta(hours=1), context={"statement": "s2"})
    [escalation] = escalations.listing(store.redis, store.keys)
    assert escalation.context == {"statement": "s1"}
    trail = audit.read_all(store.redis, store.keys.audit(NUMBER))
    assert [e["context"]["statement"] for e in trail if e["kind"] == audit.ESCALATED] == ["s1", "s2"]


def test_the_audit_trail_tells_the_cancel_and_never_the_code(phone) -> None:
    phone.send("TD")
    phone.send("1")
    phone.send("Y")
    code = phone.last_code()
    phone.send(code)
    trail = audit.read_all(phone.runtime.redis, phone.runtime.keys.audit(NUMBER))
    assert code not in str(trail)
    assert [e["in"] for e in trail] == ["TD", "1", "Y", "******"]
    assert {"kind": "code", "text": ""}.items() <= trail[2]["sent"][0].items()
    assert "cancelled vid" in trail[3]["changes"] and "dialog verifying → idle" in trail[3]["changes"]


def test_the_audit_trail_forgets_what_is_older_than_its_retention(app, clock) -> None:
    clock.now = datetime.now(UTC)
    store = app.extensions["tdbot"].store
    store.audit_days = 2
    for age_days, n in ((3, 1), (1, 2)):  # entries Redis stamped that long ago
        stamp = int((clock() - timedelta(days=age_days)).timestamp() * 1000)
        store.redis.xadd(store.keys.audit(NUMBER), {audit.FIELD: f'{{"kind":"note","n":{n}}}'}, id=f"{stamp}-0")
    store.audit(NUMBER, {"kind": "note", "n": 3}, clock())
    assert [e["n"] for e in audit.read_all(store.redis, store.keys.audit(NUMBER))] == [2, 3]
