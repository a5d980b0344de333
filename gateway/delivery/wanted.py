"""The last check before a reminder leaves: paid, cancelled or opted out since it was queued, it stays unsent."""

from __future__ import annotations

import logging

from dialogs import reminders
from gateway.bootstrap import Runtime
from gateway.delivery.messages import REMINDER, OutboundMessage
from gateway.state import due

log = logging.getLogger(__name__)


def still_wanted(runtime: Runtime, message: OutboundMessage) -> bool:
    """Right before a reminder goes out: does it still have something to say (not paid, cancelled, opted out)?"""
    if message.kind != REMINDER or not message.ref:
        return True
    reminder = due.parse(message.ref)
    subscriber = runtime.store.load_subscriber(reminder.msisdn)
    policy = runtime.policy(subscriber) if subscriber else None
    if policy is None or reminders.text(subscriber, policy, reminder, runtime.clock()) is None:
        log.info("reminder %s: skipped at send time (paid, cancelled, opted out or moved on)", message.ref)
        return False
    return True
