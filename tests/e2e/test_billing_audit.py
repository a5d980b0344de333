"""A carrier's billing auditor checks every fen: imports, renewals and payments arriving at the awkward moments
(between the quote and the code, inside a period already charged), through the API, the signed SMS webhook and the
real renewal and deadline jobs. Each case states what the subscriber owes by docs/billing.md."""

from __future__ import annotations

import pytest

from tests.support.phone import Phone, api_headers
from tests.support.reminders import CMCC, cancel, local, put, run_due

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


def test_a_cancel_after_that_renewal_bills_each_day_once(moved, app, clock) -> None:
    clock.now = local(2026, 12, 20)
    run_due(app)
    clock.now = local(2026, 12, 25, 10)
    cancel(moved)
    billed = sum(amount - credited for _, _, amount, credited in charges(moved))
    assert statements(moved) == [("8613800138000-vid-20261220", 0, "paid")]
    assert billed == -(-1500 * 13 // 31) + -(-1500 * 6 // 31)  # 7-20 Dec on the first line, 20-25 Dec on the second
