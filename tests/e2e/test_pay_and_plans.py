"""`JF` (pay by code through the billing port), `BG` (next plan with 二次确认) and STOP, through the signed Twilio
webhook, the real store and real RQ jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from carriers import POLICIES
from dialogs import budgets
from dialogs.effects import Pay
from dialogs.messages import render
from dialogs.reasons import PAYMENT_FAILED
from dialogs.reminders import RENEW, RENEWAL
from gateway import create_app
from gateway.jobs import charges
from gateway.state.demo import DEMO_NUMBERS
from gateway.state.keys import BILLING_DRILL
from gateway.state.ledger import FailingBilling, RedisLedger
from tests.support.phone import Phone, seed_demo
from tests.support.reminders import CUCC, cancel, due, put
from tests.support.scheduled import run_scheduled, scheduled_jobs

CMCC = DEMO_NUMBERS[0]
VID_STATEMENT = "8613800138000-vid-20261107"
VID_OWED = 950  # 15.00 prorated by day, 19 of 30 days
SIGN = "【中国移动】"


@pytest.fixture
def make_phone(test_config: dict) -> Callable[..., Phone]:
    """The China Mobile demo subscriber's phone, on an app built with `config` on top of the test config."""

    def make(**config: object) -> Phone:
        app = create_app({**test_config, **config})
        seed_demo(app)
        return Phone(app.test_client(), app, CMCC)

    return make


@pytest.fixture
def phone(make_phone) -> Phone:
    return make_phone()


def cancel_video(phone: Phone) -> None:
    phone.send("TD 视频")
    phone.send("Y")
    phone.send(phone.last_code())
    phone.runtime.clock.advance(minutes=1)  # at most one code a minute


def start_paying(phone: Phone) -> str:
    """JF → Y → code; returns the reply to the code."""
    cancel_video(phone)
    assert "9.50元（待缴）" in phone.send("JF")
    assert "完成缴费" in phone.send("Y")
    return phone.send(phone.last_code())


def statement(phone: Phone) -> dict:
    return next(s for s in phone.subscriber()["statements"] if s["id"] == VID_STATEMENT)


def receipts(phone: Phone) -> list:
    runtime = phone.runtime
    return RedisLedger(runtime.redis, runtime.keys, runtime.clock).receipts(CMCC)


def text(key: str, **values: object) -> str:
    return SIGN + render("zh", key, **values)


def escalations(phone: Phone) -> list[tuple[str, str]]:
    return phone.runtime.store.escalations()


# --- JF -----------------------------------------------------------------------------------------


def test_jf_pays_the_open_statement_by_code(phone: Phone) -> None:
    assert start_paying(phone) == text("pay_started", amount="9.50元")
    assert statement(phone)["pending_reference"]

    assert phone.inbox()[-1] == text("pay_done", name="视频会员", amount="9.50元")
    paid = statement(phone)
    assert (paid["status"], paid["paid_fen"], paid["owed_fen"], paid["pending_reference"]) == ("paid", VID_OWED, 0, "")
    [receipt] = receipts(phone)
    assert (receipt.statement_id, receipt.amount_fen) == (VID_STATEMENT, VID_OWED)
    assert [p["reference"] for p in paid["payments"]] == [receipt.reference]
    assert phone.send("JF") == text("pay_nothing")
    assert "已结清" in phone.send("ZD")


def test_jf_while_a_charge_is_under_way_starts_no_second_one(phone: Phone) -> None:
    start_paying(phone)
    assert phone.send("JF") == text("pay_pending")
    phone.deliver()
    assert len(receipts(phone)) == 1
    assert statement(phone)["paid_fen"] == VID_OWED


def test_a_charge_job_run_twice_or_after_a_crash_takes_the_money_once(phone: Phone) -> None:
    start_paying(phone)
    pending = statement(phone)
    reference = pending["pending_reference"]
    # A worker that charged and died before recording it: the backend has the charge, the statement does not.
    phone.runtime.billing.charge(CMCC, VID_STATEMENT, VID_OWED, reference)
    charges.enqueue(phone.runtime, CMCC, [Pay(VID_STATEMENT, VID_OWED, reference)])  # and a duplicate job
    inbox = phone.inbox()
    assert len(receipts(phone)) == 1
    paid = statement(phone)
    assert (paid["status"], paid["paid_fen"], len(paid["payments"])) == ("paid", VID_OWED, 1)
    assert inbox.count(text("pay_done", name="视频会员", amount="9.50元")) == 1


