"""Money beyond what a statement owes is escalated for a refund (docs/billing.md, Payments, rule 4) even when the
request or job that recorded it is cut short right after its commit and then retried. Redis goes away (a proxy in
front of it drops every connection) just after the commit that records the payment: the caller gets 503, asks again
with the same reference or the same import, and finds the payment on record. The escalation once came after that
commit, in a call of its own, and the retry, a duplicate, escalated nothing: 5.50 taken and never refunded."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogs.reasons import OVERPAID
from gateway import create_app
from gateway.state import audit, escalations
from tests.support.phone import Phone, api_headers
from tests.support.profiles import examples
from tests.support.redis_proxy import FreezingProxy
from tests.support.reminders import CMCC, cancel, put

VID = "8613800138000-vid-20261107"
# What only the commit that records a payment sends: the subscriber record with a payment in it.
PAYMENT_RECORD = b'"in_time_fen"'


@pytest.fixture
def cut_short(test_config, redis_url):
    """The app on a Redis that can go away right after a chosen request; 9.50 owed after a China Mobile cancel."""
    proxy = FreezingProxy(redis_url)
    try:
        app = create_app({**test_config, "REDIS_URL": proxy.url})
        phone = Phone(app.test_client(), app, CMCC)
        put(phone.client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-12-07"))
        cancel(phone)
        yield proxy, phone
    finally:
        proxy.close()


def post_payment(phone: Phone, amount: int = 1500, reference: str = "bank-1"):
    body = {"amount_fen": amount, "reference": reference}
    return phone.client.post(f"/api/v1/statements/{VID}/payments", json=body, headers=api_headers())


def reimport_paid(phone: Phone, paid: int = 1500):
    body = {"carrier": "cmcc", "locale": "zh", "subscriptions": [
        {"id": "vid", "name": "视频会员", "service_code": "VID", "fee_fen": 1500, "renews_on": "2026-12-07",
         "paid_fen": paid}]}
    return phone.client.put(f"/api/v1/subscribers/{CMCC}", json=body, headers=api_headers())


@pytest.mark.parametrize(("send", "reference"), [
    (post_payment, "bank-1"),  # a payment made elsewhere, posted to the API
    (reimport_paid, f"IMPORT-{VID}-0-1500"),  # the carrier reporting the period paid after the cancel (rule 9)
])
def test_money_beyond_what_is_owed_recorded_by_a_request_cut_short_and_retried_is_escalated_once(
    cut_short, send, reference
) -> None:
    proxy, phone = cut_short
    assert proxy.cut_after(PAYMENT_RECORD, lambda: send(phone)).status_code == 503
    assert send(phone).status_code == 200

    statement = phone.runtime.store.load_subscriber(CMCC).statement(VID)
    assert (statement.paid_fen, statement.owed_fen, [p.reference for p in statement.payments]) == (
        1500, 0, [reference])
    listed = escalations.listing(phone.runtime.redis, phone.runtime.keys)
    assert [(e.reason, e.context) for e in listed] == [
        (OVERPAID, {"statement": VID, "reference": reference, "overpaid_fen": 550})]
    trail = audit.read_all(phone.runtime.redis, phone.runtime.keys.audit(CMCC))
    assert [e["reason"] for e in trail if e["kind"] == audit.ESCALATED] == [OVERPAID]
    assert [e["reference"] for e in trail if e["kind"] == audit.PAYMENT] == [reference]


# Payments posted (any amount) and imports reporting the period paid (any total up to the fee), each perhaps cut short
# right after its commit and then sent again.
money_arriving = st.lists(st.tuples(st.sampled_from(["payment", "import"]), st.integers(1, 1500), st.booleans()),
                          min_size=1, max_size=5)


@settings(max_examples=examples(10), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(arriving=money_arriving)
def test_over_any_money_arriving_cut_short_or_not_every_fen_beyond_what_is_owed_is_escalated_once(
    test_config, redis, redis_url, arriving
) -> None:
    """Payments, rule 4: what was paid for a statement is what it owes plus what was escalated as overpaid, each
    payment in the audit trail once, whichever requests were cut short after their commit and sent again."""
    redis.flushdb()
    proxy = FreezingProxy(redis_url)
    try:
        app = create_app({**test_config, "REDIS_URL": proxy.url})
        phone = Phone(app.test_client(), app, CMCC)
        put(phone.client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-12-07"))
        cancel(phone)  # 9.50 owed, no charge line of ours: imported money lands on the statement
        for n, (kind, fen, cut) in enumerate(arriving):
            def send(kind: str = kind, fen: int = fen, n: int = n):
                return post_payment(phone, fen, f"bank-{n}") if kind == "payment" else reimport_paid(phone, fen)
            if cut:
                proxy.cut_after(PAYMENT_RECORD, send, timeout=5) if _records(phone, kind, fen) else send()
            assert send().status_code == 200
        statement = phone.runtime.store.load_subscriber(CMCC).statement(VID)
        trail = audit.read_all(phone.runtime.redis, phone.runtime.keys.audit(CMCC))
        listed = [e.reason for e in escalations.listing(phone.runtime.redis, phone.runtime.keys)]
    finally:
        proxy.close()

    escalated = [e["context"]["overpaid_fen"] for e in trail
                 if e["kind"] == audit.ESCALATED and e["reason"] == OVERPAID]
    assert statement.paid_fen == statement.amount_fen - statement.owed_fen + sum(escalated)
    assert sorted(e["reference"] for e in trail if e["kind"] == audit.PAYMENT) == sorted(
        p.reference for p in statement.payments)
    assert (OVERPAID in listed) == (sum(escalated) > 0)


def _records(phone: Phone, kind: str, fen: int) -> bool:
    """Whether sending this records a payment (so there is a commit to cut short after): a payment always; an import
    only when it reports more than the largest total reported so far."""
    if kind == "payment":
        return True
    [sub] = phone.runtime.store.load_subscriber(CMCC).subscriptions
    return fen > sub.paid_fen
