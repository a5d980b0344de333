"""Table-driven tests for the pure carriers package."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers import (
    DEFAULT_POLICY,
    POLICIES,
    CarrierPolicy,
    carrier_for,
    in_quiet_hours,
    late_fee_fen,
    next_renewal,
    period_bounds,
    period_cost_fen,
    policy_for,
    reminder_slots,
    settlement_deadline,
    shift_out_of_quiet_hours,
    to_e164,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CMCC, CUCC, CTCC = POLICIES["cmcc"], POLICIES["cucc"], POLICIES["ctcc"]


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- policy records -------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("cmcc", "cmcc"),
        ("cucc", "cucc"),
        ("ctcc", "ctcc"),
        ("default", "default"),
        ("CMCC", "cmcc"),
        (" cucc ", "cucc"),
        ("vodafone", "default"),
        ("", "default"),
        (None, "default"),
    ],
)
def test_an_unknown_or_missing_carrier_gets_the_default_policy(key: str | None, expected: str) -> None:
    assert policy_for(key).key == expected


@pytest.mark.parametrize(
    ("key", "short_code", "sender_id", "locale", "proration", "end_of_day", "settle"),
    [
        ("cmcc", "10086", "【中国移动】", "zh", "daily", True, timedelta(days=7)),
        ("cucc", "10010", "【中国联通】", "zh", "month", False, timedelta(hours=24)),
        ("ctcc", "10000", "【中国电信】", "zh", "daily", True, timedelta(days=15)),
        ("default", "10690000", "【tdbot】", "en", "daily", True, timedelta(days=7)),
    ],
)
def test_each_carriers_record_holds_its_short_code_signature_locale_and_window(
    key: str,
    short_code: str,
    sender_id: str,
    locale: str,
    proration: str,
    end_of_day: bool,
    settle: timedelta,
) -> None:
    policy = POLICIES[key]
    assert policy.key == key
    assert (policy.short_code, policy.sender_id, policy.locale) == (
        short_code,
        sender_id,
        locale,
    )
    assert (policy.proration, policy.deadline_end_of_day) == (proration, end_of_day)
    assert policy.settle_within == settle
    assert (policy.quiet_start, policy.quiet_end) == (time(22), time(8))
    assert policy.timezone == "Asia/Shanghai"
    assert policy.cancel_needs_code is True
    assert (policy.gsm_single, policy.gsm_multi) == (160, 153)


@pytest.mark.parametrize(
    ("key", "single", "multi", "settlement_reminders"),
    [
        ("cmcc", 70, 67, (timedelta(days=3), timedelta(days=1))),
        ("cucc", 65, 62, (timedelta(hours=12), timedelta(hours=2))),
        ("ctcc", 70, 67, (timedelta(days=3), timedelta(days=1))),
        ("default", 70, 67, (timedelta(days=3), timedelta(days=1))),
    ],
)
def test_policy_budgets_and_reminders(
    key: str, single: int, multi: int, settlement_reminders: tuple[timedelta, ...]
) -> None:
    policy = POLICIES[key]
    assert (policy.ucs2_single, policy.ucs2_multi) == (single, multi)
    assert policy.settlement_reminders == settlement_reminders
    assert policy.renewal_reminders == (timedelta(days=3), timedelta(days=1))


def test_policy_is_frozen_and_validated() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CMCC.locale = "en"  # type: ignore[misc]
    with pytest.raises(ValueError, match="proration"):
        dataclasses.replace(CMCC, proration="weekly")
    with pytest.raises(ValueError, match="late fee"):
        dataclasses.replace(CMCC, late_fee_bp=-1)
    assert DEFAULT_POLICY is POLICIES["default"]
    assert set(POLICIES) == {"cmcc", "cucc", "ctcc", "default"}


# --- late fee -------------------------------------------------------------

CMCC_FLAT = dataclasses.replace(CMCC, late_fee_flat_fen=100)


@pytest.mark.parametrize(
    ("policy", "amount", "fee"),
    [
        (CMCC, 0, 0),
        (CMCC, 1, 0),  # 0.05 fen
        (CMCC, 9, 0),  # 0.45 fen rounds down
        (CMCC, 10, 1),  # 0.5 fen rounds half up
        (CMCC, 30, 2),  # 1.5 fen rounds half up
        (CMCC, 1000, 50),
        (CMCC, 12345, 617),  # 617.25
        (CMCC, 12350, 618),  # 617.5
        (CUCC, 12345, 0),
        (CTCC, 12345, 0),
        (CMCC_FLAT, 1000, 150),
        (CMCC_FLAT, 0, 0),  # nothing owed, nothing overdue
    ],
)
def test_the_late_fee_is_the_carriers_rate_or_flat_fee_on_what_is_unpaid(
    policy: CarrierPolicy, amount: int, fee: int,
) -> None:
    assert late_fee_fen(policy, amount) == fee


def test_late_fee_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        late_fee_fen(CMCC, -1)


# --- lookup ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+8613800138000", "CN", "+8613800138000"),
        ("8613800138000", "CN", "+8613800138000"),
        ("13800138000", "CN", "+8613800138000"),
        ("+86 138 0013 8000", "CN", "+8613800138000"),
        ("+86-138-0013-8000", "CN", "+8613800138000"),
        ("008613800138000", "CN", "+8613800138000"),
        ("+14155552671", "CN", "+14155552671"),
        ("4155552671", "US", "+14155552671"),
        ("abc", "CN", None),
        ("", "CN", None),
        ("12345", "CN", None),
        ("10086", "CN", None),  # a short code is not a subscriber
    ],
)
def test_a_number_is_read_as_e164_in_its_region_or_refused(raw: str, region: str, expected: str | None) -> None:
    assert to_e164(raw, region) == expected


# phonenumbers 9.0.43 prefix data: 138 → China Mobile, 186 → China Unicom,
# 189 → China Telecom (also 133 → Telecom, 156 → Unicom).
@pytest.mark.parametrize(
    ("msisdn", "override", "expected"),
    [
        ("+8613800138000", None, "cmcc"),
        ("13800138000", None, "cmcc"),
        ("+8618600000000", None, "cucc"),
        ("+8615600000000", None, "cucc"),
        ("+8618900000000", None, "ctcc"),
        ("+8613300000000", None, "ctcc"),
        ("+14155552671", None, "default"),  # valid, no CN carrier
        ("not a number", None, "default"),
        ("+8613800138000", "cucc", "cucc"),  # 携号转网: override wins
        ("+8613800138000", "CTCC", "ctcc"),
        ("+8613800138000", "default", "default"),
        ("+8613800138000", "bogus", "cmcc"),  # unknown override ignored
        ("+14155552671", "cmcc", "cmcc"),
    ],
)
def test_the_carrier_is_the_records_override_else_the_numbers_prefix(
    msisdn: str, override: str | None, expected: str,
) -> None:
    assert carrier_for(msisdn, override) == expected


# --- settlement deadlines -------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "cancelled_at", "deadline"),
    [
        # Mobile: end of the local day 7 days later.
        (CMCC, cst(2024, 3, 1, 10, 0), cst(2024, 3, 8, 23, 59, 59)),
        (CMCC, cst(2024, 3, 1, 23, 59, 59), cst(2024, 3, 8, 23, 59, 59)),
        (CMCC, cst(2024, 3, 1, 0, 0), cst(2024, 3, 8, 23, 59, 59)),
        # 17:00 UTC is already 01:00 next day in Shanghai.
        (CMCC, utc(2024, 3, 1, 17, 0), cst(2024, 3, 9, 23, 59, 59)),
        (CMCC, utc(2024, 3, 1, 15, 59), cst(2024, 3, 8, 23, 59, 59)),
        # Unicom: exactly 24 h after confirmation, to the second.
        (CUCC, cst(2024, 3, 1, 10, 0, 30), cst(2024, 3, 2, 10, 0, 30)),
        (CUCC, utc(2024, 2, 28, 20, 15), utc(2024, 2, 29, 20, 15)),
        (CUCC, cst(2024, 3, 1, 23, 30), cst(2024, 3, 2, 23, 30)),
        # Telecom: 15 days, end of day, across a leap February.
        (CTCC, cst(2024, 2, 20, 9, 0), cst(2024, 3, 6, 23, 59, 59)),
        (DEFAULT_POLICY, cst(2024, 12, 28, 12, 0), cst(2025, 1, 4, 23, 59, 59)),
    ],
)
def test_the_settlement_deadline_is_the_carriers_window_after_the_cancel(
    policy: CarrierPolicy, cancelled_at: datetime, deadline: datetime
) -> None:
    result = settlement_deadline(policy, cancelled_at)
    assert result == deadline
    assert result.tzinfo is UTC


def test_a_moment_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        settlement_deadline(CMCC, datetime(2024, 3, 1, 10, 0))
    with pytest.raises(ValueError, match="naive"):
        shift_out_of_quiet_hours(CMCC, datetime(2024, 3, 1, 10, 0))


# --- quiet hours ----------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (cst(2024, 3, 1, 21, 59), cst(2024, 3, 1, 21, 59)),
        (cst(2024, 3, 1, 21, 59, 59, 999999), cst(2024, 3, 1, 21, 59, 59, 999999)),
        (cst(2024, 3, 1, 22, 0), cst(2024, 3, 2, 8, 0)),
        (cst(2024, 3, 1, 23, 59, 59), cst(2024, 3, 2, 8, 0)),
        (cst(2024, 3, 1, 0, 0), cst(2024, 3, 1, 8, 0)),
        (cst(2024, 3, 1, 7, 59), cst(2024, 3, 1, 8, 0)),
        (cst(2024, 3, 1, 7, 59, 59, 999999), cst(2024, 3, 1, 8, 0)),
        (cst(2024, 3, 1, 8, 0), cst(2024, 3, 1, 8, 0)),
        (cst(2024, 3, 1, 12, 0), cst(2024, 3, 1, 12, 0)),
        (cst(2024, 2, 29, 22, 30), cst(2024, 3, 1, 8, 0)),  # across month end
        (cst(2024, 12, 31, 23, 0), cst(2025, 1, 1, 8, 0)),  # across year end
        # Given in UTC: 14:00 UTC is 22:00 Shanghai; 23:59 UTC is 07:59.
        (utc(2024, 3, 1, 13, 59), cst(2024, 3, 1, 21, 59)),
        (utc(2024, 3, 1, 14, 0), cst(2024, 3, 2, 8, 0)),
        (utc(2024, 3, 1, 23, 59), cst(2024, 3, 2, 8, 0)),
        (utc(2024, 3, 2, 0, 0), cst(2024, 3, 2, 8, 0)),
    ],
)
def test_shift_out_of_quiet_hours(when: datetime, expected: datetime) -> None:
    result = shift_out_of_quiet_hours(CMCC, when)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "end", "local", "quiet"),
    [
        (time(22), time(8), time(21, 59), False),
        (time(22), time(8), time(22), True),
        (time(22), time(8), time(7, 59), True),
        (time(22), time(8), time(8), False),
        (time(1), time(6), time(0, 59), False),  # non-wrapping window
        (time(1), time(6), time(1), True),
        (time(1), time(6), time(6), False),
        (time(0), time(0), time(3), False),  # empty window disables quiet hours
    ],
)
def test_in_quiet_hours_windows(
    start: time, end: time, local: time, quiet: bool
) -> None:
    policy = dataclasses.replace(CMCC, quiet_start=start, quiet_end=end)
    when = datetime.combine(date(2024, 3, 1), local, SHANGHAI)
    assert in_quiet_hours(policy, when) is quiet


def test_shift_non_wrapping_window_lands_same_day() -> None:
    policy = dataclasses.replace(CMCC, quiet_start=time(1), quiet_end=time(6))
    assert shift_out_of_quiet_hours(policy, cst(2024, 3, 1, 3, 0)) == cst(
        2024, 3, 1, 6, 0
    )


# --- reminder schedule ----------------------------------------------------

DAYS_3_1 = (timedelta(days=3), timedelta(days=1))
HOURS_12_2 = (timedelta(hours=12), timedelta(hours=2))


@pytest.mark.parametrize(
    ("policy", "deadline", "offsets", "not_before", "expected"),
    [
        # 23:59:59 minus whole days is in quiet hours: shifted to next 08:00.
        (
            CMCC,
            cst(2024, 3, 8, 23, 59, 59),
            DAYS_3_1,
            cst(2024, 3, 1, 10, 0),
            [cst(2024, 3, 6, 8, 0), cst(2024, 3, 8, 8, 0)],
        ),
        # Unicom 12 h lands at 22:00 → 08:00, same as the 2 h one: de-duplicated.
        (
            CUCC,
            cst(2024, 3, 2, 10, 0),
            HOURS_12_2,
            cst(2024, 3, 1, 10, 0),
            [cst(2024, 3, 2, 8, 0)],
        ),
        (
            CUCC,
            cst(2024, 3, 2, 20, 0),
            HOURS_12_2,
            cst(2024, 3, 1, 20, 0),
            [cst(2024, 3, 2, 8, 0), cst(2024, 3, 2, 18, 0)],
        ),
        # Offsets in any order; output sorted.
        (
            CUCC,
            cst(2024, 3, 2, 20, 0),
            tuple(reversed(HOURS_12_2)),
            cst(2024, 3, 1, 20, 0),
            [cst(2024, 3, 2, 8, 0), cst(2024, 3, 2, 18, 0)],
        ),
        # Already past the 3-day mark when scheduled: skipped, not sent late.
        (
            CMCC,
            cst(2024, 3, 8, 23, 59, 59),
            DAYS_3_1,
            cst(2024, 3, 6, 12, 0),
            [cst(2024, 3, 8, 8, 0)],
        ),
        # Exactly at not_before is kept.
        (
            CUCC,
            cst(2024, 3, 2, 20, 0),
            HOURS_12_2,
            cst(2024, 3, 2, 8, 0),
            [cst(2024, 3, 2, 8, 0), cst(2024, 3, 2, 18, 0)],
        ),
        (CUCC, cst(2024, 3, 2, 20, 0), HOURS_12_2, cst(2024, 3, 2, 19, 0), []),
        # Unicom, cancelled 03:00, due 03:00 next day: 2 h before is 01:00; 08:00 would miss the deadline, so it
        # goes the evening before at 21:30, a margin before quiet hours (docs/reminders.md).
        (
            CUCC,
            cst(2024, 3, 2, 3, 0),
            HOURS_12_2,
            cst(2024, 3, 1, 3, 0),
            [cst(2024, 3, 1, 15, 0), cst(2024, 3, 1, 21, 30)],
        ),
        # Due 22:30: 2 h before is 20:30, outside quiet hours, left alone.
        (
            CUCC,
            cst(2024, 3, 2, 22, 30),
            HOURS_12_2,
            cst(2024, 3, 1, 22, 30),
            [cst(2024, 3, 2, 10, 30), cst(2024, 3, 2, 20, 30)],
        ),
        # Quiet hours cover all the time left: no slot before the deadline remains, nothing is sent late.
        (CUCC, cst(2024, 3, 2, 3, 0), HOURS_12_2, cst(2024, 3, 1, 23, 0), []),
        (CMCC, cst(2024, 3, 8, 23, 59, 59), (), cst(2024, 3, 1, 10, 0), []),
        # Renewal reminders use the same function.
        (
            CTCC,
            cst(2024, 4, 1, 0, 0),
            CTCC.renewal_reminders,
            cst(2024, 3, 1, 0, 0),
            [cst(2024, 3, 29, 8, 0), cst(2024, 3, 31, 8, 0)],
        ),
    ],
)
def test_reminders_fall_at_each_offset_before_the_deadline_moved_out_of_quiet_hours_never_after_it(
    policy: CarrierPolicy,
    deadline: datetime,
    offsets: tuple[timedelta, ...],
    not_before: datetime,
    expected: list[datetime],
) -> None:
    result = [at for _, at in reminder_slots(policy, deadline, offsets, not_before)]
    assert result == expected
    assert all(t.tzinfo is UTC for t in result)


# --- periods and proration ------------------------------------------------


@pytest.mark.parametrize(
    ("renews_on", "anchor", "start"),
    [
        (date(2024, 3, 15), 15, date(2024, 2, 15)),
        (date(2024, 3, 31), 31, date(2024, 2, 29)),
        (date(2023, 3, 31), 31, date(2023, 2, 28)),
        (date(2024, 5, 31), 31, date(2024, 4, 30)),
        (date(2024, 1, 15), 15, date(2023, 12, 15)),
        (date(2024, 1, 31), 31, date(2023, 12, 31)),
        (date(2024, 2, 29), 31, date(2024, 1, 31)),  # a 31st package in February began on the 31st
        (date(2024, 4, 30), 31, date(2024, 3, 31)),
        (date(2024, 3, 30), 30, date(2024, 2, 29)),
    ],
)
def test_a_period_starts_on_the_anchor_day_a_month_before_it_renews(renews_on: date, anchor: int, start: date) -> None:
    assert period_bounds(renews_on, anchor) == (start, renews_on)


@pytest.mark.parametrize(
    ("renews_on", "anchor", "expected"),
    [
        (date(2024, 1, 31), 31, date(2024, 2, 29)),
        (date(2023, 1, 31), 31, date(2023, 2, 28)),
        (date(2024, 2, 29), 29, date(2024, 3, 29)),
        (date(2024, 2, 29), 31, date(2024, 3, 31)),  # back to the anchor after a short month
        (date(2024, 8, 31), 31, date(2024, 9, 30)),
        (date(2024, 12, 15), 15, date(2025, 1, 15)),
        (date(2024, 12, 31), 31, date(2025, 1, 31)),
    ],
)
def test_the_next_renewal_keeps_the_anchor_day_where_the_month_has_it(
    renews_on: date, anchor: int, expected: date,
) -> None:
    assert next_renewal(renews_on, anchor) == expected


# Period 2024-02-15 .. 2024-03-15 has 29 days (leap year); April has 30.
@pytest.mark.parametrize(
    ("policy", "fee", "period", "cancelled_on", "cost"),
    [
        (CUCC, 3000, (date(2024, 2, 15), date(2024, 3, 15)), date(2024, 2, 16), 3000),  # whole month
        (CUCC, 3000, (date(2024, 2, 15), date(2024, 3, 15)), date(2024, 2, 14), 0),  # not begun
        (CMCC, 3000, (date(2024, 2, 15), date(2024, 3, 15)), date(2024, 2, 15), 104),  # 1/29 → 103.45 up
        (CMCC, 3000, (date(2024, 2, 15), date(2024, 3, 15)), date(2024, 2, 28), 1449),  # 14/29 → 1448.28
        (CMCC, 3000, (date(2024, 2, 15), date(2024, 3, 15)), date(2024, 3, 14), 3000),  # last day
        (CMCC, 3000, (date(2024, 2, 15), date(2024, 3, 15)), date(2024, 3, 15), 3000),  # capped
        (CMCC, 3000, (date(2024, 2, 15), date(2024, 3, 15)), date(2024, 4, 20), 3000),  # capped
        (CMCC, 3000, (date(2024, 2, 15), date(2024, 3, 15)), date(2024, 2, 14), 0),  # before period
        (CMCC, 3000, (date(2024, 4, 1), date(2024, 5, 1)), date(2024, 4, 10), 1000),  # exact, no rounding
        (CMCC, 3100, (date(2027, 1, 31), date(2027, 2, 28)), date(2027, 1, 31), 111),  # 1/28 of a 31st package
        (CTCC, 1, (date(2024, 4, 1), date(2024, 5, 1)), date(2024, 4, 1), 1),  # 1/30 fen rounds up
        (CTCC, 0, (date(2024, 4, 1), date(2024, 5, 1)), date(2024, 4, 10), 0),
        (DEFAULT_POLICY, 2900, (date(2023, 2, 1), date(2023, 3, 1)), date(2023, 2, 14), 1450),  # 14/28
    ],
)
def test_a_cancelled_period_costs_the_days_used_or_the_whole_month_per_carrier(
    policy: CarrierPolicy, fee: int, period: tuple[date, date], cancelled_on: date, cost: int,
):
    result = period_cost_fen(policy, fee, period, cancelled_on)
    assert result == cost
    assert isinstance(result, int)


def test_period_cost_rejects_a_negative_fee() -> None:
    with pytest.raises(ValueError, match="negative"):
        period_cost_fen(CMCC, -1, (date(2024, 2, 15), date(2024, 3, 15)), date(2024, 3, 1))


# --- properties -----------------------------------------------------------

POLICY_CHOICES = [
    *POLICIES.values(),
    dataclasses.replace(CMCC, timezone="America/New_York"),
]
aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, SHANGHAI, ZoneInfo("America/New_York")]),
    allow_imaginary=False,
)


@settings(deadline=None)
@given(policy=st.sampled_from(POLICY_CHOICES), when=aware_datetimes)
def test_shift_never_earlier_never_quiet(policy: CarrierPolicy, when: datetime) -> None:
    result = shift_out_of_quiet_hours(policy, when)
    assert result >= when
    assert result - when <= timedelta(hours=11)  # a 10 h window, plus a DST hour
    assert not in_quiet_hours(policy, result)
    assert result.tzinfo is UTC


@settings(deadline=None)
@given(
    policy=st.sampled_from(POLICY_CHOICES),
    deadline=aware_datetimes,
    offsets=st.lists(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))
    ),
    lead=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
)
def test_reminders_sorted_unique_after_not_before(
    policy: CarrierPolicy,
    deadline: datetime,
    offsets: list[timedelta],
    lead: timedelta,
) -> None:
    not_before = deadline - lead
    result = [at for _, at in reminder_slots(policy, deadline, offsets, not_before)]
    assert result == sorted(set(result))
    assert all(t >= not_before and not in_quiet_hours(policy, t) for t in result)


@settings(deadline=None)
@given(
    policy=st.sampled_from(POLICY_CHOICES),
    fee=st.integers(min_value=0, max_value=10**8),
    renews_on=st.dates(min_value=date(2000, 2, 1), max_value=date(2100, 1, 1)),
    anchor=st.integers(1, 31),
    cancel_shift=st.integers(min_value=-60, max_value=60),
)
def test_a_period_never_costs_less_than_nothing_nor_more_than_its_fee(
    policy: CarrierPolicy, fee: int, renews_on: date, anchor: int, cancel_shift: int,
):
    period = period_bounds(renews_on, anchor)
    assert 0 <= period_cost_fen(policy, fee, period, renews_on + timedelta(days=cancel_shift)) <= fee


@given(bp=st.integers(min_value=0, max_value=10_000), amount=st.integers(0, 10**9))
def test_late_fee_matches_decimal_half_up(bp: int, amount: int) -> None:
    policy = dataclasses.replace(CMCC, late_fee_bp=bp)
    exact = Decimal(amount) * bp / 10_000
    assert late_fee_fen(policy, amount) == int(
        exact.quantize(Decimal(1), ROUND_HALF_UP)
    )
