"""Merge a carrier's import into a subscriber record. Pure: imports never resurrect a cancelled package, never bill
the months between a stale renewal date and today, keep a package's anchor day while its dates stay on it, and credit
what they report paid after a cancel on its statement (docs/billing.md, Payments, rule 9)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from carriers import on_anchor, policy_of, renewal_after
from dialogs import bills
from dialogs.model import Payment, Statement, Subscriber, Subscription
from dialogs.payments import RECORDED, record_payment, statement_period_start

REFERENCE_PREFIX = "IMPORT"


@dataclass(frozen=True)
class Credit:
    """Money the carrier reported paid for a cancelled package's period, as a payment on the period's statement."""

    statement_id: str
    payment: Payment
    overpaid_fen: int = 0  # beyond what the statement owed: to be refunded


@dataclass(frozen=True)
class Lower:
    """A total reported paid for a statement's period below the one the statement was credited from."""

    statement_id: str
    reported_fen: int
    stored_fen: int


@dataclass(frozen=True)
class Imported:
    subscriber: Subscriber
    credits: tuple[Credit, ...] = ()  # recorded
    refused: tuple[Credit, ...] = ()  # not recorded: the reference is held for other terms, or on record already
    lower: tuple[Lower, ...] = ()


def receive(existing: Subscriber | None, incoming: Subscriber, now: datetime,
            held: frozenset[str] = frozenset()) -> Imported:
    """`incoming` merged into `existing`, with the increase of what it reports paid for a cancelled package's period
    credited on that period's statement, paid now. A credit whose reference is in `held` (claimed for other terms)
    is refused: its package keeps its old total, so a later import tries again."""
    imported = Imported(merge(existing, incoming, now))
    for sent in incoming.subscriptions:
        old = existing.subscription(sent.id) if existing else None
        if old is not None and not old.active and sent.renews_on == old.renews_on:
            imported = _reported(imported, old, sent.paid_fen, now, held)
    return imported


def _reported(imported: Imported, old: Subscription, total: int, now: datetime, held: frozenset[str]) -> Imported:
    """`total` reported paid for the period the statement of cancelled `old` bills: what lands on the statement."""
    subscriber = imported.subscriber
    statement = _statement_of(subscriber, old)
    start = statement_period_start(statement.id) if statement else None
    if statement is None or start is None:
        return imported
    lines = bills.lines_in(subscriber, old, (start, old.renews_on))
    charged = sum(line.billed_fen for line in lines)  # paid money pays the lines first, as at the cancel
    landed = max(charged, total) - max(charged, old.paid_fen)
    if landed < 0:
        return replace(imported, lower=imported.lower + (Lower(statement.id, total, old.paid_fen),))
    # With a line of ours, money beyond what the statement asks is that line's credit: not counted a second time.
    amount = min(landed, max(0, statement.amount_fen - _imported_fen(statement))) if lines else landed
    if amount == 0:
        return imported
    payment = Payment(reference(statement.id, old.paid_fen, total), amount, now)  # paid when we heard of it
    if payment.reference not in held:
        policy = policy_of(subscriber.msisdn, subscriber.carrier)
        settled = record_payment(subscriber, statement.id, payment, policy, now, capped=False)  # paid already
        if settled.outcome == RECORDED and settled.subscriber is not None:
            credit = Credit(statement.id, payment, settled.overpaid_fen)
            return replace(imported, subscriber=settled.subscriber, credits=imported.credits + (credit,))
    merged = subscriber.subscription(old.id)
    kept = subscriber.with_subscription(replace(merged, paid_fen=old.paid_fen)) if merged else subscriber
    return replace(imported, subscriber=kept, refused=imported.refused + (Credit(statement.id, payment),))


def reference(statement_id: str, old_total: int, new_total: int) -> str:
    """The payment of an import moving the total reported paid for a statement's period from `old_total` to
    `new_total`: the same import twice finds the total moved already; the old total makes the reference fix the
    amount, so a claim is never for two amounts."""
    return f"{REFERENCE_PREFIX}-{statement_id}-{old_total}-{new_total}"


def _statement_of(subscriber: Subscriber, sub: Subscription) -> Statement | None:
    """The cancellation statement of `sub`: a package is cancelled once."""
    return next((s for s in reversed(subscriber.statements) if s.subscription_id == sub.id), None)


def _imported_fen(statement: Statement) -> int:
    prefix = f"{REFERENCE_PREFIX}-{statement.id}-"
    return sum(p.amount_fen for p in statement.payments if p.reference.startswith(prefix))


def merge(existing: Subscriber | None, incoming: Subscriber, now: datetime) -> Subscriber:
    base = existing if existing is not None else replace(incoming, subscriptions=())
    merged = replace(
        base,
        carrier=incoming.carrier if incoming.carrier is not None else base.carrier,
        locale=incoming.locale if incoming.locale is not None else base.locale,
    )
    today = now.astimezone(policy_of(merged.msisdn, merged.carrier).tz).date()
    for sent in incoming.subscriptions:
        old = merged.subscription(sent.id)
        merged = merged.with_subscription(_keep_history(old, sent, _current(old, _anchored(old, sent), today)))
    return merged


def _anchored(old: Subscription | None, sent: Subscription) -> Subscription:
    """A date on the stored package's cycle keeps its anchor (a 31st package sent as renewing 28 Feb is still one);
    any other date starts a new anchor at its own day."""
    if old is not None and on_anchor(sent.renews_on.year, sent.renews_on.month, old.anchor_day) == sent.renews_on:
        return replace(sent, anchor_day=old.anchor_day)
    return replace(sent, anchor_day=sent.renews_on.day)


def _current(old: Subscription | None, new: Subscription, today: date) -> Subscription:
    """A renewal date already past: the periods since were the carrier's to bill, not ours to renew one by one. The
    package moves to its next renewal after today, uncharged, unless we track a date at least as recent."""
    if new.renews_on >= today:
        return new
    if old is not None and old.renews_on >= new.renews_on:
        return replace(new, renews_on=old.renews_on, anchor_day=old.anchor_day)
    return replace(new, renews_on=renewal_after(new.anchor_day, today))


def _keep_history(old: Subscription | None, sent: Subscription, new: Subscription) -> Subscription:
    """`new` with what the import must not undo: a cancel, and a payment towards the current period. What was sent
    as paid is for the period ending on the date it was sent with, so it counts only if that is still the period.
    A cancelled package's dates are the period its statement bills: history, kept whatever date is sent."""
    paid = sent.paid_fen if sent.renews_on == new.renews_on else 0
    if old is None:
        return replace(new, paid_fen=paid)
    if not old.active:
        paid = max(sent.paid_fen, old.paid_fen) if sent.renews_on == old.renews_on else old.paid_fen
        new = replace(new, renews_on=old.renews_on, anchor_day=old.anchor_day)
    elif old.renews_on == new.renews_on:
        paid = max(paid, old.paid_fen)
    return replace(new, status=old.status, cancelled_at=old.cancelled_at, paid_fen=paid)
