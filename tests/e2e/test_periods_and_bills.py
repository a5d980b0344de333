"""Periods, deadlines and one bill per period (docs/billing.md), through the API, the signed SMS webhook and the
renewal and deadline jobs: the examples of issue 9, items 4 to 7."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.support.phone import Phone
from tests.support.reminders import CMCC, CUCC, local, put, run_due

VID = ("vid", "视频会员", 1500, "2026-12-07")
VID_STATEMENT = "8613800138000-vid-20261107"


@pytest.fixture
def phone(client, app) -> Phone:
    put(client, CMCC, "cmcc", "zh", VID)
    return Phone(client, app, CMCC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def charges(phone: Phone) -> list[tuple]:
    return [(c["subscription_id"], c["period_start"], c["amount_fen"], c.get("credited_fen"), c.get("statement_id"))
            for c in phone.subscriber()["charges"]]


def statements(phone: Phone) -> list[tuple[str, int, str]]:
    return [(s["id"], s["amount_fen"], s["status"]) for s in phone.subscriber()["statements"]]


def vid(phone: Phone) -> dict:
    return next(s for s in phone.subscriber()["subscriptions"] if s["id"] == "vid")


# --- deadlines (item 4) ---------------------------------------------------------------------------------------


def test_a_code_after_midnight_is_due_by_the_rule_at_completion_and_owes_no_late_fee_before(phone, app, clock):
    clock.now = local(2026, 11, 25, 23, 58)
    assert "截止12月2日" in phone.send("TD 1")
    phone.send("Y")
    clock.now = local(2026, 11, 26, 0, 1)
    phone.send(phone.last_code())
    assert "截止12月3日" in phone.inbox()[-1]
    statement = phone.subscriber()["statements"][0]
    assert (statement["amount_fen"], at(statement["due_at"])) == (950, local(2026, 12, 3, 23, 59, 59))
    clock.now = local(2026, 12, 3, 0, 0, 5)
    run_due(app)
    assert statements(phone) == [(VID_STATEMENT, 950, "open")]
    clock.now = local(2026, 12, 4, 0, 0)
    run_due(app)
    assert statements(phone) == [(VID_STATEMENT, 950, "overdue")]


def test_unicom_confirmed_at_10_08_is_due_at_10_08_the_next_day(client, app, clock) -> None:
    put(client, CUCC, "cucc", "zh", ("news", "手机报", 500, "2026-12-10"))
    phone = Phone(client, app, CUCC)
    clock.now = local(2026, 11, 25, 10, 0)
    assert "截止11月26日10:00" in phone.send("TD 1")
    phone.send("Y")
    clock.now = local(2026, 11, 25, 10, 6)
    phone.send("Y")  # the first code has lapsed: a new one
    clock.now = local(2026, 11, 25, 10, 8)
    phone.send(phone.last_code())
    assert "截止11月26日10:08" in phone.inbox()[-1]
    assert at(phone.subscriber()["statements"][0]["due_at"]) == local(2026, 11, 26, 10, 8)


# --- anchor days and proration (item 5) -----------------------------------------------------------------------


def test_a_month_end_package_renews_on_its_anchor_day_every_month(client, app, clock) -> None:
    put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 3100, "2026-12-31"))
    phone, seen = Phone(client, app, CMCC), []
    for day in (local(2026, 12, 31), local(2027, 1, 31), local(2027, 2, 28), local(2027, 3, 31)):
        clock.now = day
        run_due(app)
        seen.append(vid(phone)["renews_on"])
    assert seen == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]
    assert [c[1] for c in charges(phone)] == ["2026-12-31", "2027-01-31", "2027-02-28", "2027-03-31"]


def test_an_import_rolled_forward_and_the_renewal_job_keep_the_same_anchor(client, app, clock) -> None:
    put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-01-31"))
    phone = Phone(client, app, CMCC)
    assert vid(phone)["renews_on"] == "2026-11-30"
    clock.now = local(2026, 11, 30)
    run_due(app)
    assert vid(phone)["renews_on"] == "2026-12-31"


def test_cancelling_a_31st_package_on_the_31st_prorates_over_the_period_that_began_that_day(client, app, clock):
    """31.00/month imported on 31 Jan as renewing 31 Dec, rolled to 28 Feb: the period is 31 Jan - 28 Feb, 28 days."""
    clock.now = local(2027, 1, 31, 10)
    put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 3100, "2026-12-31"))
    phone = Phone(client, app, CMCC)
    assert vid(phone)["renews_on"] == "2027-02-28"
    assert "结清1.11元" in phone.send("TD 1")  # ceil(3100 × 1 / 28)


# --- one period, one bill (item 6) ----------------------------------------------------------------------------


def test_a_cancel_after_a_renewal_re_rates_the_charged_period_instead_of_billing_it_again(phone, app, clock):
    clock.now = local(2026, 12, 7)
    run_due(app)
    clock.now = local(2026, 12, 25, 10)
    phone.send("TD 1")
    phone.send("Y")
    phone.send(phone.last_code())
    assert "视频会员已退订，无需结算" in phone.inbox()[-1]
    statement_id = "8613800138000-vid-20261207"
    assert statements(phone) == [(statement_id, 0, "paid")]
    cost = -(-1500 * 19 // 31)  # 7 Dec - 7 Jan, 19 of 31 days
    assert charges(phone) == [("vid", "2026-12-07", 1500, 1500 - cost, statement_id)]


def test_a_renewal_between_yes_and_the_code_is_undone(phone, app, clock) -> None:
    clock.now = local(2026, 12, 6, 23, 58)
    assert "结清15.00元" in phone.send("TD 1")
    phone.send("Y")
    clock.now = local(2026, 12, 7, 0, 0)
    run_due(app)
    assert charges(phone) == [("vid", "2026-12-07", 1500, 0, "")]
    clock.now = local(2026, 12, 7, 0, 1)
    phone.send(phone.last_code())
    assert statements(phone) == [(VID_STATEMENT, 1500, "open")]
    assert charges(phone) == [("vid", "2026-12-07", 1500, 1500, VID_STATEMENT)]
    assert (vid(phone)["status"], vid(phone)["renews_on"]) == ("cancelled", "2026-12-07")


def test_a_plan_ordered_with_bg_gets_its_first_periods_charge_line(phone, clock) -> None:
    phone.send("BG")
    phone.send("1")
    phone.send("Y")
    assert charges(phone) == [("sphy-20261125", "2026-11-25", 1500, 0, "")]
    assert phone.subscriber()["charges"][0]["period_end"] == "2026-12-25"


# --- imported paid_fen (item 7) -------------------------------------------------------------------------------


def test_paid_fen_from_the_api_is_kept_and_credited_on_the_quote(client, app) -> None:
    body = {"carrier": "cmcc", "locale": "zh", "subscriptions": [
        {"id": "vid", "name": "视频会员", "service_code": "SPHY", "fee_fen": 1500, "renews_on": "2026-12-07",
         "paid_fen": 1500}]}
    response = client.put(f"/api/v1/subscribers/{CMCC}", json=body, headers={"Authorization": "Bearer test-api-token"})
    assert response.status_code == 200, response.get_json()
    phone = Phone(client, app, CMCC)
    assert vid(phone)["paid_fen"] == 1500
    assert "结清0.00元" in phone.send("TD 1")
