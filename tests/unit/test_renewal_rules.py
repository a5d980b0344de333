"""Renewing a package and turning a statement overdue (dialogs/renewal.py, dialogs/overdue.py). Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from carriers import POLICIES
from dialogs.model import CANCELLED, OPEN, OVERDUE, PAID, Charge, Statement, Subscriber, Subscription
from dialogs.overdue import mark_overdue
from dialogs.renewal import renew

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 7)
MIDNIGHT = datetime(2026, 12, 7, tzinfo=SHANGHAI)
VID = Subscription("vid", "视频会员", "SPHY", 1500, DAY, paid_fen=700)
DEADLINE = datetime(2026, 12, 2, 23, 59, 59, tzinfo=SHANGHAI)


def someone(*subs: Subscription, charges: tuple[Charge, ...] = (), statements: tuple[Statement, ...] = ()):
    return Subscriber("+8613800138000", "cmcc", "zh", subs, statements, charges=charges)


def test_an_active_package_starts_a_new_period_with_one_charge_line() -> None:
    after = renew(someone(VID), "vid", DAY, MIDNIGHT)
    assert after.subscription("vid") == replace(VID, renews_on=date(2027, 1, 7), paid_fen=0)
    assert after.charges == (Charge("vid", DAY, 1500, MIDNIGHT, period_end=date(2027, 1, 7)),)


@pytest.mark.parametrize(
    ("subs", "period"),
    [
        ((replace(VID, status=CANCELLED, cancelled_at=MIDNIGHT),), DAY),  # cancelled: never
        ((VID,), date(2026, 11, 7)),  # a period already past: a replay
        ((replace(VID, renews_on=date(2026, 12, 20)),), DAY),  # an import moved the day
        ((), DAY),  # gone
    ],
)
def test_nothing_renews_that_is_not_active_and_due_for_that_period(subs: tuple, period: date) -> None:
    before = someone(*subs)
    assert renew(before, "vid", period, MIDNIGHT) is before


def test_renewing_twice_for_one_period_charges_once() -> None:
    once = renew(someone(VID), "vid", DAY, MIDNIGHT)
    assert renew(once, "vid", DAY, MIDNIGHT) is once


def test_a_period_an_import_carried_back_moves_on_without_a_second_charge() -> None:
    charged = (Charge("vid", DAY, 1500, MIDNIGHT),)
    after = renew(someone(VID, charges=charged), "vid", DAY, MIDNIGHT)
    assert (after.subscription("vid").renews_on, after.charges) == (date(2027, 1, 7), charged)


STATEMENT = Statement("st1", "vid", "视频会员", 950, MIDNIGHT, DEADLINE)


@pytest.mark.parametrize(
    ("carrier", "paid", "status", "late_fee"),
    [("cmcc", 0, OVERDUE, 48), ("cmcc", 450, OVERDUE, 25), ("ctcc", 0, OVERDUE, 0), ("cmcc", 950, OPEN, 0)],
)
def test_at_the_deadline_what_is_still_owed_turns_overdue_with_the_carriers_late_fee(carrier, paid, status, late_fee):
    after = mark_overdue(someone(statements=(replace(STATEMENT, paid_fen=paid),)), POLICIES[carrier], "st1", DEADLINE)
    assert (after.statement("st1").status, after.statement("st1").late_fee_fen) == (status, late_fee)


def test_the_late_fee_is_applied_once() -> None:
    once = mark_overdue(someone(statements=(STATEMENT,)), POLICIES["cmcc"], "st1", DEADLINE)
    assert mark_overdue(once, POLICIES["cmcc"], "st1", DEADLINE) is once


@pytest.mark.parametrize(
    ("statement", "now"),
    [(STATEMENT, DEADLINE.replace(second=58)), (replace(STATEMENT, status=PAID, paid_fen=950), DEADLINE)],
)
def test_before_the_deadline_or_once_paid_nothing_changes(statement: Statement, now: datetime) -> None:
    before = someone(statements=(statement,))
    assert mark_overdue(before, POLICIES["cmcc"], "st1", now) is before
