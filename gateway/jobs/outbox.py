"""Transactional outbox: a step's after-commit work (queue messages, charges, reminders, escalations) is written in
the step's own commit, then done in one pipeline after it and cleared once that succeeded. Nothing a committed step
asked for is lost when that fails: the entry stays and is indexed, a retried inbound id resumes it, and `recover`
(rq cron) resumes whatever is left stale. A process killed between the commit and that pipeline leaves its entry
unindexed: a retry of its inbound id resumes it, and `discover` finds it on its slow walk over the keyspace.

Doing an entry twice is harmless: jobs have fixed ids or check state, escalations and reminders are set members.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from redis.client import Pipeline

from dialogs.effects import Pay
from dialogs.reasons import OUTBOX_STUCK, OUTBOX_UNREADABLE
from gateway.delivery import outbound
from gateway.jobs import charges
from gateway.runtime import Runtime, current
from gateway.state import due, indexed
from gateway.state.keys import PENDING
from gateway.state.store import Batch

log = logging.getLogger(__name__)

RESUME_AFTER = 10  # seconds: a retry sooner than this leaves the work to the request still doing it
RECOVER_AFTER = 60  # seconds: the cron resumes entries older than this
RECOVER_BATCH = 100
RECOVER_FOR = 45  # seconds one cron run keeps resuming batches (a backlog after an outage is cleared in minutes)
DISCOVER_COUNT = 10_000  # keys one SCAN call looks at (its COUNT hint: a few ms of Redis each)
DISCOVER_CALLS = 20  # SCAN calls a cron run makes: a pass over 10M keys takes under an hour of runs
UNREADABLE = "unreadable"  # entries recover could not read, set aside by subscriber|inbound id
STUCK_AFTER = 30  # failed cron tries (about one a minute) before a person is told; the cron keeps trying
E164 = re.compile(r"\+[1-9][0-9]{6,14}")

# KEYS: the subscriber's outbox. ARGV: inbound id, the entry. Only an entry still there is rewritten: one a retry
# has finished since stays finished.
_REWRITE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""


@dataclass(frozen=True)
class Pending:
    at: float
    messages: list[str] = field(default_factory=list)  # ids of stored messages to queue
    escalations: list[str] = field(default_factory=list)
    payments: list[list] = field(default_factory=list)  # [statement_id, amount_fen, reference]
    statements: list[str] = field(default_factory=list)  # ids of statements issued: their reminders
    ordered: bool = False
    tries: int = 0  # cron tries that failed

    @property
    def empty(self) -> bool:
        return not (self.messages or self.escalations or self.payments or self.statements or self.ordered)

    def to_json(self) -> str:
        # No `tries` until one failed: a release without the field (mid-deploy) still reads every fresh entry.
        fields = vars(self) if self.tries else {k: v for k, v in vars(self).items() if k != "tries"}
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Pending:
        """The entry `raw` holds; ValueError for one this release cannot do (malformed, or of another shape)."""
        try:
            pending = cls(**json.loads(raw))
        except TypeError as exc:
            raise ValueError(f"not an outbox entry: {exc}") from exc
        if not pending.well_formed:
            raise ValueError("not an outbox entry: a field of the wrong type")
        return pending

    @property
    def well_formed(self) -> bool:
        lists = (self.messages, self.escalations, self.statements)
        return (
            isinstance(self.at, (int, float)) and isinstance(self.ordered, bool) and type(self.tries) is int
            and all(isinstance(x, list) and all(isinstance(i, str) for i in x) for x in lists)
            and isinstance(self.payments, list)
            and all(isinstance(p, list) and len(p) == 3 and isinstance(p[1], int) for p in self.payments)
        )


def key(runtime: Runtime, msisdn: str) -> str:
    return runtime.keys.of(msisdn, PENDING)


def index_key(runtime: Runtime) -> str:
    return runtime.keys.shared(PENDING)


def record(runtime: Runtime, msisdn: str, inbound_id: str, pending: Pending, pipeline: Batch) -> None:
    """Queue the entry's write on the step's commit (same hash-tagged slot as the subscriber)."""
    pipeline.hset(key(runtime, msisdn), inbound_id, pending.to_json())


def run(runtime: Runtime, msisdn: str, inbound_id: str, pending: Pending) -> None:
    """Do `pending` in one pipeline, then clear it; if the work fails, it stays, indexed for the cron."""
    now = runtime.clock()
    try:
        _work(runtime, msisdn, pending, now)
    except Exception:
        runtime.redis.zadd(index_key(runtime), {msisdn: now.timestamp()})
        raise
    # Only once every command succeeded: a pipeline runs all its commands even when one fails (a full Redis refuses
    # writes but not deletes), so clearing in the same pipeline could lose the work.
    runtime.redis.hdel(key(runtime, msisdn), inbound_id)


def _work(runtime: Runtime, msisdn: str, pending: Pending, now: datetime) -> None:
    # Reminders need the subscriber as committed; only steps that issue statements or order a plan have any.
    subscriber = runtime.store.load_subscriber(msisdn) if pending.statements or pending.ordered else None
    with runtime.redis.pipeline(transaction=False) as pipe:
        for reason in pending.escalations:  # opened and audited in the step's commit; listed now
            runtime.store.index_escalation(msisdn, reason, now, pipeline=pipe)
        with _queue_pipeline(runtime, pipe) as jobs:
            outbound.enqueue_ids(runtime, msisdn, pending.messages, pipeline=jobs)
            charges.enqueue(runtime, msisdn, [Pay(s, int(a), r) for s, a, r in pending.payments], pipeline=jobs)
        if subscriber is not None:
            due.schedule_statements(runtime, subscriber, pending.statements, pipeline=pipe)
            if pending.ordered:  # a new package: its renewal needs reminders
                due.schedule_renewals(runtime, subscriber, pipeline=pipe)
        pipe.execute()


@contextmanager
def _queue_pipeline(runtime: Runtime, pipe: Pipeline) -> Iterator[Pipeline]:
    """`pipe` itself when RQ shares the store's Redis; else a pipeline of the queue's Redis, run first."""
    if runtime.queue_redis is runtime.redis:
        yield pipe
        return
    with runtime.queue_redis.pipeline() as jobs:
        yield jobs
        jobs.execute()


def resume(runtime: Runtime, msisdn: str, inbound_id: str) -> bool:
    """A retried inbound id: finish its work if the first try left it (and is not still at it)."""
    raw = runtime.redis.hget(key(runtime, msisdn), inbound_id)
    if raw is None:
        return False
    pending = Pending.from_json(raw)
    if pending.at > runtime.clock().timestamp() - RESUME_AFTER:
        # The first try may be at it, or may have died before it could: the cron looks once the entry is stale.
        runtime.redis.zadd(index_key(runtime), {msisdn: pending.at}, nx=True)
        return False
    log.warning("resuming after-commit work of %s for %s", inbound_id, msisdn)
    run(runtime, msisdn, inbound_id, pending)
    return True


def recover(runtime: Runtime, older_than: float = RECOVER_AFTER, batch: int = RECOVER_BATCH) -> int:
    """Resume entries older than `older_than` seconds for up to `batch` subscribers; return how many were done.

    One entry failing never holds up the others: it is logged and retried on a later run (its subscriber goes to
    the back of the index), and one that cannot even be read is set aside for a person.
    """
    return _recover_batch(runtime, older_than, batch)[0]


def _recover_batch(runtime: Runtime, older_than: float, batch: int) -> tuple[int, int]:
    """(entries done, subscribers looked at) for one batch."""
    cutoff = runtime.clock().timestamp() - older_than
    due = runtime.redis.zrangebyscore(index_key(runtime), "-inf", cutoff, 0, batch, withscores=True)
    done = 0
    for raw, seen in due:
        msisdn = raw.decode()
        for inbound_id, entry in runtime.redis.hgetall(key(runtime, msisdn)).items():
            done += _recover_one(runtime, msisdn, inbound_id.decode(), entry, cutoff)
        if runtime.redis.hlen(key(runtime, msisdn)):
            runtime.redis.zadd(index_key(runtime), {msisdn: runtime.clock().timestamp()}, xx=True)
        else:
            indexed.forget(runtime.redis, index_key(runtime), msisdn, seen)  # a step that indexed it again keeps it
    return done, len(due)


def _recover_one(runtime: Runtime, msisdn: str, inbound_id: str, entry: bytes, cutoff: float) -> int:
    """1 if the entry's work was done now, else 0; never raises (the batch goes on)."""
    try:
        pending = Pending.from_json(entry)
    except ValueError:
        log.exception("unreadable after-commit entry %s for %s; set aside for a person", inbound_id, msisdn)
        _set_aside(runtime, msisdn, inbound_id, entry)
        return 0
    if pending.at > cutoff:
        return 0
    log.warning("recovering after-commit work of %s for %s", inbound_id, msisdn)
    try:
        run(runtime, msisdn, inbound_id, pending)
    except Exception:
        log.exception("after-commit work of %s for %s failed again; a later run retries it", inbound_id, msisdn)
        _count_failure(runtime, msisdn, inbound_id, pending)
        return 0
    return 1


