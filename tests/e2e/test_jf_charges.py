"""`JF` charges that go wrong: a retry after money was taken, a backend failing with anything at all until the tries
run out, a charge confirmed before the deadline that completes or fails after it. Through the signed webhook, the API,
the real store and real RQ jobs (docs/billing.md, "Payments and charges (JF)" and "Late fees")."""

from __future__ import annotations

from datetime import datetime

import pytest

from dialogs.apply import apply
from dialogs.effects import Pay
from dialogs.messages import render
from dialogs.payments import charge_reference
from dialogs.reasons import OVERPAID, PAYMENT_FAILED
from gateway.jobs import charges
from gateway.state import audit
from gateway.state.ledger import PaymentReceipt, RedisLedger
from tests.support.phone import Phone, api_headers
from tests.support.reminders import CMCC, local, outbox, run_due
from tests.support.scheduled import run_scheduled, scheduled_jobs

VID = "8613800138000-vid-20261107"
SIGN = "【中国移动】"
OVERDUE_NOTICE = SIGN + "您的视频会员结算单已逾期，加收滞纳金0.48元，待缴9.98元，回JF缴费。回R拒收"


class Unreachable:
    """A payment backend whose network is down: every charge raises ConnectionError, not PaymentFailed."""

    def __init__(self, ledger: RedisLedger) -> None:
        self.ledger = ledger

    def charge(self, msisdn: str, statement_id: str, amount_fen: int, reference: str) -> PaymentReceipt:
        raise ConnectionError("payment backend unreachable")

    def receipt(self, msisdn: str, reference: str) -> PaymentReceipt | None:
        return self.ledger.receipt(msisdn, reference)


pytestmark = pytest.mark.usefixtures("owing")  # every test starts from 9.50 owed


def ledger(phone: Phone) -> RedisLedger:
    return RedisLedger(phone.runtime.redis, phone.runtime.keys, phone.runtime.clock)


def unreachable(phone: Phone) -> None:
    phone.runtime.billing = Unreachable(ledger(phone))


def confirm_jf(phone: Phone) -> str:
    """JF, Y and the code, without running the charge job; returns the pending charge's reference."""
    phone.runtime.clock.advance(minutes=1)  # at most one code a minute
    assert "9.50元（待缴）" in phone.send("JF")
    phone.send("Y")
    assert phone.send(phone.last_code()) == SIGN + render("zh", "pay_started", amount="9.50元")
    return statement(phone)["pending_reference"]


def statement(phone: Phone) -> dict:
    return next(s for s in phone.subscriber()["statements"] if s["id"] == VID)


def post_payment(phone: Phone, amount: int, reference: str, paid_at: datetime | None = None) -> dict:
    body = {"amount_fen": amount, "reference": reference, **({"paid_at": paid_at.isoformat()} if paid_at else {})}
    response = phone.client.post(f"/api/v1/statements/{VID}/payments", json=body, headers=api_headers())
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def run_out_the_retries(phone: Phone) -> None:
    phone.deliver()
    for interval in charges.RETRY_INTERVALS:
        assert scheduled_jobs(phone.runtime) == 1
        run_scheduled(phone.runtime, interval)
    assert scheduled_jobs(phone.runtime) == 0


def text(key: str, **values: object) -> str:
    return SIGN + render("zh", key, **values)


# --- a retry finds the money already taken (item 1) --------------------------------------------


@pytest.mark.parametrize(("elsewhere", "paid_fen"), [(300, 1250), (950, 1900)])
def test_a_retried_charge_records_the_receipt_its_first_try_took(phone, elsewhere: int, paid_fen: int) -> None:
    reference = confirm_jf(phone)
    # The first try took 9.50 and its worker died before recording it; RQ will run the job again.
    ledger(phone).charge(CMCC, VID, 950, reference)
    post_payment(phone, elsewhere, "bank-1")  # meanwhile a payment made elsewhere arrives
    inbox = phone.inbox()  # the retry runs

    after = statement(phone)
    assert (after["status"], after["paid_fen"], after["owed_fen"]) == ("paid", paid_fen, 0)
    assert [(p["reference"], p["amount_fen"]) for p in after["payments"]] == [("bank-1", elsewhere), (reference, 950)]
    assert [(r.reference, r.amount_fen) for r in ledger(phone).receipts(CMCC)] == [(reference, 950)]
    assert (CMCC, OVERPAID) in phone.runtime.store.escalations()  # paid_fen - 950 is to be refunded
    assert inbox[-1] == text("pay_done", name="视频会员", amount="9.50元")
    assert text("pay_failed") not in inbox


