"""The last checks before a message leaves. A reminder paid, cancelled or opted out since it was queued stays unsent;
in quiet hours it waits for their end, unless they last past its deadline: then it is missed; and it says what is
true as it leaves, not what was true when it was queued (docs/reminders.md). A confirmation sent again is not sent
once an earlier copy has been reported delivered (docs/delivery.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from carriers import allowed_send_time
from dialogs import reminders
from dialogs.codes import CODE_TTL
from dialogs.effects import CODE
from dialogs.model import Subscriber
from dialogs.reminders import Reminder
from gateway.runtime import Runtime
from gateway.state import due
from gateway.state.keys import REMINDERS_MISSED
from gateway.state.messages import DELIVERED, REMINDER, OutboundMessage

log = logging.getLogger(__name__)

# What a message reaching the sender gets; the last three are the reason a skipped one records.
SEND, HELD, UNWANTED, MISSED = "send", "held", "nothing left to say", "no moment out of quiet hours before its deadline"
ARRIVED = "an earlier copy was delivered"
EXPIRED = "the code expired before it could go"
MISSED_MARKER_TTL = 7 * 86400  # longer than a missed reminder's batch can come round again


@dataclass(frozen=True)
class Verdict:
    decision: str  # SEND, HELD, or why not sent: UNWANTED, MISSED, ARRIVED, EXPIRED
    text: str = ""  # with SEND: what to send now (a reminder worded afresh, anything else as stored)
    subscriber: Subscriber | None = None  # with a reminder's SEND: the subscriber it was worded for


def verdict(runtime: Runtime, message: OutboundMessage) -> Verdict:
    """Right before a message goes out. Reminders are checked against the subscriber, and a resent copy against the
    copies before it; replies, codes and a dialog's notices answer the subscriber and are never held."""
    if message.repeats and earlier_copy_delivered(runtime, message):
        return Verdict(ARRIVED)
    if message.kind == CODE and runtime.clock().timestamp() >= message.created_at + CODE_TTL:
        return Verdict(EXPIRED)  # held up (a route down, a backlog): the subscriber asks for another
    if message.kind != REMINDER or not message.ref:
        return Verdict(SEND, message.text)
    return for_reminder(runtime, due.parse(message.ref), runtime.clock())


def for_reminder(runtime: Runtime, reminder: Reminder, now: datetime) -> Verdict:
    """Whether `reminder`, as things are `now`, still has something to say (then worded now) and may go out now: the
    one decision of the sweep that queues it and the sender that sends it."""
    subscriber = runtime.store.load_subscriber(reminder.msisdn)
    text = reminders.text(subscriber, runtime.policy(subscriber), reminder, now) if subscriber else None
    if text is None:
        log.info("reminder %s: nothing to send (paid, cancelled, opted out or moved on)", due.member(reminder))
        return Verdict(UNWANTED)
    at = send_time(runtime, subscriber, reminder, now)
    return Verdict(MISSED) if at is None else Verdict(HELD) if at > now else Verdict(SEND, text, subscriber)


def send_time(runtime: Runtime, subscriber: Subscriber, reminder: Reminder, now: datetime) -> datetime | None:
    """When `reminder` may go out: now; the end of the quiet hours `now` is in, when that is before its deadline (it
    is back in the due index until then); or None: no allowed moment is left, it is missed (logged and counted)."""
    policy = runtime.policy(subscriber)
    deadline = reminders.deadline(subscriber, policy, reminder)
    at = allowed_send_time(policy, now, deadline)
    if at is None:
        log.warning("reminder %s missed: found at %s, no moment out of quiet hours is left before its deadline %s",
                    due.member(reminder), now, deadline)
        _count_missed(runtime, reminder)
    elif at > now:
        due.schedule(runtime.redis, runtime.keys, [(reminder, at)])
    return at


def _count_missed(runtime: Runtime, reminder: Reminder) -> None:
    """Once per reminder, however often a batch holding it runs (a lease that ran out, a worker killed mid-batch)."""
    marker = runtime.keys.shared(REMINDERS_MISSED, due.member(reminder))
    if runtime.redis.set(marker, 1, nx=True, ex=MISSED_MARKER_TTL):
        runtime.redis.incr(runtime.keys.shared(REMINDERS_MISSED))


def earlier_copy_delivered(runtime: Runtime, message: OutboundMessage) -> bool:
    """Has a copy `message` repeats (a confirmation sent again, and again) been reported delivered?"""
    copy: OutboundMessage | None = message
    while copy is not None and copy.repeats:
        copy = runtime.store.load_message(message.msisdn, copy.repeats)
        if copy is not None and copy.status == DELIVERED:
            return True
    return False
