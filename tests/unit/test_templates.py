"""Every template, rendered with worst-case values and each carrier's signature, fits its segment budget."""

from __future__ import annotations

import string
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from carriers import POLICIES, CarrierPolicy
from dialogs import budgets
from dialogs.messages import CATALOGUES, LANGS, day, money, render, when
from dialogs.segments import fits, segments
from tests.support.imported import MAX_FEE_FEN as API_FEE_FEN
from tests.support.imported import ORDINARY_FEE_FEN

# The dearest package we expect (999.99 元/month; the API accepts more, at the cost of segments),
# on a name as long as a message shows it.
MAX_FEE_FEN = ORDINARY_FEE_FEN
NAME = "咪咕视频钻石会员尊享月包"
assert len(NAME) == budgets.NAME_CHARS
LATEST = datetime(2026, 12, 31, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai: the widest clock and date
LONGEST_WAIT = {"zh": "59分钟", "en": "59 min"}
API_PACKAGES = 100  # the most packages the API takes for one subscriber


def longest(lang: str, keys: list[str], **values: object) -> str:
    return max((render(lang, key, **values) for key in keys), key=len)


def lines(lang: str, line: str) -> str:
    return "\n".join([line] * budgets.PACKAGES)


def worst_values(lang: str) -> dict[str, object]:
    fee, total = money(lang, MAX_FEE_FEN), money(lang, MAX_FEE_FEN * budgets.PACKAGES)
    deadline = when(lang, LATEST, "Asia/Shanghai")
    status = longest(lang, ["status_open", "status_paid", "status_overdue"])
    pages = "\n" + render(lang, "page_more") + " " + render(lang, "page_back")
    return {
        "name": NAME, "fee": fee, "amount": fee, "deadline": deadline, "renews": day(lang, date(2026, 12, 31)),
        "count": budgets.PACKAGES, "n": budgets.PACKAGES, "code": "123456", "left": 4, "wait": LONGEST_WAIT[lang],
        "query": "视" * budgets.QUERY_CHARS, "status": status,
        "owed": longest(lang, ["query_owed", "query_nothing_owed"], amount=total), "pages": pages,
        "part": render(lang, "done_part", n=API_PACKAGES, count=API_PACKAGES),
    }


LINE_KEYS = {
    "list": ["list_line"], "confirm": ["confirm_line"], "query": ["query_line_active", "query_line_cancelled"],
    "done": ["done_line", "done_line_free", "done_line_already"], "bill": ["bill_line"],
    "pay_confirm": ["pay_line"], "plans": ["plan_line"],
}


def whole_message_values(lang: str, key: str) -> dict[str, object]:
    """Values for `key`; a multi-line message gets PACKAGES of its longest line and the total amount: PACKAGES
    ordinary packages fit one message (one page of a listing, with the way to the next and the one before)."""
    values = worst_values(lang)
    if key in LINE_KEYS:
        values["lines"] = lines(lang, longest(lang, LINE_KEYS[key], **values))
        values["amount"] = money(lang, MAX_FEE_FEN * budgets.PACKAGES)
    return values


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


CASES = [
    (lang, key, policy)
    for lang in LANGS
    for key in sorted(CATALOGUES[lang])
    for policy in POLICIES.values()
]


def test_both_languages_have_the_same_templates_with_the_same_fields() -> None:
    zh, en = CATALOGUES["zh"], CATALOGUES["en"]
    assert set(zh) == set(en)
    assert {k: fields(v) for k, v in zh.items()} == {k: fields(v) for k, v in en.items()}


def test_every_template_has_a_budget() -> None:
    missing = set(CATALOGUES["zh"]) - set(budgets.BUDGETS)
    assert not missing, f"add these templates to dialogs/budgets.py BUDGETS: {sorted(missing)}"


def test_every_field_has_a_worst_case_value() -> None:
    known = set(worst_values("zh")) | {"lines"}
    unknown = {name for template in CATALOGUES["zh"].values() for name in fields(template)} - known
    assert not unknown, f"add worst-case values for {sorted(unknown)} to this test"


@pytest.mark.parametrize(("lang", "key", "policy"), CASES, ids=[f"{lang}-{key}-{p.key}" for lang, key, p in CASES])
def test_template_fits_its_budget_on_every_carrier(lang: str, key: str, policy: CarrierPolicy) -> None:
    if key not in budgets.BUDGETS:
        pytest.fail(f"no budget for {key!r}: add it to BUDGETS in dialogs/budgets.py")
    text = policy.sender_id + render(lang, key, **whole_message_values(lang, key))
    budget = budgets.budget(policy, key)
    used = segments(text, budget.single_gsm, budget.multi_gsm, budget.single_ucs2, budget.multi_ucs2)
    assert fits(text, budget), f"{lang}/{key} on {policy.key}: {used} segments > {budget.max_segments}: {text!r}"


@pytest.mark.parametrize(
    ("name", "shown"),
    [("视频会员", "视频会员"), (NAME, NAME), (NAME + "加", NAME[:-1] + "…"), ("x" * 40, "x" * 11 + "…")],
)
def test_long_package_names_are_shortened(name: str, shown: str) -> None:
    assert budgets.short_name(name) == shown


# --- listings and split messages: a page or a message always has room for one line ---------------------------

# The dearest fee the API accepts (API_FEE_FEN), on 100 packages: a page must hold one such line, however long its
# name. A message sent in parts (SPLIT) is an SMS, whatever channel asked for it.
SCREENS = {"sms": budgets.SMS, "ussd": budgets.USSD}
PAGED_CASES = [
    (lang, key, policy, screen)
    for lang in LANGS for key in sorted(budgets.PAGED | budgets.SPLIT) for policy in POLICIES.values()
    for screen in (SCREENS if key in budgets.PAGED else ["sms"])
]


@pytest.mark.parametrize(("lang", "key", "policy", "screen"), PAGED_CASES,
                         ids=[f"{lang}-{key}-{p.key}-{screen}" for lang, key, p, screen in PAGED_CASES])
def test_a_page_has_room_for_one_line_of_any_fee_with_its_name_cut_short(
    lang: str, key: str, policy: CarrierPolicy, screen: str
) -> None:
    values = {**worst_values(lang), "fee": money(lang, API_FEE_FEN), "amount": money(lang, API_FEE_FEN * API_PACKAGES),
              "count": API_PACKAGES, "n": API_PACKAGES, "name": "视" + budgets.CUT}
    values["owed"] = longest(lang, ["query_owed", "query_nothing_owed"], **values)
    values["lines"] = longest(lang, LINE_KEYS[key], **values)
    text = policy.sender_id + render(lang, key, **values)
    assert budgets.fits_screen(policy, key, text, SCREENS[screen]), text


TWO_PLANS = "Plans to order:\n{}\n{}\nReply a number to order."


def _plans_text(policy: CarrierPolicy, name: str) -> str:
    return policy.sender_id + TWO_PLANS.format(f"1. {name} CNY 8.00/month", "2. Video VIP CNY 15.00/month")


GSM_ROUTE = replace(POLICIES["default"], sender_id="[tdbot]")


@pytest.mark.parametrize(("policy", "name", "cut"), [
    (POLICIES["ctcc"], "Cloud Storage", ""),  # a two-line English list fits easily: nothing is cut
    (POLICIES["cucc"], "视" * 40, ""),
    (POLICIES["cucc"], "视" * 40 + "频" * 200, budgets.CUT),
    (GSM_ROUTE, "x", ""),
    (GSM_ROUTE, "Cloud Storage " * 12, ""),  # 168 characters: more than UCS-2 would hold, in GSM-7
    # cut with dots: "…" is not GSM-7 and would make the whole message UCS-2
    (GSM_ROUTE, "Cloud Storage " * 40, budgets.GSM_CUT),
])
def test_a_name_is_cut_only_when_the_budget_needs_it_and_then_no_more_than_it_needs(
    policy: CarrierPolicy, name: str, cut: str
) -> None:
    def text_for(candidate: str) -> str:
        return _plans_text(policy, candidate)

    def room(text: str) -> bool:
        return budgets.fits_screen(policy, "plans", text)

    fitted = budgets.fit_name(name, text_for, room)
    assert room(text_for(fitted))
    if not cut:
        assert fitted == name
    else:
        kept = fitted.removesuffix(cut)
        assert fitted.endswith(cut) and name.startswith(kept)
        assert not room(text_for(name[: len(kept) + 1] + cut))