# --- failing until the tries run out (item 2) ---------------------------------------------------


def test_a_charge_failing_with_any_error_until_its_tries_run_out_is_released_told_and_escalated(phone) -> None:
    unreachable(phone)
    confirm_jf(phone)
    run_out_the_retries(phone)

    after = statement(phone)
    assert (after["status"], after["paid_fen"], after["pending_reference"]) == ("open", 0, "")
    assert (CMCC, PAYMENT_FAILED) in phone.runtime.store.escalations()
    inbox = phone.inbox()
    assert inbox.count(text("pay_retrying")) == 1
    assert inbox[-1] == text("pay_failed")
    assert "9.50元（待缴）" in phone.send("JF")  # the subscriber may pay again


def test_a_charge_whose_last_try_took_the_money_records_it_rather_than_failing(phone) -> None:
    unreachable(phone)
    reference = confirm_jf(phone)
    phone.deliver()
    for interval in charges.RETRY_INTERVALS[:-1]:
        run_scheduled(phone.runtime, interval)
    # The backend took the money on the last try and the connection dropped before it answered.
    ledger(phone).charge(CMCC, VID, 950, reference)
    run_scheduled(phone.runtime, charges.RETRY_INTERVALS[-1])

    after = statement(phone)
    assert (after["status"], after["paid_fen"], after["pending_reference"]) == ("paid", 950, "")
    assert phone.inbox()[-1] == text("pay_done", name="视频会员", amount="9.50元")
    assert (CMCC, PAYMENT_FAILED) not in phone.runtime.store.escalations()


# --- a charge confirmed before the deadline (item 3) --------------------------------------------


def test_a_charge_confirmed_before_the_deadline_and_completed_after_it_draws_no_late_fee(phone, app, clock) -> None:
    clock.now = local(2026, 12, 2, 22, 59)
    confirm_jf(phone)  # at 23:00
    clock.now = local(2026, 12, 3, 0, 0, 30)
    run_due(app)  # the deadline check runs before the charge job

    after = statement(phone)
    assert (after["status"], after["late_fee_fen"], after["paid_fen"]) == ("paid", 0, 950)
    assert after["payments"][0]["paid_at"] == local(2026, 12, 2, 23, 0).isoformat()  # paid at the code
    clock.now = local(2026, 12, 3, 9, 0)
    run_due(app)
    assert [t for t in outbox(app, CMCC) if "逾期" in t] == []


def test_a_charge_confirmed_before_the_deadline_that_finally_fails_turns_the_statement_overdue(
    phone, app, clock
) -> None:
    unreachable(phone)
    clock.now = local(2026, 12, 2, 23, 0)
    confirm_jf(phone)
    clock.now = local(2026, 12, 3, 7, 0)
    run_due(app)  # the deadline check, then the first try fails
    assert (statement(phone)["status"], statement(phone)["late_fee_fen"]) == ("open", 0)

    run_out_the_retries(phone)
    after = statement(phone)
    assert (after["status"], after["late_fee_fen"], after["pending_reference"]) == ("overdue", 48, "")
    assert phone.inbox()[-1] == text("pay_failed")
    clock.now = local(2026, 12, 3, 8, 0)  # the overdue notice waits for the end of quiet hours
    run_due(app)
    assert [t for t in outbox(app, CMCC) if "逾期" in t] == [OVERDUE_NOTICE]


