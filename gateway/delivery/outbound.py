"""Outbound messages: queued on RQ after the step commits, delivered by a worker through their route's sender.

A message's status only moves forward (queued → sending → sent → delivered | undelivered | failed, or
skipped), whoever reports it: the worker, or receipts arriving late, twice or out of order; of the final statuses
only a late `delivered` moves on from `undelivered` or `failed` (the phone has it after all). A worker claims a
message (queued → sending) before handing it over, so a job run twice — RQ retrying after a worker was killed —
never sends it twice. A send that may or may not have gone out (the worker died before recording it, or the
provider never answered) stays "sending" until it is settled: found with the provider (`Sender.find`) and recorded,
sent again once finding nothing means it never left, or, when the provider cannot tell, handed to a person.
docs/delivery.md has the rules.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from redis.client import Pipeline
from rq import Queue, Retry, get_current_job
from rq.job import Job

from dialogs.commands import masked_codes
from dialogs.effects import CODE, CONFIRMATION
from dialogs.reasons import CONFIRMATION_UNDELIVERED, ROUTE_DOWN, SEND_REFUSED, SEND_UNCERTAIN
from dialogs.segments import segments
from gateway import metrics
from gateway.delivery.senders import OPTED_OUT, PERMANENT_TWILIO_ERRORS, SendError, SendUncertain
from gateway.delivery.wanted import HELD, SEND, Verdict, earlier_copy_delivered, verdict
from gateway.runtime import OUTBOUND_QUEUE, Runtime, current
from gateway.state import audit, follow_ups, ids, routes_down
from gateway.state.keys import PROVIDER_SID
from gateway.state.messages import (
    DELIVERED,
    FAILED,
    QUEUED,
    REMINDER,
    SENDING,
    SENT,
    SKIPPED,
    UNDELIVERED,
    OutboundMessage,
)

log = logging.getLogger(__name__)

# Provider 429/5xx: RQ runs the job again after each of these (its scheduler runs in every worker).
RETRY_INTERVALS = [5, 15, 60, 300, 900]
# An undelivered confirmation goes out again after each of these, then a person takes over.
RESEND_DELAYS = [60, 300]
SID_TTL = 7 * 86400
FOLLOW_UP_AFTER = 60  # seconds: a follow-up noted longer ago than this was left by a process that died (recovery)
FOLLOW_UP_BATCH = 100
UNCERTAIN = "uncertain"
PACED = "paced"  # a verdict of deliver's own: its pacing slot is too far off, it comes back then
WAITING = "waiting"  # deliver's own too: its route is down (docs/delivery.md, "A route that is down"), it comes back
# A claim younger than this may be a send on its way under another run (the senders wait 13 s at most for an
# answer): a run of the message's job that finds it leaves it to that run and comes back once it is older.
IN_FLIGHT = 60
IN_FLIGHT_NOW = "in flight"
ROUTE_RETRY = 30  # seconds: how often a message waiting for its route comes back, and one of them tries the route
ROUTE_WAIT_LIMIT = 86400  # seconds from when it was made that anything but a reminder or a code waits for its route
ROUTE_GONE = "its route was down for longer than a day"
# A late `delivered` outranks an earlier failure report: the phone has the message after all (docs/delivery.md).
RANK = {QUEUED: 0, SENDING: 1, SENT: 2, UNDELIVERED: 3, FAILED: 3, SKIPPED: 3, DELIVERED: 4}


def enqueue(runtime: Runtime, messages: Iterable[OutboundMessage], queue: str = OUTBOUND_QUEUE) -> None:
    for message in messages:
        enqueue_ids(runtime, message.msisdn, [message.id], queue)


def enqueue_ids(
    runtime: Runtime, msisdn: str, message_ids: Iterable[str], queue: str = OUTBOUND_QUEUE,
    pipeline: Pipeline | None = None,
) -> None:
    """One delivery job per stored message, on `pipeline` (a pipeline of the queue's Redis) when given."""
    jobs = [Queue.prepare_data(deliver, (msisdn, m), job_id=f"msg-{m}", retry=_retry()) for m in message_ids]
    if jobs:
        runtime.queue(queue).enqueue_many(jobs, pipeline=pipeline)


def _enqueue_in(runtime: Runtime, message: OutboundMessage, seconds: float, queue: str, job_id: str | None = None
                ) -> None:
    when = timedelta(seconds=seconds)
    runtime.queue(queue).enqueue_in(when, deliver, message.msisdn, message.id, retry=_retry(), job_id=job_id)


def _retry() -> Retry:
    return Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)


