"""Money the carrier reports paid after the cancel (docs/billing.md, Payments, rule 9; Late fees, rule 7): an import
for the period a statement bills credits it, through the API, `tdbot import`, the signed SMS webhook, the real store,
RQ jobs and the deadline check."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialogs.reasons import OVERPAID, PAID_REPORTED_LOWER, PAYMENT_UNRECORDED
from gateway.cli import main
from gateway.state import audit, escalations, overdue_list
from gateway.state.keys import PAYMENT_REFERENCES
from gateway.state.ledger import RedisLedger
from tests.support.phone import Phone, api_headers
from tests.support.reminders import CMCC, cancel, local, put, run_due

VID = "8613800138000-vid-20261107"


@pytest.fixture
def phone(owing: Phone) -> Phone:
    """Imported renewing 7 Dec with nothing paid, cancelled on 25 Nov: 9.50 open."""
    return owing


def reimport(phone: Phone, paid: int, renews_on: str = "2026-12-07", client=None) -> None:
    """The carrier's back office sends the package again, with what it reports paid for the period."""
    body = {"carrier": "cmcc", "locale": "zh", "subscriptions": [
        {"id": "vid", "name": "视频会员", "service_code": "VID", "fee_fen": 1500, "renews_on": renews_on,
         "paid_fen": paid}]}
    response = (client or phone.client).put(f"/api/v1/subscribers/{CMCC}", json=body, headers=api_headers())
    assert response.status_code == 200, response.get_json()


def statement(phone: Phone) -> dict:
    [found] = phone.subscriber()["statements"]
    return found


def owed(phone: Phone) -> int:
    return statement(phone)["owed_fen"]


def payments(phone: Phone) -> list[tuple[str, int]]:
    return [(p["reference"], p["amount_fen"]) for p in statement(phone)["payments"]]


def vid(phone: Phone) -> dict:
    [sub] = phone.subscriber()["subscriptions"]
    return sub


def escalated(phone: Phone) -> dict[str, dict]:
    return {e.reason: e.context for e in escalations.listing(phone.runtime.redis, phone.runtime.keys)}


def audited_payments(phone: Phone) -> list[tuple[str, int, int]]:
    trail = audit.read_all(phone.runtime.redis, phone.runtime.keys.audit(CMCC))
    return [(e["reference"], e["amount_fen"], e["owed_fen"]) for e in trail if e["kind"] == audit.PAYMENT]


def test_a_period_the_carrier_reports_paid_after_the_cancel_is_not_asked_for_again(phone) -> None:
    """The auditor's case: 15.00 reported paid for 7 Nov - 7 Dec after a cancel leaving 9.50 open. The statement
    asked 9.50 still: 24.50 for a period that cost 9.50."""
    reimport(phone, paid=1500)
    after = statement(phone)
    assert (after["status"], after["owed_fen"], after["paid_fen"]) == ("paid", 0, 1500)
    assert payments(phone) == [(f"IMPORT-{VID}-0-1500", 1500)]
    assert escalated(phone) == {OVERPAID: {
        "statement": VID, "reference": f"IMPORT-{VID}-0-1500", "overpaid_fen": 550}}  # 15.00 for a 9.50 period
    assert audited_payments(phone) == [(f"IMPORT-{VID}-0-1500", 1500, 0)]
    assert "您当前没有待缴费用" in phone.send("JF")


def test_the_same_import_twice_changes_nothing(phone) -> None:
    reimport(phone, paid=1500)
    before = phone.subscriber()
    reimport(phone, paid=1500)
    assert phone.subscriber() == before
    assert audited_payments(phone) == [(f"IMPORT-{VID}-0-1500", 1500, 0)]


def test_a_later_import_reporting_more_records_only_the_difference(phone) -> None:
    reimport(phone, paid=700)
    assert (owed(phone), payments(phone)) == (250, [(f"IMPORT-{VID}-0-700", 700)])
    assert escalated(phone) == {}
    reimport(phone, paid=1200)
    assert (owed(phone), statement(phone)["status"]) == (0, "paid")
    assert payments(phone) == [(f"IMPORT-{VID}-0-700", 700), (f"IMPORT-{VID}-700-1200", 500)]
    assert escalated(phone)[OVERPAID]["overpaid_fen"] == 250
    assert vid(phone)["paid_fen"] == 1200


def test_a_later_import_reporting_less_takes_nothing_back_and_asks_a_person(phone) -> None:
    reimport(phone, paid=700)
    before = phone.subscriber()
    reimport(phone, paid=300)
    assert phone.subscriber() == before  # 7.00 stays credited, the larger total stays stored
    assert escalated(phone)[PAID_REPORTED_LOWER] == {"statement": VID, "reported_fen": 300, "stored_fen": 700}


def test_an_import_for_another_period_changes_nothing(phone) -> None:
    before = phone.subscriber()
    reimport(phone, paid=1500, renews_on="2027-01-07")
    assert phone.subscriber() == before
    assert (vid(phone)["renews_on"], vid(phone)["paid_fen"], owed(phone)) == ("2026-12-07", 0, 950)
    assert escalated(phone) == {}


