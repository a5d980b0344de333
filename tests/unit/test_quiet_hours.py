"""Reminders and quiet hours (docs/reminders.md): when a reminder is due, and what a sweep or a send late finds."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers import POLICIES, CarrierPolicy, allowed_send_time, in_quiet_hours, reminder_slots, settlement_deadline
from dialogs.reminders import renewal_moment

SHANGHAI = ZoneInfo("Asia/Shanghai")
CMCC, CUCC = POLICIES["cmcc"], POLICIES["cucc"]
MARGIN = timedelta(minutes=30)
SENT, MISSED, WAITING = "sent", "missed", "waiting"


def cst(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)


def quiet(policy: CarrierPolicy, start: time, end: time) -> CarrierPolicy:
    return dataclasses.replace(policy, quiet_start=start, quiet_end=end)


# --- the records --------------------------------------------------------------------------------


def test_every_carrier_leaves_a_backlog_half_an_hour_before_quiet_hours() -> None:
    assert {p.key: p.quiet_margin for p in POLICIES.values()} == {k: MARGIN for k in POLICIES}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"settlement_reminders": (timedelta(hours=2), timedelta(minutes=20))}, "offset"),
        ({"renewal_reminders": (timedelta(minutes=29),)}, "offset"),
        ({"quiet_start": time(8), "quiet_end": time(7, 45)}, "quiet hours"),  # 15 minutes a day to remind in
        ({"quiet_start": time(8, 0), "quiet_end": time(8, 29)}, None),  # 29 minutes of quiet: fine
        ({"quiet_margin": timedelta(minutes=-1)}, "margin"),
    ],
)
def test_a_record_that_leaves_no_room_for_a_backlog_is_refused(changes: dict, named: str | None) -> None:
    if named is None:
        dataclasses.replace(CMCC, **changes)
        return
    with pytest.raises(ValueError, match=named):
        dataclasses.replace(CMCC, **changes)


# --- when a reminder is due ---------------------------------------------------------------------

HOURS_12_2 = CUCC.settlement_reminders


@pytest.mark.parametrize(
    ("policy", "deadline", "not_before", "expected"),
    [
        # Issue 9 item 13: cancelled 01:00, due 01:00; 2 h before is 23:00, quiet until 08:00, past the deadline:
        # brought forward a margin before quiet hours, not to 21:59 where a minute's backlog carries it into them.
        (CUCC, cst(2026, 11, 26, 1), cst(2026, 11, 25, 1), [cst(2026, 11, 25, 13), cst(2026, 11, 25, 21, 30)]),
        # 2 h before is 21:45, allowed, but a backlog would carry it into quiet hours lasting past 23:45.
        (CUCC, cst(2026, 11, 26, 23, 45), cst(2026, 11, 25, 23, 45),
         [cst(2026, 11, 26, 11, 45), cst(2026, 11, 26, 21, 30)]),
        # 2 h before is 06:10; quiet hours end at 08:00, only 10 minutes before the deadline: the evening before.
        (CUCC, cst(2026, 11, 26, 8, 10), cst(2026, 11, 25, 8, 10),
         [cst(2026, 11, 25, 20, 10), cst(2026, 11, 25, 21, 30)]),
        # ... and with a margin to spare at 08:00, it waits for them to end.
        (CUCC, cst(2026, 11, 26, 8, 30), cst(2026, 11, 25, 8, 30),
         [cst(2026, 11, 25, 20, 30), cst(2026, 11, 26, 8)]),
        # Quiet 00:00-06:00: 23:59:59 is allowed and close to them, but they end days before the deadline.
        (quiet(CMCC, time(0), time(6)), cst(2026, 12, 2, 23, 59, 59), cst(2026, 11, 25, 10),
         [cst(2026, 11, 29, 23, 59, 59), cst(2026, 12, 1, 23, 59, 59)]),
        # Off: every target stands.
        (quiet(CUCC, time(0), time(0)), cst(2026, 11, 26, 1), cst(2026, 11, 25, 1),
         [cst(2026, 11, 25, 13), cst(2026, 11, 25, 23)]),
    ],
)
def test_a_reminder_is_due_where_a_normal_backlog_still_delivers_it_out_of_quiet_hours_and_in_time(
    policy: CarrierPolicy, deadline: datetime, not_before: datetime, expected: list[datetime]
) -> None:
    assert [at for _, at in reminder_slots(policy, deadline, policy.settlement_reminders, not_before)] == expected


# --- what a late sweep or send finds --------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "deadline", "expected"),
    [
        (cst(2026, 11, 25, 21, 59), cst(2026, 11, 26, 1), cst(2026, 11, 25, 21, 59)),  # allowed: now
        (cst(2026, 11, 25, 22, 1), cst(2026, 11, 26, 1), None),  # quiet until past the deadline: missed
        (cst(2026, 11, 25, 22, 3), cst(2026, 11, 26, 8, 10), cst(2026, 11, 26, 8)),  # their end, still in time
        (cst(2026, 11, 26, 8), cst(2026, 11, 26, 8), None),  # at the deadline: no reminder
        (cst(2026, 11, 26, 9), cst(2026, 11, 26, 8), None),  # after it
        (cst(2026, 11, 25, 23), None, cst(2026, 11, 26, 8)),  # the overdue notice has no deadline: it waits
    ],
)
def test_a_reminder_found_late_goes_now_or_at_the_first_allowed_moment_before_its_deadline(
    now: datetime, deadline: datetime | None, expected: datetime | None
) -> None:
    assert allowed_send_time(CUCC, now, deadline) == expected


# --- properties -------------------------------------------------------------------------------------


def follow(policy: CarrierPolicy, due_at: datetime, deadline: datetime, attempts: list[tuple[timedelta, timedelta]]):
    """One reminder through the shell: each attempt a sweep `sweep` after it falls due, then a send `send` later;
    either may put it back in the due index for the first allowed moment. (outcome, when)."""
    at = due_at
    for sweep, send in attempts:
        for now in (at + sweep, at + sweep + send):
            when = allowed_send_time(policy, now, deadline)
            if when is None:
                return MISSED, now
            if when > now:
                at = when
                break
        else:
            return SENT, now
    return WAITING, at


def no_allowed_moment(policy: CarrierPolicy, start: datetime, deadline: datetime) -> bool:
    """Brute force: quiet hours change on whole minutes, so checking `start` and each minute after it will do."""
    minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    moments = [start, *(minute + timedelta(minutes=i) for i in range(int((deadline - minute) / timedelta(minutes=1))))]
    return all(m >= deadline or in_quiet_hours(policy, m) for m in moments)


@st.composite
def policies(draw) -> CarrierPolicy:
    """A carrier's record as TDBOT_QUIET_HOURS leaves it: its own window, off, or any HH:MM-HH:MM start-up allows."""
    policy = draw(st.sampled_from(sorted(POLICIES.values(), key=lambda p: p.key)))
    window = draw(st.sampled_from(["own", "off", "set"]))
    if window == "own":
        return policy
    if window == "off":
        return quiet(policy, time(0), time(0))
    margin = policy.quiet_margin // timedelta(minutes=1)
    start = draw(st.integers(0, 24 * 60 - 1))
    end = (start + draw(st.integers(1, 24 * 60 - margin))) % (24 * 60)
    return quiet(policy, time(*divmod(start, 60)), time(*divmod(end, 60)))


