"""Which reminders a statement or renewal calls for, and what each says when it falls due (dialogs/reminders.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carriers import POLICIES
from dialogs.model import CANCELLED, OVERDUE, PAID, Statement, Subscriber, Subscription
from dialogs.reminders import (
    DEADLINE,
    LATE,
    RENEW,
    RENEWAL,
    SETTLE,
    Reminder,
    for_renewal,
    for_statement,
    renewal_moment,
    text,
)
from gateway.state.due import member, parse

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)
MSISDN = "+8613800138000"
CMCC = POLICIES["cmcc"]


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)


def statement(**changes) -> Statement:
    base = Statement("st1", "vid", "视频会员", 950, NOW, local(2026, 12, 2, 23, 59, 59))
    return replace(base, **changes)


VID = Subscription("vid", "视频会员", "SPHY", 1500, date(2026, 12, 7))
MUSIC = Subscription("music", "音乐包", "YYB", 1000, date(2026, 12, 7))


def subscriber(**changes) -> Subscriber:
    return replace(Subscriber(MSISDN, "cmcc", "zh", (VID, MUSIC), (statement(),)), **changes)


def test_a_statement_is_reminded_at_each_offset_shifted_out_of_quiet_hours_then_checked_at_its_deadline() -> None:
    due = for_statement(CMCC, MSISDN, statement(), NOW)
    assert due == [
        (Reminder(SETTLE, MSISDN, "st1", index=0), local(2026, 11, 30, 8)),
        (Reminder(SETTLE, MSISDN, "st1", index=1), local(2026, 12, 2, 8)),
        (Reminder(DEADLINE, MSISDN, "st1"), local(2026, 12, 2, 23, 59, 59)),
    ]



def test_reminders_computed_again_later_keep_their_names_so_a_sent_one_is_never_mistaken_for_the_next() -> None:
    later = for_statement(CMCC, MSISDN, statement(), local(2026, 12, 1, 9))  # the 3-day reminder has gone out
    assert later == [
        (Reminder(SETTLE, MSISDN, "st1", index=1), local(2026, 12, 2, 8)),
        (Reminder(DEADLINE, MSISDN, "st1"), local(2026, 12, 2, 23, 59, 59)),
    ]


def test_two_offsets_sharing_a_slot_keep_one_name_after_the_first_offset_has_passed() -> None:
    unicom, owed = POLICIES["cucc"], statement(due_at=local(2026, 11, 26, 10))  # 12h and 2h before: both at 08:00
    in_the_evening = for_statement(unicom, MSISDN, owed, local(2026, 11, 25, 20))
    at_night = for_statement(unicom, MSISDN, owed, local(2026, 11, 25, 23))
    assert in_the_evening == at_night
    assert in_the_evening[0] == (Reminder(SETTLE, MSISDN, "st1", index=0), local(2026, 11, 26, 8))


@given(
    policy=st.sampled_from(sorted(POLICIES.values(), key=lambda p: p.key)),
    deadline=st.integers(min_value=0, max_value=6 * 24 * 60),
    first=st.integers(min_value=0, max_value=8 * 24 * 60),
    later=st.integers(min_value=0, max_value=8 * 24 * 60),
)
def test_reminders_computed_later_are_some_of_those_computed_earlier_with_the_same_names_and_times(
    policy, deadline, first, later
) -> None:
    owed = statement(due_at=NOW + timedelta(minutes=deadline))
    earlier_now = NOW + timedelta(minutes=first)
    earlier = set(for_statement(policy, MSISDN, owed, earlier_now))
    assert set(for_statement(policy, MSISDN, owed, earlier_now + timedelta(minutes=later))) <= earlier


def test_a_unicom_reminder_that_quiet_hours_would_push_past_its_deadline_goes_the_evening_before() -> None:
    cancelled = local(2026, 11, 25, 3)
    st = statement(issued_at=cancelled, due_at=local(2026, 11, 26, 3), amount_fen=1500)
    due = for_statement(POLICIES["cucc"], MSISDN, st, cancelled)
    assert due == [
        (Reminder(SETTLE, MSISDN, "st1", index=0), local(2026, 11, 25, 15)),
        (Reminder(SETTLE, MSISDN, "st1", index=1), local(2026, 11, 25, 21, 30)),  # a margin before quiet hours
        (Reminder(DEADLINE, MSISDN, "st1"), local(2026, 11, 26, 3)),
    ]
    assert text(subscriber(statements=(st,)), POLICIES["cucc"], due[1][0], local(2026, 11, 25, 21, 30))


def test_offsets_already_past_are_left_out_but_the_deadline_stays() -> None:
    due = for_statement(CMCC, MSISDN, statement(), local(2026, 12, 1, 12))
    assert [r.kind for r, _ in due] == [SETTLE, DEADLINE]


@pytest.mark.parametrize("settled", [{"status": PAID}, {"paid_fen": 950}, {"amount_fen": 0}])
def test_a_settled_statement_calls_for_nothing(settled: dict) -> None:
    assert for_statement(CMCC, MSISDN, statement(**settled), NOW) == []


def test_a_renewal_is_reminded_before_its_day_and_happens_at_local_midnight() -> None:
    due = for_renewal(CMCC, MSISDN, VID, NOW)
    assert due == [
        (Reminder(RENEWAL, MSISDN, "vid", "20261207", 0), local(2026, 12, 4, 8)),
        (Reminder(RENEWAL, MSISDN, "vid", "20261207", 1), local(2026, 12, 6, 8)),
        (Reminder(RENEW, MSISDN, "vid", "20261207"), local(2026, 12, 7)),
    ]
    assert renewal_moment(CMCC, date(2026, 12, 7)).astimezone(UTC) == datetime(2026, 12, 6, 16, tzinfo=UTC)


def test_a_cancelled_package_calls_for_no_renewal() -> None:
    assert for_renewal(CMCC, MSISDN, replace(VID, status=CANCELLED), NOW) == []


SETTLE_0 = Reminder(SETTLE, MSISDN, "st1")
RENEWAL_0 = Reminder(RENEWAL, MSISDN, "music", "20261207")


@pytest.mark.parametrize(
    ("who", "reminder", "expected"),
    [
        (subscriber(), SETTLE_0, "【中国移动】您的视频会员结算单9.50元将于12月2日23:59到期，回JF缴费。回R拒收"),
        (subscriber(locale="en"), SETTLE_0, "【中国移动】Your 视频会员 statement of CNY 9.50 is due 02 Dec 23:59. "
         "Reply JF to pay. Reply STOP to opt out."),
        (subscriber(), RENEWAL_0, "【中国移动】音乐包将于12月7日续订10.00元，回TD 2退订。回R拒收"),
        (subscriber(statements=(statement(status=OVERDUE, late_fee_fen=48),)), Reminder(LATE, MSISDN, "st1"),
         "【中国移动】您的视频会员结算单已逾期，加收滞纳金0.48元，待缴9.98元，回JF缴费。回R拒收"),
        (subscriber(statements=(statement(status=OVERDUE),)), Reminder(LATE, MSISDN, "st1"),
         "【中国移动】您的视频会员结算单已逾期，待缴9.50元，回JF缴费。回R拒收"),
    ],
)
def test_a_due_reminder_says_what_and_how_to_refuse(who: Subscriber, reminder: Reminder, expected: str) -> None:
    assert text(who, CMCC, reminder, NOW) == expected


@pytest.mark.parametrize(
    ("who", "reminder", "now"),
    [
        (subscriber(opted_out=True), SETTLE_0, NOW),
        (subscriber(opted_out=True), RENEWAL_0, NOW),
        (subscriber(statements=(statement(status=PAID, paid_fen=950),)), SETTLE_0, NOW),
        (subscriber(statements=(statement(paid_fen=950),)), SETTLE_0, NOW),
        (subscriber(statements=(statement(status=OVERDUE),)), SETTLE_0, NOW),
        (subscriber(), SETTLE_0, local(2026, 12, 3)),  # past the deadline: the overdue notice speaks instead
        (subscriber(statements=()), SETTLE_0, NOW),
        (subscriber(subscriptions=(VID, replace(MUSIC, status=CANCELLED))), RENEWAL_0, NOW),
        (subscriber(subscriptions=(VID, replace(MUSIC, renews_on=date(2027, 1, 7)))), RENEWAL_0, NOW),  # moved on
        (subscriber(), Reminder(LATE, MSISDN, "st1"), NOW),  # not overdue
        (subscriber(), Reminder(DEADLINE, MSISDN, "st1"), NOW),  # not a message
    ],
)
def test_nothing_is_said_when_nothing_is_left_to_say(who: Subscriber, reminder: Reminder, now: datetime) -> None:
    assert text(who, CMCC, reminder, now) is None


def test_a_reminder_is_a_compact_member_and_back() -> None:
    reminder = Reminder(RENEWAL, MSISDN, "vid", "20261207", 1)
    assert member(reminder) == "r|+8613800138000|vid|20261207|1"
    assert parse(member(reminder).encode()) == reminder
    assert len(member(Reminder(SETTLE, MSISDN, f"{MSISDN[1:]}-vid-20261107"))) < 50


def test_each_offset_is_its_own_reminder_even_when_quiet_hours_move_them_together() -> None:
    due = for_statement(POLICIES["cucc"], MSISDN, statement(due_at=NOW + timedelta(hours=24)), NOW)
    assert [(r.kind, at) for r, at in due] == [(SETTLE, local(2026, 11, 26, 8)), (DEADLINE, local(2026, 11, 26, 10))]