def lost_charge(phone: Phone, confirmed_at: datetime) -> str:
    """A charge pending on the statement whose job is gone (a work horse killed on its last try gets no callback)."""
    reference = charge_reference(VID, int(confirmed_at.timestamp()))
    phone.runtime.store.update_subscriber(CMCC, lambda s: apply(s, [Pay(VID, 950, reference)], confirmed_at))
    return reference


def test_at_the_deadline_a_charge_whose_job_is_lost_is_ended_as_failed(phone, app, clock) -> None:
    lost_charge(phone, local(2026, 12, 2, 23, 30))
    clock.now = local(2026, 12, 2, 23, 59, 59)
    run_due(app)
    assert statement(phone)["status"] == "open"  # confirmed less than an hour ago: its job may still come

    clock.advance(seconds=charges.IN_FLIGHT_FOR)
    run_due(app)
    after = statement(phone)
    assert (after["status"], after["late_fee_fen"], after["pending_reference"]) == ("overdue", 48, "")
    assert (CMCC, PAYMENT_FAILED) in phone.runtime.store.escalations()
    assert text("pay_failed") in phone.inbox()


def test_at_the_deadline_a_lost_charge_the_ledger_took_is_recorded(phone, app, clock) -> None:
    reference = lost_charge(phone, local(2026, 12, 2, 22, 0))
    ledger(phone).charge(CMCC, VID, 950, reference)
    clock.now = local(2026, 12, 3, 9, 0)
    run_due(app)
    after = statement(phone)
    assert (after["status"], after["late_fee_fen"], after["paid_fen"]) == ("paid", 0, 950)
    paid_at_the_code = local(2026, 12, 2, 22, 0).isoformat()  # in time
    assert after["payments"] == [{"reference": reference, "amount_fen": 950, "paid_at": paid_at_the_code,
                                  "in_time_fen": 0}]


def test_a_charge_confirmed_after_the_deadline_does_not_hold_off_the_late_fee(phone, app, clock) -> None:
    lost_charge(phone, local(2026, 12, 3, 0, 5))
    clock.now = local(2026, 12, 3, 0, 10)
    run_due(app)
    assert (statement(phone)["status"], statement(phone)["late_fee_fen"]) == ("overdue", 48)


# --- the late fee a failed charge lets in is audited (docs/billing.md, Late fees, rule 3) ------------------------


def late_fees_audited(phone: Phone) -> list[str]:
    trail = audit.read_all(phone.runtime.redis, phone.runtime.keys.audit(CMCC))
    return [c for e in trail if e["kind"] == audit.CHANGE for c in e["changes"] if "late fee" in c]


def test_the_late_fee_a_charge_failing_for_good_past_the_deadline_lets_in_is_audited_once(phone, app, clock) -> None:
    """Once it had only the statement's record: the failed charge turned it overdue, and the deadline check that
    tells the subscriber found nothing left to change, so it wrote nothing."""
    unreachable(phone)
    clock.now = local(2026, 12, 2, 23, 0)
    confirm_jf(phone)
    clock.now = local(2026, 12, 3, 7, 0)
    run_due(app)
    run_out_the_retries(phone)
    clock.now = local(2026, 12, 3, 8, 0)
    run_due(app)
    assert [t for t in outbox(app, CMCC) if "逾期" in t] == [OVERDUE_NOTICE]
    assert late_fees_audited(phone) == [f"statement {VID} overdue, late fee CNY 0.48"]


def test_the_late_fee_a_lost_charge_ended_at_the_deadline_lets_in_is_audited_once(phone, app, clock) -> None:
    lost_charge(phone, local(2026, 12, 2, 23, 30))
    clock.now = local(2026, 12, 3, 0, 30)
    clock.advance(seconds=charges.IN_FLIGHT_FOR)
    run_due(app)
    clock.now = local(2026, 12, 3, 8, 0)
    run_due(app)
    assert statement(phone)["status"] == "overdue"
    assert late_fees_audited(phone) == [f"statement {VID} overdue, late fee CNY 0.48"]