def _count_failure(runtime: Runtime, msisdn: str, inbound_id: str, pending: Pending) -> None:
    """Note one more failed try on the entry, and tell a person once it has failed `STUCK_AFTER` times."""
    tries = pending.tries + 1
    try:
        runtime.redis.register_script(_REWRITE)(
            keys=[key(runtime, msisdn)], args=[inbound_id, replace(pending, tries=tries).to_json()]
        )
        if tries == STUCK_AFTER:
            log.error("after-commit work of %s for %s failed %d times; escalated", inbound_id, msisdn, tries)
            context = {"inbound": inbound_id, "tries": tries}
            runtime.store.escalate(msisdn, OUTBOX_STUCK, runtime.clock(), context=context)
    except Exception:
        log.exception("could not count a failed try of %s for %s", inbound_id, msisdn)


def _set_aside(runtime: Runtime, msisdn: str, inbound_id: str, entry: bytes) -> None:
    """Keep an entry for a person and out of the cron's way; left where it is (and retried) if that fails."""
    try:
        with runtime.redis.pipeline(transaction=False) as pipe:
            pipe.hset(runtime.keys.shared(PENDING, UNREADABLE), f"{msisdn}|{inbound_id}", entry)
            runtime.store.escalate(msisdn, OUTBOX_UNREADABLE, runtime.clock(), pipeline=pipe,
                                   context={"inbound": inbound_id})
            pipe.execute()
        runtime.redis.hdel(key(runtime, msisdn), inbound_id)
    except Exception:
        log.exception("could not set aside after-commit entry %s for %s", inbound_id, msisdn)


