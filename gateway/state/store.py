"""Subscribers, dialogs, inbound ids and messages in Redis.

Writers take an optional pipeline, and the caller owns MULTI/EXEC; or a step's `Writes`, which the caller hands to
`write_if_unchanged`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from redis import Redis, WatchError
from redis.client import Pipeline

from dialogs.effects import CODE
from dialogs.model import DialogState, Subscriber
from gateway.state import audit, codec, escalations
from gateway.state.keys import Keys
from gateway.state.messages import QUEUED, SENDING, OutboundMessage

# How long an inbound id's answer is kept (docs/delivery.md): the link's own id for longer than any link retries a
# webhook; a hash of sender + text, for a link that gives no id, only for seconds: the same text later is a new message;
# a USSD session + text (its screen, which the session's next answer is read against) for longer than any session.
PROVIDER_ID = "provider"
CONTENT_ID = "content"
SESSION_ID = "session"
INBOUND_TTL = 7 * 86400
CONTENT_ID_TTL = 10
SESSION_ID_TTL = 900
# A verification code's message record outlives any delivery (minutes, or RQ's retries) but not by much: even
# masked, it need not stay, and a code whose delivery never ran must not sit in Redis in plain text.
CODE_MESSAGE_TTL = 3600

# Compare-and-set for a whole step in one round trip: run the queued write commands only if every key the step
# read still holds what it read (SHA1 of the value, '' when missing), else write nothing and answer 0.
# KEYS: the keys read, then the key of each command. ARGV: the count of keys read, their digests, then each
# command as its argument count followed by its arguments.
_WRITE_IF_UNCHANGED = """
local read = tonumber(ARGV[1])
for i = 1, read do
  local value = redis.call('GET', KEYS[i])
  if (value and redis.sha1hex(value) or '') ~= ARGV[i + 1] then
    return 0
  end
end
local i = read + 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
"""


class Writes:
    """One step's single-key write commands, recorded for `Store.write_if_unchanged`.

    It offers the part of a redis-py pipeline the store's writers call (set, hset, expire, rpush, ltrim, xadd; integer
    TTLs), without building one: the commit never runs these as a pipeline, it sends them as one script's arguments.
    An HSET or RPUSH with nothing to write raises here, before anything is sent: inside the script Redis would refuse
    it after the writes before it, which a script cannot undo.
    """

    def __init__(self) -> None:
        self.commands: list[list] = []

    def __len__(self) -> int:
        return len(self.commands)

    def set(self, name: str, value: str | bytes, ex: int | None = None, nx: bool = False) -> None:
        self.commands.append(["SET", name, value, *(["EX", ex] if ex is not None else []), *(["NX"] if nx else [])])

    def hset(self, name: str, key: str | None = None, value: object = None, mapping: dict | None = None) -> None:
        pairs: list = [key, value] if key is not None else []
        for field_, field_value in (mapping or {}).items():
            pairs += [field_, field_value]
        if not pairs:
            raise ValueError(f"HSET {name} with no field")
        self.commands.append(["HSET", name, *pairs])

    def expire(self, name: str, seconds: int) -> None:
        self.commands.append(["EXPIRE", name, seconds])

    def rpush(self, name: str, *values: object) -> None:
        if not values:
            raise ValueError(f"RPUSH {name} with no value")
        self.commands.append(["RPUSH", name, *values])

    def ltrim(self, name: str, start: int, end: int) -> None:
        self.commands.append(["LTRIM", name, start, end])

    def xadd(self, name: str, fields: dict, minid: str | None = None, approximate: bool = True) -> None:
        """XADD with an ID Redis picks ('*'), trimming entries older than `minid` (lazily when `approximate`)."""
        if not fields:
            raise ValueError(f"XADD {name} with no field")
        trim = ["MINID", *(["~"] if approximate else []), minid] if minid is not None else []
        self.commands.append(["XADD", name, *trim, "*", *(x for pair in fields.items() for x in pair)])


# Where a writer queues its commands: a pipeline its caller runs, or a step's recorded writes.
Batch = Pipeline | Writes


class Contention(RuntimeError):
    """Too many racing writers on one subscriber: the request may be retried; nothing was written."""

    def __init__(self, msisdn: str) -> None:
        super().__init__(f"too much contention on {msisdn}")
        self.msisdn = msisdn

# A step's first round trip: read the step's keys, the last of them its inbound record; unless that record holds an
# answer already, count this inbound id on each fixed-window counter (a window starts at its first hit). A counter is
# a hash of the ids counted in its window, each with its place (1, 2, ...): a copy of an id finds its place and is not
# counted again. Past `cap` ids are not remembered: every one of them is over the limit anyway.
# KEYS: the keys to read, then the counters. ARGV: how many keys to read, the inbound id, then each counter's window in
# seconds and cap. Answers {places, values}, with no places when the inbound was answered already.
_READ = """
local n, id = tonumber(ARGV[1]), ARGV[2]
local values = redis.call('MGET', unpack(KEYS, 1, n))
if values[n] then
  return {{}, values}
