"""Settlement deadlines: open and owing turns overdue with the carrier's late fee once, and the subscriber is told."""

from __future__ import annotations

import re

import pytest

from dialogs.reminders import DEADLINE, Reminder
from gateway.jobs import charges, sweeper
from gateway.state import due
from tests.support.phone import Phone, api_headers
from tests.support.reminders import CMCC, CUCC, cancel, local, outbox, put, run_due

OVERDUE_CMCC = "【中国移动】您的视频会员结算单已逾期，加收滞纳金0.48元，待缴9.98元，回JF缴费。回R拒收"


def overdue_notices(texts: list[str]) -> list[str]:
    return [t for t in texts if "逾期" in t or "overdue" in t]


def statement(phone: Phone) -> dict:
    return phone.subscriber()["statements"][0]


@pytest.fixture
def phone(client, app) -> Phone:
    """China Mobile: cancelled 25 Nov 10:00, 9.50元 due by 2 Dec 23:59:59, late fee 5%."""
    put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-12-07"))
    phone = Phone(client, app, CMCC)
    cancel(phone)
    return phone


def test_an_open_statement_turns_overdue_at_its_deadline_with_the_late_fee(phone, app, clock) -> None:
    clock.now = local(2026, 12, 2, 23, 59, 58)
    run_due(app)
    assert statement(phone)["status"] == "open"
    clock.now = local(2026, 12, 2, 23, 59, 59)
    run_due(app)
    st = statement(phone)
    assert (st["status"], st["late_fee_fen"], st["owed_fen"]) == ("overdue", 48, 998)  # 5% of 950, half up


def test_the_overdue_notice_waits_for_the_end_of_quiet_hours(phone, app, clock) -> None:
    clock.now = local(2026, 12, 3, 0, 0)
    run_due(app)
    assert overdue_notices(outbox(app, CMCC)) == []
    clock.now = local(2026, 12, 3, 8, 0)
    run_due(app)
    assert overdue_notices(outbox(app, CMCC)) == [OVERDUE_CMCC]


def test_a_replayed_deadline_applies_the_late_fee_once_and_tells_once(phone, app, clock) -> None:
    clock.now = local(2026, 12, 3, 9, 0)
    run_due(app)
    deadline = due.member(Reminder(DEADLINE, CMCC, statement(phone)["id"]))
    sweeper.send_batch([deadline], 0)
    run_due(app)
    assert statement(phone)["late_fee_fen"] == 48
    assert overdue_notices(outbox(app, CMCC)) == [OVERDUE_CMCC]


def test_without_a_late_fee_rule_the_notice_says_only_what_is_owed(client, app, clock) -> None:
    put(client, CUCC, "cucc", "zh", ("news", "手机报", 500, "2026-12-07"))
    phone = Phone(client, app, CUCC)
    cancel(phone)
    clock.now = local(2026, 11, 26, 10, 0)  # Unicom: 24 hours after the cancel, not at night
    run_due(app)
    assert (statement(phone)["status"], statement(phone)["late_fee_fen"]) == ("overdue", 0)
    assert overdue_notices(outbox(app, CUCC)) == ["【中国联通】您的手机报结算单已逾期，待缴5.00元，回JF缴费。回R拒收"]


@pytest.mark.parametrize(("paid", "status", "late_fee"), [(950, "paid", 0), (450, "overdue", 25)])
def test_what_is_paid_by_the_deadline_is_not_charged_a_late_fee(phone, client, app, clock, paid, status, late_fee):
    response = client.post(
        f"/api/v1/statements/{statement(phone)['id']}/payments", json={"amount_fen": paid, "reference": "bank-7"},
        headers=api_headers(),
    )
    assert response.status_code == 200, response.get_json()
    clock.now = local(2026, 12, 3, 8, 0)
    run_due(app)
    assert (statement(phone)["status"], statement(phone)["late_fee_fen"]) == (status, late_fee)
    assert len(overdue_notices(outbox(app, CMCC))) == (1 if status == "overdue" else 0)


