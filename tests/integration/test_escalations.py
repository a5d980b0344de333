"""Escalations as records a person works through, and the bot staying quiet for a number while 人工 is open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialogs.messages import render
from gateway.state import audit, escalations
from gateway.state.escalations import OPEN, RESOLVED_STATUS, TAKEN, Refused
from gateway.web.ops import actions
from tests.support.phone import seed_demo

NUMBER = "+8613800138000"
DAYS = 180


@pytest.fixture
def phone(app, phone):
    seed_demo(app)
    return phone


def test_human_request_opens_one_escalation_with_what_was_said(phone) -> None:
    phone.send("人工")
    phone.send("人工")
    runtime = phone.runtime
    [escalation] = escalations.listing(runtime.redis, runtime.keys)
    assert (escalation.msisdn, escalation.reason, escalation.status) == (NUMBER, "requested", OPEN)
    assert escalation.context["text"] == "人工" and escalation.context["channel"] == "twilio"
    assert runtime.store.escalations() == [(NUMBER, "requested")]


def test_while_handed_over_messages_go_to_the_person_with_one_notice(phone) -> None:
    assert phone.send("人工") == "【中国移动】" + render("zh", "human")
    assert phone.send("你好？") == "【中国移动】" + render("zh", "human_waiting")
    assert phone.send("TD") == ""
    assert phone.send("在吗") == ""
    escalation = escalations.load(phone.runtime.redis, phone.runtime.keys, NUMBER, "requested")
    assert [e["text"] for e in escalation.log] == ["你好？", "TD", "在吗"]
    assert phone.runtime.store.load_dialog(NUMBER).stage == "idle"


def test_stop_and_start_still_work_while_handed_over(phone) -> None:
    phone.send("人工")
    assert "关闭提醒" in phone.send("STOP")
    assert phone.subscriber()["opted_out"] is True
    assert "恢复提醒" in phone.send("START")
    assert phone.subscriber()["opted_out"] is False


@pytest.mark.parametrize(("typed", "kept"), [
    ("我的验证码是123456", "我的验证码是******"),
    ("我的验证码是 123 456", "我的验证码是 *** ***"),  # hidden however it is typed, as in the audit trail
    ("验证码１２３４５６", "验证码******"),
    ("code: 12-34-56", "code: **-**-**"),
    ("1234567", "*******"),
    ("TD 2", "TD 2"),
])
def test_a_code_typed_to_the_person_is_hidden_from_them(phone, typed, kept) -> None:
    phone.send("人工")
    phone.send(typed)
    escalation = escalations.load(phone.runtime.redis, phone.runtime.keys, NUMBER, "requested")
    assert escalation.log[0]["text"] == kept


def test_resolving_hands_the_number_back_to_the_bot(phone, clock) -> None:
    runtime = phone.runtime
    phone.send("人工")
    phone.send("hello?")
    escalations.take(runtime.redis, runtime.keys, NUMBER, "requested", "wang", clock(), DAYS)
    clock.advance(minutes=5)
    done = escalations.resolve(runtime.redis, runtime.keys, NUMBER, "requested", "wang", "explained the bill", clock(),
                               DAYS)
    assert "回复序号" in phone.send("TD")
    assert runtime.store.escalations() == []
    [kept] = escalations.resolved(runtime.redis, runtime.keys)
    assert (kept.status, kept.agent, kept.note, kept.resolved_at) == (RESOLVED_STATUS, "wang", "explained the bill",
                                                                      done.resolved_at)
    archived = escalations.load(runtime.redis, runtime.keys, NUMBER, "requested", kept.stamp)
    assert [e["text"] for e in archived.log] == ["hello?"]


def test_after_resolving_the_same_reason_opens_a_new_escalation(phone, clock) -> None:
    runtime = phone.runtime
    phone.send("人工")
    escalations.resolve(runtime.redis, runtime.keys, NUMBER, "requested", "wang", "done", clock(), DAYS)
    clock.advance(hours=1)
    assert "人工" in phone.send("KF")
    [again] = escalations.listing(runtime.redis, runtime.keys)
    assert again.opened_at == int(clock().timestamp()) and again.status == OPEN


def test_one_agent_cannot_take_what_another_has_but_an_admin_can(phone, clock) -> None:
    runtime = phone.runtime
    phone.send("人工")
    escalations.take(runtime.redis, runtime.keys, NUMBER, "requested", "wang", clock(), DAYS)
    with pytest.raises(Refused, match="taken by wang"):
        escalations.take(runtime.redis, runtime.keys, NUMBER, "requested", "li", clock(), DAYS)
    taken = escalations.take(runtime.redis, runtime.keys, NUMBER, "requested", "boss", clock(), DAYS, force=True)
    assert (taken.status, taken.agent) == (TAKEN, "boss")


def test_an_escalation_the_previous_release_wrote_is_listed_and_can_be_resolved(app, clock) -> None:
    runtime = app.extensions["tdbot"]
    runtime.redis.zadd(escalations.index_key(runtime.keys), {f"{NUMBER}|payment_failed": 1_700_000_000})
    [legacy] = escalations.listing(runtime.redis, runtime.keys)
    assert (legacy.reason, legacy.opened_at, legacy.legacy) == ("payment_failed", 1_700_000_000, True)
    escalations.resolve(runtime.redis, runtime.keys, NUMBER, "payment_failed", "wang", "refunded", clock(), DAYS)
    assert runtime.store.escalations() == []


def test_a_subscribers_open_escalations_are_found_however_many_others_are_open(app, clock) -> None:
    """The subscriber page read the console's first 500 and filtered: one opened after 500 others went missing."""
    store = app.extensions["tdbot"].store
    with store.redis.pipeline(transaction=False) as pipe:
        for n in range(escalations.LIST_LIMIT + 20):
            store.escalate(f"+86139{n:08d}", "payment_failed", clock() - timedelta(days=1), pipeline=pipe)
        pipe.execute()
    store.redis.zadd(escalations.index_key(store.keys), {f"{NUMBER}|code_attempts": 1_700_000_000})
    store.escalate(NUMBER, "payment_failed", clock(), context={"statement": "s1"})
    store.escalate("+861380013800", "requested", clock())  # a number our own begins with is not ours
    found = escalations.for_subscriber(store.redis, store.keys, NUMBER)
    assert [(e.reason, e.legacy) for e in found] == [("code_attempts", True), ("payment_failed", False)]
    assert found[1].context == {"statement": "s1"}


