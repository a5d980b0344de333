"""The due index: every pending reminder is one compact member of one Redis sorted set, scored by when it is due.

A member is `kind|msisdn|ref|period|index` (about 50 bytes, about 120 B in Redis), so a million future reminders
cost tens of MB and no RQ job exists until one falls due. The sweeper (gateway/jobs/sweeper.py) moves due members to
a "claimed" set with a lease and hands them to a batch job; a batch job acknowledges what it finished, and what a
killed worker leaves claimed falls due again when its lease ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from redis import Redis
from redis.client import Pipeline

from dialogs import reminders
from dialogs.model import Subscriber
from dialogs.reminders import Due, Reminder
from gateway.state.keys import DUE, Keys

if TYPE_CHECKING:
    from gateway.runtime import Runtime

CLAIMED = "claimed"

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
    policy, now = runtime.policy(subscriber), runtime.clock()
    statements = [st for st in map(subscriber.statement, statement_ids) if st is not None]
    entries = [due for st in statements for due in reminders.for_statement(policy, subscriber.msisdn, st, now)]
    schedule(runtime.redis, runtime.keys, entries, pipeline=pipeline)


def schedule_renewals(runtime: Runtime, subscriber: Subscriber, pipeline: Pipeline | None = None) -> None:
    """Reminders before each active package's renewal, and the renewal itself."""
    policy, now = runtime.policy(subscriber), runtime.clock()
    entries = [due for sub in subscriber.active() for due in reminders.for_renewal(policy, subscriber.msisdn, sub, now)]
    schedule(runtime.redis, runtime.keys, entries, pipeline=pipeline)


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
