"""Outbound messages: queued on RQ after the step commits, delivered by a worker through the configured sender."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from rq import Retry

from gateway import bootstrap
from gateway.bootstrap import OUTBOUND_QUEUE, Runtime
from gateway.keys import PROVIDER_SID
from gateway.messages import FAILED, QUEUED, SENT, OutboundMessage
from gateway.senders import OPTED_OUT, SendError

log = logging.getLogger(__name__)

RETRY_INTERVALS = [5, 15, 60, 300, 900]
SID_TTL = 7 * 86400


def enqueue(runtime: Runtime, messages: Iterable[OutboundMessage], queue: str = OUTBOUND_QUEUE) -> None:
    q = runtime.queue(queue)
    for message in messages:
        q.enqueue(
            deliver, message.msisdn, message.id, job_id=f"msg-{message.id}",
            retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
        )


def deliver(msisdn: str, message_id: str) -> str:
    """RQ job: send one stored message once. A retryable provider error re-raises so RQ retries it."""
    runtime = bootstrap.current()
    store = runtime.store
    message = store.load_message(msisdn, message_id)
    if message is None or message.status != QUEUED:
        return "skipped"
    try:
        sid = runtime.sender.send(msisdn, message.text, status_callback(runtime))
    except SendError as exc:
        return _failed(runtime, message, exc)
    _record(runtime, message, status=SENT, provider_sid=sid, attempts=message.attempts + 1)
    runtime.redis.set(runtime.keys.shared(PROVIDER_SID, sid), f"{msisdn}|{message_id}", ex=SID_TTL)
    return sid


def _failed(runtime: Runtime, message: OutboundMessage, exc: SendError) -> str:
    attempts = message.attempts + 1
    if exc.retryable:
        _record(runtime, message, attempts=attempts, error=str(exc))
        log.warning("send to %s failed, will retry: %s", message.msisdn, exc)
        raise exc
    _record(runtime, message, status=FAILED, attempts=attempts, error=f"{exc.code}: {exc}")
    if exc.code == OPTED_OUT:
        _mark_opted_out(runtime, message.msisdn)
    log.error("send to %s failed for good: %s", message.msisdn, exc)
    return "failed"


def _record(runtime: Runtime, message: OutboundMessage, **changes: object) -> None:
    key = runtime.keys.message(message.msisdn, message.id)
    runtime.redis.hset(key, mapping={k: str(v) for k, v in changes.items()})


def _mark_opted_out(runtime: Runtime, msisdn: str) -> None:
    runtime.store.update_subscriber(msisdn, lambda s: replace(s, opted_out=True) if s else None)


def status_callback(runtime: Runtime) -> str | None:
    base = runtime.config.get("PUBLIC_BASE_URL")
    return f"{str(base).rstrip('/')}/webhooks/twilio/status" if base else None