def test_tdbot_import_credits_the_statement_as_the_api_does(phone, redis_url: str, tmp_path: Path) -> None:
    csv = tmp_path / "subs.csv"
    csv.write_text("msisdn,carrier,locale,id,name,service_code,fee_fen,renews_on,paid_fen\n"
                   f"{CMCC},cmcc,zh,vid,视频会员,VID,1500,2026-12-07,700\n", encoding="utf-8")
    env = {"REDIS_URL": redis_url, "TDBOT_DATA_DIR": str(tmp_path / "data"), "TDBOT_KEY_PREFIX": "tdbot"}
    for _ in range(2):
        result = CliRunner().invoke(main, ["import", str(csv)], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert (owed(phone), payments(phone)) == (250, [(f"IMPORT-{VID}-0-700", 700)])


def test_a_period_with_a_charge_line_of_ours_is_credited_on_the_line_not_twice(client, app, clock) -> None:
    """Renewed by us on 7 Dec (15.00 for 7 Dec - 7 Jan), cancelled on 25 Dec: the line bills the 19 days, the
    statement asks 0. The carrier then reports the 15.00 paid: the rest is the line's credit, the carrier's to refund,
    and nothing is recorded on the statement or escalated."""
    put(client, CMCC, "cmcc", "zh", ("vid", "视频会员", 1500, "2026-12-07"))
    phone = Phone(client, app, CMCC)
    clock.now = local(2026, 12, 7)
    run_due(app)
    clock.now = local(2026, 12, 25, 10)
    cancel(phone)
    before = phone.subscriber()
    reimport(phone, paid=1500, renews_on="2027-01-07")
    after = phone.subscriber()
    assert after["statements"] == before["statements"] and after["charges"] == before["charges"]
    [line] = after["charges"]
    assert line["amount_fen"] - line["credited_fen"] == -(-1500 * 19 // 31)
    assert escalated(phone) == {}


def test_money_reported_before_the_deadline_is_timely(phone, clock) -> None:
    clock.now = local(2026, 12, 2, 23)
    reimport(phone, paid=950)
    clock.now = local(2026, 12, 3, 0, 1)
    run_due(phone.app)
    assert (statement(phone)["status"], statement(phone)["late_fee_fen"], owed(phone)) == ("paid", 0, 0)


def test_money_reported_after_the_deadline_lowers_what_is_owed_not_the_late_fee(phone, clock) -> None:
    """The import does not say when the money was paid: it is paid when we heard of it, after the deadline."""
    clock.now = local(2026, 12, 3, 0, 1)
    run_due(phone.app)
    assert (statement(phone)["status"], statement(phone)["late_fee_fen"]) == ("overdue", 48)  # 5% of 9.50
    reimport(phone, paid=950)
    after = statement(phone)
    assert (after["status"], after["late_fee_fen"], after["owed_fen"]) == ("overdue", 48, 48)


def test_an_overdue_statement_the_import_settles_leaves_the_consoles_overdue_list(phone, clock) -> None:
    clock.now = local(2026, 12, 3, 0, 1)
    run_due(phone.app)
    assert overdue_list.count(phone.runtime.redis, phone.runtime.keys) == 1
    reimport(phone, paid=1500)
    assert owed(phone) == 0 and overdue_list.count(phone.runtime.redis, phone.runtime.keys) == 0


def test_a_jf_charge_pending_when_the_import_settles_the_statement_takes_nothing(phone) -> None:
    phone.runtime.clock.advance(minutes=1)  # at most one code a minute
    phone.send("JF")
    phone.send("Y")
    phone.send(phone.last_code())  # the charge is pending; its job has not run
    reimport(phone, paid=1500)
    phone.deliver()  # the charge job finds nothing pending
    assert RedisLedger(phone.runtime.redis, phone.runtime.keys, phone.runtime.clock).receipts(CMCC) == []
    after = statement(phone)
    assert (after["status"], after["owed_fen"], after["pending_reference"]) == ("paid", 0, "")


def test_money_paid_to_us_and_then_reported_paid_to_the_carrier_is_escalated_for_a_refund(phone) -> None:
    response = phone.client.post(f"/api/v1/statements/{VID}/payments", json={"amount_fen": 950, "reference": "bank-1"},
                                 headers=api_headers())
    assert response.status_code == 200
    escalations_before = escalated(phone)
    reimport(phone, paid=600)
    assert escalations_before == {}
    assert payments(phone) == [("bank-1", 950), (f"IMPORT-{VID}-0-600", 600)]
    assert escalated(phone)[OVERPAID]["overpaid_fen"] == 600


def test_an_import_reference_held_by_a_posted_payment_records_nothing_and_asks_a_person(phone, client, app) -> None:
    """Only a payment posted under the import's own reference can hold it: the import keeps the old total, so a later
    import tries again, and a person is asked to look."""
    other = "8618600000000-news-20261110"
    put(client, "+8618600000000", "cucc", "zh", ("news", "手机报", 500, "2026-12-10"))
    cancel(Phone(client, app, "+8618600000000"))
    response = client.post(f"/api/v1/statements/{other}/payments",
                           json={"amount_fen": 100, "reference": f"IMPORT-{VID}-0-700"}, headers=api_headers())
    assert response.status_code == 200
    reimport(phone, paid=700)
    assert (owed(phone), payments(phone), vid(phone)["paid_fen"]) == (950, [], 0)
    assert escalated(phone)[PAYMENT_UNRECORDED] == {
        "statement": VID, "reference": f"IMPORT-{VID}-0-700", "amount_fen": 700}


@pytest.mark.parametrize("totals", [[1500] * 8, [300, 700, 1200, 1500, 700, 300, 1500, 1200]])
def test_imports_sent_at_once_credit_each_fen_once_and_leave_no_stray_claim(phone, app, totals: list[int]) -> None:
    threads = [threading.Thread(target=reimport, args=(phone, paid), kwargs={"client": app.test_client()})
               for paid in totals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorded = payments(phone)
    assert sum(amount for _, amount in recorded) == 1500 and vid(phone)["paid_fen"] == 1500
    assert len({reference for reference, _ in recorded}) == len(recorded)
    claimed = phone.runtime.redis.hgetall(phone.runtime.keys.shared(PAYMENT_REFERENCES))
    assert sorted(k.decode() for k in claimed) == sorted(reference for reference, _ in recorded)
