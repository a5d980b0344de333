"""Escalations: what a person must look at, one at a time per subscriber and reason.

- `tdbot:{msisdn}:escalation:<reason>`: the open one (JSON: context, opened_at, status open → taken, agent). Written
  with SET NX, so a reason opens one escalation at a time per number, as the previous release's ZADD NX did; a step
  that escalates writes it in its own commit.
- `…:escalation:<reason>:log`: what happened in it: the subscriber's messages while a person has the conversation
  (人工), the agent's replies.
- `tdbot:escalations`: the open ones, `msisdn|reason` scored by when they opened: the console's list, oldest first.
  It is the sorted set the previous release wrote, so what it escalated still shows (without a record: "legacy").
- `tdbot:escalations:reasons{tdbot:escalations}`: how many of them are open for each reason, in the index's Cluster
  slot, changed by the script that changes the index; what /metrics and the dashboard read (`open_counts`).
- Resolving moves record and log to `…:escalation:<reason>:<opened ms>` (kept as long as the audit trail), indexes
  them in `tdbot:escalations:resolved`, and, for 人工, hands the number back to the bot, in one transaction on the
  subscriber's slot, so a message arriving meanwhile is either in the log or answered by the bot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from redis import Redis, WatchError
from redis.client import Pipeline

from dialogs.reasons import REQUESTED
from gateway.state import audit, codec
from gateway.state.keys import ESCALATIONS, REASONS, RESOLVED, Keys

if TYPE_CHECKING:
    from gateway.state.store import Batch

OPEN, TAKEN, RESOLVED_STATUS = "open", "taken", "resolved"
LOG = "log"
LOG_LENGTH = 500
LIST_LIMIT = 500
SCAN_COUNT = 1000  # index members Redis looks at per round trip when finding one subscriber's
TRIES = 20


class Refused(Exception):
    """An operator action that cannot be done as asked (taken by someone else, already resolved)."""


@dataclass(frozen=True)
class Escalation:
    msisdn: str
    reason: str
    opened_at: int  # epoch seconds
    status: str = OPEN
    context: dict = field(default_factory=dict)
    agent: str = ""
    taken_at: int = 0
    resolved_at: int = 0
    resolved_by: str = ""
    note: str = ""
    log: tuple[dict, ...] = ()
    legacy: bool = False  # listed by the previous release, with nothing more known

    @property
    def stamp(self) -> str:
        """Where a resolved one is kept: its opening time in ms (a reason may open again once resolved)."""
        return str(self.opened_at * 1000)

    def to_json(self) -> str:
        return codec.dumps({k: v for k, v in asdict(self).items() if k not in ("log", "legacy")})

    @classmethod
    def from_json(cls, raw: bytes | str, log: tuple[dict, ...] = ()) -> Escalation:
        return cls(**json.loads(raw), log=log)


def new(msisdn: str, reason: str, at: datetime, context: dict | None = None) -> Escalation:
    return Escalation(msisdn, reason, int(at.timestamp()), context=context or {})


def index_key(keys: Keys) -> str:
    return keys.shared(ESCALATIONS)


def counts_key(keys: Keys) -> str:
    return keys.beside(index_key(keys), REASONS)


def resolved_key(keys: Keys) -> str:
    return keys.shared(ESCALATIONS, RESOLVED)


def member(msisdn: str, reason: str) -> str:
    return f"{msisdn}|{reason}"


def open_in(conn: Batch, keys: Keys, escalation: Escalation) -> None:
    """Write `escalation` unless one is open for its subscriber and reason (in the caller's commit)."""
    conn.set(keys.escalation(escalation.msisdn, escalation.reason), escalation.to_json(), nx=True)


# KEYS: the index, the counts. ARGV: the member, its reason, when it opened. Counted only when listed anew.
_INDEX = """
if redis.call('ZADD', KEYS[1], 'NX', ARGV[3], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[2], ARGV[2], 1) end
"""
# KEYS: the index, the counts. ARGV: the member, its reason. Counted only when it was listed.
_UNINDEX = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[2], ARGV[2], -1) end
"""
# KEYS: the index, the counts. The counts, counted again from the index's members when they do not add up to it:
# members the previous release listed were never counted.
_COUNTS = """
local counts = redis.call('HGETALL', KEYS[2])
local sum = 0
for i = 2, #counts, 2 do sum = sum + tonumber(counts[i]) end
local listed = redis.call('ZCARD', KEYS[1])
if sum == listed then return counts end
local tally = {}
for start = 0, listed - 1, 10000 do
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], start, start + 9999)) do
    local reason = string.match(m, '^[^|]*|(.*)$') or ''
    tally[reason] = (tally[reason] or 0) + 1
  end