end
local places = {}
for i = n + 1, #KEYS do
  local window, cap = ARGV[2 * (i - n) + 1], tonumber(ARGV[2 * (i - n) + 2])
  local place = tonumber(redis.call('HGET', KEYS[i], id))
  if not place then
    place = redis.call('HLEN', KEYS[i]) + 1
    if place <= cap then
      redis.call('HSET', KEYS[i], id, place)
    end
    if place == 1 then
      redis.call('EXPIRE', KEYS[i], window)
    end
  end
  places[i - n] = place
end
return {places, values}
"""

# Move a message out of queued or sending, once. KEYS: a message. ARGV: the status it must have, the claim it must
# carry ('' for any), then the status, claim and claim time it takes, and the text and attempts it gets ('': as
# stored). Either way the pacing slot booked for it is used up: an attempt tried again books its own.
_CLAIM = """
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[1] then
  return 0
end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'claim') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'claim', ARGV[4], 'claimed_at', ARGV[5], 'slot', '0')
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'text', ARGV[6])
end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'attempts', ARGV[7])
end
return 1
"""

# Store a message unless one is stored under its id. KEYS: the message. ARGV: its fields and values.
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


def digest(value: bytes | None) -> str:
    """What `write_if_unchanged` compares: the SHA1 of a string value, '' for a missing key."""
    return hashlib.sha1(value).hexdigest() if value is not None else ""


class Store:
    def __init__(self, redis: Redis, keys: Keys, audit_days: int = audit.DEFAULT_DAYS,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.redis = redis
        self.keys = keys
        self.audit_days = audit_days
        self.clock = clock
        self._read = redis.register_script(_READ)
        self._write_if_unchanged = redis.register_script(_WRITE_IF_UNCHANGED)
        self._claim = redis.register_script(_CLAIM)
        self._add = redis.register_script(_ADD)
        self._local = threading.local()

    def _own_connection(self) -> Redis:
        """A client holding one connection for this thread (and process): a step's two calls skip the pool's
        checkout, which polls the socket on every command. About a fifth of a call's cost (bench/webhook.py)."""
        pid, client = getattr(self._local, "client", (None, None))
        if pid != os.getpid():  # a forked child must never share its parent's socket
            client = Redis(connection_pool=self.redis.connection_pool, single_connection_client=True)
            self._local.client = (os.getpid(), client)
        return client

    def read(
        self, keys: Sequence[str], inbound_id: str = "", counters: Sequence[tuple[str, int, int]] = ()
    ) -> tuple[list[int], list[bytes | None]]:
        """The values of `keys`, whose last is `inbound_id`'s record, and the place of `inbound_id` on each (key,
        window seconds, cap) counter, counted unless the record holds an answer (then no places): one call for all.

        The counters must share the keys' Cluster slot (a script may touch only one)."""
        client = self._own_connection()
        if not counters:
            return [], client.mget(keys)
        argv: list = [len(keys), inbound_id]
        for _, seconds, cap in counters:
            argv += [seconds, cap]
        places, values = self._read(keys=[*keys, *(key for key, _, _ in counters)], args=argv, client=client)
        return places, values

    def write_if_unchanged(self, read: dict[str, bytes | None], writes: Writes) -> bool:
        """Run `writes` atomically, only if the keys in `read` still hold those values.

        Optimistic locking without WATCH/MULTI: one round trip instead of three. Each command names its one key
        first, so the script declares every key it touches, as Cluster requires.
        """
        keys = [*read, *(args[1] for args in writes.commands)]
        argv: list = [len(read), *map(digest, read.values())]
        for args in writes.commands:
            argv += [len(args), *args]
        return self._write_if_unchanged(keys=keys, args=argv, client=self._own_connection()) == 1

    def load_subscriber(self, msisdn: str) -> Subscriber | None:
        raw = self.redis.get(self.keys.subscriber(msisdn))
        return codec.subscriber_from_json(raw) if raw else None

    def save_subscriber(self, subscriber: Subscriber, pipeline: Batch | None = None) -> None:
        conn = pipeline if pipeline is not None else self.redis
        conn.set(self.keys.subscriber(subscriber.msisdn), codec.subscriber_to_json(subscriber))

    def update_subscriber(
        self, msisdn: str, change: Callable[[Subscriber | None], Subscriber | None], tries: int = 50,
        audited: Callable[[Subscriber | None, Subscriber], dict | list[dict] | None] | None = None,
        alongside: Callable[[Subscriber | None, Subscriber, Pipeline], None] | None = None,
    ) -> Subscriber | None:
        """Read-modify-write one subscriber under WATCH, so concurrent steps never lose an update. A change is
        recorded in the audit trail, in the same transaction, as `audited(before, after)` tells: an entry, a list of
        them, or None (not at all); `alongside(before, after, pipe)` adds the caller's own writes in the subscriber's
        slot to that transaction (an escalation opened, a notice stored), so a process dying after it loses none."""
        key = self.keys.subscriber(msisdn)
        for _ in range(tries):
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    before = codec.subscriber_from_json(raw) if raw else None
                    after = change(before)
                    pipe.multi()
                    if after is not None and after != before:
                        self.save_subscriber(after, pipeline=pipe)
                        entries = audited(before, after) if audited else None
                        for entry in entries if isinstance(entries, list) else [entries]:
                            if entry:
                                self.audit(msisdn, entry, self.clock(), pipeline=pipe)
                        if alongside is not None:
                            alongside(before, after, pipe)
                    pipe.execute()
                    return after
                except WatchError:
                    continue
        raise Contention(msisdn)

    def load_dialog(self, msisdn: str) -> DialogState:
        return codec.dialog_from_json(self.redis.get(self.keys.dialog(msisdn)))

    def save_dialog(self, msisdn: str, state: DialogState, pipeline: Batch | None = None) -> None:
        conn = pipeline if pipeline is not None else self.redis
        conn.set(self.keys.dialog(msisdn), codec.dialog_to_json(state))

    def record_inbound(
        self, msisdn: str, inbound_id: str, reply: str, pipeline: Batch | None = None, kind: str = PROVIDER_ID,
        longest: int = INBOUND_TTL,
    ) -> None:
        """Keep `reply` as the answer to `inbound_id` as long as its kind of id lives, and never beyond `longest`."""
        conn = pipeline if pipeline is not None else self.redis
        ttl = min({CONTENT_ID: CONTENT_ID_TTL, SESSION_ID: SESSION_ID_TTL}.get(kind, INBOUND_TTL), longest)
        conn.set(self.keys.inbound(msisdn, inbound_id), reply, ex=ttl)

    def recorded(self, msisdn: str, inbound_ids: Sequence[str]) -> list[str | None]:
        """The answers recorded for these inbound messages (None for each not kept), in one round trip."""
        raws = self.redis.mget([self.keys.inbound(msisdn, i) for i in inbound_ids])
        return [raw.decode() if raw is not None else None for raw in raws]

    def save_message(self, message: OutboundMessage, pipeline: Batch | None = None) -> None:
        conn = pipeline if pipeline is not None else self.redis
        key = self.keys.message(message.msisdn, message.id)
        conn.hset(key, mapping=message.to_hash())
        if message.kind == CODE:
            conn.expire(key, CODE_MESSAGE_TTL)

    def add_message(self, message: OutboundMessage) -> bool:
        """Store `message` unless a message is stored under its id: True when this call stored it. For a message
        whose id is made from what it follows up, so that doing the follow-up again stores nothing twice."""
        fields = [x for pair in message.to_hash().items() for x in pair]
        return self._add(keys=[self.keys.message(message.msisdn, message.id)], args=fields) == 1

    def claim_message(self, msisdn: str, message_id: str, at: int = 0, text: str = "") -> bool:
        """Move a message from queued to sending at `at` (epoch seconds), once: only the caller that gets True may
        send it, with `text` when given (stored with the claim: a reminder is worded as it leaves). The claim gets a
        token of its own, which `release_message` checks."""
        args = [QUEUED, "", SENDING, uuid.uuid4().hex, at, text, ""]
        return self._claim(keys=[self.keys.message(msisdn, message_id)], args=args) == 1

    def release_message(self, message: OutboundMessage, attempts: int, status: str = QUEUED) -> bool:
        """Move a message claimed for sending back to queued (or on to `status`), with `attempts` counted, only if it
        still carries `message`'s claim: of two runs that both found it never went out, one releases it (and sends
        it), the other gets False."""
        args = [SENDING, message.claim, status, "", 0, "", attempts]
        return self._claim(keys=[self.keys.message(message.msisdn, message.id)], args=args) == 1

    def load_message(self, msisdn: str, message_id: str) -> OutboundMessage | None:
        data = self.redis.hgetall(self.keys.message(msisdn, message_id))
        return OutboundMessage.from_hash(data) if data else None

    def audit(self, msisdn: str, entry: dict, now: datetime, pipeline: Batch | None = None) -> None:
        """Append `entry` to the subscriber's audit trail (gateway/state/audit.py)."""
        audit.record(pipeline if pipeline is not None else self.redis, self.keys, msisdn, entry, now, self.audit_days)

    def conversation(self, msisdn: str) -> list[dict]:
        """The subscriber's steps and reminders, oldest first: what the previous release logged, then the audit's."""
        legacy = [json.loads(raw) for raw in self.redis.lrange(self.keys.log(msisdn), 0, -1)]
        return legacy + [e for e in audit.read_all(self.redis, self.keys.audit(msisdn)) if "id" in e]

    def escalate(self, msisdn: str, reason: str, at: datetime, pipeline: Pipeline | None = None,
                 context: dict | None = None) -> None:
        """Open an escalation for a person, unless one is open for this number and reason (gateway/state/
        escalations.py); recorded in the subscriber's audit trail either way."""
        conn = pipeline if pipeline is not None else self.redis.pipeline(transaction=False)
        self.open_escalation(msisdn, reason, at, conn, context)
        escalations.index(conn, self.keys, msisdn, reason, at)
        if pipeline is None:
            conn.execute()

    def open_escalation(self, msisdn: str, reason: str, at: datetime, pipeline: Batch,
                        context: dict | None = None) -> None:
        """Open and audit an escalation in the caller's commit, unless one is open for this number and reason; the
        caller lists it after the commit (`list_escalation`)."""
        escalations.open_in(pipeline, self.keys, escalations.new(msisdn, reason, at, context))
        self.audit(msisdn, {"kind": audit.ESCALATED, "reason": reason, **({"context": context} if context else {})},
                   at, pipeline=pipeline)

    def list_escalation(self, msisdn: str, reason: str) -> None:
        """List the open escalation for this number and reason, if there is one, as of when it opened: after the
        commit that opened it, or again after one cut short before listing it. Listed already: nothing changes."""
        raw = self.redis.get(self.keys.escalation(msisdn, reason))
        if raw:
            opened = escalations.Escalation.from_json(raw).opened_at
            escalations.index(self.redis, self.keys, msisdn, reason, datetime.fromtimestamp(opened, UTC))

    def index_escalation(self, msisdn: str, reason: str, at: datetime, pipeline: Pipeline | None = None) -> None:
        """List an escalation a step opened (and audited) in its own commit."""
        escalations.index(pipeline if pipeline is not None else self.redis, self.keys, msisdn, reason, at)

    def escalations(self) -> list[tuple[str, str]]:
        """(number, reason) of every open escalation, oldest first."""
        return [(msisdn, reason) for msisdn, reason, _ in escalations.open_ones(self.redis, self.keys)]
