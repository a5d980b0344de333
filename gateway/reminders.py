"""The due index: every pending reminder is one compact member of one Redis sorted set, scored by when it is due.

A member is `kind|msisdn|ref|period|index` (about 50 bytes, about 120 B in Redis), so a million future reminders
cost tens of MB and no RQ job exists until one falls due. The sweeper (gateway/sweeper.py) moves due members to
a "claimed" set with a lease and hands them to a batch job; a batch job acknowledges what it finished, and what a
killed worker leaves claimed falls due again when its lease ends.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Iterable
from dataclasses import replace
from datetime import time

from redis import Redis, WatchError
from redis.client import Pipeline

from carriers import CarrierPolicy, in_quiet_hours, shift_out_of_quiet_hours
from carriers import policy_of as carrier_policy
from dialogs import reminders
from dialogs.model import Subscriber
from dialogs.reminders import Due, Reminder
from gateway import outbound
from gateway.bootstrap import Runtime
from gateway.keys import DUE, Keys
from gateway.messages import QUEUED, SENDING, OutboundMessage

log = logging.getLogger(__name__)

CLAIMED = "claimed"
REMINDER = "reminder"  # OutboundMessage.kind
SENT, SKIPPED, DUPLICATE, DEFERRED = "sent", "skipped", "duplicate", "deferred"

# KEYS: due, claimed. ARGV: now, lease end, batch. Moves up to `batch` due members to claimed, scored by the lease end.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[2], ARGV[2], m)
  redis.call('ZREM', KEYS[1], m)
end
return due
"""
# KEYS: due, claimed. ARGV: now, limit. Claims whose lease ended fall due now (unless rescheduled meanwhile).
_REDUE = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(expired) do
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], m)
  redis.call('ZREM', KEYS[2], m)
end
return #expired
"""
# KEYS: claimed. ARGV: lease end, members. Only our own claim is released: a member whose lease ran out and that
# another batch has claimed since stays with that batch.
_ACK = """
local done = 0
for i = 2, #ARGV do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i])) == tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    done = done + 1
  end
end
return done
"""


def due_key(keys: Keys) -> str:
    return keys.shared(DUE)


def claimed_key(keys: Keys) -> str:
    return keys.shared(DUE, CLAIMED)


def member(reminder: Reminder) -> str:
    return f"{reminder.kind}|{reminder.msisdn}|{reminder.ref}|{reminder.period}|{reminder.index}"


def parse(raw: str | bytes) -> Reminder:
    text = raw.decode() if isinstance(raw, bytes) else raw
    kind, msisdn, ref, period, index = text.split("|")
    return Reminder(kind, msisdn, ref, period, int(index))


def policy_of(runtime: Runtime, subscriber: Subscriber) -> CarrierPolicy:
    """The subscriber's carrier policy, with the deployment's quiet hours when TDBOT_QUIET_HOURS sets them."""
    policy = carrier_policy(subscriber.msisdn, subscriber.carrier)
    quiet = quiet_hours(str(runtime.config.get("TDBOT_QUIET_HOURS") or ""))
    return replace(policy, quiet_start=quiet[0], quiet_end=quiet[1]) if quiet else policy


@functools.cache
def quiet_hours(setting: str) -> tuple[time, time] | None:
    """'22:00-08:00' → (22:00, 08:00); 'off' → none (start == end); '' → the carrier's own."""
    if not setting:
        return None
    if setting.lower() == "off":
        return time(0), time(0)
    start, end = setting.split("-", 1)
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


# --- scheduling -----------------------------------------------------------------------------


def schedule(redis: Redis, keys: Keys, entries: Iterable[Due], pipeline: Pipeline | None = None) -> int:
    """Add reminders to the due index; the same reminder scheduled twice is one entry."""
    # Rounded up: a deadline check must not run a fraction of a second before its deadline.
    mapping = {member(reminder): math.ceil(at.timestamp()) for reminder, at in entries}
    if mapping:
        conn = pipeline if pipeline is not None else redis
        conn.zadd(due_key(keys), mapping)
    return len(mapping)