def deliver(msisdn: str, message_id: str) -> str:
    """RQ job: send one stored message once, by its route and in that route's pace. A retryable provider error
    re-raises so RQ retries it."""
    runtime = current()
    message = runtime.store.load_message(msisdn, message_id)
    if message is not None and message.status == SENDING:
        return _in_flight(runtime, message) or _settle_uncertain(runtime, message)
    if message is None or message.status != QUEUED:
        return "skipped"
    checked = _cleared(runtime, message)
    if checked.decision != SEND:
        return _not_sent(runtime, message, checked.decision)
    text, at = checked.text, int(runtime.clock().timestamp())
    reworded = text != message.text
    if not runtime.store.claim_message(msisdn, message_id, at=at, text=text if reworded else ""):
        return "skipped"  # another run of this job got there first
    if reworded:
        _audit_reworded(runtime, message, text)
    return _send(runtime, message, text)


def _in_flight(runtime: Runtime, message: OutboundMessage) -> str:
    """A message claimed less than IN_FLIGHT ago may be on its way under another run, which records what comes of
    it: this run's job comes back once that time is up ('' when it is up: settle it, docs/delivery.md)."""
    left = message.claimed_at + IN_FLIGHT - runtime.clock().timestamp()
    if left <= 0:
        return ""
    _enqueue_in(runtime, message, left, _current_queue())
    return IN_FLIGHT_NOW


def _audit_reworded(runtime: Runtime, message: OutboundMessage, text: str) -> None:
    """The audit trail shows what the phone gets: a reminder worded afresh as it leaves is recorded again."""
    entry = {"kind": audit.REMINDER, "id": message.id, "channel": REMINDER,
             "sent": [audit.sent(replace(message, text=text))],
             "changes": ["worded afresh as it left: what it said when queued (amount owed, TD number) had changed"]}
    runtime.store.audit(message.msisdn, entry, runtime.clock())


def _cleared(runtime: Runtime, message: OutboundMessage) -> Verdict:
    """The last checks, made before a pacing slot is booked (a reminder held or skipped costs its route nothing) and
    again once the slot has come (docs/reminders.md); PACED when the slot is too far off to wait for: it is booked for
    the message, which comes back then."""
    checked = verdict(runtime, message)
    if checked.decision != SEND:
        return checked
    route = runtime.route(message)
    now = runtime.clock().timestamp()
    if not routes_down.may_try(runtime.redis, runtime.keys, route.name, now, ROUTE_RETRY):  # another one probes it
        if _waited_too_long(runtime, message):
            return Verdict(ROUTE_GONE)
        _give_up_turn(runtime, message)
        _enqueue_in(runtime, message, ROUTE_RETRY, _current_queue())
        return Verdict(WAITING)
    rate = repr(route.pacer.mps)  # a booking made at another rate (before a restart) is booked afresh
    later = route.pacer.acquire(segments(checked.text), booked=message.slot if message.slot_mps == rate else 0)
    if later.wait:  # booked for the message: its job comes back for that slot, holding no worker meanwhile
        _record(runtime, message, slot=later.at, slot_mps=rate)
        _enqueue_in(runtime, message, later.wait, _current_queue())
        return Verdict(PACED)
    return verdict(runtime, message)


def _give_up_turn(runtime: Runtime, message: OutboundMessage) -> None:
    """A turn that comes while the route is away is not kept for its return: the backlog would leave all at once,
    every booking less than STALE_AFTER late (docs/delivery.md)."""
    if message.slot:
        _record(runtime, message, slot=0)


def _not_sent(runtime: Runtime, message: OutboundMessage, decision: str) -> str:
    if decision in (PACED, WAITING):
        return decision  # queued again for when its slot comes, or to look at its route again
    if decision == HELD:
        return "held"  # a reminder in quiet hours: still queued, and back in the due index for their end
    if decision == ROUTE_GONE:  # claimed first: only the run that claims it may record it failed
        at = int(runtime.clock().timestamp())
        if not runtime.store.claim_message(message.msisdn, message.id, at=at):
            return "skipped"
        return _fail(runtime, message, message.attempts, ROUTE_GONE)
    advance(runtime, message, SKIPPED, error=decision, **_forget_code(message))  # a code that never goes: its text too
    return "skipped"


def _send(runtime: Runtime, message: OutboundMessage, text: str) -> str:
    """Hand the claimed `message` to the sender as `text`, and record what came of it."""
    try:
        sid = runtime.route(message).sender.send(
            message.msisdn, text, status_callback(runtime, message), reference=message.id
        )
    except SendUncertain as exc:
        log.warning("send of %s to %s may have gone out (%s): looking it up", message.id, message.msisdn, exc)
        claimed = runtime.store.load_message(message.msisdn, message.id)
        return _settle_uncertain(runtime, claimed) if claimed is not None else UNCERTAIN
    except SendError as exc:
        return _failed(runtime, message, exc)
    _sent(runtime, message, sid)
    return sid


