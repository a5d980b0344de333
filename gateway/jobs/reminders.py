"""A due reminder goes out: checked against the subscriber as they are now, kept out of quiet hours, sent once.

The due index itself (scheduling, claiming, leases) is `gateway/state/due.py`; the sweeper hands claimed members
here in batches (`gateway/jobs/sweeper.py`).
"""

from __future__ import annotations

import hashlib
import logging

from redis import WatchError

from carriers import in_quiet_hours, shift_out_of_quiet_hours
from dialogs import reminders
from dialogs.reminders import Reminder
from gateway.bootstrap import Runtime
from gateway.delivery import outbound
from gateway.delivery.messages import QUEUED, REMINDER, SENDING, OutboundMessage
from gateway.state import due

log = logging.getLogger(__name__)

SENT, SKIPPED, DUPLICATE, DEFERRED = "sent", "skipped", "duplicate", "deferred"


def message_id(reminder: Reminder) -> str:
    """The same reminder always makes the same message, so a batch run twice sends it once."""
    return "rem" + hashlib.sha1(due.member(reminder).encode()).hexdigest()[:24]


def notify(runtime: Runtime, reminder: Reminder) -> str:
    """Send `reminder` if, as things are now, it still has something to say."""
    subscriber = runtime.store.load_subscriber(reminder.msisdn)
    now = runtime.clock()
    policy = runtime.policy(subscriber) if subscriber else None
    if policy is not None and in_quiet_hours(policy, now):
        # A backlog may carry a reminder into the night: shift it again rather than wake anyone.
        due.schedule(runtime.redis, runtime.keys, [(reminder, shift_out_of_quiet_hours(policy, now))])
        return DEFERRED
    text = reminders.text(subscriber, policy, reminder, now) if policy else None
    if text is None:
        log.info("reminder %s: nothing to send (paid, cancelled, opted out or moved on)", due.member(reminder))
        return SKIPPED
    message = OutboundMessage(
        message_id(reminder), reminder.msisdn, text, REMINDER, int(now.timestamp()), ref=due.member(reminder),
        route=runtime.routing.route(reminder.msisdn, subscriber),
    )
    if not _create_once(runtime, message):
        stored = runtime.store.load_message(message.msisdn, message.id)
        if stored is not None and stored.status in (QUEUED, SENDING):
            # Made by a run that died before queuing it (or whose job died): queue it again. Sending is claimed,
            # so a job that is still queued as well sends it once.
            outbound.enqueue_reminders(runtime, [stored])
        return DUPLICATE
    outbound.enqueue_reminders(runtime, [message])
    return SENT


def _create_once(runtime: Runtime, message: OutboundMessage) -> bool:
    store, key = runtime.store, runtime.keys.message(message.msisdn, message.id)
    entry = {"at": message.created_at, "id": message.id, "channel": REMINDER, "in": "", "reply": "",
             "sent": [message.text]}
    with runtime.redis.pipeline() as pipe:
        try:
            pipe.watch(key)
            if pipe.exists(key):
                return False
            pipe.multi()
            store.save_message(message, pipeline=pipe)
            store.log(message.msisdn, entry, pipeline=pipe)
            pipe.execute()
            return True
        except WatchError:  # another batch made it first
            return False
