"""A due reminder goes out: checked against the subscriber as they are now, kept out of quiet hours and never sent
after its deadline (docs/reminders.md), sent once.

The due index itself (scheduling, claiming, leases) is `gateway/state/due.py`; the sweeper hands claimed members
here in batches (`gateway/jobs/sweeper.py`).
"""

from __future__ import annotations

import hashlib
import logging

from redis import WatchError

from dialogs import reminders
from dialogs.reminders import Reminder
from gateway.delivery import outbound, wanted
from gateway.runtime import Runtime
from gateway.state import audit, due, messages
from gateway.state.messages import QUEUED, REMINDER, SENDING, OutboundMessage

log = logging.getLogger(__name__)

SENT, SKIPPED, DUPLICATE, DEFERRED, MISSED = "sent", "skipped", "duplicate", "deferred", "missed"


def message_id(reminder: Reminder) -> str:
    """The same reminder always makes the same message, so a batch run twice sends it once."""
    return "rem" + hashlib.sha1(due.member(reminder).encode()).hexdigest()[:24]


def notify(runtime: Runtime, reminder: Reminder) -> str:
    """Queue `reminder` for the sender if, as things are now, it still has something to say and may go out now."""
    subscriber = runtime.store.load_subscriber(reminder.msisdn)
    now = runtime.clock()
    text = reminders.text(subscriber, runtime.policy(subscriber), reminder, now) if subscriber else None
    if text is None:
        log.info("reminder %s: nothing to send (paid, cancelled, opted out or moved on)", due.member(reminder))
        _skip_stored(runtime, reminder)
        return SKIPPED
    # A backlog may carry a reminder into the night: it waits for the morning if that is in time, else it is missed.
    at = wanted.send_time(runtime, subscriber, reminder, now)
    if at is None:
        return MISSED
    if at > now:
        return DEFERRED
    message = OutboundMessage(
        message_id(reminder), reminder.msisdn, text, REMINDER, int(now.timestamp()), ref=due.member(reminder),
        route=runtime.routing.route(reminder.msisdn, subscriber),
    )
    if not _create_once(runtime, message):
        stored = runtime.store.load_message(message.msisdn, message.id)
        if stored is not None and stored.status in (QUEUED, SENDING):
            # Made by a run that died before queuing it (or whose job died), or held by the sender in quiet hours:
            # queue it again. Sending is claimed, so a job that is still queued as well sends it once.
            outbound.enqueue_reminders(runtime, [stored])
        return DUPLICATE
    outbound.enqueue_reminders(runtime, [message])
    return SENT


def _skip_stored(runtime: Runtime, reminder: Reminder) -> None:
    """A message the sender held for this reminder (quiet hours) will never go now: say so, rather than leave it
    queued."""
    stored = runtime.store.load_message(reminder.msisdn, message_id(reminder))
    if stored is not None and stored.status == QUEUED:
        outbound.advance(runtime, stored, messages.SKIPPED, error=wanted.UNWANTED)


def _create_once(runtime: Runtime, message: OutboundMessage) -> bool:
    store, key = runtime.store, runtime.keys.message(message.msisdn, message.id)
    entry = {"kind": audit.REMINDER, "id": message.id, "channel": REMINDER, "sent": [audit.sent(message)]}
    with runtime.redis.pipeline() as pipe:
        try:
            pipe.watch(key)
            if pipe.exists(key):
                return False
            pipe.multi()
            store.save_message(message, pipeline=pipe)
            store.audit(message.msisdn, entry, runtime.clock(), pipeline=pipe)
            pipe.execute()
            return True
        except WatchError:  # another batch made it first
            return False