def _sent(runtime: Runtime, message: OutboundMessage, sid: str) -> None:
    advance(runtime, message, SENT, provider_sid=sid, attempts=message.attempts + 1, **_forget_code(message))
    runtime.redis.set(runtime.keys.shared(PROVIDER_SID, sid), f"{message.msisdn}|{message.id}", ex=SID_TTL)
    route = runtime.route(message)
    metrics.outbound(runtime, route.channel, metrics.SENT)
    if routes_down.came_back(runtime.redis, runtime.keys, route.name):
        log.warning("route %s is back: message %s to %s went", route.name, message.id, message.msisdn)


def _settle_uncertain(runtime: Runtime, message: OutboundMessage) -> str:
    """A send that may have gone out. Record it if the provider has it; send it again only once finding nothing means
    it never left (`settles_after` the attempt began); when the provider cannot tell, a person decides."""
    sender = runtime.route(message).sender
    find = getattr(sender, "find", None)
    if find is None:
        return _escalate_uncertain(runtime, message)
    began = datetime.fromtimestamp(message.claimed_at or message.created_at, UTC)
    try:
        sid = _unrecorded(runtime, message, find(message.msisdn, message.text, began, message.id))
    except SendError as exc:
        return _lookup_failed(runtime, message, exc)
    if sid:
        _sent(runtime, message, sid)
        return sid
    wait = began + timedelta(seconds=getattr(sender, "settles_after", 0)) - runtime.clock()
    if wait > timedelta(0):
        _enqueue_in(runtime, message, wait.total_seconds(), _current_queue())  # the provider may not show it yet
        return UNCERTAIN
    return _never_left(runtime, message)


def _never_left(runtime: Runtime, message: OutboundMessage) -> str:
    """An attempt the provider never took: send it again, unless it was the last one (docs/delivery.md)."""
    attempts = message.attempts + 1
    if attempts > len(RETRY_INTERVALS):
        with following_up(runtime, message):
            if not runtime.store.release_message(message, attempts, status=FAILED):
                return "skipped"  # another run settled it first
            log.error("message %s to %s never reached the provider in %d attempts", message.id, message.msisdn,
                      attempts)
            metrics.outbound(runtime, runtime.route(message).channel, metrics.FAILED)
            _record(runtime, message, error="never reached the provider", **_forget_code(message))
            undelivered(runtime, message)
        return "failed"
    if not runtime.store.release_message(message, attempts):
        return "skipped"  # another run settled it first
    metrics.outbound(runtime, runtime.route(message).channel, metrics.RETRIED)
    return deliver(message.msisdn, message.id)  # it never left: send it now


def _unrecorded(runtime: Runtime, message: OutboundMessage, found: list[str]) -> str | None:
    """The first of `found` no other message of ours was sent as, now taken for `message`: two of our messages may
    share recipient, text and minute."""
    mine = f"{message.msisdn}|{message.id}"
    for sid in found:
        key = runtime.keys.shared(PROVIDER_SID, sid)
        if runtime.redis.set(key, mine, ex=SID_TTL, nx=True) or runtime.redis.get(key) == mine.encode():
            return sid
    return None


def _lookup_failed(runtime: Runtime, message: OutboundMessage, exc: SendError) -> str:
    if exc.unreachable:  # looked up again once the route is back: no retry used up, nobody told for the outage alone
        _route_down(runtime, message, exc)
        _enqueue_in(runtime, message, ROUTE_RETRY, _current_queue())
        return WAITING
    job = get_current_job()
    if exc.retryable and job is not None and job.retries_left:
        log.warning("could not look up message %s to %s, will retry: %s", message.id, message.msisdn, exc)
        raise exc
    return _escalate_uncertain(runtime, message)


def _escalate_uncertain(runtime: Runtime, message: OutboundMessage) -> str:
    log.error("message %s to %s may or may not have gone out: escalating", message.id, message.msisdn)
    runtime.store.escalate(message.msisdn, SEND_UNCERTAIN, runtime.clock(), context={"message": message.id})
    return UNCERTAIN


def _forget_code(message: OutboundMessage) -> dict[str, str]:
    """Once a verification code has left (or never will), its text need not stay in Redis: only its hash does."""
    return {"text": masked_codes(message.text)} if message.kind == CODE else {}


def _current_queue() -> str:
    job = get_current_job()
    return job.origin if job is not None else OUTBOUND_QUEUE


