"""Next plan (后续服务变更): which plans a subscriber may order and what ordering one creates. Pure."""

from __future__ import annotations

from datetime import date

from carriers import CarrierPolicy, Plan, next_renewal
from dialogs.model import Subscriber, Subscription

# 二次确认: the fee is stated and the order stands only if 是/Y comes back within this window.
OFFER_SECONDS = 24 * 3600


def available(policy: CarrierPolicy, subscriber: Subscriber) -> tuple[Plan, ...]:
    """The carrier's plans, less those the subscriber already has active."""
    active = {s.service_code.upper() for s in subscriber.active()}
    return tuple(p for p in policy.plans if p.code.upper() not in active)


def find(policy: CarrierPolicy, code: str) -> Plan | None:
    return next((p for p in policy.plans if p.code == code), None)


def subscription_for(subscriber: Subscriber, plan: Plan, lang: str, today: date) -> Subscription:
    """A new active package starting `today` (local), anchored on its day; a fresh id, so no cancelled history is
    overwritten."""
    base = f"{plan.code.lower()}-{today:%Y%m%d}"
    taken = {s.id for s in subscriber.subscriptions}
    sub_id = next(candidate for n in range(1, len(taken) + 2)
                  if (candidate := base if n == 1 else f"{base}-{n}") not in taken)
    return Subscription(id=sub_id, name=plan.name(lang), service_code=plan.code, fee_fen=plan.fee_fen,
                        renews_on=next_renewal(today, today.day), anchor_day=today.day)
