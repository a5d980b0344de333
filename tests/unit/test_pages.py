"""Listings a page at a time (`98` more, `0` back), through the engine: every page fits the channel's room, together
the pages show every line once, in order, and a number means the package shown with it on whatever page."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers import POLICIES, CarrierPolicy
from dialogs import budgets
from dialogs.budgets import SMS, USSD, Screen
from dialogs.engine import IDLE_TIMEOUT, Facts, Message, step
from dialogs.messages import CATALOGUES, render, screen_template
from dialogs.model import (
    CANCELLED,
    CHOOSING,
    CONFIRMING,
    OPEN,
    OVERDUE,
    PAID,
    DialogState,
    Statement,
    Subscriber,
    Subscription,
)
from tests.support.imported import MAX_PACKAGES, fees, names, ordinary_fees, ordinary_names

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
MSISDN = "+8613800138000"
NUMBERED = re.compile(r"^(\d+)\. ?")

packages = st.lists(st.tuples(names, fees, st.booleans()), min_size=1, max_size=MAX_PACKAGES)
policies = st.sampled_from(list(POLICIES.values()))
screens = st.sampled_from([SMS, USSD])


def subscriber(items: list[tuple[str, int, bool]], locale: str, statuses: tuple[str, ...] = (OPEN,)) -> Subscriber:
    subs = tuple(
        Subscription(f"p{i}", name, "X", fee, date(2026, 12, 7), status="active" if active else CANCELLED)
        for i, (name, fee, active) in enumerate(items)
    )
    statements = tuple(
        Statement(f"86-p{i}-20261107", f"p{i}", name, fee or 1, NOW, NOW + timedelta(days=7),
                  status=statuses[i % len(statuses)], paid_fen=fee if statuses[i % len(statuses)] == PAID else 0)
        for i, (name, fee, _) in enumerate(items)
    )
    return Subscriber(MSISDN, locale=locale, subscriptions=subs, statements=statements)


def facts(who: Subscriber, policy: CarrierPolicy) -> Facts:
    return Facts(who, policy, b"secret", "424242")


def parts(text: str, key: str, lang: str, screen: Screen = SMS) -> tuple[list[str], str]:
    """A page's item lines and its line of ways to other pages ("" if none), found by the lines of the template its
    surface words it with (a USSD screen has its own)."""
    template = screen_template(lang, key) if screen.chars else CATALOGUES[lang][key]
    head, rest = template.split("{lines}")
    tail = rest.split("{pages}")[1]
    lines = text.split("\n")  # names never hold a line feed (the API refuses them)
    body = lines[head.count("\n"): len(lines) - tail.count("\n")]
    more, back = render(lang, "page_more"), render(lang, "page_back")
    if body and body[-1] in (more, back, f"{more} {back}"):
        return body[:-1], body[-1]
    return body, ""


def item_lines(text: str, key: str, lang: str, screen: Screen = SMS) -> list[str]:
    return parts(text, key, lang, screen)[0]


def fits(text: str, policy: CarrierPolicy, key: str, screen: Screen) -> bool:
    return budgets.fits_screen(policy, key, text, screen)


KEYS = {"TD": "list", "0000": "query", "ZD": "bill", "JF": "pay_confirm", "BG": "plans"}


def walk(command: str, who: Subscriber, policy: CarrierPolicy, screen: Screen) -> tuple[DialogState, list[str]]:
    """`command`, then `98` for as long as a page offers more: the state after the last page, and every page."""
    state, effects = step(DialogState(), Message(command, screen=screen), facts(who, policy), NOW)
    shown = [effects[0].text]
    more = render(state.lang, "page_more")
    while parts(shown[-1], KEYS[command], state.lang, screen)[1].startswith(more):
        assert len(shown) <= 100, "a page showed nothing new"
        state, effects = step(state, Message("98", screen=screen), facts(who, policy), NOW)
        shown.append(effects[0].text)
    return state, shown


def assert_pages(key: str, pages_shown: list[str], count: int, policy: CarrierPolicy, screen: Screen, lang: str,
                 numbered: list[int] | None = None) -> None:
    for page in pages_shown:
        assert fits(page, policy, key, screen), page
    lines = [line for page in pages_shown for line in item_lines(page, key, lang, screen)]
    assert len(lines) == count, pages_shown
    if numbered is not None:
        shown = [int(m.group(1)) for line in lines if (m := NUMBERED.match(line))]
        assert shown == numbered


@settings(max_examples=100, deadline=None)
@given(items=packages, policy=policies, screen=screens, locale=st.sampled_from(["zh", "en"]))
def test_the_cancel_list_numbers_every_active_package_once_and_every_page_fits(items, policy, screen, locale) -> None:
    who = subscriber(items, locale)
    active = who.active()
    if not active:
        return
    state, shown = walk("TD", who, policy, screen)
    assert_pages("list", shown, len(active), policy, screen, locale, numbered=list(range(1, len(active) + 1)))
    assert state.stage == CHOOSING and state.options == tuple(s.id for s in active)


@settings(max_examples=40, deadline=None)
@given(items=packages, policy=policies, screen=screens, locale=st.sampled_from(["zh", "en"]))
def test_the_query_shows_every_package_once_numbering_the_active_ones(items, policy, screen, locale) -> None:
    who = subscriber(items, locale)
    _, shown = walk("0000", who, policy, screen)
    assert_pages("query", shown, len(items), policy, screen, locale,
                 numbered=list(range(1, len(who.active()) + 1)))


@settings(max_examples=40, deadline=None)
@given(items=packages, policy=policies, screen=screens, locale=st.sampled_from(["zh", "en"]),
       statuses=st.lists(st.sampled_from([OPEN, PAID, OVERDUE]), min_size=1, max_size=3).map(tuple))
def test_statements_and_what_jf_would_pay_show_every_line_once(items, policy, screen, locale, statuses) -> None:
    who = subscriber(items, locale, statuses)
    _, bill = walk("ZD", who, policy, screen)
    assert_pages("bill", bill, len(items), policy, screen, locale)
    payable = [s for s in who.statements if s.status != PAID]
    if payable:
        state, to_pay = walk("JF", who, policy, screen)
        assert_pages("pay_confirm", to_pay, len(payable), policy, screen, locale)
        assert state.stage == CONFIRMING and len(state.selected) == len(payable)


ordinary = st.lists(st.tuples(ordinary_names, ordinary_fees, st.just(True)), min_size=1, max_size=3 * budgets.PACKAGES)


@settings(max_examples=60, deadline=None)
@given(items=ordinary, policy=policies, locale=st.sampled_from(["zh", "en"]),
       command=st.sampled_from(["TD", "0000", "ZD", "JF"]))
def test_an_sms_page_holds_at_least_packages_ordinary_lines(items, policy, locale, command) -> None:
    """The rule the budgets are sized by (dialogs/budgets.py): every page but the last holds budgets.PACKAGES."""
    _, shown = walk(command, subscriber(items, locale), policy, SMS)
    counts = [len(item_lines(page, KEYS[command], locale)) for page in shown]
    assert all(count >= budgets.PACKAGES for count in counts[:-1]), (counts, shown)


@settings(max_examples=40, deadline=None)
@given(items=packages, policy=policies, screen=screens, locale=st.sampled_from(["zh", "en"]))
def test_back_shows_the_same_pages_in_reverse(items, policy, screen, locale) -> None:
    who = subscriber(items, locale)
    state, shown = walk("0000", who, policy, screen)
    back = [shown[-1]]
    for _ in shown[1:]:
        state, effects = step(state, Message("0", screen=screen), facts(who, policy), NOW)
        back.append(effects[0].text)
    assert back == shown[::-1]


@settings(max_examples=40, deadline=None)
@given(items=packages.filter(lambda i: sum(a for _, _, a in i) > 1), policy=policies, screen=screens,
       data=st.data())
def test_a_number_means_the_package_shown_with_it_on_any_page(items, policy, screen, data) -> None:
    who = subscriber(items, "zh")
    state, shown = walk("TD", who, policy, screen)
    numbers = [int(m.group(1)) for line in item_lines(shown[-1], "list", "zh", screen)
               if (m := NUMBERED.match(line))]
    number = data.draw(st.sampled_from(numbers))
    state, effects = step(state, Message(str(number), screen=screen), facts(who, policy), NOW)
    assert state.selected == (who.active()[number - 1].id,)


# --- the way round the pages, as a table --------------------------------------------------------------------

MANY = subscriber([(f"视频会员{i}号", 1500, True) for i in range(1, 31)], "zh")
CMCC = POLICIES["cmcc"]


def page_of(state: DialogState, text: str) -> tuple[DialogState, str]:
    state, effects = step(state, Message(text), facts(MANY, CMCC), NOW)
    [reply] = effects
    return state, reply.text


def test_thirty_packages_take_pages_that_say_where_to_go() -> None:
    state, first = page_of(DialogState(), "TD")
    assert "1.视频会员1号" in first and "\n98.更多\n" in first and "0.返回" not in first
    state, second = page_of(state, "98")
    assert "98.更多 0.返回" in second or ("0.返回" in second and "98.更多" not in second)
    assert "1.视频会员1号" not in second
    state, again = page_of(state, "0")
    assert again == first


def test_98_on_the_last_page_and_0_on_the_first_mean_what_they_always_did() -> None:
    state, shown = walk("TD", MANY, CMCC, SMS)
    _, effects = step(state, Message("98"), facts(MANY, CMCC), NOW)
    assert "请回复1-30之间的序号" in effects[0].text
    state, _ = step(DialogState(), Message("TD"), facts(MANY, CMCC), NOW)
    _, effects = step(state, Message("0"), facts(MANY, CMCC), NOW)
    assert "请回复1-30之间的序号" in effects[0].text


def test_98_turns_the_page_only_right_after_a_page_was_shown() -> None:
    state, _ = step(DialogState(), Message("TD"), facts(MANY, CMCC), NOW)
    state, _ = step(state, Message("HELP"), facts(MANY, CMCC), NOW)
    _, effects = step(state, Message("98"), facts(MANY, CMCC), NOW)
    assert "请回复1-30之间的序号" in effects[0].text


def test_a_listing_left_longer_than_the_idle_timeout_has_no_next_page() -> None:
    state, _ = step(DialogState(), Message("ZD"), facts(MANY, CMCC), NOW)
    _, effects = step(state, Message("98"), facts(MANY, CMCC), NOW + timedelta(seconds=IDLE_TIMEOUT + 1))
    assert "未识别" in effects[0].text


def test_package_98_of_a_hundred_is_still_picked_with_td_98() -> None:
    hundred = subscriber([(f"包{i}", 100, True) for i in range(1, 101)], "zh")
    state, _ = step(DialogState(), Message("TD 98"), facts(hundred, CMCC), NOW)
    assert state.selected == ("p97",)


def test_a_page_turn_leaves_a_pending_code_where_it_was() -> None:
    who = replace(MANY, statements=MANY.statements)
    verifying = DialogState(stage="verifying", selected=("p0",), code_hash="h", code_expires_at=10**10,
                            updated_at=int(NOW.timestamp()), lang="zh")
    state, _ = step(verifying, Message("0000"), facts(who, CMCC), NOW)
    state, effects = step(state, Message("98"), facts(who, CMCC), NOW)
    assert "您的业务" in effects[0].text
    assert (state.stage, state.selected, state.code_hash) == ("verifying", ("p0",), "h")


@pytest.mark.parametrize(("screen", "most"), [(USSD, budgets.USSD.chars), (Screen(120), 120)])
def test_a_channel_can_ask_for_its_own_page_size(screen: Screen, most: int) -> None:
    _, shown = walk("TD", MANY, CMCC, screen)
    assert len(shown) > 1 and all(len(page) <= most for page in shown)
    _, sms = walk("TD", MANY, CMCC, SMS)
    assert len(sms) < len(shown)


@pytest.mark.parametrize("command", ["TD", "BG"])
def test_a_short_english_list_shows_names_whole(command: str) -> None:
    """Issue 9 item 18: "Cloud Stora…" in a list of two that fits easily."""
    cloud = Subscription("cloud", "Cloud Storage", "CLOUD", 800, date(2026, 12, 7))
    who = Subscriber("+8618900000000", locale="en", subscriptions=(cloud,) if command == "TD" else ())
    _, effects = step(DialogState(), Message(command), facts(who, POLICIES["ctcc"]), NOW)
    assert "1. Cloud Storage CNY 8.00/month" in effects[0].text
