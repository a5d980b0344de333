"""A carrier's billing auditor checks every fen: imports, renewals and payments arriving at the awkward moments
(between the quote and the code, inside a period already charged), through the API, the signed SMS webhook and the
real renewal and deadline jobs. Each case states what the subscriber owes by docs/billing.md."""

from __future__ import annotations

import threading

import pytest

from gateway.state import audit
from gateway.state.keys import BILLING_DRILL
from gateway.state.ledger import FailingBilling, RedisLedger
from tests.support.phone import Phone, api_headers
from tests.support.reminders import CMCC, CTCC, cancel, local, put, run_due
from tests.support.scheduled import run_scheduled

VID_STATEMENT = "8613800138000-vid-20261107"


@pytest.fixture
def phone(client, app) -> Phone:
    """China Mobile: 视频会员 at 15.00 a month, renewing 7 Dec; today is 25 Nov (19 of 30 days: 9.50)."""
    put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-12-07"))
    return Phone(client, app, CMCC)


def reimport(client, fee: int = 1500, renews_on: str = "2026-12-07", paid: int = 0) -> None:
    body = {"carrier": "cmcc", "locale": "zh", "subscriptions": [
        {"id": "vid", "name": "视频会员", "service_code": "VID", "fee_fen": fee, "renews_on": renews_on,
         "paid_fen": paid}]}
    response = client.put(f"/api/v1/subscribers/{CMCC}", json=body, headers=api_headers())
    assert response.status_code == 200, response.get_json()


def statements(phone: Phone) -> list[tuple[str, int, str]]:
    return [(s["id"], s["amount_fen"], s["status"]) for s in phone.subscriber()["statements"]]


def charges(phone: Phone) -> list[tuple[str, str, int, int]]:
    return [(c["period_start"], c["period_end"], c["amount_fen"], c["credited_fen"])
            for c in phone.subscriber()["charges"]]


# --- an import between the quote and the code ------------------------------------------------------------------


@pytest.mark.parametrize(("fee", "paid", "owed"), [
    (1500, 1500, 0),  # the carrier reports the period paid in full: nothing is left to settle
    (1500, 700, 250),  # 950 - 700
    (600, 0, 380),  # the fee corrected to 6.00: ceil(600 × 19 / 30)
])
def test_an_import_between_the_quote_and_the_code_that_lowers_the_bill_is_credited(
    phone, client, clock, fee: int, paid: int, owed: int
) -> None:
    assert "结清9.50元" in phone.send("TD 1")
    phone.send("Y")
    reimport(client, fee=fee, paid=paid)
    clock.advance(seconds=30)
    phone.send(phone.last_code())
    assert statements(phone) == [(VID_STATEMENT, owed, "open" if owed else "paid")]


def test_an_import_between_the_quote_and_the_code_that_raises_the_fee_bills_no_more_than_quoted(
    phone, client, clock
) -> None:
    assert "结清9.50元" in phone.send("TD 1")
    phone.send("Y")
    reimport(client, fee=3000)
    clock.advance(seconds=30)
    phone.send(phone.last_code())
    assert statements(phone) == [(VID_STATEMENT, 950, "open")]


def test_an_import_moving_the_anchor_between_the_quote_and_the_code_bills_the_quoted_period(
    phone, client, clock
) -> None:
    """Quoted: 7 Nov - 7 Dec, 9.50. The carrier then says the package renews on the 1st: the code still bills the
    period the subscriber was shown, under its own start."""
    assert "结清9.50元" in phone.send("TD 1")
    phone.send("Y")
    reimport(client, renews_on="2026-12-01")
    clock.advance(seconds=30)
    phone.send(phone.last_code())
    assert statements(phone) == [(VID_STATEMENT, 950, "open")]


# --- an import moving the renewal day into a period already charged -----------------------------------------------


@pytest.fixture
def moved(phone, client, app, clock) -> Phone:
    """Renewed by us on 7 Dec (15.00 for 7 Dec - 7 Jan); on 10 Dec the carrier says it renews on 20 Dec."""
    clock.now = local(2026, 12, 7)
    run_due(app)
    clock.now = local(2026, 12, 10, 10)
    reimport(client, renews_on="2026-12-20")
    return phone


