"""`POST /api/v1/statements/<id>/payments`: a payment made elsewhere, recorded once per reference, over real HTTP
and Redis."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from rq import SimpleWorker

from dialogs.apply import apply
from dialogs.effects import Pay
from dialogs.model import Statement, Subscriber, Subscription
from dialogs.reasons import OVERPAID
from gateway.jobs import charges
from gateway.state import audit, escalations
from gateway.state.ledger import RedisLedger
from tests.support.phone import api_headers

MSISDN = "+8613800138000"
VID = "8613800138000-vid-20261107"
MUSIC = "8613800138000-music-20261107"
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # the clock fixture's start


def statement(sid: str, amount: int) -> Statement:
    return Statement(id=sid, subscription_id=sid.split("-")[1], name=sid.split("-")[1], amount_fen=amount,
                     issued_at=NOW, due_at=NOW + timedelta(days=7))


@pytest.fixture
def runtime(app):
    runtime = app.extensions["tdbot"]
    subs = tuple(Subscription(i, i, i.upper(), 1500, date(2026, 12, 7), status="cancelled") for i in ("vid", "music"))
    runtime.store.save_subscriber(Subscriber(MSISDN, "cmcc", "zh", subs, (statement(VID, 950), statement(MUSIC, 500))))
    return runtime


@pytest.fixture
def pay(client, runtime):
    def post(body: object, statement_id: str = VID, **kw: object):
        return client.post(f"/api/v1/statements/{statement_id}/payments", json=body, headers=api_headers(), **kw)

    return post


def stored(runtime) -> Subscriber:
    return runtime.store.load_subscriber(MSISDN)


def test_a_full_payment_settles_the_statement(pay, runtime) -> None:
    response = pay({"amount_fen": 950, "reference": "bank-1", "paid_at": "2026-11-25T09:30:00+08:00"})
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["statement"]["status"], body["statement"]["paid_fen"], body["statement"]["owed_fen"]) == (
        "paid", 950, 0)
    assert body["payment"] == {"reference": "bank-1", "amount_fen": 950, "paid_at": "2026-11-25T09:30:00+08:00",
                               "in_time_fen": 0}
    assert stored(runtime).statement(VID).status == "paid"
    assert stored(runtime).statement(MUSIC).paid_fen == 0


def test_a_partial_payment_leaves_the_rest_owed(pay, runtime) -> None:
    body = pay({"amount_fen": 300, "reference": "bank-1"}).json
    assert (body["statement"]["status"], body["statement"]["paid_fen"], body["statement"]["owed_fen"]) == (
        "open", 300, 650)
    assert body["payment"]["paid_at"] == NOW.isoformat()  # no paid_at: received now
    body = pay({"amount_fen": 650, "reference": "bank-2"}).json
    assert (body["statement"]["status"], body["statement"]["owed_fen"]) == ("paid", 0)


def test_the_same_reference_twice_records_one_payment(pay, runtime) -> None:
    first = pay({"amount_fen": 300, "reference": "bank-1"})
    again = pay({"amount_fen": 300, "reference": "bank-1"})
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json == first.json
    assert stored(runtime).statement(VID).paid_fen == 300


@pytest.mark.parametrize(("statement_id", "amount"), [(VID, 301), (MUSIC, 300)])
def test_a_reference_reused_with_other_terms_is_a_conflict(pay, runtime, statement_id: str, amount: int) -> None:
    pay({"amount_fen": 300, "reference": "bank-1"})
    before = stored(runtime)
    response = pay({"amount_fen": amount, "reference": "bank-1"}, statement_id)
    assert response.status_code == 409
    assert "bank-1" in response.json["error"] and VID in response.json["error"]
    assert stored(runtime) == before


@pytest.mark.parametrize(
    "statement_id",
    ["8613800138000-video-20261107", "8613900000000-vid-20261107", "not-a-statement", "123-x-20261107",
     "٨٦١٣٨٠٠١٣٨٠٠٠-vid-20261107", "８６１３８００１３８０００-vid-２０２６１１０７"],
)
def test_an_unknown_statement_is_404(pay, runtime, statement_id: str) -> None:
    before = stored(runtime)
    response = pay({"amount_fen": 100, "reference": "bank-1"}, statement_id)
    assert response.status_code == 404
    assert statement_id in response.json["error"]
    assert stored(runtime) == before


BAD_BODIES = [
    ([], "JSON object"),
    ({"reference": "r"}, "amount_fen"),
    ({"amount_fen": 0, "reference": "r"}, "amount_fen"),
    ({"amount_fen": -5, "reference": "r"}, "amount_fen"),
    ({"amount_fen": 9.5, "reference": "r"}, "amount_fen"),
    ({"amount_fen": "950", "reference": "r"}, "amount_fen"),
    ({"amount_fen": True, "reference": "r"}, "amount_fen"),
    ({"amount_fen": 10_000_001, "reference": "r"}, "amount_fen"),
    ({"amount_fen": 100}, "reference"),
    ({"amount_fen": 100, "reference": ""}, "reference"),
    ({"amount_fen": 100, "reference": "   "}, "reference"),
    ({"amount_fen": 100, "reference": 12}, "reference"),
    ({"amount_fen": 100, "reference": "r" * 65}, "reference"),
    ({"amount_fen": 100, "reference": "a\nb"}, "reference"),
    ({"amount_fen": 100, "reference": "r", "paid_at": "yesterday"}, "paid_at"),
    ({"amount_fen": 100, "reference": "r", "paid_at": "2026-11-25T09:30:00"}, "paid_at"),  # no offset
    ({"amount_fen": 100, "reference": "r", "paid_at": 1764036000}, "paid_at"),
    ({"amount_fen": 100, "reference": "r", "paid_at": "2026-11-26T09:30:00+08:00"}, "future"),
]


@pytest.mark.parametrize(("body", "names"), BAD_BODIES)
def test_a_bad_body_is_400_and_changes_nothing(pay, runtime, body: object, names: str) -> None:
    before = stored(runtime)
    response = pay(body)
    assert response.status_code == 400
    assert names in response.json["error"]
    assert stored(runtime) == before


@pytest.mark.parametrize(
    ("data", "content_type"), [("{not json", "application/json"), ('{"amount_fen": 1}', "text/plain")]
)
def test_a_body_that_is_not_json_is_400(client, runtime, data: str, content_type: str) -> None:
    response = client.post(f"/api/v1/statements/{VID}/payments", data=data, content_type=content_type,
                           headers=api_headers())
    assert response.status_code == 400
    assert "json" in response.json["error"].lower()


def test_payments_need_the_bearer_token(client, runtime) -> None:
    response = client.post(f"/api/v1/statements/{VID}/payments", json={"amount_fen": 950, "reference": "r"})
    assert response.status_code == 401
    assert stored(runtime).statement(VID).paid_fen == 0


def test_an_overpayment_is_recorded_and_escalated(pay, runtime) -> None:
    body = pay({"amount_fen": 1000, "reference": "bank-1"}).json
    assert (body["statement"]["status"], body["statement"]["paid_fen"]) == ("paid", 1000)
    assert (MSISDN, OVERPAID) in runtime.store.escalations()


def test_an_overpayment_is_escalated_with_what_a_person_needs_and_both_are_audited(pay, runtime) -> None:
    pay({"amount_fen": 1000, "reference": "bank-1"})
    [escalation] = escalations.listing(runtime.redis, runtime.keys)
    assert escalation.context == {"statement": VID, "reference": "bank-1", "overpaid_fen": 50}
    trail = audit.read_all(runtime.redis, runtime.keys.audit(MSISDN))
    assert [(e["kind"], e.get("amount_fen"), e.get("reason")) for e in trail] == [
        ("payment", 1000, None), ("escalated", None, OVERPAID)]


def test_a_statement_paid_elsewhere_is_not_charged_again_by_a_pending_jf(pay, runtime) -> None:
    runtime.store.update_subscriber(MSISDN, lambda s: apply(s, [Pay(VID, 950, "JF-1")], NOW))
    pay({"amount_fen": 950, "reference": "bank-1"})
    charges.enqueue(runtime, MSISDN, [Pay(VID, 950, "JF-1")])
    SimpleWorker([runtime.queue("default")], connection=runtime.queue_redis).work(burst=True)
    assert RedisLedger(runtime.redis, runtime.keys, runtime.clock).receipts(MSISDN) == []
    after = stored(runtime).statement(VID)
    assert (after.status, after.paid_fen, after.pending_reference) == ("paid", 950, "")


def test_a_pending_jf_charges_only_what_is_left_after_a_partial_payment_elsewhere(pay, runtime) -> None:
    runtime.store.update_subscriber(MSISDN, lambda s: apply(s, [Pay(VID, 950, "JF-1")], NOW))
    assert pay({"amount_fen": 300, "reference": "bank-1"}).status_code == 200
    charges.enqueue(runtime, MSISDN, [Pay(VID, 950, "JF-1")])
    SimpleWorker([runtime.queue("default")], connection=runtime.queue_redis).work(burst=True)
    receipts = RedisLedger(runtime.redis, runtime.keys, runtime.clock).receipts(MSISDN)
    assert [(r.reference, r.amount_fen) for r in receipts] == [("JF-1", 650)]
    after = stored(runtime).statement(VID)
    assert (after.status, after.paid_fen, after.owed_fen, after.pending_reference) == ("paid", 950, 0, "")
