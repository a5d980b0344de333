"""What an operator does to a subscriber, each recorded in the subscriber's audit trail (in the same transaction)
and in the stream of every operator action: take, reply, resolve an escalation; reveal a number."""

from __future__ import annotations

from redis.client import Pipeline

from gateway import metrics
from gateway.jobs import outbox
from gateway.jobs.outbox import Pending
from gateway.runtime import Runtime
from gateway.service import Service
from gateway.state import audit, escalations
from gateway.state.escalations import TAKEN, Escalation, Refused
from gateway.state.messages import OutboundMessage

REPLY_CHARS = 480  # a person's reply: at most a few SMS segments


def take(runtime: Runtime, msisdn: str, reason: str, operator: str, force: bool) -> Escalation:
    taken = escalations.take(runtime.redis, runtime.keys, msisdn, reason, operator, runtime.clock(),
                             runtime.store.audit_days, force)
    _log(runtime, operator, "take", msisdn, reason=reason)
    return taken


def resolve(runtime: Runtime, msisdn: str, reason: str, operator: str, note: str) -> Escalation:
    done = escalations.resolve(runtime.redis, runtime.keys, msisdn, reason, operator, note, runtime.clock(),
                               runtime.store.audit_days)
    _log(runtime, operator, "resolve", msisdn, reason=reason, note=note)
    return done


def reply(runtime: Runtime, msisdn: str, reason: str, operator: str, text: str, force: bool) -> OutboundMessage:
    """Send `text` as the person who took the escalation: stored and queued like any step's message (its outbox
    entry in the same transaction as the message, the escalation's log and the audit entry), paced, tracked."""
    text = text.strip()[:REPLY_CHARS]
    if not text:
        raise Refused("nothing to send")
    message = Service(runtime).person_message(msisdn, text)
    now, key = runtime.clock(), f"op-{message.id}"
    pending = Pending(at=now.timestamp(), messages=[message.id])
    entry = {"at": int(now.timestamp()), "from": "agent", "operator": operator, "id": message.id, "text": text}
    action = {"kind": audit.OPERATOR, "operator": operator, "action": "reply", "reason": reason,
              "sent": [audit.sent(message)]}

    def send(pipe: Pipeline, current: Escalation, _: bytes | None) -> Escalation:
        _check_taken(current, operator, force)
        runtime.store.save_message(message, pipeline=pipe)
        outbox.record(runtime, msisdn, key, pending, pipe)
        escalations.add_to_log(pipe, runtime.keys, msisdn, reason, entry)
        runtime.store.audit(msisdn, action, now, pipeline=pipe)
        return current

    escalations.transact(runtime.redis, runtime.keys, msisdn, reason, send)
    outbox.run(runtime, msisdn, key, pending)
    _log(runtime, operator, "reply", msisdn, reason=reason, message=message.id)
    return message


def _check_taken(current: Escalation, operator: str, force: bool) -> None:
    if current.status != TAKEN:
        raise Refused("take it before replying")
    if current.agent != operator and not force:
        raise Refused(f"taken by {current.agent}")


def reveal(runtime: Runtime, msisdn: str, operator: str) -> None:
    """An admin saw the whole number: that too is audited."""
    action = {"kind": audit.OPERATOR, "operator": operator, "action": "reveal"}
    runtime.store.audit(msisdn, action, runtime.clock())
    _log(runtime, operator, "reveal", msisdn)


def _log(runtime: Runtime, operator: str, action: str, msisdn: str, **detail: str) -> None:
    entry = {"operator": operator, "action": action, "msisdn": msisdn, **detail}
    audit.record_operator(runtime.redis, runtime.keys, entry, runtime.clock(), runtime.store.audit_days)
    metrics.ops_actions.labels(action).inc()