def test_an_opted_out_subscriber_still_goes_overdue_but_is_not_messaged(phone, app, clock) -> None:
    phone.send("拒收")
    clock.now = local(2026, 12, 3, 8, 0)
    run_due(app)
    assert statement(phone)["status"] == "overdue"
    assert overdue_notices(outbox(app, CMCC)) == []


def post_payment(client, phone: Phone, amount: int, reference: str, paid_at: str | None = None) -> dict:
    body = {"amount_fen": amount, "reference": reference, **({"paid_at": paid_at} if paid_at else {})}
    response = client.post(f"/api/v1/statements/{statement(phone)['id']}/payments", json=body, headers=api_headers())
    assert response.status_code == 200, response.get_json()
    return response.get_json()["statement"]


@pytest.mark.parametrize(
    ("paid", "paid_at", "status", "late_fee", "owed"),
    [
        (950, "2026-12-02T23:50:00+08:00", "paid", 0, 0),  # paid in time, heard of at 00:30: the fee is taken back
        (450, "2026-12-02T23:50:00+08:00", "overdue", 25, 525),  # the fee is on the 5.00 unpaid at the deadline
        (950, "2026-12-03T00:10:00+08:00", "overdue", 48, 48),  # paid late: the fee stays
    ],
)
def test_the_late_fee_depends_on_when_the_money_was_paid_not_when_we_heard(
    phone, client, app, clock, paid, paid_at, status, late_fee, owed
) -> None:
    clock.now = local(2026, 12, 3, 0, 0)
    run_due(app)
    assert (statement(phone)["status"], statement(phone)["late_fee_fen"]) == ("overdue", 48)
    clock.now = local(2026, 12, 3, 0, 30)
    after = post_payment(client, phone, paid, "bank-7", paid_at)
    assert (after["status"], after["late_fee_fen"], after["owed_fen"]) == (status, late_fee, owed)
    assert statement(phone) == after
    clock.now = local(2026, 12, 3, 8, 0)
    run_due(app)
    assert len(overdue_notices(outbox(app, CMCC))) == (1 if status == "overdue" else 0)


def test_a_late_fee_already_paid_and_then_taken_back_is_escalated_for_a_refund(phone, client, app, clock) -> None:
    clock.now = local(2026, 12, 3, 9, 0)
    run_due(app)
    post_payment(client, phone, 998, "sms-1")  # the subscriber pays 9.98 with the fee
    after = post_payment(client, phone, 950, "bank-7", "2026-12-02T23:50:00+08:00")  # the bank's, made in time
    assert (after["status"], after["late_fee_fen"], after["paid_fen"]) == ("paid", 0, 1948)
    assert (CMCC, charges.OVERPAID) in app.extensions["tdbot"].store.escalations()


def test_paying_late_before_the_deadline_check_has_run_still_owes_the_late_fee(phone, client, app, clock) -> None:
    clock.now = local(2026, 12, 3, 0, 30)  # the deadline check has not run yet (a backlog)
    after = post_payment(client, phone, 950, "bank-7", "2026-12-03T00:10:00+08:00")
    assert (after["status"], after["late_fee_fen"], after["owed_fen"]) == ("overdue", 48, 48)
    clock.now = local(2026, 12, 3, 8, 0)
    run_due(app)
    assert overdue_notices(outbox(app, CMCC)) == [
        "【中国移动】您的视频会员结算单已逾期，加收滞纳金0.48元，待缴0.48元，回JF缴费。回R拒收"]


def overdue_listed(client) -> float:
    found = re.search(r"^tdbot_statements_overdue (\S+)$", client.get("/metrics").get_data(as_text=True), re.M)
    return float(found.group(1))


@pytest.mark.parametrize(("paid", "listed"), [(998, 0), (500, 1)])
def test_an_overdue_statement_is_listed_for_ops_until_nothing_is_owed(phone, client, app, clock, paid, listed):
    assert overdue_listed(client) == 0
    clock.now = local(2026, 12, 3, 0, 0)
    run_due(app)
    run_due(app)  # the deadline check again: listed once
    assert overdue_listed(client) == 1
    clock.now = local(2026, 12, 3, 9, 0)
    post_payment(client, phone, paid, "bank-8")
    assert overdue_listed(client) == listed
