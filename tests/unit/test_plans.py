"""Next plan (后续服务变更), pure: which plans are offered, and 二次确认 — 是/Y within 24 hours or no order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from carriers import POLICIES, CarrierPolicy, Plan
from dialogs import plans
from dialogs.apply import apply
from dialogs.effects import CONFIRMATION, OrderPlan, Reply, SendMessage
from dialogs.engine import IDLE_TIMEOUT, Facts, Message, step
from dialogs.messages import render
from dialogs.model import ACTIVE, CANCELLED, CHOOSING, IDLE, OFFERED, PLAN, DialogState, Subscriber, Subscription

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CLOCK = int(NOW.timestamp())
MSISDN = "+8613800138000"
CMCC = POLICIES["cmcc"]
VID = Subscription("vid", "视频会员", "SPHY", 1500, date(2026, 12, 7))


def subscriber(*subs: Subscription, locale: str = "zh") -> Subscriber:
    return Subscriber(msisdn=MSISDN, locale=locale, subscriptions=subs)


def run(state: DialogState, text: str, who: Subscriber, now: datetime = NOW,
        policy: CarrierPolicy = CMCC) -> tuple[DialogState, list]:
    return step(state, Message(text), Facts(subscriber=who, policy=policy, secret=b"s", fresh_code="424242"), now)


def replies(effects: list) -> str:
    return "\n".join(e.text for e in effects if isinstance(e, Reply))


def orders(effects: list) -> list[Subscription]:
    return [e.subscription for e in effects if isinstance(e, OrderPlan)]


# --- what is offered ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subs", "offered"),
    [
        ((), ("SPHY", "YYB", "LLB", "YDYP")),
        ((VID,), ("YYB", "LLB", "YDYP")),
        ((replace(VID, service_code="sphy"),), ("YYB", "LLB", "YDYP")),  # codes compare without case
        ((replace(VID, status=CANCELLED),), ("SPHY", "YYB", "LLB", "YDYP")),  # a cancelled package can come back
    ],
)
def test_subscribers_see_their_carriers_plans_not_already_active(subs: tuple, offered: tuple) -> None:
    assert tuple(p.code for p in plans.available(CMCC, subscriber(*subs))) == offered


def test_a_carrier_without_plans_offers_none() -> None:
    assert plans.available(POLICIES["default"], subscriber()) == ()


@pytest.mark.parametrize(
    ("today", "taken", "sub_id", "renews_on"),
    [
        (date(2026, 11, 25), (), "sphy-20261125", date(2026, 12, 25)),
        (date(2027, 1, 31), (), "sphy-20270131", date(2027, 2, 28)),  # month end: the month's last day
        (date(2026, 11, 25), ("sphy-20261125",), "sphy-20261125-2", date(2026, 12, 25)),
        (date(2026, 11, 25), ("sphy-20261125", "sphy-20261125-2"), "sphy-20261125-3", date(2026, 12, 25)),
    ],
)
def test_an_order_starts_a_new_monthly_period_under_a_fresh_id(
    today: date, taken: tuple[str, ...], sub_id: str, renews_on: date
) -> None:
    who = subscriber(*(replace(VID, id=i, status=CANCELLED) for i in taken))
    sub = plans.subscription_for(who, CMCC.plans[0], "zh", today)
    assert (sub.id, sub.renews_on, sub.status, sub.fee_fen, sub.name) == (sub_id, renews_on, ACTIVE, 1500, "视频会员")


@pytest.mark.parametrize(("lang", "name"), [("zh", "视频会员"), ("en", "Video VIP")])
def test_a_plan_is_named_in_the_subscribers_language(lang: str, name: str) -> None:
    assert Plan("SPHY", "视频会员", "Video VIP", 1500).name(lang) == name


def test_ordering_adds_the_package_and_keeps_cancelled_history() -> None:
    old = replace(VID, status=CANCELLED)
    new = plans.subscription_for(subscriber(old), CMCC.plans[0], "zh", date(2026, 11, 25))
    after = apply(subscriber(old), [OrderPlan(new)], NOW)
    assert after.subscriptions == (old, new)
    assert apply(after, [OrderPlan(new)], NOW) == after  # a replayed effect adds nothing


# --- the BG dialog ------------------------------------------------------------------------------


WHO = subscriber(VID)


def listed(who: Subscriber = WHO) -> DialogState:
    state, _ = run(DialogState(), "BG", who)
    return state


def offered(who: Subscriber = WHO) -> DialogState:
    state, _ = run(listed(who), "2", who)
    return state


def test_bg_lists_the_plans_with_their_fees() -> None:
    state, effects = run(DialogState(), "套餐", subscriber(VID))
    assert (state.stage, state.intent, state.options) == (CHOOSING, PLAN, ("YYB", "LLB", "YDYP"))
    assert replies(effects).splitlines()[1:4] == ["1.音乐包 10.00元/月", "2.流量包 20.00元/月", "3.移动云盘 5.00元/月"]


def test_bg_with_nothing_to_offer_says_so() -> None:
    state, effects = run(DialogState(), "BG", subscriber(), policy=POLICIES["default"])
    assert state.stage == IDLE
    assert replies(effects) == POLICIES["default"].sender_id + render("zh", "plans_none")


def test_choosing_a_plan_states_the_fee_and_the_24_hour_window() -> None:
    state, effects = run(listed(), "2", subscriber(VID))
    assert (state.stage, state.plan_offer, state.offer_expires_at) == (OFFERED, "LLB", CLOCK + 24 * 3600)
    assert replies(effects) == "【中国移动】" + render("zh", "plan_confirm", name="流量包", fee="20.00元",
                                                      deadline="11月26日10:00")
    assert not orders(effects)


@pytest.mark.parametrize("text", ["5", "0", "1 2", "123456"])
def test_a_choice_outside_the_list_is_asked_again(text: str) -> None:
    state, effects = run(listed(), text, subscriber(VID))
    assert (state.stage, state.intent) == (CHOOSING, PLAN)
    assert replies(effects) == "【中国移动】" + render("zh", "plan_invalid_choice", count=3)


@pytest.mark.parametrize("later", [timedelta(seconds=1), timedelta(seconds=IDLE_TIMEOUT + 1), timedelta(hours=13)])
@pytest.mark.parametrize("yes", ["Y", "是", "y"])
def test_yes_within_24_hours_orders_the_plan(later: timedelta, yes: str) -> None:
    """Past the 10-minute idle timeout of other flows, up to the last local hour of the day (renewal date)."""
    state, effects = run(offered(), yes, subscriber(VID), now=NOW + later)
    ordered = orders(effects)
    assert state.stage == IDLE
    assert [(s.service_code, s.fee_fen, s.renews_on) for s in ordered] == [("LLB", 2000, date(2026, 12, 25))]
    [confirmation] = [e for e in effects if isinstance(e, SendMessage)]
    assert confirmation.kind == CONFIRMATION and "已订购流量包" in confirmation.text


@pytest.mark.parametrize("later", [timedelta(hours=24), timedelta(days=30)])
def test_yes_after_24_hours_is_politely_refused(later: timedelta) -> None:
    state, effects = run(offered(), "Y", WHO, now=NOW + later)
    assert state.stage == IDLE and not orders(effects)
    assert replies(effects) == "【中国移动】" + render("zh", "plan_expired")


@pytest.mark.parametrize("text", ["N", "否", "hello", "1", "好的吧", "654321"])
def test_any_other_reply_means_no_order(text: str) -> None:
    state, effects = run(offered(), text, subscriber(VID), now=NOW + timedelta(minutes=1))
    assert state.stage == IDLE and not orders(effects)
    assert replies(effects) == "【中国移动】" + render("zh", "plan_not_ordered")
    _, effects = run(state, "Y", subscriber(VID), now=NOW + timedelta(minutes=2))
    assert not orders(effects)


def test_a_command_instead_of_yes_drops_the_offer_and_is_answered() -> None:
    state, effects = run(offered(), "TD", subscriber(VID), now=NOW + timedelta(minutes=1))
    assert state.stage == CHOOSING and state.intent != PLAN and not orders(effects)
    assert "视频会员" in replies(effects)


def test_yes_for_a_plan_that_became_active_meanwhile_orders_nothing() -> None:
    meanwhile = subscriber(VID, Subscription("llb", "流量包", "LLB", 2000, date(2026, 12, 7)))
    state, effects = run(offered(), "Y", meanwhile, now=NOW + timedelta(minutes=1))
    assert state.stage == IDLE and not orders(effects)
    assert replies(effects) == "【中国移动】" + render("zh", "plan_unavailable")


def test_an_order_in_english_uses_the_english_name() -> None:
    who = subscriber(VID, locale="en")
    state, effects = run(offered(who), "Y", who, now=NOW + timedelta(minutes=1))
    assert [s.name for s in orders(effects)] == ["Data pack"]