def discover(runtime: Runtime, count: int = DISCOVER_COUNT, calls: int = DISCOVER_CALLS) -> int:
    """Index entries nobody indexed, walking the keyspace `count` keys a call, `calls` calls, from where the last
    walk stopped; return how many subscribers it indexed. Indexed with score 0: `recover` takes them once stale."""
    cursor_key = runtime.keys.shared(PENDING, "cursor")
    cursor, found = int(runtime.redis.get(cursor_key) or 0), 0
    for _ in range(calls):
        cursor, keys = runtime.redis.scan(cursor, match=key(runtime, "*"), count=count)
        msisdns = {m: 0 for m in map(_msisdn_of, keys) if m}
        with runtime.redis.pipeline(transaction=False) as pipe:
            if msisdns:
                pipe.zadd(index_key(runtime), msisdns, nx=True)
            pipe.set(cursor_key, cursor)
            pipe.execute()
        found += len(msisdns)
        if cursor == 0:  # a whole pass done: the next run starts the next one
            break
    return found


def _msisdn_of(outbox_key: bytes) -> str | None:
    """The number in an outbox key's hash tag; None for a key that only looks like one."""
    tag = outbox_key.decode(errors="replace").partition("{")[2].partition("}")[0]
    return tag if E164.fullmatch(tag) else None


def recover_job() -> int:
    """What rq cron runs: find unindexed entries, do the follow-ups of failed messages a process left undone
    (docs/delivery.md), then resume stale entries, batch after batch for up to a minute."""
    runtime = current()
    try:
        discover(runtime)
    except Exception:  # the walk must never stand in the way of the entries already indexed
        log.exception("looking for unindexed after-commit entries failed")
    try:
        outbound.follow_up_left(runtime)
    except Exception:  # nor the follow-ups of failed messages
        log.exception("looking for follow-ups left undone failed")
    deadline, done, looked = time.monotonic() + RECOVER_FOR, 0, RECOVER_BATCH
    while looked == RECOVER_BATCH and time.monotonic() < deadline:  # a short batch: nothing stale is left
        finished, looked = _recover_batch(runtime, RECOVER_AFTER, RECOVER_BATCH)
        done += finished
    return done