def test_a_failing_backend_is_retried_with_backoff_and_the_subscriber_told(make_phone) -> None:
    phone = make_phone(TDBOT_BILLING="failing", TDBOT_BILLING_FAILURES=2)
    assert start_paying(phone) == text("pay_started", amount="9.50元")

    assert phone.inbox()[-1] == text("pay_retrying")
    assert statement(phone)["status"] == "open"
    registry = phone.runtime.queue("default").scheduled_job_registry
    [job_id] = registry.get_job_ids()
    delay = registry.get_scheduled_time(job_id) - datetime.now(UTC)  # RQ schedules retries in real time
    assert timedelta(seconds=5) < delay <= timedelta(seconds=charges.RETRY_INTERVALS[0])

    run_scheduled(phone.runtime, charges.RETRY_INTERVALS[0])  # fails again: told only once
    run_scheduled(phone.runtime, charges.RETRY_INTERVALS[1])  # goes through
    inbox = phone.inbox()
    assert inbox.count(text("pay_retrying")) == 1
    assert inbox[-1] == text("pay_done", name="视频会员", amount="9.50元")
    assert statement(phone)["status"] == "paid"
    assert len(receipts(phone)) == 1
    assert not escalations(phone)


def test_a_backend_that_keeps_failing_is_escalated_and_the_statement_released(make_phone) -> None:
    phone = make_phone(TDBOT_BILLING="failing")
    start_paying(phone)
    phone.deliver()
    for interval in charges.RETRY_INTERVALS:
        assert scheduled_jobs(phone.runtime) == 1
        run_scheduled(phone.runtime, interval)
    assert scheduled_jobs(phone.runtime) == 0
    assert phone.runtime.billing.attempts == len(charges.RETRY_INTERVALS) + 1

    assert (CMCC, PAYMENT_FAILED) in escalations(phone)
    inbox = phone.inbox()
    assert inbox.count(text("pay_retrying")) == 1
    assert inbox[-1] == text("pay_failed")
    after = statement(phone)
    assert (after["status"], after["paid_fen"], after["pending_reference"]) == ("open", 0, "")
    assert receipts(phone) == []
    assert "9.50元（待缴）" in phone.send("JF")  # the subscriber may try again


def test_a_refused_payment_is_not_retried(phone: Phone) -> None:
    runtime = phone.runtime
    drill = runtime.keys.shared(BILLING_DRILL)
    runtime.billing = FailingBilling(runtime.billing, runtime.redis, drill, retryable=False)
    start_paying(phone)
    assert phone.inbox()[-1] == text("pay_failed")
    assert scheduled_jobs(phone.runtime) == 0
    assert phone.runtime.billing.attempts == 1
    assert (CMCC, PAYMENT_FAILED) in escalations(phone)
    assert statement(phone)["pending_reference"] == ""


def test_paying_an_overdue_statement_pays_the_late_fee_too(phone: Phone) -> None:
    cancel_video(phone)
    phone.runtime.store.update_subscriber(CMCC, lambda s: s.with_statement(
        replace(s.statement(VID_STATEMENT), status="overdue", late_fee_fen=48)))
    assert "9.98元（已逾期）" in phone.send("JF")
    phone.send("Y")
    phone.send(phone.last_code())
    phone.deliver()
    paid = statement(phone)
    assert (paid["status"], paid["paid_fen"], paid["owed_fen"]) == ("paid", VID_OWED + 48, 0)


