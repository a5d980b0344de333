"""Messages sent outside a dialog, one package each (reminders, overdue notices, the result of a `JF` charge), fit
their template's budget on every carrier's route, in either language, for any package the API accepts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from carriers import POLICIES
from dialogs import budgets, reminders
from dialogs.messages import money, signed
from dialogs.model import OPEN, OVERDUE, Statement, Subscriber, Subscription
from dialogs.reminders import LATE, RENEWAL, SETTLE, Reminder
from tests.support.imported import MAX_FEE_FEN, MAX_PACKAGES, fees, names

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
MSISDN = "+8613800138000"
policies = st.sampled_from(list(POLICIES.values()))
langs = st.sampled_from(["zh", "en"])
# What a statement can owe: up to the dearest fee, with a late fee on top.
owed = st.one_of(st.integers(1, 2 * MAX_FEE_FEN), st.sampled_from([1, 950, 2 * MAX_FEE_FEN]))


@given(policy=policies, lang=langs, name=names, amount=owed, key=st.sampled_from(["pay_done", "pay_done_partial"]))
def test_the_result_of_a_charge_fits_its_budget_naming_the_package(policy, lang, name, amount, key) -> None:
    text = signed(policy, lang, key, name=name, amount=money(lang, amount))
    assert budgets.fits_screen(policy, key, text), text


@given(policy=policies, lang=langs, name=names, fee=fees, amount=owed, late_fee=st.integers(0, MAX_FEE_FEN),
       before=st.integers(0, MAX_PACKAGES - 1))
def test_every_reminder_fits_its_budget(policy, lang, name, fee, amount, late_fee, before) -> None:
    others = tuple(Subscription(f"o{i}", "x", "X", 100, date(2026, 12, 7)) for i in range(before))
    sub = Subscription("p", name, "P", fee, date(2026, 12, 7))
    statement = Statement("s", "p", name, amount, NOW, NOW + timedelta(days=1), status=OPEN)
    late = Statement("l", "p", name, amount, NOW, NOW - timedelta(days=1), status=OVERDUE, late_fee_fen=late_fee)
    who = Subscriber(MSISDN, locale=lang, subscriptions=(*others, sub), statements=(statement, late))
    cases = [
        (Reminder(SETTLE, MSISDN, "s"), "remind_settle"),
        (Reminder(RENEWAL, MSISDN, "p", reminders.period_of(sub.renews_on)), "remind_renewal"),
        (Reminder(LATE, MSISDN, "l"), "overdue_fee" if late_fee else "overdue"),
    ]
    for reminder, key in cases:
        text = reminders.text(who, policy, reminder, NOW)
        assert text is not None and budgets.fits_screen(policy, key, text), (key, text)