def schedule_statements(
    runtime: Runtime, subscriber: Subscriber, statement_ids: Iterable[str], pipeline: Pipeline | None = None
) -> None:
    """Reminders before each newly issued statement's deadline, and the deadline itself (as the statement is now:
    one paid meanwhile needs none)."""
    policy, now = policy_of(runtime, subscriber), runtime.clock()
    statements = [st for st in map(subscriber.statement, statement_ids) if st is not None]
    entries = [due for st in statements for due in reminders.for_statement(policy, subscriber.msisdn, st, now)]
    schedule(runtime.redis, runtime.keys, entries, pipeline=pipeline)


def schedule_renewals(runtime: Runtime, subscriber: Subscriber, pipeline: Pipeline | None = None) -> None:
    """Reminders before each active package's renewal, and the renewal itself."""
    policy, now = policy_of(runtime, subscriber), runtime.clock()
    entries = [due for sub in subscriber.active() for due in reminders.for_renewal(policy, subscriber.msisdn, sub, now)]
    schedule(runtime.redis, runtime.keys, entries, pipeline=pipeline)


def schedule_known(runtime: Runtime, msisdns: Iterable[str]) -> None:
    """Renewal reminders for subscribers just imported or seeded."""
    with runtime.redis.pipeline(transaction=False) as pipe:
        for msisdn in msisdns:
            subscriber = runtime.store.load_subscriber(msisdn)
            if subscriber is not None:
                schedule_renewals(runtime, subscriber, pipeline=pipe)
        pipe.execute()


# --- claiming -------------------------------------------------------------------------------


def claim(runtime: Runtime, now: int, batch: int, lease_until: int) -> list[str]:
    keys = [due_key(runtime.keys), claimed_key(runtime.keys)]
    found = runtime.redis.register_script(_CLAIM)(keys=keys, args=[now, lease_until, batch])
    return [m.decode() for m in found]


def redue_expired(runtime: Runtime, now: int, limit: int) -> int:
    keys = [due_key(runtime.keys), claimed_key(runtime.keys)]
    return int(runtime.redis.register_script(_REDUE)(keys=keys, args=[now, limit]))


def ack(runtime: Runtime, members: list[str], lease_until: int) -> int:
    if not members:
        return 0
    return int(runtime.redis.register_script(_ACK)(keys=[claimed_key(runtime.keys)], args=[lease_until, *members]))


# --- sending --------------------------------------------------------------------------------


def message_id(reminder: Reminder) -> str:
    """The same reminder always makes the same message, so a batch run twice sends it once."""
    return "rem" + hashlib.sha1(member(reminder).encode()).hexdigest()[:24]


def notify(runtime: Runtime, reminder: Reminder) -> str:
    """Send `reminder` if, as things are now, it still has something to say."""
    subscriber = runtime.store.load_subscriber(reminder.msisdn)
    now = runtime.clock()
    policy = policy_of(runtime, subscriber) if subscriber else None
    if policy is not None and in_quiet_hours(policy, now):
        # A backlog may carry a reminder into the night: shift it again rather than wake anyone.
        schedule(runtime.redis, runtime.keys, [(reminder, shift_out_of_quiet_hours(policy, now))])
        return DEFERRED
    text = reminders.text(subscriber, policy, reminder, now) if policy else None
    if text is None:
        log.info("reminder %s: nothing to send (paid, cancelled, opted out or moved on)", member(reminder))
        return SKIPPED
    message = OutboundMessage(
        message_id(reminder), reminder.msisdn, text, REMINDER, int(now.timestamp()), ref=member(reminder)
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


def still_wanted(runtime: Runtime, message: OutboundMessage) -> bool:
    """Right before a reminder goes out: does it still have something to say (not paid, cancelled, opted out)?"""
    if message.kind != REMINDER or not message.ref:
        return True
    reminder = parse(message.ref)
    subscriber = runtime.store.load_subscriber(reminder.msisdn)
    policy = policy_of(runtime, subscriber) if subscriber else None
    if policy is None or reminders.text(subscriber, policy, reminder, runtime.clock()) is None:
        log.info("reminder %s: skipped at send time (paid, cancelled, opted out or moved on)", message.ref)
        return False
    return True


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