def _failed(runtime: Runtime, message: OutboundMessage, exc: SendError) -> str:
    if exc.unreachable:  # no attempt used up, and no RQ retry: that would only queue it to wait again
        if not _waited_too_long(runtime, message):
            return _wait_for_route(runtime, message, exc)
        log.error("message %s to %s: %s (%s)", message.id, message.msisdn, ROUTE_GONE, exc)
        return _fail(runtime, message, message.attempts, f"{ROUTE_GONE}: {exc}")
    attempts = message.attempts + 1
    job = get_current_job()
    if exc.retryable and job is not None and job.retries_left:
        _record(runtime, message, status=QUEUED, attempts=attempts, error=str(exc))  # it did not leave: claimable
        log.warning("send to %s failed, will retry: %s", message.msisdn, exc)
        metrics.outbound(runtime, runtime.route(message).channel, metrics.RETRIED)
        raise exc
    log.error("send to %s failed for good: %s", message.msisdn, exc)
    if exc.escalate:
        runtime.store.escalate(message.msisdn, SEND_REFUSED, runtime.clock(), context={
            "message": message.id, "route": runtime.route(message).name, "error": str(exc)})
    return _fail(runtime, message, attempts, f"{exc.code}: {exc}", str(exc.code or ""))


def _fail(runtime: Runtime, message: OutboundMessage, attempts: int, error: str, code: str = "") -> str:
    """Record the claimed `message` failed for good and do its follow-up (noted first: docs/delivery.md)."""
    metrics.outbound(runtime, runtime.route(message).channel, metrics.FAILED)
    with following_up(runtime, message, code):
        if advance(runtime, message, FAILED, attempts=attempts, error=error, **_forget_code(message)):
            undelivered(runtime, message, code)
    return "failed"


def _waited_too_long(runtime: Runtime, message: OutboundMessage) -> bool:
    """A message held up by its route past ROUTE_WAIT_LIMIT: a reminder (its deadline) and a code (CODE_TTL) are
    bounded by their own checks instead (docs/delivery.md)."""
    if message.kind in (REMINDER, CODE):
        return False
    return runtime.clock().timestamp() >= message.created_at + ROUTE_WAIT_LIMIT


def _wait_for_route(runtime: Runtime, message: OutboundMessage, exc: SendError) -> str:
    """The route is away and took nothing: the message is queued again as it was (no attempt used up) and comes back
    to look at its route, and at whether it still has something to say, in ROUTE_RETRY (docs/delivery.md)."""
    _route_down(runtime, message, exc)
    _record(runtime, message, status=QUEUED, error=f"waiting for its route: {exc}", slot=0)
    _enqueue_in(runtime, message, ROUTE_RETRY, _current_queue())
    return WAITING


def _route_down(runtime: Runtime, message: OutboundMessage, exc: SendError) -> None:
    """Mark the message's route down; the first to find it down tells operators, once per outage."""
    route = runtime.route(message).name
    now = runtime.clock()
    if not routes_down.went_down(runtime.redis, runtime.keys, route, now.timestamp()):
        log.info("route %s still down: message %s to %s waits for it", route, message.id, message.msisdn)
        return
    log.error("route %s is down (%s): its messages wait for it", route, exc)
    runtime.store.escalate(message.msisdn, ROUTE_DOWN, now, context={
        "route": route, "message": message.id, "error": str(exc)})


def _record(runtime: Runtime, message: OutboundMessage, **changes: object) -> None:
    key = runtime.keys.message(message.msisdn, message.id)
    runtime.redis.hset(key, mapping={k: str(v) for k, v in changes.items()})


def advance(runtime: Runtime, message: OutboundMessage, status: str, error: str = "", **changes: object) -> bool:
    """Write `changes`, and `status` with its `error` if it is further than the stored status; True when it moved."""
    key = runtime.keys.message(message.msisdn, message.id)

    def attempt(pipe: Pipeline) -> bool:
        current = (pipe.hget(key, "status") or b"").decode()
        if current not in RANK:  # gone (or never stored): nothing to track
            return False
        moved = RANK[status] > RANK[current]
        fields = {k: str(v) for k, v in changes.items()} | ({"status": status, "error": error} if moved else {})
        pipe.multi()
        if fields:
            pipe.hset(key, mapping=fields)
        return moved

    return runtime.redis.transaction(attempt, key, value_from_callable=True)