@pytest.mark.parametrize(("msisdn", "carrier", "locale", "name", "fee", "settled"), [
    (CMCC, "cmcc", "en", "Cloud Storage Premium Family Plan 2TB VI", 1500, "Paid CNY 9.50 for Cloud Storage"),
    (CUCC, "cucc", "zh", "咪咕视频钻石会员尊享月包超长名称示例补足到四十个字符长度的名字啊啊啊啊啊啊啊啊啊", 1_000_000,
     "缴费成功：咪咕视频"),
])
def test_the_paid_notice_names_a_long_package_within_its_budget(client, app, msisdn, carrier, locale, name, fee,
                                                                 settled) -> None:
    """The API takes names of 40 characters; the notice that a JF charge went through named them whole, two segments
    on a one-segment budget, and now cuts them only as far as the budget needs."""
    put(client, msisdn, carrier, locale, ("vid", name, fee, "2026-12-07"))
    phone = Phone(client, app, msisdn)
    cancel(phone)
    phone.runtime.clock.advance(minutes=1)  # at most one code a minute
    phone.send("JF")
    phone.send("Y")
    phone.send(phone.last_code())
    paid, policy = phone.inbox()[-1], POLICIES[carrier]
    assert paid.startswith(policy.sender_id + settled) and budgets.fits_screen(policy, "pay_done", paid), paid


# --- BG -----------------------------------------------------------------------------------------


def subscriptions(phone: Phone) -> dict[str, tuple[str, str, str]]:
    return {s["id"]: (s["service_code"], s["status"], s["renews_on"]) for s in phone.subscriber()["subscriptions"]}


def test_bg_lists_plans_not_already_active(phone: Phone) -> None:
    listing = phone.send("BG")
    assert "1.移动云盘 5.00元/月" in listing
    assert "视频会员" not in listing and "音乐包" not in listing


def test_a_plan_ordered_with_yes_within_24_hours_becomes_active(phone: Phone, clock) -> None:
    phone.send("套餐")
    offer = phone.send("1")
    assert "5.00元/月" in offer and "11月26日10:00" in offer
    clock.advance(hours=13)  # far past the 10-minute idle timeout; 23:00 the same day in Shanghai
    assert phone.send("是") == ""
    assert subscriptions(phone)["ydyp-20261125"] == ("YDYP", "active", "2026-12-25")
    assert phone.inbox()[-1] == text("plan_ordered", name="移动云盘", fee="5.00元", renews="12月25日")
    assert "移动云盘" in phone.send("TD")  # and it can be cancelled like any other


def test_an_ordered_plan_gets_its_renewal_and_reminders_scheduled(phone: Phone) -> None:
    phone.send("BG")
    phone.send("1")
    phone.send("Y")
    scheduled = [m for m in due(phone.app) if "ydyp-20261125" in m]
    assert scheduled, due(phone.app)
    assert {m.split("|")[0] for m in scheduled} == {RENEW, RENEWAL}, scheduled


def test_yes_after_24_hours_orders_nothing(phone: Phone, clock) -> None:
    before = subscriptions(phone)
    phone.send("BG")
    phone.send("1")
    clock.advance(hours=24, seconds=1)
    assert phone.send("Y") == text("plan_expired")
    assert subscriptions(phone) == before


@pytest.mark.parametrize("answer", ["N", "嗯", "2"])
def test_any_other_answer_orders_nothing(phone: Phone, clock, answer: str) -> None:
    before = subscriptions(phone)
    phone.send("BG")
    phone.send("1")
    assert phone.send(answer) == text("plan_not_ordered")
    assert phone.send("Y") == text("nothing_pending")
    assert subscriptions(phone) == before


def test_silence_orders_nothing(phone: Phone, clock) -> None:
    before = subscriptions(phone)
    phone.send("BG")
    phone.send("1")
    clock.advance(days=3)
    phone.deliver()
    assert subscriptions(phone) == before
    assert phone.inbox() == []


# --- STOP ---------------------------------------------------------------------------------------


def test_after_stop_the_subscribers_own_commands_are_still_answered(phone: Phone) -> None:
    assert phone.send("STOP") == text("stop")
    assert phone.subscriber()["opted_out"] is True
    assert "视频会员" in phone.send("TD")
    cancel_video(phone)
    assert any("已退订" in m for m in phone.inbox())
    assert "9.50元" in phone.send("JF")
    phone.send("Y")
    phone.send(phone.last_code())
    assert phone.inbox()[-1] == text("pay_done", name="视频会员", amount="9.50元")
    assert "移动云盘" in phone.send("BG")
    assert phone.subscriber()["opted_out"] is True
    assert phone.send("START") == text("start")
    assert phone.subscriber()["opted_out"] is False
