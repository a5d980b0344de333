"""Renewals: on its `renews_on` an active package starts a new period with a charge line; a cancelled one never does."""

from __future__ import annotations

import logging

from dialogs import reminders as rules
from dialogs.reminders import Reminder, period_start
from dialogs.renewal import charged, renew
from gateway.runtime import Runtime
from gateway.state import audit, due

log = logging.getLogger(__name__)

RENEWED, SKIPPED = "renewed", "skipped"


def handle(runtime: Runtime, reminder: Reminder) -> str:
    """Renew one package for one period, atomically; run again for the same period it changes nothing."""
    now, period = runtime.clock(), period_start(reminder)
    after = runtime.store.update_subscriber(
        reminder.msisdn, lambda before: renew(before, reminder.ref, period, now) if before else None,
        audited=audit.charged,
    )
    sub = after.subscription(reminder.ref) if after else None
    if sub is None or not sub.active or not charged(after, reminder.ref, period):
        log.info("no renewal of %s %s for %s: cancelled, gone or moved on", reminder.msisdn, reminder.ref, period)
        return SKIPPED
    # Decided by the state, not by whether this run made the change, so a retry after a crash still schedules.
    entries = rules.for_renewal(runtime.policy(after), reminder.msisdn, sub, now)
    due.schedule(runtime.redis, runtime.keys, entries)
    return RENEWED
