"""Which reminders a statement or a renewal calls for, and what each says when it falls due. Pure.

A reminder is checked against the subscriber as they are when it falls due, not as they were when it was
scheduled: a statement paid since, a package cancelled since or a subscriber who sent STOP gets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from carriers import CarrierPolicy, reminder_slots
from dialogs.budgets import short_name
from dialogs.messages import day, money, render, when
from dialogs.model import OPEN, OVERDUE, Statement, Subscriber, Subscription

SETTLE = "s"  # before a settlement deadline
DEADLINE = "d"  # the deadline itself: an open statement turns overdue
LATE = "l"  # the overdue notice
RENEWAL = "r"  # before a renewal
RENEW = "n"  # the renewal itself


@dataclass(frozen=True)
class Reminder:
    kind: str
    msisdn: str
    ref: str  # the statement id; for RENEWAL and RENEW the subscription id
    period: str = ""  # RENEWAL and RENEW: the renews_on they are for (YYYYMMDD); stale once the package moves on
    index: int = 0  # which of the policy's offsets: each reminder is its own entry, named the same when recomputed


Due = tuple[Reminder, datetime]


def period_of(renews_on: date) -> str:
    return f"{renews_on:%Y%m%d}"


def period_start(reminder: Reminder) -> date:
    return datetime.strptime(reminder.period, "%Y%m%d").date()


def renewal_moment(policy: CarrierPolicy, renews_on: date) -> datetime:
    """A package renews at the start of its renewal day in the carrier's zone."""
    return datetime.combine(renews_on, datetime.min.time(), policy.tz)


def for_statement(policy: CarrierPolicy, msisdn: str, statement: Statement, now: datetime) -> list[Due]:
    """Reminders before the deadline (out of quiet hours, never after it), then the deadline itself."""
    if statement.status != OPEN or statement.owed_fen == 0:
        return []
    slots = reminder_slots(policy, statement.due_at, policy.settlement_reminders, now)
    before = [(Reminder(SETTLE, msisdn, statement.id, index=i), at) for i, at in slots]
    return before + [(Reminder(DEADLINE, msisdn, statement.id), statement.due_at)]


def for_renewal(policy: CarrierPolicy, msisdn: str, sub: Subscription, now: datetime) -> list[Due]:
    """Reminders before an active package renews, then the renewal itself (due at once if its day has passed)."""
    if not sub.active:
        return []
    at, period = renewal_moment(policy, sub.renews_on), period_of(sub.renews_on)
    slots = reminder_slots(policy, at, policy.renewal_reminders, now)
    before = [(Reminder(RENEWAL, msisdn, sub.id, period, i), t) for i, t in slots]
    return before + [(Reminder(RENEW, msisdn, sub.id, period), at)]


def deadline(subscriber: Subscriber, policy: CarrierPolicy, reminder: Reminder) -> datetime | None:
    """The moment after which `reminder` has no point: its statement's deadline, or its package's renewal. The overdue
    notice has none (quiet hours only delay it)."""
    if reminder.kind == SETTLE:
        statement = subscriber.statement(reminder.ref)
        return statement.due_at if statement else None
    if reminder.kind == RENEWAL:
        return renewal_moment(policy, period_start(reminder))
    return None


def text(subscriber: Subscriber, policy: CarrierPolicy, reminder: Reminder, now: datetime) -> str | None:
    """The message `reminder` sends now, or None when there is nothing (left) to say."""
    if subscriber.opted_out:
        return None
    lang = subscriber.locale or policy.locale
    if reminder.kind == SETTLE:
        body = _settle(subscriber.statement(reminder.ref), policy, lang, now)
    elif reminder.kind == RENEWAL:
        body = _renewal(subscriber, subscriber.subscription(reminder.ref), reminder.period, lang)
    elif reminder.kind == LATE:
        body = _late(subscriber.statement(reminder.ref), lang)
    else:
        body = None
    return policy.sender_id + body if body else None


def _settle(statement: Statement | None, policy: CarrierPolicy, lang: str, now: datetime) -> str | None:
    if statement is None or statement.status != OPEN or statement.owed_fen == 0 or now >= statement.due_at:
        return None
    return render(
        lang, "remind_settle", name=short_name(statement.name), amount=money(lang, statement.owed_fen),
        deadline=when(lang, statement.due_at, policy.timezone),
    )


def _renewal(subscriber: Subscriber, sub: Subscription | None, period: str, lang: str) -> str | None:
    if sub is None or not sub.active or period_of(sub.renews_on) != period:
        return None
    number = [s.id for s in subscriber.active()].index(sub.id) + 1  # the n of `TD n`, as the TD list numbers
    return render(
        lang, "remind_renewal", name=short_name(sub.name), renews=day(lang, sub.renews_on),
        fee=money(lang, sub.fee_fen), n=number,
    )


def _late(statement: Statement | None, lang: str) -> str | None:
    if statement is None or statement.status != OVERDUE or statement.owed_fen == 0:
        return None
    key = "overdue_fee" if statement.late_fee_fen else "overdue"
    return render(
        lang, key, name=short_name(statement.name), fee=money(lang, statement.late_fee_fen),
        amount=money(lang, statement.owed_fen),
    )