end
redis.call('DEL', KEYS[2])
for reason, n in pairs(tally) do redis.call('HSET', KEYS[2], reason, n) end
return redis.call('HGETALL', KEYS[2])
"""


def index(conn: Pipeline | Redis, keys: Keys, msisdn: str, reason: str, at: datetime) -> None:
    """List it for the console, and count it (outside the subscriber's slot: after the commit that opened it)."""
    conn.register_script(_INDEX)(keys=[index_key(keys), counts_key(keys)],
                                 args=[member(msisdn, reason), reason, at.timestamp()])


def unindex(conn: Pipeline | Redis, keys: Keys, msisdn: str, reason: str) -> None:
    """No longer list or count it (after the transaction that resolved it)."""
    conn.register_script(_UNINDEX)(keys=[index_key(keys), counts_key(keys)], args=[member(msisdn, reason), reason])


def open_counts(redis: Redis, keys: Keys) -> dict[str, int]:
    """How many are open, by reason (reasons with none left out): counts, whatever the number open."""
    flat = redis.register_script(_COUNTS)(keys=[index_key(keys), counts_key(keys)])
    counts = {reason.decode(): int(n) for reason, n in zip(flat[::2], flat[1::2], strict=True)}
    return {reason: n for reason, n in counts.items() if n}


def add_to_log(conn: Batch, keys: Keys, msisdn: str, reason: str, entry: dict) -> None:
    key = keys.escalation(msisdn, reason, LOG)
    conn.rpush(key, codec.dumps(entry))
    conn.ltrim(key, -LOG_LENGTH, -1)


def open_ones(redis: Redis, keys: Keys, limit: int = LIST_LIMIT) -> list[tuple[str, str, float]]:
    """(msisdn, reason, opened at) of open escalations, oldest first."""
    members = redis.zrange(index_key(keys), 0, limit - 1, withscores=True)
    return [(*m.decode().split("|", 1), score) for m, score in members]  # type: ignore[misc]


def listing(redis: Redis, keys: Keys, limit: int = LIST_LIMIT) -> list[Escalation]:
    """The open escalations with their records, oldest first."""
    return _with_records(redis, keys, open_ones(redis, keys, limit))


def for_subscriber(redis: Redis, keys: Keys, msisdn: str) -> list[Escalation]:
    """The subscriber's open escalations, oldest first: the index's members for `msisdn`, matched by Redis (a
    subscriber has a handful at most; only theirs and their records are read, however many others are open)."""
    # A number is E.164 (+ and digits): nothing in it means anything to MATCH.
    members = redis.zscan_iter(index_key(keys), match=f"{msisdn}|*", count=SCAN_COUNT)
    found = sorted(((msisdn, m.decode().split("|", 1)[1], score) for m, score in members), key=lambda f: f[2])
    return _with_records(redis, keys, found)


def _with_records(redis: Redis, keys: Keys, found: list[tuple[str, str, float]]) -> list[Escalation]:
    """(msisdn, reason, opened at) of open escalations, each with its record (without one: the previous release's)."""
    with redis.pipeline(transaction=False) as pipe:
        for msisdn, reason, _ in found:
            pipe.get(keys.escalation(msisdn, reason))
        records = pipe.execute()
    return [
        Escalation.from_json(raw) if raw else Escalation(msisdn, reason, int(score), legacy=True)
        for (msisdn, reason, score), raw in zip(found, records, strict=True)
    ]


def resolved(redis: Redis, keys: Keys, limit: int = 100) -> list[Escalation]:
    """The latest resolved escalations, newest first."""
    members = [m.decode().split("|", 2) for m in redis.zrevrange(resolved_key(keys), 0, limit - 1)]
    with redis.pipeline(transaction=False) as pipe:
        for msisdn, reason, stamp in members:
            pipe.get(keys.escalation(msisdn, reason, stamp))
        records = pipe.execute()
    return [Escalation.from_json(raw) for raw in records if raw]


def load(redis: Redis | Pipeline, keys: Keys, msisdn: str, reason: str, stamp: str = "") -> Escalation | None:
    """The open escalation for `msisdn` and `reason` (or the resolved one of `stamp`), with its log."""
    where = (stamp,) if stamp else ()
    raw = redis.get(keys.escalation(msisdn, reason, *where))
    log = tuple(json.loads(e) for e in redis.lrange(keys.escalation(msisdn, reason, *where, LOG), 0, -1))
    if raw:
        return Escalation.from_json(raw, log)
    score = None if stamp else redis.zscore(index_key(keys), member(msisdn, reason))
    return Escalation(msisdn, reason, int(score), log=log, legacy=True) if score is not None else None


def take(redis: Redis, keys: Keys, msisdn: str, reason: str, agent: str, now: datetime, days: int,
         force: bool = False) -> Escalation:
    """`agent` takes the escalation; one someone else took only with `force` (an admin taking it over)."""

    def change(pipe: Pipeline, current: Escalation, _: bytes | None) -> Escalation:
        if current.status == TAKEN and current.agent != agent and not force:
            raise Refused(f"taken by {current.agent}")
        taken = replace(current, status=TAKEN, agent=agent, taken_at=int(now.timestamp()), legacy=False)
        pipe.set(keys.escalation(msisdn, reason), taken.to_json())
        action = {"kind": audit.OPERATOR, "operator": agent, "action": "take", "reason": reason}
        audit.record(pipe, keys, msisdn, action, now, days)
        return taken

    return transact(redis, keys, msisdn, reason, change)


def resolve(redis: Redis, keys: Keys, msisdn: str, reason: str, agent: str, note: str, now: datetime,
            days: int) -> Escalation:
    """Close it with `note`; a 人工 one hands the number back to the bot in the same transaction."""

    def change(pipe: Pipeline, current: Escalation, dialog: bytes | None) -> Escalation:
        done = replace(current, status=RESOLVED_STATUS, agent=current.agent or agent, resolved_by=agent, note=note,
                       resolved_at=int(now.timestamp()), legacy=False)
        _archive(pipe, keys, done, days)
        if reason == REQUESTED:
            _hand_back(pipe, keys, msisdn, dialog)
        action = {"kind": audit.OPERATOR, "operator": agent, "action": "resolve", "reason": reason, "note": note}
        audit.record(pipe, keys, msisdn, action, now, days)
        return done

    done = transact(redis, keys, msisdn, reason, change, watch_dialog=reason == REQUESTED)
    with redis.pipeline(transaction=False) as pipe:
        unindex(pipe, keys, msisdn, reason)
        pipe.zadd(resolved_key(keys), {f"{msisdn}|{reason}|{done.stamp}": done.resolved_at})
        pipe.zremrangebyscore(resolved_key(keys), "-inf", done.resolved_at - days * 86400)
        pipe.execute()
    return done


def _archive(pipe: Pipeline, keys: Keys, done: Escalation, days: int) -> None:
    msisdn, reason = done.msisdn, done.reason
    archive = keys.escalation(msisdn, reason, done.stamp)
    pipe.set(archive, done.to_json(), ex=days * 86400)
    pipe.delete(keys.escalation(msisdn, reason))
    if done.log:
        pipe.rename(keys.escalation(msisdn, reason, LOG), keys.escalation(msisdn, reason, done.stamp, LOG))
        pipe.expire(keys.escalation(msisdn, reason, done.stamp, LOG), days * 86400)


def _hand_back(pipe: Pipeline, keys: Keys, msisdn: str, raw: bytes | None) -> None:
    """The bot answers this number again (`raw`, the dialog, was read under WATCH by `transact`)."""
    dialog = codec.dialog_from_json(raw)
    if dialog.human or dialog.human_noticed:
        pipe.set(keys.dialog(msisdn), codec.dialog_to_json(replace(dialog, human=False, human_noticed=False)))


Change = Callable[[Pipeline, Escalation, bytes | None], Escalation]


def transact(redis: Redis, keys: Keys, msisdn: str, reason: str, change: Change,
             watch_dialog: bool = False) -> Escalation:
    """Read the open escalation (and the dialog) under WATCH and commit what `change(pipe, current, dialog)` queues;
    retried when something else wrote them meanwhile. Refused when it is not open, or when `change` refuses."""
    watched = [keys.escalation(msisdn, reason), keys.escalation(msisdn, reason, LOG)]
    watched += [keys.dialog(msisdn)] if watch_dialog else []
    for _ in range(TRIES):
        with redis.pipeline() as pipe:
            try:
                pipe.watch(*watched)
                current = load(pipe, keys, msisdn, reason)
                if current is None:
                    raise Refused("no longer open")
                dialog = pipe.get(keys.dialog(msisdn)) if watch_dialog else None
                pipe.multi()
                result = change(pipe, current, dialog)
                pipe.execute()
                return result
            except WatchError:
                continue
    raise Refused("too many changes at once; try again")