def test_a_renewal_on_a_day_an_import_moved_into_a_charged_period_bills_no_day_twice(moved, app, clock) -> None:
    clock.now = local(2026, 12, 20)
    run_due(app)
    kept = -(-1500 * 13 // 31)  # 7 Dec - 20 Dec: 13 of the line's 31 days
    assert charges(moved) == [("2026-12-07", "2026-12-20", 1500, 1500 - kept), ("2026-12-20", "2027-01-20", 1500, 0)]
    trail = audit.read_all(moved.runtime.redis, moved.runtime.keys.audit(CMCC))
    assert [c for e in trail if e["kind"] == audit.CHANGE for c in e["changes"]] == [
        "charge vid 2026-12-07 to 2027-01-07: CNY 15.00",  # each line as written, once
        "charge vid 2026-12-07 to 2026-12-20 (cut from 2027-01-07): CNY 6.30",
        "charge vid 2026-12-20 to 2027-01-20: CNY 15.00"]


def test_a_cancel_after_that_renewal_bills_each_day_once(moved, app, clock) -> None:
    clock.now = local(2026, 12, 20)
    run_due(app)
    clock.now = local(2026, 12, 25, 10)
    cancel(moved)
    billed = sum(amount - credited for _, _, amount, credited in charges(moved))
    assert statements(moved) == [("8613800138000-vid-20261220", 0, "paid")]
    assert billed == -(-1500 * 13 // 31) + -(-1500 * 6 // 31)  # 7-20 Dec on the first line, 20-25 Dec on the second


# --- one payment reference, one statement ---------------------------------------------------------------------

CTCC_STATEMENT = "8618900000000-vid-20261107"


@pytest.fixture
def two_owing(phone, client, app) -> Phone:
    """Two subscribers of different carriers, each owing 9.50 on a statement of their own."""
    put(client, CTCC, "ctcc", "zh", ("vid", "视频会员", 1500, "2026-12-07"))
    for msisdn in (CMCC, CTCC):
        cancel(Phone(client, app, msisdn))
    return phone


def post_payment(client, statement_id: str, reference: str = "bank-1", amount: int = 950):
    body = {"amount_fen": amount, "reference": reference}
    return client.post(f"/api/v1/statements/{statement_id}/payments", json=body, headers=api_headers())


def paid_fen(client, app, msisdn: str) -> int:
    return Phone(client, app, msisdn).subscriber()["statements"][0]["paid_fen"]


def test_a_reference_recorded_on_one_subscribers_statement_is_refused_on_another_subscribers(
    two_owing, client, app
) -> None:
    assert post_payment(client, VID_STATEMENT).status_code == 200
    refused = post_payment(client, CTCC_STATEMENT)
    assert refused.status_code == 409 and VID_STATEMENT in refused.get_json()["error"]
    assert post_payment(client, VID_STATEMENT).status_code == 200  # the same payment again: changes nothing
    assert (paid_fen(client, app, CMCC), paid_fen(client, app, CTCC)) == (950, 0)


def test_one_reference_posted_at_once_on_two_subscribers_statements_is_recorded_once(two_owing, client, app) -> None:
    statuses: dict[str, list[int]] = {VID_STATEMENT: [], CTCC_STATEMENT: []}

    def post(statement_id: str) -> None:
        statuses[statement_id].append(post_payment(app.test_client(), statement_id).status_code)

    threads = [threading.Thread(target=post, args=(sid,)) for sid in [VID_STATEMENT, CTCC_STATEMENT] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    credited = sorted([paid_fen(client, app, CMCC), paid_fen(client, app, CTCC)])
    assert credited == [0, 950], statuses
    assert sorted(statuses.values()) == [[200] * 4, [409] * 4]


def test_a_reference_refused_for_a_statement_that_does_not_exist_stays_free(two_owing, client) -> None:
    assert post_payment(client, "8613800138000-nope-20261107").status_code == 404
    assert post_payment(client, CTCC_STATEMENT).status_code == 200


# --- a JF charge confirmed in time, and money arriving late while it is retried ------------------------------------


@pytest.fixture
def jf_in_time_retrying(phone, app, clock) -> Phone:
    """JF confirmed for 9.50 at 23:00 on the deadline day, 2 Dec; the backend fails that first try."""
    runtime = phone.runtime
    cancel(phone)
    runtime.billing = FailingBilling(RedisLedger(runtime.redis, runtime.keys, runtime.clock), runtime.redis,
                                     runtime.keys.shared(BILLING_DRILL), 1)
    clock.now = local(2026, 12, 2, 23, 0)
    phone.send("JF")
    phone.send("Y")
    phone.send(phone.last_code())
    phone.deliver()
    return phone


@pytest.mark.parametrize(("at_the_bank", "jf_takes"), [(300, 650), (950, None)])
def test_money_paid_late_while_a_jf_charge_confirmed_in_time_is_pending_draws_no_late_fee(
    jf_in_time_retrying, app, clock, at_the_bank: int, jf_takes: int | None
) -> None:
    """At 00:30 the subscriber also pays at the bank; the retry takes what is left, or nothing. The whole 9.50 was
    committed in time, and the bank's money stood in for part or all of it: no late fee."""
    phone = jf_in_time_retrying
    clock.now = local(2026, 12, 3, 0, 30)
    assert post_payment(phone.client, VID_STATEMENT, "bank-late", at_the_bank).status_code == 200
    run_due(app)  # the deadline check
    run_scheduled(phone.runtime, 10)  # the retry

    statement = phone.subscriber()["statements"][0]
    taken = [(p["reference"][:3], p["amount_fen"]) for p in statement["payments"]]
    assert taken == [("ban", at_the_bank)] + ([("JF-", jf_takes)] if jf_takes else [])
    assert (statement["status"], statement["late_fee_fen"], statement["owed_fen"]) == ("paid", 0, 0)
    assert [t for t in phone.inbox() if "逾期" in t] == []