@contextmanager
def following_up(runtime: Runtime, message: OutboundMessage, error_code: str = "") -> Iterator[None]:
    """Around recording `message` undelivered or failed and doing its follow-up (`undelivered`): noted first when
    there may be one, cleared once the block is done, so a process killed in between leaves the note for
    `follow_up_left` (docs/delivery.md)."""
    if message.kind != CONFIRMATION and _code(error_code) != OPTED_OUT:  # no follow-up to lose
        yield
        return
    noted = follow_ups.note(runtime.redis, runtime.keys, message.msisdn, message.id, error_code,
                            runtime.clock().timestamp())
    yield
    follow_ups.clear(runtime.redis, runtime.keys, noted)


def follow_up_left(runtime: Runtime, older_than: float = FOLLOW_UP_AFTER, batch: int = FOLLOW_UP_BATCH) -> int:
    """The recovery cron's part: do the follow-up of every copy a process noted and died before finishing (at most
    `batch`, noted more than `older_than` seconds ago); return how many copies were followed up. A note whose copy never
    moved is dropped: its process died before the move, and the copy is settled as an uncertain send."""
    done = 0
    for noted in follow_ups.older_than(runtime.redis, runtime.keys, runtime.clock().timestamp() - older_than, batch):
        try:
            message = runtime.store.load_message(noted.msisdn, noted.message_id)
            if message is not None and message.status in (UNDELIVERED, FAILED):
                log.warning("following up message %s to %s, which a process left undone", message.id, message.msisdn)
                undelivered(runtime, message, noted.error_code)
                done += 1
            follow_ups.clear(runtime.redis, runtime.keys, noted)
        except Exception:  # one copy never holds up the others: its note stays for the next run
            log.exception("following up message %s to %s failed; a later run tries again", noted.message_id,
                          noted.msisdn)
    return done


def _code(error_code: str) -> int | None:
    """A provider's error code is ASCII digits; anything else ("²" would make int() raise) is no code we know."""
    return int(error_code) if error_code.isascii() and error_code.isdigit() else None


def undelivered(runtime: Runtime, message: OutboundMessage, error_code: str = "") -> None:
    """After a message is reported undelivered or failed: an opt-out is recorded, and a confirmation goes out
    again (bounded, with backoff) unless no resend can help, then a person takes over; unless a copy it repeats
    was reported delivered meanwhile: then it has arrived. Called again for the same copy (a report retried or
    repeated), it does what is not done yet and nothing twice (docs/delivery.md)."""
    code = _code(error_code)
    if code == OPTED_OUT:
        _mark_opted_out(runtime, message.msisdn)
    if message.kind != CONFIRMATION or earlier_copy_delivered(runtime, message):
        return
    if code in PERMANENT_TWILIO_ERRORS or message.resends >= len(RESEND_DELAYS):
        _tell_once(runtime, message, error_code)
        return
    _resend(runtime, message)


def _tell_once(runtime: Runtime, message: OutboundMessage, error_code: str) -> None:
    """A person is told the confirmation never arrived, once for this copy: it records that they were, after."""
    if message.told:
        return
    log.warning("confirmation to %s undelivered after %d resends: escalating", message.msisdn, message.resends)
    runtime.store.escalate(message.msisdn, CONFIRMATION_UNDELIVERED, runtime.clock(), context={
        "message": message.id, "error": error_code, "resends": message.resends})
    _record(runtime, message, told=1)


def _resend(runtime: Runtime, message: OutboundMessage) -> None:
    """The copy's one resend (its id made from the copy's), stored once, queued for its delay unless it is already."""
    subscriber = runtime.store.load_subscriber(message.msisdn)
    again = OutboundMessage(
        ids.digest(f"{message.id}|again"), message.msisdn, message.text, message.kind,
        int(runtime.clock().timestamp()), resends=message.resends + 1, repeats=message.id,
        route=runtime.routing.route(message.msisdn, subscriber),  # it answers nothing
    )
    runtime.store.add_message(again)
    stored = runtime.store.load_message(again.msisdn, again.id)
    job_id = f"msg-{again.id}"
    if stored is not None and stored.status == QUEUED and not Job.exists(job_id, connection=runtime.queue_redis):
        _enqueue_in(runtime, again, RESEND_DELAYS[message.resends], OUTBOUND_QUEUE, job_id=job_id)


def _mark_opted_out(runtime: Runtime, msisdn: str) -> None:
    runtime.store.update_subscriber(msisdn, lambda s: replace(s, opted_out=True) if s else None)


def status_callback(runtime: Runtime, message: OutboundMessage) -> str | None:
    """The receipt URL names the message, so a receipt that beats the worker's own record still finds it."""
    base = runtime.config.get("PUBLIC_BASE_URL")
    if not base:
        return None
    return f"{str(base).rstrip('/')}/webhooks/twilio/status?{urlencode({'m': message.id})}"

