"""A due reminder goes out: checked against the subscriber as they are now, kept out of quiet hours and never sent
after its deadline (docs/reminders.md), sent once.

The due index itself (scheduling, claiming, leases) is `gateway/state/due.py`; the sweeper hands claimed members
here in batches (`gateway/jobs/sweeper.py`).
"""

from __future__ import annotations

import logging

from dialogs.reminders import Reminder
from gateway.delivery import outbound, wanted
from gateway.jobs.once import queue_once
from gateway.runtime import REMINDER_QUEUE, Runtime
from gateway.state import audit, due, messages
from gateway.state.ids import digest
from gateway.state.messages import QUEUED, REMINDER, OutboundMessage

log = logging.getLogger(__name__)

SENT, SKIPPED, DUPLICATE, DEFERRED, MISSED = "sent", "skipped", "duplicate", "deferred", "missed"


def message_id(reminder: Reminder) -> str:
    """The same reminder always makes the same message, so a batch run twice sends it once."""
    return "rem" + digest(due.member(reminder), 24, "sha1")  # sha1: as the reminders already stored were named


# What the sweep makes of the sender's verdicts short of sending. A backlog may carry a reminder into the night: it
# waits for the morning if that is in time (deferred), else it is missed.
NOT_SENT = {wanted.UNWANTED: SKIPPED, wanted.HELD: DEFERRED, wanted.MISSED: MISSED}


def notify(runtime: Runtime, reminder: Reminder) -> str:
    """Queue `reminder` for the sender if, as things are now, it still has something to say and may go out now."""
    now = runtime.clock()
    decided = wanted.for_reminder(runtime, reminder, now)
    if decided.decision == wanted.UNWANTED:
        _skip_stored(runtime, reminder)
    if decided.decision != wanted.SEND:
        return NOT_SENT[decided.decision]
    message = OutboundMessage(
        message_id(reminder), reminder.msisdn, decided.text, REMINDER, int(now.timestamp()), ref=due.member(reminder),
        route=runtime.routing.route(reminder.msisdn, decided.subscriber),
    )
    entry = {"kind": audit.REMINDER, "id": message.id, "channel": REMINDER, "sent": [audit.sent(message)]}
    # Made again by a batch run twice, or held by the sender in quiet hours and found again: queued again while unsent.
    return SENT if queue_once(runtime, message, REMINDER_QUEUE, audited=entry) else DUPLICATE


def _skip_stored(runtime: Runtime, reminder: Reminder) -> None:
    """A message the sender held for this reminder (quiet hours) will never go now: say so, rather than leave it
    queued."""
    stored = runtime.store.load_message(reminder.msisdn, message_id(reminder))
    if stored is not None and stored.status == QUEUED:
        outbound.advance(runtime, stored, messages.SKIPPED, error=wanted.UNWANTED)
