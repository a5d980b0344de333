"""Deadline, quiet-hours and proration arithmetic. Pure: callers pass the time in."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from carriers.policy import CarrierPolicy

_END_OF_DAY = time(23, 59, 59)


def _require_aware(when: datetime) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("naive datetime: pass an aware datetime")


def settlement_deadline(policy: CarrierPolicy, cancelled_at: datetime) -> datetime:
    _require_aware(cancelled_at)
    if not policy.deadline_end_of_day:
        # Add in UTC so "24 hours" stays 24 real hours across a DST change.
        return cancelled_at.astimezone(UTC) + policy.settle_within
    local = cancelled_at.astimezone(policy.tz) + policy.settle_within
    return datetime.combine(local.date(), _END_OF_DAY, policy.tz).astimezone(UTC)


def in_quiet_hours(policy: CarrierPolicy, when: datetime) -> bool:
    _require_aware(when)
    start, end = policy.quiet_start, policy.quiet_end
    local = when.astimezone(policy.tz).time()
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # window wraps midnight


def shift_out_of_quiet_hours(policy: CarrierPolicy, when: datetime) -> datetime:
    """Move a send to the next quiet_end; a quiet-hours reminder is delayed, never dropped."""
    if not in_quiet_hours(policy, when):
        return when.astimezone(UTC)
    local = when.astimezone(policy.tz)
    candidate = datetime.combine(local.date(), policy.quiet_end, policy.tz)
    if candidate <= local:
        candidate = datetime.combine(
            local.date() + timedelta(days=1), policy.quiet_end, policy.tz
        )
    return candidate.astimezone(UTC)


def reminder_slots(
    policy: CarrierPolicy,
    deadline: datetime,
    offsets: Iterable[timedelta],
    not_before: datetime,
) -> list[tuple[int, datetime]]:
    """When to remind ahead of `deadline`: each offset before it, out of quiet hours and never after it, with its
    position in `offsets`, which names the reminder whenever it is computed (an offset already passed does not
    renumber the rest). Offsets landing on one slot make one reminder, named after the first."""
    _require_aware(deadline)
    _require_aware(not_before)
    slots: dict[datetime, int] = {}
    for i, offset in enumerate(offsets):  # every offset, passed or not, so a shared slot keeps its first name
        slots.setdefault(_before_deadline(policy, deadline - offset, deadline), i)
    # A slot already gone is skipped: an offset passed, or quiet hours that covered all the time left.
    slots = {at: i for at, i in slots.items() if at >= not_before}
    return sorted(((i, at) for at, i in slots.items()), key=lambda slot: slot[1])


def _before_deadline(policy: CarrierPolicy, target: datetime, deadline: datetime) -> datetime:
    """When a reminder aimed at `target` is due: there if a backlog up to `quiet_margin` late still reaches the phone
    out of quiet hours and before `deadline`, else at their end, else a margin before they begin (docs/reminders.md)."""
    quiet = _quiet_period(policy, target)
    if quiet is None:
        return target.astimezone(UTC)
    start, end = quiet
    margin = policy.quiet_margin
    if end + margin <= deadline:  # should a send slip into these quiet hours, their end is still in time
        return target.astimezone(UTC) if target < start else end
    return target.astimezone(UTC) if target + margin <= start else start - margin


def _quiet_period(policy: CarrierPolicy, when: datetime) -> tuple[datetime, datetime] | None:
    """The quiet hours `when` falls in, else the next ones to begin, as UTC (start, end); None when they are off."""
    if policy.quiet_start == policy.quiet_end:
        return None
    day = when.astimezone(policy.tz).date()
    # Those that began yesterday (after midnight in a window that wraps it), today or tomorrow: one has not ended.
    periods = (_quiet_from(policy, day + timedelta(days=n)) for n in (-1, 0, 1))
    return next((start, end) for start, end in periods if end > when)


def _quiet_from(policy: CarrierPolicy, day: date) -> tuple[datetime, datetime]:
    """The quiet hours that begin on `day`, as UTC (start, end)."""
    end_day = day + timedelta(days=1) if policy.quiet_start > policy.quiet_end else day
    start = datetime.combine(day, policy.quiet_start, policy.tz)
    return start.astimezone(UTC), datetime.combine(end_day, policy.quiet_end, policy.tz).astimezone(UTC)


def allowed_send_time(policy: CarrierPolicy, now: datetime, deadline: datetime | None) -> datetime | None:
    """When a reminder found due at `now` (by a sweep, or at the sender) may go out: now, else the end of the quiet
    hours it is in; None when that is not before its `deadline` (none for the overdue notice): it is missed."""
    at = shift_out_of_quiet_hours(policy, now)
    return at if deadline is None or at < deadline else None


def on_anchor(year: int, month: int, anchor: int) -> date:
    """A package's renewal day in a month: its anchor day, or the month's last day when the month is shorter."""
    if not 1 <= anchor <= 31:
        raise ValueError(f"anchor day {anchor} is not a day of the month")
    return date(year, month, min(anchor, calendar.monthrange(year, month)[1]))


def _month(day: date, months: int) -> tuple[int, int]:
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return year, month + 1


def renewal_after(anchor: int, day: date) -> date:
    """The first renewal after `day` of a package renewing on day `anchor` of each month. The renewal job and an
    import's roll-forward both move a package on with this, so neither drifts off the anchor (31 -> 28 Feb -> 31)."""
    this_month = on_anchor(day.year, day.month, anchor)
    return this_month if this_month > day else on_anchor(*_month(day, 1), anchor)


def _renewal_before(anchor: int, day: date) -> date:
    this_month = on_anchor(day.year, day.month, anchor)
    return this_month if this_month < day else on_anchor(*_month(day, -1), anchor)


def next_renewal(renews_on: date, anchor: int) -> date:
    return renewal_after(anchor, renews_on)


def period_bounds(renews_on: date, anchor: int) -> tuple[date, date]:
    """The period ending on `renews_on`, as the half-open range of days [start, renews_on): it began on the last
    renewal of the anchor's cycle before it."""
    return _renewal_before(anchor, renews_on), renews_on


def period_cost_fen(policy: CarrierPolicy, fee_fen: int, period: tuple[date, date], cancelled_on: date) -> int:
    """What a period cancelled on local day `cancelled_on` costs: the whole fee, or by day over the period's real
    length (the cancel day counted), rounded up to the fen; nothing if it had not begun."""
    if fee_fen < 0:
        raise ValueError("fee_fen must not be negative")
    start, end = period
    if cancelled_on < start:
        return 0
    if policy.proration == "month":
        return fee_fen
    length = (end - start).days
    used = min(max((cancelled_on - start).days + 1, 0), length)
    return -(-fee_fen * used // length)  # ceil to the fen, ints only