moments = st.datetimes(datetime(2026, 1, 1), datetime(2028, 12, 31), timezones=st.just(SHANGHAI))


@st.composite
def reminders(draw) -> tuple[CarrierPolicy, datetime, list[datetime]]:
    """A policy, a deadline and the reminders scheduled for it: a settlement after a cancel, or a renewal."""
    policy, now = draw(policies()), draw(moments)
    if draw(st.booleans()):
        deadline, offsets = settlement_deadline(policy, now), policy.settlement_reminders
    else:
        deadline = renewal_moment(policy, now.date() + timedelta(days=draw(st.integers(1, 62))))
        offsets = policy.renewal_reminders
    return policy, deadline, [at for _, at in reminder_slots(policy, deadline, offsets, now)]


@st.composite
def normal_backlog(draw, margin: timedelta) -> tuple[timedelta, timedelta]:
    """A sweep and a send that together take less than the margin."""
    total = draw(st.integers(0, margin // timedelta(seconds=1) - 1))
    sweep = draw(st.integers(0, total))
    return timedelta(seconds=sweep), timedelta(seconds=total - sweep)


any_delay = st.timedeltas(timedelta(0), timedelta(hours=36))


@settings(max_examples=300, deadline=None)
@given(scheduled=reminders(), data=st.data())
def test_a_reminder_never_goes_in_quiet_hours_or_after_its_deadline_and_is_missed_only_with_no_moment_left(
    scheduled, data
) -> None:
    policy, deadline, due = scheduled
    for due_at in due:
        attempts = data.draw(st.lists(st.tuples(any_delay, any_delay), min_size=1, max_size=4))
        outcome, when = follow(policy, due_at, deadline, attempts)
        if outcome == SENT:
            assert not in_quiet_hours(policy, when) and when < deadline
        if outcome == MISSED:
            assert no_allowed_moment(policy, when, deadline)


@settings(max_examples=300, deadline=None)
@given(scheduled=reminders(), data=st.data())
def test_with_a_normal_backlog_every_scheduled_reminder_is_sent(scheduled, data) -> None:
    policy, deadline, due = scheduled
    for due_at in due:
        attempts = data.draw(st.lists(normal_backlog(policy.quiet_margin), min_size=2, max_size=2))
        outcome, when = follow(policy, due_at, deadline, attempts)
        assert outcome == SENT, (due_at, outcome, when)
        assert not in_quiet_hours(policy, when) and when < deadline


@settings(max_examples=300, deadline=None)
@given(scheduled=reminders())
def test_a_reminder_is_due_out_of_quiet_hours_with_a_margin_before_its_deadline(scheduled) -> None:
    policy, deadline, due = scheduled
    for due_at in due:
        assert due_at.tzinfo is UTC
        assert not in_quiet_hours(policy, due_at)
        assert due_at + policy.quiet_margin <= deadline