def test_shell_escalations_keep_their_context_and_are_audited(app, clock) -> None:
    store = app.extensions["tdbot"].store
    store.escalate(NUMBER, "payment_failed", clock(), context={"statement": "s1"})
    store.escalate(NUMBER, "payment_failed", clock() + timedelta(hours=1), context={"statement": "s2"})
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


@pytest.mark.parametrize(("before", "operator", "says"), [
    ("open", "wang", "take it before replying"),
    ("taken by wang", "li", "taken by wang"),
    ("resolved", "wang", "no longer open"),
])
def test_a_reply_the_escalation_does_not_allow_is_refused_and_sends_nothing(phone, clock, before, operator, says):
    runtime = phone.runtime
    phone.send("人工")
    if before != "open":
        escalations.take(runtime.redis, runtime.keys, NUMBER, "requested", "wang", clock(), DAYS)
    if before == "resolved":
        escalations.resolve(runtime.redis, runtime.keys, NUMBER, "requested", "wang", "done", clock(), DAYS)
    stored = set(runtime.redis.scan_iter(match=runtime.keys.of(NUMBER, "msg", "*")))
    with pytest.raises(Refused, match=says):
        actions.reply(runtime, NUMBER, "requested", operator, "您好，我是客服。", force=False)
    assert set(runtime.redis.scan_iter(match=runtime.keys.of(NUMBER, "msg", "*"))) == stored
    assert not any("您好" in sent for sent in phone.inbox())


def test_a_reply_from_the_agent_who_took_it_is_logged_and_sent(phone, clock) -> None:
    runtime = phone.runtime
    phone.send("人工")
    escalations.take(runtime.redis, runtime.keys, NUMBER, "requested", "wang", clock(), DAYS)
    actions.reply(runtime, NUMBER, "requested", "wang", "您好，我是客服。", force=False)
    escalation = escalations.load(runtime.redis, runtime.keys, NUMBER, "requested")
    assert [(e["from"], e["text"]) for e in escalation.log] == [("agent", "您好，我是客服。")]
    assert phone.inbox()[-1].endswith("您好，我是客服。")
